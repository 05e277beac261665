//! The apply backlog and the writes waiting on it: committed entries are applied
//! in slices of at most [`APPLY_SLICE`] under the tree's write lock (watch events
//! queued as they apply), and every write or sync waiting for a zxid is answered
//! once this member has applied it.

use std::time::Duration;

use baton_quorum::{Zxid, zab::LogView};
use baton_znode::DecodeError;

use super::{
    cache::LOG_CACHE_BYTES_MAX,
    driver::{Book, Driver},
    transport::Pending,
};
use crate::{
    ServerError,
    metrics::{Metrics, Stage},
    write_queue::{TxnReply, WriteError},
};

/// Results of recently applied txns, for forwarded writes whose reply from the
/// leader arrives after the commit did (a window of milliseconds as a rule; a reply
/// later than 4,096 txns gets "committed, result no longer known"). A multi's result
/// holds a path and Stat per op: 65,536 of them held ~90 MB per member after a bulk
/// load of 1M znodes in multis of 100.
const RECENT_RESULTS_MAX: usize = 4_096;
/// How long applying committed entries may hold the tree's write lock in one go
/// before the driver looks at its other work (at least one entry is applied).
pub(super) const APPLY_SLICE: Duration = Duration::from_millis(10);

impl Driver {
    /// Soft quota limits only warn: a log line each and a counter.
    fn soft_quota_warnings(&self, zxid: u64, warnings: &[baton_znode::QuotaWarning]) {
        for warning in warnings {
            Metrics::add(&self.shared.metrics.quota_soft_exceeded_total, 1);
            tracing::warn!(
                quota = %warning.quota_path,
                zxid = %format_args!("{zxid:#x}"),
                count = warning.usage.count,
                bytes = warning.usage.bytes,
                count_soft = ?warning.limits.count_soft,
                bytes_soft = ?warning.limits.bytes_soft,
                "soft quota exceeded"
            );
        }
    }

    /// Applies backlog entries, oldest first, for up to [`APPLY_SLICE`] (at least one).
    pub(super) fn apply_slice(&mut self, book: &mut Book) -> Result<(), ServerError> {
        let (mut applied, mut failed) = (0, 0);
        let started = std::time::Instant::now();
        let logged = self.cache.last_logged();
        let mut tree = self.shared.write_tree();
        while let Some(entry) = book.backlog.pop_front() {
            let zxid = entry.zxid.as_u64();
            assert!(
                entry.zxid <= logged,
                "applying {} beyond the durable log ({logged})",
                entry.zxid
            );
            let txn = match crate::membership::entry_txn(zxid, &entry.data) {
                Ok(txn) if txn.zxid == zxid => txn,
                Ok(txn) => {
                    return Err(self.bad_record(zxid, format!("it holds txn {:#x}", txn.zxid)));
                }
                Err(error) => return Err(self.bad_record(zxid, error.to_string())),
            };
            let result = tree.apply(&txn);
            self.shared.sessions.applied(&tree, &txn.op, zxid, &result);
            if let Ok(applied) = &result {
                self.soft_quota_warnings(zxid, &applied.quota_warnings);
            }
            let result = result.map(|a| a.result);
            applied += 1;
            failed += u64::from(result.is_err());
            book.recent.push_back((zxid, result));
            if book.recent.len() > RECENT_RESULTS_MAX {
                book.recent.pop_front();
            }
            if started.elapsed() >= APPLY_SLICE {
                break;
            }
        }
        let applied_zxid = tree.last_zxid();
        drop(tree);
        book.note_applied(applied_zxid);
        let now = std::time::Instant::now();
        for (marks, stage) in
            [(&mut book.committed_at, Stage::Apply), (&mut book.answered_at, Stage::Reply)]
        {
            while let Some(&(zxid, at)) = marks.front()
                && zxid <= applied_zxid
            {
                self.shared.metrics.stage(stage, now.duration_since(at));
                marks.pop_front();
            }
        }
        Metrics::add(&self.shared.metrics.writes_total, applied);
        Metrics::add(&self.shared.metrics.writes_failed_total, failed);
        let rest = book.waiting.split_off(&(applied_zxid + 1));
        let done = std::mem::replace(&mut book.waiting, rest);
        for (zxid, pendings) in done {
            for pending in pendings {
                answer(book, zxid, pending, applied_zxid);
            }
        }
        self.cache.trim(Zxid::from_u64(applied_zxid), self.cache_keep, LOG_CACHE_BYTES_MAX);
        self.snapshots.maybe_request();
        Ok(())
    }

    /// A committed entry that does not decode as its own txn: the log (or a peer)
    /// handed over something that passed its checksum but is not Baton's.
    fn bad_record(&self, zxid: u64, reason: String) -> ServerError {
        ServerError::BadLogRecord {
            dir: self.shared.data_dir.clone(),
            zxid,
            source: DecodeError::Invalid { offset: 0, reason },
        }
    }

    /// Answers `pending` once this member has applied `zxid` (at once if it has).
    pub(super) fn wait_for(&self, book: &mut Book, zxid: u64, pending: Pending) {
        let applied = book.applied;
        if zxid <= applied {
            answer(book, zxid, pending, applied);
        } else {
            book.waiting.entry(zxid).or_default().push(pending);
        }
    }
}

/// Answers a write whose zxid this member has applied (`applied` is its last).
fn answer(book: &Book, zxid: u64, pending: Pending, applied: u64) {
    match pending {
        Pending::Txn(reply) => {
            let result = book.recent.iter().rev().find(|(z, _)| *z == zxid).map(|(_, r)| r.clone());
            let outcome = match result {
                Some(result) => Ok(TxnReply { zxid, applied_zxid: applied, result }),
                None => Err(WriteError::Unknown(format!(
                    "txn {zxid:#x} was committed but its result is no longer known here"
                ))),
            };
            let _ = reply.send(outcome);
        }
        Pending::Sync(reply) => {
            let _ = reply.send(Ok(applied));
        }
    }
}

/// Fails every waiting write with `error`.
pub(super) fn fail_waiting(book: &mut Book, error: &WriteError) {
    for (_, pendings) in std::mem::take(&mut book.waiting) {
        for pending in pendings {
            pending.fail(error.clone());
        }
    }
}
