//! Opening sled's directory: waiting for its lock, containing its panics, and
//! refusing a directory whose data sled lost wholesale.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::LogError;
use crate::record;
use crate::sled_codec::{FORMAT, FORMAT_KEY, check_format};
use crate::sled_sync::{DiskSync, sync_dir};

/// Written beside sled's files once a new store is durably initialised.
pub const MARKER_FILE: &str = "baton-log";

/// How long `open` waits for sled's lock on its data file by default.
///
/// sled 0.34 writes IO buffers from its thread pool, and those tasks hold its data
/// file (and so its `flock`) until they return, a moment after the `Db` that
/// started them is dropped. Reopening a directory in the same process (tests,
/// simulation, a restarted driver) therefore waits for the lock to be released;
/// another live process holding it still gets [`LogError::Locked`].
pub(crate) const LOCK_WAIT_MS_DEFAULT: u64 = 2_000;
const LOCK_RETRY_MS_MAX: u64 = 20;

/// Creates `dir` if needed; a new directory's own name is made durable too.
pub(crate) fn sync_new_dir(dir: &Path, fsync: bool) -> Result<(), LogError> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    match dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(parent) if fsync => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Opens sled in `dir`, waiting up to `lock_wait` for its lock.
pub(crate) fn open_sled(dir: &Path, lock_wait: Duration) -> Result<sled::Db, LogError> {
    let deadline = Instant::now() + lock_wait;
    let mut retry_in = Duration::from_millis(1);
    let mut snapshots_discarded = false;
    loop {
        match open_sled_once(dir) {
            Err(LogError::Open { source: sled::Error::Io(error), .. }) if is_lock_busy(&error) => {
                if Instant::now() >= deadline {
                    return Err(LogError::Locked { path: dir.to_path_buf() });
                }
                std::thread::sleep(retry_in);
                retry_in = (retry_in * 2).min(Duration::from_millis(LOCK_RETRY_MS_MAX));
            }
            // sled 0.34 also panics on some damage its index file sends it to
            // ("tried to serialize Uninitialized" after a cut `db`): the same cure.
            Err(LogError::Open { source: sled::Error::Corruption { .. }, .. })
            | Err(LogError::OpenPanicked { .. })
                if !snapshots_discarded && discard_sled_snapshots(dir)? > 0 =>
            {
                snapshots_discarded = true;
            }
            other => return other,
        }
    }
}

/// Removes sled's `snap.*` files, returning how many there were.
///
/// A snap file is only sled's index of its own log, rebuilt from `db` when missing.
/// When the end of `db` was lost (a torn or damaged tail), the index can point past
/// it and sled refuses to open with `Corruption`; without the index it recovers the
/// log's valid prefix like any torn tail, which the member then completes from its
/// leader.
fn discard_sled_snapshots(dir: &Path) -> Result<usize, LogError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("snap.")) {
            tracing::warn!(
                file = %path.display(),
                "sled refused its data with this index file; removing it so sled rebuilds \
                 the index from its log"
            );
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// sled reports a held lock only as an `io::ErrorKind::Other` with this text.
fn is_lock_busy(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
        && error.to_string().contains("could not acquire lock")
}

/// sled 0.34 asserts and unwraps on some kinds of damage in its own files; such
/// a panic is caught here and becomes an error, because a bad disk is an
/// operating error, not a bug of ours.
fn open_sled_once(dir: &Path) -> Result<sled::Db, LogError> {
    let config = sled::Config::new().path(dir).cache_capacity(64 << 20);
    let path = || dir.to_path_buf();
    match panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(source)) => Err(LogError::Open { path: path(), source }),
        Err(payload) => {
            Err(LogError::OpenPanicked { path: path(), message: panic_message(&*payload) })
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Refuses a directory whose sled data vanished since it was initialised.
///
/// sled recovers a data file it cannot parse (a damaged first segment header, an
/// emptied or overwritten file) as an empty database, without an error. A server
/// that silently forgot its log could break consensus, so a new store records a
/// format key in sled and, once that is durable, a marker file of its own beside
/// sled's files. Marker present but key missing means sled lost everything.
pub(crate) fn check_identity(
    dir: &Path,
    db: &sled::Db,
    meta: &sled::Tree,
    sync: &mut DiskSync,
) -> Result<(), LogError> {
    let marker = dir.join(MARKER_FILE);
    let initialised = marker.exists();
    match meta.get(FORMAT_KEY)? {
        Some(value) => {
            if check_format(&value)? {
                meta.insert(FORMAT_KEY, record::encode(FORMAT))?;
                sync.barrier(db)?;
                tracing::info!(dir = %dir.display(), "log store marked format 2 (batch records)");
            }
        }
        None if initialised => return Err(LogError::Lost { path: dir.to_path_buf() }),
        None => {
            meta.insert(FORMAT_KEY, record::encode(FORMAT))?;
            sync.barrier(db)?;
        }
    }
    if !initialised {
        std::fs::write(&marker, FORMAT)?;
        if sync.enabled() {
            std::fs::File::open(&marker)?.sync_all()?;
            sync_dir(dir)?;
        }
    }
    Ok(())
}
