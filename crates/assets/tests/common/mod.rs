//! Tiny blocking HTTP/1.1 client and server helpers for the integration tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use opensim_assets::{AssetServer, ServerConfig, ShutdownHandle};

#[cfg(feature = "postgres")]
pub mod pg;

/// The storage backend a test runs on.
#[derive(Clone)]
pub enum Backend {
    /// SQLite file in the server's temporary directory.
    Sqlite,
    /// A fresh database on the test binary's shared PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(std::sync::Arc<pg::PgCluster>),
}

impl Backend {
    /// The PostgreSQL backend, or `None` (after a skip notice) when it cannot run here.
    pub fn postgres() -> Option<Backend> {
        #[cfg(feature = "postgres")]
        {
            pg::PgCluster::shared().map(Backend::Postgres)
        }
        #[cfg(not(feature = "postgres"))]
        {
            eprintln!("skipping PostgreSQL tests: built without the `postgres` feature");
            None
        }
    }

    /// Whether identical content is stored once.
    pub fn dedups(&self) -> bool {
        matches!(self, Backend::Sqlite)
    }

    /// A location for a new, empty store (`dir` is a temporary directory for file backends).
    pub fn fresh_location(&self, dir: &std::path::Path) -> String {
        match self {
            Backend::Sqlite => format!("sqlite:{}", dir.join("assets.db").display()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(c) => c.fresh_url(),
        }
    }
}

/// Defines `sqlite::NAME` and `postgres::NAME` tests calling `NAME(&Backend)` for each name.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&$crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(b) = $crate::common::Backend::postgres() { super::$name(&b) }
            } )*
        }
    };
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive connection.
pub struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::try_connect(addr).unwrap()
    }

    /// A connection, or the error when nothing listens (a server killed meanwhile).
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Client {
            r: BufReader::new(s),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).unwrap();
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut all = req.into_bytes();
        all.extend_from_slice(body);
        self.r.get_mut().write_all(&all)?;
        self.read_response()
    }

    pub fn read_response(&mut self) -> std::io::Result<Resp> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l)?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return self.read_response();
        }
        let n: usize = resp.header("content-length").unwrap().parse().unwrap();
        resp.body = vec![0; n];
        self.r.read_exact(&mut resp.body)?;
        Ok(resp)
    }
}

/// One request on a fresh connection.
pub fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    Client::connect(addr)
        .request(method, path, extra, body)
        .unwrap()
}

/// A server running on a background thread, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: std::sync::Arc<dyn opensim_assets::Store>,
    stop: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub _dir: tempfile::TempDir,
    /// Keeps a PostgreSQL server alive while this server uses it.
    pub backend: Backend,
}

impl TestServer {
    /// On SQLite.
    pub fn start(f: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_on(&Backend::Sqlite, f)
    }

    /// On `backend`, with an empty store.
    pub fn start_on(backend: &Backend, f: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig::new(backend.fresh_location(dir.path()));
        f(&mut cfg);
        let server = smol::block_on(AssetServer::bind(cfg)).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = server.shutdown_handle();
        let store = server.store();
        let thread = std::thread::spawn(move || smol::block_on(server.run()).unwrap());
        TestServer {
            addr,
            store,
            stop,
            thread: Some(thread),
            _dir: dir,
            backend: backend.clone(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An `<AssetBase>` POST body in OpenSim's compact form.
pub fn asset_xml(id: &str, asset_type: i8, flags: &str, data: &[u8]) -> Vec<u8> {
    let a = opensim_assets::AssetBase {
        id: uuid::Uuid::parse_str(id).unwrap(),
        name: "test".into(),
        description: "d".into(),
        asset_type,
        creator_id: "aaaaaaaa-bbbb-4ccc-8ddd-000000000001".into(),
        flags: match flags {
            "Maptile" => 1,
            _ => 0,
        },
        data: data.to_vec(),
        ..Default::default()
    };
    let mut out = Vec::new();
    opensim_assets::xml::write_asset_base(&mut out, &a.meta(), &a.data);
    out
}

pub fn uuid_n(n: u64) -> String {
    format!("d00dfeed-0000-4000-8000-{n:012x}")
}
