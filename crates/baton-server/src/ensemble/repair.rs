//! Repairing what the scrubber found damaged while this member runs. The member
//! still holds good copies: its tree (everything applied) and its log cache (every
//! durable entry after the snapshot it started from or installed, trimmed only of
//! applied entries), so no peer is needed.

use baton_log::{Damage, DamagedPart, LogEntry};
use baton_quorum::Zxid;

use super::driver::Driver;
use crate::{ServerError, metrics::Metrics};

impl Driver {
    /// Repairs one damaged part: a log record the cache holds is rewritten from
    /// there, with every entry after it; an older record or a snapshot is replaced by
    /// a new snapshot of the tree and a purge that keeps only it; a sled blob file,
    /// whose contents sled does not name, by both. A repair that cannot start now (a
    /// snapshot is already pending) waits for the scrubber's next pass.
    pub(super) async fn repair(&mut self, damage: Damage) -> Result<(), ServerError> {
        match damage.what {
            DamagedPart::LogRecord { first_zxid } if first_zxid > self.cache.base().as_u64() => {
                let from = Zxid::from_u64(first_zxid);
                match self.rewrite_from_memory(from).await? {
                    Some((first, count)) if first == first_zxid => {
                        Metrics::add(&self.shared.metrics.storage_repairs_total, 1);
                        tracing::info!(zxid = %from, entries = count, "scrub: repaired the log from this member's memory");
                    }
                    _ => {
                        tracing::warn!(zxid = %from, "scrub: the damaged record is not in this member's log any more")
                    }
                }
            }
            DamagedPart::SledBlob { id } => {
                // The damaged file is garbage once everything is rewritten, until sled
                // collects it: it is not repaired twice.
                if !self.repaired_blobs.insert(id) {
                    return Ok(());
                }
                if !self.snapshots.request_repair() {
                    self.repaired_blobs.remove(&id);
                    return Ok(());
                }
                let after_base = Zxid::from_u64(self.cache.base().as_u64() + 1);
                if let Some((_, count)) = self.rewrite_from_memory(after_base).await? {
                    tracing::info!(
                        blob = id,
                        entries = count,
                        "scrub: rewrote the log from this member's memory"
                    );
                }
            }
            DamagedPart::LogRecord { .. } | DamagedPart::Snapshot { .. } => {
                if !self.snapshots.request_repair() {
                    tracing::debug!("scrub: a snapshot is pending; the next pass repairs");
                }
            }
        }
        Ok(())
    }

    /// Rewrites the stored log from `from` on with the cache's entries there;
    /// returns the first zxid rewritten and how many, or `None` if the cache holds
    /// none.
    async fn rewrite_from_memory(
        &mut self,
        from: Zxid,
    ) -> Result<Option<(u64, usize)>, ServerError> {
        let entries: Vec<LogEntry> = self
            .cache
            .entries_from(from)
            .map(|e| LogEntry { zxid: e.zxid.as_u64(), data: e.data.clone() })
            .collect();
        let Some(first) = entries.first().map(|e| e.zxid) else { return Ok(None) };
        let count = entries.len();
        self.storage.rewrite(first, entries).await?;
        Ok(Some((first, count)))
    }
}
