//! The register workload through ZooKeeper's client protocol: the same calls, history
//! and check as [`super::register`], but each client is a `zookeeper-client` session on
//! the members' ZooKeeper-protocol ports (`--zk-addr`), given every member so that the
//! session moves when its member dies or is cut off. What it checks is the jute front
//! door: that the zxids, versions and `sync` it reports give the same guarantees as
//! Baton's own protocol (and the final reads, through baton-client, must agree with them).
//!
//! Outcomes: the errors that prove a call changed nothing (no node, bad version, ...)
//! are fail; everything else (connection loss, a timeout, an expired session, whose
//! request may have been committed before the expiry was noticed) is info.

use std::{sync::Arc, time::Duration};

use anyhow::Result;
use baton_testkit::Rng;
use zookeeper_client as zk;

use super::{
    Ctx,
    register::{Call, Register, Ret, next_call, path},
};
use crate::history::{History, Outcome, next_process};

const DIR: &str = "/nemesis/zk-register";

/// Starts the clients (the keys are created through baton-client, as for `register`).
pub async fn start(ctx: &Arc<Ctx>, clients: usize, rng: &mut Rng) -> Result<Register> {
    Register::start_with(ctx, DIR, clients, rng, |ctx, history, worker, rng| {
        tokio::spawn(client(ctx, history, worker, rng))
    })
    .await
}

/// A new ZooKeeper session for `worker` (with a fresh process number), retried until
/// one is granted or the run stops.
async fn session(ctx: &Ctx, worker: usize) -> Option<(zk::Client, u64)> {
    let hosts = ctx.zk_endpoints_for(worker).join(",");
    let timeout = Duration::from_millis(u64::from(ctx.session.timeout_ms));
    while !ctx.stopped() {
        let connect = zk::Client::connector()
            .with_session_timeout(timeout)
            .with_connection_timeout(timeout / 2)
            .connect(&hosts);
        match tokio::time::timeout(ctx.session.request_timeout, connect).await {
            Ok(Ok(client)) => return Some((client, next_process())),
            Ok(Err(error)) => tracing::debug!(worker, %error, "no ZooKeeper session yet"),
            Err(_) => tracing::debug!(worker, "no ZooKeeper session yet: timed out"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn client(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize, mut rng: Rng) {
    let mut writes = 0u64;
    'sessions: while let Some((client, process)) = session(&ctx, worker).await {
        while !ctx.stopped() {
            let call = next_call(&mut rng, worker, &mut writes);
            let invoke = history.now();
            let (outcome, ended) = match &call {
                Call::Write { key, value } => {
                    let set = client.set_data(&path(DIR, *key), value.as_bytes(), None);
                    let result = tokio::time::timeout(ctx.session.request_timeout, set).await;
                    outcome(result, |stat| Ret::Written(stat.mzxid as u64))
                }
                Call::Read { key, synced } => {
                    let p = path(DIR, *key);
                    let read = async {
                        if *synced {
                            client.sync(&p).await?;
                        }
                        client.get_data(&p).await
                    };
                    let result = tokio::time::timeout(ctx.session.request_timeout, read).await;
                    outcome(result, |(data, stat)| {
                        Ret::Read(String::from_utf8_lossy(&data).into_owned(), stat.mzxid as u64)
                    })
                }
            };
            history.record(process, invoke, call, outcome);
            if ended {
                continue 'sessions;
            }
            ctx.pause().await;
        }
        break;
    }
}

/// The outcome of a call, and whether its session is over (a new one is needed).
fn outcome<T, R>(
    result: Result<Result<T, zk::Error>, tokio::time::error::Elapsed>,
    ok: impl FnOnce(T) -> R,
) -> (Outcome<R>, bool) {
    match result {
        Ok(Ok(value)) => (Outcome::Ok(ok(value)), false),
        Ok(Err(error)) if definite(&error) => (Outcome::Fail(error.to_string()), false),
        Ok(Err(error)) => {
            let ended = matches!(
                error,
                zk::Error::SessionExpired
                    | zk::Error::ClientClosed
                    | zk::Error::NoHosts
                    | zk::Error::AuthFailed
            );
            (Outcome::Info(error.to_string()), ended)
        }
        Err(_) => (Outcome::Info("timed out".to_owned()), false),
    }
}

/// True when the error proves the call changed nothing.
fn definite(error: &zk::Error) -> bool {
    matches!(
        error,
        zk::Error::NoNode
            | zk::Error::NodeExists
            | zk::Error::BadVersion
            | zk::Error::NotEmpty
            | zk::Error::BadArguments(_)
            | zk::Error::NoChildrenForEphemerals
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_are_definite_and_only_a_dead_session_is_replaced() {
        let of = |error: zk::Error| outcome::<(), ()>(Ok(Err(error)), |_| ());
        assert_eq!(of(zk::Error::BadVersion), (Outcome::Fail("mismatch version".into()), false));
        assert!(matches!(of(zk::Error::ConnectionLoss), (Outcome::Info(_), false)));
        assert!(matches!(of(zk::Error::SessionExpired), (Outcome::Info(_), true)));
        assert!(matches!(of(zk::Error::ClientClosed), (Outcome::Info(_), true)));
    }
}
