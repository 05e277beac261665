//! Client histories and their checkers.
//!
//! Writes and synced reads go through the leader's log, so together they must be
//! linearizable per key (checked by a Wing–Gong–Lowe search over the recorded
//! invoke/return events, not by trusting the log). Local reads are served from a
//! member's applied state: they must be sequentially consistent (the value is the
//! one the agreed history holds at the zxid read) and a client never observes a
//! zxid lower than one it observed before.

use std::collections::{BTreeMap, HashSet};

/// What an operation did, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Set the key to this value.
    Write(String),
    /// Read the key (through the log: linearizable) and saw this value.
    Read(Option<String>),
}

/// One operation on one key. Times are positions in one global event sequence.
#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub kind: Kind,
    pub call: u64,
    /// `None`: the outcome is unknown (the leader went away before it answered);
    /// the write may or may not have taken effect.
    pub ret: Option<u64>,
}

/// A read served from a member's applied state.
#[derive(Debug, Clone)]
pub struct LocalRead {
    pub client: usize,
    pub key: String,
    /// The zxid the member's state was at.
    pub zxid: u64,
    pub value: Option<String>,
}

/// Checks that the operations on every key are linearizable for a register that
/// starts empty. Returns the key and a description of the first history that is not.
pub fn check_linearizable(ops: &[Op]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    for (key, ops) in by_key {
        if !linearizable(&ops) {
            let lines: Vec<String> = ops
                .iter()
                .map(|op| format!("  c{} {:?} [{}, {:?}]", op.client, op.kind, op.call, op.ret))
                .collect();
            return Err(format!("key {key} is not linearizable:\n{}", lines.join("\n")));
        }
    }
    Ok(())
}

/// Depth-first search for a linearization, with memory of dead ends: an op may
/// go next only if it was called before every other pending op with a known return
/// returned. Ops of unknown outcome may be placed anywhere after their call, or
/// never.
fn linearizable(ops: &[&Op]) -> bool {
    let must: usize = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut done = vec![false; ops.len()];
    let mut dead: HashSet<(Vec<bool>, Option<String>)> = HashSet::new();
    search(ops, &mut done, 0, must, None, &mut dead)
}

fn search(
    ops: &[&Op],
    done: &mut Vec<bool>,
    done_must: usize,
    must: usize,
    value: Option<String>,
    dead: &mut HashSet<(Vec<bool>, Option<String>)>,
) -> bool {
    if done_must == must {
        return true;
    }
    if dead.contains(&(done.clone(), value.clone())) {
        return false;
    }
    let horizon = ops
        .iter()
        .zip(done.iter())
        .filter(|(_, done)| !**done)
        .filter_map(|(op, _)| op.ret)
        .min()
        .unwrap_or(u64::MAX);
    for i in 0..ops.len() {
        if done[i] || ops[i].call >= horizon {
            continue;
        }
        let next = match &ops[i].kind {
            Kind::Write(v) => Some(v.clone()),
            Kind::Read(seen) if *seen == value => value.clone(),
            Kind::Read(_) => continue,
        };
        done[i] = true;
        let counted = done_must + usize::from(ops[i].ret.is_some());
        if search(ops, done, counted, must, next, dead) {
            return true;
        }
        done[i] = false;
    }
    dead.insert((done.clone(), value));
    false
}

/// Checks local reads against the agreed history (`(zxid, key, value)` writes in
/// log order): each read saw exactly the state at its zxid, and each client's
/// zxids never go back.
pub fn check_local_reads(
    reads: &[LocalRead],
    history: &[(u64, String, String)],
) -> Result<(), String> {
    assert!(history.windows(2).all(|w| w[0].0 < w[1].0), "the history is in zxid order");
    // Each key's writes in zxid order: a read saw the last one at or below its zxid.
    let mut writes: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for (zxid, key, value) in history {
        writes.entry(key).or_default().push((*zxid, value));
    }
    let mut last_seen: BTreeMap<usize, u64> = BTreeMap::new();
    for read in reads {
        let of_key = writes.get(read.key.as_str()).map_or(&[][..], Vec::as_slice);
        let upto = of_key.partition_point(|(zxid, _)| *zxid <= read.zxid);
        let expected = upto.checked_sub(1).map(|last| of_key[last].1.to_owned());
        if expected != read.value {
            return Err(format!(
                "client {} read {} at zxid {:#x} = {:?}, but the history holds {:?} there",
                read.client, read.key, read.zxid, read.value, expected
            ));
        }
        let seen = last_seen.entry(read.client).or_insert(0);
        if read.zxid < *seen {
            return Err(format!(
                "client {} observed zxid {:#x} after {:#x}",
                read.client, read.zxid, *seen
            ));
        }
        *seen = read.zxid;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, kind: Kind, call: u64, ret: Option<u64>) -> Op {
        Op { client, key: "k".into(), kind, call, ret }
    }

    fn w(v: &str) -> Kind {
        Kind::Write(v.into())
    }

    fn r(v: Option<&str>) -> Kind {
        Kind::Read(v.map(Into::into))
    }

    #[test]
    fn sequential_and_overlapping_histories_pass() {
        let ops = [op(0, w("a"), 1, Some(2)), op(1, r(Some("a")), 3, Some(4))];
        assert!(check_linearizable(&ops).is_ok());
        // Overlapping write and read: the read may see either value.
        let ops = [op(0, w("a"), 1, Some(4)), op(1, r(None), 2, Some(3))];
        assert!(check_linearizable(&ops).is_ok());
        let ops = [op(0, w("a"), 1, Some(4)), op(1, r(Some("a")), 2, Some(3))];
        assert!(check_linearizable(&ops).is_ok());
        // An unknown write may have happened...
        let ops = [op(0, w("a"), 1, None), op(1, r(Some("a")), 5, Some(6))];
        assert!(check_linearizable(&ops).is_ok());
        // ...or not.
        let ops = [op(0, w("a"), 1, None), op(1, r(None), 5, Some(6))];
        assert!(check_linearizable(&ops).is_ok());
    }

    #[test]
    fn stale_reads_and_lost_writes_fail() {
        // A read after an acknowledged write sees the old value.
        let ops = [op(0, w("a"), 1, Some(2)), op(1, r(None), 3, Some(4))];
        assert!(check_linearizable(&ops).is_err());
        // Two reads see values in an order no single order of writes explains.
        let ops = [
            op(0, w("a"), 1, Some(10)),
            op(1, w("b"), 1, Some(10)),
            op(2, r(Some("a")), 2, Some(3)),
            op(2, r(Some("b")), 4, Some(5)),
            op(3, r(Some("b")), 2, Some(3)),
            op(3, r(Some("a")), 4, Some(5)),
        ];
        assert!(check_linearizable(&ops).is_err());
        // A value nobody wrote.
        let ops = [op(0, r(Some("z")), 1, Some(2))];
        assert!(check_linearizable(&ops).is_err());
    }

    #[test]
    fn local_reads_must_match_the_history_and_never_go_back() {
        let history = vec![(1, "k".into(), "a".into()), (3, "k".into(), "b".into())];
        let read = |zxid, value: Option<&str>| LocalRead {
            client: 0,
            key: "k".into(),
            zxid,
            value: value.map(Into::into),
        };
        assert!(check_local_reads(&[read(2, Some("a")), read(3, Some("b"))], &history).is_ok());
        assert!(check_local_reads(&[read(3, Some("a"))], &history).is_err());
        assert!(check_local_reads(&[read(3, Some("b")), read(2, Some("a"))], &history).is_err());
    }
}
