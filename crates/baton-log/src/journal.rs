//! The journal: what makes an append durable with one device wait.
//!
//! sled's own flush writes its buffer and waits for the pages' writeback
//! (`sync_file_range`), and the data file grows with every flush, so making an append
//! durable in sled costs that wait plus an fdatasync that must also commit the file's
//! new size (see `sled_store`). Like etcd's WAL in front of its backend, the sled store
//! therefore writes each flushed batch of entries to a journal file first: one `pwrite`
//! into space that is already allocated and zero-filled, then one fdatasync that has no
//! metadata to commit. sled itself is made durable later, at a *checkpoint* (a full
//! barrier of sled's files), and the journal then starts over. sled remains the log of
//! record: reads, snapshots and recovery use it; the journal only holds what was
//! flushed since the last checkpoint.
//!
//! # Files and records
//! Two files, [`JOURNAL_FILES`], used in turn: a checkpoint writes a *base* record at
//! the start of the other file, with the next *generation* number, and makes it
//! durable; from then on that file is the journal and the other one is stale. Every
//! record is
//!
//! ```text
//! offset  bytes  field
//!      0      4  magic "BTNJ"
//!      4      8  generation (u64, big-endian)
//!     12      4  payload length (u32)
//!     16      4  crc32 (IEEE) of bytes 4..16 and the payload
//!     20      n  payload
//! ```
//!
//! A payload is a kind byte, then for a base (kind 1) the zxid where the log ended at
//! the checkpoint (everything up to it is durable in sled), and for entries (kind 2)
//! the zxid the first entry follows (0 = none), an entry count, and each entry's zxid,
//! length and bytes. Integers are big-endian.
//!
//! A file is read from its start while records are whole, pass their checksum and
//! carry the generation of its base record; the first that does not ends it (a torn
//! last write, or stale records of an older generation beyond it). The journal is the
//! valid file with the newer generation. A crash while a base record is written leaves
//! the older file newest, whose entries sled already has, so nothing is lost either way.
//!
//! Files grow in zero-filled steps of [`GROW_BYTES`] (synced when made), so that an
//! append never extends a file; a checkpoint is due once the journal holds
//! [`CHECKPOINT_BYTES`].
//!
//! # What it promises
//! The journal's end (the last entry's zxid, or the base's) is also how far this member
//! flushed, kept outside sled: if sled loses entries the journal still has, opening the
//! store writes them back; if it loses more, the journal's end still tells how far the
//! log reached (see [`crate::LogStore::journal_end`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::sled_sync::sync_dir;
use crate::{LogEntry, LogError};

/// The journal's two files, in the store's directory.
pub const JOURNAL_FILES: [&str; 2] = ["journal.0", "journal.1"];
/// How much a file grows at a time (zero-filled and synced).
pub(crate) const GROW_BYTES: u64 = 1 << 20;
/// A checkpoint is due once the journal holds this much.
pub(crate) const CHECKPOINT_BYTES: u64 = 16 << 20;

const MAGIC: &[u8; 4] = b"BTNJ";
const HEADER: usize = 20;
const KIND_BASE: u8 = 1;
const KIND_ENTRIES: u8 = 2;
/// A record larger than this is not read back (a torn or damaged length): no batch
/// the server flushes comes near it.
const RECORD_BYTES_MAX: usize = 1 << 30;

/// What the newest journal file held when it was opened.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Where the log ended at the last checkpoint.
    pub(crate) base: u64,
    /// A record of the journal's generation failed its check with a valid one after
    /// it: not a torn last write but damage, so how far the log reached is unknown.
    pub(crate) damaged: bool,
    /// The entries flushed since, in order: (zxid it follows, its zxid, bytes).
    pub(crate) entries: Vec<(Option<u64>, u64, Bytes)>,
}

impl Recovered {
    /// How far the log reached when last flushed, as far as the journal knows
    /// (`u64::MAX`: unknown, the journal is damaged).
    pub(crate) fn end(&self) -> u64 {
        if self.damaged {
            return u64::MAX;
        }
        self.entries.last().map_or(self.base, |(_, zxid, _)| *zxid).max(self.base)
    }
}

/// The open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    files: [File; 2],
    /// The index of the journal's file in [`JOURNAL_FILES`].
    current: usize,
    generation: u64,
    /// Where the next record goes in the current file.
    offset: u64,
    /// The zero-filled length of each file.
    lens: [u64; 2],
    fsync: bool,
    /// Records encoded since the last write.
    pending: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and reads what it holds.
    pub(crate) fn open(dir: &Path, fsync: bool) -> Result<(Journal, Recovered), LogError> {
        let mut files = Vec::with_capacity(2);
        let mut created = false;
        for name in JOURNAL_FILES {
            let path = dir.join(name);
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    created = true;
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)?
                }
                Err(error) => return Err(error.into()),
            };
            files.push(file);
        }
        if created && fsync {
            sync_dir(dir)?;
        }
        let [first, second]: [File; 2] = files.try_into().expect("two files");
        let files = [first, second];
        let mut read = Vec::with_capacity(2);
        for file in &files {
            read.push(read_file(file)?);
        }
        let lens = [files[0].metadata()?.len(), files[1].metadata()?.len()];
        let newest = match (&read[0], &read[1]) {
            (Some(a), Some(b)) => Some(if b.generation > a.generation { 1 } else { 0 }),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => None,
        };
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            files,
            current: 0,
            generation: 0,
            offset: 0,
            lens,
            fsync,
            pending: Vec::new(),
        };
        let recovered = match newest {
            Some(index) => {
                let file = read[index].take().expect("chosen above");
                journal.current = index;
                journal.generation = file.generation;
                journal.offset = file.end;
                file.recovered
            }
            None => Recovered::default(),
        };
        Ok((journal, recovered))
    }

    /// Encodes a batch of entries (written by the next [`Journal::write`]), straight
    /// into the buffer of records to write.
    pub(crate) fn add(&mut self, follows: Option<u64>, entries: &[LogEntry]) {
        let size: usize = entries.iter().map(|e| 12 + e.data.len()).sum();
        self.pending.reserve(HEADER + 13 + size);
        let start = start_record(&mut self.pending, self.generation);
        self.pending.push(KIND_ENTRIES);
        self.pending.extend_from_slice(&follows.unwrap_or(0).to_be_bytes());
        let count = u32::try_from(entries.len()).expect("a batch of fewer than 2^32 entries");
        self.pending.extend_from_slice(&count.to_be_bytes());
        for entry in entries {
            self.pending.extend_from_slice(&entry.zxid.to_be_bytes());
            let len = u32::try_from(entry.data.len()).expect("an entry smaller than 4 GiB");
            self.pending.extend_from_slice(&len.to_be_bytes());
            self.pending.extend_from_slice(&entry.data);
        }
        finish_record(&mut self.pending, start);
    }

    /// Writes what was added and makes it durable.
    pub(crate) fn write(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let end = self.offset + self.pending.len() as u64;
        self.grow(self.current, end)?;
        let file = &self.files[self.current];
        file.write_all_at(&self.pending, self.offset)?;
        if self.fsync {
            file.sync_data().map_err(|source| self.sync_error(self.current, source))?;
        }
        self.offset = end;
        self.pending.clear();
        Ok(())
    }

    /// Bytes in the journal (a checkpoint is due past [`CHECKPOINT_BYTES`]).
    pub(crate) fn len(&self) -> u64 {
        self.offset
    }

    /// Starts a new generation in the other file, whose base says the log ended at
    /// `base`. The caller has made everything in the journal durable in sled first.
    pub(crate) fn checkpoint(&mut self, base: u64) -> Result<(), LogError> {
        self.pending.clear();
        let next = 1 - self.current;
        let generation = self.generation + 1;
        let mut record = Vec::with_capacity(HEADER + 9);
        let start = start_record(&mut record, generation);
        record.push(KIND_BASE);
        record.extend_from_slice(&base.to_be_bytes());
        finish_record(&mut record, start);
        self.grow(next, record.len() as u64)?;
        let file = &self.files[next];
        file.write_all_at(&record, 0)?;
        if self.fsync {
            file.sync_data().map_err(|source| self.sync_error(next, source))?;
        }
        (self.current, self.generation, self.offset) = (next, generation, record.len() as u64);
        Ok(())
    }

    /// Whether any checkpoint was ever made (a fresh journal has no base record).
    #[cfg(test)]
    pub(crate) fn started(&self) -> bool {
        self.generation > 0
    }

    /// Zero-fills file `index` up to at least `end`, in steps of [`GROW_BYTES`], and
    /// syncs the new length, so that writes below it change no metadata.
    fn grow(&mut self, index: usize, end: u64) -> Result<(), LogError> {
        if end <= self.lens[index] {
            return Ok(());
        }
        let new_len = end.div_ceil(GROW_BYTES) * GROW_BYTES;
        let file = &self.files[index];
        let zeros = vec![0u8; GROW_BYTES as usize];
        let mut at = self.lens[index];
        while at < new_len {
            let n = (new_len - at).min(GROW_BYTES);
            file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        if self.fsync {
            file.sync_all().map_err(|source| self.sync_error(index, source))?;
        }
        self.lens[index] = new_len;
        Ok(())
    }

    fn sync_error(&self, index: usize, source: io::Error) -> LogError {
        LogError::Sync { path: self.dir.join(JOURNAL_FILES[index]), source }
    }
}

/// Starts a record in `out` (its length and checksum are filled in by
/// [`finish_record`] once its payload follows); returns where it starts.
fn start_record(out: &mut Vec<u8>, generation: u64) -> usize {
    let start = out.len();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    start
}

/// Fills in the length and checksum of the record started at `start`, whose payload
/// is everything after its header.
fn finish_record(out: &mut [u8], start: usize) {
    let len = out.len() - start - HEADER;
    let len = u32::try_from(len).expect("a journal record smaller than 4 GiB");
    out[start + 12..start + 16].copy_from_slice(&len.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[start + 4..start + 16]);
    crc.update(&out[start + HEADER..]);
    out[start + 16..start + 20].copy_from_slice(&crc.finalize().to_be_bytes());
}

/// One file's valid records.
#[derive(Debug)]
struct FileRead {
    generation: u64,
    /// Where its valid records end.
    end: u64,
    recovered: Recovered,
}

/// Reads a file's records: `None` if it does not start with a valid base record.
fn read_file(mut file: &File) -> Result<Option<FileRead>, LogError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut at = 0;
    let mut read: Option<FileRead> = None;
    while let Some((generation, payload)) = next_record(&bytes, at) {
        let next = at + HEADER + payload.len();
        match &mut read {
            None => {
                let Some(base) = decode_base(payload) else { return Ok(None) };
                read = Some(FileRead {
                    generation,
                    end: next as u64,
                    recovered: Recovered { base, damaged: false, entries: Vec::new() },
                });
            }
            Some(file) => {
                if generation != file.generation {
                    break;
                }
                let Some(entries) = decode_entries(payload) else { break };
                file.recovered.entries.extend(entries);
                file.end = next as u64;
            }
        }
        at = next;
    }
    if let Some(file) = &mut read {
        // Past the end: zeros, stale records of older generations, or a torn last
        // write. A valid record of this generation further on means damage instead.
        file.recovered.damaged = (at + 1..bytes.len().saturating_sub(HEADER)).any(|p| {
            bytes[p..p + 4] == *MAGIC
                && next_record(&bytes, p)
                    .is_some_and(|(generation, _)| generation == file.generation)
        });
    }
    Ok(read)
}

/// The record at `at`: its generation and payload, if whole and intact.
fn next_record(bytes: &[u8], at: usize) -> Option<(u64, &[u8])> {
    let header = bytes.get(at..at + HEADER)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let generation = u64::from_be_bytes(header[4..12].try_into().ok()?);
    let len = u32::from_be_bytes(header[12..16].try_into().ok()?) as usize;
    let stored = u32::from_be_bytes(header[16..20].try_into().ok()?);
    if len > RECORD_BYTES_MAX {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[4..16]);
    crc.update(payload);
    (crc.finalize() == stored).then_some((generation, payload))
}

fn decode_base(payload: &[u8]) -> Option<u64> {
    match payload {
        [KIND_BASE, rest @ ..] if rest.len() == 8 => {
            Some(u64::from_be_bytes(rest.try_into().ok()?))
        }
        _ => None,
    }
}

/// An entries record's entries, each with the zxid it follows.
fn decode_entries(payload: &[u8]) -> Option<Vec<(Option<u64>, u64, Bytes)>> {
    let (&kind, rest) = payload.split_first()?;
    if kind != KIND_ENTRIES || rest.len() < 12 {
        return None;
    }
    let follows = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let mut follows = (follows != 0).then_some(follows);
    let count = u32::from_be_bytes(rest[8..12].try_into().ok()?) as usize;
    let mut at = 12;
    let mut entries = Vec::with_capacity(count.min(rest.len() / 12));
    for _ in 0..count {
        let zxid = u64::from_be_bytes(rest.get(at..at + 8)?.try_into().ok()?);
        let len = u32::from_be_bytes(rest.get(at + 8..at + 12)?.try_into().ok()?) as usize;
        let data = rest.get(at + 12..at + 12 + len)?;
        entries.push((follows, zxid, Bytes::copy_from_slice(data)));
        follows = Some(zxid);
        at += 12 + len;
    }
    (at == rest.len()).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Journal, Recovered) {
        Journal::open(dir, true).expect("open the journal")
    }

    fn batch(items: &[(u64, &[u8])]) -> Vec<LogEntry> {
        items
            .iter()
            .map(|(zxid, data)| LogEntry { zxid: *zxid, data: Bytes::copy_from_slice(data) })
            .collect()
    }

    /// Overwrites `bytes` at `at` in the journal's file `index`.
    fn damage(dir: &Path, index: usize, at: u64, bytes: &[u8]) {
        let file = OpenOptions::new().write(true).open(dir.join(JOURNAL_FILES[index])).unwrap();
        file.write_all_at(bytes, at).unwrap();
    }

    fn zxids(recovered: &Recovered) -> Vec<u64> {
        recovered.entries.iter().map(|(_, zxid, _)| *zxid).collect()
    }

    #[test]
    fn entries_written_come_back_in_order_with_their_links() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, recovered) = open(tmp.path());
        assert!(!journal.started());
        assert_eq!((recovered.base, recovered.entries.len()), (0, 0));
        journal.checkpoint(0).unwrap();
        journal.add(None, &batch(&[(1, b"one"), (2, b"two")]));
        journal.write().unwrap();
        journal.add(Some(2), &batch(&[(3, b"three")]));
        journal.write().unwrap();
        drop(journal);
        let (journal, recovered) = open(tmp.path());
        assert!(journal.started());
        assert_eq!(zxids(&recovered), [1, 2, 3]);
        assert_eq!(recovered.entries[0].0, None);
        assert_eq!(recovered.entries[2].0, Some(2));
        assert_eq!(&recovered.entries[2].2[..], b"three");
        assert_eq!(recovered.end(), 3);
    }

    #[test]
    fn a_checkpoint_leaves_only_its_base_and_what_follows() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(tmp.path());
        journal.checkpoint(0).unwrap();
        journal.add(None, &batch(&[(1, b"a"), (2, b"b"), (3, b"c")]));
        journal.write().unwrap();
        journal.checkpoint(3).unwrap();
        journal.add(Some(3), &batch(&[(4, b"d")]));
        journal.write().unwrap();
        journal.checkpoint(4).unwrap();
        drop(journal);
        // Back in the first file, over the records of generation 1.
        let (mut journal, recovered) = open(tmp.path());
        assert_eq!((recovered.base, zxids(&recovered)), (4, vec![]));
        assert_eq!(recovered.end(), 4);
        journal.add(Some(4), &batch(&[(5, b"e")]));
        journal.write().unwrap();
        drop(journal);
        let (_, recovered) = open(tmp.path());
        assert_eq!((recovered.base, zxids(&recovered)), (4, vec![5]));
    }

    #[test]
    fn a_torn_last_record_ends_the_journal_there() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(tmp.path());
        journal.checkpoint(0).unwrap();
        journal.add(None, &batch(&[(1, b"one")]));
        journal.write().unwrap();
        let torn_at = journal.len();
        journal.add(Some(1), &batch(&[(2, b"two")]));
        journal.write().unwrap();
        let index = journal.current;
        drop(journal);
        damage(tmp.path(), index, torn_at + HEADER as u64 + 2, &[0xFF; 3]);
        let (journal, recovered) = open(tmp.path());
        assert_eq!(zxids(&recovered), [1]);
        assert_eq!(journal.len(), torn_at, "the next record overwrites the torn one");
    }

    #[test]
    fn a_damaged_record_before_valid_ones_makes_the_end_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(tmp.path());
        journal.checkpoint(0).unwrap();
        journal.add(None, &batch(&[(1, b"one")]));
        journal.write().unwrap();
        let damaged_at = journal.len();
        journal.add(Some(1), &batch(&[(2, b"two")]));
        journal.write().unwrap();
        journal.add(Some(2), &batch(&[(3, b"three")]));
        journal.write().unwrap();
        let index = journal.current;
        drop(journal);
        damage(tmp.path(), index, damaged_at + HEADER as u64 + 20, &[0xFF]);
        let (_, recovered) = open(tmp.path());
        assert!(recovered.damaged);
        assert_eq!(recovered.end(), u64::MAX);
    }

    #[test]
    fn a_torn_base_leaves_the_older_generation_as_the_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(tmp.path());
        journal.checkpoint(0).unwrap();
        journal.add(None, &batch(&[(1, b"one")]));
        journal.write().unwrap();
        journal.checkpoint(1).unwrap();
        let index = journal.current;
        drop(journal);
        damage(tmp.path(), index, 16, &[0x00; 4]);
        let (_, recovered) = open(tmp.path());
        assert_eq!((recovered.base, zxids(&recovered)), (0, vec![1]));
    }

    #[test]
    fn files_grow_in_zero_filled_steps_and_never_per_write() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(tmp.path());
        journal.checkpoint(0).unwrap();
        let data = vec![7u8; 4096];
        for zxid in 1..=300u64 {
            journal.add(Some(zxid - 1), &batch(&[(zxid, &data)]));
            journal.write().unwrap();
        }
        let len = std::fs::metadata(tmp.path().join(JOURNAL_FILES[journal.current])).unwrap().len();
        assert_eq!(len % GROW_BYTES, 0);
        assert!(len >= journal.len());
        drop(journal);
        let (_, recovered) = open(tmp.path());
        assert_eq!(recovered.end(), 300);
    }
}
