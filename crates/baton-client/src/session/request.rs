//! What a [`crate::Session`] handle hands to the session's task: a request, the channel
//! for its reply, and what to do with the watch manager when the reply comes.

use baton_api::pb;
use baton_znode::watch::{RemoveKind, SpecKind};
use tokio::sync::oneshot;

use super::watch_handle::{OneShotTx, Sink};
use crate::ClientError;

/// The reply of one request, or why there is none.
pub(crate) type ReplyTx = oneshot::Sender<Result<pb::Reply, ClientError>>;

/// One request from a handle.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) op: pb::request::Op,
    pub(crate) watch: WatchIntent,
    pub(crate) reply: ReplyTx,
}

/// What a successful reply does to the client's watches. Watches are registered when
/// the reply is read, before the caller sees it: events are sent in order, so every
/// event for the new watch comes after its reply.
#[derive(Debug)]
pub(crate) enum WatchIntent {
    None,
    /// get / exists / children with `watch = true`. For exists, the kind is `Data` when
    /// the node exists and `Exists` when it does not; `kind` is the one for "exists".
    OneShot {
        path: String,
        kind: SpecKind,
        tx: OneShotTx,
    },
    Persistent {
        path: String,
        recursive: bool,
        sink: Sink,
    },
    Remove {
        path: String,
        which: RemoveKind,
    },
}

impl WatchIntent {
    /// Whether the request carries `watch = true`.
    pub(crate) fn sets_one_shot(&self) -> bool {
        matches!(self, WatchIntent::OneShot { .. })
    }
}

impl Submitted {
    pub(crate) fn is_close(&self) -> bool {
        matches!(self.op, pb::request::Op::Close(_))
    }

    /// True once the caller stopped waiting (timed out or dropped the call): a request
    /// not yet sent is then not sent at all.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    /// Answers the caller; a caller that stopped waiting is not an error.
    pub(crate) fn answer(self, result: Result<pb::Reply, ClientError>) {
        let _ = self.reply.send(result);
    }
}
