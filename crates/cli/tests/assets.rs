//! `osn assets serve` as a process: store an asset over OpenSimulator's API and read it back.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use opensim_assets::xml::{AssetMeta, write_asset_base};

/// One HTTP/1.1 request on its own connection; the status and the body.
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = resp[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Small bodies: one chunk, then the terminator.
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let len =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        body = body[line_end + 2..line_end + 2 + len].to_vec();
    }
    (status, body)
}

#[test]
fn serve_stores_and_returns_an_asset() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("assets.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_osn"))
        .args(["assets", "serve", "--listen", "127.0.0.1:0", "--db", &db])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("asset server on http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();

    let meta = AssetMeta {
        id: uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0001),
        name: "osn test".into(),
        description: "stored through osn assets serve".into(),
        asset_type: 0,
        local: false,
        temporary: false,
        creator_id: String::new(),
        flags: 0,
    };
    let data = b"not really a texture".to_vec();
    let mut xml = Vec::new();
    write_asset_base(&mut xml, &meta, &data);
    let (status, body) = request(&addr, "POST", "/assets", &xml);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains(&meta.id.to_string()));

    let (status, body) = request(&addr, "GET", &format!("/assets/{}/data", meta.id), b"");
    assert_eq!(status, 200);
    assert_eq!(body, data);

    let _ = child.kill();
    let _ = child.wait();
}
