//! The HTTP side: [`CapsClient`] and its settings.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::AsyncReadExt;
use isahc::config::{Configurable, ExpectContinue};
use isahc::{AsyncBody, HttpClient, Request, Response};
use opensim_llsd::Value;

use crate::CapsError;
use crate::capabilities::{Capabilities, check_url, seed_request_body};
use crate::event_queue::{EventQueue, EventQueueConfig};
use crate::limits::{HttpCategory, HttpLimits};

/// Bodies above this size are parsed on a blocking thread, not on the executor.
const UNBLOCK_ABOVE: usize = 256 * 1024;

/// The LLSD XML content type OpenSimulator requires on seed and event-queue requests (it
/// compares the header string exactly).
pub const LLSD_XML: &str = "application/llsd+xml";

/// Settings of a [`CapsClient`].
#[derive(Clone, Debug)]
#[must_use = "call build() to get the CapsClient"]
pub struct CapsClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
    max_response_bytes: usize,
    limits: HttpLimits,
    seed_retries: u32,
    seed_retry_delay: Duration,
    event_queue: EventQueueConfig,
    proxy: Option<String>,
}

impl Default for CapsClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            user_agent: concat!("opensim-caps/", env!("CARGO_PKG_VERSION")).into(),
            max_response_bytes: 32 * 1024 * 1024,
            limits: HttpLimits::default(),
            seed_retries: 5,
            seed_retry_delay: Duration::from_secs(1),
            event_queue: EventQueueConfig::default(),
            proxy: None,
        }
    }
}

impl CapsClientBuilder {
    /// Time allowed to open the TCP (and TLS) connection (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for one ordinary exchange, body included (default 60 s). Event-queue
    /// polls use [`EventQueueConfig::poll_timeout`] instead.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Time allowed for one event-queue poll (default 90 s: OpenSimulator holds a poll for
    /// 58 s before answering 502).
    pub fn poll_timeout(mut self, t: Duration) -> Self {
        self.event_queue.poll_timeout = t;
        self
    }

    /// The defaults of the event queues this client creates.
    pub fn event_queue(mut self, config: EventQueueConfig) -> Self {
        self.event_queue = config;
        self
    }

    /// The `User-Agent` header (default `opensim-caps/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Largest answer body accepted (default 32 MiB).
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// The concurrency limits to share (default [`HttpLimits::default`]); pass a clone of
    /// the limits the rest of the client uses.
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How often, and how far apart, to retry a seed request answered 503 ("caps not
    /// activated yet", when the seed is asked before the circuit is complete). Default 5
    /// retries, 1 s apart.
    pub fn seed_retry(mut self, retries: u32, delay: Duration) -> Self {
        self.seed_retries = retries;
        self.seed_retry_delay = delay;
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
    /// [`CapsError::InvalidConfig`] when curl refuses the settings or the proxy URL is
    /// malformed.
    pub fn build(self) -> Result<CapsClient, CapsError> {
        let mut http = HttpClient::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .default_header("user-agent", self.user_agent.as_str())
            // Bodies are small; waiting for "100 Continue" only adds a round trip.
            .expect_continue(ExpectContinue::disabled());
        if let Some(proxy) = &self.proxy {
            let uri = proxy
                .parse::<isahc::http::Uri>()
                .map_err(|e| CapsError::InvalidConfig(format!("proxy URL: {e}")))?;
            http = http.proxy(Some(uri));
        }
        let http = http
            .build()
            .map_err(|e| CapsError::InvalidConfig(format!("HTTP client settings: {e}")))?;
        Ok(CapsClient {
            http,
            limits: self.limits.clone(),
            cfg: Arc::new(self),
        })
    }
}

/// A capability client: one HTTP connection pool, its settings and the shared
/// [`HttpLimits`]. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct CapsClient {
    http: HttpClient,
    limits: HttpLimits,
    cfg: Arc<CapsClientBuilder>,
}

/// A received answer, before interpretation.
pub(crate) struct RawReply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl CapsClient {
    /// A client with the default settings.
    ///
    /// # Errors
    /// When the HTTP client cannot be created.
    pub fn new() -> Result<Self, CapsError> {
        Self::builder().build()
    }

    /// The builder of a client with custom settings.
    pub fn builder() -> CapsClientBuilder {
        CapsClientBuilder::default()
    }

    /// The shared concurrency limits.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// The underlying HTTP client, for requests this crate has no helper for (take a permit
    /// from [`limits`](Self::limits) first).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The event-queue defaults of this client.
    pub fn event_queue_config(&self) -> &EventQueueConfig {
        &self.cfg.event_queue
    }

    /// Asks the seed capability for `names` (e.g. [`DEFAULT_CAPS`](crate::DEFAULT_CAPS))
    /// and returns what the region granted.
    ///
    /// A 503 ("caps not activated yet") is retried as [`CapsClientBuilder::seed_retry`]
    /// says. Names the region does not provide are simply absent from the answer.
    ///
    /// # Errors
    /// [`CapsError::InvalidUrl`] for a seed that is not `http(s)`, [`CapsError::NotReady`]
    /// when the 503s outlast the retries, [`CapsError::RegionGone`] for a 404 (no such seed:
    /// the agent is not, or no longer, in the region), [`CapsError::HttpStatus`] for other
    /// statuses (OpenSimulator: 403 from the wrong IP, 400 for a body that is not an array),
    /// the LLSD errors, and the transport errors.
    pub async fn request_capabilities<S: AsRef<str>>(
        &self,
        seed_url: &str,
        names: &[S],
    ) -> Result<Capabilities, CapsError> {
        check_url(seed_url)?;
        let body = seed_request_body(names);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let request = self.llsd_post(seed_url, body.clone(), self.cfg.timeout)?;
            let reply = self.exchange(request).await?;
            match reply.status {
                200..=299 => {
                    let value = parse_llsd(reply.content_type, reply.body).await?;
                    return Capabilities::from_llsd(&value);
                }
                503 if attempts <= self.cfg.seed_retries => {
                    tracing::debug!(attempts, "seed answered 503; retrying");
                    async_io::Timer::after(self.cfg.seed_retry_delay).await;
                }
                503 => {
                    return Err(CapsError::NotReady {
                        attempts,
                        retry_after: reply.retry_after,
                    });
                }
                // Our request always has the right method and content type, so a 404 means
                // the seed itself is gone.
                404 => return Err(CapsError::RegionGone),
                status => return Err(status_error(status, &reply.body)),
            }
        }
    }

    /// POSTs `value` as LLSD XML to a capability and parses the LLSD answer, holding a
    /// permit of `category` for the whole exchange.
    ///
    /// # Errors
    /// [`CapsError::HttpStatus`] for a status other than 2xx, the LLSD and transport errors.
    pub async fn post_llsd(
        &self,
        url: &str,
        value: &Value,
        category: HttpCategory,
    ) -> Result<Value, CapsError> {
        check_url(url)?;
        let request = self.llsd_post(url, opensim_llsd::to_xml(value), self.cfg.timeout)?;
        let _permit = self.limits.acquire(category).await;
        self.llsd_answer(request).await
    }

    /// GETs a capability (e.g. `SimulatorFeatures`) and parses the LLSD answer, holding a
    /// permit of `category` for the whole exchange.
    ///
    /// # Errors
    /// As [`post_llsd`](Self::post_llsd).
    pub async fn get_llsd(&self, url: &str, category: HttpCategory) -> Result<Value, CapsError> {
        check_url(url)?;
        let request = Request::get(url)
            .header("accept", LLSD_XML)
            .body(Vec::new())
            .map_err(|e| CapsError::InvalidConfig(format!("request: {e}")))?;
        let _permit = self.limits.acquire(category).await;
        self.llsd_answer(request).await
    }

    /// Creates the event-queue poller of one region from its `EventQueueGet` URL, with this
    /// client's [`EventQueueConfig`].
    ///
    /// # Errors
    /// [`CapsError::InvalidUrl`] for a URL that is not `http(s)`.
    pub fn event_queue(&self, url: &str) -> Result<EventQueue, CapsError> {
        self.event_queue_with(url, self.cfg.event_queue.clone())
    }

    /// [`event_queue`](Self::event_queue) with its own settings.
    ///
    /// # Errors
    /// [`CapsError::InvalidUrl`] for a URL that is not `http(s)`.
    pub fn event_queue_with(
        &self,
        url: &str,
        config: EventQueueConfig,
    ) -> Result<EventQueue, CapsError> {
        check_url(url)?;
        Ok(EventQueue::new(self.clone(), url.to_owned(), config))
    }

    async fn llsd_answer(&self, request: Request<Vec<u8>>) -> Result<Value, CapsError> {
        let reply = self.exchange(request).await?;
        if !(200..300).contains(&reply.status) {
            return Err(status_error(reply.status, &reply.body));
        }
        parse_llsd(reply.content_type, reply.body).await
    }

    /// A POST of an LLSD XML body with the headers OpenSimulator expects.
    pub(crate) fn llsd_post(
        &self,
        url: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Request<Vec<u8>>, CapsError> {
        Request::post(url)
            .header("content-type", LLSD_XML)
            .header("accept", LLSD_XML)
            .timeout(timeout)
            .body(body)
            .map_err(|_| CapsError::InvalidUrl("not a valid request URL"))
    }

    /// Sends a request and reads the whole answer (within the size limit).
    pub(crate) async fn exchange(&self, request: Request<Vec<u8>>) -> Result<RawReply, CapsError> {
        let response = self.http.send_async(request).await?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let content_type = header("content-type").unwrap_or("").to_owned();
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let body = self.read_body(response).await?;
        Ok(RawReply {
            status,
            content_type,
            retry_after,
            body,
        })
    }

    async fn read_body(&self, response: Response<AsyncBody>) -> Result<Vec<u8>, CapsError> {
        let limit = self.cfg.max_response_bytes;
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(CapsError::ResponseTooLarge { limit });
        }
        // The declared length is within the limit here, so this allocation is bounded.
        let mut body = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
        response
            .into_body()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(isahc::Error::from)?;
        if body.len() > limit {
            return Err(CapsError::ResponseTooLarge { limit });
        }
        Ok(body)
    }
}

/// The error for an unexpected status, with the start of the body.
pub(crate) fn status_error(status: u16, body: &[u8]) -> CapsError {
    CapsError::HttpStatus {
        status,
        body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
    }
}

/// Parses an LLSD answer; OpenSimulator labels LLSD `text/html` or `application/xml`, so
/// unknown labels fall back to sniffing the body.
pub(crate) async fn parse_llsd(content_type: String, body: Vec<u8>) -> Result<Value, CapsError> {
    let big = body.len() > UNBLOCK_ABOVE;
    let parse = move || match opensim_llsd::from_content_type(&content_type, &body) {
        Err(opensim_llsd::Error::UnsupportedContentType(_)) => {
            opensim_llsd::detect_and_parse(&body).map_err(CapsError::from)
        }
        other => other.map_err(CapsError::from),
    };
    if big {
        blocking::unblock(parse).await
    } else {
        parse()
    }
}
