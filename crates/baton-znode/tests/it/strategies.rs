//! proptest strategies: txn ops over a small path universe (so ops collide and
//! fail often), with sessions, ephemerals, TTLs, reaps, ACLs, identities and
//! quotas.

use baton_znode::acl::{Acl, AclEntry, Auth, Id, Perms, digest_id, parse_acl};
use baton_znode::{
    CheckOp, CreateMode, CreateOp, DataTree, DeleteOp, MultiOp, QuotaLimits, SetAclOp, SetDataOp,
    Txn, TxnOp,
};
use bytes::Bytes;
use proptest::prelude::*;

/// Few paths, nested, some invalid or reserved, so that creates, deletes and
/// multis often succeed and often hit NodeExists, NoNode, NotEmpty, InvalidPath
/// and BadArguments.
const TOP_PATHS: &[&str] = &["/a", "/b", "/c"];
const NESTED_PATHS: &[&str] = &["/a/x", "/a/y", "/b/z", "/a/x/q"];
const BAD_PATHS: &[&str] = &["/a/", "/baton/k", "/baton", "//"];

const MODES: &[CreateMode] = &[
    CreateMode::Persistent,
    CreateMode::Ephemeral,
    CreateMode::PersistentSequential,
    CreateMode::EphemeralSequential,
    CreateMode::Container,
    CreateMode::PersistentWithTtl,
    CreateMode::PersistentSequentialWithTtl,
];

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(TOP_PATHS),
        5 => prop::sample::select(NESTED_PATHS),
        1 => prop::sample::select(BAD_PATHS),
    ]
    .prop_map(str::to_owned)
}

fn data() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from)
}

fn version() -> impl Strategy<Value = i32> {
    prop_oneof![3 => Just(-1), 1 => 0..3i32]
}

/// A few ACLs that grant and refuse the identities of `auth()` differently, one
/// that locks everyone out, and (rarely) one `apply` must refuse.
const ACLS: &[&str] = &[
    "world:anyone:cdrwa",
    "world:anyone:r",
    "world:anyone:cr,ip:10.0.0.0/8:cdrwa",
    "world:anyone:r,digest:alice:V55/p2T0OpjQ+low3NVAH4aLvm0=:cdrwa",
    "world:anyone:",
    "world:nobody:r",
];

pub fn acl() -> impl Strategy<Value = Acl> {
    prop_oneof![
        6 => Just(ACLS[0]),
        8 => prop::sample::select(&ACLS[1..5]),
        1 => Just(ACLS[5]),
    ]
    .prop_map(|text| parse_acl(text).unwrap())
}

/// No identity, alice (whose digest `ACLS` names), an address inside 10/8, or the
/// super identity.
pub fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        4 => Just(vec![]),
        2 => Just(vec![Id::new("digest", digest_id("alice", "pw"))]),
        2 => Just(vec![Id::new("ip", "10.1.2.3")]),
        1 => Just(vec![Id::super_user()]),
    ]
    .prop_map(Auth::new)
}

fn limit() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![2 => Just(None), 2 => (0..4u64).prop_map(Some), 1 => (0..12u64).prop_map(Some)]
}

fn quota_limits() -> impl Strategy<Value = QuotaLimits> {
    (limit(), limit(), limit(), limit()).prop_map(
        |(count_soft, bytes_soft, count_hard, bytes_hard)| QuotaLimits {
            count_soft,
            bytes_soft,
            count_hard,
            bytes_hard,
        },
    )
}

fn create_op() -> impl Strategy<Value = CreateOp> {
    let ttl = prop_oneof![3 => Just(0i64), 3 => 1..3_000i64, 1 => Just(-1i64)];
    let mode = prop_oneof![3 => Just(CreateMode::Persistent), 4 => prop::sample::select(MODES)];
    (path(), data(), mode, ttl, acl()).prop_map(|(path, data, mode, ttl, acl)| {
        // Mostly a TTL that fits the mode; sometimes not, to exercise the error.
        let ttl_ms = match (mode.is_ttl(), ttl) {
            (true, 0) => 1_000,
            (false, t) if t > 0 && t % 7 != 0 => 0,
            (_, t) => t,
        };
        CreateOp { acl, path, data, mode, ttl_ms }
    })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (path(), version()).prop_map(|(path, version)| MultiOp::Check(CheckOp { path, version })),
        create_op().prop_map(MultiOp::Create),
        (path(), data(), version()).prop_map(|(path, data, version)| MultiOp::SetData(SetDataOp {
            path,
            data,
            version
        })),
        (path(), version()).prop_map(|(path, version)| MultiOp::Delete(DeleteOp { path, version })),
    ]
}

fn session() -> impl Strategy<Value = u64> {
    1..4u64
}

pub fn txn_op() -> impl Strategy<Value = TxnOp> {
    prop_oneof![
        4 => create_op().prop_map(TxnOp::Create),
        2 => (path(), version()).prop_map(|(path, version)| TxnOp::Delete(DeleteOp { path, version })),
        2 => (path(), data(), version())
            .prop_map(|(path, data, version)| TxnOp::SetData(SetDataOp { path, data, version })),
        2 => prop::collection::vec(multi_op(), 0..5).prop_map(TxnOp::Multi),
        1 => (session(), 0..100u32)
            .prop_map(|(session, timeout_ms)| TxnOp::CreateSession { session, timeout_ms, password: 7 }),
        1 => session().prop_map(|session| TxnOp::CloseSession { session }),
        1 => prop::collection::vec(path(), 0..3).prop_map(|paths| TxnOp::Reap { paths }),
        1 => (path(), acl(), version())
            .prop_map(|(path, acl, version)| TxnOp::SetAcl(SetAclOp { path, acl, version })),
        2 => (path(), quota_limits()).prop_map(|(path, limits)| TxnOp::SetQuota { path, limits }),
        1 => path().prop_map(|path| TxnOp::RemoveQuota { path }),
    ]
}

/// One step of a random history. `ReapEligible` becomes a `Reap` of whatever the
/// tree finds eligible when it runs (as the server would propose).
#[derive(Debug, Clone)]
pub enum Step {
    Op { op: TxnOp, session: u64, auth: Auth, elapsed_ms: i64 },
    ReapEligible { elapsed_ms: i64 },
}

pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        8 => (txn_op(), 0..4u64, auth(), 0..1_500i64)
            .prop_map(|(op, session, auth, elapsed_ms)| Step::Op { op, session, auth, elapsed_ms }),
        1 => (0..3_000i64).prop_map(|elapsed_ms| Step::ReapEligible { elapsed_ms }),
    ];
    prop::collection::vec(step, 1..max)
}

/// Turns steps into concrete txns against `tree` (consulted for reaps only).
pub struct History {
    zxid: u64,
    time_ms: i64,
}

impl Default for History {
    fn default() -> Self {
        History { zxid: 0, time_ms: 1_000_000 }
    }
}

impl History {
    pub fn txn(&mut self, step: &Step, tree: &DataTree) -> Txn {
        // Zxids with gaps: apply must not assume they are consecutive.
        self.zxid += 1 + self.zxid % 3;
        let (op, session, auth, elapsed_ms) = match step {
            Step::Op { op, session, auth, elapsed_ms } => {
                (op.clone(), *session, auth.clone(), *elapsed_ms)
            }
            Step::ReapEligible { elapsed_ms } => {
                let paths = tree.reapable(self.time_ms + elapsed_ms, 10);
                (TxnOp::Reap { paths }, 0, Auth::none(), *elapsed_ms)
            }
        };
        self.time_ms += elapsed_ms;
        Txn { auth, zxid: self.zxid, time_ms: self.time_ms, session, op }
    }
}

fn any_id() -> impl Strategy<Value = Id> {
    (any::<String>(), any::<String>()).prop_map(|(scheme, id)| Id { scheme, id })
}

/// Any entries at all: the codec carries what it is given, `apply` judges it.
fn any_acl() -> impl Strategy<Value = Acl> {
    let entry = (0..32u32, any_id())
        .prop_map(|(bits, id)| AclEntry { perms: Perms::from_bits(bits).unwrap(), id });
    prop::collection::vec(entry, 0..4)
}

/// Any txn at all (arbitrary strings and numbers), for codec round trips.
pub fn any_txn() -> impl Strategy<Value = Txn> {
    let create = || {
        (any::<String>(), data(), prop::sample::select(MODES), any::<i64>(), any_acl())
            .prop_map(|(path, data, mode, ttl_ms, acl)| CreateOp { acl, path, data, mode, ttl_ms })
    };
    let any_limit = || prop::option::of(any::<u64>());
    let any_limits = (any_limit(), any_limit(), any_limit(), any_limit()).prop_map(
        |(count_soft, bytes_soft, count_hard, bytes_hard)| QuotaLimits {
            count_soft,
            bytes_soft,
            count_hard,
            bytes_hard,
        },
    );
    let multi = prop_oneof![
        (any::<String>(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckOp { path, version })),
        create().prop_map(MultiOp::Create),
        (any::<String>(), data(), any::<i32>())
            .prop_map(|(path, data, version)| MultiOp::SetData(SetDataOp { path, data, version })),
        (any::<String>(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteOp { path, version })),
    ];
    let op = prop_oneof![
        create().prop_map(TxnOp::Create),
        (any::<String>(), any::<i32>())
            .prop_map(|(path, version)| TxnOp::Delete(DeleteOp { path, version })),
        (any::<String>(), data(), any::<i32>())
            .prop_map(|(path, data, version)| TxnOp::SetData(SetDataOp { path, data, version })),
        prop::collection::vec(multi, 0..6).prop_map(TxnOp::Multi),
        (any::<u64>(), any::<u32>(), any::<u64>()).prop_map(|(session, timeout_ms, password)| {
            TxnOp::CreateSession { session, timeout_ms, password }
        }),
        any::<u64>().prop_map(|session| TxnOp::CloseSession { session }),
        prop::collection::vec(any::<String>(), 0..4).prop_map(|paths| TxnOp::Reap { paths }),
        (any::<String>(), any_acl(), any::<i32>())
            .prop_map(|(path, acl, version)| TxnOp::SetAcl(SetAclOp { path, acl, version })),
        (any::<String>(), any_limits).prop_map(|(path, limits)| TxnOp::SetQuota { path, limits }),
        any::<String>().prop_map(|path| TxnOp::RemoveQuota { path }),
        (any::<i64>(), any_change()).prop_map(|(from_version, change)| {
            TxnOp::Reconfig(baton_znode::ReconfigOp { from_version, change })
        }),
        data().prop_map(|data| TxnOp::SetConfig { data }),
        any::<String>().prop_map(|reason| TxnOp::ConfigRefused { reason }),
        txn_op(),
    ];
    let auth = prop::collection::vec(any_id(), 0..3).prop_map(Auth::new);
    (any::<u64>(), any::<i64>(), any::<u64>(), auth, op)
        .prop_map(|(zxid, time_ms, session, auth, op)| Txn { auth, zxid, time_ms, session, op })
}

/// A byte-level mutation of a valid encoding.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let mutation = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ];
    prop::collection::vec(mutation, 1..4)
}

pub fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Flip { at, mask } if len > 0 => bytes[at % len] ^= mask,
            Mutation::Truncate { at } => bytes.truncate(at % (len + 1)),
            Mutation::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
            Mutation::Remove { at } if len > 0 => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
}

/// Any membership change (valid or not: the codec round-trips whatever it is).
fn any_change() -> impl Strategy<Value = baton_znode::ConfigChange> {
    use baton_znode::{ConfigChange, ConfigMember};
    let member = (any::<u64>(), any::<String>(), any::<bool>())
        .prop_map(|(id, addr, voter)| ConfigMember { id, addr, voter });
    prop_oneof![
        member.clone().prop_map(ConfigChange::Add),
        any::<u64>().prop_map(|id| ConfigChange::Remove { id }),
        (any::<u64>(), any::<bool>()).prop_map(|(id, voter)| ConfigChange::SetRole { id, voter }),
        prop::collection::vec(member, 0..4).prop_map(ConfigChange::Members),
    ]
}
