use std::fmt;

/// A transaction id: the epoch of the leader that proposed it in the high 32 bits,
/// a counter within that epoch in the low 32 bits. Ordering zxids as integers orders
/// them as ZAB does: first by epoch, then by counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(u64);

impl Zxid {
    /// The zxid before any txn: an empty history.
    pub const ZERO: Zxid = Zxid(0);

    pub const fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }

    pub const fn from_u64(raw: u64) -> Zxid {
        Zxid(raw)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub const fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub const fn counter(self) -> u32 {
        self.0 as u32
    }

    /// The next zxid of the same epoch; `None` when the counter is exhausted (a new
    /// epoch must start before anything else is proposed).
    pub const fn next(self) -> Option<Zxid> {
        match self.counter().checked_add(1) {
            Some(counter) => Some(Zxid::new(self.epoch(), counter)),
            None => None,
        }
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl From<Zxid> for u64 {
    fn from(zxid: Zxid) -> u64 {
        zxid.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_counter_round_trip() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.as_u64(), 0x3_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert_eq!(Zxid::from_u64(z.as_u64()), z);
        assert_eq!(u64::from(z), 0x3_0000_0007);
    }

    #[test]
    fn order_is_epoch_first() {
        assert!(Zxid::new(1, u32::MAX) < Zxid::new(2, 0));
        assert!(Zxid::new(2, 1) < Zxid::new(2, 2));
        assert!(Zxid::ZERO < Zxid::new(0, 1));
    }

    #[test]
    fn next_stays_in_the_epoch_and_stops_at_the_end() {
        assert_eq!(Zxid::new(5, 9).next(), Some(Zxid::new(5, 10)));
        assert_eq!(Zxid::new(5, u32::MAX).next(), None);
    }

    #[test]
    fn displays_as_hex() {
        assert_eq!(Zxid::new(1, 2).to_string(), "0x100000002");
        assert_eq!(Zxid::ZERO.to_string(), "0x0");
    }
}
