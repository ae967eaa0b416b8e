//! A minimal HTTP/1.1 server side: request line, headers, Content-Length bodies, bounded sizes.

use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The peer closed the connection between requests.
    #[error("connection closed")]
    Closed,
    /// The request is malformed (bad request line, header, length...).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The head or the body is larger than allowed.
    #[error("request too large")]
    TooLarge,
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    /// Method (`GET`, `POST`...).
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string (without `?`), possibly empty.
    pub query: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close after this request.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one request from `stream`; `buf` keeps bytes of a pipelined next request.
pub async fn read_request<S>(stream: &mut S, buf: &mut Vec<u8>) -> Result<Request, HttpError>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                HttpError::Closed
            } else {
                HttpError::Malformed("truncated head")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Err(HttpError::TooLarge);
    }
    let head =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines
        .next()
        .ok_or(HttpError::Malformed("no request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("bad header"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    if req.header("transfer-encoding").is_some() {
        return Err(HttpError::Malformed("chunked bodies are not supported"));
    }
    let len = match req.header("content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed("bad Content-Length"))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(HttpError::TooLarge);
    }
    buf.drain(..head_end + 4);
    if len > buf.len()
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        stream.flush().await?;
    }
    while buf.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Malformed("truncated body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    req.body = buf.drain(..len).collect();
    Ok(req)
}

/// A response to write.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Close the connection after it.
    pub close: bool,
}

impl Response {
    /// A 200 with a body of the given content type.
    pub fn ok(content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status: 200,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            close: false,
        }
    }

    /// An empty answer with `status` that closes the connection (as OpenSim's 404 and 502).
    pub fn empty_close(status: u16) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain".to_owned())],
            body: Vec::new(),
            close: true,
        }
    }
}

/// OpenSim's reason phrases (written without spaces, as it does).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "PartialContent",
        400 => "BadRequest",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        413 => "RequestEntityTooLarge",
        502 => "BadGateway",
        _ => "Unknown",
    }
}

/// Writes `resp`.
pub async fn write_response<S>(stream: &mut S, resp: &Response) -> std::io::Result<()>
where
    S: futures_lite::AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\nServer: OSWebServer\r\n",
            resp.status,
            reason(resp.status)
        )
        .as_bytes(),
    );
    for (k, v) in &resp.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    if resp.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp.body);
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A stream that reads from a fixed buffer and discards writes.
    struct Fake(futures_lite::io::Cursor<Vec<u8>>, Vec<u8>);

    impl futures_lite::AsyncRead for Fake {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl futures_lite::AsyncWrite for Fake {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.1.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn parse_all(input: &[u8]) -> (Vec<Request>, Option<HttpError>, Vec<u8>) {
        let mut s = Fake(futures_lite::io::Cursor::new(input.to_vec()), Vec::new());
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let err = smol::block_on(async {
            loop {
                match read_request(&mut s, &mut buf).await {
                    Ok(r) => out.push(r),
                    Err(HttpError::Closed) => return None,
                    Err(e) => return Some(e),
                }
            }
        });
        (out, err, s.1)
    }

    #[test]
    fn pipelined_requests_with_bodies_and_expect() {
        let input = b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let (reqs, err, written) = parse_all(input);
        assert!(err.is_none());
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("POST", "/a")
        );
        assert_eq!(reqs[0].query, "x=1");
        assert_eq!(reqs[0].body, b"abc");
        assert!(reqs[1].wants_close());
        // The body had already arrived: no interim 100 was needed.
        assert!(written.is_empty());
    }

    #[test]
    fn hostile_requests_are_typed_errors() {
        for input in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            b"GET / HTTP/1.1\r\n",
        ] {
            let (_, err, _) = parse_all(input);
            assert!(
                matches!(err, Some(HttpError::Malformed(_))),
                "{input:?}: {err:?}"
            );
        }
        let (_, err, _) = parse_all(b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n");
        assert!(matches!(err, Some(HttpError::TooLarge)));
        let long = vec![b'a'; MAX_HEAD + 10];
        let (_, err, _) = parse_all(&long);
        assert!(matches!(err, Some(HttpError::TooLarge)));
    }
}
