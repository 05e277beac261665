//! Background work (writing and saving snapshots) on threads of its own, at a lower
//! CPU priority than the driver, the storage thread and the request handlers.
//!
//! A snapshot of a million znodes is about a second of CPU; every member of an
//! ensemble takes one at nearly the same zxid, and on a machine with fewer cores
//! than members that second was taken from the threads that commit writes (the 1M
//! load's p99.9 was ~1 s with snapshots and 0.17 s without). At nice
//! [`BACKGROUND_NICE`] the scheduler still gives the snapshot about a tenth of a
//! busy core, so it always finishes, and all the idle CPU there is.
//!
//! A thread is made per job and ends with it: a lowered priority cannot always be
//! raised again without privileges, so a pooled thread must never be lowered.

use tokio::sync::oneshot;

use crate::error::ServerError;

/// The nice value of background threads (0 is the default, 19 the lowest).
const BACKGROUND_NICE: i32 = 10;

/// Runs `job` on a new thread named `name` at background priority; its result.
pub(crate) async fn run<T: Send + 'static>(
    name: &'static str,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServerError> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_priority(name);
            let _ = done.send(job());
        })
        .map_err(|error| ServerError::TaskFailed { task: name, message: error.to_string() })?;
    result.await.map_err(|_| ServerError::TaskFailed {
        task: name,
        message: "the thread ended without a result (it panicked)".into(),
    })
}

/// Lowers the calling thread's priority (Linux: a thread id names one thread).
/// Best effort: a failure leaves the thread at normal priority.
fn lower_priority(name: &str) {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE) {
        tracing::debug!(%error, thread = name, "background thread left at normal priority");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_job_runs_on_a_thread_of_its_own_at_lower_priority() {
        let (name, nice) = super::run("baton-test-job", || {
            let me = rustix::thread::gettid();
            let nice = rustix::process::getpriority_process(Some(me)).unwrap();
            (std::thread::current().name().map(str::to_owned), nice)
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("baton-test-job"));
        assert!(nice >= super::BACKGROUND_NICE, "nice {nice}");
        let caller = rustix::process::getpriority_process(None).unwrap();
        assert!(caller < super::BACKGROUND_NICE, "the caller's priority is its own");
    }
}
