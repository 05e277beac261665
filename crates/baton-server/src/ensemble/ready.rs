//! Carrying out the node's `Ready` in baton-quorum's order (see `driver`): send
//! what may leave now, persist with one flush, send the rest, queue the committed
//! entries for applying, report what is durable. Also the snapshots a SNAP needs:
//! encoded for a follower, decoded from a leader, both on blocking threads.

use baton_log::{LogEntry, Snapshot};
use baton_quorum::{
    Zxid,
    zab::{LogView, Ready},
};
use baton_znode::DataTree;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    driver::{Book, Driver},
    transport::{Forwarded, Pending},
};
use crate::{
    ServerError,
    metrics::{Metrics, Stage},
    recovery::meta_of,
    storage::Storage,
};

/// Flushes of the log in flight at once; a round with more to append waits for the
/// oldest (the storage thread serves them in order anyway).
pub(super) const FLUSHES_IN_FLIGHT_MAX: usize = 4;

/// A flush of the log in flight and what waits for it.
#[derive(Debug)]
pub(super) struct Flush {
    pub(super) answer: tokio::sync::oneshot::Receiver<Result<(), baton_log::LogError>>,
    pub(super) entries: Vec<baton_quorum::zab::Entry>,
    /// Messages that may leave only once these entries (and all before) are durable.
    pub(super) persisted: Vec<baton_quorum::zab::Envelope>,
    pub(super) started: std::time::Instant,
}

impl Driver {
    /// Carries out the node's `Ready`s until it is quiet; then publishes the
    /// member's state and starts encoding a snapshot if a SNAP asked for one.
    pub(super) async fn process(
        &mut self,
        book: &mut Book,
        forwarded: &mpsc::Sender<Forwarded>,
    ) -> Result<(), ServerError> {
        loop {
            let ready = self.node.ready();
            if ready.is_empty() {
                break;
            }
            self.handle(book, ready).await?;
            let durable = self.cache.last_logged();
            self.node.advance(durable);
        }
        if book.damaged && !self.node.status().damaged {
            // The node took a leader's history (durable above, before its ack left):
            // whatever the disk lost is back, or was never committed.
            self.storage.repaired().await?;
            book.damaged = false;
            Metrics::set(&self.shared.metrics.storage_damaged, 0);
            Metrics::add(&self.shared.metrics.storage_repairs_total, 1);
            tracing::info!(
                logged = %self.cache.last_logged(),
                "storage repaired: the log holds the leader's history again; this member votes again"
            );
        }
        // The round's proposals are sent: a sync arriving from now on needs a new one.
        book.barrier = None;
        self.on_role(book, forwarded);
        if book.encoding.is_none() && self.cache.take_snapshot_wanted() {
            let shared = std::sync::Arc::clone(&self.shared);
            book.encoding = Some(tokio::task::spawn_blocking(move || {
                let written = shared.write_snapshot().map_err(|error| ServerError::TaskFailed {
                    task: "snapshot encoder",
                    message: error.to_string(),
                })?;
                Ok((Zxid::from_u64(written.zxid), Bytes::from(written.data)))
            }));
        }
        Ok(())
    }

    async fn handle(&mut self, book: &mut Book, ready: Ready) -> Result<(), ServerError> {
        let Ready {
            messages,
            epochs,
            truncate_after,
            snapshot,
            entries,
            persisted_messages,
            committed,
            reads,
        } = ready;
        for (ctx, index) in reads {
            if let Some((reply, _)) = book.reads.remove(&ctx) {
                self.wait_for(book, index.as_u64(), Pending::Sync(reply));
            }
        }
        for envelope in &messages {
            self.outbound.send(envelope);
        }
        // Appends are pipelined: the flush is queued and the round goes on (more
        // proposals, ACKs taken, commits applied) while the disk works; what must wait
        // for it (ACKs, the entries' place in the log cache, the node's durable point)
        // waits in `book.flushes`. The rarer changes run in order, after every flush
        // in flight.
        let in_order = epochs.is_some() || truncate_after.is_some() || snapshot.is_some();
        if in_order {
            self.drain_flushes(book).await?;
        }
        if let Some(epochs) = epochs {
            self.storage.set_meta(meta_of(epochs)).await?;
            self.shared.set_epoch(epochs.current_epoch);
        }
        if let Some(after) = truncate_after {
            tracing::info!(after = %after, "truncating the log to the leader's history");
            self.storage.truncate_after(after.as_u64()).await?;
            self.cache.truncate_after(after);
        }
        if let Some((zxid, data)) = snapshot {
            self.install(book, zxid, data).await?;
        }
        let mut persisted_messages = Some(persisted_messages);
        if !entries.is_empty() {
            while book.flushes.len() >= FLUSHES_IN_FLIGHT_MAX {
                self.finish_flush(book).await?;
            }
            let logged: Vec<LogEntry> = entries
                .iter()
                .map(|e| LogEntry { zxid: e.zxid.as_u64(), data: e.data.clone() })
                .collect();
            let started = std::time::Instant::now();
            let answer = self.storage.submit_commit(logged).await?;
            let persisted = persisted_messages.take().unwrap_or_default();
            book.flushes.push_back(Flush { answer, entries, persisted, started });
            if in_order {
                self.drain_flushes(book).await?;
            }
        }
        if let Some(persisted) = persisted_messages {
            // They rely on everything appended so far: after the last flush in flight.
            match book.flushes.back_mut() {
                Some(last) => last.persisted.extend(persisted),
                None => {
                    for envelope in &persisted {
                        self.outbound.send(envelope);
                    }
                }
            }
        }
        if let Some(last) = committed.last().map(|e| e.zxid.as_u64()) {
            let now = std::time::Instant::now();
            while let Some(&(zxid, proposed)) = book.proposed.front()
                && zxid <= last
            {
                self.shared.metrics.stage(Stage::Quorum, now.duration_since(proposed));
                book.proposed.pop_front();
            }
            book.committed_at.push_back((last, now));
            book.backlog.extend(committed);
            self.apply_slice(book)?;
        }
        Ok(())
    }

    /// Waits for the oldest flush in flight and carries out what waited for it.
    pub(super) async fn finish_flush(&mut self, book: &mut Book) -> Result<(), ServerError> {
        if book.flushes.is_empty() {
            return Ok(());
        }
        let answer = super::driver::oldest_flush(&mut book.flushes).await;
        self.flush_done(book, answer)
    }

    /// Waits for every flush in flight.
    pub(super) async fn drain_flushes(&mut self, book: &mut Book) -> Result<(), ServerError> {
        while !book.flushes.is_empty() {
            self.finish_flush(book).await?;
        }
        Ok(())
    }

    /// The oldest flush in flight answered `answer`: its entries are durable (or the
    /// server stops). They join the log cache, the ACKs and other messages that
    /// waited for them leave, and the node learns the new durable point.
    pub(super) fn flush_done(
        &mut self,
        book: &mut Book,
        answer: Result<Result<(), baton_log::LogError>, tokio::sync::oneshot::error::RecvError>,
    ) -> Result<(), ServerError> {
        let flush = book.flushes.pop_front().expect("a flush in flight");
        Storage::committed(answer)?;
        self.shared.metrics.stage(Stage::Log, flush.started.elapsed());
        self.cache.append(&flush.entries);
        Metrics::add(&self.shared.metrics.fsyncs_total, 1);
        Metrics::add(&self.shared.metrics.batches_total, 1);
        let bytes = flush.entries.iter().map(|e| e.data.len() as u64).sum();
        self.snapshots.logged(flush.entries.len() as u64, bytes);
        for envelope in &flush.persisted {
            self.outbound.send(envelope);
        }
        self.node.advance(self.cache.last_logged());
        Ok(())
    }

    /// A SNAP from the leader: the whole state is replaced. The snapshot is
    /// decoded (and checked) on a blocking thread before anything is touched.
    async fn install(
        &mut self,
        book: &mut Book,
        zxid: Zxid,
        data: Bytes,
    ) -> Result<(), ServerError> {
        let bytes = data.clone();
        let decoded = tokio::task::spawn_blocking(move || DataTree::decode_snapshot(&bytes))
            .await
            .map_err(|error| ServerError::TaskFailed {
                task: "snapshot decoder",
                message: error.to_string(),
            })?;
        let tree = decoded.map_err(|source| ServerError::BadSnapshot {
            dir: self.shared.data_dir.clone(),
            zxid: zxid.as_u64(),
            source,
        })?;
        tracing::info!(zxid = %zxid, nodes = tree.node_count(), "installing the leader's snapshot");
        self.storage.install(Snapshot { zxid: zxid.as_u64(), data }).await?;
        self.cache.reset(zxid);
        let now = self.shared.sessions.now_ms();
        {
            let mut tracker = self.shared.sessions.tracker();
            for session in tree.sessions() {
                tracker.add(session.session, u64::from(session.timeout_ms), now);
            }
        }
        // The old tree is freed off the runtime too (millions of nodes).
        let old = std::mem::replace(&mut *self.shared.write_tree(), tree);
        tokio::task::spawn_blocking(move || drop(old));
        // The node hands out no snapshot below what it handed out to apply.
        assert!(
            book.backlog.back().is_none_or(|e| e.zxid <= zxid),
            "a snapshot at {zxid} below committed entries handed out to apply"
        );
        book.backlog.clear();
        book.note_applied(zxid.as_u64());
        Ok(())
    }

    /// A snapshot for a SNAP is encoded: the node takes it at its next tick.
    pub(super) fn snapshot_encoded(
        &mut self,
        encoded: Result<Result<(Zxid, Bytes), ServerError>, tokio::task::JoinError>,
    ) {
        match encoded {
            Ok(Ok((zxid, data))) => {
                tracing::info!(zxid = %zxid, bytes = data.len(), "encoded a snapshot to sync a follower");
                self.cache.set_prepared_snapshot(zxid, data, std::time::Instant::now());
            }
            Ok(Err(error)) => tracing::error!(%error, "cannot encode a snapshot for a follower"),
            Err(error) => tracing::error!(%error, "the snapshot encoder failed"),
        }
    }
}
