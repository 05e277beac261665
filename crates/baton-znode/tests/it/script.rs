//! The golden-script language. Each command runs against one tree; txns get the
//! next zxid and the current time (`time T`) and session (`session N`).
//!
//! ```text
//! time T | session N                      (no output)
//! open-session N [TIMEOUT] | close-session N
//! create [-s] [-e] [-c] [-t TTL] [--ttl-ms RAW] PATH [DATA]   (--ttl-ms: a TTL
//!                                          that does not choose the mode)
//! set PATH DATA [-v VERSION] | delete PATH [-v VERSION]
//! multi                                    followed by indented create/set/delete/check lines
//! reap t=T [PATH...]                       (no paths: whatever reapable(T) lists)
//! get PATH | ls PATH | stat PATH | sessions | ephemerals N | reapable T [MAX] | dump
//! ```
//!
//! After every txn the runner checks the incremental digest against a recompute,
//! and that a failed txn left the digest unchanged.

use baton_znode::{
    Applied, CheckOp, CreateMode, CreateOp, DataTree, DeleteOp, MultiOp, OpResult, SetDataOp, Stat,
    Txn, TxnOp,
};
use bytes::Bytes;

pub struct Runner {
    tree: DataTree,
    time_ms: i64,
    session: u64,
}

impl Default for Runner {
    fn default() -> Self {
        Runner { tree: DataTree::new(), time_ms: 1_000, session: 0 }
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
            "open-session" => {
                let timeout_ms = args.get(1).map_or(10_000, |t| t.parse().unwrap());
                self.txn(TxnOp::CreateSession {
                    session: args[0].parse().unwrap(),
                    timeout_ms,
                    password: 7,
                })
            }
            "close-session" => self.txn(TxnOp::CloseSession { session: args[0].parse().unwrap() }),
            "create" => self.txn(TxnOp::Create(parse_create(args))),
            "set" => self.txn(TxnOp::SetData(parse_set(args))),
            "delete" => {
                let (path, version) = parse_path_version(args);
                self.txn(TxnOp::Delete(DeleteOp { path, version }))
            }
            "multi" => {
                let ops = input[1..].iter().map(|line| parse_multi_op(line)).collect();
                self.txn(TxnOp::Multi(ops))
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
        let txn = Txn {
            auth: baton_znode::acl::Auth::none(),
            zxid,
            time_ms: self.time_ms,
            session: self.session,
            op,
        };
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

fn parse_create(args: &[&str]) -> CreateOp {
    let (mut sequential, mut ephemeral, mut container, mut ttl_ms) = (false, false, false, 0);
    let mut ttl_override = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "-s" => sequential = true,
            "-e" => ephemeral = true,
            "-c" => container = true,
            "-t" => ttl_ms = args.next().unwrap().parse().unwrap(),
            "--ttl-ms" => ttl_override = Some(args.next().unwrap().parse().unwrap()),
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
    CreateOp { acl: baton_znode::acl::open_acl(), path: rest[0].to_owned(), data, mode, ttl_ms }
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

fn parse_multi_op(line: &str) -> MultiOp {
    let words: Vec<&str> = line.split_whitespace().collect();
    let args = &words[1..];
    match words[0] {
        "create" => MultiOp::Create(parse_create(args)),
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
