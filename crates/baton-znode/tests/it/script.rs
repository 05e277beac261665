//! The golden-script language. Each command runs against one tree; txns get the
//! next zxid and the current time (`time T`) and session (`session N`).
//!
//! ```text
//! time T | session N                      (no output)
//! auth [ID...]                             (no output) identities of later txns:
//!                                          digest:USER:PASSWORD, ip:ADDR, x509:SUBJECT,
//!                                          super; none = no identity
//! open-session N [TIMEOUT] | close-session N
//! create [-s] [-e] [-c] [-t TTL] [--ttl-ms RAW] [--acl ACL] PATH [DATA]   (--ttl-ms:
//!                                          a TTL that does not choose the mode)
//! set PATH DATA [-v VERSION] | delete PATH [-v VERSION]
//! setacl PATH ACL [-v VERSION] | getacl PATH
//! setquota PATH [-n COUNT] [-b BYTES] [-N HARD_COUNT] [-B HARD_BYTES]   (zkCli's flags)
//! delquota PATH | listquota
//! multi                                    followed by indented create/set/delete/check lines
//! reap t=T [PATH...]                       (no paths: whatever reapable(T) lists)
//! get PATH | ls PATH | stat PATH | sessions | ephemerals N | reapable T [MAX] | dump
//! ```
//!
//! ACLs are zkCli's text (`world:anyone:r,auth::cdrwa`), made concrete with the
//! current identities as the server would (`acl::fixup`); one fixup refuses is
//! passed on as given, for `apply` to refuse. After every txn the runner checks the
//! incremental digest against a recompute, and that a failed txn left the digest
//! unchanged.

use baton_znode::acl::{Acl, Auth, Id, digest_id, fixup, format_acl, open_acl, parse_acl};
use baton_znode::{
    Applied, CheckOp, CreateMode, CreateOp, DataTree, DeleteOp, MultiOp, OpResult, QuotaLimits,
    SetAclOp, SetDataOp, Stat, Txn, TxnOp,
};
use bytes::Bytes;

pub struct Runner {
    tree: DataTree,
    time_ms: i64,
    session: u64,
    auth: Auth,
}

impl Default for Runner {
    fn default() -> Self {
        Runner { tree: DataTree::new(), time_ms: 1_000, session: 0, auth: Auth::none() }
    }
}

impl Runner {
    /// Runs one command (first line, plus body lines for `multi`); returns its output.
    pub fn run(&mut self, input: &[String]) -> Vec<String> {
        let words: Vec<&str> = input[0].split_whitespace().collect();
        let args = &words[1..];
        match words[0] {
            "time" => {
                self.time_ms = args[0].parse().unwrap();
                vec![]
            }
            "session" => {
                self.session = args[0].parse().unwrap();
                vec![]
            }
            "auth" => {
                self.auth = Auth::new(args.iter().map(|a| parse_identity(a)).collect());
                vec![]
            }
            "open-session" => {
                let timeout_ms = args.get(1).map_or(10_000, |t| t.parse().unwrap());
                self.txn(TxnOp::CreateSession {
                    session: args[0].parse().unwrap(),
                    timeout_ms,
                    password: 7,
                })
            }
            "close-session" => self.txn(TxnOp::CloseSession { session: args[0].parse().unwrap() }),
            "create" => self.txn(TxnOp::Create(parse_create(args, &self.auth))),
            "set" => self.txn(TxnOp::SetData(parse_set(args))),
            "delete" => {
                let (path, version) = parse_path_version(args);
                self.txn(TxnOp::Delete(DeleteOp { path, version }))
            }
            "multi" => {
                let ops = input[1..].iter().map(|line| parse_multi_op(line, &self.auth)).collect();
                self.txn(TxnOp::Multi(ops))
            }
            "setacl" => {
                let (path, version) = parse_path_version(&[&[args[0]], &args[2..]].concat());
                let acl = concrete_acl(&path, args[1], &self.auth);
                self.txn(TxnOp::SetAcl(SetAclOp { path, acl, version }))
            }
            "getacl" => vec![match self.tree.acl(args[0]) {
                Ok((acl, stat)) => format!("{} aversion={}", format_acl(&acl), stat.aversion),
                Err(e) => format!("error: {e}"),
            }],
            "setquota" => {
                let limits = parse_quota(&args[1..]);
                self.txn(TxnOp::SetQuota { path: args[0].to_owned(), limits })
            }
            "delquota" => self.txn(TxnOp::RemoveQuota { path: args[0].to_owned() }),
            "listquota" => {
                let quotas = self.tree.quotas();
                if quotas.is_empty() {
                    return vec!["(no quotas)".to_owned()];
                }
                quotas
                    .iter()
                    .map(|(path, limits, usage)| {
                        format!(
                            "{path} {} count={} bytes={}",
                            show_limits(limits),
                            usage.count,
                            usage.bytes
                        )
                    })
                    .collect()
            }
            "reap" => self.reap(args),
            "get" => vec![match self.tree.get(args[0]) {
                Ok((data, stat)) => format!("{} {}", show_data(&data), show_stat(&stat)),
                Err(e) => format!("error: {e}"),
            }],
            "ls" => vec![match self.tree.children(args[0]) {
                Ok((names, _)) if names.is_empty() => "(no children)".to_owned(),
                Ok((names, _)) => names.join(" "),
                Err(e) => format!("error: {e}"),
            }],
            "stat" => vec![match self.tree.stat(args[0]) {
                Ok(Some(stat)) => show_stat(&stat),
                Ok(None) => "(no node)".to_owned(),
                Err(e) => format!("error: {e}"),
            }],
            "sessions" => {
                let sessions = self.tree.sessions();
                sessions.iter().map(|s| format!("{} timeout={}", s.session, s.timeout_ms)).collect()
            }
            "ephemerals" => self.tree.ephemerals(args[0].parse().unwrap()),
            "reapable" => {
                let max = args.get(1).map_or(100, |m| m.parse().unwrap());
                self.tree.reapable(args[0].parse().unwrap(), max)
            }
            "dump" => self.dump(),
            other => panic!("unknown command {other:?}"),
        }
    }

    fn reap(&mut self, args: &[&str]) -> Vec<String> {
        let time_ms: i64 = args[0].strip_prefix("t=").expect("reap t=T").parse().unwrap();
        let paths = if args.len() > 1 {
            args[1..].iter().map(|p| p.to_string()).collect()
        } else {
            self.tree.reapable(time_ms, 100)
        };
        let saved = std::mem::replace(&mut self.time_ms, time_ms);
        let output = self.txn(TxnOp::Reap { paths });
        self.time_ms = saved;
        output
    }

    fn txn(&mut self, op: TxnOp) -> Vec<String> {
        let zxid = self.tree.last_zxid() + 1;
        let digest = self.tree.digest();
        let txn =
            Txn { auth: self.auth.clone(), zxid, time_ms: self.time_ms, session: self.session, op };
        let result = self.tree.apply(&txn);
        assert_eq!(self.tree.digest(), self.tree.recompute_digest(), "zxid {zxid}");
        match result {
            Ok(applied) => show_applied(zxid, &applied),
            Err(e) => {
                assert_eq!(self.tree.digest(), digest, "failed zxid {zxid} changed the digest");
                vec![format!("error zxid={zxid}: {e}")]
            }
        }
    }

    /// Every node, depth first in name order: `path "data" stat`.
    fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec!["/".to_owned()];
        while let Some(path) = stack.pop() {
            let (data, stat) = self.tree.get(&path).unwrap();
            out.push(format!("{path} {} {}", show_data(&data), show_stat(&stat)));
            let (names, _) = self.tree.children(&path).unwrap();
            let prefix = if path == "/" { String::new() } else { path.clone() };
            stack.extend(names.iter().rev().map(|n| format!("{prefix}/{n}")));
        }
        out
    }

    /// The tree survives a snapshot round trip with the same contents and digest.
    pub fn check_snapshot_round_trip(&self) {
        let decoded = DataTree::decode_snapshot(&self.tree.encode_snapshot()).unwrap();
        assert_eq!(decoded.digest(), self.tree.digest());
        assert_eq!(decoded.last_zxid(), self.tree.last_zxid());
        assert!(decoded == self.tree);
    }
}

fn parse_create(args: &[&str], auth: &Auth) -> CreateOp {
    let (mut sequential, mut ephemeral, mut container, mut ttl_ms) = (false, false, false, 0);
    let mut ttl_override = None;
    let mut acl_text = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "-s" => sequential = true,
            "-e" => ephemeral = true,
            "-c" => container = true,
            "-t" => ttl_ms = args.next().unwrap().parse().unwrap(),
            "--ttl-ms" => ttl_override = Some(args.next().unwrap().parse().unwrap()),
            "--acl" => acl_text = Some(*args.next().unwrap()),
            other => rest.push(other),
        }
    }
    let mode = match (sequential, ephemeral, container, ttl_ms != 0) {
        (false, false, false, false) => CreateMode::Persistent,
        (true, false, false, false) => CreateMode::PersistentSequential,
        (false, true, false, false) => CreateMode::Ephemeral,
        (true, true, false, false) => CreateMode::EphemeralSequential,
        (false, false, true, false) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (true, false, false, true) => CreateMode::PersistentSequentialWithTtl,
        flags => panic!("unsupported create flags {flags:?}"),
    };
    let data = rest.get(1).map_or(Bytes::new(), |d| Bytes::copy_from_slice(d.as_bytes()));
    let ttl_ms = ttl_override.unwrap_or(ttl_ms);
    let acl = acl_text.map_or_else(open_acl, |text| concrete_acl(rest[0], text, auth));
    CreateOp { acl, path: rest[0].to_owned(), data, mode, ttl_ms }
}

/// The ACL as the server would log it: fixed up with the caller's identities, or
/// as given when fixup refuses it (then `apply` must refuse it too).
fn concrete_acl(path: &str, text: &str, auth: &Auth) -> Acl {
    let given = parse_acl(text).unwrap();
    fixup(path, &given, auth).unwrap_or(given)
}

/// `digest:USER:PASSWORD` (made into the digest id, as a login does), `super`, or
/// any other `scheme:id` as it is.
fn parse_identity(text: &str) -> Id {
    if text == "super" {
        return Id::super_user();
    }
    let (scheme, id) = text.split_once(':').expect("scheme:id");
    match (scheme, id.split_once(':')) {
        ("digest", Some((user, password))) => Id::new("digest", digest_id(user, password)),
        _ => Id::new(scheme, id),
    }
}

fn parse_quota(args: &[&str]) -> QuotaLimits {
    let mut limits = QuotaLimits::default();
    for pair in args.chunks(2) {
        let value = Some(pair[1].parse().unwrap());
        match pair[0] {
            "-n" => limits.count_soft = value,
            "-b" => limits.bytes_soft = value,
            "-N" => limits.count_hard = value,
            "-B" => limits.bytes_hard = value,
            other => panic!("unknown quota flag {other:?}"),
        }
    }
    limits
}

fn show_limits(limits: &QuotaLimits) -> String {
    let show = |limit: Option<u64>| limit.map_or("-".to_owned(), |l| l.to_string());
    format!(
        "limits n={} b={} N={} B={}",
        show(limits.count_soft),
        show(limits.bytes_soft),
        show(limits.count_hard),
        show(limits.bytes_hard)
    )
}

fn parse_set(args: &[&str]) -> SetDataOp {
    let (path, version) = parse_path_version(&[&[args[0]], &args[2..]].concat());
    SetDataOp { path, data: Bytes::copy_from_slice(args[1].as_bytes()), version }
}

fn parse_path_version(args: &[&str]) -> (String, i32) {
    let version = match args.get(1..) {
        Some(["-v", v]) => v.parse().unwrap(),
        Some([]) | None => -1,
        Some(other) => panic!("unexpected arguments {other:?}"),
    };
    (args[0].to_owned(), version)
}

fn parse_multi_op(line: &str, auth: &Auth) -> MultiOp {
    let words: Vec<&str> = line.split_whitespace().collect();
    let args = &words[1..];
    match words[0] {
        "create" => MultiOp::Create(parse_create(args, auth)),
        "set" => MultiOp::SetData(parse_set(args)),
        "delete" => {
            let (path, version) = parse_path_version(args);
            MultiOp::Delete(DeleteOp { path, version })
        }
        "check" => {
            let (path, version) = parse_path_version(args);
            MultiOp::Check(CheckOp { path, version })
        }
        other => panic!("unknown multi op {other:?}"),
    }
}

fn show_applied(zxid: u64, applied: &Applied) -> Vec<String> {
    let mut out = vec![format!("ok zxid={zxid}: {}", show_result(&applied.result))];
    if let OpResult::Multi(results) = &applied.result {
        out.extend(results.iter().enumerate().map(|(i, r)| format!("  [{i}] {}", show_result(r))));
    }
    out.extend(applied.changes.iter().map(|c| format!("  > {:?} {}", c.kind, c.path)));
    out.extend(applied.quota_warnings.iter().map(|w| {
        format!(
            "  ! soft quota exceeded on {}: {} count={} bytes={}",
            w.quota_path,
            show_limits(&w.limits),
            w.usage.count,
            w.usage.bytes
        )
    }));
    out
}

fn show_result(result: &OpResult) -> String {
    match result {
        OpResult::Created { path, .. } => format!("created {path}"),
        OpResult::Deleted => "deleted".to_owned(),
        OpResult::SetData { stat } => format!("set version={}", stat.version),
        OpResult::Checked => "checked".to_owned(),
        OpResult::Multi(results) => format!("multi of {}", results.len()),
        OpResult::SessionCreated => "session created".to_owned(),
        OpResult::SessionClosed => "session closed".to_owned(),
        OpResult::Reaped { paths } => format!("reaped [{}]", paths.join(" ")),
        OpResult::AclSet { stat } => format!("acl set aversion={}", stat.aversion),
        OpResult::QuotaSet => "quota set".to_owned(),
        OpResult::QuotaRemoved => "quota removed".to_owned(),
        OpResult::ConfigSet { stat } => format!("config set version={}", stat.version),
    }
}

fn show_data(data: &Bytes) -> String {
    format!("{:?}", String::from_utf8_lossy(data))
}

fn show_stat(s: &Stat) -> String {
    format!(
        "czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} aversion={} \
         owner={} len={} children={}",
        s.czxid,
        s.mzxid,
        s.pzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}
