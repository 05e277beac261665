//! Free space on the data directory's file system: a member refuses new writes while
//! it is below `--disk-reserve-bytes`, with an error that says so, and takes them
//! again once space is freed — rather than letting the commit log run into ENOSPC,
//! after which the log cannot be trusted to accept anything until a restart.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::write_queue::WriteError;

#[derive(Debug)]
pub(crate) struct DiskGuard {
    dir: PathBuf,
    reserve: u64,
    /// Whether the last look found space short (to log changes only).
    short: AtomicBool,
}

impl DiskGuard {
    /// `reserve` 0 turns the check off.
    pub(crate) fn new(dir: PathBuf, reserve: u64) -> DiskGuard {
        DiskGuard { dir, reserve, short: AtomicBool::new(false) }
    }

    /// Ok while at least the reserve is free (or free space cannot be read: then the
    /// write goes ahead and a failing append stops the server as before).
    pub(crate) fn check(&self) -> Result<(), WriteError> {
        if self.reserve == 0 {
            return Ok(());
        }
        // One statvfs per write: a microsecond, against a write's fsync.
        let refusal = self.look();
        let was_short = self.short.swap(refusal.is_some(), Ordering::Relaxed);
        match (&refusal, was_short) {
            (Some(why), false) => tracing::warn!("{why}"),
            (None, true) => tracing::info!(
                dir = %self.dir.display(),
                "disk space is back above the reserve; taking writes again"
            ),
            _ => {}
        }
        refusal.map_or(Ok(()), |why| Err(WriteError::DiskFull(why)))
    }

    /// Bytes free for the data directory, if the file system says.
    pub(crate) fn free(&self) -> Option<u64> {
        let stat = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// `--disk-reserve-bytes` (0: off).
    pub(crate) fn reserve(&self) -> u64 {
        self.reserve
    }

    fn look(&self) -> Option<String> {
        let free = self.free()?;
        (free < self.reserve).then(|| {
            format!(
                "disk full: {free} bytes free for {}, below the reserve of {} bytes \
                 (--disk-reserve-bytes); writes are refused until space is freed",
                self.dir.display(),
                self.reserve
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_the_disk_refuses_and_zero_turns_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let guard = DiskGuard::new(dir.path().to_owned(), u64::MAX);
        let error = guard.check().unwrap_err();
        assert!(error.to_string().contains("disk full"), "{error}");
        assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
        assert!(DiskGuard::new(dir.path().to_owned(), 0).check().is_ok());
        assert!(DiskGuard::new(dir.path().to_owned(), 1).check().is_ok());
    }
}
