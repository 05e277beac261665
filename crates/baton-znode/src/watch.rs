//! The watch registry: which watcher (a session) watches which path, and which
//! events a txn's [`Change`]s fire.
//!
//! Semantics are ZooKeeper 3.9's:
//! - `getData` and `exists` set a *data* watch (on a missing node too, so it fires on
//!   creation); `getChildren` sets a *child* watch. Both are one-shot: the first
//!   event that fires them removes them.
//! - A *persistent* watch (addWatch PERSISTENT) sees the data and child events of
//!   its path and stays until removed. A *persistent-recursive* watch sees created,
//!   deleted and data-changed events of its path and of every path below it, but no
//!   child events (those would only repeat the created/deleted events below).
//! - One change gives a watcher at most one event, however many of its watches
//!   match it.
//!
//! Pure: no I/O, no clock. Events are returned in the order of the changes, and for
//! one change in watcher-id order, so every server fires the same events.
//!
//! Every watcher has a bounded number of watches ([`WatchLimits`]); a registration
//! beyond it is refused with [`WatchError::TooManyWatches`] rather than letting one
//! client grow the server's memory without bound.

use std::collections::{BTreeSet, HashMap, HashSet};

use thiserror::Error;

use crate::{Change, ChangeKind, DataTree, path};

/// Who watches: the server uses session ids.
pub type WatcherId = u64;

/// The kind of a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchKind {
    /// One-shot, set by `get` and `exists`.
    Data,
    /// One-shot, set by `children`.
    Child,
    /// Until removed: the path's data and child events.
    Persistent,
    /// Until removed: created, deleted and data events of the path and below.
    PersistentRecursive,
}

/// Which watches `remove` takes away (ZooKeeper's WatcherType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveKind {
    Data,
    Child,
    Persistent,
    PersistentRecursive,
    /// Every kind on the path.
    Any,
}

impl RemoveKind {
    /// The kinds of watch this names, in a fixed order.
    fn kinds(self) -> impl Iterator<Item = WatchKind> {
        [WatchKind::Data, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive]
            .into_iter()
            .filter(move |kind| self.matches(*kind))
    }

    fn matches(self, kind: WatchKind) -> bool {
        match self {
            RemoveKind::Data => kind == WatchKind::Data,
            RemoveKind::Child => kind == WatchKind::Child,
            RemoveKind::Persistent => kind == WatchKind::Persistent,
            RemoveKind::PersistentRecursive => kind == WatchKind::PersistentRecursive,
            RemoveKind::Any => true,
        }
    }
}

/// A fired watch: what happened, where, and the zxid of the txn that did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: ChangeKind,
    pub path: String,
    pub zxid: u64,
}

/// Bounds of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// Most watches one watcher may hold at once (all kinds together).
    pub watches_per_watcher_max: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits { watches_per_watcher_max: 100_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WatchError {
    #[error("too many watches for session 0x{watcher:016x}: limit {max}")]
    TooManyWatches { watcher: WatcherId, max: usize },
    #[error("no watch to remove on {path}")]
    NoWatcher { path: String },
}

/// A watch a reconnecting client asks to have again (ZooKeeper's setWatches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub path: String,
    pub kind: SpecKind,
}

/// The kind of a watch as the client remembers it. A client tells a data watch set
/// on an existing node (`Data`) from one set by `exists` on a missing node
/// (`Exists`): on reconnect the first fires if the node is gone, the second if it
/// is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecKind {
    Data,
    Exists,
    Child,
    Persistent,
    PersistentRecursive,
}

impl SpecKind {
    /// The watch the server keeps for it.
    pub fn registered(self) -> WatchKind {
        match self {
            SpecKind::Data | SpecKind::Exists => WatchKind::Data,
            SpecKind::Child => WatchKind::Child,
            SpecKind::Persistent => WatchKind::Persistent,
            SpecKind::PersistentRecursive => WatchKind::PersistentRecursive,
        }
    }

    /// Set until removed (as opposed to one-shot).
    pub fn is_persistent(self) -> bool {
        matches!(self, SpecKind::Persistent | SpecKind::PersistentRecursive)
    }
}

/// The watches of every watcher, indexed both ways.
#[derive(Debug, Default, Clone)]
pub struct WatchRegistry {
    limits: WatchLimits,
    /// (path, kind) → watchers.
    by_path: HashMap<(String, WatchKind), BTreeSet<WatcherId>>,
    /// watcher → its (path, kind) watches, for removal on session close and the bound.
    by_watcher: HashMap<WatcherId, HashSet<(String, WatchKind)>>,
    /// How many persistent-recursive watches exist: when 0, a change needs no walk up
    /// its ancestors.
    recursive_count: usize,
}

impl WatchRegistry {
    pub fn new(limits: WatchLimits) -> Self {
        WatchRegistry { limits, ..WatchRegistry::default() }
    }

    /// Sets a watch. Setting one that already exists is a no-op (ZooKeeper keeps one
    /// watch per watcher, path and kind).
    pub fn add(
        &mut self,
        watcher: WatcherId,
        path: &str,
        kind: WatchKind,
    ) -> Result<(), WatchError> {
        let key = (path.to_owned(), kind);
        let mine = self.by_watcher.entry(watcher).or_default();
        if mine.contains(&key) {
            return Ok(());
        }
        if mine.len() >= self.limits.watches_per_watcher_max {
            if mine.is_empty() {
                self.by_watcher.remove(&watcher);
            }
            return Err(WatchError::TooManyWatches {
                watcher,
                max: self.limits.watches_per_watcher_max,
            });
        }
        mine.insert(key.clone());
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count += 1;
        }
        self.by_path.entry(key).or_default().insert(watcher);
        Ok(())
    }

    /// Removes a watcher's watches of the given kinds on `path`. Removing nothing is
    /// `NoWatcher`, as in ZooKeeper.
    pub fn remove(
        &mut self,
        watcher: WatcherId,
        path: &str,
        which: RemoveKind,
    ) -> Result<(), WatchError> {
        let mut removed = false;
        for kind in which.kinds() {
            removed |= self.remove_one(watcher, &(path.to_owned(), kind));
        }
        if removed { Ok(()) } else { Err(WatchError::NoWatcher { path: path.to_owned() }) }
    }

    /// Whether the watcher has a watch on `path` of a kind `which` matches (ZooKeeper's
    /// checkWatches): nothing is removed.
    pub fn check(
        &self,
        watcher: WatcherId,
        path: &str,
        which: RemoveKind,
    ) -> Result<(), WatchError> {
        let mine = self.by_watcher.get(&watcher);
        let found = which
            .kinds()
            .any(|kind| mine.is_some_and(|keys| keys.contains(&(path.to_owned(), kind))));
        if found { Ok(()) } else { Err(WatchError::NoWatcher { path: path.to_owned() }) }
    }

    /// Forgets every watch of a watcher (its session closed or expired).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(keys) = self.by_watcher.remove(&watcher) else { return };
        for key in keys {
            if key.1 == WatchKind::PersistentRecursive {
                self.recursive_count -= 1;
            }
            self.unindex(watcher, &key);
        }
    }

    /// Number of watches a watcher holds.
    pub fn watch_count(&self, watcher: WatcherId) -> usize {
        self.by_watcher.get(&watcher).map_or(0, HashSet::len)
    }

    /// Number of watches in the registry.
    pub fn len(&self) -> usize {
        self.by_watcher.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_watcher.is_empty()
    }

    /// Number of watchers holding at least one watch.
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.values().filter(|watches| !watches.is_empty()).count()
    }

    /// Number of distinct watched paths (a path watched for data and for children
    /// counts once, as ZooKeeper's `wchs` counts it).
    pub fn path_count(&self) -> usize {
        self.by_path.keys().map(|(path, _)| path).collect::<HashSet<_>>().len()
    }

    /// The watches of one watcher, sorted.
    pub fn watches_of(&self, watcher: WatcherId) -> Vec<(String, WatchKind)> {
        let mut watches: Vec<(String, WatchKind)> =
            self.by_watcher.get(&watcher).into_iter().flatten().cloned().collect();
        watches.sort();
        watches
    }

    /// The events a txn's changes fire, in change order; one-shot watches that fire
    /// are removed.
    pub fn trigger(&mut self, changes: &[Change], zxid: u64) -> Vec<(WatcherId, WatchEvent)> {
        self.trigger_visible(changes, zxid, |_, _| true)
    }

    /// As [`WatchRegistry::trigger`], but a persistent-recursive watch reports a
    /// change only if `visible(watcher, change)`: such a watch sees a whole subtree,
    /// and a watcher must not learn of nodes its identities may not read (ZooKeeper
    /// 3.9.2 checks READ there too). The other kinds were set on the node itself by
    /// a read that was checked.
    pub fn trigger_visible(
        &mut self,
        changes: &[Change],
        zxid: u64,
        mut visible: impl FnMut(WatcherId, &Change) -> bool,
    ) -> Vec<(WatcherId, WatchEvent)> {
        let mut events = Vec::new();
        for change in changes {
            let mut fired: BTreeSet<WatcherId> = BTreeSet::new();
            for kind in one_shot_kinds(change.kind) {
                let key = (change.path.clone(), *kind);
                if let Some(watchers) = self.by_path.remove(&key) {
                    for watcher in watchers {
                        self.forget_reverse(watcher, &key);
                        fired.insert(watcher);
                    }
                }
            }
            // A persistent watch sees every kind of change of its own path.
            self.collect(&change.path, WatchKind::Persistent, &mut fired);
            if self.recursive_count > 0 && change.kind != ChangeKind::NodeChildrenChanged {
                let mut recursive = BTreeSet::new();
                let mut at = Some(change.path.as_str());
                while let Some(p) = at {
                    self.collect(p, WatchKind::PersistentRecursive, &mut recursive);
                    at = path::parent(p);
                }
                for watcher in recursive {
                    if !fired.contains(&watcher) && visible(watcher, change) {
                        fired.insert(watcher);
                    }
                }
            }
            let event = WatchEvent { kind: change.kind, path: change.path.clone(), zxid };
            events.extend(fired.into_iter().map(|w| (w, event.clone())));
        }
        events
    }

    /// Re-registers a reconnecting client's watches, as ZooKeeper's setWatches: the
    /// client had seen the tree up to `last_zxid`; for each one-shot watch whose
    /// condition already changed after that, the event is returned at once and the
    /// watch is not set again; the others are set. Persistent watches are always set
    /// again, with an event first if their own node changed after `last_zxid` (a
    /// deletion while away cannot be told from "never existed", as in ZooKeeper).
    pub fn reregister(
        &mut self,
        tree: &DataTree,
        watcher: WatcherId,
        last_zxid: u64,
        specs: &[WatchSpec],
    ) -> Result<Vec<WatchEvent>, WatchError> {
        let zxid = tree.last_zxid();
        let mut events = Vec::new();
        for spec in specs {
            // An invalid path cannot have a node: treat it as missing.
            let stat = tree.stat(&spec.path).ok().flatten();
            let changed_after = |z: u64| z > last_zxid;
            let missed = match (spec.kind, stat) {
                (SpecKind::Data, None) => Some(ChangeKind::NodeDeleted),
                (SpecKind::Data, Some(s)) if changed_after(s.mzxid) => {
                    Some(ChangeKind::NodeDataChanged)
                }
                (SpecKind::Exists, Some(_)) => Some(ChangeKind::NodeCreated),
                (SpecKind::Child, None) => Some(ChangeKind::NodeDeleted),
                (SpecKind::Child, Some(s)) if changed_after(s.pzxid) => {
                    Some(ChangeKind::NodeChildrenChanged)
                }
                (SpecKind::Persistent | SpecKind::PersistentRecursive, Some(s)) => {
                    if changed_after(s.czxid) {
                        Some(ChangeKind::NodeCreated)
                    } else if changed_after(s.mzxid) {
                        Some(ChangeKind::NodeDataChanged)
                    } else if spec.kind == SpecKind::Persistent && changed_after(s.pzxid) {
                        Some(ChangeKind::NodeChildrenChanged)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(kind) = missed {
                events.push(WatchEvent { kind, path: spec.path.clone(), zxid });
            }
            let persistent =
                matches!(spec.kind, SpecKind::Persistent | SpecKind::PersistentRecursive);
            if missed.is_none() || persistent {
                self.add(watcher, &spec.path, spec.kind.registered())?;
            }
        }
        Ok(events)
    }

    fn collect(&self, path: &str, kind: WatchKind, fired: &mut BTreeSet<WatcherId>) {
        if let Some(watchers) = self.by_path.get(&(path.to_owned(), kind)) {
            fired.extend(watchers.iter().copied());
        }
    }

    fn remove_one(&mut self, watcher: WatcherId, key: &(String, WatchKind)) -> bool {
        let removed = self.forget_reverse(watcher, key);
        if removed {
            self.unindex(watcher, key);
        }
        removed
    }

    /// Removes `key` from the watcher's own set; true if it was there.
    fn forget_reverse(&mut self, watcher: WatcherId, key: &(String, WatchKind)) -> bool {
        let Some(mine) = self.by_watcher.get_mut(&watcher) else { return false };
        let removed = mine.remove(key);
        if mine.is_empty() {
            self.by_watcher.remove(&watcher);
        }
        if removed && key.1 == WatchKind::PersistentRecursive {
            self.recursive_count -= 1;
        }
        removed
    }

    /// Removes the watcher from the path index (the reverse index is done already).
    fn unindex(&mut self, watcher: WatcherId, key: &(String, WatchKind)) {
        if let Some(watchers) = self.by_path.get_mut(key) {
            watchers.remove(&watcher);
            if watchers.is_empty() {
                self.by_path.remove(key);
            }
        }
    }
}

/// The one-shot kinds a change fires on its own path.
fn one_shot_kinds(kind: ChangeKind) -> &'static [WatchKind] {
    match kind {
        ChangeKind::NodeCreated | ChangeKind::NodeDataChanged => &[WatchKind::Data],
        ChangeKind::NodeDeleted => &[WatchKind::Data, WatchKind::Child],
        ChangeKind::NodeChildrenChanged => &[WatchKind::Child],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CreateMode, CreateOp, SetDataOp, Txn, TxnOp};

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change { path: path.to_owned(), kind }
    }

    fn fired(events: &[(WatcherId, WatchEvent)]) -> Vec<(WatcherId, &str, ChangeKind)> {
        events.iter().map(|(w, e)| (*w, e.path.as_str(), e.kind)).collect()
    }

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::Data).unwrap();
        let events = reg.trigger(&[change("/a", ChangeKind::NodeDataChanged)], 7);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].1,
            WatchEvent { kind: ChangeKind::NodeDataChanged, path: "/a".into(), zxid: 7 }
        );
        assert!(reg.trigger(&[change("/a", ChangeKind::NodeDataChanged)], 8).is_empty());
        assert!(reg.is_empty());
    }

    #[test]
    fn child_watch_ignores_data_changes_and_fires_on_children_and_delete() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::Child).unwrap();
        assert!(reg.trigger(&[change("/a", ChangeKind::NodeDataChanged)], 2).is_empty());
        let events = reg.trigger(&[change("/a", ChangeKind::NodeChildrenChanged)], 3);
        assert_eq!(fired(&events), vec![(1, "/a", ChangeKind::NodeChildrenChanged)]);
        reg.add(2, "/a", WatchKind::Child).unwrap();
        let events = reg.trigger(&[change("/a", ChangeKind::NodeDeleted)], 4);
        assert_eq!(fired(&events), vec![(2, "/a", ChangeKind::NodeDeleted)]);
    }

    #[test]
    fn data_watch_on_missing_node_fires_on_create() {
        let mut reg = WatchRegistry::default();
        reg.add(5, "/new", WatchKind::Data).unwrap();
        let events = reg.trigger(
            &[
                change("/new", ChangeKind::NodeCreated),
                change("/", ChangeKind::NodeChildrenChanged),
            ],
            9,
        );
        assert_eq!(fired(&events), vec![(5, "/new", ChangeKind::NodeCreated)]);
    }

    #[test]
    fn one_event_per_watcher_per_change() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::Data).unwrap();
        reg.add(1, "/a", WatchKind::Child).unwrap();
        reg.add(1, "/a", WatchKind::Persistent).unwrap();
        reg.add(1, "/", WatchKind::PersistentRecursive).unwrap();
        reg.add(2, "/a", WatchKind::Data).unwrap();
        let events = reg.trigger(&[change("/a", ChangeKind::NodeDeleted)], 3);
        assert_eq!(
            fired(&events),
            vec![(1, "/a", ChangeKind::NodeDeleted), (2, "/a", ChangeKind::NodeDeleted)]
        );
        // The persistent ones stay.
        assert_eq!(reg.watch_count(1), 2);
        assert_eq!(reg.watch_count(2), 0);
    }

    #[test]
    fn persistent_watch_sees_data_and_child_events_of_its_path_only() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::Persistent).unwrap();
        let changes = [
            change("/a", ChangeKind::NodeDataChanged),
            change("/a/b", ChangeKind::NodeCreated),
            change("/a", ChangeKind::NodeChildrenChanged),
        ];
        let events = reg.trigger(&changes, 4);
        assert_eq!(
            fired(&events),
            vec![
                (1, "/a", ChangeKind::NodeDataChanged),
                (1, "/a", ChangeKind::NodeChildrenChanged)
            ]
        );
        assert_eq!(reg.watch_count(1), 1);
    }

    #[test]
    fn recursive_watch_sees_everything_below_but_no_child_events() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::PersistentRecursive).unwrap();
        let changes = [
            change("/a/b/c", ChangeKind::NodeCreated),
            change("/a/b", ChangeKind::NodeChildrenChanged),
            change("/a/b/c", ChangeKind::NodeDataChanged),
            change("/ab", ChangeKind::NodeCreated),
            change("/a", ChangeKind::NodeDeleted),
        ];
        let events = reg.trigger(&changes, 6);
        assert_eq!(
            fired(&events),
            vec![
                (1, "/a/b/c", ChangeKind::NodeCreated),
                (1, "/a/b/c", ChangeKind::NodeDataChanged),
                (1, "/a", ChangeKind::NodeDeleted),
            ]
        );
    }

    /// Only recursive deliveries ask `visible`; a watcher that also holds a one-shot
    /// or persistent watch on the node itself gets that event regardless.
    #[test]
    fn visibility_filters_recursive_deliveries_only() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::PersistentRecursive).unwrap();
        reg.add(2, "/a", WatchKind::PersistentRecursive).unwrap();
        reg.add(2, "/a/secret", WatchKind::Data).unwrap();
        let changes = [
            change("/a/secret", ChangeKind::NodeDataChanged),
            change("/a/open", ChangeKind::NodeDataChanged),
        ];
        let mut asked = Vec::new();
        let events = reg.trigger_visible(&changes, 7, |watcher, change| {
            asked.push((watcher, change.path.clone()));
            change.path != "/a/secret"
        });
        assert_eq!(
            fired(&events),
            vec![
                (2, "/a/secret", ChangeKind::NodeDataChanged),
                (1, "/a/open", ChangeKind::NodeDataChanged),
                (2, "/a/open", ChangeKind::NodeDataChanged),
            ]
        );
        // Watcher 2's one-shot data watch delivered /a/secret: it was not asked for it.
        assert!(!asked.contains(&(2, "/a/secret".to_owned())), "{asked:?}");
        assert!(asked.contains(&(1, "/a/secret".to_owned())), "{asked:?}");
    }

    #[test]
    fn remove_by_kind_and_no_watcher_error() {
        let mut reg = WatchRegistry::default();
        reg.add(1, "/a", WatchKind::Data).unwrap();
        reg.add(1, "/a", WatchKind::PersistentRecursive).unwrap();
        assert_eq!(
            reg.remove(1, "/a", RemoveKind::Child),
            Err(WatchError::NoWatcher { path: "/a".into() })
        );
        reg.check(1, "/a", RemoveKind::PersistentRecursive).unwrap();
        assert!(reg.check(1, "/a", RemoveKind::Child).is_err());
        assert!(reg.check(2, "/a", RemoveKind::Any).is_err(), "another watcher's watch");
        reg.remove(1, "/a", RemoveKind::PersistentRecursive).unwrap();
        assert!(reg.check(1, "/a", RemoveKind::PersistentRecursive).is_err(), "check removed it");
        assert_eq!(reg.recursive_count, 0);
        assert_eq!(reg.watches_of(1), vec![("/a".to_owned(), WatchKind::Data)]);
        reg.remove(1, "/a", RemoveKind::Any).unwrap();
        assert!(reg.is_empty());
        assert!(reg.by_path.is_empty());
    }

    #[test]
    fn remove_watcher_forgets_everything() {
        let mut reg = WatchRegistry::default();
        for i in 0..10 {
            reg.add(1, &format!("/n{i}"), WatchKind::Data).unwrap();
        }
        reg.add(1, "/", WatchKind::PersistentRecursive).unwrap();
        reg.add(2, "/n1", WatchKind::Data).unwrap();
        reg.remove_watcher(1);
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.recursive_count, 0);
        let events = reg.trigger(&[change("/n1", ChangeKind::NodeDataChanged)], 2);
        assert_eq!(fired(&events), vec![(2, "/n1", ChangeKind::NodeDataChanged)]);
    }

    #[test]
    fn watches_per_watcher_are_bounded() {
        let mut reg = WatchRegistry::new(WatchLimits { watches_per_watcher_max: 3 });
        for i in 0..3 {
            reg.add(1, &format!("/n{i}"), WatchKind::Data).unwrap();
        }
        // The same watch again is not a new one.
        reg.add(1, "/n0", WatchKind::Data).unwrap();
        assert_eq!(
            reg.add(1, "/n3", WatchKind::Data),
            Err(WatchError::TooManyWatches { watcher: 1, max: 3 })
        );
        assert_eq!(reg.watch_count(1), 3);
        reg.add(2, "/n3", WatchKind::Data).unwrap();
    }

    #[test]
    fn ten_thousand_watchers_of_one_node_fire_once_each_and_are_gone() {
        let mut reg = WatchRegistry::default();
        for watcher in 1..=10_000 {
            reg.add(watcher, "/hot", WatchKind::Data).unwrap();
        }
        let events = reg.trigger(&[change("/hot", ChangeKind::NodeDataChanged)], 5);
        assert_eq!(events.len(), 10_000);
        assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "in watcher order");
        assert!(reg.is_empty() && reg.by_path.is_empty());
    }

    #[test]
    fn a_million_watches_at_the_per_session_limit_fire_and_go_with_their_sessions() {
        // Ten sessions each at the default limit of 100,000: a million watches.
        let mut reg = WatchRegistry::default();
        let per = WatchLimits::default().watches_per_watcher_max;
        for watcher in 1..=10 {
            for n in 0..per {
                reg.add(watcher, &format!("/w/{n}"), WatchKind::Data).unwrap();
            }
            let over = reg.add(watcher, "/one-more", WatchKind::Data);
            assert_eq!(over, Err(WatchError::TooManyWatches { watcher, max: per }));
        }
        assert_eq!(reg.len(), 10 * per);
        let events = reg.trigger(&[change("/w/7", ChangeKind::NodeDataChanged)], 9);
        assert_eq!(events.len(), 10, "one event per session watching /w/7");
        for watcher in 1..=10 {
            reg.remove_watcher(watcher);
        }
        assert!(reg.is_empty() && reg.by_path.is_empty(), "closed sessions leave no watch");
    }

    fn apply(tree: &mut DataTree, op: TxnOp) -> u64 {
        let zxid = tree.last_zxid() + 1;
        tree.apply(&Txn { auth: crate::acl::Auth::none(), zxid, time_ms: 1_000, session: 0, op })
            .unwrap();
        zxid
    }

    fn create(path: &str) -> TxnOp {
        TxnOp::Create(CreateOp {
            acl: crate::acl::open_acl(),
            path: path.into(),
            data: Default::default(),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        })
    }

    #[test]
    fn reregister_fires_what_was_missed_and_sets_the_rest() {
        let mut tree = DataTree::new();
        apply(&mut tree, create("/same"));
        apply(&mut tree, create("/changed"));
        apply(&mut tree, create("/parent"));
        let seen = tree.last_zxid();
        apply(
            &mut tree,
            TxnOp::SetData(SetDataOp { path: "/changed".into(), data: "x".into(), version: -1 }),
        );
        apply(&mut tree, create("/parent/kid"));
        apply(&mut tree, create("/appeared"));
        let spec = |path: &str, kind| WatchSpec { path: path.into(), kind };
        let specs = [
            spec("/same", SpecKind::Data),
            spec("/changed", SpecKind::Data),
            spec("/gone", SpecKind::Data),
            spec("/appeared", SpecKind::Exists),
            spec("/still-missing", SpecKind::Exists),
            spec("/parent", SpecKind::Child),
            spec("/same", SpecKind::Child),
            spec("/parent", SpecKind::PersistentRecursive),
        ];
        let mut reg = WatchRegistry::default();
        let events = reg.reregister(&tree, 1, seen, &specs).unwrap();
        let kinds: Vec<(&str, ChangeKind)> =
            events.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("/changed", ChangeKind::NodeDataChanged),
                ("/gone", ChangeKind::NodeDeleted),
                ("/appeared", ChangeKind::NodeCreated),
                ("/parent", ChangeKind::NodeChildrenChanged),
            ]
        );
        assert!(events.iter().all(|e| e.zxid == tree.last_zxid()));
        assert_eq!(
            reg.watches_of(1),
            vec![
                ("/parent".to_owned(), WatchKind::PersistentRecursive),
                ("/same".to_owned(), WatchKind::Data),
                ("/same".to_owned(), WatchKind::Child),
                ("/still-missing".to_owned(), WatchKind::Data),
            ]
        );
    }
}
