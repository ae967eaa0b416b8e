//! Load generator: stores then fetches assets with concurrent keep-alive clients against an
//! in-process server, and prints requests per second.
//!
//! `cargo run --release -p opensim-assets --example loadgen -- [CLIENTS] [SIZE_BYTES] [COUNT] [DB]`
//!
//! `DB` is any store location (`postgres://...`, `Server=...;Database=...;`, `sqlite:PATH`);
//! it must not already hold the generated ids. Without it a temporary SQLite file is used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

fn request(r: &mut BufReader<TcpStream>, head: &[u8], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let s = r.get_mut();
    s.write_all(head)?;
    s.write_all(body)?;
    let mut line = String::new();
    let mut len = 0usize;
    let mut status = 0u16;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if status == 0 {
            status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("Content-Length: ") {
            len = v.parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    if status != 200 {
        return Err(std::io::Error::other(format!("status {status}")));
    }
    Ok(body)
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

/// Runs `per_client` requests on each of `clients` threads; the server closes every 20th.
fn phase(
    addr: SocketAddr,
    clients: u64,
    per_client: u64,
    mk: impl Fn(u64) -> (Vec<u8>, Vec<u8>) + Sync,
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|sc| {
        for c in 0..clients {
            let mk = &mk;
            sc.spawn(move || {
                let mut conn = connect(addr).expect("connect");
                for i in 0..per_client {
                    let (head, body) = mk(c * per_client + i);
                    if request(&mut conn, &head, &body).is_err() {
                        conn = connect(addr).expect("connect");
                        request(&mut conn, &head, &body).expect("request");
                    }
                }
            });
        }
    });
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: u64 = args.next().map_or(Ok(8), |s| s.parse())?;
    let size: usize = args.next().map_or(Ok(1024), |s| s.parse())?;
    let count: u64 = args.next().map_or(Ok(2000), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("assets-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = args
        .next()
        .unwrap_or_else(|| dir.join("a.db").to_string_lossy().into_owned());
    let cfg = opensim_assets::ServerConfig::new(db);
    let server = smol::block_on(opensim_assets::AssetServer::bind(cfg))?;
    let addr = server.local_addr()?;
    std::thread::spawn(move || smol::block_on(server.run()));
    let id = |n: u64| format!("10adf00d-0000-4000-8000-{n:012x}");
    let per = count / clients;
    let stores = phase(addr, clients, per, |n| {
        // Distinct content per asset so de-duplication does not flatter the numbers.
        let mut data = vec![0u8; size];
        data[..8.min(size)].copy_from_slice(&n.to_le_bytes()[..8.min(size)]);
        let a = opensim_assets::AssetBase {
            id: uuid::Uuid::parse_str(&id(n)).expect("uuid"),
            asset_type: 0,
            data,
            ..Default::default()
        };
        let mut body = Vec::new();
        opensim_assets::xml::write_asset_base(&mut body, &a.meta(), &a.data);
        let head = format!(
            "POST /assets/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        (head.into_bytes(), body)
    });
    let fetches = phase(addr, clients, per, |n| {
        (
            format!(
                "GET /assets/{}/data HTTP/1.1\r\nHost: x\r\n\r\n",
                id(n % (per * clients))
            )
            .into_bytes(),
            Vec::new(),
        )
    });
    let xml = phase(addr, clients, per, |n| {
        (
            format!(
                "GET /assets/{} HTTP/1.1\r\nHost: x\r\n\r\n",
                id(n % (per * clients))
            )
            .into_bytes(),
            Vec::new(),
        )
    });
    println!(
        "clients={clients} size={size} count={}: stores {stores:.0}/s, GET data {fetches:.0}/s, GET xml {xml:.0}/s",
        per * clients
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
