//! End to end over real loopback sockets, with our own client crates against the simulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use common::Viewer;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use opensim_caps::{CapsClient, EndReason, Event as EqEvent};
use opensim_circuit::{Endpoint, EndpointConfig, Event, Reliability};
use opensim_login::{LoginClient, LoginError, LoginParams, LoginResponse, Password};
use opensim_messages::{Message, UseCircuitCode, use_circuit_code};
use opensim_regions::terrain::{Heightmap, PATCH_SIZE};
use opensim_sim::{RunningSim, Scene, Sim, SimConfig, User};

/// A guard against hangs only; nothing asserts on timing.
fn run<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(120)).await;
        panic!("test hung");
    }))
}

async fn start(scene: Scene) -> RunningSim {
    let mut config = SimConfig::new(scene);
    config.users.push(User::new("Test", "User", "secret"));
    config.users.push(User::new("Other", "Person", "hunter2"));
    Sim::start(config).await.unwrap()
}

async fn login(
    sim: &RunningSim,
    first: &str,
    last: &str,
    pw: &str,
) -> Result<LoginResponse, LoginError> {
    let params = LoginParams::builder(sim.login_uri(), first, last, Password::new(pw))
        .build()
        .unwrap();
    LoginClient::new().unwrap().login(&params).await
}

/// The terrain came back within the codec's bound: 128 prequantisation steps of each patch's
/// range (see the regions crate's round-trip tests).
fn assert_terrain_close(got: &Heightmap, want: &Heightmap) {
    let size = want.region();
    for py in 0..size.patches_y() {
        for px in 0..size.patches_x() {
            let src = want.patch_heights(px, py).unwrap();
            let dec = got.patch_heights(px, py).unwrap();
            let (min, max) = src
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &h| (a.min(h), b.max(h)));
            let step = (max - min + 1.0).floor() / 1024.0;
            let bound = 128.0 * step + 0.01;
            for (a, b) in dec.iter().zip(src.iter()) {
                assert!(
                    (a - b).abs() <= bound,
                    "patch {px},{py}: {a} vs {b} (bound {bound})"
                );
            }
        }
    }
    assert_eq!(PATCH_SIZE, 16);
}

#[test]
fn login_caps_terrain_prims_chat_logout() {
    run(async {
        let sim = start(Scene::default_demo()).await;
        let scene = sim.scene().clone();
        assert!(scene.prims.len() >= 24);

        let login = login(&sim, "Test", "User", "secret").await.unwrap();
        assert_eq!(login.sim_addr, sim.udp_addr());
        assert_eq!(
            login.sim_addr.port(),
            sim.login_uri()
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap()
        );
        assert_eq!(
            (login.region_x, login.region_y),
            (scene.grid.0 * 256, scene.grid.1 * 256)
        );
        assert_eq!(login.region_size_x, 256);
        assert!(login.seed_capability.contains("/CAPS/"));

        // Seed caps and the event queue.
        let caps_client = CapsClient::new().unwrap();
        let caps = caps_client
            .request_capabilities(
                &login.seed_capability,
                &["EventQueueGet", "GetTexture", "ViewerAsset", "Bogus"],
            )
            .await
            .unwrap();
        assert!(caps.get_texture().is_some());
        assert!(caps.viewer_asset().is_some());
        let eq_url = caps.event_queue_get().unwrap().to_owned();
        assert!(caps.get("Bogus").is_none());
        let mut queue = caps_client.event_queue(&eq_url).unwrap();
        let mut body = opensim_llsd::Map::new();
        body.insert("Hello", opensim_llsd::Value::Integer(7));
        assert!(sim.push_event(login.agent_id, "TestEvent", opensim_llsd::Value::Map(body)));
        match queue.next().await.unwrap() {
            EqEvent::Other { message, body } => {
                assert_eq!(message, "TestEvent");
                assert_eq!(body.get("Hello").and_then(|v| v.as_i32()), Some(7));
            }
            other => panic!("unexpected event {other:?}"),
        }

        // The circuit: handshake, movement, terrain, prims, stats.
        let mut v = Viewer::connect(&sim, login.clone()).await;
        let prims = scene.prims.len();
        v.until(|v| v.in_world(prims)).await;
        assert_eq!(v.handshake_name.as_deref(), Some(scene.name.as_str()));
        // The order of the real session: handshake, movement complete, then (after our reply)
        // terrain and objects, stats last.
        let first = |n: &str| v.order.iter().position(|m| *m == n).unwrap();
        let last = |n: &str| v.order.iter().rposition(|m| *m == n).unwrap();
        assert_eq!(first("RegionHandshake"), 0);
        // Later messages travel in different throttle categories, so their order on the wire
        // is the circuit's choice; all of them must have arrived.
        for n in [
            "AgentMovementComplete",
            "SimulatorViewerTimeMessage",
            "LayerData",
            "ObjectUpdate",
            "SimStats",
        ] {
            assert!(last(n) > 0, "{n}");
        }
        assert_terrain_close(&v.terrain, &scene.terrain);
        for p in &scene.prims {
            let o = v.scene.get(p.local_id).unwrap();
            assert_eq!(o.full_id, p.id);
            assert!((o.motion.position - p.position).length() < 1e-3);
            assert!((o.scale - p.scale).length() < 1e-3);
        }

        // A second agent: both hear each other's chat, the speaker included.
        let login2 = self::login(&sim, "Other", "Person", "hunter2")
            .await
            .unwrap();
        let mut w = Viewer::connect(&sim, login2).await;
        w.until(|w| w.in_world(prims)).await;
        v.say("hello region").await;
        v.until(|v| !v.chat.is_empty()).await;
        w.until(|w| !w.chat.is_empty()).await;
        assert_eq!(
            v.chat[0],
            ("Test User".to_owned(), "hello region".to_owned())
        );
        assert_eq!(w.chat[0], v.chat[0]);

        // Logout: LogoutReply, then the event queue is gone (404).
        v.logout().await;
        assert!(matches!(
            queue.next().await.unwrap_err(),
            EndReason::RegionGone
        ));
        assert_eq!(sim.agents(), vec![w.login.agent_id]);
        w.logout().await;
        sim.shutdown().await;
    });
}

#[test]
fn wrong_password_is_refused_like_opensim() {
    run(async {
        let sim = start(Scene::default_demo()).await;
        let err = login(&sim, "Test", "User", "wrong").await.unwrap_err();
        match &err {
            LoginError::InvalidCredentials(r) => {
                assert_eq!(r.reason, "key");
                assert!(r.message.starts_with("Could not authenticate your avatar"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = login(&sim, "Nobody", "Here", "secret").await.unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials(_)));
        assert!(sim.agents().is_empty());
        sim.shutdown().await;
    });
}

async fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut s = async_net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn idle_event_queue_poll_gets_502_and_garbage_is_refused() {
    run(async {
        let mut scene = Scene::flat("Flat", opensim_regions::terrain::RegionSize::LEGACY);
        let texture: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        scene.textures.insert(opensim_sim::PLYWOOD, texture.into());
        let mut config = SimConfig::new(scene);
        config.users.push(User::new("Test", "User", "secret"));
        config.eq_idle_timeout = Duration::from_millis(200);
        let sim = Sim::start(config).await.unwrap();
        let login = login(&sim, "Test", "User", "secret").await.unwrap();
        let caps = CapsClient::new()
            .unwrap()
            .request_capabilities(&login.seed_capability, &["EventQueueGet", "GetTexture"])
            .await
            .unwrap();
        // Textures: whole, a range, a range past the end (whole, as OpenSim), a missing id.
        let tex = caps.get_texture().unwrap();
        let tex_path = &tex[tex.rfind('/').unwrap()..];
        let get = |extra: &str, id: uuid::Uuid| {
            format!("GET {tex_path}?texture_id={id} HTTP/1.1\r\nConnection: close\r\n{extra}\r\n")
        };
        let resp = raw_http(sim.udp_addr(), &get("", opensim_sim::PLYWOOD)).await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{tex} {resp}");
        assert!(resp.contains("Content-Length: 1000\r\n"));
        let resp = raw_http(
            sim.udp_addr(),
            &get("Range: bytes=0-599\r\n", opensim_sim::PLYWOOD),
        )
        .await;
        assert!(
            resp.starts_with("HTTP/1.1 206 PartialContent\r\n"),
            "{resp}"
        );
        assert!(resp.contains("Content-Range: bytes 0-599/1000\r\n"));
        let resp = raw_http(
            sim.udp_addr(),
            &get("Range: bytes=990-2000\r\n", opensim_sim::PLYWOOD),
        )
        .await;
        assert!(
            resp.contains("Content-Range: bytes 990-999/1000\r\n"),
            "{resp}"
        );
        let resp = raw_http(
            sim.udp_addr(),
            &get("Range: bytes=5000-6000\r\n", opensim_sim::PLYWOOD),
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let resp = raw_http(sim.udp_addr(), &get("", uuid::Uuid::from_u128(5))).await;
        assert!(resp.starts_with("HTTP/1.1 404 NotFound\r\n"), "{resp}");

        let url = caps.event_queue_get().unwrap();
        let path = &url[url.find("/CE/").unwrap()..];
        let body =
            "<llsd><map><key>ack</key><undef /><key>done</key><boolean>0</boolean></map></llsd>";
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let resp = raw_http(sim.udp_addr(), &req).await;
        assert!(resp.starts_with("HTTP/1.1 502 BadGateway\r\n"), "{resp}");
        // Malformed and oversized requests get an error, not a hang or a crash.
        let resp = raw_http(sim.udp_addr(), "NONSENSE\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        let resp = raw_http(
            sim.udp_addr(),
            "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
        let resp = raw_http(sim.udp_addr(), "GET /nothing HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 404 NotFound"), "{resp}");
        sim.shutdown().await;
    });
}

#[test]
fn garbage_and_wrong_circuit_codes_do_not_disturb_a_client() {
    run(async {
        let sim = start(Scene::flat(
            "Flat",
            opensim_regions::terrain::RegionSize::LEGACY,
        ))
        .await;
        let login = login(&sim, "Test", "User", "secret").await.unwrap();
        let mut v = Viewer::connect(&sim, login.clone()).await;
        v.until(|v| v.in_world(0)).await;

        // Garbage datagrams from a plain socket.
        let junk = async_net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for n in 0..64u8 {
            let len = usize::from(n) * 7 % 300;
            let data: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(n).wrapping_add(0xA5))
                .collect();
            junk.send_to(&data, sim.udp_addr()).await.unwrap();
        }
        // A UseCircuitCode with a wrong code, and one with the right code but a wrong session.
        for (code, session) in [
            (login.circuit_code ^ 1, login.session_id),
            (login.circuit_code, uuid::Uuid::from_u128(99)),
        ] {
            let other =
                Endpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::client()).unwrap();
            let c = other.connect(sim.udp_addr()).unwrap();
            c.send(
                UseCircuitCode {
                    circuit_code: use_circuit_code::CircuitCode {
                        code,
                        session_id: session,
                        id: login.agent_id,
                    },
                },
                Reliability::Reliable,
            )
            .await
            .unwrap();
            // The simulator never answers it with a handshake: the circuit is dropped.
            loop {
                match c.recv().await {
                    Some(Event::Message(Message::RegionHandshake(_))) => {
                        panic!("handshake on a bad circuit")
                    }
                    Some(Event::Closed(_)) | None => break,
                    Some(_) => {}
                }
            }
            other.shutdown().await;
        }

        // The real client still works.
        v.say("still here").await;
        v.until(|v| !v.chat.is_empty()).await;
        assert_eq!(v.chat[0].1, "still here");
        assert_eq!(sim.agents(), vec![login.agent_id]);
        v.logout().await;
        sim.shutdown().await;
    });
}

#[test]
fn var_region_sends_extended_land_and_its_size() {
    run(async {
        use opensim_regions::terrain::{LAYER_LAND_EXTENDED, RegionSize};
        let size = RegionSize::new(512, 512).unwrap();
        let mut scene = Scene::flat("Var", size);
        scene.terrain = Heightmap::from_fn(size, |x, y| {
            25.0 + 8.0 * (x as f32 / 40.0).sin() + 5.0 * (y as f32 / 23.0).cos()
        });
        for (i, kind) in opensim_sim::PrimKind::ALL.iter().enumerate() {
            let x = 300.0 + i as f32 * 20.0;
            scene.prims.push(opensim_sim::Prim::new(
                i as u32 + 1,
                *kind,
                glam::Vec3::new(x, 400.0, 40.0),
            ));
        }
        let want = scene.terrain.clone();
        let prims = scene.prims.len();
        let sim = start(scene).await;
        let login = login(&sim, "Test", "User", "secret").await.unwrap();
        assert_eq!((login.region_size_x, login.region_size_y), (512, 512));
        let mut v = Viewer::connect(&sim, login).await;
        let mut extended = false;
        while !v.in_world(prims) {
            if let Some(Some(Message::LayerData(l))) = v.step().await {
                extended |= l.layer_id.type_ == LAYER_LAND_EXTENDED;
            }
        }
        assert!(extended);
        assert_terrain_close(&v.terrain, &want);
        let far = v.scene.get(prims as u32).unwrap();
        assert!(far.motion.position.x > 256.0);
        v.logout().await;
        sim.shutdown().await;
    });
}

#[test]
fn a_login_without_a_circuit_expires() {
    run(async {
        let mut config = SimConfig::new(Scene::flat(
            "Flat",
            opensim_regions::terrain::RegionSize::LEGACY,
        ));
        config.users.push(User::new("Test", "User", "secret"));
        // Long enough for the seed request below to come first.
        config.login_expiry = Duration::from_secs(2);
        let sim = Sim::start(config).await.unwrap();
        let login = login(&sim, "Test", "User", "secret").await.unwrap();
        let caps = CapsClient::new()
            .unwrap()
            .request_capabilities(&login.seed_capability, &["EventQueueGet"])
            .await
            .unwrap();
        // The held poll ends with 404 when the unused login is dropped (not the 58 s 502).
        let mut queue = CapsClient::new()
            .unwrap()
            .event_queue(caps.event_queue_get().unwrap())
            .unwrap();
        assert!(matches!(
            queue.next().await.unwrap_err(),
            EndReason::RegionGone
        ));
        assert!(sim.agents().is_empty());
        sim.shutdown().await;
    });
}
