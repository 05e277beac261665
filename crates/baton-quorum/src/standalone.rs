//! The single-member path: an ensemble of one.

use crate::{QuorumError, Zxid};

/// The durable epochs of ZAB, as this crate sees them (the server maps them to and
/// from its store's meta).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epochs {
    /// The highest epoch this server has agreed to (acceptedEpoch).
    pub accepted_epoch: u32,
    /// The epoch whose history this server has adopted (currentEpoch).
    pub current_epoch: u32,
}

/// The state machine of a standalone server.
///
/// The driver's order, for every txn:
/// 1. [`Standalone::propose`] assigns the next zxid;
/// 2. the driver logs the txn and makes it durable (one flush per batch);
/// 3. [`Standalone::persisted`] reports the durable prefix; with a quorum of one
///    that prefix is committed at once;
/// 4. the driver applies txns up to [`Standalone::committed`], in zxid order, and
///    only then answers the clients.
///
/// As ZooKeeper does, every start is a new epoch (higher than any seen on disk), so
/// a zxid is never handed out twice even if the tail of the last run's log was lost;
/// the counter starts again at 1. The new epochs must be persisted before the first
/// zxid of the epoch is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standalone {
    epoch: u32,
    last_proposed: Zxid,
    committed: Zxid,
}

impl Standalone {
    /// Starts a run over a recovered history: `epochs` as stored, `last_logged` the
    /// last zxid in the log (or in the newest snapshot, if the log is empty).
    /// Returns the machine and the epochs to persist before anything is proposed.
    pub fn recover(epochs: Epochs, last_logged: Zxid) -> Result<(Standalone, Epochs), QuorumError> {
        let highest = epochs.accepted_epoch.max(epochs.current_epoch).max(last_logged.epoch());
        let epoch = next_epoch(highest)?;
        let machine =
            Standalone { epoch, last_proposed: Zxid::new(epoch, 0), committed: last_logged };
        Ok((machine, Epochs { accepted_epoch: epoch, current_epoch: epoch }))
    }

    /// The epoch zxids are proposed in.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The next zxid. [`QuorumError::CounterExhausted`] when the epoch has no zxid
    /// left: start a new one with [`Standalone::new_epoch`].
    pub fn propose(&mut self) -> Result<Zxid, QuorumError> {
        let zxid = self
            .last_proposed
            .next()
            .ok_or(QuorumError::CounterExhausted { epoch: self.epoch, last: self.last_proposed })?;
        self.last_proposed = zxid;
        Ok(zxid)
    }

    /// Moves to the next epoch (the counter restarts at 1). Returns the epochs to
    /// persist before any zxid of the new epoch is logged.
    pub fn new_epoch(&mut self) -> Result<Epochs, QuorumError> {
        self.epoch = next_epoch(self.epoch)?;
        self.last_proposed = Zxid::new(self.epoch, 0);
        Ok(Epochs { accepted_epoch: self.epoch, current_epoch: self.epoch })
    }

    /// Reports that every proposal up to and including `up_to` is durable. In an
    /// ensemble of one, durable is committed.
    ///
    /// Panics if `up_to` was never proposed or goes back: the driver is broken.
    pub fn persisted(&mut self, up_to: Zxid) {
        assert!(
            up_to <= self.last_proposed,
            "persisted {up_to} but the last proposal is {}",
            self.last_proposed
        );
        assert!(up_to >= self.committed, "persisted {up_to} goes back from {}", self.committed);
        self.committed = up_to;
    }

    /// The last committed zxid: the driver may apply everything up to it.
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// The last zxid handed out (`epoch << 32` before the first of this epoch).
    pub fn last_proposed(&self) -> Zxid {
        self.last_proposed
    }
}

fn next_epoch(current: u32) -> Result<u32, QuorumError> {
    current.checked_add(1).ok_or(QuorumError::EpochExhausted { current })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Standalone {
        Standalone::recover(Epochs::default(), Zxid::ZERO).unwrap().0
    }

    #[test]
    fn a_fresh_store_starts_epoch_one_at_counter_one() {
        let (mut s, epochs) = Standalone::recover(Epochs::default(), Zxid::ZERO).unwrap();
        assert_eq!(epochs, Epochs { accepted_epoch: 1, current_epoch: 1 });
        assert_eq!(s.epoch(), 1);
        assert_eq!(s.committed(), Zxid::ZERO);
        assert_eq!(s.propose().unwrap(), Zxid::new(1, 1));
        assert_eq!(s.propose().unwrap(), Zxid::new(1, 2));
    }

    #[test]
    fn every_start_is_a_new_epoch_above_everything_seen() {
        let stored = Epochs { accepted_epoch: 4, current_epoch: 3 };
        let (mut s, epochs) = Standalone::recover(stored, Zxid::new(3, 77)).unwrap();
        assert_eq!(epochs, Epochs { accepted_epoch: 5, current_epoch: 5 });
        assert_eq!(s.committed(), Zxid::new(3, 77), "the recovered log is committed");
        let first = s.propose().unwrap();
        assert_eq!(first, Zxid::new(5, 1));
        assert!(first > Zxid::new(3, 77));
        // A log ahead of the stored epochs (meta lost or older) still wins.
        let (s, _) = Standalone::recover(Epochs::default(), Zxid::new(9, 1)).unwrap();
        assert_eq!(s.epoch(), 10);
    }

    #[test]
    fn persisted_commits_in_an_ensemble_of_one() {
        let mut s = fresh();
        let a = s.propose().unwrap();
        let b = s.propose().unwrap();
        s.persisted(a);
        assert_eq!(s.committed(), a);
        s.persisted(b);
        s.persisted(b);
        assert_eq!(s.committed(), b);
    }

    #[test]
    #[should_panic(expected = "the last proposal is")]
    fn persisting_what_was_never_proposed_is_a_bug() {
        let mut s = fresh();
        let a = s.propose().unwrap();
        s.persisted(a.next().unwrap());
    }

    #[test]
    #[should_panic(expected = "goes back")]
    fn persisted_never_goes_back() {
        let mut s = Standalone::recover(Epochs::default(), Zxid::new(2, 5)).unwrap().0;
        s.persisted(Zxid::new(2, 4));
    }

    #[test]
    fn an_exhausted_counter_asks_for_a_new_epoch() {
        let mut s = fresh();
        s.last_proposed = Zxid::new(1, u32::MAX - 1);
        assert_eq!(s.propose().unwrap(), Zxid::new(1, u32::MAX));
        let err = s.propose().unwrap_err();
        assert_eq!(err, QuorumError::CounterExhausted { epoch: 1, last: Zxid::new(1, u32::MAX) });
        assert!(err.to_string().contains("new epoch"), "{err}");
        assert_eq!(s.new_epoch().unwrap(), Epochs { accepted_epoch: 2, current_epoch: 2 });
        assert_eq!(s.propose().unwrap(), Zxid::new(2, 1));
        s.persisted(Zxid::new(2, 1));
        assert_eq!(s.committed(), Zxid::new(2, 1));
    }

    #[test]
    fn epoch_numbers_can_run_out() {
        let stored = Epochs { accepted_epoch: u32::MAX, current_epoch: u32::MAX };
        assert_eq!(
            Standalone::recover(stored, Zxid::ZERO).unwrap_err(),
            QuorumError::EpochExhausted { current: u32::MAX }
        );
    }
}
