//! The HTTP side: [`LoginClient`] sends the request, follows redirects and retries.

use std::time::Duration;

use futures_lite::AsyncReadExt;
use isahc::config::{Configurable, ExpectContinue};
use isahc::{AsyncBody, HttpClient, Request, Response};

use crate::codec::truncate;
use crate::params::check_login_uri;
use crate::response::{LoginReply, LoginResponse};
use crate::{LOGIN_METHOD, LoginEncoding, LoginError, LoginParams};

/// Bodies above this size are decoded on a blocking thread, not on the executor.
const UNBLOCK_ABOVE: usize = 256 * 1024;

/// When to log in again after a refusal. The default retries nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    already_logged_in: u32,
    delay: Duration,
}

impl RetryPolicy {
    /// No retries.
    pub const NONE: Self = Self {
        already_logged_in: 0,
        delay: Duration::ZERO,
    };

    /// Retry up to `retries` times, `delay` apart, when the grid answers "already logged in".
    ///
    /// OpenSimulator refuses the first login after a stale session (a crash, a lost logout):
    /// while refusing, it kicks the old agent and marks the account logged out, so the next
    /// attempt normally goes through. One retry after a few seconds is what a user would do.
    pub fn already_logged_in(retries: u32, delay: Duration) -> Self {
        Self {
            already_logged_in: retries,
            delay,
        }
    }
}

/// Settings of a [`LoginClient`].
#[derive(Clone, Debug)]
#[must_use = "call build() to get the LoginClient"]
pub struct LoginClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
    danger_accept_invalid_certs: bool,
    max_redirects: u32,
    max_redirect_wait: Duration,
    max_response_bytes: usize,
    retry: RetryPolicy,
    proxy: Option<String>,
}

impl Default for LoginClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            user_agent: concat!("opensim-login/", env!("CARGO_PKG_VERSION")).into(),
            danger_accept_invalid_certs: false,
            max_redirects: 5,
            max_redirect_wait: Duration::from_secs(30),
            max_response_bytes: 32 * 1024 * 1024,
            retry: RetryPolicy::NONE,
            proxy: None,
        }
    }
}

impl LoginClientBuilder {
    /// Time allowed to open the TCP (and TLS) connection (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for one whole HTTP exchange, body included (default 60 s: a grid may take
    /// many seconds to prepare the region). Each redirect or retry gets its own.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The `User-Agent` header (default `opensim-login/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Accept any server certificate, for test grids with self-signed ones.
    ///
    /// This removes the protection TLS gives the password hash: never use it against a
    /// grid reached over an untrusted network. Off by default.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// How many `indeterminate` redirects to follow (default 5).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Upper bound on the wait a redirect asks for with `next_duration` (default 30 s).
    pub fn max_redirect_wait(mut self, t: Duration) -> Self {
        self.max_redirect_wait = t;
        self
    }

    /// Largest answer body accepted (default 32 MiB; a big inventory skeleton is a few MiB).
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// When to retry a refused login (default: never).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends every request through this HTTP proxy (`http://host:port`; default: none set,
    /// so curl's `http_proxy`/`https_proxy` environment variables apply).
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Builds the client and its HTTP connection pool.
    ///
    /// # Errors
    /// [`LoginError::InvalidParams`] when curl refuses the settings (e.g. a user agent with
    /// a line break, a malformed proxy URL).
    pub fn build(self) -> Result<LoginClient, LoginError> {
        let mut http = HttpClient::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .default_header("user-agent", self.user_agent.as_str())
            // Login bodies are small; waiting for "100 Continue" only adds a round trip.
            .expect_continue(ExpectContinue::disabled());
        if let Some(proxy) = &self.proxy {
            let uri = proxy
                .parse::<isahc::http::Uri>()
                .map_err(|e| LoginError::InvalidParams(format!("proxy URL: {e}")))?;
            http = http.proxy(Some(uri));
        }
        if self.danger_accept_invalid_certs {
            http = http.tls_config(
                isahc::tls::TlsConfig::builder()
                    .danger_accept_invalid_certs(true)
                    .build(),
            );
        }
        let http = http
            .build()
            .map_err(|e| LoginError::InvalidParams(format!("HTTP client settings: {e}")))?;
        Ok(LoginClient { http, cfg: self })
    }
}

/// A reusable login client: one HTTP connection pool and its settings.
///
/// Cheap to clone. Logging in needs an async executor; `smol::block_on` does for a
/// synchronous caller.
#[derive(Clone, Debug)]
pub struct LoginClient {
    http: HttpClient,
    cfg: LoginClientBuilder,
}

impl LoginClient {
    /// A client with the default settings.
    ///
    /// # Errors
    /// When the HTTP client cannot be created.
    pub fn new() -> Result<Self, LoginError> {
        Self::builder().build()
    }

    /// The builder of a client with custom settings.
    pub fn builder() -> LoginClientBuilder {
        LoginClientBuilder::default()
    }

    /// Logs in: sends the request, follows redirects, retries as the [`RetryPolicy`] says.
    ///
    /// # Errors
    /// Every failure as a typed [`LoginError`]; none of them contains the credential.
    pub async fn login(&self, params: &LoginParams) -> Result<LoginResponse, LoginError> {
        let secrets = params.credential().secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut retries = self.cfg.retry.already_logged_in;
        loop {
            match self.login_once(params).await {
                Err(LoginError::AlreadyLoggedIn(r)) if retries > 0 => {
                    retries -= 1;
                    tracing::info!(
                        message = %r.message,
                        retries_left = retries,
                        "login refused as already logged in; retrying"
                    );
                    smol::Timer::after(self.cfg.retry.delay).await;
                }
                other => return other.map_err(|e| e.scrub(&secrets)),
            }
        }
    }

    /// One login attempt, following redirects.
    async fn login_once(&self, params: &LoginParams) -> Result<LoginResponse, LoginError> {
        let encoding = params.encoding();
        let mut uri = params.login_uri().to_owned();
        let mut method = LOGIN_METHOD.to_owned();
        let mut options: Option<Vec<String>> = None;
        let mut redirects = 0u32;
        loop {
            let body = encoding.encode_request(&method, params.wire_members(options.as_deref()))?;
            tracing::debug!(%uri, %method, first = params.first(), last = params.last(), "login request");
            match self.exchange(encoding, &uri, body).await? {
                LoginReply::Success(r) => return Ok(*r),
                LoginReply::Redirect(next) => {
                    if redirects >= self.cfg.max_redirects {
                        return Err(LoginError::TooManyRedirects {
                            limit: self.cfg.max_redirects,
                            message: next.message,
                        });
                    }
                    redirects += 1;
                    let target = check_login_uri(&next.next_url).map_err(|_| {
                        LoginError::InvalidRedirect(truncate(next.next_url.clone(), 200))
                    })?;
                    if uri.starts_with("https:") && target.scheme_str() != Some("https") {
                        return Err(LoginError::InvalidRedirect(
                            "refusing to follow an https login to plain http".into(),
                        ));
                    }
                    tracing::info!(next = %next.next_url, message = %next.message, "login redirected");
                    if let Some(wait) = next.next_duration {
                        smol::Timer::after(wait.min(self.cfg.max_redirect_wait)).await;
                    }
                    uri = next.next_url;
                    if let Some(m) = next.next_method {
                        method = m;
                    }
                    if next.next_options.is_some() {
                        options = next.next_options;
                    }
                }
            }
        }
    }

    /// One HTTP POST and the decoding of its answer.
    async fn exchange(
        &self,
        encoding: LoginEncoding,
        uri: &str,
        body: Vec<u8>,
    ) -> Result<LoginReply, LoginError> {
        let request = Request::post(uri)
            .header("content-type", encoding.content_type())
            .header(
                "accept",
                "text/xml, application/xml, application/llsd+xml, */*",
            )
            .body(body)
            .map_err(|e| LoginError::InvalidParams(format!("login request: {e}")))?;
        let response = self.http.send_async(request).await?;
        let status = response.status().as_u16();
        let body = self.read_body(response).await?;
        if !(200..300).contains(&status) {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(LoginError::HttpStatus {
                status,
                body: excerpt,
            });
        }
        if body.len() > UNBLOCK_ABOVE {
            smol::unblock(move || encoding.decode_reply(&body)).await
        } else {
            encoding.decode_reply(&body)
        }
    }

    async fn read_body(&self, response: Response<AsyncBody>) -> Result<Vec<u8>, LoginError> {
        let limit = self.cfg.max_response_bytes;
        let too_large = LoginError::ResponseTooLarge { limit };
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large);
        }
        let initial = declared.map_or(16 * 1024, |n| n as usize);
        let mut body = Vec::with_capacity(initial);
        response
            .into_body()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(isahc::Error::from)?;
        if body.len() > limit {
            return Err(too_large);
        }
        Ok(body)
    }
}
