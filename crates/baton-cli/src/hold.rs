//! The commands that hold a session open: `create -e` (the node lives as long as the
//! session) and `session open`. Both stop on SIGINT/SIGTERM or after `--hold-ms`, close
//! the session (so the server deletes its ephemerals at once) and exit 0; if the session
//! ends first, the command fails with its error (exit code 6).

use std::time::Duration;

use baton_client::{ClientError, Session, SessionOptions, SessionState};

use crate::{
    args::CreateArgs,
    exit, lines,
    output::{self, Output},
    run::data_arg,
    signal::Interrupts,
};

/// `create -e [-s] PATH [DATA] [--hold-ms MS]`: prints the path created, then holds.
pub async fn create_ephemeral(
    endpoints: &[String],
    options: SessionOptions,
    args: CreateArgs,
    json: bool,
) -> anyhow::Result<i32> {
    let mut interrupts = Interrupts::install()?;
    let data = data_arg(args.data.as_deref().unwrap_or(""), std::io::stdin())?;
    let session = Session::connect(endpoints, options).await?;
    let (path, stat) = session.create_with(&args.path, data, args.options()).await?;
    output::print(&Output::Created { path, stat }, json)?;
    hold(&session, &mut interrupts, args.hold_ms, |_| Ok(())).await?;
    session.close().await?;
    Ok(exit::OK)
}

/// `session open`: prints the session's id and timeout, then each change of state.
pub async fn open_session(
    endpoints: &[String],
    options: SessionOptions,
    hold_ms: Option<u64>,
    json: bool,
) -> anyhow::Result<i32> {
    let mut interrupts = Interrupts::install()?;
    let session = Session::connect(endpoints, options).await?;
    lines::emit(&lines::session(session.session_id(), session.timeout_ms(), json))?;
    hold(&session, &mut interrupts, hold_ms, |state| lines::emit(&lines::state(state, json)))
        .await?;
    session.close().await?;
    Ok(exit::OK)
}

/// Waits for a signal or the end of `hold_ms`, telling `on_state` of every change of
/// state meanwhile; fails if the session ends first.
async fn hold(
    session: &Session,
    interrupts: &mut Interrupts,
    hold_ms: Option<u64>,
    mut on_state: impl FnMut(SessionState) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let time_up = async {
        match hold_ms {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(time_up);
    let mut states = session.states();
    loop {
        tokio::select! {
            _ = interrupts.recv() => return Ok(()),
            _ = &mut time_up => return Ok(()),
            changed = states.changed() => {
                let state = *states.borrow_and_update();
                if changed.is_err() || state.is_final() {
                    return Err(session.end_error().unwrap_or(ClientError::Closed).into());
                }
                on_state(state)?;
            }
        }
    }
}
