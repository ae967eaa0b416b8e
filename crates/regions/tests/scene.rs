//! Scene behaviour: ordering, parent links, kills, replacement, cache probes, decoding depth
//! and hostile input.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use glam::{Quat, Vec3};
use opensim_messages::{Message, ObjectUpdateCached, object_update_cached};
use opensim_regions::Error;
use opensim_regions::error::{Malformed, PeerFault};
use opensim_regions::objects::{
    self, FullUpdate, NameValue, TerseUpdate, TextureEntry, TextureFace, format_name_values, pcode,
};
use opensim_regions::scene::{CacheLookup, DecodeOptions, Scene, SceneEvent, request_objects};
use uuid::Uuid;

fn prim(local_id: u32, parent_id: u32) -> FullUpdate {
    let mut u = FullUpdate::new(
        local_id,
        Uuid::from_u128(u128::from(local_id)),
        pcode::PRIMITIVE,
    );
    u.parent_id = parent_id;
    u.motion.position = Vec3::new(local_id as f32 % 200.0, 10.0, 20.0);
    u
}

fn avatar(local_id: u32, parent_id: u32) -> FullUpdate {
    let mut u = FullUpdate::new(
        local_id,
        Uuid::from_u128(0xA000 + u128::from(local_id)),
        pcode::AVATAR,
    );
    u.parent_id = parent_id;
    u.name_values = format_name_values([
        NameValue::string("FirstName", "Ada"),
        NameValue::string("LastName", "Bot"),
    ])
    .into();
    u
}

fn compressed(objs: &[FullUpdate]) -> Message {
    objects::object_update_compressed(0, 65535, objs)
        .unwrap()
        .into()
}

fn apply(scene: &mut Scene, msg: &Message) -> Vec<SceneEvent> {
    let mut ev = Vec::new();
    assert!(scene.apply(msg, &mut ev).unwrap());
    ev
}

#[test]
fn children_that_arrive_before_their_root_are_linked() {
    let mut scene = Scene::new(DecodeOptions::POSITIONS);
    apply(&mut scene, &compressed(&[prim(2, 1), prim(3, 1)]));
    assert_eq!(scene.children(1), &[2, 3]);
    assert_eq!(scene.orphans().count(), 2);
    assert!(scene.root_of(2).is_none());
    assert!(scene.region_transform(2).is_none());

    let mut root = prim(1, 0);
    root.motion.position = Vec3::new(100.0, 100.0, 20.0);
    root.motion.rotation = Quat::from_rotation_z(std::f32::consts::FRAC_PI_2);
    let ev = apply(&mut scene, &compressed(&[root]));
    assert_eq!(
        ev,
        [SceneEvent::Added {
            local_id: 1,
            full_id: Uuid::from_u128(1),
            pcode: pcode::PRIMITIVE
        }]
    );
    assert_eq!(scene.orphans().count(), 0);
    assert_eq!(scene.root_of(3).unwrap().local_id, 1);
    // Child 2 sits at (2, 10, 20) in the root's frame, rotated a quarter turn.
    let (p, _) = scene.region_transform(2).unwrap();
    assert!((p - Vec3::new(90.0, 102.0, 40.0)).length() < 1e-3, "{p:?}");

    // Relinking child 3 to child 2 moves it in the index.
    let ev = apply(&mut scene, &compressed(&[prim(3, 2)]));
    assert_eq!(ev, [SceneEvent::Updated { local_id: 3 }]);
    assert_eq!(scene.children(1), &[2]);
    assert_eq!(scene.children(2), &[3]);
}

#[test]
fn killing_a_root_removes_its_linkset_but_unseats_avatars() {
    let mut scene = Scene::new(DecodeOptions::POSITIONS.with_names());
    apply(
        &mut scene,
        &compressed(&[prim(1, 0), prim(2, 1), prim(3, 2), prim(9, 0)]),
    );
    let msg: Message = objects::object_update(0, 65535, &[avatar(50, 1)], 256.0)
        .unwrap()
        .into();
    apply(&mut scene, &msg);
    assert_eq!(
        scene.get(50).unwrap().avatar_name().as_deref(),
        Some("Ada Bot")
    );

    let ev = apply(&mut scene, &objects::kill_object(&[1]).unwrap().into());
    let removed: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            SceneEvent::Removed { local_id, .. } => Some(*local_id),
            _ => None,
        })
        .collect();
    assert_eq!(removed.len(), 3);
    assert!(removed.contains(&1) && removed.contains(&2) && removed.contains(&3));
    assert!(ev.contains(&SceneEvent::Updated { local_id: 50 }));
    assert_eq!(scene.len(), 2);
    assert_eq!(scene.get(50).unwrap().parent_id, 0);
    assert!(scene.get(9).is_some());
    // Killing what is gone is a no-op.
    assert!(apply(&mut scene, &objects::kill_object(&[1, 2]).unwrap().into()).is_empty());
}

#[test]
fn parent_cycles_from_a_hostile_peer_terminate() {
    let mut scene = Scene::new(DecodeOptions::POSITIONS);
    apply(
        &mut scene,
        &compressed(&[prim(1, 2), prim(2, 1), prim(3, 3)]),
    );
    assert!(scene.root_of(1).is_none());
    assert!(scene.region_transform(2).is_none());
    assert!(scene.region_transform(3).is_none());
    let ev = apply(&mut scene, &objects::kill_object(&[1, 3]).unwrap().into());
    assert_eq!(ev.len(), 3);
    assert!(scene.is_empty());
}

#[test]
fn recreated_objects_replace_the_old_ones() {
    let mut scene = Scene::new(DecodeOptions::POSITIONS);
    apply(&mut scene, &compressed(&[prim(1, 0)]));
    // The same UUID under a new local id (re-rez, region restart).
    let mut moved = prim(1, 0);
    moved.local_id = 7;
    let ev = apply(&mut scene, &compressed(&[moved]));
    assert_eq!(
        ev,
        [
            SceneEvent::Removed {
                local_id: 1,
                full_id: Uuid::from_u128(1)
            },
            SceneEvent::Added {
                local_id: 7,
                full_id: Uuid::from_u128(1),
                pcode: pcode::PRIMITIVE
            }
        ]
    );
    assert_eq!(scene.local_id(&Uuid::from_u128(1)), Some(7));
    // Another UUID under a used local id.
    let mut other = prim(7, 0);
    other.full_id = Uuid::from_u128(99);
    let ev = apply(&mut scene, &compressed(&[other]));
    assert!(matches!(ev[0], SceneEvent::Removed { local_id: 7, .. }));
    assert!(matches!(ev[1], SceneEvent::Added { local_id: 7, .. }));
    assert!(scene.get_by_full_id(&Uuid::from_u128(1)).is_none());
    assert_eq!(scene.len(), 1);
}

#[test]
fn terse_updates_move_known_objects_and_report_unknown_ones() {
    let mut scene = Scene::new(DecodeOptions::FULL);
    apply(&mut scene, &compressed(&[prim(1, 0)]));
    let mut te = TextureEntry::new(TextureFace::default());
    te.face_mut(2).unwrap().glow = 9;
    let mut t = TerseUpdate {
        local_id: 1,
        texture_entry: te.to_bytes().unwrap(),
        ..TerseUpdate::default()
    };
    t.motion.position = Vec3::new(5.0, 6.0, 7.0);
    t.motion.velocity = Vec3::new(1.0, 0.0, 0.0);
    let unknown = TerseUpdate {
        local_id: 2,
        ..TerseUpdate::default()
    };
    let msg = objects::improved_terse_object_update(0, 32767, &[t, unknown]).unwrap();
    let ev = apply(&mut scene, &msg.into());
    assert_eq!(
        ev,
        [
            SceneEvent::Moved { local_id: 1 },
            SceneEvent::Unknown { local_id: 2 }
        ]
    );
    let o = scene.get(1).unwrap();
    assert_eq!(o.motion.position, Vec3::new(5.0, 6.0, 7.0));
    assert!((o.motion.velocity.x - 1.0).abs() < 0.01);
    assert_eq!(o.texture_entry.as_ref().unwrap().face(2).glow, 9);
    assert!((scene.time_dilation() - 0.5).abs() < 1e-4);

    let reqs = request_objects(Uuid::from_u128(1), Uuid::from_u128(2), 0..300);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].object_data.len(), 255);
    assert_eq!(reqs[1].object_data[44].id, 299);
}

#[test]
fn decoding_depth_is_chosen_per_scene() {
    let mut u = prim(1, 0);
    let mut te = TextureEntry::new(TextureFace::default());
    te.default.texture_id = objects::PLYWOOD;
    u.texture_entry = te.to_bytes().unwrap();
    u.text = Bytes::from_static(b"hello");
    u.name_values = Bytes::from_static(b"AttachItemID STRING RW SV 1234");
    let msg = compressed(&[u.clone()]);

    let mut full = Scene::new(DecodeOptions::FULL);
    apply(&mut full, &msg);
    let o = full.get(1).unwrap();
    assert_eq!(
        o.texture_entry.as_ref().unwrap().default.texture_id,
        objects::PLYWOOD
    );
    assert_eq!(o.text.as_ref().unwrap().text, "hello");
    assert_eq!(o.name_value("AttachItemID"), Some("1234"));
    assert!(o.shape.is_some());

    let mut lean = Scene::new(DecodeOptions::POSITIONS);
    apply(&mut lean, &msg);
    let o = lean.get(1).unwrap();
    assert_eq!(o.motion.position, u.motion.position);
    assert!(o.texture_entry.is_none() && o.text.is_none() && o.shape.is_none());
    assert!(o.name_values.is_none());

    // A positions-only scene does not even read past the parent id: a broken tail is fine
    // there and an error for a full scene, which still applies the other objects.
    let Message::ObjectUpdateCompressed(mut m) = compressed(&[prim(2, 0), u]) else {
        unreachable!()
    };
    let cut = m.object_data[1].data.slice(..100);
    m.object_data[1].data = cut;
    let msg = Message::ObjectUpdateCompressed(m);
    let mut ev = Vec::new();
    lean.apply(&msg, &mut ev).unwrap();
    assert_eq!(lean.len(), 2);
    let mut ev = Vec::new();
    let err = full.apply(&msg, &mut ev).unwrap_err();
    assert!(
        matches!(err, Error::Malformed(Malformed::Truncated { .. })),
        "{err}"
    );
    assert!(full.get(2).is_some());
}

#[test]
fn a_broken_texture_entry_keeps_the_previous_one() {
    let mut scene = Scene::new(DecodeOptions::FULL);
    let mut u = prim(1, 0);
    let mut te = TextureEntry::default();
    te.default.glow = 7;
    u.texture_entry = te.to_bytes().unwrap();
    apply(&mut scene, &compressed(&[u.clone()]));
    u.texture_entry = u.texture_entry.slice(..20);
    u.motion.position.x = 42.0;
    let mut ev = Vec::new();
    let err = scene.apply(&compressed(&[u]), &mut ev).unwrap_err();
    assert!(matches!(
        err,
        Error::Malformed(Malformed::TextureEntry { .. })
    ));
    let o = scene.get(1).unwrap();
    assert_eq!(o.motion.position.x, 42.0);
    assert_eq!(o.texture_entry.as_ref().unwrap().default.glow, 7);
}

#[test]
fn cached_probes_ask_only_for_what_is_missing() {
    let mut scene = Scene::new(DecodeOptions::POSITIONS);
    let mut have = prim(1, 0);
    have.crc = 11;
    apply(&mut scene, &compressed(&[have]));
    let entry = |id: u32, crc: u32| object_update_cached::ObjectData {
        id,
        crc,
        update_flags: 0,
    };
    let m = ObjectUpdateCached {
        region_data: object_update_cached::RegionData {
            region_handle: 0,
            time_dilation: 65535,
        },
        object_data: vec![
            entry(1, 11),
            entry(1, 12),
            entry(2, 5),
            entry(3, 6),
            entry(4, 7),
        ]
        .into(),
    };
    let mut asked = Vec::new();
    let r = scene
        .handle_cached(&m, Uuid::from_u128(1), Uuid::from_u128(2), |c| {
            asked.push(c.local_id);
            match c.local_id {
                2 => CacheLookup::Hit,
                3 => CacheLookup::CrcMismatch,
                _ => CacheLookup::Miss,
            }
        })
        .unwrap();
    // Object 1 with its current CRC is not looked up; with another CRC it is.
    assert_eq!(asked, [1, 2, 3, 4]);
    let got: Vec<(u32, u8)> = r
        .object_data
        .iter()
        .map(|b| (b.id, b.cache_miss_type))
        .collect();
    assert_eq!(got, [(1, 0), (3, 1), (4, 0)]);
    assert_eq!(r.agent_data.session_id, Uuid::from_u128(2));
    assert!(
        scene
            .handle_cached(&m, Uuid::nil(), Uuid::nil(), |_| CacheLookup::Hit)
            .is_none()
    );
}

#[test]
fn a_full_scene_refuses_more_objects() {
    let mut opts = DecodeOptions::POSITIONS;
    opts.max_objects = 2;
    let mut scene = Scene::new(opts);
    let mut ev = Vec::new();
    let err = scene
        .apply(&compressed(&[prim(1, 0), prim(2, 0), prim(3, 0)]), &mut ev)
        .unwrap_err();
    assert_eq!(err, Error::Peer(PeerFault::SceneFull { limit: 2 }));
    assert_eq!(scene.len(), 2);
    // Updates of known objects still apply.
    apply(&mut scene, &compressed(&[prim(2, 0)]));
}

#[test]
fn malformed_terse_blocks_are_errors_not_panics() {
    let mut scene = Scene::new(DecodeOptions::FULL);
    let mut ev = Vec::new();
    for data in [
        &[][..],
        &[1, 0, 0, 0, 0, 0][..],
        &[1, 0, 0, 0, 0, 1, 0, 0][..],
    ] {
        let err = scene
            .apply_terse_block(data, &Bytes::new(), &mut ev)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed(Malformed::TerseLength { .. })
        ));
    }
    // A TextureEntry length that overruns its field.
    let mut data = Vec::new();
    TerseUpdate::default().encode_data(&mut data);
    let err = TerseUpdate::decode(&data, &Bytes::from_static(&[9, 0, 0, 0, 1])).unwrap_err();
    assert!(matches!(err, Error::Malformed(Malformed::Truncated { .. })));
    assert!(ev.is_empty());
}
