//! The durability barrier of the sled store: sled's own flush, plus the
//! fdatasync/fsync calls it leaves out. Why these calls and no others is written
//! on [`crate::SledStore`] (module `sled_store`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::LogError;

/// sled 0.34's file names inside its directory.
const DATA_FILE: &str = "db";
const CONFIG_FILE: &str = "conf";
const BLOBS_DIR: &str = "blobs";

/// Syncs the files sled writes but does not (fully) sync.
#[derive(Debug)]
pub(crate) struct DiskSync {
    /// `false`: rely on sled's own flush only (for benchmarks that compare).
    enabled: bool,
    dir: PathBuf,
    /// Our own handle on sled's data file, open for the store's lifetime: fdatasync
    /// acts on the inode, so any descriptor of it will do. Opened writable because
    /// some platforms refuse to sync a read-only handle; nothing is written to it.
    data_file: File,
    /// Blob files already synced (and their directory entry with them). Compared
    /// with the directory listing at each barrier; pruned to what still exists.
    synced_blobs: HashSet<OsString>,
}

impl DiskSync {
    /// Takes the handle on sled's data file and, if enabled, syncs whatever sled
    /// may have left unsynced while opening (its config file, snapshot renames,
    /// blobs written before a crash).
    pub(crate) fn open(dir: &Path, enabled: bool) -> Result<DiskSync, LogError> {
        let data_path = dir.join(DATA_FILE);
        let data_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data_path)
            .map_err(|source| LogError::Sync { path: data_path, source })?;
        let mut sync =
            DiskSync { enabled, dir: dir.to_path_buf(), data_file, synced_blobs: HashSet::new() };
        if enabled {
            sync_file(&dir.join(CONFIG_FILE))?;
            sync.data_file_sync()?;
            sync.sync_new_blobs()?;
            sync_dir(dir)?;
        }
        Ok(sync)
    }

    /// One durability barrier: everything written through `db` so far is on
    /// stable storage when this returns Ok.
    pub(crate) fn barrier(&mut self, db: &sled::Db) -> Result<(), LogError> {
        if self.enabled {
            // Blobs are written when a value is inserted, before the log message
            // that points to them: sync them first so that a pointer made durable
            // below never names a blob that is not.
            self.sync_new_blobs()?;
        }
        db.flush()?;
        if self.enabled {
            self.data_file_sync()?;
        }
        Ok(())
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The store's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_file_sync(&self) -> Result<(), LogError> {
        self.data_file
            .sync_data()
            .map_err(|source| LogError::Sync { path: self.dir.join(DATA_FILE), source })
    }

    /// fdatasyncs every blob file not synced before, then the blobs directory so
    /// that their names survive too.
    fn sync_new_blobs(&mut self) -> Result<(), LogError> {
        let blobs_dir = self.dir.join(BLOBS_DIR);
        let listing = match list_dir(&blobs_dir) {
            Ok(listing) => listing,
            // sled creates it on open; if it is gone there is nothing to sync.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LogError::Sync { path: blobs_dir, source }),
        };

        let mut synced_any = false;
        for name in &listing {
            if self.synced_blobs.contains(name) {
                continue;
            }
            match sync_file(&blobs_dir.join(name)) {
                Ok(()) => synced_any = true,
                // sled garbage-collected it between the listing and the open.
                Err(LogError::Sync { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(other) => return Err(other),
            }
        }
        if synced_any {
            sync_dir(&blobs_dir)?;
        }
        self.synced_blobs = listing;
        Ok(())
    }
}

fn list_dir(dir: &Path) -> io::Result<HashSet<OsString>> {
    let mut names = HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        names.insert(entry?.file_name());
    }
    Ok(names)
}

/// fdatasync of one file: its data and the metadata needed to read it (size).
fn sync_file(path: &Path) -> Result<(), LogError> {
    let sync = || OpenOptions::new().read(true).write(true).open(path)?.sync_data();
    sync().map_err(|source| LogError::Sync { path: path.to_path_buf(), source })
}

/// fsync of a directory, which makes the names created in it durable.
#[cfg(unix)]
pub(crate) fn sync_dir(path: &Path) -> Result<(), LogError> {
    let sync = || File::open(path)?.sync_all();
    sync().map_err(|source| LogError::Sync { path: path.to_path_buf(), source })
}

/// Directories cannot be opened as files on other platforms; Baton's servers run
/// on Linux, where the unix variant applies.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_path: &Path) -> Result<(), LogError> {
    Ok(())
}
