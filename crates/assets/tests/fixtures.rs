//! Replays OpenSimulator's captured exchanges (Part A of the ROBUST asset-service fixture)
//! against our server and compares status, content type and body bytes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestServer};
use opensim_assets::DeletePolicy;

/// Decodes the fixture's Python-bytes-like notation (`\xNN`, `\n`, `\r`, `\t`, `\\`).
fn unrepr(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 4;
                    continue;
                }
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// One side of an exchange: start line, headers, body (None when the fixture truncated it).
struct Side {
    start: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn parse_side(text: &str) -> Side {
    let mut lines = text.split_inclusive('\n');
    let start = lines
        .next()
        .unwrap()
        .trim_end()
        .trim_end_matches("\\r\\n")
        .to_owned();
    let mut headers = Vec::new();
    let mut consumed = text.find('\n').unwrap() + 1;
    for l in lines.by_ref() {
        consumed += l.len();
        let l = l.trim_end().trim_end_matches("\\r\\n");
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let rest = &text[consumed..];
    let rest = rest.split("\n# (").next().unwrap();
    let body = if rest.contains("... [") {
        None
    } else if rest.starts_with("\\xef") {
        Some(unrepr(rest.trim_end_matches('\n')))
    } else {
        Some(rest.as_bytes()[..len.min(rest.len())].to_vec())
    };
    let body = body.filter(|b| b.len() == len);
    Side {
        start,
        headers,
        body,
    }
}

fn exchanges() -> Option<Vec<(String, Side, Side)>> {
    let dir = opensim_testkit::fixture_subdir("robust-asset-service")?;
    let text = std::fs::read_to_string(dir.join("examples.txt")).unwrap();
    let part_a = text.split("PART B").next().unwrap();
    let mut out = Vec::new();
    for sec in part_a.split("\n### ").skip(1) {
        let title = sec.lines().next().unwrap().to_owned();
        let sec = sec.split("\n=====").next().unwrap();
        let (req, resp) = sec.split_once("--- response ---\n").unwrap();
        let req = req.split_once("--- request ---\n").unwrap().1;
        out.push((title, parse_side(req), parse_side(resp)));
    }
    Some(out)
}

#[test]
fn replay_part_a_byte_for_byte() {
    let Some(ex) = exchanges() else { return };
    let srv = TestServer::start(|c| c.delete_policy = DeletePolicy::All);
    let mut compared = 0;
    for (title, req, resp) in &ex {
        // These need the fixture server's pre-loaded "plywood" texture (body truncated in the
        // capture), a body the capture truncated, or HEAD, which we answer with 405.
        let (Some(req_body), Some(resp_body)) = (req.body.as_ref(), resp.body.as_ref()) else {
            continue;
        };
        let plywood = req.start.contains("89556747") && !title.contains("sub-resource");
        if plywood || title.contains("get_assets_exist") || title.starts_with("HEAD") {
            continue;
        }
        let mut parts = req.start.split(' ');
        let method = parts.next().unwrap();
        let path = parts.next().unwrap();
        let r = Client::connect(srv.addr)
            .request(method, path, &[], req_body)
            .unwrap();
        let want_status: u16 = resp.start.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(r.status, want_status, "{title}");
        let want_ct = resp
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .unwrap();
        assert_eq!(r.header("content-type").unwrap(), want_ct.1, "{title}");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(resp_body),
            "{title}"
        );
        assert_eq!(&r.body, resp_body, "{title}");
        compared += 1;
    }
    assert!(compared >= 14, "only {compared} exchanges compared");
}

#[test]
fn exists_response_matches_fixture_bytes() {
    let Some(ex) = exchanges() else { return };
    let (_, req, resp) = ex
        .iter()
        .find(|(t, _, _)| t.contains("get_assets_exist"))
        .unwrap();
    let srv = TestServer::start(|_| {});
    // The fixture's first two ids existed there; make them exist here.
    for id in [
        "89556747-24cb-43ed-920b-47caed15465f",
        "d00dfeed-0000-4000-8000-000000000001",
    ] {
        let r = common::req(
            srv.addr,
            "POST",
            "/assets/",
            &[],
            &common::asset_xml(id, 0, "", b"x"),
        );
        assert_eq!(r.status, 200);
    }
    let r = common::req(
        srv.addr,
        "POST",
        "/get_assets_exist",
        &[],
        req.body.as_ref().unwrap(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(&r.body, resp.body.as_ref().unwrap());
}

#[test]
fn xml_round_trips_fixture_asset_bases() {
    let Some(ex) = exchanges() else { return };
    let mut n = 0;
    for (title, _, resp) in &ex {
        let Some(body) = &resp.body else { continue };
        if !body.windows(10).any(|w| w == b"<AssetBase") {
            continue;
        }
        let a = opensim_assets::xml::parse_asset_base(body).unwrap();
        let mut out = Vec::new();
        opensim_assets::xml::write_asset_base(&mut out, &a.meta(), &a.data);
        assert_eq!(&out, body, "{title}");
        n += 1;
    }
    assert!(n >= 2);
    // The compact body OpenSim's connector posts parses to the same asset as its indented echo.
    let dir = opensim_testkit::fixture_subdir("robust-asset-service").unwrap();
    if let Ok(post) = std::fs::read(dir.join("post-body-as-opensim.xml")) {
        let a = opensim_assets::xml::parse_asset_base(&post).unwrap();
        assert_eq!(a.asset_type, 7);
    }
}
