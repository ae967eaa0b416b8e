//! Issue 7's end-to-end list through the client, against the loopback simulator started by
//! each test on 127.0.0.1 port 0: every prim's shape and textures, terse updates of moving
//! prims applied on their motion paths, and a teleport to the neighbour region and back.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use futures_lite::FutureExt;
use glam::{Quat, Vec3};
use opensim_client::{Client, ClientConfig, Session, SessionEvent};
use opensim_login::{LoginParams, Password};
use opensim_messages::Message;
use opensim_regions::objects;
use opensim_regions::scene::{DecodeOptions, Scene as ClientScene};
use opensim_regions::terrain::Heightmap;
use opensim_sim::{PrimMotion, RunningSim, Scene, Sim, SimConfig, User};

/// A guard against hangs only; nothing asserts on timing.
fn run<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(180)).await;
        panic!("test hung");
    }))
}

async fn start(mut config: SimConfig) -> RunningSim {
    config.users.push(User::new("Test", "User", "secret"));
    Sim::start(config).await.unwrap()
}

async fn login(sim: &RunningSim) -> Session {
    let client = Client::new(ClientConfig::new()).unwrap();
    let params = LoginParams::builder(sim.login_uri(), "Test", "User", Password::new("secret"))
        .build()
        .unwrap();
    let s = client.login(&params).await.unwrap();
    s.wait_region_ready().await.unwrap();
    s
}

/// Reads events until `done` holds for the session.
async fn until(s: &Session, mut done: impl FnMut(&Session) -> bool) {
    while !done(s) {
        s.next_event().await.expect("session ended early");
    }
}

/// The current region's terrain and all of `prims` objects have arrived.
fn world_complete(s: &Session, prims: usize) -> bool {
    let (have, total) = s.terrain_progress();
    have == total && s.with_scene(|sc| sc.len()).unwrap() >= prims
}

/// The terrain came back within the patch codec's bound (128 prequantisation steps).
fn assert_terrain_close(got: &Heightmap, want: &Heightmap) {
    let size = want.region();
    assert_eq!(got.region(), size);
    for py in 0..size.patches_y() {
        for px in 0..size.patches_x() {
            let src = want.patch_heights(px, py).unwrap();
            let dec = got.patch_heights(px, py).unwrap();
            let (min, max) = src
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &h| (a.min(h), b.max(h)));
            let bound = 128.0 * (max - min + 1.0).floor() / 1024.0 + 0.01;
            for (a, b) in dec.iter().zip(src.iter()) {
                assert!((a - b).abs() <= bound, "patch {px},{py}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn every_prim_arrives_with_its_shape_and_textures() {
    run(async {
        let sim = start(SimConfig::new(Scene::default_demo())).await;
        let want = sim.scene().clone();
        let handle = sim.regions()[0].handle;
        // The expectation: what the simulator's encoder puts on the wire, decoded by a scene
        // of our own (so any loss in the wire form is part of the expectation, not an error).
        let updates: Vec<_> = want
            .prims
            .iter()
            .map(|p| p.to_full_update().unwrap())
            .collect();
        let mut expected = ClientScene::new(DecodeOptions::FULL);
        let mut scratch = Vec::new();
        for chunk in updates.chunks(8) {
            let msg = objects::object_update(handle, 65535, chunk, 256.0).unwrap();
            expected.apply(&Message::from(msg), &mut scratch).unwrap();
        }

        let s = login(&sim).await;
        until(&s, |s| world_complete(s, want.prims.len())).await;
        s.with_scene(|sc| {
            for p in &want.prims {
                let got = sc.get(p.local_id).unwrap();
                let exp = expected.get(p.local_id).unwrap();
                assert_eq!(got.full_id, p.id);
                assert_eq!(got.pcode, objects::pcode::PRIMITIVE);
                // Shape parameters are sent in their wire form: they arrive exactly.
                assert_eq!(got.shape, exp.shape, "prim {}", p.local_id);
                assert_eq!(got.shape, Some(p.shape), "prim {}", p.local_id);
                assert_eq!(got.material, exp.material);
                assert!((got.scale - p.scale).length() < 1e-4);
                // The whole TextureEntry as encoded, and its default face as the scene says.
                let te = got.texture_entry.as_ref().unwrap();
                assert_eq!(Some(te), exp.texture_entry.as_ref(), "prim {}", p.local_id);
                assert_eq!(te.default.texture_id, p.texture);
                assert_eq!(te.default.color, p.color);
                if !want.motions.contains_key(&p.local_id) {
                    assert!((got.motion.position - p.position).length() < 1e-3);
                    assert!(got.motion.rotation.angle_between(p.rotation) < 1e-3);
                }
            }
            // The scene's textures are all worn, and each prim's is one the region serves.
            for p in &want.prims {
                assert!(want.textures.contains_key(&p.texture));
            }
        })
        .unwrap();
        s.logout().await.unwrap();
        sim.shutdown().await;
    });
}

#[test]
fn terse_updates_of_moving_prims_are_applied_on_their_paths() {
    run(async {
        let mut scene = Scene::default_demo();
        // Prim 2 (on the ring of radius 40 around the centre, not spinning) orbits the centre.
        let centre = Vec3::new(128.0, 128.0, 0.0);
        let orbiter = scene
            .prims
            .iter()
            .find(|p| p.local_id == 2)
            .unwrap()
            .clone();
        assert!(!scene.motions.contains_key(&2));
        scene
            .motions
            .insert(2, PrimMotion::Orbit { centre, rate: 0.5 });
        // The fastest spinner of the demo.
        let (&spin_id, _) = scene
            .motions
            .iter()
            .filter_map(|(id, m)| match m {
                PrimMotion::Spin { rate, .. } => Some((id, *rate)),
                PrimMotion::Orbit { .. } => None,
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let spinner = scene
            .prims
            .iter()
            .find(|p| p.local_id == spin_id)
            .unwrap()
            .clone();
        let radius = (orbiter.position - centre).truncate().length();
        assert!((radius - 40.0).abs() < 1e-3);

        let sim = start(SimConfig::new(scene)).await;
        let s = login(&sim).await;
        let (mut orbit_seen, mut spin_seen) = (0, 0);
        let (mut orbit_moved, mut spin_turned) = (0.0f32, 0.0f32);
        while orbit_seen < 6 || spin_seen < 6 {
            let id = match s.next_event().await.expect("session ended early") {
                SessionEvent::ObjectUpdated { local_id } => local_id,
                _ => continue,
            };
            let (pos, rot) = match s.with_scene(|sc| sc.get(id).map(|o| o.motion)).unwrap() {
                Some(m) => (m.position, m.rotation),
                None => continue,
            };
            if id == orbiter.local_id {
                orbit_seen += 1;
                // On the circle, at its height, facing along its path.
                let arm = pos - centre;
                assert!(
                    (arm.truncate().length() - radius).abs() < 0.01,
                    "orbit off its circle: {pos}"
                );
                assert_eq!(pos.z, orbiter.position.z);
                let turned = arm.y.atan2(arm.x)
                    - (orbiter.position.y - centre.y).atan2(orbiter.position.x - centre.x);
                let facing = (Quat::from_rotation_z(turned) * orbiter.rotation).normalize();
                assert!(rot.angle_between(facing) < 0.01, "{rot} vs {facing}");
                orbit_moved = orbit_moved.max((pos - orbiter.position).length());
            } else if id == spinner.local_id {
                spin_seen += 1;
                // In place, turned about the vertical axis only.
                assert!(
                    (pos - spinner.position).length() < 1e-3,
                    "spinner moved: {pos}"
                );
                let delta = (rot * spinner.rotation.inverse()).normalize();
                assert!(
                    delta.x.abs() < 0.01 && delta.y.abs() < 0.01,
                    "spin off its axis: {delta}"
                );
                spin_turned = spin_turned.max(rot.angle_between(spinner.rotation));
            }
        }
        // The updates were applied, not just announced: both left their scene pose.
        assert!(orbit_moved > 0.01, "orbiter never moved");
        assert!(spin_turned > 0.001, "spinner never turned");
        s.logout().await.unwrap();
        sim.shutdown().await;
    });
}

#[test]
fn teleport_to_the_neighbour_and_back() {
    run(async {
        let sim = start(SimConfig::with_regions(Scene::demo_row(2))).await;
        let regions = sim.regions();
        let s = login(&sim).await;
        assert_eq!(s.region().unwrap().name, regions[0].name);
        assert_eq!(sim.agent_region(s.agent_id()), Some(0));

        let there = s
            .teleport_to(&regions[1].name, Vec3::new(128.0, 128.0, 40.0))
            .await
            .unwrap();
        assert_eq!(there.handle, regions[1].handle);
        assert_eq!(s.region().unwrap().handle, regions[1].handle);
        assert_eq!(sim.agent_region(s.agent_id()), Some(1));
        let prims_1 = sim.scene_of(1).unwrap().prims.len();
        until(&s, |s| world_complete(s, prims_1)).await;

        // And back, by name.
        let back = s
            .teleport_to(&regions[0].name, Vec3::new(100.0, 90.0, 45.0))
            .await
            .unwrap();
        assert_eq!(back.name, regions[0].name);
        assert_eq!(back.handle, regions[0].handle);
        assert_eq!(back.sim_addr, regions[0].udp_addr);
        let main = s.region().unwrap();
        assert_eq!(main.name, regions[0].name);
        assert_eq!(main.handle, regions[0].handle);
        assert_eq!(sim.agent_region(s.agent_id()), Some(0));

        // Region 1's world is complete again, and region 2 is now a neighbour.
        let want = sim.scene_of(0).unwrap().clone();
        until(&s, |s| {
            world_complete(s, want.prims.len())
                && s.neighbours().iter().any(|n| n.handle == regions[1].handle)
        })
        .await;
        s.with_terrain(|t| assert_terrain_close(t, &want.terrain))
            .unwrap();
        s.with_scene(|sc| {
            for p in &want.prims {
                let o = sc.get(p.local_id).unwrap();
                assert_eq!(o.full_id, p.id);
                assert_eq!(o.shape, Some(p.shape));
            }
        })
        .unwrap();
        let neighbours = s.neighbours();
        assert!(
            neighbours.iter().all(|n| n.handle != regions[0].handle),
            "the main region is also listed as a neighbour: {neighbours:?}"
        );
        let n = neighbours
            .iter()
            .find(|n| n.handle == regions[1].handle)
            .unwrap();
        assert_eq!(n.name, regions[1].name);
        assert_eq!(n.sim_addr, regions[1].udp_addr);
        assert_eq!(sim.agent_children(s.agent_id()), vec![1]);
        s.logout().await.unwrap();
        assert!(sim.agents().is_empty());
        sim.shutdown().await;
    });
}
