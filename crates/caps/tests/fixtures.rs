//! The real OpenSimulator 0.9.2.2 seed and event-queue exchanges from the shared captures:
//! bodies parsed into typed events, and the recorded answers replayed to the client by a
//! test server, comparing the client's requests with the recorded ones.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Exchange, Reply, Server, exchange};
use opensim_caps::events::ParcelProperties;
use opensim_caps::{
    Capabilities, CapsClient, DEFAULT_CAPS, EndReason, Event, EventQueueConfig, HttpCategory,
    PollReply, Value, parse_poll_reply,
};
use uuid::{Uuid, uuid};

const AGENT: Uuid = uuid!("aaaaaaaa-bbbb-4ccc-8ddd-000000000001");

fn dir(session: &str) -> Option<PathBuf> {
    Some(opensim_testkit::fixture_subdir("opensim-0.9.2.2-http")?.join(session))
}

/// Parses a recorded answer the way the client does: by its (odd) content type.
fn answer_llsd(x: &Exchange) -> Value {
    let resp = x.response.as_ref().unwrap();
    opensim_llsd::from_content_type(resp.header("content-type").unwrap(), &resp.body)
        .or_else(|_| opensim_llsd::detect_and_parse(&resp.body))
        .unwrap()
}

fn poll_reply(x: &Exchange) -> PollReply {
    parse_poll_reply(answer_llsd(x)).unwrap()
}

fn parcels(r: &PollReply) -> Vec<&ParcelProperties> {
    r.events
        .iter()
        .map(|e| match e {
            Event::ParcelProperties(p) => &**p,
            other => panic!("not ParcelProperties: {other:?}"),
        })
        .collect()
}

#[test]
fn teleport_finish_from_the_old_region_queue() {
    let Some(d) = dir("teleport") else { return };
    let r = poll_reply(&exchange(&d, "0079_c2s_http.txt"));
    assert_eq!(r.id, Some(4_616_082));
    let [Event::TeleportFinish(tp)] = r.events.as_slice() else {
        panic!("{:?}", r.events)
    };
    assert_eq!(tp.agent_id, AGENT);
    assert_eq!(tp.location_id, 4);
    assert_eq!(tp.sim_addr.to_string(), "127.0.0.1:9001");
    assert_eq!(tp.region_handle, 1_101_710_651_287_552);
    assert_eq!((tp.sim_access, tp.teleport_flags), (13, 16));
    assert_eq!((tp.region_size_x, tp.region_size_y), (512, 512));
    // The client then asked exactly that seed (file 0218).
    let next_seed = exchange(&d, "0218_c2s_http.txt");
    assert!(
        tp.seed_capability.ends_with(next_seed.request.path()),
        "{} vs {}",
        tp.seed_capability,
        next_seed.request.path()
    );
}

#[test]
fn parcel_properties_of_both_regions() {
    let Some(login) = dir("login-caps") else {
        return;
    };
    let Some(teleport) = dir("teleport") else {
        return;
    };

    let r = poll_reply(&exchange(&login, "0072_c2s_http.txt"));
    assert_eq!(r.id, Some(18_632_324));
    let ps = parcels(&r);
    assert_eq!(ps.len(), 2);
    assert_eq!(ps.iter().map(|p| p.sequence_id).collect::<Vec<_>>(), [0, 1]);
    let p = ps[0];
    assert_eq!(p.local_id, 1);
    assert_eq!(p.name, "Your Parcel");
    assert_eq!(p.desc, "");
    assert_eq!(p.owner_id, AGENT);
    assert_eq!(p.group_id, Uuid::nil());
    assert_eq!(p.area, 65_536);
    assert_eq!(p.aabb_min, [0.0, 0.0, 4.0]);
    assert_eq!(p.aabb_max, [256.0, 256.0, 24.009]);
    // 256 m / 4 m cells = 64 x 64 bits, all set: one parcel covers the region.
    assert_eq!(p.bitmap.len(), 512);
    assert!(p.bitmap.iter().all(|b| *b == 0xff));
    // ParcelFlags came as binary (KAAgSw==), AuctionID as an empty <integer />.
    assert_eq!(p.parcel_flags, 0x2800_204b);
    assert_eq!(p.auction_id, 0);
    assert_eq!(
        (p.max_prims, p.total_prims, p.owner_prims),
        (15_000, 42, 42)
    );
    assert_eq!((p.sim_wide_max_prims, p.sim_wide_total_prims), (15_000, 42));
    assert_eq!(p.landing_type, 2);
    assert_eq!(p.parcel_prim_bonus, 1.0);
    assert!(p.see_avs && p.any_av_sounds && p.group_av_sounds);
    assert!(!p.is_group_owned && !p.media_auto_scale);
    assert_eq!(p.claim_date.unwrap().to_string(), "2026-11-25T09:40:46Z");
    let media = p.media.as_ref().unwrap();
    assert_eq!(media.media_type, "none/none");
    assert_eq!(p.extended_flags, Some(0));
    assert_eq!(p.region_deny_age_unverified, Some(false));
    assert_eq!(p.environment_version, Some(-1));
    assert_eq!(p.region_allow_environment_override, Some(false));
    assert_eq!(p.region_allow_access_override, Some(true));

    // The 512 m var-region after the teleport: three answers to two requests.
    let r = poll_reply(&exchange(&teleport, "0222_c2s_http.txt"));
    let ps = parcels(&r);
    assert_eq!(ps.len(), 3);
    for p in ps {
        assert_eq!((p.local_id, p.area), (1, 262_144));
        assert_eq!(p.aabb_max[..2], [512.0, 512.0]);
        // 128 x 128 cells.
        assert_eq!(p.bitmap.len(), 2048);
    }
}

#[test]
fn every_cap_opensim_granted_is_in_the_default_list() {
    let Some(d) = dir("login-caps") else { return };
    let x = exchange(&d, "0069_c2s_http.txt");
    let caps = Capabilities::from_llsd(&answer_llsd(&x)).unwrap();
    assert_eq!(caps.len(), 48);
    for name in caps.names() {
        assert!(
            DEFAULT_CAPS.contains(&name),
            "{name} missing from DEFAULT_CAPS"
        );
    }
    assert!(caps.event_queue_get().unwrap().contains("/CE/"));
    for url in [
        caps.get_texture(),
        caps.viewer_asset(),
        caps.get_mesh(),
        caps.get_mesh2(),
    ] {
        assert!(url.unwrap().starts_with("http://127.0.0.1:9000/"));
    }
    // Caps that share one URL in the capture.
    assert_eq!(
        caps.get("AgentPreferences"),
        caps.get("UpdateAgentLanguage")
    );
    // Everything our default list asks for is a name the capturing viewer asked for too,
    // or one OpenSimulator registers (caps.md).
    let asked = x.request_llsd();
    let asked: Vec<&str> = asked
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let extra: Vec<&&str> = DEFAULT_CAPS.iter().filter(|n| !asked.contains(n)).collect();
    assert_eq!(extra, [&"ObjectAdd", &"UploadObjectAsset"]);
}

trait RequestLlsd {
    fn request_llsd(&self) -> Value;
}

impl RequestLlsd for Exchange {
    fn request_llsd(&self) -> Value {
        opensim_llsd::from_xml(&self.request.body).unwrap()
    }
}

/// The recorded seed answer, the recorded first poll answer, the recorded idle 502 and a 404
/// replayed in order: the client's requests must match the recorded ones.
#[test]
fn replayed_session_matches_the_recorded_requests() {
    let Some(d) = dir("login-caps") else { return };
    let seed = exchange(&d, "0069_c2s_http.txt");
    let first = exchange(&d, "0072_c2s_http.txt");
    let idle = exchange(&d, "0076_c2s_http.txt");
    let again = exchange(&d, "0186_c2s_http.txt");
    let features = exchange(&d, "0100_c2s_http.txt");
    assert_eq!(
        idle.response.as_ref().unwrap().start_line,
        "HTTP/1.1 502 BadGateway"
    );

    let replies = Arc::new(Mutex::new(vec![
        seed.response.clone().unwrap(),
        first.response.clone().unwrap(),
        idle.response.clone().unwrap(),
    ]));
    let features_reply = features.response.clone().unwrap();
    let r = Arc::clone(&replies);
    let server = Server::start(move |req, _| {
        if req.method == "GET" {
            return features_reply.replay();
        }
        let mut queue = r.lock().unwrap();
        if queue.is_empty() {
            Reply::status(404)
        } else {
            queue.remove(0).replay()
        }
    });

    let client = CapsClient::new().unwrap();
    let caps =
        smol::block_on(client.request_capabilities(&server.url(seed.request.path()), DEFAULT_CAPS))
            .unwrap();
    assert_eq!(caps.len(), 48);

    let eq_path = first.request.path();
    let cfg = EventQueueConfig::default().with_poll_timeout(Duration::from_secs(20));
    let mut q = client.event_queue_with(&server.url(eq_path), cfg).unwrap();
    let (got, end) = smol::block_on(async {
        let mut got = Vec::new();
        loop {
            match q.next().await {
                Ok(e) => got.push(e),
                Err(end) => return (got, end),
            }
        }
    });
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| e.name() == "ParcelProperties"));
    assert!(matches!(end, EndReason::RegionGone));

    // SimulatorFeatures is answered as text/html too.
    let f =
        smol::block_on(client.get_llsd(&server.url(features.request.path()), HttpCategory::Other))
            .unwrap();
    assert_eq!(f["MeshRezEnabled"], Value::Boolean(true));
    assert_eq!(f["MaxAgentAttachments"], Value::Integer(38));
    assert!(f["OpenSimExtras"].get("GridURL").is_some());

    let seen = server.requests();
    // The seed, three polls like the recording's (0072, 0076, 0186; the third answered 404
    // here), and the GET.
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4].method, "GET");
    let recorded = [&seed, &first, &idle, &again];
    for (ours, rec) in seen.iter().zip(recorded) {
        assert_eq!(
            ours.method,
            rec.request.start_line.split(' ').next().unwrap()
        );
        assert_eq!(ours.path, rec.request.path());
        for h in ["content-type", "accept"] {
            assert_eq!(Some(ours.headers[h].as_str()), rec.request.header(h), "{h}");
        }
    }
    // The polls carry what the recorded client sent: ack undef, then the recorded id.
    for (ours, rec) in seen[1..4].iter().zip([&first, &idle, &again]) {
        assert_eq!(ours.llsd(), rec.request_llsd());
    }
    // Our seed request asks for our list; the recorded one asked for the viewer's 111.
    assert_eq!(seed.request_llsd().len(), 111);
    assert_eq!(seen[0].llsd().len(), DEFAULT_CAPS.len());
}
