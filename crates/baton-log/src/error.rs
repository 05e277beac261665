use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in a store. Operating errors (I/O, a damaged
/// directory, a corrupt record) are values of this type; a store never panics on
/// what it reads from disk.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An fsync/fdatasync of one of the store's files or directories failed. The
    /// durability of everything since the last successful flush is unknown.
    #[error("could not sync {}: {source}", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sled error: {0}")]
    Sled(#[from] sled::Error),
    /// sled refused to open the directory (its own files are damaged or are not
    /// a sled database).
    #[error("cannot open the log store in {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// The directory was initialised as a store before, but sled found none of
    /// its data (sled opens a data file it cannot parse as an empty database).
    /// Starting empty would silently forget acknowledged txns.
    #[error("the log store in {} lost its data: it was initialised but sled found nothing (damaged or replaced data file)", path.display())]
    Lost { path: PathBuf },
    /// Another process, or a store still open in this one, holds sled's lock on
    /// the directory (after waiting `SledOptions::lock_wait_ms` for it).
    #[error("cannot open the log store in {}: it is locked by another open store", path.display())]
    Locked { path: PathBuf },
    /// sled panicked while recovering the directory; its files are damaged in a
    /// way it does not handle gracefully. The panic was contained.
    #[error("cannot open the log store in {}: sled panicked during recovery: {message}", path.display())]
    OpenPanicked { path: PathBuf, message: String },
    /// `last` is the zxid `zxid` had to exceed: the log's last, or the entry
    /// before it in the batch.
    #[error("append out of order: zxid {zxid:#x} is not greater than {last:#x}")]
    OutOfOrder { zxid: u64, last: u64 },
    #[error("corrupt {what} at zxid {zxid:#x}: {reason}")]
    Corrupt { what: &'static str, zxid: u64, reason: CorruptReason },
    /// A flush failed on purpose (fault injection in [`crate::MemStore`]).
    #[error("injected fault: {0}")]
    Injected(&'static str),
}

impl LogError {
    /// The store's files are damaged beyond what opening repairs (sled's own
    /// corruption, a file cut short, a panic in its recovery, its data gone): not
    /// an error of permissions, locks or space, which moving the files aside would
    /// not cure.
    pub fn is_damage(&self) -> bool {
        let damaged_io = |error: &std::io::Error| {
            matches!(
                error.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            )
        };
        match self {
            LogError::Open { source, .. } | LogError::Sled(source) => match source {
                sled::Error::Corruption { .. } => true,
                sled::Error::Io(error) => damaged_io(error),
                _ => false,
            },
            LogError::OpenPanicked { .. } | LogError::Lost { .. } | LogError::Corrupt { .. } => {
                true
            }
            _ => false,
        }
    }
}

/// Why a stored record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CorruptReason {
    #[error("record of {len} bytes is shorter than its header")]
    TooShort { len: usize },
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    #[error("header declares {declared} payload bytes but {actual} are stored (torn write?)")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("key of {len} bytes is not an 8-byte big-endian zxid")]
    BadKey { len: usize },
    /// The record does not name the record before it as its predecessor: a record
    /// in between was lost.
    #[error("record names {prev:?} as its predecessor, but follows {expected:#x}")]
    BrokenLink { prev: Option<u64>, expected: u64 },
    /// Found by a scrub: the record after one that failed its check must name an
    /// entry inside it (at or after `damaged`, its first zxid) as its predecessor;
    /// this one names another, so records are missing too, or do not belong.
    #[error(
        "record names {prev:?} as its predecessor, which is not in the damaged record \
         before it (from {damaged:#x})"
    )]
    LinkAfterDamage { prev: Option<u64>, damaged: u64 },
    #[error("payload of {len} bytes does not have the expected layout")]
    BadPayload { len: usize },
    /// Damage made on purpose ([`crate::MemStore::corrupt_entry`] and
    /// [`crate::MemStore::corrupt_snapshot`]).
    #[error("damaged on purpose (fault injection)")]
    Injected,
}
