//! `watch PATH [--children] [--recursive] [--count N]`: a persistent watch, printed one
//! line per event.
//!
//! All three forms use one persistent watch (ZooKeeper's addWatch), which the session
//! sets again after a reconnect, so no event is lost between one-shot re-arms:
//! - no flag: PERSISTENT on PATH, every event of PATH itself;
//! - `--children`: PERSISTENT on PATH, printing only NODE_CHILDREN_CHANGED;
//! - `--recursive`: PERSISTENT_RECURSIVE on PATH, created/deleted/data changed of PATH and
//!   everything below it.

use baton_client::{ChangeKind, ClientError, Session, SessionOptions};

use crate::{args::WatchArgs, exit, lines, signal::Interrupts};

pub async fn run(
    endpoints: &[String],
    options: SessionOptions,
    args: WatchArgs,
    json: bool,
) -> anyhow::Result<i32> {
    let mut interrupts = Interrupts::install()?;
    let session = Session::connect(endpoints, options).await?;
    let mut watch = session.add_watch(&args.path, args.recursive).await?;
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        let event = tokio::select! {
            _ = interrupts.recv() => break,
            event = watch.recv() => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(error)) => return Err(error.into()),
            None => return Err(ClientError::WatchRemoved { path: args.path }.into()),
        };
        if args.children && event.kind != ChangeKind::NodeChildrenChanged {
            continue;
        }
        lines::emit(&lines::event(&event, json))?;
        printed += 1;
    }
    // The events asked for are out; a failed close only leaves the session to expire.
    let _ = session.close().await;
    Ok(exit::OK)
}
