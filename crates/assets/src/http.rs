//! Minimal HTTP/1.1 server side: request parsing with hard bounds, keep-alive,
//! `Content-Length` and chunked bodies, `Expect: 100-continue`, per-read timeouts.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request line + headers, in bytes.
    pub max_header: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Longest wait for the first byte of a request on an idle connection.
    pub idle_timeout: Duration,
    /// Longest wait for any further read while a request is in progress.
    pub read_timeout: Duration,
}

/// Why a request could not be read. Each maps to a status (or to a silent close).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The peer closed the connection cleanly between requests.
    #[error("connection closed")]
    Closed,
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer went quiet.
    #[error("timed out")]
    Timeout,
    /// The request head is not valid HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Request line + headers exceed the limit.
    #[error("request header too large")]
    HeaderTooLarge,
    /// The body exceeds the limit.
    #[error("request body too large")]
    BodyTooLarge,
}

impl HttpError {
    /// Status to answer with, if any (None: just close).
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Closed | HttpError::Io(_) => None,
            HttpError::Timeout => Some(408),
            HttpError::Malformed(_) => Some(400),
            HttpError::HeaderTooLarge => Some(431),
            HttpError::BodyTooLarge => Some(413),
        }
    }
}

/// A parsed request.
#[derive(Debug, Default)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Header (lower-cased name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

impl Request {
    /// First value of the header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Buffered reader over a connection, keeping pipelined leftovers between requests.
pub struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
}

async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, HttpError>>,
) -> Result<T, HttpError> {
    futures_lite::future::or(f, async {
        async_io::Timer::after(d).await;
        Err(HttpError::Timeout)
    })
    .await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Conn<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::with_capacity(8192),
            start: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes, at most `want` beyond what is buffered. Returns 0 on EOF.
    async fn fill(&mut self, want: usize, t: Duration) -> Result<usize, HttpError> {
        if self.start > 0 && self.start * 2 > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + want.clamp(1, 64 * 1024), 0);
        let stream = &mut self.stream;
        let buf = &mut self.buf[old..];
        let r = timed(t, async { Ok(stream.read(buf).await?) }).await;
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        r
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, b: &[u8], t: Duration) -> Result<(), HttpError> {
        let stream = &mut self.stream;
        timed(t, async { Ok(stream.write_all(b).await?) }).await
    }

    /// Flushes the stream.
    pub async fn flush(&mut self) -> Result<(), HttpError> {
        Ok(self.stream.flush().await?)
    }

    /// Reads one request head and body.
    pub async fn read_request(&mut self, lim: &Limits) -> Result<Request, HttpError> {
        // Head.
        let mut scanned: usize = 0;
        let head_len = loop {
            let p = self.pending();
            if let Some(i) = find(&p[scanned.saturating_sub(3)..], b"\r\n\r\n") {
                break scanned.saturating_sub(3) + i + 4;
            }
            scanned = p.len();
            if scanned > lim.max_header {
                return Err(HttpError::HeaderTooLarge);
            }
            let t = if scanned == 0 {
                lim.idle_timeout
            } else {
                lim.read_timeout
            };
            let n = match self.fill(lim.max_header + 4 - scanned, t).await {
                // An idle keep-alive connection is closed quietly, not answered with 408.
                Err(HttpError::Timeout) if scanned == 0 => return Err(HttpError::Closed),
                r => r?,
            };
            if n == 0 {
                return Err(if scanned == 0 {
                    HttpError::Closed
                } else {
                    HttpError::Malformed("truncated head")
                });
            }
        };
        if head_len > lim.max_header + 4 {
            return Err(HttpError::HeaderTooLarge);
        }
        let mut req = parse_head(&self.pending()[..head_len], lim.max_headers)?;
        self.consume(head_len);

        // Body.
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = match req.header("content-length") {
            Some(v) if !chunked => Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed("content-length"))?,
            ),
            _ => None,
        };
        if length.is_some_and(|n| n > lim.max_body) {
            return Err(HttpError::BodyTooLarge);
        }
        if (chunked || length.is_some_and(|n| n > 0))
            && req
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n", lim.read_timeout)
                .await?;
        }
        if chunked {
            req.body = self.read_chunked(lim).await?;
        } else if let Some(n) = length {
            req.body = self.read_exact_body(n, lim).await?;
        }
        Ok(req)
    }

    async fn read_exact_body(&mut self, n: usize, lim: &Limits) -> Result<Vec<u8>, HttpError> {
        while self.pending().len() < n {
            let have = self.pending().len();
            if self.fill(n - have, lim.read_timeout).await? == 0 {
                return Err(HttpError::Malformed("truncated body"));
            }
        }
        let body = self.pending()[..n].to_vec();
        self.consume(n);
        Ok(body)
    }

    async fn read_line(&mut self, lim: &Limits) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(i) = find(self.pending(), b"\r\n") {
                let line = self.pending()[..i].to_vec();
                self.consume(i + 2);
                return Ok(line);
            }
            if self.pending().len() > 1024 {
                return Err(HttpError::Malformed("chunk line too long"));
            }
            if self.fill(1024, lim.read_timeout).await? == 0 {
                return Err(HttpError::Malformed("truncated chunk"));
            }
        }
    }

    async fn read_chunked(&mut self, lim: &Limits) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(lim).await?;
            let size_txt = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let size_txt =
                std::str::from_utf8(size_txt).map_err(|_| HttpError::Malformed("chunk size"))?;
            let size = usize::from_str_radix(size_txt.trim(), 16)
                .map_err(|_| HttpError::Malformed("chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line; bounded by read_line's limit per line.
                let mut trailers = 0;
                while !self.read_line(lim).await?.is_empty() {
                    trailers += 1;
                    if trailers > lim.max_headers {
                        return Err(HttpError::HeaderTooLarge);
                    }
                }
                return Ok(body);
            }
            if body.len().saturating_add(size) > lim.max_body {
                return Err(HttpError::BodyTooLarge);
            }
            let chunk = self.read_exact_body(size, lim).await?;
            body.extend_from_slice(&chunk);
            if !self.read_line(lim).await?.is_empty() {
                return Err(HttpError::Malformed("chunk terminator"));
            }
        }
    }
}

fn parse_head(head: &[u8], max_headers: usize) -> Result<Request, HttpError> {
    let head = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HttpError::Malformed("version")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("method"));
    }
    let path = target.split('?').next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(HttpError::Malformed("target"));
    }
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        if headers.len() >= max_headers {
            return Err(HttpError::HeaderTooLarge);
        }
        let (n, v) = l
            .split_once(':')
            .ok_or(HttpError::Malformed("header line"))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
        keep_alive: http11,
    };
    if let Some(c) = req.header("connection") {
        let c = c.to_ascii_lowercase();
        if c.contains("close") {
            req.keep_alive = false;
        } else if c.contains("keep-alive") {
            req.keep_alive = true;
        }
    }
    Ok(req)
}

/// Reason phrase as .NET's `HttpStatusCode` names it (what OpenSim puts on the wire).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        413 => "RequestEntityTooLarge",
        431 => "RequestHeaderFieldsTooLarge",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        _ => "Unknown",
    }
}
