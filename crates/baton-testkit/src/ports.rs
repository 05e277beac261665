//! Ports that stay put across a restart.

use std::{
    net::TcpListener,
    sync::atomic::{AtomicU16, Ordering},
};

use crate::Error;

/// Where [`fixed_free_port`] looks: below Linux's ephemeral range (32768 and up), where
/// port-0 listeners and outgoing connections of other processes take theirs, so a port
/// found free stays free until the process it is meant for binds it.
pub const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port that is free now, for a process that must be found on the same port
/// after a restart (an ensemble member, a peer). Each call in this process returns a
/// different port; processes start at different offsets, so that concurrent test
/// binaries rarely try the same ones.
pub fn fixed_free_port() -> Result<u16, Error> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = FIXED_PORTS.end - FIXED_PORTS.start;
    let offset = (std::process::id() % u32::from(span)) as u16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n >= span {
            let source = std::io::Error::new(std::io::ErrorKind::AddrInUse, "all tried");
            return Err(Error::Io { what: format!("a free port in {FIXED_PORTS:?}"), source });
        }
        let port = FIXED_PORTS.start + (offset + n) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_in_range() {
        let ports: Vec<u16> = (0..20).map(|_| fixed_free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|p| FIXED_PORTS.contains(p)));
        assert!(TcpListener::bind(("127.0.0.1", ports[0])).is_ok());
    }
}
