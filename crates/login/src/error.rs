//! The one error type of the crate.

use crate::codec::LoginEncoding;

/// What a login server said when it refused a login (`login` = `"false"`).
///
/// `reason` is the server's machine-readable code (`key`, `presence`, `update`, `tos`,
/// `critical`, `Internal Error`, ...), `message` the text meant for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The server's `reason` code, verbatim.
    pub reason: String,
    /// The server's `message`, verbatim (may be empty).
    pub message: String,
}

/// Everything that can go wrong while logging in.
///
/// The variants fall in four groups: the server answered and refused the login (each keeps the
/// server's [`Refusal`]), the peer misbehaved (faults, HTTP errors, malformed answers), the
/// transport failed (network, TLS, timeout), and the caller misused the API.
///
/// No variant ever holds the password or its hash: strings that come from the server are
/// scrubbed of the credential before the error reaches the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    // --- the server refused the login ---
    /// Unknown account or wrong password (`key`, "Could not authenticate ...").
    #[error("login refused: wrong name or password ({})", .0.message)]
    InvalidCredentials(Refusal),
    /// The account still has a session (`presence`, "You appear to be already logged in").
    ///
    /// OpenSimulator answers this when the grid still shows a presence for the account, e.g.
    /// after a crash or a lost logout. While refusing, it also kicks the stale agent and marks
    /// it logged out, so a retry a few seconds later normally succeeds: see
    /// [`RetryPolicy::already_logged_in`](crate::RetryPolicy::already_logged_in).
    #[error("login refused: already logged in ({})", .0.message)]
    AlreadyLoggedIn(Refusal),
    /// Logins are restricted for this account or client (`presence`: login level, banned
    /// client, mac or id0, unverified account).
    #[error("login refused: logins are restricted ({})", .0.message)]
    LoginBlocked(Refusal),
    /// No usable destination region, the region is down, or the region refused the agent
    /// (`key` with OpenSimulator's grid / dead-region texts).
    #[error("login refused: region unavailable ({})", .0.message)]
    RegionUnavailable(Refusal),
    /// The destination region is at its agent limit (`key`, "The region is full", passed on
    /// from the region by OpenSimulator's login service).
    #[error("login refused: the region is full ({})", .0.message)]
    RegionFull(Refusal),
    /// A grid service behind the login service failed (`key`, "The inventory service is not
    /// responding").
    #[error("login refused: a grid service is unavailable ({})", .0.message)]
    ServiceUnavailable(Refusal),
    /// The grid demands a newer viewer (`update`; Second Life style, OpenSimulator never sends it).
    #[error("login refused: viewer update required ({})", .0.message)]
    UpdateRequired(Refusal),
    /// The terms of service must be shown and accepted (`tos`): log in again with
    /// `agree_to_tos(true)` once the user agreed.
    #[error("login refused: terms of service must be accepted ({})", .0.message)]
    TosRequired(Refusal),
    /// A critical message must be shown (`critical`): log in again with `read_critical(true)`.
    #[error("login refused: critical message must be read ({})", .0.message)]
    CriticalMessage(Refusal),
    /// The login service failed internally (`Internal Error`).
    #[error("login server internal error ({})", .0.message)]
    ServerError(Refusal),
    /// Any other refusal: an unknown `reason`, or a `key` refusal whose text is not one of
    /// OpenSimulator's (for instance the free text a region gives when refusing an agent).
    #[error("login refused (reason {:?}): {}", .0.reason, .0.message)]
    Refused(Refusal),

    // --- the peer misbehaved ---
    /// The server answered with an XML-RPC `<fault>`.
    #[error("XML-RPC fault {code}: {message}")]
    Fault {
        /// `faultCode`.
        code: i32,
        /// `faultString`.
        message: String,
    },
    /// The HTTP status was not 2xx.
    #[error("login server answered HTTP {status}")]
    HttpStatus {
        /// The numeric status (reason phrases are ignored: OpenSimulator's have no spaces).
        status: u16,
        /// The start of the body (at most 512 bytes, lossily decoded), for diagnostics.
        body: String,
    },
    /// The body is not a login answer: not XML-RPC, nesting too deep, a required member
    /// missing or of the wrong type.
    #[error("malformed login response: {0}")]
    MalformedResponse(String),
    /// The body exceeded the configured limit.
    #[error("login response larger than {limit} bytes")]
    ResponseTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The server kept redirecting (`login` = `"indeterminate"`) past the configured limit.
    #[error("too many login redirects (limit {limit}): {message}")]
    TooManyRedirects {
        /// The configured limit.
        limit: u32,
        /// The last redirect's message.
        message: String,
    },
    /// A redirect we refuse to follow (bad URL, or https downgraded to http).
    #[error("login redirect refused: {0}")]
    InvalidRedirect(String),

    // --- transport ---
    /// The connect or the whole exchange exceeded its configured timeout.
    #[error("login request timed out")]
    Timeout,
    /// Network, DNS, TLS or HTTP-level failure.
    #[error("login transport failed: {0}")]
    Transport(#[source] isahc::Error),

    // --- API misuse ---
    /// The parameters cannot be sent (empty name, bad URI, characters XML cannot carry, ...).
    #[error("invalid login parameters: {0}")]
    InvalidParams(String),
    /// The requested encoding is not implemented (no current encoding gives this; kept for
    /// encodings added later).
    #[error("login encoding {0:?} is not implemented")]
    UnsupportedEncoding(LoginEncoding),
}

impl LoginError {
    /// The server's reason and message when the server refused the login.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::InvalidCredentials(r)
            | Self::AlreadyLoggedIn(r)
            | Self::LoginBlocked(r)
            | Self::RegionUnavailable(r)
            | Self::RegionFull(r)
            | Self::ServiceUnavailable(r)
            | Self::UpdateRequired(r)
            | Self::TosRequired(r)
            | Self::CriticalMessage(r)
            | Self::ServerError(r)
            | Self::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// Builds the error for a refusal, classifying OpenSimulator's reason codes and texts.
    ///
    /// OpenSimulator sends `key` for nearly everything, so `key` refusals are told apart by
    /// their (fixed, English) message texts from `LLLoginResponse.cs` / `LLLoginHandlers.cs`.
    pub fn from_refusal(reason: String, message: String) -> Self {
        let r = Refusal { reason, message };
        let lower = r.message.to_ascii_lowercase();
        match r.reason.as_str() {
            "key" => {
                if lower.contains("authenticate")
                    || lower.contains("credentials")
                    || lower.contains("name/password")
                    || lower.contains("password")
                {
                    Self::InvalidCredentials(r)
                } else if lower.contains("desired location")
                    || lower.contains("region you are attempting")
                {
                    Self::RegionUnavailable(r)
                } else if lower.contains("region is full") {
                    Self::RegionFull(r)
                } else if lower.contains("inventory service")
                    || lower.contains("unable to authorize")
                {
                    Self::ServiceUnavailable(r)
                } else {
                    Self::Refused(r)
                }
            }
            "presence" => {
                if lower.contains("already logged in") {
                    Self::AlreadyLoggedIn(r)
                } else {
                    Self::LoginBlocked(r)
                }
            }
            "update" => Self::UpdateRequired(r),
            "tos" => Self::TosRequired(r),
            "critical" => Self::CriticalMessage(r),
            "Internal Error" => Self::ServerError(r),
            _ => Self::Refused(r),
        }
    }

    /// Replaces every occurrence of the given secrets in server-provided strings.
    pub(crate) fn scrub(mut self, secrets: &[&str]) -> Self {
        let fix = |s: &mut String| {
            for secret in secrets {
                if !secret.is_empty() && s.contains(secret) {
                    *s = s.replace(secret, "<redacted>");
                }
            }
        };
        match &mut self {
            Self::InvalidCredentials(r)
            | Self::AlreadyLoggedIn(r)
            | Self::LoginBlocked(r)
            | Self::RegionUnavailable(r)
            | Self::RegionFull(r)
            | Self::ServiceUnavailable(r)
            | Self::UpdateRequired(r)
            | Self::TosRequired(r)
            | Self::CriticalMessage(r)
            | Self::ServerError(r)
            | Self::Refused(r) => {
                fix(&mut r.reason);
                fix(&mut r.message);
            }
            Self::Fault { message, .. } | Self::TooManyRedirects { message, .. } => fix(message),
            Self::HttpStatus { body, .. } => fix(body),
            Self::MalformedResponse(s) | Self::InvalidRedirect(s) | Self::InvalidParams(s) => {
                fix(s)
            }
            Self::ResponseTooLarge { .. }
            | Self::Timeout
            | Self::Transport(_)
            | Self::UnsupportedEncoding(_) => {}
        }
        self
    }
}

impl From<isahc::Error> for LoginError {
    fn from(e: isahc::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(e)
        }
    }
}
