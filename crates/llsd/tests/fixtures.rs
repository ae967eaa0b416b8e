//! Every LLSD body in the captured OpenSimulator 0.9.2.2 HTTP sessions parses (dispatched on
//! its real `Content-Type`), round-trips through all three formats, and holds what the
//! capture's README says it holds.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;

use opensim_llsd::fuzz_support::xml_representable;
use opensim_llsd::{Format, Value, from_content_type, parse, serialize};

/// One HTTP message of a capture file: its content type and body.
struct Message {
    content_type: String,
    body: Vec<u8>,
}

/// Splits a `NNNN_c2s_http.txt` file into its request and response (when present), using
/// `Content-Length` to cut each body exactly.
fn messages(file: &Path) -> Vec<Message> {
    let text = std::fs::read(file).unwrap();
    let mut out = Vec::new();
    for marker in [&b"=== REQUEST ===\n"[..], b"=== RESPONSE ===\n"] {
        let Some(at) = find(&text, marker) else {
            continue;
        };
        let section = &text[at + marker.len()..];
        let Some(head_end) = find(section, b"\n\n").or_else(|| find(section, b"\r\n\r\n")) else {
            continue;
        };
        let head = String::from_utf8_lossy(&section[..head_end]);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end
            + if section[head_end..].starts_with(b"\r\n\r\n") {
                4
            } else {
                2
            };
        let body = section[body_start..(body_start + len).min(section.len())].to_vec();
        out.push(Message {
            content_type: header("Content-Type").unwrap_or_default(),
            body,
        });
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn llsd_bodies(session: &str) -> Option<Vec<(String, Value)>> {
    let dir = opensim_testkit::fixture_subdir(&format!("opensim-0.9.2.2-http/{session}"))?;
    let mut out = Vec::new();
    for file in opensim_testkit::files_with_extension(&dir, "txt") {
        for m in messages(&file) {
            if find(&m.body, b"<llsd").is_none() {
                continue;
            }
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let v = from_content_type(&m.content_type, &m.body)
                .unwrap_or_else(|e| panic!("{name} ({}): {e}", m.content_type));
            for f in Format::ALL {
                let back = parse(f, &serialize(f, &v)).unwrap();
                assert_eq!(back, xml_representable(&v), "{name} via {f:?}");
            }
            out.push((name, v));
        }
    }
    Some(out)
}

#[test]
fn login_caps_session() {
    let Some(bodies) = llsd_bodies("login-caps") else {
        return;
    };
    assert!(bodies.len() >= 8, "only {} LLSD bodies", bodies.len());

    // The seed request: an array of 111 cap names; its answer: 48 of them, each a URL.
    let (_, request) = bodies
        .iter()
        .find(|(n, v)| n.starts_with("0069") && v.as_array().is_some())
        .unwrap();
    assert_eq!(request.len(), 111);
    assert!(
        request
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_str().is_some())
    );
    let (_, seed) = bodies
        .iter()
        .find(|(n, v)| n.starts_with("0069") && v.as_map().is_some())
        .unwrap();
    assert_eq!(seed.len(), 48);
    assert!(
        seed.as_map()
            .unwrap()
            .iter()
            .all(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("http://")))
    );
    assert!(seed["EventQueueGet"].as_str().unwrap().contains("/CE/"));

    // The first event-queue poll and its two ParcelProperties events.
    let (_, poll) = bodies
        .iter()
        .find(|(n, v)| n.starts_with("0072") && v.get("ack").is_some())
        .unwrap();
    assert!(poll["ack"].is_undef());
    assert_eq!(poll["done"].as_bool(), Some(false));
    let (_, reply) = bodies
        .iter()
        .find(|(n, v)| n.starts_with("0072") && v.get("events").is_some())
        .unwrap();
    assert_eq!(reply["id"].as_i32(), Some(18_632_324));
    let events = reply["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for event in events {
        assert_eq!(event["message"].as_str(), Some("ParcelProperties"));
        let parcel = &event["body"]["ParcelData"][0];
        assert_eq!(parcel["LocalID"].as_i32(), Some(1));
        assert_eq!(parcel["Area"].as_i32(), Some(65536));
        // `<integer />` and `<uuid />` are OpenSim's zeros.
        assert_eq!(parcel["AuctionID"].as_u32_lenient(), Some(0));
        assert_eq!(parcel["GroupID"].as_uuid(), Some(opensim_llsd::Uuid::nil()));
        assert_eq!(
            parcel["AABBMax"].as_vec3_lenient(),
            Some([256.0, 256.0, 24.009])
        );
        assert_eq!(parcel["Bitmap"].as_binary().unwrap().len(), 512);
        assert_eq!(parcel["ParcelFlags"].as_u32_lenient(), Some(0x2800_204b));
        assert!(parcel["ClaimDate"].as_date().is_some());
        assert_eq!(
            event["body"]["ParcelEnvironmentBlock"][0]["ParcelEnvironmentVersion"].as_i32(),
            Some(-1)
        );
    }

    // SimulatorFeatures.
    let (_, features) = bodies
        .iter()
        .find(|(_, v)| v.get("OpenSimExtras").is_some())
        .unwrap();
    assert_eq!(features["MaxAgentAttachments"].as_i32(), Some(38));
    assert!(features["OpenSimExtras"].as_map().is_some());
}

#[test]
fn teleport_session() {
    let Some(bodies) = llsd_bodies("teleport") else {
        return;
    };
    let finish = bodies
        .iter()
        .flat_map(|(_, v)| v["events"].as_array().unwrap_or_default())
        .find(|e| e["message"].as_str() == Some("TeleportFinish"))
        .expect("a TeleportFinish event");
    let info = &finish["body"]["Info"][0];
    assert_eq!(
        info["AgentID"].as_uuid().unwrap().to_string(),
        "aaaaaaaa-bbbb-4ccc-8ddd-000000000001"
    );
    assert_eq!(info["LocationID"].as_u32_lenient(), Some(4));
    assert_eq!(info["SimIP"].as_ipv4_lenient(), Some(Ipv4Addr::LOCALHOST));
    assert_eq!(info["SimPort"].as_port_lenient(), Some(9001));
    assert_eq!(
        info["RegionHandle"].as_u64_lenient(),
        Some(1_101_710_651_287_552)
    );
    assert_eq!(info["SimAccess"].as_i32(), Some(13));
    assert_eq!(info["TeleportFlags"].as_u32_lenient(), Some(16));
    assert_eq!(info["RegionSizeX"].as_u32_lenient(), Some(512));
    assert_eq!(info["RegionSizeY"].as_u32_lenient(), Some(512));
    assert!(info["SeedCapability"].as_str().unwrap().ends_with("0000/"));
}

#[test]
fn every_session_parses() {
    for session in ["login-caps", "teleport", "texture-http", "texture-udp"] {
        let Some(bodies) = llsd_bodies(session) else {
            return;
        };
        assert!(!bodies.is_empty(), "{session}: no LLSD bodies found");
    }
}
