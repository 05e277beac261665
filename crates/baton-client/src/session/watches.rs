//! The client's watch manager: which caller waits for which event, with the server's
//! semantics (`baton_znode::watch`, ZooKeeper 3.9's) mirrored on this side.
//!
//! The server keeps at most one watch per (session, path, kind) and sends one event per
//! change; the client fans that event out to every caller whose watch it matches:
//! - one-shot `Data` (set by get, or exists on an existing node) and `Exists` (exists on
//!   a missing node) fire on created, deleted and data changed; `Child` (children) fires
//!   on children changed and deleted. A fired one-shot watch is forgotten.
//! - `Persistent` sees every event of its own path; `PersistentRecursive` sees created,
//!   deleted and data changed of its path and every path below, never children changed.
//!
//! The manager also says which watches to set again on a resume ([`WatchManager::specs`]),
//! and ends every watch when the session ends. It is owned by the session's task, so it
//! needs no lock, and it never blocks: a persistent watch whose consumer lags is ended.

use std::collections::HashMap;

use baton_znode::{
    ChangeKind,
    watch::{RemoveKind, SpecKind, WatchEvent, WatchSpec},
};

use super::watch_handle::{Delivery, OneShotTx, Sink};
use crate::ClientError;

#[derive(Debug)]
enum Waiter {
    OneShot(OneShotTx),
    Persistent(Sink),
}

impl Waiter {
    fn is_gone(&self) -> bool {
        match self {
            Waiter::OneShot(tx) => tx.is_closed(),
            Waiter::Persistent(sink) => sink.is_closed(),
        }
    }

    /// Tells the waiter its watch is over.
    fn end(self, error: ClientError) {
        match self {
            Waiter::OneShot(tx) => {
                // The caller may have dropped its Watch: nobody to tell.
                let _ = tx.send(Err(error));
            }
            Waiter::Persistent(sink) => sink.finish(error),
        }
    }
}

/// Every watch of one session, by (path, kind).
#[derive(Debug, Default)]
pub(crate) struct WatchManager {
    waiters: HashMap<(String, SpecKind), Vec<Waiter>>,
    /// How many keys are persistent-recursive: when 0, an event needs no walk up its
    /// path's ancestors.
    recursive_keys: usize,
}

impl WatchManager {
    /// Adds a one-shot watch of kind `Data`, `Exists` or `Child`.
    pub(crate) fn add_one_shot(&mut self, path: &str, kind: SpecKind, tx: OneShotTx) {
        debug_assert!(matches!(kind, SpecKind::Data | SpecKind::Exists | SpecKind::Child));
        self.insert(path, kind, Waiter::OneShot(tx));
    }

    pub(crate) fn add_persistent(&mut self, path: &str, recursive: bool, sink: Sink) {
        let kind = if recursive { SpecKind::PersistentRecursive } else { SpecKind::Persistent };
        self.insert(path, kind, Waiter::Persistent(sink));
    }

    fn insert(&mut self, path: &str, kind: SpecKind, waiter: Waiter) {
        let waiters = self.waiters.entry((path.to_owned(), kind)).or_default();
        if waiters.is_empty() && kind == SpecKind::PersistentRecursive {
            self.recursive_keys += 1;
        }
        waiters.push(waiter);
    }

    /// Hands `event` to every watch it fires; returns how many callers got it.
    pub(crate) fn dispatch(&mut self, event: &WatchEvent) -> usize {
        let mut told = 0;
        for kind in one_shot_kinds(event.kind) {
            let Some(waiters) = self.waiters.remove(&(event.path.clone(), *kind)) else {
                continue;
            };
            for waiter in waiters {
                if let Waiter::OneShot(tx) = waiter
                    && tx.send(Ok(event.clone())).is_ok()
                {
                    told += 1;
                }
            }
        }
        told += self.deliver(&event.path, SpecKind::Persistent, event);
        if self.recursive_keys > 0 && event.kind != ChangeKind::NodeChildrenChanged {
            let mut at = Some(event.path.as_str());
            while let Some(path) = at {
                told += self.deliver(path, SpecKind::PersistentRecursive, event);
                at = parent(path);
            }
        }
        told
    }

    /// Offers `event` to the persistent watches of (path, kind); forgets those whose
    /// consumer is gone or lagging.
    fn deliver(&mut self, path: &str, kind: SpecKind, event: &WatchEvent) -> usize {
        let key = (path.to_owned(), kind);
        let Some(waiters) = self.waiters.get_mut(&key) else { return 0 };
        let mut told = 0;
        waiters.retain(|waiter| match waiter {
            Waiter::Persistent(sink) => {
                let delivered = sink.offer(event) == Delivery::Delivered;
                told += usize::from(delivered);
                delivered
            }
            Waiter::OneShot(_) => true,
        });
        if waiters.is_empty() {
            self.forget_key(&key);
        }
        told
    }

    /// The watches to set again on a resume, sorted, one per (path, kind); watches whose
    /// callers have all dropped their handles are forgotten here.
    pub(crate) fn specs(&mut self) -> Vec<WatchSpec> {
        let gone: Vec<(String, SpecKind)> = self
            .waiters
            .iter_mut()
            .filter_map(|(key, waiters)| {
                waiters.retain(|w| !w.is_gone());
                waiters.is_empty().then(|| key.clone())
            })
            .collect();
        for key in gone {
            self.forget_key(&key);
        }
        let mut specs: Vec<WatchSpec> = self
            .waiters
            .keys()
            .map(|(path, kind)| WatchSpec { path: path.clone(), kind: *kind })
            .collect();
        specs.sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
        specs
    }

    /// Removes the watches of `path` that `which` names (`Data` takes `Exists` too, as
    /// the server keeps one kind for both); each ends with [`ClientError::WatchRemoved`].
    /// Returns how many callers were told.
    pub(crate) fn remove(&mut self, path: &str, which: RemoveKind) -> usize {
        let mut told = 0;
        for kind in removed_kinds(which) {
            let key = (path.to_owned(), *kind);
            if let Some(waiters) = self.waiters.get(&key) {
                told += waiters.len();
                self.forget_key(&key);
            }
        }
        told
    }

    /// Ends every watch with `error` (the session is over).
    pub(crate) fn end_all(&mut self, error: &ClientError) {
        for (_, waiters) in self.waiters.drain() {
            for waiter in waiters {
                waiter.end(error.clone());
            }
        }
        self.recursive_keys = 0;
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Drops a key; its remaining waiters are told the watch was removed.
    fn forget_key(&mut self, key: &(String, SpecKind)) {
        if let Some(waiters) = self.waiters.remove(key) {
            if key.1 == SpecKind::PersistentRecursive {
                self.recursive_keys -= 1;
            }
            for waiter in waiters {
                waiter.end(ClientError::WatchRemoved { path: key.0.clone() });
            }
        }
    }
}

/// The one-shot kinds an event fires on its own path.
fn one_shot_kinds(kind: ChangeKind) -> &'static [SpecKind] {
    match kind {
        ChangeKind::NodeCreated | ChangeKind::NodeDataChanged => {
            &[SpecKind::Data, SpecKind::Exists]
        }
        ChangeKind::NodeDeleted => &[SpecKind::Data, SpecKind::Exists, SpecKind::Child],
        ChangeKind::NodeChildrenChanged => &[SpecKind::Child],
    }
}

fn removed_kinds(which: RemoveKind) -> &'static [SpecKind] {
    match which {
        RemoveKind::Data => &[SpecKind::Data, SpecKind::Exists],
        RemoveKind::Child => &[SpecKind::Child],
        RemoveKind::Persistent => &[SpecKind::Persistent],
        RemoveKind::PersistentRecursive => &[SpecKind::PersistentRecursive],
        RemoveKind::Any => &[
            SpecKind::Data,
            SpecKind::Exists,
            SpecKind::Child,
            SpecKind::Persistent,
            SpecKind::PersistentRecursive,
        ],
    }
}

/// The parent of a path as the server sent it; `None` for the root (and for anything
/// without a `/`, which no valid path is).
fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::watch_handle::{PersistentWatch, Watch};

    fn event(kind: ChangeKind, path: &str, zxid: u64) -> WatchEvent {
        WatchEvent { kind, path: path.to_owned(), zxid }
    }

    fn one_shot(manager: &mut WatchManager, path: &str, kind: SpecKind) -> Watch {
        let (tx, watch) = Watch::new(path);
        manager.add_one_shot(path, kind, tx);
        watch
    }

    fn persistent(manager: &mut WatchManager, path: &str, recursive: bool) -> PersistentWatch {
        let (sink, watch) = PersistentWatch::new(path, recursive, 16);
        manager.add_persistent(path, recursive, sink);
        watch
    }

    fn fired(watch: &mut Watch) -> Option<ChangeKind> {
        match watch.try_event() {
            Some(Ok(event)) => Some(event.kind),
            Some(Err(e)) => panic!("watch ended with {e}"),
            None => None,
        }
    }

    /// The events a persistent watch has queued, by (kind, path).
    async fn queued(watch: &mut PersistentWatch) -> Vec<(ChangeKind, String)> {
        let mut out = Vec::new();
        while let Ok(Some(Ok(event))) =
            tokio::time::timeout(std::time::Duration::ZERO, watch.recv()).await
        {
            out.push((event.kind, event.path));
        }
        out
    }

    #[test]
    fn data_and_exists_watches_fire_on_create_change_and_delete() {
        for kind in [ChangeKind::NodeCreated, ChangeKind::NodeDataChanged, ChangeKind::NodeDeleted]
        {
            let mut m = WatchManager::default();
            let mut data = one_shot(&mut m, "/a", SpecKind::Data);
            let mut exists = one_shot(&mut m, "/a", SpecKind::Exists);
            assert_eq!(m.dispatch(&event(kind, "/a", 5)), 2);
            assert_eq!((fired(&mut data), fired(&mut exists)), (Some(kind), Some(kind)));
            assert!(m.is_empty(), "one-shot watches are forgotten once fired");
        }
    }

    #[test]
    fn data_watches_ignore_child_events_and_other_paths() {
        let mut m = WatchManager::default();
        let mut data = one_shot(&mut m, "/a", SpecKind::Data);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeChildrenChanged, "/a", 1)), 0);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDataChanged, "/a/b", 2)), 0);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDataChanged, "/ab", 3)), 0);
        assert_eq!(fired(&mut data), None);
        assert_eq!(m.specs().len(), 1);
    }

    #[test]
    fn child_watches_fire_on_children_changed_and_delete_only() {
        let mut m = WatchManager::default();
        let mut child = one_shot(&mut m, "/a", SpecKind::Child);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDataChanged, "/a", 1)), 0);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeCreated, "/a", 2)), 0);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeChildrenChanged, "/a", 3)), 1);
        assert_eq!(fired(&mut child), Some(ChangeKind::NodeChildrenChanged));
        let mut again = one_shot(&mut m, "/a", SpecKind::Child);
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDeleted, "/a", 4)), 1);
        assert_eq!(fired(&mut again), Some(ChangeKind::NodeDeleted));
    }

    #[test]
    fn every_caller_on_the_same_path_and_kind_gets_the_event() {
        let mut m = WatchManager::default();
        let mut watches: Vec<Watch> =
            (0..3).map(|_| one_shot(&mut m, "/a", SpecKind::Data)).collect();
        assert_eq!(m.specs().len(), 1, "one spec per (path, kind)");
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDataChanged, "/a", 9)), 3);
        for watch in &mut watches {
            assert_eq!(fired(watch), Some(ChangeKind::NodeDataChanged));
        }
        assert_eq!(m.dispatch(&event(ChangeKind::NodeDataChanged, "/a", 10)), 0);
    }

    #[tokio::test]
    async fn persistent_watches_see_every_event_of_their_path_and_stay() {
        let mut m = WatchManager::default();
        let mut watch = persistent(&mut m, "/a", false);
        for (kind, path) in [
            (ChangeKind::NodeDataChanged, "/a"),
            (ChangeKind::NodeCreated, "/a/b"),
            (ChangeKind::NodeChildrenChanged, "/a"),
            (ChangeKind::NodeDeleted, "/a"),
            (ChangeKind::NodeCreated, "/a"),
        ] {
            m.dispatch(&event(kind, path, 1));
        }
        assert_eq!(
            queued(&mut watch).await,
            [
                (ChangeKind::NodeDataChanged, "/a".to_owned()),
                (ChangeKind::NodeChildrenChanged, "/a".to_owned()),
                (ChangeKind::NodeDeleted, "/a".to_owned()),
                (ChangeKind::NodeCreated, "/a".to_owned()),
            ]
        );
        assert_eq!(m.specs(), [WatchSpec { path: "/a".into(), kind: SpecKind::Persistent }]);
    }

    #[tokio::test]
    async fn recursive_watches_see_their_subtree_but_no_child_events() {
        let mut m = WatchManager::default();
        let mut sub = persistent(&mut m, "/a", true);
        let mut root = persistent(&mut m, "/", true);
        for (kind, path) in [
            (ChangeKind::NodeCreated, "/a/b/c"),
            (ChangeKind::NodeChildrenChanged, "/a/b"),
            (ChangeKind::NodeDataChanged, "/a"),
            (ChangeKind::NodeCreated, "/ab"),
            (ChangeKind::NodeDeleted, "/a/b/c"),
        ] {
            m.dispatch(&event(kind, path, 1));
        }
        assert_eq!(
            queued(&mut sub).await,
            [
                (ChangeKind::NodeCreated, "/a/b/c".to_owned()),
                (ChangeKind::NodeDataChanged, "/a".to_owned()),
                (ChangeKind::NodeDeleted, "/a/b/c".to_owned()),
            ]
        );
        assert_eq!(queued(&mut root).await.len(), 4, "the root sees /ab too");
    }

    #[tokio::test]
    async fn a_lagging_consumer_gets_its_queue_then_a_final_error() {
        let mut m = WatchManager::default();
        let (sink, mut watch) = PersistentWatch::new("/a", false, 2);
        m.add_persistent("/a", false, sink);
        for zxid in 1..=3 {
            m.dispatch(&event(ChangeKind::NodeDataChanged, "/a", zxid));
        }
        assert!(m.is_empty(), "the lagging watch is dropped");
        assert_eq!(watch.recv().await.unwrap().unwrap().zxid, 1);
        assert_eq!(watch.recv().await.unwrap().unwrap().zxid, 2);
        assert_eq!(
            watch.recv().await.unwrap().unwrap_err(),
            ClientError::WatchLagged { path: "/a".into(), max: 2 }
        );
        assert!(watch.recv().await.is_none());
    }

    #[test]
    fn specs_list_each_kind_once_and_skip_dropped_watches() {
        let mut m = WatchManager::default();
        let _data = one_shot(&mut m, "/b", SpecKind::Data);
        let _exists = one_shot(&mut m, "/missing", SpecKind::Exists);
        let _child = one_shot(&mut m, "/", SpecKind::Child);
        drop(one_shot(&mut m, "/dropped", SpecKind::Data));
        let (sink, _recursive) = PersistentWatch::new("/p", true, 4);
        m.add_persistent("/p", true, sink);
        let spec = |path: &str, kind| WatchSpec { path: path.into(), kind };
        assert_eq!(
            m.specs(),
            [
                spec("/", SpecKind::Child),
                spec("/b", SpecKind::Data),
                spec("/missing", SpecKind::Exists),
                spec("/p", SpecKind::PersistentRecursive),
            ]
        );
    }

    #[tokio::test]
    async fn remove_ends_the_named_kinds_only() {
        let mut m = WatchManager::default();
        let mut data = one_shot(&mut m, "/a", SpecKind::Data);
        let mut exists = one_shot(&mut m, "/a", SpecKind::Exists);
        let mut child = one_shot(&mut m, "/a", SpecKind::Child);
        let mut stream = persistent(&mut m, "/a", false);
        assert_eq!(m.remove("/a", RemoveKind::Data), 2);
        let removed = ClientError::WatchRemoved { path: "/a".into() };
        assert_eq!(data.try_event(), Some(Err(removed.clone())));
        assert_eq!(exists.try_event(), Some(Err(removed)));
        assert_eq!(child.try_event(), None);
        assert_eq!(m.remove("/a", RemoveKind::Any), 2);
        assert!(child.try_event().unwrap().is_err());
        assert!(stream.recv().await.is_none(), "a removed stream ends without an error");
        assert_eq!(m.remove("/a", RemoveKind::Any), 0);
    }

    #[tokio::test]
    async fn the_end_of_the_session_ends_every_watch() {
        let mut m = WatchManager::default();
        let mut one = one_shot(&mut m, "/a", SpecKind::Data);
        let mut stream = persistent(&mut m, "/", true);
        m.dispatch(&event(ChangeKind::NodeCreated, "/x", 3));
        let expired = ClientError::SessionExpired { session_id: 1, message: "gone".into() };
        m.end_all(&expired);
        assert_eq!(one.try_event(), Some(Err(expired.clone())));
        assert_eq!(stream.recv().await.unwrap().unwrap().path, "/x");
        assert_eq!(stream.recv().await, Some(Err(expired)));
        assert_eq!(stream.recv().await, None);
        assert!(m.is_empty());
        // A watch already dispatched to is not affected by the end.
        assert_eq!(m.dispatch(&event(ChangeKind::NodeCreated, "/x", 4)), 0);
    }

    #[test]
    fn parents_walk_up_to_the_root() {
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(parent("nonsense"), None);
    }
}
