//! Texture downloads over the `GetTexture` / `ViewerAsset` capabilities (HTTP, with `Range`).
//!
//! [`TextureHttp`] sends `GET <cap>?texture_id=<uuid>` with `Accept: image/x-j2c` and an
//! optional `Range: bytes=a-b`, and returns the bytes with where they sit in the asset
//! ([`RangeBody`]). It follows what OpenSimulator 0.9.2.2 answers (see the `texture-http`
//! capture):
//!
//! * `206` with `Content-Range: bytes a-b/total` for a satisfiable range; a range that runs
//!   over the end is clipped;
//! * `200` with the **whole asset** when no range was sent, and also when the range starts
//!   past the end (OpenSim does not answer 416), for `bytes=0-0`, and for suffix or multiple
//!   ranges it does not understand. A `200` is therefore always "everything from byte 0";
//! * `404` (with `Connection: close`) for a missing asset: [`HttpFetchError::NotFound`];
//! * reason phrases without spaces (`206 PartialContent`): only the numeric status is read.
//!
//! `5xx` answers and transport failures are retried with exponential backoff, a bounded number
//! of times ([`RetryPolicy`]). A shared [`async_lock::Semaphore`] handed in with
//! [`TextureHttp::with_limit`] caps how many requests of a category run at once across every
//! fetcher that holds it; a permit is held only while a request is on the wire, not while
//! backing off.

use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;
use futures_lite::AsyncReadExt;
use isahc::config::Configurable;
use isahc::{AsyncBody, HttpClient, Request, Response};
use uuid::Uuid;

/// The MIME type of J2C textures, sent as `Accept`.
pub const J2C_CONTENT_TYPE: &str = "image/x-j2c";

/// Which bytes of the asset to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No `Range` header: the whole asset (`200`).
    Whole,
    /// `bytes=<first>-`: from `first` to the end.
    From(u64),
    /// `bytes=<first>-<last>`, `last` inclusive.
    Span {
        /// First byte wanted.
        first: u64,
        /// Last byte wanted (inclusive).
        last: u64,
    },
}

impl ByteRange {
    /// The bytes `[start, end)` as a range (`end` exclusive, must be above `start`).
    pub fn between(start: u64, end: u64) -> Option<ByteRange> {
        (end > start).then(|| ByteRange::Span {
            first: start,
            last: end - 1,
        })
    }

    /// The first byte asked for (0 for [`ByteRange::Whole`]).
    pub fn first(&self) -> u64 {
        match *self {
            ByteRange::Whole => 0,
            ByteRange::From(first) | ByteRange::Span { first, .. } => first,
        }
    }

    /// The value of the `Range` header, if one is sent.
    pub fn header_value(&self) -> Option<String> {
        match *self {
            ByteRange::Whole => None,
            ByteRange::From(first) => Some(format!("bytes={first}-")),
            ByteRange::Span { first, last } => Some(format!("bytes={first}-{last}")),
        }
    }
}

/// The bytes one response carried and where they sit in the asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeBody {
    /// Offset of `data[0]` in the asset (0 for a `200`).
    pub offset: u64,
    /// The body.
    pub data: Vec<u8>,
    /// Total size of the asset: from `Content-Range`, or the body length of a `200`.
    pub total: Option<u64>,
    /// Whether the server answered `206` (a part) rather than `200` (the whole asset).
    pub partial: bool,
}

impl RangeBody {
    /// Offset just past the last byte received.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }

    /// Whether this body is the whole asset.
    pub fn is_whole(&self) -> bool {
        self.offset == 0 && self.total == Some(self.data.len() as u64)
    }
}

/// How often and how patiently failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Settings of a [`TextureHttp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Retries on `5xx` and transport errors.
    pub retry: RetryPolicy,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, body included.
    pub timeout: Duration,
    /// Largest body accepted (textures are at most a few MiB).
    pub max_body_bytes: u64,
    /// `User-Agent` header.
    pub user_agent: String,
    /// HTTP proxy URL (`http://host:port`); `None` leaves curl's environment variables in
    /// charge.
    pub proxy: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_body_bytes: 16 * 1024 * 1024,
            user_agent: concat!("opensim-textures/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
        }
    }
}

/// Why a texture request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFetchError {
    /// The server has no such texture (`404`).
    #[error("texture {id} not found (404)")]
    NotFound {
        /// The texture asked for.
        id: Uuid,
    },
    /// The server answered a status other than 200, 206 or 404 (for `5xx`, after retrying).
    #[error("HTTP status {status} after {attempts} attempt(s)")]
    Status {
        /// The last status received.
        status: u16,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The connection failed (after retrying).
    #[error("transport error after {attempts} attempt(s): {source}")]
    Transport {
        /// The last failure.
        #[source]
        source: isahc::Error,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The server's answer contradicts the request or itself (bad `Content-Range`, a body
    /// whose length differs from it, a part starting elsewhere than asked).
    #[error("misbehaving server: {0}")]
    BadResponse(String),
    /// The body is larger than [`HttpConfig::max_body_bytes`].
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// The request could not be built (bad capability URL or settings): a caller error.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl HttpFetchError {
    /// Whether another attempt could succeed (server errors and transport failures).
    fn retryable(&self) -> bool {
        match self {
            HttpFetchError::Status { status, .. } => (500..600).contains(status),
            HttpFetchError::Transport { .. } => true,
            _ => false,
        }
    }

    fn set_attempts(&mut self, n: u32) {
        match self {
            HttpFetchError::Status { attempts, .. }
            | HttpFetchError::Transport { attempts, .. } => {
                *attempts = n;
            }
            _ => {}
        }
    }
}

fn transport(e: impl Into<isahc::Error>) -> HttpFetchError {
    HttpFetchError::Transport {
        source: e.into(),
        attempts: 1,
    }
}

/// A texture HTTP client: a connection pool, its settings and an optional shared limit on
/// concurrent requests. Cheap to clone (clones share the pool and the limit).
#[derive(Debug, Clone)]
pub struct TextureHttp {
    client: HttpClient,
    config: HttpConfig,
    limit: Option<Arc<Semaphore>>,
}

/// Called with `(bytes of this body received so far, body length announced)` while a body
/// arrives.
pub type ChunkProgress<'a> = &'a mut (dyn FnMut(u64, Option<u64>) + Send);

impl TextureHttp {
    /// A client with `config` and no concurrency limit.
    ///
    /// # Errors
    /// [`HttpFetchError::InvalidRequest`] when curl refuses the settings.
    pub fn new(config: HttpConfig) -> Result<Self, HttpFetchError> {
        let mut builder = HttpClient::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .default_header("user-agent", config.user_agent.as_str())
            // Byte ranges must address the stored bytes, not a re-encoded body.
            .automatic_decompression(false);
        if let Some(proxy) = &config.proxy {
            let uri = proxy
                .parse::<isahc::http::Uri>()
                .map_err(|e| HttpFetchError::InvalidRequest(format!("proxy URL: {e}")))?;
            builder = builder.proxy(Some(uri));
        }
        let client = builder
            .build()
            .map_err(|e| HttpFetchError::InvalidRequest(format!("HTTP client settings: {e}")))?;
        Ok(TextureHttp {
            client,
            config,
            limit: None,
        })
    }

    /// Shares `limit` with every other holder: at most its permit count of requests run at
    /// once (for example one semaphore for textures, another for meshes).
    pub fn with_limit(mut self, limit: Arc<Semaphore>) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// `cap?texture_id=<id>` (or `&texture_id=` when the cap URL already has a query).
    pub fn texture_url(cap: &str, id: Uuid) -> String {
        let sep = if cap.contains('?') { '&' } else { '?' };
        format!("{cap}{sep}texture_id={id}")
    }

    /// Fetches `range` of texture `id` through the capability URL `cap`.
    ///
    /// # Errors
    /// [`HttpFetchError::NotFound`] on 404; the other variants as documented there.
    pub async fn fetch(
        &self,
        cap: &str,
        id: Uuid,
        range: ByteRange,
    ) -> Result<RangeBody, HttpFetchError> {
        self.fetch_with_progress(cap, id, range, &mut |_, _| {})
            .await
    }

    /// [`fetch`](Self::fetch), calling `progress` as the body arrives.
    ///
    /// # Errors
    /// As [`fetch`](Self::fetch).
    pub async fn fetch_with_progress(
        &self,
        cap: &str,
        id: Uuid,
        range: ByteRange,
        progress: ChunkProgress<'_>,
    ) -> Result<RangeBody, HttpFetchError> {
        if let ByteRange::Span { first, last } = range
            && last < first
        {
            return Err(HttpFetchError::InvalidRequest(format!(
                "empty range {first}-{last}"
            )));
        }
        let url = Self::texture_url(cap, id);
        let uri: isahc::http::Uri = url
            .parse()
            .map_err(|e| HttpFetchError::InvalidRequest(format!("capability URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(HttpFetchError::InvalidRequest(
                "capability URL must be http or https".into(),
            ));
        }
        let mut retry = 0u32;
        loop {
            let attempt = {
                let _permit = match &self.limit {
                    Some(s) => Some(s.acquire_arc().await),
                    None => None,
                };
                self.attempt(&uri, id, range, progress).await
            };
            match attempt {
                Err(mut e) => {
                    if e.retryable() && retry < self.config.retry.max_retries {
                        async_io::Timer::after(self.config.retry.backoff(retry)).await;
                        retry += 1;
                        continue;
                    }
                    e.set_attempts(retry + 1);
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    async fn attempt(
        &self,
        uri: &isahc::http::Uri,
        id: Uuid,
        range: ByteRange,
        progress: ChunkProgress<'_>,
    ) -> Result<RangeBody, HttpFetchError> {
        let mut request = Request::get(uri.clone()).header("accept", J2C_CONTENT_TYPE);
        if let Some(v) = range.header_value() {
            request = request.header("range", v);
        }
        let request = request
            .body(())
            .map_err(|e| HttpFetchError::InvalidRequest(e.to_string()))?;
        let response = self.client.send_async(request).await.map_err(transport)?;
        match response.status().as_u16() {
            404 => Err(HttpFetchError::NotFound { id }),
            200 => {
                let data = self.read_body(response, None, progress).await?;
                Ok(RangeBody {
                    offset: 0,
                    total: Some(data.len() as u64),
                    data,
                    partial: false,
                })
            }
            206 => {
                let cr = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        HttpFetchError::BadResponse("206 without a Content-Range".into())
                    })?;
                let (first, last, total) = parse_content_range(cr).ok_or_else(|| {
                    HttpFetchError::BadResponse(format!("unreadable Content-Range {cr:?}"))
                })?;
                check_part(range, first, last, total)?;
                let len = last - first + 1;
                let data = self.read_body(response, Some(len), progress).await?;
                if data.len() as u64 != len {
                    return Err(HttpFetchError::BadResponse(format!(
                        "Content-Range says {len} bytes, body has {}",
                        data.len()
                    )));
                }
                Ok(RangeBody {
                    offset: first,
                    data,
                    total,
                    partial: true,
                })
            }
            status => Err(HttpFetchError::Status {
                status,
                attempts: 1,
            }),
        }
    }

    /// Reads the body, refusing more than `expected` (when given) or the configured maximum.
    async fn read_body(
        &self,
        response: Response<AsyncBody>,
        expected: Option<u64>,
        progress: ChunkProgress<'_>,
    ) -> Result<Vec<u8>, HttpFetchError> {
        let limit = self.config.max_body_bytes;
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let announced = expected.or(declared);
        if announced.is_some_and(|n| n > limit) {
            return Err(HttpFetchError::TooLarge { limit });
        }
        // A part never holds more than it announced; one byte more is enough to notice.
        let cap = expected.map_or(limit, |e| e.min(limit));
        let mut data = Vec::with_capacity(announced.unwrap_or(16 * 1024).min(cap) as usize);
        let mut body = response.into_body().take(cap + 1);
        const CHUNK: usize = 16 * 1024;
        loop {
            let len = data.len();
            data.resize(len + CHUNK, 0);
            let n = match body.read(&mut data[len..]).await {
                Ok(n) => n,
                Err(e) => {
                    data.truncate(len);
                    return Err(transport(e));
                }
            };
            data.truncate(len + n);
            if n == 0 {
                break;
            }
            progress(data.len() as u64, announced);
        }
        if data.len() as u64 > cap {
            return Err(if cap == limit {
                HttpFetchError::TooLarge { limit }
            } else {
                HttpFetchError::BadResponse("body longer than its Content-Range".into())
            });
        }
        Ok(data)
    }
}

/// Parses `bytes <first>-<last>/<total or *>`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    (last >= first && total.is_none_or(|t| last < t)).then_some((first, last, total))
}

/// Checks that a `206` part is the one asked for.
fn check_part(
    range: ByteRange,
    first: u64,
    last: u64,
    _total: Option<u64>,
) -> Result<(), HttpFetchError> {
    let bad = |what: &str| {
        Err(HttpFetchError::BadResponse(format!(
            "asked for {range:?}, got bytes {first}-{last}: {what}"
        )))
    };
    match range {
        ByteRange::Whole => bad("a part although no range was asked"),
        _ if first != range.first() => bad("the part starts elsewhere"),
        ByteRange::Span { last: want, .. } if last > want => bad("the part runs past the range"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 0-599/79234"),
            Some((0, 599, Some(79234)))
        );
        assert_eq!(
            parse_content_range("bytes 79000-79233/79234"),
            Some((79000, 79233, Some(79234)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 9-5/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 0-18446744073709551616/1"), None);
    }

    #[test]
    fn range_headers() {
        assert_eq!(ByteRange::Whole.header_value(), None);
        assert_eq!(
            ByteRange::From(600).header_value().as_deref(),
            Some("bytes=600-")
        );
        assert_eq!(
            ByteRange::between(0, 600)
                .unwrap()
                .header_value()
                .as_deref(),
            Some("bytes=0-599")
        );
        assert_eq!(ByteRange::between(5, 5), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (0..5).map(|r| p.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn texture_urls() {
        let id = Uuid::nil();
        assert_eq!(
            TextureHttp::texture_url("http://h:9000/abc", id),
            format!("http://h:9000/abc?texture_id={id}")
        );
        assert_eq!(
            TextureHttp::texture_url("http://h/x?a=1", id),
            format!("http://h/x?a=1&texture_id={id}")
        );
    }
}
