//! The requests a session has sent and not yet had answered, in the order sent.
//!
//! The server answers one session's requests in the order they were sent (DESIGN:
//! FIFO client order), so every reply must answer the oldest outstanding request. A
//! reply that does not is a broken stream: the connection is dropped and every request
//! on it fails with ConnectionLoss, rather than a caller getting someone else's answer.

use std::collections::VecDeque;

use thiserror::Error;

/// Why a reply does not fit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum Mismatch {
    #[error("reply to xid {got} when no request is outstanding")]
    Unexpected { got: u64 },
    #[error("reply to xid {got} while the oldest outstanding request is xid {expected}")]
    OutOfOrder { expected: u64, got: u64 },
}

/// Outstanding requests, oldest first, each with what the caller needs back.
#[derive(Debug)]
pub(crate) struct Fifo<T> {
    queue: VecDeque<(u64, T)>,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo { queue: VecDeque::new() }
    }
}

impl<T> Fifo<T> {
    /// Records a sent request. Xids only grow within a session.
    pub(crate) fn push(&mut self, xid: u64, entry: T) {
        assert!(self.queue.back().is_none_or(|(last, _)| *last < xid), "xids must grow");
        self.queue.push_back((xid, entry));
    }

    /// The request a reply to `xid` answers: it must be the oldest outstanding one.
    pub(crate) fn complete(&mut self, xid: u64) -> Result<T, Mismatch> {
        match self.queue.front() {
            None => Err(Mismatch::Unexpected { got: xid }),
            Some((expected, _)) if *expected != xid => {
                Err(Mismatch::OutOfOrder { expected: *expected, got: xid })
            }
            Some(_) => Ok(self.queue.pop_front().map(|(_, entry)| entry).expect("front exists")),
        }
    }

    /// Takes every outstanding request, oldest first (the connection is gone).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queue.drain(..).map(|(_, entry)| entry)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_complete_requests_in_the_order_sent() {
        let mut fifo = Fifo::default();
        for xid in 1..=3 {
            fifo.push(xid, format!("request {xid}"));
        }
        assert_eq!(fifo.complete(1).unwrap(), "request 1");
        assert_eq!(fifo.complete(2).unwrap(), "request 2");
        assert_eq!(fifo.len(), 1);
        assert_eq!(fifo.complete(3).unwrap(), "request 3");
        assert!(fifo.is_empty());
    }

    #[test]
    fn a_reply_out_of_order_is_a_mismatch_and_changes_nothing() {
        let mut fifo = Fifo::default();
        fifo.push(7, "a");
        fifo.push(8, "b");
        assert_eq!(fifo.complete(8), Err(Mismatch::OutOfOrder { expected: 7, got: 8 }));
        assert_eq!(fifo.complete(6), Err(Mismatch::OutOfOrder { expected: 7, got: 6 }));
        assert_eq!(fifo.len(), 2);
        assert_eq!(fifo.complete(7), Ok("a"));
    }

    #[test]
    fn a_reply_with_nothing_outstanding_is_a_mismatch() {
        let mut fifo: Fifo<()> = Fifo::default();
        assert_eq!(fifo.complete(1), Err(Mismatch::Unexpected { got: 1 }));
        assert!(Mismatch::Unexpected { got: 1 }.to_string().contains("xid 1"));
    }

    #[test]
    fn drain_yields_the_oldest_first_and_empties() {
        let mut fifo = Fifo::default();
        fifo.push(1, 'a');
        fifo.push(5, 'b');
        assert_eq!(fifo.drain().collect::<String>(), "ab");
        assert!(fifo.is_empty());
        fifo.push(6, 'c');
        assert_eq!(fifo.complete(6), Ok('c'));
    }

    #[test]
    #[should_panic(expected = "xids must grow")]
    fn xids_must_grow() {
        let mut fifo = Fifo::default();
        fifo.push(2, ());
        fifo.push(2, ());
    }
}
