//! Every object, handshake, stats and coarse-location datagram of the shared captures goes
//! through the typed layer, with values checked against what the captures' own decodes show.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use glam::Vec3;
use opensim_messages::Message;
use opensim_packet::Packet;
use opensim_regions::handshake::{RegionHandshake, reply_flags};
use opensim_regions::objects::{
    self, FullUpdate, MotionLayout, PLYWOOD, PrimType, TerseUpdate, TextureEntry, pcode,
};
use opensim_regions::scene::{CacheLookup, DecodeOptions, Scene, SceneEvent};
use opensim_regions::stats::{AgentsPresent, CoarseLocations, SimStats, StatId};
use uuid::Uuid;

const AGENT: Uuid = Uuid::from_u128(0xaaaaaaaa_bbbb_4ccc_8ddd_000000000001);
const MISSING_IMAGE: Uuid = Uuid::from_u128(0x5748decc_f629_461c_9a36_a35a221fe21f);

/// One captured datagram and the width of the region it came from.
struct Datagram {
    name: String,
    folder: &'static str,
    width: f32,
    packet: Packet,
}

/// Every datagram of the folders that hold object, handshake and stats traffic, in capture
/// order within each folder. `None` when the fixtures are absent.
fn datagrams() -> Option<Vec<Datagram>> {
    let folders: [(&str, &str); 7] = [
        ("peer-packets", "packet"),
        ("captured", "bin"),
        ("opensim-0.9.2.2-session", "bin"),
        ("opensim-0.9.2.2-http/login-caps", "bin"),
        ("opensim-0.9.2.2-http/teleport", "bin"),
        ("opensim-0.9.2.2-http/texture-http", "bin"),
        ("opensim-0.9.2.2-http/texture-udp", "bin"),
    ];
    let mut out = Vec::new();
    for (folder, ext) in folders {
        let dir = opensim_testkit::fixture_subdir(folder)?;
        let mut files: Vec<PathBuf> = opensim_testkit::files_with_extension(&dir, ext);
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains("_http") {
                // HTTP response bodies (textures), not datagrams.
                continue;
            }
            let packet = Packet::decode(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // The teleport capture moves to the 512 m Var Region at datagram 0110.
            let width = if folder.ends_with("teleport") && name.as_str() >= "0110" {
                512.0
            } else {
                256.0
            };
            out.push(Datagram {
                name,
                folder,
                width,
                packet,
            });
        }
    }
    Some(out)
}

fn in_region(p: Vec3, width: f32) -> bool {
    (0.0..=width).contains(&p.x) && (0.0..=width).contains(&p.y) && (-100.0..4096.0).contains(&p.z)
}

#[test]
fn region_handshakes_are_typed_and_round_trip() {
    let Some(all) = datagrams() else { return };
    let mut names = BTreeMap::new();
    for d in &all {
        let Message::RegionHandshake(m) = &d.packet.message else {
            continue;
        };
        let h = RegionHandshake::from(&**m);
        *names.entry(h.sim_name.clone()).or_insert(0) += 1;
        assert_eq!(h.water_height, 20.0, "{}", d.name);
        assert_eq!(h.sim_access, 13);
        assert_eq!(
            h.terrain_detail[0].to_string(),
            "b8d3965a-ad78-bf43-699b-bff8eca6c975"
        );
        assert_eq!(h.terrain_start_height, [10.0; 4]);
        assert_eq!(h.terrain_height_range, [60.0; 4]);
        assert_eq!((h.cpu_class_id, h.cpu_ratio), (9, 1));
        // Typed and back gives the very message.
        assert_eq!(&h.to_message().unwrap(), &**m, "{}", d.name);
        let reply = h.reply(AGENT, Uuid::nil(), reply_flags::SUPPORTS_SELF_APPEARANCE);
        assert_eq!(reply.region_info.flags, 4);
        assert_eq!(reply.agent_data.agent_id, AGENT);
        if h.sim_name == "Test Region" {
            assert_eq!(
                h.region_id.to_string(),
                "11111111-2222-3333-4444-555555555555"
            );
            assert_eq!(h.sim_owner, AGENT);
            assert!(h.is_estate_manager);
            assert_eq!(h.region_flags, 336625702);
            assert_eq!(h.region_protocols, Some(1 << 63));
        }
    }
    // 1 in the session, 1 in each of the four http captures, 1 more after the teleport, and
    // the older capture.
    assert_eq!(names.get("Test Region"), Some(&5));
    assert_eq!(names.get("Var Region"), Some(&1));
    assert_eq!(names.get("testland"), Some(&1));
}

#[test]
fn object_updates_decode_and_reencode_byte_for_byte() {
    let Some(all) = datagrams() else { return };
    let mut avatars = 0;
    for d in &all {
        let Message::ObjectUpdate(m) = &d.packet.message else {
            continue;
        };
        for b in &m.object_data {
            let u = FullUpdate::from_object_data(b, d.width).unwrap();
            assert_eq!(u.pcode, pcode::AVATAR, "{}", d.name);
            assert_eq!(u.full_id, AGENT);
            assert_eq!(
                MotionLayout::from_len(b.object_data.len()),
                Some(MotionLayout::Full76)
            );
            assert!(u.motion.collision_plane.is_some());
            assert!(
                in_region(u.motion.position, d.width),
                "{:?}",
                u.motion.position
            );
            assert!((u.motion.rotation.length() - 1.0).abs() < 1e-4);
            assert_eq!(u.scale, Vec3::new(0.45, 0.6, 1.9));
            let names: Vec<_> = u.name_values().map(|nv| (nv.name, nv.value)).collect();
            assert_eq!(
                names,
                [("FirstName", "Test"), ("LastName", "User"), ("Title", "")]
            );
            assert!(u.hover_text().is_none() && u.sound.is_none());
            assert_eq!(u.texture_entry().unwrap(), TextureEntry::default());
            assert_eq!(&u.to_object_data(d.width).unwrap(), b, "{}", d.name);
            avatars += 1;
        }
        // The message encoder reproduces the whole message.
        let typed: Vec<_> = objects::decode_object_update(m, d.width)
            .collect::<Result<_, _>>()
            .unwrap();
        let again = objects::object_update(
            m.region_data.region_handle,
            m.region_data.time_dilation,
            &typed,
            d.width,
        )
        .unwrap();
        assert_eq!(&again, &**m);
    }
    // One per login, one after the teleport.
    assert_eq!(avatars, 6);
}

/// Texture ids and colours as the captures' `udp_decoded.txt` bytes show them.
fn check_known_prim(u: &FullUpdate, te: &TextureEntry) {
    match u.local_id {
        541271828 => {
            assert_eq!(u.hover_text().unwrap().text, "Hello box");
            assert_eq!(u.hover_text().unwrap().color, [255, 0, 0, 255]);
            assert_eq!(te.default.texture_id, PLYWOOD);
            assert_eq!(u.motion.position.truncate(), glam::Vec2::new(40.0, 40.0));
            assert_eq!(u.shape.prim_type(None), PrimType::Box);
        }
        541271843 => {
            assert_eq!(u.hover_text().unwrap().text, "Yellow sphere");
            assert_eq!(te.default.texture_id, MISSING_IMAGE);
            assert_eq!(te.default.color, [255, 255, 0, 255]);
            assert_eq!(u.shape.prim_type(None), PrimType::Sphere);
        }
        541271829 => {
            // Default texture 00000000-0000-1111-9999-000000000001 repeated 2 x 2, face 0
            // the missing image in red, face 6 another texture (written first on the wire).
            assert_eq!(
                te.default.texture_id,
                Uuid::parse_str("00000000-0000-1111-9999-000000000001").unwrap()
            );
            assert_eq!((te.default.repeat_u, te.default.repeat_v), (2.0, 2.0));
            assert_eq!(te.face(0).texture_id, MISSING_IMAGE);
            assert_eq!(te.face(0).color, [255, 0, 0, 255]);
            assert_eq!(
                te.face(6).texture_id,
                Uuid::parse_str("00000000-0000-2222-3333-100000001036").unwrap()
            );
            assert_eq!(te.face(3).texture_id, te.default.texture_id);
            assert_eq!(u.shape.prim_type(None), PrimType::Box);
        }
        541271837 => {
            // Face 1 has its own texture repeated 3 x 0.5, face 2 glows 0.2.
            assert_eq!(
                te.face(1).texture_id,
                Uuid::parse_str("00000000-0000-2222-3333-100000001011").unwrap()
            );
            assert_eq!((te.face(1).repeat_u, te.face(1).repeat_v), (3.0, 0.5));
            assert_eq!(te.face(2).glow, 51);
            assert!((te.face(2).glow() - 0.2).abs() < 1e-6);
            assert_eq!(te.face(0), &te.default);
            assert_eq!(u.shape.prim_type(None), PrimType::Cylinder);
        }
        541271859 => {
            assert_eq!(u.hover_text().unwrap().text, "Linked table");
            assert_eq!(u.scale, Vec3::new(3.0, 2.0, 0.1));
        }
        541271860..=541271863 => assert_eq!(u.parent_id, 541271859),
        _ => {}
    }
}

#[test]
fn compressed_updates_decode_with_plausible_values() {
    let Some(all) = datagrams() else { return };
    let (mut opensim, mut peer, mut exact) = (0, 0, 0);
    let mut known = BTreeSet::new();
    for d in &all {
        let Message::ObjectUpdateCompressed(m) = &d.packet.message else {
            continue;
        };
        for b in &m.object_data {
            let u = FullUpdate::decode_compressed(b.update_flags, &b.data)
                .unwrap_or_else(|e| panic!("{}: {e}", d.name));
            assert_eq!(u.pcode, pcode::PRIMITIVE);
            assert!(u.scale.min_element() > 0.0 && u.scale.max_element() <= 256.0);
            assert!(!u.full_id.is_nil());
            if u.parent_id == 0 {
                assert!(
                    in_region(u.motion.position, d.width),
                    "{:?}",
                    u.motion.position
                );
            } else {
                assert!(u.motion.position.length() < 10.0);
            }
            assert!((u.motion.rotation.length() - 1.0).abs() < 1e-3);
            let te = u.texture_entry().unwrap();
            let params = u.extra_params().unwrap();
            // Our TextureEntry encoder gives back what we decoded.
            assert_eq!(TextureEntry::decode(&te.to_bytes().unwrap()).unwrap(), te);
            assert_eq!(
                params.to_bytes().unwrap().len(),
                u.extra_params.len().max(1)
            );
            let mut again = Vec::new();
            u.encode_compressed(&mut again).unwrap();
            assert_eq!(
                FullUpdate::decode_compressed(b.update_flags, &again.clone().into()).unwrap(),
                u
            );
            if d.folder == "peer-packets" {
                peer += 1;
                continue;
            }
            opensim += 1;
            // OpenSimulator's entries and TextureEntries come back byte for byte.
            assert_eq!(te.to_bytes().unwrap(), u.texture_entry, "{}", u.local_id);
            if again == b.data {
                exact += 1;
            }
            check_known_prim(&u, &te);
            known.insert(u.local_id);
        }
    }
    assert_eq!(peer, 3);
    assert_eq!(
        exact, opensim,
        "every OpenSimulator entry re-encodes exactly"
    );
    // 42 prims in Test Region, 5 in Var Region.
    assert_eq!(known.len(), 47);
    assert!(known.contains(&541271837) && known.contains(&541271863));
}

#[test]
fn second_life_meshes_carry_their_asset_ids() {
    let Some(dir) = opensim_testkit::fixture_subdir("peer-packets") else {
        return;
    };
    let p =
        Packet::decode(&std::fs::read(dir.join("ObjectUpdateCompressedMessageL.packet")).unwrap())
            .unwrap();
    let Message::ObjectUpdateCompressed(m) = p.message else {
        panic!("not an ObjectUpdateCompressed")
    };
    let u: Vec<_> = objects::decode_compressed(&m)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(u.len(), 3);
    let mesh = u[0].extra_params().unwrap();
    let sculpt = mesh.sculpt().unwrap();
    assert!(sculpt.is_mesh());
    assert_eq!(
        sculpt.texture.to_string(),
        "36635073-87a8-8515-fe1c-d167c1ab0762"
    );
    assert_eq!(u[0].shape.prim_type(mesh.sculpt_type()), PrimType::Mesh);
    // A skybox object at 4 km, a face with full alpha-zero colour and fullbright.
    assert!((u[0].motion.position.z - 3999.1).abs() < 0.1);
    let te = u[1].texture_entry().unwrap();
    assert_eq!(te.default.color[3], 0);
    assert!(te.default.fullbright());
}

#[test]
fn terse_updates_track_the_avatar_and_reencode_exactly() {
    let Some(all) = datagrams() else { return };
    let mut avatar_ids = BTreeSet::new();
    let mut terse = 0;
    for d in &all {
        match &d.packet.message {
            Message::ObjectUpdate(m) => avatar_ids.extend(m.object_data.iter().map(|b| b.id)),
            Message::ImprovedTerseObjectUpdate(m) => {
                for b in &m.object_data {
                    let t = TerseUpdate::decode(&b.data, &b.texture_entry).unwrap();
                    assert!(t.is_avatar());
                    assert!(avatar_ids.contains(&t.local_id), "{}", d.name);
                    assert!(in_region(t.motion.position, d.width));
                    assert_eq!(t.motion.velocity, Vec3::ZERO);
                    let mut data = Vec::new();
                    t.encode_data(&mut data);
                    assert_eq!(data, b.data, "{}", d.name);
                    assert_eq!(&t.to_block().unwrap(), b);
                    terse += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(terse, 6);
}

#[test]
fn sim_stats_and_coarse_locations() {
    let Some(all) = datagrams() else { return };
    let (mut stats, mut coarse) = (0, 0);
    for d in &all {
        match &d.packet.message {
            Message::SimStats(m) => {
                let s = SimStats::from(m);
                assert_eq!(s.stats.len(), 41, "{}", d.name);
                let td = s.time_dilation().unwrap();
                assert!(td > 0.0 && td <= 1.0);
                assert!(s.sim_fps().unwrap() > 0.0);
                assert!(matches!(s.region_x, 1000 | 1002));
                assert_eq!(s.region_y, 1000);
                assert_eq!(&s.to_message().unwrap(), m);
                if d.folder.ends_with("login-caps") {
                    assert_eq!(s.agents(), Some(1.0));
                    assert_eq!(s.total_prims(), Some(42.0));
                    assert_eq!(s.object_capacity, 15000);
                }
                assert!(s.get(StatId::SimSkippedCharsPerC).is_some());
                stats += 1;
            }
            Message::CoarseLocationUpdate(m) => {
                let c = CoarseLocations::from_message(m).unwrap();
                assert_eq!(&c.to_message().unwrap(), m);
                coarse += 1;
                if c.agents.is_empty() {
                    // The teleport's old region, after the agent left.
                    assert_eq!(c.you, None);
                    continue;
                }
                assert_eq!(c.agents.len(), 1);
                assert_eq!(c.you(), Some(AGENT));
                assert_eq!(c.prey, None);
                let p = c.agents[0].position();
                assert!(in_region(p, d.width) && p.x >= 100.0, "{p:?}");
            }
            _ => {}
        }
    }
    assert!(stats > 40 && coarse > 20, "{stats} stats, {coarse} coarse");
}

#[test]
fn kill_object_from_a_live_grid_empties_the_scene() {
    let Some(dir) = opensim_testkit::fixture_subdir("peer-packets") else {
        return;
    };
    let p = Packet::decode(&std::fs::read(dir.join("KillObjectMessageL.packet")).unwrap()).unwrap();
    let Message::KillObject(m) = &p.message else {
        panic!("not a KillObject")
    };
    let ids: Vec<u32> = m.object_data.iter().map(|b| b.id).collect();
    assert_eq!(ids[0], 579538094);
    assert_eq!(&objects::kill_object(&ids).unwrap(), m);
    let mut scene = Scene::new(DecodeOptions::POSITIONS);
    let mut events = Vec::new();
    for &id in &ids {
        let u = FullUpdate::new(id, Uuid::from_u128(u128::from(id)), pcode::PRIMITIVE);
        scene.apply_full(&u, &mut events).unwrap();
    }
    events.clear();
    scene.apply(&p.message, &mut events).unwrap();
    assert!(scene.is_empty());
    assert_eq!(events.len(), 6);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, SceneEvent::Removed { .. }))
    );
}

#[test]
fn the_login_session_builds_the_whole_scene() {
    let Some(all) = datagrams() else { return };
    let session: Vec<&Datagram> = all
        .iter()
        .filter(|d| d.folder.ends_with("login-caps"))
        .collect();
    let mut scene = Scene::new(DecodeOptions::FULL);
    let mut events = Vec::new();
    let mut agents = AgentsPresent::new();
    let mut requested = None;
    let mut client_asked = None;
    for d in &session {
        let m = &d.packet.message;
        if d.name.contains("_c2s_") {
            if let Message::RequestMultipleObjects(r) = m {
                client_asked = Some(r.object_data.iter().map(|b| b.id).collect::<BTreeSet<_>>());
            }
            continue;
        }
        match m {
            Message::ObjectUpdateCached(c) => {
                // An empty cache asks for everything: exactly what the client asked for.
                let r = scene
                    .handle_cached(c, AGENT, Uuid::nil(), |_| CacheLookup::Miss)
                    .unwrap();
                assert!(r.object_data.iter().all(|b| b.cache_miss_type == 0));
                requested = Some(r.object_data.iter().map(|b| b.id).collect::<BTreeSet<_>>());
            }
            Message::CoarseLocationUpdate(c) => agents.apply(c).unwrap(),
            _ => {
                scene.apply(m, &mut events).unwrap();
            }
        }
    }
    assert_eq!(requested.unwrap(), client_asked.unwrap());
    // 42 prims and the avatar.
    assert_eq!(scene.len(), 43);
    assert_eq!(scene.avatars().count(), 1);
    let me = scene.get_by_full_id(&AGENT).unwrap();
    assert_eq!(me.avatar_name().as_deref(), Some("Test User"));
    assert_eq!(scene.orphans().count(), 0);
    // The linked table: a root and four legs under it.
    let mut legs = scene.children(541271859).to_vec();
    legs.sort();
    assert_eq!(legs, [541271860, 541271861, 541271862, 541271863]);
    let (leg, _) = scene.region_transform(541271860).unwrap();
    assert!(
        (leg - Vec3::new(58.7, 224.2, 43.435)).length() < 0.01,
        "{leg:?}"
    );
    let prim = scene.get(541271829).unwrap();
    assert_eq!(
        prim.texture_entry.as_ref().unwrap().face(0).texture_id,
        MISSING_IMAGE
    );
    assert_eq!(
        scene.get(541271828).unwrap().text.as_ref().unwrap().text,
        "Hello box"
    );
    // Presence: the coarse list and the avatar agree.
    let present = agents.merged(&scene);
    assert_eq!(present.len(), 1);
    assert_eq!(present[0].agent_id, AGENT);
    assert!(present[0].precise);
    let added = events
        .iter()
        .filter(|e| matches!(e, SceneEvent::Added { .. }))
        .count();
    assert_eq!(added, 43);
}
