//! The error type of the crate.

use std::time::Duration;

/// Everything that can go wrong talking to a capability.
///
/// The variants fall in three groups: the peer misbehaved or refused (HTTP status, malformed
/// LLSD, unexpected shape, region gone, not ready), the transport failed (network, timeout),
/// and the caller misused the API (a URL that is not http(s), bad settings).
///
/// Capability URLs are secrets that grant access to the agent's session, so no variant
/// carries one.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CapsError {
    // --- the peer misbehaved or refused ---
    /// The server answered with a status this request does not accept.
    #[error("capability answered HTTP {status}")]
    HttpStatus {
        /// The numeric status (reason phrases are ignored: OpenSimulator's have no spaces).
        status: u16,
        /// The start of the body (at most 512 bytes, lossily decoded), for diagnostics.
        body: String,
    },
    /// The capability no longer exists (404 on the seed): the agent is not, or no longer,
    /// in the region. The event queue reports the same as [`EndReason::RegionGone`](crate::EndReason::RegionGone).
    #[error("the region dropped the agent's capabilities (HTTP 404)")]
    RegionGone,
    /// The seed capability kept answering 503: the agent's caps are not activated yet
    /// (the UDP circuit is not complete).
    #[error("capabilities not ready (HTTP 503) after {attempts} attempts")]
    NotReady {
        /// How many requests were made.
        attempts: u32,
        /// The last `Retry-After` the server asked for, if any.
        retry_after: Option<Duration>,
    },
    /// The body is not LLSD.
    #[error("malformed LLSD in the answer: {0}")]
    MalformedLlsd(#[source] opensim_llsd::Error),
    /// The body is LLSD of an unexpected shape (e.g. an array where a map belongs).
    #[error("unexpected answer: {0}")]
    UnexpectedReply(String),
    /// The body exceeded the configured limit.
    #[error("answer larger than {limit} bytes")]
    ResponseTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },

    // --- transport ---
    /// The connection or the whole exchange exceeded its timeout.
    #[error("capability request timed out")]
    Timeout,
    /// Network, DNS, TLS or HTTP-level failure.
    #[error("capability transport failed: {0}")]
    Transport(#[source] isahc::Error),

    // --- API misuse ---
    /// A URL that is not an absolute `http://` or `https://` URL (refused so that a hostile
    /// region cannot point the HTTP client at `file://` or other curl protocols).
    #[error("invalid capability URL: {0}")]
    InvalidUrl(&'static str),
    /// Settings the HTTP client refused.
    #[error("invalid settings: {0}")]
    InvalidConfig(String),
}

impl From<isahc::Error> for CapsError {
    fn from(e: isahc::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(e)
        }
    }
}

impl From<opensim_llsd::Error> for CapsError {
    fn from(e: opensim_llsd::Error) -> Self {
        Self::MalformedLlsd(e)
    }
}

/// Why a typed event body could not be read (the event is then delivered as
/// [`Event::Malformed`](crate::Event::Malformed) with its raw body).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A required field (or block) is absent or `undef`.
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A field has a type or value this event cannot hold.
    #[error("field {field} is invalid (found {found})")]
    Invalid {
        /// The LLSD key.
        field: &'static str,
        /// The LLSD type that was found.
        found: &'static str,
    },
}
