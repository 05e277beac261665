//! Waiting for a condition, always against a deadline.

use std::{
    future::Future,
    thread,
    time::{Duration, Instant},
};

/// The pause between two checks of a polled condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `condition` every [`POLL_INTERVAL`] until it holds (true) or `deadline` passes
/// (false). The condition is checked at least once.
pub fn wait_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// [`wait_until`] for async conditions, on the tokio runtime.
pub async fn wait_until_async<F, Fut>(deadline: Instant, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_gives_up_at_the_deadline() {
        let mut calls = 0;
        assert!(wait_until(Instant::now() + Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert!(!wait_until(Instant::now(), || false));
    }

    #[tokio::test]
    async fn wait_until_async_checks_until_it_holds() {
        let mut calls = 0;
        let held = wait_until_async(Instant::now() + Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { now == 2 }
        })
        .await;
        assert!(held);
        assert!(!wait_until_async(Instant::now(), || async { false }).await);
    }
}
