//! A minimal HTTP/1.1 server for the tests (127.0.0.1, port 0, one thread per connection,
//! `Content-Length` bodies only), and a reader of the recorded exchanges of the fixtures.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opensim_caps::Value;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn llsd(&self) -> Value {
        opensim_llsd::from_xml(&self.body).unwrap()
    }
}

/// What to answer.
pub enum Reply {
    /// Bytes written as they are (a whole response); the connection stays open unless
    /// `close`.
    Raw { bytes: Vec<u8>, close: bool },
    /// Never answer: keep the connection until the client gives up on it.
    Hold,
}

impl Reply {
    pub fn new(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Reply {
        let mut bytes = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nServer: OSWebServer\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        Reply::Raw { bytes, close: true }
    }

    /// An LLSD XML body labelled as OpenSimulator labels event-queue answers.
    pub fn llsd(value: &Value) -> Reply {
        Reply::new(200, "OK", "application/xml", &opensim_llsd::to_xml(value))
    }

    /// A status with an empty body (reason phrases without spaces, as OpenSimulator's).
    pub fn status(status: u16) -> Reply {
        let reason = match status {
            200 => "OK",
            404 => "NotFound",
            499 => "ClientClosedRequest",
            500 => "InternalServerError",
            502 => "BadGateway",
            503 => "ServiceUnavailable",
            504 => "GatewayTimeout",
            _ => "Status",
        };
        Reply::new(status, reason, "text/html", b"")
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A running test server; it lives until the test process ends.
pub struct Server {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts a server answering each request with `handler(request, n)`, where `n` counts
    /// the requests received so far (0 for the first).
    pub fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&shared);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    // A broken exchange shows up on the client side.
                    let _ = serve(stream, &log, &*handler);
                });
            }
        });
        Server { addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Request>>, handler: &Handler) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(1 << 20);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let request = Request {
            method,
            path,
            headers,
            body,
        };
        let n = {
            let mut log = log.lock().unwrap();
            log.push(request.clone());
            log.len() - 1
        };
        match handler(&request, n) {
            Reply::Raw { bytes, close } => {
                out.write_all(&bytes)?;
                out.flush()?;
                if close {
                    return Ok(());
                }
            }
            Reply::Hold => {
                // Wait for the client to close its end.
                let mut sink = [0u8; 256];
                while reader.read(&mut sink)? > 0 {}
                return Ok(());
            }
        }
    }
}

/// One side of a recorded exchange.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request or status line.
    pub start_line: String,
    /// Header lines exactly as recorded.
    pub header_lines: Vec<String>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value (name case-insensitive, value trimmed).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_lines.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The path of a request line.
    pub fn path(&self) -> &str {
        self.start_line.split_whitespace().nth(1).unwrap()
    }

    /// The whole message as it was on the wire (to replay a response).
    pub fn wire_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start_line).into_bytes();
        for l in &self.header_lines {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// As a reply of the test server, keeping the connection if the recording did.
    pub fn replay(&self) -> Reply {
        let close = self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        Reply::Raw {
            bytes: self.wire_bytes(),
            close,
        }
    }
}

/// A recorded `NNNN_c2s_http.txt`.
pub struct Exchange {
    pub request: Recorded,
    pub response: Option<Recorded>,
}

fn parse_section(text: &[u8]) -> Recorded {
    let split = text
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(text.len());
    let head = std::str::from_utf8(&text[..split]).unwrap();
    let rest = text.get(split + 2..).unwrap_or(&[]);
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r').to_owned());
    let start_line = lines.next().unwrap();
    let header_lines: Vec<String> = lines.collect();
    let mut r = Recorded {
        start_line,
        header_lines,
        body: Vec::new(),
    };
    let len = r
        .header("content-length")
        .map_or(0, |v| v.parse::<usize>().unwrap());
    r.body = rest[..len].to_vec();
    r
}

/// Reads a recorded exchange of the `opensim-0.9.2.2-http` fixtures.
pub fn exchange(dir: &Path, file: &str) -> Exchange {
    let data = std::fs::read(dir.join(file)).unwrap();
    let req_mark = b"=== REQUEST ===\n";
    let resp_mark = b"\n=== RESPONSE ===\n";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let req_at = find(&data, req_mark).unwrap() + req_mark.len();
    let resp_at = find(&data, resp_mark).unwrap();
    let request = parse_section(&data[req_at..resp_at]);
    let resp_text = &data[resp_at + resp_mark.len()..];
    let response = (!resp_text.starts_with(b"(none")).then(|| parse_section(resp_text));
    Exchange { request, response }
}
