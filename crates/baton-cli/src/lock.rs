//! `lock PATH -- COMMAND [ARGS...]`: runs COMMAND while holding the lock at PATH.
//!
//! COMMAND inherits stdin, stdout and stderr, and gets `BATON_LOCK_NODE` (the holder's
//! node) and `BATON_LOCK_FENCING_TOKEN` (its creation zxid, which grows with every holder)
//! in its environment. baton exits with COMMAND's exit code (128+N if signal N ended it).
//! If the session expires while COMMAND runs, the lock is gone: COMMAND is killed and
//! baton fails with exit code 6. SIGINT/SIGTERM to baton kill COMMAND, then release.

use std::{os::unix::process::ExitStatusExt, process::ExitStatus};

use anyhow::Context;
use baton_client::{ClientError, Session, SessionOptions, recipes::Lock};
use tokio::process::{Child, Command};

use crate::{args::LockArgs, signal::Interrupts};

/// The exit code when a signal stops baton while it waits for the lock (as a shell
/// reports a command ended by SIGINT).
pub const INTERRUPTED: i32 = 128 + 2;

pub async fn run(
    endpoints: &[String],
    options: SessionOptions,
    args: LockArgs,
) -> anyhow::Result<i32> {
    let mut interrupts = Interrupts::install()?;
    let Some((program, arguments)) = args.command.split_first() else {
        anyhow::bail!("no command to run");
    };
    let session = Session::connect(endpoints, options).await?;
    let lock = Lock::new(&session, &args.path);
    let guard = tokio::select! {
        guard = lock.acquire() => guard?,
        _ = interrupts.recv() => {
            let _ = session.close().await;
            return Ok(INTERRUPTED);
        }
    };
    let child = Command::new(program)
        .args(arguments)
        .env("BATON_LOCK_NODE", guard.path())
        .env("BATON_LOCK_FENCING_TOKEN", guard.fencing_token().to_string())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program}"));
    let outcome = match child {
        Ok(child) => supervise(&session, child, &mut interrupts).await,
        Err(error) => Err(error),
    };
    // Release before reporting; if the release fails, closing the session releases too.
    let _ = guard.release().await;
    let _ = session.close().await;
    outcome.map(exit_code)
}

/// Waits for the command; kills it on a signal or when the session (and so the lock) ends.
async fn supervise(
    session: &Session,
    mut child: Child,
    interrupts: &mut Interrupts,
) -> anyhow::Result<ExitStatus> {
    let mut states = session.states();
    let mut lost = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the command")?,
            _ = interrupts.recv() => {
                let _ = child.start_kill();
            }
            changed = states.changed(), if lost.is_none() => {
                if changed.is_err() || states.borrow_and_update().is_final() {
                    let _ = child.start_kill();
                    lost = Some(session.end_error().unwrap_or(ClientError::Closed));
                }
            }
        }
    };
    match lost {
        Some(error) => {
            Err(anyhow::Error::new(error).context("the lock was lost; the command was killed"))
        }
        None => Ok(status),
    }
}

/// The shell's convention: the exit code, or 128+N for a command ended by signal N.
fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(2)), INTERRUPTED);
    }
}
