//! The promise file: what this member acknowledged, kept durably apart from the log.
//!
//! A member acknowledges a proposal only once the entry is flushed to its log, and
//! ZAB's safety rests on it never forgetting that entry. A storage fault can make it
//! forget without any error: sled recovers a damaged data file silently to a prefix
//! (see the `sled_files` tests), and open-time recovery cuts a corrupt record and
//! everything after it. A member that then voted with its shorter log could help
//! elect a leader that lacks a committed txn. So the member also records here,
//! outside sled, the highest zxid it acknowledged and ZAB's two epochs (a second copy
//! of sled's meta, so that a lost or corrupt meta can be repaired). On start, a log
//! that is shorter than the promise, or damaged below it, is known to be damaged and
//! is repaired from peers before the member votes (protocol-aware recovery, as in
//! Alagappan et al., FAST 2018). This file only stores the promise; what it means
//! for the protocol is the server's.
//!
//! # Format
//! [`PROMISE_FILE`] holds two slots of [`SLOT_LEN`] bytes, at offsets 0 and
//! [`SLOT_STRIDE`]. Each slot is one record, integers big-endian:
//!
//! ```text
//! offset  bytes  field
//!      0      4  magic "BTNP"
//!      4      1  version (1)
//!      5      3  reserved, zero
//!      8      8  sequence number (u64)
//!     16      4  accepted epoch (u32)
//!     20      4  current epoch (u32)
//!     24      8  zxid (u64)
//!     32     28  reserved, zero
//!     60      4  crc32 (IEEE) of bytes 0..60
//! ```
//!
//! A slot is valid when its magic, version, reserved bytes and crc are right; the
//! valid slot with the higher sequence number (slot 0 on a tie, which no writer
//! makes) is the promise. A write goes to the slot *not* holding the newest valid
//! record, with the next sequence number, so a write torn by a crash damages only
//! the slot being written and the other still holds the previous promise (which is what counts: the torn write never returned,
//! so nothing was acknowledged on its strength). The slots are a page apart, not
//! side by side, so that writing one never rewrites the filesystem block or page
//! holding the other: a torn or misdirected block write, or a bad sector, then also
//! damages at most one slot.
//!
//! Creating the file writes a blank record (sequence number 0, all fields zero) to
//! a temporary file and renames it into place, so the file never exists half made;
//! a file whose newest valid record is the blank one reports
//! [`PromiseState::Missing`], like no file at all: nothing was promised yet.
//!
//! # Limits
//! A valid slot is trusted, and the older slot is used when the newer one is
//! damaged. That is right after a torn write; but if the newest record was durable
//! and later rotted, the promise read is one write behind the true one (or reads as
//! missing, if it was the first). Damage could then hide only if the log lost the
//! entries of that last write at the same time. No file at all also reads as
//! [`PromiseState::Missing`]: a deleted promise file cannot be told from a member
//! that never wrote one. Nothing locks the file: the store's own lock (sled's, on
//! the same directory) keeps a second process out.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::LogError;
use crate::sled_open::sync_new_dir;
use crate::sled_sync::sync_dir;

/// The promise file's name, in the store's data directory (beside sled's files).
pub const PROMISE_FILE: &str = "promise";
/// Where a new promise file is made before it is renamed into place.
const PROMISE_TMP_FILE: &str = "promise.tmp";

/// Bytes in one slot.
pub const SLOT_LEN: usize = 64;
/// Offset of the second slot: a page, so that the slots never share a block.
pub const SLOT_STRIDE: usize = 4096;
/// The length of a file whose both slots were written.
const FILE_LEN: usize = SLOT_STRIDE + SLOT_LEN;

const MAGIC: &[u8; 4] = b"BTNP";
const VERSION: u8 = 1;
/// The crc32 covers everything before it.
const CRC_AT: usize = SLOT_LEN - 4;

/// What this member promised, durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Promise {
    /// ZAB's acceptedEpoch: the highest epoch this member agreed to.
    pub accepted_epoch: u32,
    /// ZAB's currentEpoch: the epoch of the leader whose history it adopted.
    pub current_epoch: u32,
    /// Every log entry with a zxid up to this one was acknowledged by this member,
    /// so it must be in its log (or in a snapshot that covers it).
    pub zxid: u64,
}

/// What [`PromiseFile::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromiseState {
    /// No promise was ever written: no file (it is created), or only the blank
    /// record a creation writes.
    Missing,
    /// The newest valid record.
    Valid(Promise),
    /// The file exists but no slot passes its checks (both damaged, a file cut short
    /// of any whole slot, or a file longer than two slots): what was promised is
    /// unknown. The next write starts the file afresh.
    Damaged,
}

/// The open promise file of one store directory.
#[derive(Debug)]
pub struct PromiseFile {
    file: File,
    path: PathBuf,
    fsync: bool,
    /// The slot holding the newest valid record and its sequence number; `None`
    /// while the file is damaged.
    newest: Option<(usize, u64)>,
}

impl PromiseFile {
    /// Opens the promise file in `dir` (creating the directory and the file if
    /// missing) and reads it.
    ///
    /// A created file holds only the blank record and reports
    /// [`PromiseState::Missing`]; with `fsync` it and its directory entry are
    /// durable before this returns.
    pub fn open(dir: &Path, fsync: bool) -> Result<(PromiseFile, PromiseState), LogError> {
        sync_new_dir(dir, fsync)?;
        let path = dir.join(PROMISE_FILE);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => create(dir, &path, fsync)?,
            Err(error) => return Err(error.into()),
        };
        let len = file.metadata()?.len();
        let image = if len > FILE_LEN as u64 {
            None
        } else {
            let mut bytes = Vec::with_capacity(FILE_LEN);
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut bytes)?;
            Some(bytes)
        };
        let (state, newest) = match &image {
            Some(bytes) => read_image(bytes),
            None => (PromiseState::Damaged, None),
        };
        if state == PromiseState::Damaged {
            tracing::warn!(file = %path.display(), len, "promise file damaged: no valid slot");
        }
        Ok((PromiseFile { file, path, fsync, newest }, state))
    }

    /// Records `promise`; durable on return (with fsync on).
    ///
    /// It overwrites the slot not holding the newest valid record. If it fails, the
    /// promise must be taken as not recorded; the previous one is still in the other
    /// slot, and the next write goes to the same slot again. Nothing here checks
    /// that promises only grow: a truncation ordered by a new leader lowers the zxid
    /// legitimately.
    pub fn write(&mut self, promise: Promise) -> Result<(), LogError> {
        let next = self.newest.and_then(|(slot, seq)| Some((1 - slot, seq.checked_add(1)?)));
        let (slot, seq) = match next {
            Some(next) => next,
            None => {
                // Damaged (or a sequence number no writer reaches): start afresh,
                // also dropping any bytes past the two slots. A crash before the
                // write below is durable leaves a damaged file, never an old promise.
                self.file.set_len(0)?;
                (0, 1)
            }
        };
        self.file.seek(SeekFrom::Start((slot * SLOT_STRIDE) as u64))?;
        self.file.write_all(&encode_slot(seq, promise))?;
        if self.fsync {
            self.file
                .sync_data()
                .map_err(|source| LogError::Sync { path: self.path.clone(), source })?;
        }
        self.newest = Some((slot, seq));
        Ok(())
    }
}

/// Makes a file holding the blank record under `path`, atomically: written and
/// synced under a temporary name, then renamed, then the directory synced.
fn create(dir: &Path, path: &Path, fsync: bool) -> Result<File, LogError> {
    let tmp = dir.join(PROMISE_TMP_FILE);
    {
        // `truncate`: a temporary file left by a crash during an earlier creation.
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        file.write_all(&encode_slot(0, Promise::default()))?;
        if fsync {
            file.sync_data().map_err(|source| LogError::Sync { path: tmp.clone(), source })?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(OpenOptions::new().read(true).write(true).open(path)?)
}

/// The state a file's bytes give, and where the newest valid record is.
fn read_image(bytes: &[u8]) -> (PromiseState, Option<(usize, u64)>) {
    let slots = [0, 1].map(|slot| {
        let at = slot * SLOT_STRIDE;
        bytes.get(at..at + SLOT_LEN).and_then(decode_slot)
    });
    let newest = match slots {
        [Some(a), Some(b)] if b.0 > a.0 => Some((1, b)),
        [Some(a), _] => Some((0, a)),
        [None, Some(b)] => Some((1, b)),
        [None, None] => None,
    };
    let Some((slot, (seq, promise))) = newest else {
        return (PromiseState::Damaged, None);
    };
    for (other, decoded) in slots.iter().enumerate() {
        // The second slot is absent, not damaged, until the first real write.
        let written = bytes.len() > other * SLOT_STRIDE || seq > 1;
        if decoded.is_none() && written {
            tracing::warn!(slot = other, "promise slot fails its check; using the other");
        }
    }
    let state = if seq == 0 { PromiseState::Missing } else { PromiseState::Valid(promise) };
    (state, Some((slot, seq)))
}

fn encode_slot(seq: u64, promise: Promise) -> [u8; SLOT_LEN] {
    let mut slot = [0; SLOT_LEN];
    slot[..4].copy_from_slice(MAGIC);
    slot[4] = VERSION;
    slot[8..16].copy_from_slice(&seq.to_be_bytes());
    slot[16..20].copy_from_slice(&promise.accepted_epoch.to_be_bytes());
    slot[20..24].copy_from_slice(&promise.current_epoch.to_be_bytes());
    slot[24..32].copy_from_slice(&promise.zxid.to_be_bytes());
    let crc = crc32fast::hash(&slot[..CRC_AT]);
    slot[CRC_AT..].copy_from_slice(&crc.to_be_bytes());
    slot
}

/// A slot's sequence number and promise, if it passes every check.
fn decode_slot(slot: &[u8]) -> Option<(u64, Promise)> {
    let slot: &[u8; SLOT_LEN] = slot.try_into().ok()?;
    let (body, crc) = slot.split_at(CRC_AT);
    let crc_ok = crc32fast::hash(body).to_be_bytes() == crc;
    let reserved_zero = slot[5..8].iter().chain(&slot[32..CRC_AT]).all(|&b| b == 0);
    if !crc_ok || &slot[..4] != MAGIC || slot[4] != VERSION || !reserved_zero {
        return None;
    }
    let u32_at = |at: usize| u32::from_be_bytes(slot[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(slot[at..at + 8].try_into().expect("8 bytes"));
    Some((
        u64_at(8),
        Promise { accepted_epoch: u32_at(16), current_epoch: u32_at(20), zxid: u64_at(24) },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promise(n: u32) -> Promise {
        Promise { accepted_epoch: n + 1, current_epoch: n, zxid: (u64::from(n) << 32) | 7 }
    }

    fn open(dir: &Path) -> (PromiseFile, PromiseState) {
        PromiseFile::open(dir, true).expect("open the promise file")
    }

    fn state(dir: &Path) -> PromiseState {
        open(dir).1
    }

    fn file_bytes(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(PROMISE_FILE)).unwrap()
    }

    fn set_bytes(dir: &Path, bytes: &[u8]) {
        std::fs::write(dir.join(PROMISE_FILE), bytes).unwrap();
    }

    /// (sequence number, promise) of each slot, `None` if it fails its check.
    fn slots(dir: &Path) -> [Option<(u64, Promise)>; 2] {
        let bytes = file_bytes(dir);
        [0, SLOT_STRIDE].map(|at| bytes.get(at..at + SLOT_LEN).and_then(decode_slot))
    }

    /// A directory whose promise file was written with promises 1 and 2: promise 1
    /// (sequence 1) in slot 1, promise 2 (sequence 2, the newest) in slot 0.
    fn written_twice() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let (mut file, _) = open(tmp.path());
        file.write(promise(1)).unwrap();
        file.write(promise(2)).unwrap();
        tmp
    }

    #[test]
    fn missing_then_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new").join("store");
        let (mut file, state) = open(&dir);
        assert_eq!(state, PromiseState::Missing, "no file yet");
        assert!(dir.join(PROMISE_FILE).is_file(), "open creates the file");
        assert!(!dir.join(PROMISE_TMP_FILE).exists(), "the temporary file was renamed");
        drop(file);
        assert_eq!(self::state(&dir), PromiseState::Missing, "created but never written");

        (file, _) = open(&dir);
        file.write(promise(1)).unwrap();
        assert_eq!(self::state(&dir), PromiseState::Valid(promise(1)));
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let extremes = Promise { accepted_epoch: u32::MAX, current_epoch: 0, zxid: u64::MAX };
        for value in [promise(1), Promise::default(), extremes, promise(9)] {
            let (mut file, _) = open(tmp.path());
            file.write(value).unwrap();
            drop(file);
            assert_eq!(state(tmp.path()), PromiseState::Valid(value));
        }
        // A written default promise is a promise (of nothing), not a missing one.
        let (mut file, _) = open(tmp.path());
        file.write(Promise::default()).unwrap();
        assert_eq!(state(tmp.path()), PromiseState::Valid(Promise::default()));
    }

    #[test]
    fn writes_alternate_slots() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut file, _) = open(tmp.path());
        assert_eq!(slots(tmp.path()), [Some((0, Promise::default())), None], "the blank record");
        file.write(promise(1)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((0, Promise::default())), Some((1, promise(1)))]);
        file.write(promise(2)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((2, promise(2))), Some((1, promise(1)))]);
        file.write(promise(3)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((2, promise(2))), Some((3, promise(3)))]);
        assert_eq!(file_bytes(tmp.path()).len(), FILE_LEN);

        // A reopened file goes on from where it was.
        drop(file);
        let (mut file, _) = open(tmp.path());
        file.write(promise(4)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((4, promise(4))), Some((3, promise(3)))]);
    }

    #[test]
    fn a_torn_newest_slot_falls_back_to_the_older() {
        let tmp = written_twice();
        let mut bytes = file_bytes(tmp.path());
        // The start of promise 3's record over slot 0, the rest of promise 2's left.
        bytes[..20].copy_from_slice(&encode_slot(3, promise(3))[..20]);
        set_bytes(tmp.path(), &bytes);

        let (mut file, state) = open(tmp.path());
        assert_eq!(state, PromiseState::Valid(promise(1)), "slot 1 still holds promise 1");
        // The next write goes to the damaged slot, never over the valid one.
        file.write(promise(4)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((2, promise(4))), Some((1, promise(1)))]);
        assert_eq!(self::state(tmp.path()), PromiseState::Valid(promise(4)));
    }

    #[test]
    fn both_slots_damaged_is_damaged_until_written() {
        let tmp = written_twice();
        let mut bytes = file_bytes(tmp.path());
        bytes[30] ^= 0x10;
        bytes[SLOT_STRIDE + 12] ^= 0x01;
        set_bytes(tmp.path(), &bytes);

        let (mut file, state) = open(tmp.path());
        assert_eq!(state, PromiseState::Damaged);
        file.write(promise(5)).unwrap();
        assert_eq!(self::state(tmp.path()), PromiseState::Valid(promise(5)));
        file.write(promise(6)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((1, promise(5))), Some((2, promise(6)))]);
    }

    #[test]
    fn a_truncated_file_keeps_a_whole_slot_or_is_damaged() {
        let tmp = written_twice();
        let whole = file_bytes(tmp.path());
        // Slot 0 (promise 2, the newest) is whole in each of these.
        for len in [SLOT_LEN, SLOT_STRIDE, FILE_LEN - 1] {
            set_bytes(tmp.path(), &whole[..len]);
            assert_eq!(state(tmp.path()), PromiseState::Valid(promise(2)), "cut to {len}");
        }
        for len in [0, 1, SLOT_LEN - 1] {
            set_bytes(tmp.path(), &whole[..len]);
            assert_eq!(state(tmp.path()), PromiseState::Damaged, "cut to {len}");
        }
        // Only slot 1 (promise 1) whole: slot 0 zeroed, as a lost block reads.
        let mut zeroed = whole.clone();
        zeroed[..SLOT_LEN].fill(0);
        set_bytes(tmp.path(), &zeroed);
        assert_eq!(state(tmp.path()), PromiseState::Valid(promise(1)));
    }

    #[test]
    fn a_longer_file_is_damaged_and_the_next_write_repairs_it() {
        let tmp = written_twice();
        let mut bytes = file_bytes(tmp.path());
        bytes.extend_from_slice(&[0; 100]);
        set_bytes(tmp.path(), &bytes);

        let (mut file, state) = open(tmp.path());
        assert_eq!(state, PromiseState::Damaged, "not a file this code wrote");
        file.write(promise(3)).unwrap();
        assert_eq!(file_bytes(tmp.path()).len(), SLOT_LEN, "started afresh");
        assert_eq!(self::state(tmp.path()), PromiseState::Valid(promise(3)));
    }

    #[test]
    fn every_single_bit_flip_of_a_slot_is_detected() {
        let tmp = written_twice();
        let image = file_bytes(tmp.path());
        let slot_values = [promise(2), promise(1)];
        for (slot, other_value) in [(0, slot_values[1]), (1, slot_values[0])] {
            for bit in 0..SLOT_LEN * 8 {
                let mut damaged = image.clone();
                damaged[slot * SLOT_STRIDE + bit / 8] ^= 1 << (bit % 8);
                let (state, newest) = read_image(&damaged);
                assert_eq!(state, PromiseState::Valid(other_value), "slot {slot} bit {bit}");
                assert_eq!(newest.map(|(s, _)| s), Some(1 - slot), "slot {slot} bit {bit}");
            }
        }
        // The same through the file, for one flip per slot.
        let mut damaged = image.clone();
        damaged[SLOT_STRIDE + 40] ^= 0x80;
        set_bytes(tmp.path(), &damaged);
        assert_eq!(state(tmp.path()), PromiseState::Valid(promise(2)));
    }

    #[test]
    fn a_well_formed_but_unknown_slot_is_refused() {
        let mut slot = encode_slot(5, promise(5));
        slot[4] = VERSION + 1;
        let crc = crc32fast::hash(&slot[..CRC_AT]);
        slot[CRC_AT..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(decode_slot(&slot), None, "unknown version");

        let mut slot = encode_slot(5, promise(5));
        slot[40] = 1;
        let crc = crc32fast::hash(&slot[..CRC_AT]);
        slot[CRC_AT..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(decode_slot(&slot), None, "non-zero reserved bytes");
    }

    #[test]
    fn a_sequence_number_that_cannot_grow_starts_the_file_afresh() {
        let tmp = tempfile::tempdir().unwrap();
        set_bytes(tmp.path(), &encode_slot(u64::MAX, promise(1)));
        let (mut file, state) = open(tmp.path());
        assert_eq!(state, PromiseState::Valid(promise(1)));
        file.write(promise(2)).unwrap();
        assert_eq!(slots(tmp.path()), [Some((1, promise(2))), None]);
        assert_eq!(self::state(tmp.path()), PromiseState::Valid(promise(2)));
    }

    #[test]
    fn a_temporary_file_left_by_a_crash_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(PROMISE_TMP_FILE), [0xFF; 9000]).unwrap();
        let (mut file, state) = open(tmp.path());
        assert_eq!(state, PromiseState::Missing);
        assert_eq!(file_bytes(tmp.path()).len(), SLOT_LEN, "made afresh");
        file.write(promise(1)).unwrap();
        assert_eq!(self::state(tmp.path()), PromiseState::Valid(promise(1)));
    }

    #[test]
    fn without_fsync_it_behaves_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut file, state) = PromiseFile::open(tmp.path(), false).unwrap();
        assert_eq!(state, PromiseState::Missing);
        file.write(promise(1)).unwrap();
        file.write(promise(2)).unwrap();
        let (_, state) = PromiseFile::open(tmp.path(), false).unwrap();
        assert_eq!(state, PromiseState::Valid(promise(2)));
    }
}
