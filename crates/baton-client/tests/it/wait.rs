//! Waiting for a condition, always with a deadline.

use std::time::Duration;

use baton_client::{Session, SessionState};
use tokio::time::Instant;

/// How long any condition a test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// The pause between two checks of a polled condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `check` until it holds; panics naming `what` after [`DEADLINE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until the session is in state `want`.
pub async fn state(session: &Session, want: SessionState) {
    let mut states = session.states();
    let reached = tokio::time::timeout(DEADLINE, states.wait_for(|s| *s == want)).await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "session never reached {want}; it is {}",
        session.state()
    );
}

/// Awaits `future` within [`DEADLINE`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
