//! `aegisctl`: Aegis from a terminal, for the things an on-call engineer does at 3 a.m.
//!
//! It talks to the backend's REST API only (`/api/v1`), with the same roles as any other
//! client: it can do nothing the signed-in user could not do with curl. `login` keeps the
//! access and refresh tokens in a file only its owner may read (and refuses to use one that
//! others can read); an expired access token is refreshed once, transparently.
//!
//! Output is for people by default and JSON with `--output json` (one document per command;
//! one object per line for `incidents follow`). The exit code says what happened, so scripts
//! can branch on it without parsing: see [`Failure`].
//!
//! Limits: `incidents follow` polls the 100 most recently created incidents that match its
//! filters every `--interval` seconds (2 by default) and prints each step recorded after it
//! started, once; it is not a Socket.IO client. Every request has a 5 s connect and a 30 s
//! overall timeout, and redirects are not followed (a login body is never re-sent elsewhere).
//! Everything printed for people has its control characters replaced, so nothing a workload
//! writes (a crashed pod's last log lines are evidence) can drive the terminal.

pub mod api;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod render;

use std::fmt;

/// Why a command failed, and its exit code.
///
/// | code | meaning |
/// |---|---|
/// | 0 | done; for a check (`audit verify`, `policy evaluate`), the answer is yes |
/// | 1 | the answer is no: the chain is broken, the request is denied |
/// | 2 | bad usage (clap's own code for a wrong flag), or a local problem: an input file that cannot be read, a token file that cannot be written |
/// | 3 | not logged in, or the credentials were refused (401) |
/// | 4 | the role does not allow it (403) |
/// | 5 | no such thing (404) |
/// | 6 | refused as asked: invalid input, or a conflict with the current state (400, 409, 422) |
/// | 7 | the backend failed, is rate limiting, or could not be reached (5xx, 429, a timeout, a network error, an answer that is not what the API documents) |
#[derive(Debug)]
pub enum Failure {
    /// The answer to a check is no (exit 1); the message says why.
    Negative(String),
    /// A wrong argument or input file (exit 2).
    Usage(String),
    /// Not logged in, or the credentials were refused (exit 3).
    Unauthenticated(String),
    /// The role does not allow it (exit 4).
    Forbidden(String),
    /// No such thing (exit 5).
    NotFound(String),
    /// The backend refused the request as asked (exit 6).
    Refused(String),
    /// The backend failed or could not be reached (exit 7).
    Unavailable(String),
}

impl Failure {
    /// The process exit code.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Negative(_) => 1,
            Self::Usage(_) => 2,
            Self::Unauthenticated(_) => 3,
            Self::Forbidden(_) => 4,
            Self::NotFound(_) => 5,
            Self::Refused(_) => 6,
            Self::Unavailable(_) => 7,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negative(m)
            | Self::Usage(m)
            | Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Refused(m)
            | Self::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}
