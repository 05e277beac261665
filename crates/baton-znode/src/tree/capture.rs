//! Snapshots written while writes go on.
//!
//! `DataTree::encode_snapshot` walks the whole tree at once, so whoever holds the
//! tree's lock for it stops every write for the walk (~0.65 s at 1M znodes). A
//! [`SnapshotEncoder`] writes the same bytes in slices instead: the caller takes
//! the lock for one slice of a few thousand nodes at a time, and writes apply in
//! between.
//!
//! The bytes are the tree as it was when the snapshot began (at zxid Z), exactly
//! as `encode_snapshot` would have written it then. Between slices, the mutation
//! primitives keep what the walk needs to see the tree of Z (copy on first
//! touch):
//! - `before`: for every path changed since Z, the node as it was at Z (its data,
//!   Stat, kind and ACL's place in the table written at Z), or None if the path
//!   did not exist at Z. Only the first change of a path records: that is the
//!   state of Z.
//! - `removed`: per parent, the names of children that existed at Z and were
//!   removed since (they are in no child set any more).
//!
//! The walk visits a parent's children of Z in name order: the names of its
//! current child set (skipping those whose `before` says they did not exist) and
//! of its `removed` set, merged. It descends into a node whose Stat of Z counts
//! children. A node no write touched since Z is written as it is now: it is as
//! it was. Sessions and the ACL table are written when the snapshot begins; the
//! ACL slots named by the nodes of Z cannot be reused before those nodes are
//! touched, and a touch records the position first.
//!
//! Nothing here is cleared by a failed multi's rollback: a rollback restores
//! the state of before the txn, and what was recorded of Z stays true.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::node::{ChildName, Node, NodeKind};
use super::snapshot;
use super::{DataTree, PathHasher};
use crate::Stat;
use crate::codec::wire::Writer;
use crate::path::{basename, parent};

/// Tells the encoders of different trees (and of one tree over time) apart.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a tree keeps while a snapshot of it is being written.
#[derive(Debug, Clone)]
pub(super) struct Capture {
    id: u64,
    /// Each ACL slot's place in the table written at Z (`u32::MAX`: none).
    positions: Vec<u32>,
    before: HashMap<String, Option<Image>, PathHasher>,
    removed: HashMap<String, BTreeSet<ChildName>, PathHasher>,
}

/// A node as it was at Z, as a snapshot writes it.
#[derive(Debug, Clone)]
struct Image {
    data: Bytes,
    stat: Stat,
    kind: NodeKind,
    acl_position: u32,
}

impl Capture {
    /// Records `path` as it is now, unless a change since Z recorded it already.
    /// Called before every change of a node (its creation included).
    pub(super) fn touch(&mut self, path: &str, node: Option<&Node>) {
        if self.before.contains_key(path) {
            return;
        }
        let image = node.map(|node| {
            let acl_position = self.positions[node.acl as usize];
            assert!(acl_position != u32::MAX, "{path} existed at Z with an ACL not in its table");
            Image { data: node.data.clone(), stat: node.stat, kind: node.kind, acl_position }
        });
        self.before.insert(path.to_owned(), image);
    }

    /// After `path` was removed: if it existed at Z, its parent's walk must still
    /// find it.
    pub(super) fn removed(&mut self, path: &str) {
        if let (Some(Some(_)), Some(parent)) = (self.before.get(path), parent(path)) {
            let names = self.removed.entry(parent.to_owned()).or_default();
            names.insert(ChildName::new(basename(path)));
        }
    }

    /// What was recorded of `path` since Z: Some(Some) its image, Some(None) that
    /// it did not exist, None nothing (it is as it was).
    fn recorded(&self, path: &str) -> Option<&Option<Image>> {
        // Most slices run with nothing recorded: no hashing then.
        if self.before.is_empty() { None } else { self.before.get(path) }
    }
}

/// A snapshot being written; see the module's documentation.
#[derive(Debug)]
pub struct SnapshotEncoder {
    id: u64,
    zxid: u64,
    writer: Writer,
    /// Nodes the tree of Z holds, and nodes written so far.
    expected: usize,
    written: usize,
    root_written: bool,
    /// The walk's position: per level, a parent and the last child name visited.
    levels: Vec<Level>,
}

#[derive(Debug)]
struct Level {
    parent: String,
    last: Option<String>,
}

/// The tree the encoder was begun on is not there any more (it was replaced, by
/// a snapshot from the leader), or another snapshot was begun on it since.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the tree was replaced while its snapshot was being written")]
pub struct SnapshotAbandoned;

impl SnapshotEncoder {
    /// The zxid the snapshot is of (the tree's last applied txn when it began).
    pub fn zxid(&self) -> u64 {
        self.zxid
    }

    /// Makes room for `nodes` more nodes of the size written so far, with a margin,
    /// so that the buffer grows (a copy of all of it) here, not in a slice, where
    /// writes would wait for the copy. Call it without holding the tree's lock.
    pub fn reserve_for(&mut self, nodes: usize) {
        let average = self.writer.position().checked_div(self.written).unwrap_or(64);
        let wanted = nodes.saturating_mul(average.saturating_mul(2) + 64);
        if self.writer.spare() < wanted {
            // At least doubling, as a Vec would: the copies stay linear in total.
            self.writer.reserve(wanted.max(self.writer.position()));
        }
    }

    /// Whether every node is written (`DataTree::finish_snapshot` may be called).
    pub fn is_done(&self) -> bool {
        self.root_written && self.levels.is_empty()
    }
}

impl DataTree {
    /// Begins a snapshot of the tree as it is now: writes the sessions and the ACL
    /// table, and from now on keeps what changes so that
    /// [`DataTree::continue_snapshot`] can write the nodes between writes. A
    /// snapshot begun earlier and not finished is given up.
    pub fn begin_snapshot(&mut self) -> SnapshotEncoder {
        let (writer, positions) = snapshot::begin(self);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.capture = Some(Box::new(Capture {
            id,
            positions,
            before: HashMap::default(),
            removed: HashMap::default(),
        }));
        SnapshotEncoder {
            id,
            zxid: self.last_zxid,
            writer,
            expected: self.nodes.len(),
            written: 0,
            root_written: false,
            levels: Vec::new(),
        }
    }

    /// Writes up to `budget` more nodes of the tree of Z (at least one); true when
    /// every node is written.
    pub fn continue_snapshot(
        &self,
        encoder: &mut SnapshotEncoder,
        budget: usize,
    ) -> Result<bool, SnapshotAbandoned> {
        let capture = match self.capture.as_deref() {
            Some(capture) if capture.id == encoder.id => capture,
            _ => return Err(SnapshotAbandoned),
        };
        let mut budget = budget.max(1);
        if !encoder.root_written {
            encoder.root_written = true;
            encoder.written += 1;
            if self.write_as_of_z(capture, &mut encoder.writer, "/", capture.recorded("/")) {
                encoder.levels.push(Level { parent: "/".to_owned(), last: None });
            }
            budget -= 1;
        }
        let mut path = String::new();
        while budget > 0 {
            let Some(level) = encoder.levels.last_mut() else { break };
            // The level's children of Z after `last`: its current child set and
            // the children of Z removed since, merged in name order. Within the
            // slice the walk goes on down these two sets; it looks them up again
            // only on coming back to the level, or in the next slice.
            let from = level.last.as_deref().map_or(Unbounded, Excluded);
            let children = self.nodes.get(level.parent.as_str()).map(|node| &node.children);
            let mut current = children.map(|set| set.range::<str, _>((from, Unbounded)).peekable());
            let removed = capture.removed.get(level.parent.as_str());
            let mut removed = removed.map(|set| set.range::<str, _>((from, Unbounded)).peekable());
            path.clear();
            path.push_str(&level.parent);
            if path != "/" {
                path.push('/');
            }
            let base = path.len();
            let mut last = None;
            let mut descend = false;
            while budget > 0 {
                let a = current.as_mut().and_then(|it| it.peek().copied());
                let b = removed.as_mut().and_then(|it| it.peek().copied());
                let name = match (a, b) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => break,
                };
                if a == Some(name) {
                    current.as_mut().map(Iterator::next);
                }
                if b == Some(name) {
                    removed.as_mut().map(Iterator::next);
                }
                last = Some(name);
                budget -= 1;
                path.truncate(base);
                path.push_str(name.as_str());
                let recorded = capture.recorded(&path);
                if matches!(recorded, Some(None)) {
                    continue; // created since Z
                }
                encoder.written += 1;
                if self.write_as_of_z(capture, &mut encoder.writer, &path, recorded) {
                    descend = true;
                    break;
                }
            }
            let exhausted = !descend && budget > 0;
            if exhausted {
                encoder.levels.pop();
            } else {
                if let Some(last) = last {
                    level.last = Some(last.as_str().to_owned());
                }
                if descend {
                    encoder.levels.push(Level { parent: path.clone(), last: None });
                }
            }
        }
        Ok(encoder.is_done())
    }

    /// Ends the capture and returns the snapshot's bytes, which decode to the tree
    /// as it was at Z.
    pub fn finish_snapshot(
        &mut self,
        encoder: SnapshotEncoder,
    ) -> Result<Vec<u8>, SnapshotAbandoned> {
        match self.capture.as_deref() {
            Some(capture) if capture.id == encoder.id => {}
            _ => return Err(SnapshotAbandoned),
        }
        assert!(encoder.is_done(), "snapshot finished before its walk");
        assert_eq!(encoder.written, encoder.expected, "nodes of Z not reachable in the walk");
        self.capture = None;
        Ok(snapshot::seal(encoder.writer))
    }

    /// Gives up a snapshot (its capture is dropped if it is still the tree's).
    pub fn abandon_snapshot(&mut self, encoder: SnapshotEncoder) {
        if self.capture.as_ref().is_some_and(|capture| capture.id == encoder.id) {
            self.capture = None;
        }
    }

    /// Paths changed since the snapshot being written began (0 if none is).
    pub fn snapshot_recorded(&self) -> usize {
        self.capture.as_ref().map_or(0, |capture| capture.before.len())
    }

    /// Writes `path` as it was at Z (`recorded`: what the capture has of it);
    /// returns whether it had children then.
    fn write_as_of_z(
        &self,
        capture: &Capture,
        w: &mut Writer,
        path: &str,
        recorded: Option<&Option<Image>>,
    ) -> bool {
        let (data, stat, kind, position) = match recorded {
            Some(Some(image)) => (&image.data, &image.stat, image.kind, image.acl_position),
            Some(None) => unreachable!("{path} did not exist at Z"),
            None => {
                let node = self.nodes.get(path);
                let node = node.unwrap_or_else(|| panic!("{path} of Z untouched yet missing"));
                (&node.data, &node.stat, node.kind, capture.positions[node.acl as usize])
            }
        };
        snapshot::write_fields(w, path, data, stat, kind, Some(position));
        stat.num_children > 0
    }
}
