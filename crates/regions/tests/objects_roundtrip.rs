//! Random round trips through the object encoders: TextureEntry, terse updates, compressed
//! updates, ObjectUpdate blocks, motion blobs, shape parameters, extra parameters, NameValues.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use glam::{Quat, Vec3, Vec4};
use opensim_messages::codec::recover_w;
use opensim_regions::objects::{
    ExtraParam, ExtraParams, Flexible, FullUpdate, Light, LightImage, MAX_FACES, Motion,
    MotionLayout, NameValue, PrimShape, ReflectionProbe, Sculpt, ShapeParams, Sound,
    TERSE_ACCELERATION_RANGE, TERSE_ANGULAR_VELOCITY_RANGE, TERSE_VELOCITY_RANGE, TerseUpdate,
    TextureEntry, TextureFace, clamp_direction, format_name_values, name_values, pcode,
};
use proptest::prelude::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    // A few distinct values so that faces share them and the encoder groups them.
    prop_oneof![
        Just(Uuid::nil()),
        Just(Uuid::from_u128(0x89556747_24cb_43ed_920b_47caed15465f)),
        any::<u128>().prop_map(Uuid::from_u128),
    ]
}

fn face() -> impl Strategy<Value = TextureFace> {
    (
        (
            uuid(),
            any::<[u8; 4]>(),
            prop_oneof![Just(1.0f32), -100.0f32..100.0],
        ),
        (
            prop_oneof![Just(1.0f32), -100.0f32..100.0],
            any::<i16>(),
            any::<i16>(),
        ),
        (any::<i16>(), any::<u8>(), any::<u8>(), any::<u8>(), uuid()),
    )
        .prop_map(
            |(
                (texture_id, color, repeat_u),
                (repeat_v, offset_u, offset_v),
                (rotation, material, media, glow, material_id),
            )| TextureFace {
                texture_id,
                color,
                repeat_u,
                repeat_v,
                offset_u,
                offset_v,
                rotation,
                material,
                media,
                glow,
                material_id,
            },
        )
}

fn texture_entry() -> impl Strategy<Value = TextureEntry> {
    (face(), prop::collection::vec(face(), 0..=MAX_FACES)).prop_flat_map(|(default, faces)| {
        // Each face either keeps the default, copies another face's field set, or is new.
        let n = faces.len();
        (
            Just(default),
            Just(faces),
            prop::collection::vec((0u8..3, 0..n.max(1), 0usize..11), n),
        )
            .prop_map(|(default, mut faces, picks)| {
                let pool = faces.clone();
                for (i, (kind, other, field)) in picks.into_iter().enumerate() {
                    match kind {
                        0 => faces[i] = default,
                        1 => {
                            // Differ from the default in one field only.
                            let mut f = default;
                            let o = pool[other];
                            match field {
                                0 => f.texture_id = o.texture_id,
                                1 => f.color = o.color,
                                2 => f.repeat_u = o.repeat_u,
                                3 => f.repeat_v = o.repeat_v,
                                4 => f.offset_u = o.offset_u,
                                5 => f.offset_v = o.offset_v,
                                6 => f.rotation = o.rotation,
                                7 => f.material = o.material,
                                8 => f.media = o.media,
                                9 => f.glow = o.glow,
                                _ => f.material_id = o.material_id,
                            }
                            faces[i] = f;
                        }
                        _ => {}
                    }
                }
                TextureEntry { default, faces }
            })
    })
}

fn finite(range: f32) -> impl Strategy<Value = f32> {
    -range..range
}

fn vec3(range: f32) -> impl Strategy<Value = Vec3> {
    (finite(range), finite(range), finite(range)).prop_map(|(x, y, z)| Vec3::new(x, y, z))
}

fn unit_quat() -> impl Strategy<Value = Quat> {
    (finite(1.0), finite(1.0), finite(1.0), finite(1.0)).prop_filter_map(
        "non-zero",
        |(x, y, z, w)| {
            let q = Quat::from_xyzw(x, y, z, w);
            (q.length() > 0.1).then(|| q.normalize())
        },
    )
}

/// The rotation as the three-float wire form carries it (W >= 0, recovered from X, Y, Z).
fn wire_quat() -> impl Strategy<Value = Quat> {
    unit_quat().prop_map(|q| {
        let q = if q.w < 0.0 { -q } else { q };
        Quat::from_xyzw(q.x, q.y, q.z, recover_w(q.x, q.y, q.z))
    })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn text(max: usize) -> impl Strategy<Value = Bytes> {
    "[a-zA-Z0-9 ]{0,40}".prop_map(move |s| Bytes::from(s.chars().take(max).collect::<String>()))
}

fn shape() -> impl Strategy<Value = PrimShape> {
    (
        (
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<i8>(),
            any::<i8>(),
            any::<i8>(),
            any::<i8>(),
        ),
        (
            any::<i8>(),
            any::<u8>(),
            any::<i8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        ),
    )
        .prop_map(|(a, b, c)| PrimShape {
            path_curve: a.0,
            profile_curve: a.1,
            path_begin: a.2,
            path_end: a.3,
            path_scale_x: a.4,
            path_scale_y: a.5,
            path_shear_x: b.0,
            path_shear_y: b.1,
            path_twist: b.2,
            path_twist_begin: b.3,
            path_radius_offset: b.4,
            path_taper_x: b.5,
            path_taper_y: c.0,
            path_revolutions: c.1,
            path_skew: c.2,
            profile_begin: c.3,
            profile_end: c.4,
            profile_hollow: c.5,
        })
}

fn extra_param() -> impl Strategy<Value = ExtraParam> {
    prop_oneof![
        (
            0u8..4,
            0u8..128,
            0u8..128,
            any::<u8>(),
            any::<u8>(),
            vec3(10.0)
        )
            .prop_map(|(softness, t, d, g, w, user_force)| ExtraParam::Flexible(
                Flexible {
                    softness,
                    tension: f32::from(t) / 10.0,
                    drag: f32::from(d) / 10.0,
                    gravity: f32::from(g) / 10.0 - 10.0,
                    wind: f32::from(w) / 10.0,
                    user_force,
                }
            )),
        (any::<[u8; 4]>(), finite(20.0), finite(1.0), finite(2.0)).prop_map(
            |(color, radius, cutoff, falloff)| ExtraParam::Light(Light {
                color,
                radius,
                cutoff,
                falloff
            })
        ),
        (uuid(), any::<u8>())
            .prop_map(|(texture, kind)| ExtraParam::Sculpt(Sculpt { texture, kind })),
        (uuid(), any::<u8>())
            .prop_map(|(texture, kind)| ExtraParam::Mesh(Sculpt { texture, kind })),
        (uuid(), vec3(3.0))
            .prop_map(|(texture, params)| ExtraParam::LightImage(LightImage { texture, params })),
        any::<u32>().prop_map(ExtraParam::MeshFlags),
        prop::collection::vec((any::<u8>(), uuid()), 0..14).prop_map(ExtraParam::RenderMaterial),
        (finite(1.0), finite(100.0), any::<u8>()).prop_map(|(ambiance, clip_distance, flags)| {
            ExtraParam::ReflectionProbe(ReflectionProbe {
                ambiance,
                clip_distance,
                flags,
            })
        }),
        (0xA0u16..0xFFFF, bytes(40)).prop_map(|(kind, data)| ExtraParam::Unknown { kind, data }),
    ]
}

fn sound() -> impl Strategy<Value = Option<Sound>> {
    prop::option::of((1u128.., finite(1.0), any::<u8>(), finite(100.0)).prop_map(
        |(id, gain, flags, radius)| Sound {
            id: Uuid::from_u128(id),
            gain,
            flags,
            radius,
        },
    ))
}

/// A full update as `ObjectUpdateCompressed` can carry it: no velocity, acceleration or
/// collision plane; data consistent with the kind of object.
fn compressed_object() -> impl Strategy<Value = FullUpdate> {
    (
        (
            any::<u32>(),
            uuid(),
            any::<u32>(),
            any::<u32>(),
            prop_oneof![
                Just(pcode::PRIMITIVE),
                Just(pcode::TREE),
                Just(pcode::GRASS)
            ],
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            vec3(64.0),
            vec3(8192.0),
        ),
        (
            wire_quat(),
            prop_oneof![Just(Vec3::ZERO), vec3(10.0)],
            uuid(),
            shape(),
        ),
        (
            texture_entry(),
            bytes(20),
            text(200),
            any::<[u8; 4]>(),
            text(100),
        ),
        (
            prop_oneof![Just(0usize), Just(86), 87usize..98, 1usize..80],
            prop::collection::vec(extra_param(), 0..4),
            sound(),
            text(200),
            any::<u8>(),
        ),
    )
        .prop_map(|(a, b, c, d, e)| {
            let (local_id, full_id, parent_id, crc, pcode) = a;
            let (state, material, click_action, update_flags, scale, position) = b;
            let (rotation, angular_velocity, owner_id, shape) = c;
            let (te, scratch, hover, text_color, media_url) = d;
            let (ps_len, params, sound, names, species) = e;
            let data = if pcode::is_plant(pcode) {
                Bytes::from(vec![species])
            } else {
                scratch
            };
            FullUpdate {
                local_id,
                full_id,
                parent_id,
                crc,
                pcode,
                state,
                material,
                click_action,
                update_flags,
                scale,
                motion: Motion {
                    position,
                    rotation,
                    angular_velocity,
                    ..Motion::default()
                },
                owner_id,
                shape,
                texture_entry: te.to_bytes().unwrap(),
                texture_anim: if species % 2 == 0 {
                    Bytes::from(vec![species; 16])
                } else {
                    Bytes::new()
                },
                name_values: names,
                data,
                text_color: if hover.is_empty() { [0; 4] } else { text_color },
                text: hover,
                media_url,
                particles: Bytes::from(vec![0x5A; ps_len]),
                extra_params: if params.is_empty() {
                    Bytes::new()
                } else {
                    ExtraParams(params).to_bytes().unwrap()
                },
                sound,
            }
        })
}

proptest! {
    #[test]
    fn texture_entries_round_trip(te in texture_entry()) {
        let wire = te.to_bytes().unwrap();
        let back = TextureEntry::decode(&wire).unwrap();
        prop_assert_eq!(&back, &te);
        for i in 0..MAX_FACES {
            prop_assert_eq!(back.face(i), te.face(i));
        }
        // Our own output re-encodes to the same bytes.
        prop_assert_eq!(back.to_bytes().unwrap(), wire.clone());
        // Without the material-id section (an older sender) everything else survives.
        if te.faces.iter().all(|f| f.material_id == te.default.material_id) {
            let short = TextureEntry::decode(&wire[..wire.len() - 17]).unwrap();
            let mut expected = te.clone();
            expected.default.material_id = Uuid::nil();
            for f in &mut expected.faces {
                f.material_id = Uuid::nil();
            }
            prop_assert_eq!(short, expected);
        }
    }

    #[test]
    fn texture_entry_decoder_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(te) = TextureEntry::decode(&data) {
            prop_assert!(te.faces.len() <= MAX_FACES);
            prop_assert_eq!(TextureEntry::decode(&te.to_bytes().unwrap()).unwrap(), te);
        }
    }

    #[test]
    fn texture_face_float_setters_stay_within_one_step(
        u in -1.0f32..1.0, v in -1.0f32..1.0, r in -10.0f32..10.0, g in 0.0f32..1.0,
    ) {
        let mut f = TextureFace::default();
        f.set_offsets(u, v);
        f.set_rotation(r);
        f.set_glow(g);
        prop_assert!((f.offset_u() - u).abs() <= 0.5 / 32767.0 + 1e-6);
        prop_assert!((f.offset_v() - v).abs() <= 0.5 / 32767.0 + 1e-6);
        prop_assert!((f.glow() - g).abs() <= 0.5 / 255.0 + 1e-6);
        let turn = std::f32::consts::TAU;
        let d = (f.rotation() - r).rem_euclid(turn);
        prop_assert!(d.min(turn - d) <= turn / 65536.0 + 1e-4, "{} vs {}", f.rotation(), r);
    }

    #[test]
    fn terse_updates_round_trip_within_quantisation(
        local_id in any::<u32>(), state in any::<u8>(), avatar in any::<bool>(),
        plane in (vec3(1.0), finite(100.0)), position in vec3(8192.0),
        velocity in vec3(200.0), acceleration in vec3(100.0), rotation in unit_quat(),
        angular_velocity in vec3(100.0), te in prop::option::of(texture_entry()),
    ) {
        let t = TerseUpdate {
            local_id,
            state,
            motion: Motion {
                collision_plane: avatar.then(|| plane.0.extend(plane.1)),
                position,
                velocity,
                acceleration,
                rotation,
                angular_velocity,
            },
            texture_entry: te.map(|te| te.to_bytes().unwrap()).unwrap_or_default(),
        };
        let block = t.to_block().unwrap();
        prop_assert_eq!(block.data.len(), if avatar { 60 } else { 44 });
        let back = TerseUpdate::decode(&block.data, &block.texture_entry).unwrap();
        prop_assert_eq!(back.local_id, local_id);
        prop_assert_eq!(back.state, state);
        prop_assert_eq!(back.motion.collision_plane, t.motion.collision_plane);
        prop_assert_eq!(back.motion.position, position);
        prop_assert_eq!(&back.texture_entry, &t.texture_entry);
        for (got, want, range) in [
            (back.motion.velocity, velocity, TERSE_VELOCITY_RANGE),
            (back.motion.acceleration, acceleration, TERSE_ACCELERATION_RANGE),
            (back.motion.angular_velocity, angular_velocity, TERSE_ANGULAR_VELOCITY_RANGE),
        ] {
            // Truncation loses less than a step; snapping to zero less than another.
            let step = 2.0 * range / 65535.0;
            let want = clamp_direction(want, range);
            prop_assert!((got - want).abs().max_element() <= 2.0 * step + 1e-4 * range, "{got:?} vs {want:?}");
        }
        prop_assert!(back.motion.rotation.dot(rotation).abs() > 1.0 - 1e-4);
    }

    #[test]
    fn compressed_updates_round_trip(u in compressed_object()) {
        let block = u.to_compressed_block().unwrap();
        let back = FullUpdate::decode_compressed(block.update_flags, &block.data).unwrap();
        prop_assert_eq!(&back, &u);
        let mut again = Vec::new();
        back.encode_compressed(&mut again).unwrap();
        prop_assert_eq!(Bytes::from(again), block.data);
    }

    #[test]
    fn object_update_blocks_round_trip(mut u in compressed_object(), avatar in any::<bool>(),
        velocity in vec3(50.0), plane in (vec3(1.0), finite(100.0))) {
        u.motion.velocity = velocity;
        u.motion.collision_plane = avatar.then(|| plane.0.extend(plane.1));
        u.particles = u.particles.slice(..u.particles.len().min(255));
        prop_assume!(u.extra_params.len() <= 255 && u.texture_anim.len() <= 255);
        let block = u.to_object_data(256.0).unwrap();
        prop_assert_eq!(block.object_data.len(), if avatar { 76 } else { 60 });
        let back = FullUpdate::from_object_data(&block, 256.0).unwrap();
        prop_assert_eq!(back, u);
    }

    #[test]
    fn compressed_decoder_never_panics(flags in any::<u32>(), data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = FullUpdate::decode_compressed(flags, &Bytes::from(data));
    }

    #[test]
    fn motion_blobs_round_trip(plane in (vec3(1.0), finite(100.0)), p in vec3(512.0), v in vec3(200.0),
        a in vec3(200.0), r in wire_quat(), w in vec3(200.0), width in prop_oneof![Just(256.0f32), Just(512.0)]) {
        let m = Motion {
            collision_plane: Some(plane.0.extend(plane.1)),
            position: Vec3::new(p.x.abs(), p.y.abs(), p.z.abs().min(700.0)).min(Vec3::splat(width)),
            velocity: v,
            acceleration: a,
            rotation: r,
            angular_velocity: w,
        };
        let flat = Motion { collision_plane: None, ..m };
        for (layout, motion) in [(MotionLayout::Full76, m), (MotionLayout::Full60, flat)] {
            let blob = motion.to_blob(layout, width);
            prop_assert_eq!(blob.len(), layout.byte_len());
            prop_assert_eq!(Motion::decode(&blob, width).unwrap(), motion);
        }
        for (layout, motion, step) in [
            (MotionLayout::Quantized48, m, 2.0 * width / 65535.0),
            (MotionLayout::Quantized32, flat, 2.0 * width / 65535.0),
            (MotionLayout::Bytes16, flat, 512.0 / 255.0),
        ] {
            let blob = motion.to_blob(layout, width);
            prop_assert_eq!(blob.len(), layout.byte_len());
            let back = Motion::decode(&blob, width).unwrap();
            prop_assert_eq!(back.collision_plane, motion.collision_plane);
            let tol = |x: f32| x <= 1.01 * step;
            if layout != MotionLayout::Bytes16 {
                // 16-byte positions only span [-256, 256].
                prop_assert!(tol((back.position - motion.position).abs().max_element()));
            }
            let clamp = |v: Vec3, r: f32| v.clamp(Vec3::splat(-r), Vec3::splat(r));
            let r = if layout == MotionLayout::Bytes16 { 256.0 } else { width };
            prop_assert!(tol((back.velocity - clamp(motion.velocity, r)).abs().max_element()));
            prop_assert!(tol((back.angular_velocity - clamp(motion.angular_velocity, r)).abs().max_element()));
            let rot_tol = if layout == MotionLayout::Bytes16 { 0.05 } else { 1e-3 };
            prop_assert!(back.rotation.dot(motion.rotation).abs() > 1.0 - rot_tol);
        }
    }

    #[test]
    fn shape_wire_values_survive_real_numbers(s in shape()) {
        prop_assert_eq!(PrimShape::from_params(&s.to_params()), s);
    }

    #[test]
    fn shape_real_numbers_quantise_within_half_a_quantum(
        cut in (0.0f32..1.0, 0.0f32..1.0, 0.0f32..1.0, 0.0f32..1.0, 0.0f32..0.99),
        scale in (0.0f32..2.0, 0.0f32..2.0), signed in prop::array::uniform9(-1.0f32..1.0),
        revolutions in 1.0f32..4.0,
    ) {
        let p = ShapeParams {
            path_curve: 0x20,
            profile_curve: 0x01,
            path_begin: cut.0,
            path_end: cut.1,
            profile_begin: cut.2,
            profile_end: cut.3,
            profile_hollow: cut.4,
            path_scale_x: scale.0,
            path_scale_y: scale.1,
            path_shear_x: signed[0] / 2.0,
            path_shear_y: signed[1] / 2.0,
            path_twist: signed[2],
            path_twist_begin: signed[3],
            path_radius_offset: signed[4],
            path_taper_x: signed[5],
            path_taper_y: signed[6],
            path_skew: signed[7],
            path_revolutions: revolutions,
        };
        let q = PrimShape::from_params(&p).to_params();
        let close = |a: f32, b: f32, quantum: f32| (a - b).abs() <= quantum / 2.0 + 1e-5;
        prop_assert!(close(q.path_begin, p.path_begin, 0.00002));
        prop_assert!(close(q.path_end, p.path_end, 0.00002));
        prop_assert!(close(q.profile_begin, p.profile_begin, 0.00002));
        prop_assert!(close(q.profile_end, p.profile_end, 0.00002));
        prop_assert!(close(q.profile_hollow, p.profile_hollow, 0.00002));
        prop_assert!(close(q.path_scale_x, p.path_scale_x, 0.01));
        prop_assert!(close(q.path_scale_y, p.path_scale_y, 0.01));
        prop_assert!(close(q.path_shear_x, p.path_shear_x, 0.01));
        prop_assert!(close(q.path_twist, p.path_twist, 0.01));
        prop_assert!(close(q.path_taper_y, p.path_taper_y, 0.01));
        prop_assert!(close(q.path_skew, p.path_skew, 0.01));
        prop_assert!(close(q.path_revolutions, p.path_revolutions, 0.015));
    }

    #[test]
    fn extra_params_round_trip(params in prop::collection::vec(extra_param(), 0..6)) {
        let p = ExtraParams(params);
        let wire = p.to_bytes().unwrap();
        let back = ExtraParams::decode(&wire).unwrap();
        prop_assert_eq!(back.to_bytes().unwrap(), wire);
        prop_assert_eq!(back, p);
    }

    #[test]
    fn name_values_round_trip(lines in prop::collection::vec(("[A-Za-z]{1,12}", "[A-Za-z0-9 ]{0,20}"), 1..5)) {
        let text = format_name_values(lines.iter().map(|(n, v)| NameValue::string(n, v)));
        let back: Vec<_> = name_values(&text).map(|nv| (nv.name.to_owned(), nv.value.to_owned())).collect();
        prop_assert_eq!(back, lines);
    }
}

#[test]
fn unit_vectors_for_the_default_plane() {
    // The collision plane OpenSim sends when it knows none survives the avatar layouts.
    let m = Motion {
        collision_plane: Some(Vec4::new(0.0, 0.0, 0.0, 1.0)),
        ..Motion::default()
    };
    assert_eq!(
        Motion::decode(&m.to_blob(MotionLayout::Full76, 256.0), 256.0).unwrap(),
        m
    );
}
