//! Backup and restore. A backup is a snapshot taken from a running server's admin
//! port (`GET /snapshot`: the encoded tree at one applied zxid, checksummed); a
//! restore writes it into an empty data directory (`baton-server --restore-snapshot
//! FILE --data-dir DIR`) as that directory's only state, so a server started on it
//! begins from exactly that tree. An ensemble is restored by giving every member's
//! empty directory the same snapshot.

use std::path::Path;

use baton_log::{LogStore, Meta, SledOptions, SledStore, Snapshot};
use baton_znode::DataTree;
use bytes::Bytes;

use crate::ServerError;

/// Writes the snapshot in `file` into the empty (or missing) data directory `dir`;
/// returns its zxid and the number of znodes. Refuses a directory that holds
/// anything, and a file that is not a valid snapshot.
pub fn restore_snapshot(file: &Path, dir: &Path, fsync: bool) -> Result<(u64, usize), ServerError> {
    let failed = |why: String| ServerError::Config(format!("--restore-snapshot: {why}"));
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(failed(format!(
            "{} is not empty; restore into a new data directory",
            dir.display()
        )));
    }
    let data =
        std::fs::read(file).map_err(|e| failed(format!("reading {}: {e}", file.display())))?;
    let tree = DataTree::decode_snapshot(&data)
        .map_err(|e| failed(format!("{} is not a valid snapshot: {e}", file.display())))?;
    let zxid = tree.last_zxid();
    let mut store = SledStore::open_with(dir, SledOptions { fsync, ..SledOptions::default() })?;
    store.save_snapshot(Snapshot { zxid, data: Bytes::from(data) })?;
    // The epochs a member that applied this snapshot would have reached.
    let epoch = u32::try_from(zxid >> 32).unwrap_or(u32::MAX);
    store.set_meta(Meta { accepted_epoch: epoch, current_epoch: epoch })?;
    store.flush()?;
    Ok((zxid, tree.node_count()))
}
