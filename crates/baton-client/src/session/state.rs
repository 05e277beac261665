//! The session's state and the rules by which it changes.
//!
//! ```text
//!   Connecting ──connected──▶ Connected ◀──connected── Disconnected
//!       │                         │ ──────lost───────────▶ │
//!       └──────────── expired / closed (from any state) ───┴──▶ Expired | Closed (final)
//! ```
//!
//! Only the server ends a session (`Expired`) or the user does (`Closed`): a client that
//! cannot reach any server stays `Disconnected` and keeps trying, as ZooKeeper's does,
//! and the server's answer on the next successful reconnect decides.

use std::fmt;

/// Where a session is. Watch it with [`crate::Session::states`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Looking for a server for the first time.
    Connecting,
    /// A server serves the session: calls are sent at once.
    Connected,
    /// The connection broke; the client is looking for a server to resume on. Calls
    /// made now wait (up to the request timeout) and are sent on resume.
    Disconnected,
    /// The server ended the session (expired, unknown, or refused its password). Final.
    Expired,
    /// The user closed the session. Final.
    Closed,
}

/// What happened to the session's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A server answered `Connected`.
    Connected,
    /// The stream broke, or a server could not serve.
    Lost,
    /// The server ended the session (SESSION_EXPIRED or AUTH_FAILED).
    Expired,
    /// The session was closed by its user (or all its handles were dropped).
    Closed,
}

impl SessionState {
    /// Expired and Closed: nothing leaves them.
    pub fn is_final(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::Closed)
    }

    pub fn is_connected(self) -> bool {
        self == SessionState::Connected
    }

    /// The upper-case name used in the CLI's output (`CONNECTED`, `EXPIRED`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Connecting => "CONNECTING",
            SessionState::Connected => "CONNECTED",
            SessionState::Disconnected => "DISCONNECTED",
            SessionState::Expired => "EXPIRED",
            SessionState::Closed => "CLOSED",
        }
    }

    /// The state after `input`.
    pub(crate) fn next(self, input: Input) -> SessionState {
        if self.is_final() {
            return self;
        }
        match (self, input) {
            (_, Input::Connected) => SessionState::Connected,
            // Never connected yet: still looking for a first server.
            (SessionState::Connecting, Input::Lost) => SessionState::Connecting,
            (_, Input::Lost) => SessionState::Disconnected,
            (_, Input::Expired) => SessionState::Expired,
            (_, Input::Closed) => SessionState::Closed,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;

    const ALL: [SessionState; 5] = [Connecting, Connected, Disconnected, Expired, Closed];
    const INPUTS: [Input; 4] = [Input::Connected, Input::Lost, Input::Expired, Input::Closed];

    #[test]
    fn a_session_connects_loses_and_resumes() {
        let mut state = Connecting;
        state = state.next(Input::Lost);
        assert_eq!(state, Connecting, "a failed first attempt is still connecting");
        state = state.next(Input::Connected);
        assert_eq!(state, Connected);
        state = state.next(Input::Lost);
        assert_eq!(state, Disconnected);
        assert_eq!(state.next(Input::Lost), Disconnected);
        assert_eq!(state.next(Input::Connected), Connected);
    }

    #[test]
    fn final_states_absorb_everything() {
        for end in [Expired, Closed] {
            assert!(end.is_final());
            for input in INPUTS {
                assert_eq!(end.next(input), end, "{end:?} after {input:?}");
            }
        }
    }

    #[test]
    fn every_live_state_can_end_both_ways() {
        for state in ALL.into_iter().filter(|s| !s.is_final()) {
            assert_eq!(state.next(Input::Expired), Expired);
            assert_eq!(state.next(Input::Closed), Closed);
            assert_eq!(state.next(Input::Connected), Connected);
        }
    }

    #[test]
    fn names_are_upper_case() {
        let names: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["CONNECTING", "CONNECTED", "DISCONNECTED", "EXPIRED", "CLOSED"]);
        assert!(Connected.is_connected() && !Disconnected.is_connected());
    }
}
