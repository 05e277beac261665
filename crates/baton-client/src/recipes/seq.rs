//! What the lock and the election share: sequential-ephemeral nodes created safely
//! across a ConnectionLoss, ordered by sequence, and waiting for one's predecessor.
//!
//! A create that fails with ConnectionLoss may have happened. As ZooKeeper's recipes
//! (and Curator's "protected" mode) do, the node's name carries this session's id and
//! a nonce unique in this process, so after the session resumes the recipe looks for
//! its own node before creating another one. Without that, an orphan node of ours
//! would sit in the queue until the session ends and block everyone behind it.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;

use super::{RETRIES_MAX, ensure_path, no_node, retrying};
use crate::{ClientError, CreateMode, CreateOptions, ErrorCode, Session};

/// Makes every protected name of this process unique, even for two recipes on one
/// session and one path.
static NONCE: AtomicU64 = AtomicU64::new(1);

/// A number no other call in this process gets.
pub(crate) fn next_nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::Relaxed)
}

/// The 10-digit sequence suffix of a sequential node's name.
pub(crate) fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

/// The names that start with `label-` and end with a sequence, in sequence order.
pub(crate) fn ordered(names: Vec<String>, label: &str) -> Vec<String> {
    let prefix = format!("{label}-");
    let mut named: Vec<(u64, String)> = names
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .filter_map(|name| Some((sequence_of(&name)?, name)))
        .collect();
    named.sort();
    named.into_iter().map(|(_, name)| name).collect()
}

/// Where a node stands in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    First,
    /// Behind this node (the one it must wait for).
    After(&'a str),
    /// Not in the queue (deleted, e.g. by its session's end).
    Missing,
}

/// Where `mine` stands in `ordered`.
pub(crate) fn place<'a>(ordered: &'a [String], mine: &str) -> Place<'a> {
    match ordered.iter().position(|name| name == mine) {
        None => Place::Missing,
        Some(0) => Place::First,
        Some(i) => Place::After(ordered[i - 1].as_str()),
    }
}

/// A sequential-ephemeral node this process created and has not let go. Dropping it
/// without [`OwnedNode::delete`] deletes it in the background (best effort), so that a
/// cancelled `acquire` or a forgotten guard does not block the others until the session
/// ends.
#[derive(Debug)]
pub(crate) struct OwnedNode {
    session: Session,
    path: String,
    czxid: u64,
    deleted: bool,
}

impl OwnedNode {
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The last segment of the path.
    pub(crate) fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    pub(crate) fn czxid(&self) -> u64 {
        self.czxid
    }

    /// Deletes the node; already gone is fine.
    pub(crate) async fn delete(mut self) -> Result<(), ClientError> {
        self.deleted = true;
        delete_quietly(&self.session, &self.path).await
    }
}

impl Drop for OwnedNode {
    fn drop(&mut self) {
        if self.deleted || self.session.state().is_final() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (session, path) = (self.session.clone(), std::mem::take(&mut self.path));
        runtime.spawn(async move {
            if let Err(error) = delete_quietly(&session, &path).await {
                tracing::warn!(%path, %error, "could not delete an abandoned recipe node");
            }
        });
    }
}

async fn delete_quietly(session: &Session, path: &str) -> Result<(), ClientError> {
    match retrying(session, || session.delete(path, -1)).await {
        Err(e) if e.code() == ErrorCode::NoNode => Ok(()),
        other => other,
    }
}

/// Creates `dir/label-<session>-<nonce>-<sequence>` (ephemeral, sequential), creating
/// `dir` if needed, and finds it again if the create's answer was lost. Cancel-safe: if
/// the future is dropped, a node it may have created is deleted in the background.
pub(crate) async fn create_protected(
    session: &Session,
    dir: &str,
    label: &str,
    data: Bytes,
) -> Result<OwnedNode, ClientError> {
    let nonce = next_nonce();
    let marker = format!("{label}-{:016x}-{nonce:x}-", session.session_id());
    let options = CreateOptions::mode(CreateMode::EphemeralSequential);
    let mut cleanup = Cleanup { session, dir, marker: &marker, armed: true };
    let mut last = None;
    for _ in 0..RETRIES_MAX {
        match session.create_with(&format!("{dir}/{marker}"), data.clone(), options.clone()).await {
            Ok((path, stat)) => {
                cleanup.armed = false;
                return Ok(OwnedNode {
                    session: session.clone(),
                    path,
                    czxid: stat.czxid,
                    deleted: false,
                });
            }
            Err(e) if e.code() == ErrorCode::NoNode => ensure_path(session, dir).await?,
            Err(e) if e.is_retryable() => {
                session.wait_connected().await?;
                if let Some(found) = find_own(session, dir, &marker).await? {
                    cleanup.armed = false;
                    return Ok(found);
                }
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| no_node(dir)))
}

/// Deletes, in the background, the node a `create_protected` that did not finish (it
/// failed, or its future was dropped while the create was in flight) may have created.
/// The session answers in order, so the listing comes after any create sent before it.
struct Cleanup<'a> {
    session: &'a Session,
    dir: &'a str,
    marker: &'a str,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed || self.session.state().is_final() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (session, dir, marker) =
            (self.session.clone(), self.dir.to_owned(), self.marker.to_owned());
        runtime.spawn(async move {
            if let Ok(Some(node)) = find_own(&session, &dir, &marker).await
                && let Err(error) = node.delete().await
            {
                tracing::warn!(%dir, %error, "could not delete an abandoned recipe node");
            }
        });
    }
}

async fn find_own(
    session: &Session,
    dir: &str,
    marker: &str,
) -> Result<Option<OwnedNode>, ClientError> {
    let (children, _) = retrying(session, || session.children(dir)).await?;
    let Some(name) = children.into_iter().find(|name| name.starts_with(marker)) else {
        return Ok(None);
    };
    let path = format!("{dir}/{name}");
    let stat = retrying(session, || session.exists(&path)).await?;
    Ok(stat.map(|stat| OwnedNode {
        session: session.clone(),
        path,
        czxid: stat.czxid,
        deleted: false,
    }))
}

/// Waits until `mine` is the lowest `label-` node of `dir`, watching only the node just
/// before it (no herd effect: a node's deletion wakes one waiter, not all).
pub(crate) async fn wait_until_first(
    session: &Session,
    dir: &str,
    label: &str,
    mine: &str,
) -> Result<(), ClientError> {
    loop {
        let (children, _) = retrying(session, || session.children(dir)).await?;
        let ordered = ordered(children, label);
        let before = match place(&ordered, mine) {
            Place::First => return Ok(()),
            Place::After(before) => format!("{dir}/{before}"),
            Place::Missing => return Err(no_node(&format!("{dir}/{mine}"))),
        };
        wait_gone(session, &before).await?;
    }
}

/// Returns once `path` is gone (or has changed, which the caller re-checks).
pub(crate) async fn wait_gone(session: &Session, path: &str) -> Result<(), ClientError> {
    let (stat, watch) = retrying(session, || session.exists_watch(path)).await?;
    if stat.is_none() {
        return Ok(());
    }
    wait_event(watch).await
}

/// Waits for a one-shot watch; only the end of the session is an error (a removed or
/// otherwise ended watch just makes the caller look again).
pub(crate) async fn wait_event(
    watch: impl Future<Output = Result<crate::WatchEvent, ClientError>>,
) -> Result<(), ClientError> {
    match watch.await {
        Err(e) if e.is_session_end() => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sequences_are_the_last_ten_digits() {
        assert_eq!(sequence_of("lock-00000000000000ab-1-0000000042"), Some(42));
        assert_eq!(sequence_of("qn-0000000000"), Some(0));
        assert_eq!(sequence_of("ready"), None);
        assert_eq!(sequence_of("lock-x-00000000a1"), None);
        assert_eq!(sequence_of("é"), None);
    }

    #[test]
    fn order_is_by_sequence_not_by_name() {
        let listed = names(&[
            "lock-00000000000000ff-1-0000000003",
            "lock-0000000000000001-9-0000000007",
            "other-0000000000",
            "lock-00000000000000aa-2-0000000001",
            "lock-no-sequence",
        ]);
        assert_eq!(
            ordered(listed, "lock"),
            names(&[
                "lock-00000000000000aa-2-0000000001",
                "lock-00000000000000ff-1-0000000003",
                "lock-0000000000000001-9-0000000007",
            ])
        );
    }

    #[test]
    fn each_waiter_watches_only_the_node_just_before_it() {
        let queue = names(&["lock-a-0000000001", "lock-b-0000000002", "lock-c-0000000005"]);
        assert_eq!(place(&queue, "lock-a-0000000001"), Place::First);
        assert_eq!(place(&queue, "lock-b-0000000002"), Place::After("lock-a-0000000001"));
        assert_eq!(place(&queue, "lock-c-0000000005"), Place::After("lock-b-0000000002"));
        assert_eq!(place(&queue, "lock-z-0000000009"), Place::Missing);
    }
}
