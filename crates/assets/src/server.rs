//! The asset HTTP server: routing, policies, authentication, connection handling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use base64::Engine as _;
use uuid::Uuid;

use crate::http::{Conn, Limits, Request, reason};
use crate::store::{Store, StoreError};
use crate::xml;

/// Which `DELETE /assets/{id}` requests are honoured (OpenSim's `AllowRemoteDelete` and
/// `AllowRemoteDeleteAllTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeletePolicy {
    /// Never delete (OpenSim's default); answers `<boolean>false</boolean>`.
    #[default]
    Deny,
    /// Delete only assets flagged `Maptile` (`AllowRemoteDelete = true`).
    MaptileOnly,
    /// Delete anything (`AllowRemoteDeleteAllTypes = true` as well).
    All,
}

/// Credentials required on writes (HTTP Basic, as OpenSim's `BasicHttpAuthentication`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free one).
    pub bind: SocketAddr,
    /// Database location: an SQLite file path (optionally `sqlite:PATH`), a
    /// `postgres://user:pass@host:port/db` URL or an OpenSimulator connection string
    /// (`Server=host;Database=db;User Id=u;Password=p;`); see [`crate::store::open`].
    pub database: String,
    /// Largest accepted request body in bytes (larger: 413).
    pub max_body: usize,
    /// Largest accepted request head in bytes.
    pub max_header: usize,
    /// Idle keep-alive timeout.
    pub idle_timeout: Duration,
    /// Timeout for each read/write while a request is in progress.
    pub io_timeout: Duration,
    /// Requests served on one connection before it is closed (OpenSim: 20).
    pub max_requests_per_connection: u32,
    /// Most simultaneously open connections; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Delete policy.
    pub delete_policy: DeletePolicy,
    /// When set, writes (store, update, delete) need these HTTP Basic credentials.
    pub write_auth: Option<Credentials>,
    /// Refuse every write with 403.
    pub read_only: bool,
}

impl ServerConfig {
    /// Defaults for a database at `database`, listening on 127.0.0.1 with a free port.
    pub fn new(database: impl Into<String>) -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.into(),
            max_body: 64 * 1024 * 1024,
            max_header: 16 * 1024,
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(30),
            max_requests_per_connection: 20,
            max_connections: 1024,
            delete_policy: DeletePolicy::Deny,
            write_auth: None,
            read_only: false,
        }
    }
}

/// Server start-up failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Could not bind or accept.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Could not open the store.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

struct State {
    store: Arc<dyn Store>,
    config: ServerConfig,
    limits: Limits,
    auth_header: Option<String>,
}

/// A bound asset server; call [`AssetServer::run`] to serve.
pub struct AssetServer {
    listener: TcpListener,
    state: Arc<State>,
    stop_tx: async_channel::Sender<()>,
    stop_rx: async_channel::Receiver<()>,
}

/// Stops a running server when [`ShutdownHandle::shutdown`] is called.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(async_channel::Sender<()>);

impl ShutdownHandle {
    /// Makes `run()` stop accepting and return. In-flight requests finish on their own.
    pub fn shutdown(&self) {
        self.0.close();
    }
}

impl AssetServer {
    /// Opens the store and binds the listener.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let db = config.database.clone();
        let store: Arc<dyn Store> = blocking::unblock(move || crate::store::open(&db))
            .await?
            .into();
        Self::bind_with_store(config, store).await
    }

    /// Binds the listener over an already opened store.
    pub async fn bind_with_store(
        config: ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(config.bind).await?;
        let limits = Limits {
            max_header: config.max_header,
            max_body: config.max_body,
            max_headers: 100,
            idle_timeout: config.idle_timeout,
            read_timeout: config.io_timeout,
        };
        let auth_header = config.write_auth.as_ref().map(|c| {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.user, c.password));
            format!("Basic {token}")
        });
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        Ok(AssetServer {
            listener,
            state: Arc::new(State {
                store,
                config,
                limits,
                auth_header,
            }),
            stop_tx,
            stop_rx,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops [`AssetServer::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop_tx.clone())
    }

    /// The underlying store.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Accepts and serves connections (each on its own task) until shut down.
    pub async fn run(self) -> Result<(), ServerError> {
        let permits = Arc::new(async_lock::Semaphore::new(
            self.state.config.max_connections.max(1),
        ));
        loop {
            let permit =
                futures_lite::future::or(async { Some(permits.acquire_arc().await) }, async {
                    let _ = self.stop_rx.recv().await;
                    None
                })
                .await;
            let Some(permit) = permit else {
                return Ok(());
            };
            let accepted =
                futures_lite::future::or(async { Some(self.listener.accept().await) }, async {
                    let _ = self.stop_rx.recv().await;
                    None
                })
                .await;
            let stream = match accepted {
                None => return Ok(()),
                Some(Ok((s, _))) => s,
                // Transient accept failures (EMFILE, aborted handshakes) must not kill the server.
                Some(Err(_)) => {
                    async_io::Timer::after(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let state = self.state.clone();
            smol::spawn(async move {
                serve_connection(state, stream).await;
                drop(permit);
            })
            .detach();
        }
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra: Option<&'static str>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type,
            body,
            extra: None,
        }
    }
    fn empty(status: u16) -> Self {
        Self::new(status, "text/plain", Vec::new())
    }
    fn xml(f: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut body = Vec::with_capacity(128);
        f(&mut body);
        Self::new(200, "application/xml", body)
    }
}

async fn serve_connection(state: Arc<State>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    let max = state.config.max_requests_per_connection.max(1);
    let t = state.config.io_timeout;
    for served in 1..=max {
        let (resp, keep) = match conn.read_request(&state.limits).await {
            Ok(req) => {
                let keep = req.keep_alive && served < max;
                (handle(&state, req).await, keep)
            }
            Err(e) => match e.status() {
                Some(s) => (Response::empty(s), false),
                None => return,
            },
        };
        // Like OpenSim, any non-2xx answer ends the connection.
        let keep = keep && (200..300).contains(&resp.status);
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nContent-Type: {}\r\n",
                resp.status,
                reason(resp.status),
                resp.body.len(),
                resp.content_type
            )
            .as_bytes(),
        );
        if keep {
            head.extend_from_slice(
                format!(
                    "Keep-Alive:timeout={}, max={}\r\nConnection: Keep-Alive\r\n",
                    state.config.idle_timeout.as_secs(),
                    max - served
                )
                .as_bytes(),
            );
        } else {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        if let Some(x) = resp.extra {
            head.extend_from_slice(x.as_bytes());
        }
        head.extend_from_slice(b"Server: opensim-assets\r\n\r\n");
        // Small bodies go out with the head in one segment; big ones are not copied.
        let ok = if resp.body.len() <= 64 * 1024 {
            head.extend_from_slice(&resp.body);
            conn.write(&head, t).await
        } else {
            match conn.write(&head, t).await {
                Ok(()) => conn.write(&resp.body, t).await,
                e => e,
            }
        };
        if ok.is_err() || conn.flush().await.is_err() || !keep {
            return;
        }
    }
}

fn parse_id(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::parse_str(s).ok()
}

async fn db<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    blocking::unblock(move || f(&*store))
        .await
        .map_err(|_| Response::empty(500))
}

/// Checks write permission; `Err` carries the refusal.
fn check_write(state: &State, req: &Request) -> Result<(), Response> {
    if state.config.read_only {
        return Err(Response::empty(403));
    }
    if let Some(expected) = &state.auth_header {
        match req.header("authorization") {
            None => {
                let mut r = Response::empty(401);
                r.extra = Some("WWW-Authenticate: Basic realm=\"opensim-assets\"\r\n");
                return Err(r);
            }
            Some(given) if given.as_bytes() != expected.as_bytes() => {
                return Err(Response::empty(403));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn handle(state: &Arc<State>, req: Request) -> Response {
    match route(state, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn route(state: &Arc<State>, req: Request) -> Result<Response, Response> {
    let path = req.path.as_str();
    if path == "/get_assets_exist" || path == "/get_assets_exist/" {
        if req.method != "POST" {
            return Ok(not_allowed("POST"));
        }
        return assets_exist(state, &req.body).await;
    }
    let Some(rest) = path.strip_prefix("/assets") else {
        return Ok(Response::empty(404));
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Ok(Response::empty(404));
    }
    let rest = rest.trim_start_matches('/');
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segs: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    let method = req.method.as_str();
    match (segs.as_slice(), method) {
        ([], "POST") => {
            check_write(state, &req)?;
            store_asset(state, &req.body).await
        }
        ([], "GET") => Ok(Response::empty(404)),
        ([], _) => Ok(not_allowed("POST")),
        ([id], "GET") => {
            let Some(id) = parse_id(id) else {
                return Ok(Response::empty(404));
            };
            match db(state, move |s| s.get(id)).await? {
                Some(a) => {
                    let mut body = Vec::new();
                    xml::write_asset_base(&mut body, &a.meta(), &a.data);
                    Ok(Response::new(200, "text/xml", body))
                }
                None => Ok(Response::empty(404)),
            }
        }
        ([id], "POST") => {
            check_write(state, &req)?;
            parse_id(id).ok_or_else(|| Response::empty(400))?;
            xml::parse_asset_base(&req.body)
                .map_err(|_| Response::new(400, "application/xml", Vec::new()))?;
            // Assets are immutable: OpenSim's UpdateContent always answers false.
            Ok(Response::xml(|b| xml::write_bool(b, false)))
        }
        ([id], "DELETE") => {
            check_write(state, &req)?;
            let id = parse_id(id).ok_or_else(|| Response::empty(400))?;
            let policy = state.config.delete_policy;
            let deleted = db(state, move |s| {
                let allowed = match policy {
                    DeletePolicy::Deny => false,
                    DeletePolicy::All => true,
                    DeletePolicy::MaptileOnly => s
                        .meta(id)?
                        .is_some_and(|m| m.flags & xml::FLAG_MAPTILE != 0),
                };
                if allowed { s.delete(id) } else { Ok(false) }
            })
            .await?;
            Ok(Response::xml(|b| xml::write_bool(b, deleted)))
        }
        ([_], _) => Ok(not_allowed("GET, POST, DELETE")),
        ([id, sub], "GET") if *sub == "data" || *sub == "metadata" => {
            let Some(id) = parse_id(id) else {
                return Ok(Response::empty(404));
            };
            if *sub == "data" {
                match db(state, move |s| s.data(id)).await? {
                    Some(d) => Ok(Response::new(200, "application/octet-stream", d)),
                    None => Ok(Response::empty(404)),
                }
            } else {
                match db(state, move |s| s.meta(id)).await? {
                    Some(m) => {
                        let mut body = Vec::with_capacity(700);
                        xml::write_metadata(&mut body, &m);
                        Ok(Response::new(200, xml::content_type(m.asset_type), body))
                    }
                    None => Ok(Response::empty(404)),
                }
            }
        }
        (_, "GET") => Ok(Response::empty(400)),
        _ => Ok(not_allowed("GET")),
    }
}

fn not_allowed(allow: &'static str) -> Response {
    let mut r = Response::empty(405);
    r.extra = Some(match allow {
        "POST" => "Allow: POST\r\n",
        "GET" => "Allow: GET\r\n",
        _ => "Allow: GET, POST, DELETE\r\n",
    });
    r
}

async fn store_asset(state: &Arc<State>, body: &[u8]) -> Result<Response, Response> {
    let mut asset = xml::parse_asset_base(body)
        .map_err(|_| Response::new(400, "application/xml", Vec::new()))?;
    // Cuts names, refuses over-long creator ids: the client's mistake, so a 400, not a 500.
    crate::store::check_asset(&mut asset)
        .map_err(|_| Response::new(400, "application/xml", Vec::new()))?;
    let id = asset.id;
    db(state, move |s| s.put(asset)).await?;
    let mut buf = Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buf);
    Ok(Response::xml(|b| xml::write_string(b, text)))
}

async fn assets_exist(state: &Arc<State>, body: &[u8]) -> Result<Response, Response> {
    let ids = xml::parse_string_array(body)
        .map_err(|_| Response::new(400, "application/xml", Vec::new()))?;
    let parsed: Option<Vec<Uuid>> = ids.iter().map(|s| Uuid::parse_str(s.trim()).ok()).collect();
    // OpenSim answers all-false when any id fails to parse.
    let result = match parsed {
        Some(uuids) => db(state, move |s| s.exists(&uuids)).await?,
        None => vec![false; ids.len()],
    };
    Ok(Response::xml(|b| xml::write_bool_array(b, &result)))
}
