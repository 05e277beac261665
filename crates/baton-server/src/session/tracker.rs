//! Session liveness: which sessions are alive, and when each expires.
//!
//! Pure: time is an argument (`now_ms`), never read here, so expiry is tested with
//! injected time. As in ZooKeeper, expiry times are rounded up to a tick boundary
//! and sessions are kept in one bucket per tick: `expired(now)` looks only at the
//! buckets that are due, never at every session.
//!
//! The tracker decides *that* a session expired; the server then logs a
//! CloseSession txn, and only that txn ends the session (and removes its
//! ephemerals) on every server.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Negotiated timeouts are clamped to [MIN_TICKS, MAX_TICKS] ticks (ZooKeeper's
/// defaults: minSessionTimeout = 2 ticks, maxSessionTimeout = 20 ticks).
pub const TIMEOUT_TICKS_MIN: u64 = 2;
pub const TIMEOUT_TICKS_MAX: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    timeout_ms: u64,
    /// The bucket (a tick boundary, in ms) the session is in.
    expires_at_ms: u64,
    /// Expiry was reported and a close is under way: pings no longer help.
    closing: bool,
}

#[derive(Debug, Clone)]
pub struct SessionTracker {
    tick_ms: u64,
    sessions: HashMap<u64, Entry>,
    buckets: BTreeMap<u64, HashSet<u64>>,
}

impl SessionTracker {
    pub fn new(tick_ms: u64) -> Self {
        assert!(tick_ms > 0, "tick must be positive");
        SessionTracker { tick_ms, sessions: HashMap::new(), buckets: BTreeMap::new() }
    }

    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// The timeout a client asking for `requested_ms` gets.
    pub fn negotiate(&self, requested_ms: u64) -> u64 {
        requested_ms.clamp(TIMEOUT_TICKS_MIN * self.tick_ms, TIMEOUT_TICKS_MAX * self.tick_ms)
    }

    /// Starts tracking a session (new, recovered from the log, or moved here).
    pub fn add(&mut self, session: u64, timeout_ms: u64, now_ms: u64) {
        if let Some(old) = self.sessions.remove(&session) {
            self.unbucket(session, old.expires_at_ms);
        }
        let expires_at_ms = self.bucket_for(now_ms + timeout_ms);
        self.sessions.insert(session, Entry { timeout_ms, expires_at_ms, closing: false });
        self.buckets.entry(expires_at_ms).or_default().insert(session);
    }

    /// Records a sign of life. False if the session is unknown or already closing:
    /// the client must be told its session expired.
    pub fn touch(&mut self, session: u64, now_ms: u64) -> bool {
        let Some(entry) = self.sessions.get(&session).copied() else { return false };
        if entry.closing {
            return false;
        }
        let expires_at_ms = self.bucket_for(now_ms + entry.timeout_ms);
        if expires_at_ms != entry.expires_at_ms {
            self.unbucket(session, entry.expires_at_ms);
            self.buckets.entry(expires_at_ms).or_default().insert(session);
            self.sessions.insert(session, Entry { expires_at_ms, ..entry });
        }
        true
    }

    /// Marks a session as closing (an explicit close is on its way through the log).
    /// The close of an expired session could not be logged (this member stopped
    /// leading, or its queue was full): the session is due again at the next
    /// round, and keeps its own timeout, so that a touch (a new leader gives every
    /// session a full timeout) gives it a full timeout again, not none.
    pub fn close_failed(&mut self, session: u64, now_ms: u64) {
        let Some(entry) = self.sessions.get(&session).copied() else { return };
        self.add(session, 0, now_ms);
        if let Some(added) = self.sessions.get_mut(&session) {
            added.timeout_ms = entry.timeout_ms;
        }
    }

    pub fn set_closing(&mut self, session: u64) {
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.closing = true;
        }
    }

    /// Forgets a session (its close txn was applied).
    pub fn remove(&mut self, session: u64) {
        if let Some(entry) = self.sessions.remove(&session) {
            self.unbucket(session, entry.expires_at_ms);
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions whose expiry time is at or before `now_ms`, sorted, at most `max`.
    /// They are marked closing; the caller logs a close for each. A session stays
    /// tracked until `remove`, so a close that fails to be logged is retried by the
    /// caller, not forgotten.
    pub fn expired(&mut self, now_ms: u64, max: usize) -> Vec<u64> {
        let mut due = Vec::new();
        let keys: Vec<u64> = self.buckets.range(..=now_ms).map(|(k, _)| *k).collect();
        for key in keys {
            let Some(bucket) = self.buckets.get_mut(&key) else { continue };
            let mut ids: Vec<u64> = bucket.iter().copied().collect();
            ids.sort_unstable();
            for id in ids {
                if due.len() == max {
                    return due;
                }
                bucket.remove(&id);
                if let Some(entry) = self.sessions.get_mut(&id) {
                    entry.closing = true;
                    due.push(id);
                }
            }
            if bucket.is_empty() {
                self.buckets.remove(&key);
            }
        }
        due
    }

    /// When the next bucket is due, to sleep until then.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// The first tick boundary at or after `t`: a session never expires early, and
    /// at most one tick late.
    fn bucket_for(&self, t: u64) -> u64 {
        t.div_ceil(self.tick_ms) * self.tick_ms
    }

    fn unbucket(&mut self, session: u64, bucket: u64) {
        if let Some(ids) = self.buckets.get_mut(&bucket) {
            ids.remove(&session);
            if ids.is_empty() {
                self.buckets.remove(&bucket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_clamps_to_ticks() {
        let t = SessionTracker::new(2_000);
        assert_eq!(t.negotiate(1), 4_000);
        assert_eq!(t.negotiate(10_000), 10_000);
        assert_eq!(t.negotiate(1_000_000), 40_000);
    }

    #[test]
    fn expires_not_before_timeout_and_within_one_tick() {
        let mut t = SessionTracker::new(100);
        t.add(1, 1_000, 1_050);
        // Due at 2_050 rounded up to 2_100.
        assert!(t.expired(2_049, 10).is_empty());
        assert!(t.expired(2_099, 10).is_empty());
        assert_eq!(t.expired(2_100, 10), vec![1]);
        assert!(!t.touch(1, 2_100), "a closing session cannot be revived");
        assert!(t.expired(5_000, 10).is_empty(), "reported once");
        t.remove(1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn touch_postpones_expiry() {
        let mut t = SessionTracker::new(100);
        t.add(7, 500, 0);
        for now in (100..3_000).step_by(200) {
            assert!(t.touch(7, now));
            assert!(t.expired(now, 10).is_empty());
        }
        assert_eq!(t.next_expiry_ms(), Some(3_400));
        assert_eq!(t.expired(3_400, 10), vec![7]);
    }

    #[test]
    fn unknown_sessions_are_refused_and_batches_bounded() {
        let mut t = SessionTracker::new(10);
        assert!(!t.touch(99, 0));
        for id in 0..5 {
            t.add(id, 20, 0);
        }
        assert_eq!(t.expired(20, 3), vec![0, 1, 2]);
        assert_eq!(t.expired(20, 3), vec![3, 4]);
        assert_eq!(t.len(), 5, "tracked until removed");
    }

    /// A leader whose close of an expired session failed (it stopped leading) gave
    /// the session a timeout of 0: once it led again, the new leader's full timeout
    /// for every session was none, and it expired the live session at once.
    #[test]
    fn a_failed_close_is_due_at_once_and_keeps_the_timeout() {
        let mut t = SessionTracker::new(100);
        t.add(1, 1_000, 0);
        assert_eq!(t.expired(1_000, 10), vec![1]);
        t.close_failed(1, 1_050);
        assert_eq!(t.expired(1_100, 10), vec![1], "due again at the next round");
        t.close_failed(1, 1_150);
        assert!(t.touch(1, 1_150), "heard from again (or a new leader's full timeout)");
        assert!(t.expired(2_100, 10).is_empty());
        assert_eq!(t.expired(2_200, 10), vec![1]);
        t.remove(1);
        t.close_failed(1, 2_300);
        assert_eq!(t.len(), 0, "a session closed meanwhile is not tracked again");
    }

    #[test]
    fn explicit_close_stops_pings() {
        let mut t = SessionTracker::new(10);
        t.add(3, 100, 0);
        t.set_closing(3);
        assert!(!t.touch(3, 5));
    }
}
