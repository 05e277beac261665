//! The background scrub's types: where a pass is, and what one step found.
//!
//! Damage that arrives after a store was opened (bit rot, a misdirected write) is
//! otherwise seen only when something reads the damaged record, which for old
//! entries and snapshots may be never, until a restart or a lagging follower needs
//! them. A scrub walks everything stored a bounded amount at a time
//! ([`crate::LogStore::scrub_step`]), so that a member learns of damage while its
//! peers can still repair it.

/// Where a scrub pass is: which part of the store (the log, then snapshots), the
/// key to go on from, and what the next log record must link to. Opaque;
/// `ScrubCursor::default()` is the start of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrubCursor {
    pub(crate) part: ScrubPart,
    /// The smallest key (zxid) of `part` not yet verified in this pass.
    pub(crate) from: u64,
    /// What the record before `from` was, as this pass saw it.
    pub(crate) link: Link,
}

impl ScrubCursor {
    /// The cursor at the start of the snapshots.
    pub(crate) const SNAPSHOTS: ScrubCursor =
        ScrubCursor { part: ScrubPart::Snapshots, from: 0, link: Link::Start };

    /// The cursor at the start of sled's blob files (`from`: the lowest blob id).
    pub(crate) const BLOBS: ScrubCursor =
        ScrubCursor { part: ScrubPart::Blobs, from: 0, link: Link::Start };

    /// Going on in the log from `from`, after a record that left `link`.
    pub(crate) fn log(from: u64, link: Link) -> ScrubCursor {
        ScrubCursor { part: ScrubPart::Log, from, link }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ScrubPart {
    #[default]
    Log,
    Snapshots,
    /// sled's blob files, read from the disk (sled serves the trees from its page
    /// cache where it can, so a damaged disk copy of a cached record is seen only
    /// at the next start; a blob is read from its file).
    Blobs,
}

/// The record a scrub saw last in the log, for checking the next one's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Link {
    /// None in this pass: the first record's predecessor may have been purged.
    #[default]
    Start,
    /// A record that decoded, ending at this zxid.
    After(u64),
    /// A record that failed its check, whose key is this zxid.
    AfterDamaged(u64),
}

/// What one [`crate::LogStore::scrub_step`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrubStep {
    /// Where the next step goes on; `None`: the pass is done (this step verified
    /// the last record, or found none), and the next starts from
    /// `ScrubCursor::default()`.
    pub next: Option<ScrubCursor>,
    /// Stored bytes verified by this step (as the store counts them: the sled store
    /// counts each record's key and value).
    pub bytes: usize,
    /// What this step found damaged, in store order.
    pub damage: Vec<Damage>,
}

/// One damaged record found by a scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub what: DamagedPart,
    pub reason: crate::CorruptReason,
}

/// Which record is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamagedPart {
    /// A log record that fails its check, or that does not link to the record
    /// before it; `first_zxid` is its key, the zxid of its first entry. Every entry
    /// from there up to the next good record's first zxid is suspect (after a
    /// broken link, entries just before it may be missing, too).
    LogRecord { first_zxid: u64 },
    /// A snapshot that fails its check.
    Snapshot { zxid: u64 },
    /// One of sled's blob files (a value larger than about 128 KiB: a snapshot or a
    /// large log record, which one sled does not say) fails sled's own crc32 on
    /// disk. `id` is the file's name.
    SledBlob { id: u64 },
}

/// A scrub that runs apart from the store's owner: on a thread of its own, reading
/// what the store holds while the owner goes on writing (so a long record, a
/// snapshot of hundreds of MB, never holds up a commit). A step may see the store
/// between two of the owner's changes; what a purge or truncation in between
/// removed is not reported, and a false report costs only a needless repair.
pub trait Scrubber: Send + Sync + std::fmt::Debug {
    /// As [`crate::LogStore::scrub_step`].
    fn step(&self, from: ScrubCursor, bytes_max: usize) -> Result<ScrubStep, crate::LogError>;
}
