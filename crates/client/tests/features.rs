//! Instant messages, UDP textures, object changes, teleports and a lossy link, against the
//! loopback simulator started by each test on 127.0.0.1 port 0.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use futures_lite::FutureExt;
use glam::Vec3;
use opensim_client::{
    Client, ClientConfig, ClientError, Session, SessionEvent, Subsystems, TextureError, TextureVia,
};
use opensim_login::{LoginParams, Password};
use opensim_sim::{Prim, PrimKind, RunningSim, Scene, Sim, SimConfig, User};

/// A guard against hangs only; nothing asserts on timing.
fn run<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(180)).await;
        panic!("test hung");
    }))
}

fn plywood() -> Option<Vec<u8>> {
    let dir = opensim_testkit::protocol_dir()?;
    let path = opensim_testkit::files_with_extension(&dir.join("testdata"), "j2c")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("plywood"))?;
    Some(std::fs::read(path).unwrap())
}

async fn start(mut config: SimConfig) -> RunningSim {
    config.users.push(User::new("Test", "User", "secret"));
    config.users.push(User::new("Other", "Person", "hunter2"));
    Sim::start(config).await.unwrap()
}

async fn login(client: &Client, sim: &RunningSim, first: &str, last: &str, pw: &str) -> Session {
    let params = LoginParams::builder(sim.login_uri(), first, last, Password::new(pw))
        .build()
        .unwrap();
    let s = client.login(&params).await.unwrap();
    s.wait_region_ready().await.unwrap();
    s
}

/// The first event `pick` accepts.
async fn next_matching<T>(s: &Session, mut pick: impl FnMut(&SessionEvent) -> Option<T>) -> T {
    loop {
        let e = s.next_event().await.expect("session ended early");
        if let Some(v) = pick(&e) {
            return v;
        }
    }
}

#[test]
fn instant_messages_between_two_sessions() {
    run(async {
        let sim = start(SimConfig::new(Scene::default_demo())).await;
        let mut config = ClientConfig::new();
        config.subsystems = Subsystems::NONE;
        let client = Client::new(config).unwrap();
        let a = login(&client, &sim, "Test", "User", "secret").await;
        let b = login(&client, &sim, "Other", "Person", "hunter2").await;
        a.instant_message(b.agent_id(), "psst, over here")
            .await
            .unwrap();
        let (from_id, from_name, text) = next_matching(&b, |e| match e {
            SessionEvent::InstantMessage {
                from_id,
                from_name,
                text,
            } => Some((*from_id, from_name.clone(), text.clone())),
            _ => None,
        })
        .await;
        assert_eq!(from_id, a.agent_id());
        assert_eq!(from_name, "Test User");
        assert_eq!(text, "psst, over here");
        b.instant_message(a.agent_id(), "héllo ✓").await.unwrap();
        let text = next_matching(&a, |e| match e {
            SessionEvent::InstantMessage { text, .. } => Some(text.clone()),
            _ => None,
        })
        .await;
        assert_eq!(text, "héllo ✓");
        a.logout().await.unwrap();
        b.logout().await.unwrap();
        sim.shutdown().await;
    });
}

#[test]
fn udp_textures_whole_partial_and_missing() {
    let Some(bytes) = plywood() else {
        eprintln!("skipping: shared test data absent");
        return;
    };
    run(async {
        let mut scene = Scene::flat("Flat", opensim_regions::terrain::RegionSize::LEGACY);
        scene
            .textures
            .insert(opensim_sim::PLYWOOD, bytes.clone().into());
        let sim = start(SimConfig::new(scene)).await;
        let client = Client::new(ClientConfig::new()).unwrap();
        let s = login(&client, &sim, "Test", "User", "secret").await;
        let direct = opensim_textures::decode_rgba8(&bytes, 0).unwrap();
        let t = s
            .texture(opensim_sim::PLYWOOD, 0, TextureVia::Udp)
            .await
            .unwrap();
        assert_eq!(t.via, TextureVia::Udp);
        assert_eq!(&t.j2k[..], &bytes[..]);
        assert_eq!((t.width, t.height), (direct.width, direct.height));
        assert_eq!(t.rgba, direct.pixels);
        // Discard 2: only a prefix is needed, and it decodes like the whole file would.
        let small = s
            .texture(opensim_sim::PLYWOOD, 2, TextureVia::Udp)
            .await
            .unwrap();
        let want = opensim_textures::decode_rgba8(&bytes, 2).unwrap();
        assert_eq!((small.width, small.height), (want.width, want.height));
        assert_eq!(small.rgba, want.pixels);
        assert!(small.j2k.len() <= bytes.len());
        let err = s
            .texture(uuid::Uuid::from_u128(77), 0, TextureVia::Udp)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Texture(TextureError::NotFound(_))),
            "{err:?}"
        );
        s.logout().await.unwrap();
        sim.shutdown().await;
    });
}

#[test]
fn objects_added_moved_and_removed() {
    run(async {
        let sim = start(SimConfig::new(Scene::default_demo())).await;
        let moving: Vec<u32> = sim.scene().motions.keys().copied().collect();
        assert!(!moving.is_empty());
        let client = Client::new(ClientConfig::new()).unwrap();
        let s = login(&client, &sim, "Test", "User", "secret").await;
        // Terse updates of the moving prims.
        let id = next_matching(&s, |e| match e {
            SessionEvent::ObjectUpdated { local_id } if moving.contains(local_id) => {
                Some(*local_id)
            }
            _ => None,
        })
        .await;
        assert!(s.with_scene(|sc| sc.get(id).is_some()).unwrap());

        let mut prim = Prim::new(900, PrimKind::Sphere, Vec3::new(50.0, 60.0, 40.0));
        prim.scale = Vec3::splat(3.0);
        assert!(sim.add_prim(prim.clone()).await);
        next_matching(&s, |e| {
            matches!(e, SessionEvent::ObjectAdded { local_id: 900 }).then_some(())
        })
        .await;
        s.with_scene(|sc| {
            let o = sc.get(900).unwrap();
            assert_eq!(o.full_id, prim.id);
            assert!((o.motion.position - prim.position).length() < 1e-3);
            assert!((o.scale - prim.scale).length() < 1e-3);
        })
        .unwrap();
        assert!(sim.remove_prim(900).await);
        next_matching(&s, |e| {
            matches!(e, SessionEvent::ObjectRemoved { local_id: 900 }).then_some(())
        })
        .await;
        assert!(s.with_scene(|sc| sc.get(900).is_none()).unwrap());
        s.logout().await.unwrap();
        sim.shutdown().await;
    });
}

#[test]
fn teleport_between_regions_and_within_one() {
    run(async {
        let sim = start(SimConfig::with_regions(Scene::demo_row(2))).await;
        let regions = sim.regions();
        let client = Client::new(ClientConfig::new()).unwrap();
        let s = login(&client, &sim, "Test", "User", "secret").await;
        let here = s.region().unwrap();
        assert_eq!(here.name, regions[0].name);

        // Within the region: TeleportLocal.
        let same = s
            .teleport_to(&here.name, Vec3::new(60.0, 70.0, 40.0))
            .await
            .unwrap();
        assert_eq!(same.handle, here.handle);
        assert!(s.neighbours().iter().any(|n| n.name == regions[1].name));

        // To the neighbour, by name.
        let dest = s
            .teleport_to(&regions[1].name, Vec3::new(128.0, 128.0, 40.0))
            .await
            .unwrap();
        assert_eq!(dest.name, regions[1].name);
        assert_eq!(dest.handle, regions[1].handle);
        assert_eq!(dest.sim_addr, regions[1].udp_addr);
        assert_eq!(s.region().unwrap().name, regions[1].name);
        assert_eq!(sim.agent_region(s.agent_id()), Some(1));
        // The new region's world is there (received while it was a neighbour, or after).
        let mut saw_finished = false;
        while s.terrain_progress().0 < s.terrain_progress().1
            || s.with_scene(|sc| sc.len()).unwrap() < sim.scene_of(1).unwrap().prims.len()
        {
            let e = s.next_event().await.unwrap();
            saw_finished |=
                matches!(&e, SessionEvent::TeleportFinished(r) if r.name == regions[1].name);
        }
        while let Some(e) = s.try_next_event() {
            saw_finished |=
                matches!(&e, SessionEvent::TeleportFinished(r) if r.name == regions[1].name);
        }
        assert!(saw_finished);

        // Nowhere: a clear failure, and the agent stays.
        let err = s
            .teleport_to_handle(42 << 40, Vec3::new(1.0, 1.0, 1.0))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::TeleportFailed(_)), "{err:?}");
        assert_eq!(s.region().unwrap().name, regions[1].name);
        s.logout().await.unwrap();
        assert!(sim.agents().is_empty());
        sim.shutdown().await;
    });
}

#[test]
fn lossy_link_still_delivers_everything() {
    run(async {
        let mut config = SimConfig::new(Scene::default_demo());
        config.impairment = Some(opensim_circuit::Impairment::new(0.2, 7).with_duplicate(0.05));
        let sim = start(config).await;
        let want = sim.scene().prims.len();
        let client = Client::new(ClientConfig::new()).unwrap();
        let s = login(&client, &sim, "Test", "User", "secret").await;
        while s.terrain_progress().0 < s.terrain_progress().1
            || s.with_scene(|sc| sc.len()).unwrap() < want
        {
            s.next_event().await.unwrap();
        }
        // 5 % of the simulator's datagrams were sent twice: the circuit dropped the copies.
        assert!(s.stats().duplicates > 0);
        s.logout().await.ok();
        sim.shutdown().await;
    });
}

#[test]
fn move_to_walks_the_avatar_and_the_others_see_it() {
    run(async {
        let sim = start(SimConfig::new(Scene::default_demo())).await;
        let client = Client::new(ClientConfig::new()).unwrap();
        let walker = login(&client, &sim, "Test", "User", "secret").await;
        let watcher = login(&client, &sim, "Other", "Person", "hunter2").await;
        let me = walker.agent_id();

        // Each sees the walker's avatar: an object of pcode 47 with the agent's id and name.
        let avatar_of = |s: &Session| s.with_scene(|sc| sc.local_id(&me)).flatten();
        until(&walker, |s| avatar_of(s).is_some()).await;
        until(&watcher, |s| avatar_of(s).is_some()).await;
        let local_id = avatar_of(&watcher).unwrap();
        watcher
            .with_scene(|sc| {
                let o = sc.get(local_id).unwrap();
                assert_eq!(o.pcode, 47);
                assert_eq!(o.name_value("FirstName"), Some("Test"));
                assert_eq!(o.name_value("LastName"), Some("User"));
            })
            .unwrap();

        let start_at = walker.position();
        let target = start_at + Vec3::new(9.0, -6.0, 0.0);
        walker.move_to(target).await.unwrap();
        let near = |p: Vec3| (p - target).truncate().length() < 1.0;
        // The walk takes several ticks: the position passes through points between the two.
        let mut steps = Vec::new();
        while !near(walker.position()) {
            let e = walker.next_event().await.expect("session ended early");
            if matches!(e, SessionEvent::ObjectUpdated { local_id } if Some(local_id) == avatar_of(&walker))
            {
                steps.push(walker.position());
            }
        }
        let between = steps
            .iter()
            .filter(|p| {
                let done = (**p - start_at).truncate().length();
                done > 1.0 && !near(**p)
            })
            .count();
        assert!(between >= 2, "no gradual walk: {steps:?}");
        // The simulator keeps the avatar on the ground.
        assert!(walker.position().z > 0.0);

        // The other agent sees it arrive too.
        let seen_at = |s: &Session| {
            s.with_scene(|sc| sc.region_transform(local_id).map(|(p, _)| p))
                .flatten()
        };
        until(&watcher, |s| seen_at(s).is_some_and(near)).await;

        // Leaving removes it from the other's view.
        walker.logout().await.unwrap();
        next_matching(&watcher, |e| {
            matches!(e, SessionEvent::ObjectRemoved { local_id: l } if *l == local_id).then_some(())
        })
        .await;
        watcher.logout().await.unwrap();
        sim.shutdown().await;
    });
}

/// Reads events until `done` holds for the session.
async fn until(s: &Session, mut done: impl FnMut(&Session) -> bool) {
    while !done(s) {
        s.next_event().await.expect("session ended early");
    }
}

#[test]
fn a_teleport_into_a_full_region_fails_with_opensims_reason() {
    run(async {
        let mut config = SimConfig::with_regions(Scene::demo_row(2));
        config.agent_limit = Some(1);
        let sim = start(config).await;
        let regions = sim.regions();
        let client = Client::new(ClientConfig::new()).unwrap();
        let a = login(&client, &sim, "Test", "User", "secret").await;
        let there = Vec3::new(128.0, 128.0, 40.0);
        a.teleport_to(&regions[1].name, there).await.unwrap();
        // The login region is free again; the neighbour is full.
        let b = login(&client, &sim, "Other", "Person", "hunter2").await;
        let err = b.teleport_to(&regions[1].name, there).await.unwrap_err();
        match &err {
            ClientError::TeleportFailed(reason) => assert!(reason.contains("The region is full")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(b.region().unwrap().name, regions[0].name);
        a.logout().await.unwrap();
        b.logout().await.unwrap();
        sim.shutdown().await;
    });
}
