//! What the tasks of a running server share: the tree, the counters, and a few
//! facts for the admin port.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use baton_api::admin::Role;
use baton_znode::{DataTree, Limits, SnapshotAbandoned};

use crate::{auth::Authenticator, disk::DiskGuard, metrics::Metrics, session::SessionHub};

/// This server's place in its ensemble, as `/status` reports it (the driver
/// updates it after every round; a server without peers leads its ensemble of one).
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub(crate) role: Role,
    pub(crate) leader: Option<u64>,
    /// In the broadcast phase: serving clients.
    pub(crate) broadcasting: bool,
    pub(crate) accepted_epoch: u32,
    pub(crate) current_epoch: u32,
    /// Last durable log entry.
    pub(crate) logged_zxid: u64,
    /// Highest zxid known committed.
    pub(crate) committed_zxid: u64,
    /// Every member: id and peer address.
    pub(crate) peers: std::sync::Arc<[(u64, String)]>,
    /// See `Ensemble::damaged`.
    pub(crate) damaged: bool,
    /// The configuration in force (see `crate::membership`).
    pub(crate) config: std::sync::Arc<baton_quorum::zab::Membership>,
    /// The version of a configuration in flight, if any.
    pub(crate) config_pending: Option<u64>,
    /// The configuration in force does not name this member.
    pub(crate) removed: bool,
    /// `config` as `/baton/config` (and ZooKeeper's `/zookeeper/config`) hold it.
    pub(crate) config_text: bytes::Bytes,
}

/// Nodes a snapshot writes per hold of the tree's read lock: about a millisecond
/// of walk, which is the longest a write waits for a snapshot.
const SNAPSHOT_SLICE_NODES: usize = 4096;

/// A snapshot of the tree and what writing it cost.
#[derive(Debug)]
pub(crate) struct WrittenSnapshot {
    pub(crate) zxid: u64,
    pub(crate) data: Vec<u8>,
    /// Holds of the read lock, and the longest of them.
    pub(crate) slices: usize,
    pub(crate) longest_slice: Duration,
    /// Nodes changed while it was written, kept as they were for it.
    pub(crate) recorded: usize,
}

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotWriteError {
    #[error("the tree is poisoned (an apply panicked)")]
    Poisoned,
    #[error(transparent)]
    Abandoned(#[from] SnapshotAbandoned),
}

/// How many committed txns a member may have still to apply and count as ready.
pub(crate) const READY_LAG_MAX: u64 = 1_000;

/// State shared by the driver, the gRPC handlers, the reaper, the snapshotter and
/// the admin port.
///
/// The tree sits behind a `RwLock` so that reads never wait for the driver's queue.
/// Only the driver takes the write lock to change the tree, and it holds it for a
/// whole batch of applies: whoever holds the read lock therefore sees the tree at a
/// batch boundary (where a snapshot begins).
#[derive(Debug)]
pub(crate) struct Shared {
    tree: RwLock<DataTree>,
    pub(crate) metrics: Metrics,
    pub(crate) sessions: SessionHub,
    pub(crate) limits: Limits,
    pub(crate) data_dir: PathBuf,
    pub(crate) client_addr: SocketAddr,
    epoch: AtomicU32,
    serving: AtomicBool,
    /// This server's id (the top byte of the session ids it hands out).
    pub(crate) server_id: u8,
    membership: Mutex<Membership>,
    /// Snapshots are written one at a time (the tree keeps what one needs).
    snapshot_writer: Mutex<()>,
    /// Free space on the data directory against `--disk-reserve-bytes`.
    pub(crate) disk: DiskGuard,
    /// Checks credentials (`--super-digest`, `--digest-users`).
    pub(crate) auth: Authenticator,
}

/// The tree cannot be read: the driver panicked while applying (a bug), and the
/// server is on its way down.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreePoisoned;

impl Shared {
    pub(crate) fn new(
        tree: DataTree,
        limits: Limits,
        data_dir: PathBuf,
        client_addr: SocketAddr,
        epoch: u32,
        tick_ms: u64,
        server_id: u8,
    ) -> Shared {
        let membership = Membership {
            role: Role::Looking,
            leader: None,
            broadcasting: false,
            accepted_epoch: 0,
            current_epoch: 0,
            logged_zxid: 0,
            committed_zxid: 0,
            peers: std::sync::Arc::new([]),
            damaged: false,
            config: std::sync::Arc::new(baton_quorum::zab::Membership::new(
                baton_quorum::Zxid::ZERO,
                Vec::new(),
            )),
            config_pending: None,
            removed: false,
            config_text: bytes::Bytes::new(),
        };
        Shared {
            sessions: SessionHub::new(server_id, tick_ms, &tree),
            server_id,
            membership: Mutex::new(membership),
            snapshot_writer: Mutex::new(()),
            tree: RwLock::new(tree),
            metrics: Metrics::default(),
            limits,
            disk: DiskGuard::new(data_dir.clone(), 0),
            auth: Authenticator::open(),
            data_dir,
            client_addr,
            epoch: AtomicU32::new(epoch),
            serving: AtomicBool::new(false),
        }
    }

    /// Refuse writes while less than `reserve` bytes are free for the data directory.
    pub(crate) fn with_authenticator(mut self, auth: Authenticator) -> Shared {
        self.auth = auth;
        self
    }

    pub(crate) fn with_disk_reserve(mut self, reserve: u64) -> Shared {
        self.disk = DiskGuard::new(self.data_dir.clone(), reserve);
        self
    }

    pub(crate) fn read_tree(&self) -> Result<RwLockReadGuard<'_, DataTree>, TreePoisoned> {
        self.tree.read().map_err(|_| TreePoisoned)
    }

    /// For the driver only (see the type's docs).
    pub(crate) fn write_tree(&self) -> RwLockWriteGuard<'_, DataTree> {
        // Only the driver writes; if an earlier apply panicked, the driver is gone
        // and cannot be here again.
        self.tree.write().unwrap_or_else(|poisoned| {
            panic!("the tree lock is poisoned: an apply panicked earlier ({poisoned})")
        })
    }

    /// The tree as a snapshot at its last applied zxid, written in slices of
    /// [`SNAPSHOT_SLICE_NODES`] under the read lock with writes applied between
    /// them (`baton_znode::SnapshotEncoder`): no write waits for more than a
    /// slice. Taking the write lock to begin and to finish is the only exception
    /// to "only the driver writes": neither changes the tree's contents. Blocks;
    /// call it on a blocking thread.
    pub(crate) fn write_snapshot(&self) -> Result<WrittenSnapshot, SnapshotWriteError> {
        let _one = self.snapshot_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut encoder = self.write_tree().begin_snapshot();
        let (mut slices, mut longest_slice) = (0, Duration::ZERO);
        loop {
            encoder.reserve_for(SNAPSHOT_SLICE_NODES);
            let tree = self.read_tree().map_err(|_| SnapshotWriteError::Poisoned)?;
            let started = Instant::now();
            let done = tree.continue_snapshot(&mut encoder, SNAPSHOT_SLICE_NODES)?;
            longest_slice = longest_slice.max(started.elapsed());
            slices += 1;
            drop(tree);
            if done {
                break;
            }
        }
        let zxid = encoder.zxid();
        let mut tree = self.write_tree();
        let recorded = tree.snapshot_recorded();
        let data = tree.finish_snapshot(encoder)?;
        Ok(WrittenSnapshot { zxid, data, slices, longest_slice, recorded })
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn set_epoch(&self, epoch: u32) {
        self.epoch.store(epoch, Ordering::Release);
    }

    pub(crate) fn membership(&self) -> Membership {
        self.membership.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn set_membership(&self, membership: Membership) {
        *self.membership.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = membership;
    }

    /// True when this server may expire sessions: only the leader does, and only in
    /// broadcast. Before that its deadlines are stale (every session gets a full
    /// timeout when it is established) and the close it would log cannot be
    /// proposed anyway.
    pub(crate) fn expires_sessions(&self) -> bool {
        let membership = self.membership();
        membership.role == Role::Leading && membership.broadcasting
    }

    pub(crate) fn serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// True when reads may be answered from this member's tree: only while it serves
    /// (a member out of broadcast may be arbitrarily stale). The `bug-stale-reads`
    /// build answers them always, to show the nemesis catches that.
    pub(crate) fn serves_reads(&self) -> bool {
        self.serving() || cfg!(feature = "bug-stale-reads")
    }

    /// Ready for clients (Kubernetes' readiness): serving, and no more than
    /// [`READY_LAG_MAX`] committed txns short of applied. The tree's lock is only
    /// tried: a member whose driver holds it is busy applying, not idle.
    pub(crate) fn ready(&self) -> bool {
        if !self.serving() {
            return false;
        }
        let committed = self.membership().committed_zxid;
        match self.tree.try_read() {
            Ok(tree) => committed.saturating_sub(tree.last_zxid()) <= READY_LAG_MAX,
            Err(_) => true,
        }
    }

    pub(crate) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }
}
