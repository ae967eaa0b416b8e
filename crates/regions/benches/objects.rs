//! Object decoding and scene update speed.
//!
//! `cargo bench -p opensim-regions --bench objects`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::LazyLock;

use bytes::Bytes;
use divan::Bencher;
use glam::{Quat, Vec3};
use opensim_messages::{ImprovedTerseObjectUpdate, Message};
use opensim_packet::Packet;
use opensim_regions::objects::{self, FullUpdate, TerseUpdate, pcode};
use opensim_regions::scene::{DecodeOptions, Scene};
use uuid::Uuid;

fn main() {
    divan::main();
}

fn datagram(folder: &str, name: &str) -> Option<Bytes> {
    let dir = opensim_testkit::fixture_subdir(folder)?;
    Some(std::fs::read(dir.join(name)).unwrap().into())
}

/// The avatar `ObjectUpdate` of the 0.9.2.2 session, as received (zero-coded).
static OBJECT_UPDATE: LazyLock<Option<Bytes>> =
    LazyLock::new(|| datagram("opensim-0.9.2.2-session", "0009_s2c_ObjectUpdate.bin"));
/// Eight prims in one `ObjectUpdateCompressed` of the login capture.
static COMPRESSED: LazyLock<Option<Bytes>> = LazyLock::new(|| {
    datagram(
        "opensim-0.9.2.2-http/login-caps",
        "0082_s2c_ObjectUpdateCompressed.bin",
    )
});

#[divan::bench]
fn object_update_datagram_to_typed(b: Bencher) {
    let Some(wire) = OBJECT_UPDATE.as_ref() else {
        return;
    };
    b.bench(|| {
        let p = Packet::decode_bytes(black_box(wire)).unwrap();
        let Message::ObjectUpdate(m) = p.message else {
            unreachable!()
        };
        let u = FullUpdate::from_object_data(&m.object_data[0], 256.0).unwrap();
        black_box(u.motion.position)
    });
}

#[divan::bench]
fn object_update_typed_only(b: Bencher) {
    let Some(wire) = OBJECT_UPDATE.as_ref() else {
        return;
    };
    let Message::ObjectUpdate(m) = Packet::decode_bytes(wire).unwrap().message else {
        unreachable!()
    };
    b.bench(|| {
        let u = FullUpdate::from_object_data(black_box(&m.object_data[0]), 256.0).unwrap();
        black_box(u.name_values().count())
    });
}

#[divan::bench(args = [false, true])]
fn compressed_eight_prims(b: Bencher, with_texture_entries: bool) {
    let Some(wire) = COMPRESSED.as_ref() else {
        return;
    };
    let Message::ObjectUpdateCompressed(m) = Packet::decode_bytes(wire).unwrap().message else {
        unreachable!()
    };
    b.bench(|| {
        let mut faces = 0;
        for u in objects::decode_compressed(black_box(&m)) {
            let u = u.unwrap();
            if with_texture_entries {
                faces += u.texture_entry().unwrap().faces.len();
            }
            black_box(&u);
        }
        faces
    });
}

const OBJECTS: u32 = 1000;
const UPDATES: usize = 10_000;

/// 10,000 terse updates for 1000 objects, 20 per message, as a simulator packs them.
static TERSE: LazyLock<Vec<Message>> = LazyLock::new(|| {
    let updates: Vec<TerseUpdate> = (0..UPDATES)
        .map(|i| {
            let mut t = TerseUpdate {
                local_id: 1 + (i as u32 % OBJECTS),
                ..TerseUpdate::default()
            };
            let f = i as f32;
            t.motion.position = Vec3::new(f % 256.0, (f * 0.37) % 256.0, 22.0);
            t.motion.velocity = Vec3::new(1.5, -0.5, 0.0);
            t.motion.rotation = Quat::from_rotation_z(f * 0.01);
            if i % 4 == 0 {
                t.motion.collision_plane = Some(glam::Vec4::new(0.0, 0.0, 1.0, 21.0));
            }
            t
        })
        .collect();
    updates
        .chunks(20)
        .map(|c| {
            objects::improved_terse_object_update(1, 65535, c)
                .unwrap()
                .into()
        })
        .collect()
});

fn populated(options: DecodeOptions) -> Scene {
    let mut scene = Scene::new(options);
    let objs: Vec<FullUpdate> = (1..=OBJECTS)
        .map(|id| FullUpdate::new(id, Uuid::from_u128(u128::from(id)), pcode::PRIMITIVE))
        .collect();
    let mut ev = Vec::new();
    for c in objs.chunks(100) {
        let m: Message = objects::object_update_compressed(1, 65535, c)
            .unwrap()
            .into();
        scene.apply(&m, &mut ev).unwrap();
    }
    scene
}

/// Applying 10,000 terse updates (500 messages) to a 1000-object scene.
#[divan::bench(args = ["positions", "full"])]
fn apply_10k_terse_updates(b: Bencher, depth: &str) {
    let options = if depth == "positions" {
        DecodeOptions::POSITIONS
    } else {
        DecodeOptions::FULL
    };
    let msgs = &*TERSE;
    let mut scene = populated(options);
    let mut events = Vec::with_capacity(32);
    b.bench_local(|| {
        for m in msgs {
            events.clear();
            scene.apply(black_box(m), &mut events).unwrap();
        }
        events.len()
    });
}

/// The same 10,000 updates from raw datagrams: packet decode, then the scene.
#[divan::bench]
fn apply_10k_terse_datagrams(b: Bencher) {
    let wires: Vec<Bytes> = TERSE
        .iter()
        .map(|m| {
            let Message::ImprovedTerseObjectUpdate(t) = m else {
                unreachable!()
            };
            let t: ImprovedTerseObjectUpdate = t.clone();
            Packet::new(t).to_bytes().unwrap()
        })
        .collect();
    let mut scene = populated(DecodeOptions::POSITIONS);
    let mut events = Vec::with_capacity(32);
    b.bench_local(|| {
        for w in &wires {
            events.clear();
            let p = Packet::decode_bytes(black_box(w)).unwrap();
            scene.apply(&p.message, &mut events).unwrap();
        }
        events.len()
    });
}

/// Decoding the same 10,000 terse blocks without a scene.
#[divan::bench]
fn decode_10k_terse_updates(b: Bencher) {
    let msgs = &*TERSE;
    b.bench(|| {
        let mut sum = 0.0;
        for m in msgs {
            let Message::ImprovedTerseObjectUpdate(t) = black_box(m) else {
                unreachable!()
            };
            for u in objects::decode_terse(t) {
                sum += u.unwrap().motion.position.x;
            }
        }
        sum
    });
}
