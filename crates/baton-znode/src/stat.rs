/// The metadata of a znode, field for field as ZooKeeper's Stat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    /// zxid of the txn that created the node.
    pub czxid: u64,
    /// zxid of the txn that last changed the node's data.
    pub mzxid: u64,
    /// zxid of the txn that last added or removed a child.
    pub pzxid: u64,
    /// Creation time, milliseconds since the Unix epoch (from the txn, never a clock).
    pub ctime: i64,
    /// Last data change time, milliseconds since the Unix epoch.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child additions and removals.
    pub cversion: i32,
    /// Number of ACL changes.
    pub aversion: i32,
    /// Owning session of an ephemeral node, 0 otherwise.
    pub ephemeral_owner: u64,
    pub data_length: u32,
    pub num_children: u32,
}
