//! New session ids and passwords.
//!
//! An id is unique across the ensemble and across restarts without any
//! coordination, as in ZooKeeper: the top byte is the server's id, the next bits
//! the server's start time in ms, the low bits a counter. Two servers never share a
//! top byte; one server restarted later starts from a later time. The tree still
//! has the final say: an id already open is skipped.
//!
//! A password is 64 random bits from the OS, logged in the CreateSession txn so
//! that every server can check a resuming client.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock;

#[derive(Debug)]
pub(crate) struct SessionIds {
    next: AtomicU64,
}

impl SessionIds {
    pub(crate) fn new(server_id: u8) -> SessionIds {
        // 40 bits of ms (about 35 years) above a 16-bit counter.
        let time = u64::try_from(clock::now_ms()).unwrap_or(0) & ((1 << 40) - 1);
        let first = (u64::from(server_id) << 56) | (time << 16);
        SessionIds { next: AtomicU64::new(first.max(1)) }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A new random password; an error if the OS has no randomness to give.
pub(crate) fn new_password() -> Result<u64, getrandom::Error> {
    getrandom::u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_server_and_increase() {
        let ids = SessionIds::new(3);
        let a = ids.next_id();
        let b = ids.next_id();
        assert_eq!(a >> 56, 3);
        assert_eq!(b, a + 1);
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(new_password().unwrap(), new_password().unwrap());
    }
}
