//! What a region holds: terrain, prims and its size.

use std::collections::HashMap;

use bytes::Bytes;
use glam::{Quat, Vec3};
use opensim_regions::objects::{FullUpdate, pcode};
use opensim_regions::objects::{PrimShape, path_curve, profile_curve};
use opensim_regions::objects::{TextureEntry, TextureFace};
use opensim_regions::terrain::{Heightmap, RegionSize};
use uuid::Uuid;

/// The shape families a [`Prim`] can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimKind {
    /// Box (square profile, linear path).
    Box,
    /// Cylinder (circle profile, linear path).
    Cylinder,
    /// Prism (triangle profile, linear path).
    Prism,
    /// Sphere (half-circle profile, circular path).
    Sphere,
    /// Torus (circle profile, circular path, thin).
    Torus,
    /// Tube (square profile, circular path, thin).
    Tube,
    /// Ring (triangle profile, circular path, thin).
    Ring,
}

impl PrimKind {
    /// Every kind, in declaration order.
    pub const ALL: [PrimKind; 7] = [
        PrimKind::Box,
        PrimKind::Cylinder,
        PrimKind::Prism,
        PrimKind::Sphere,
        PrimKind::Torus,
        PrimKind::Tube,
        PrimKind::Ring,
    ];

    /// The wire shape parameters the viewer's "create" tool gives this kind.
    pub fn shape(self) -> PrimShape {
        // Path scale bytes count down from 200: 100 is a full top, 175 a quarter (the hole of
        // circular-path shapes).
        let (path, profile, scale_y) = match self {
            PrimKind::Box => (path_curve::LINE, profile_curve::SQUARE, 100),
            PrimKind::Cylinder => (path_curve::LINE, profile_curve::CIRCLE, 100),
            PrimKind::Prism => (path_curve::LINE, profile_curve::EQUAL_TRIANGLE, 100),
            PrimKind::Sphere => (path_curve::CIRCLE, profile_curve::HALF_CIRCLE, 100),
            PrimKind::Torus => (path_curve::CIRCLE, profile_curve::CIRCLE, 175),
            PrimKind::Tube => (path_curve::CIRCLE, profile_curve::SQUARE, 175),
            PrimKind::Ring => (path_curve::CIRCLE, profile_curve::EQUAL_TRIANGLE, 175),
        };
        PrimShape {
            path_curve: path,
            profile_curve: profile,
            path_scale_x: 100,
            path_scale_y: scale_y,
            ..PrimShape::default()
        }
    }
}

/// One prim of a [`Scene`].
#[derive(Debug, Clone, PartialEq)]
pub struct Prim {
    /// Region-local id (unique within the scene, non-zero).
    pub local_id: u32,
    /// The prim's UUID.
    pub id: Uuid,
    /// Region-local position in metres.
    pub position: Vec3,
    /// Size in metres.
    pub scale: Vec3,
    /// Rotation.
    pub rotation: Quat,
    /// Shape parameters as sent.
    pub shape: PrimShape,
    /// Texture of every face.
    pub texture: Uuid,
    /// Colour of every face (R, G, B, A).
    pub color: [u8; 4],
    /// Name (sent as nothing over UDP; kept for callers).
    pub name: String,
}

impl Prim {
    /// A prim of `kind` at `position` with unit scale, no rotation and plywood texture.
    pub fn new(local_id: u32, kind: PrimKind, position: Vec3) -> Self {
        Prim {
            local_id,
            id: Uuid::from_u128(0x5157_0000_0000_4000_8000_0000_0000_0000 | u128::from(local_id)),
            position,
            scale: Vec3::ONE,
            rotation: Quat::IDENTITY,
            shape: kind.shape(),
            texture: PLYWOOD,
            color: [255; 4],
            name: format!("{kind:?} {local_id}"),
        }
    }

    /// The full object update a simulator sends for this prim.
    ///
    /// # Errors
    /// When the TextureEntry cannot be encoded.
    pub fn to_full_update(&self) -> Result<FullUpdate, opensim_regions::Error> {
        let mut u = FullUpdate::new(self.local_id, self.id, pcode::PRIMITIVE);
        u.scale = self.scale;
        u.motion.position = self.position;
        u.motion.rotation = self.rotation;
        u.shape = self.shape;
        u.material = 3; // wood, OpenSim's default for new prims
        let face = TextureFace {
            texture_id: self.texture,
            color: self.color,
            ..TextureFace::default()
        };
        u.texture_entry = TextureEntry::new(face).to_bytes()?;
        Ok(u)
    }
}

/// How a prim of a [`Scene`] moves (see [`Scene::motions`]); the pose at `t` seconds after the
/// simulator started is a pure function of `t`, so runs are reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PrimMotion {
    /// Turns in place about `axis` (unit vector) at `rate` radians per second.
    Spin {
        /// Axis of rotation.
        axis: Vec3,
        /// Angular speed in rad/s.
        rate: f32,
    },
    /// Circles a vertical axis through `centre` at `rate` radians per second, starting from
    /// its scene position and turning with its path.
    Orbit {
        /// A point on the vertical axis it circles.
        centre: Vec3,
        /// Angular speed in rad/s.
        rate: f32,
    },
}

/// Where a moving prim is at one moment: what an `ImprovedTerseObjectUpdate` carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Region-local position.
    pub position: Vec3,
    /// Rotation.
    pub rotation: Quat,
    /// Linear velocity in m/s.
    pub velocity: Vec3,
    /// Angular velocity in rad/s.
    pub angular_velocity: Vec3,
}

impl PrimMotion {
    /// The pose of `prim` (at its scene pose when `t = 0`) after `t` seconds.
    pub fn pose(&self, prim: &Prim, t: f32) -> Pose {
        match *self {
            PrimMotion::Spin { axis, rate } => {
                let axis = axis.try_normalize().unwrap_or(Vec3::Z);
                Pose {
                    position: prim.position,
                    rotation: (Quat::from_axis_angle(axis, rate * t) * prim.rotation).normalize(),
                    velocity: Vec3::ZERO,
                    angular_velocity: axis * rate,
                }
            }
            PrimMotion::Orbit { centre, rate } => {
                let turn = Quat::from_rotation_z(rate * t);
                let arm = prim.position - centre;
                let flat = Vec3::new(arm.x, arm.y, 0.0);
                let rotated = turn * flat;
                Pose {
                    position: Vec3::new(
                        centre.x + rotated.x,
                        centre.y + rotated.y,
                        prim.position.z,
                    ),
                    rotation: (turn * prim.rotation).normalize(),
                    velocity: Vec3::Z.cross(rotated) * rate,
                    angular_velocity: Vec3::Z * rate,
                }
            }
        }
    }
}

/// OpenSim's default plywood texture (the default of [`Prim::new`]; no scene ships its bytes).
pub const PLYWOOD: Uuid = Uuid::from_u128(0x89556747_24cb_43ed_920b_47caed15465f);

/// A JPEG 2000 texture the project generated for [`Scene::default_demo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoTexture {
    /// Asset id the scene serves it under.
    pub id: Uuid,
    /// Short name (its file stem in `crates/sim/textures/`).
    pub name: &'static str,
    /// The raw codestream (`.j2c`).
    pub j2c: &'static [u8],
}

macro_rules! demo_texture {
    ($n:literal, $name:literal) => {
        DemoTexture {
            id: Uuid::from_u128(0x5154_0000_0000_4000_8000_0000_0000_0000 | $n),
            name: $name,
            j2c: include_bytes!(concat!("../textures/", $name, ".j2c")),
        }
    };
}

/// The textures of [`Scene::default_demo`], made by `cargo xtask demo-textures`: painted
/// images encoded by OpenJPEG as Second Life textures are (6 resolutions, so discard levels
/// 0 to 5; 5 quality layers in LRCP order; 9/7 wavelet). All are square; `glow` has alpha.
pub const DEMO_TEXTURES: [DemoTexture; 6] = [
    demo_texture!(1, "checker"),
    demo_texture!(2, "bricks"),
    demo_texture!(3, "glow"),
    demo_texture!(4, "plywood"),
    demo_texture!(5, "stone"),
    demo_texture!(6, "grass"),
];

/// A region's content: size, terrain, prims and the textures its caps serve.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Region name.
    pub name: String,
    /// Region UUID.
    pub region_id: Uuid,
    /// Grid position in 256 m units.
    pub grid: (u32, u32),
    /// Terrain (its size is the region's size).
    pub terrain: Heightmap,
    /// Water level in metres.
    pub water_height: f32,
    /// Prims.
    pub prims: Vec<Prim>,
    /// Textures (J2C bytes) served over GetTexture / ViewerAsset and `RequestImage`.
    pub textures: HashMap<Uuid, Bytes>,
    /// Prims that move, by local id; the simulator sends `ImprovedTerseObjectUpdate`s for
    /// them at [`SimConfig::terse_interval`](crate::SimConfig::terse_interval).
    pub motions: HashMap<u32, PrimMotion>,
}

impl Scene {
    /// A flat region at 21 m with nothing on it.
    pub fn flat(name: &str, size: RegionSize) -> Self {
        Scene {
            name: name.to_owned(),
            region_id: Uuid::from_u128(0x5151_0000_0000_4000_8000_0000_0000_0001),
            grid: (1000, 1000),
            terrain: Heightmap::from_fn(size, |_, _| 21.0),
            water_height: 20.0,
            prims: Vec::new(),
            textures: HashMap::new(),
            motions: HashMap::new(),
        }
    }

    /// The region's size.
    pub fn size(&self) -> RegionSize {
        self.terrain.region()
    }

    /// Terrain height at a region-local point (clamped to the map).
    pub fn ground_at(&self, x: f32, y: f32) -> f32 {
        let cx = x.clamp(0.0, (self.terrain.width() - 1) as f32) as u32;
        let cy = y.clamp(0.0, (self.terrain.height() - 1) as f32) as u32;
        self.terrain.get(cx, cy).unwrap_or(0.0)
    }

    /// A recognisable 256 m demo: two hills and a valley along the diagonal, and 42 prims of
    /// every kind in rings and rows on the ground; every third prim of the ring spins in place
    /// (so positions never change, only rotations). The prims wear the [`DEMO_TEXTURES`]
    /// (each on seven prims), which the scene serves.
    pub fn default_demo() -> Self {
        let mut scene = Scene::flat("Demo Region", RegionSize::LEGACY);
        scene.textures = DEMO_TEXTURES
            .iter()
            .map(|t| (t.id, Bytes::from_static(t.j2c)))
            .collect();
        let texture = |i: usize| DEMO_TEXTURES[i % DEMO_TEXTURES.len()].id;
        scene.terrain = Heightmap::from_fn(RegionSize::LEGACY, |x, y| {
            let (fx, fy) = (x as f32 / 256.0, y as f32 / 256.0);
            let tau = std::f32::consts::TAU;
            let hills = 12.0 * (fx * tau).sin() * (fy * tau).sin();
            let valley = -6.0 * ((fx - fy) * std::f32::consts::PI).cos();
            let ripples = 1.5 * (fx * tau * 6.0).sin() * (fy * tau * 5.0).cos();
            30.0 + hills + valley + ripples
        });
        let mut id = 1u32;
        // A ring of 21 around the centre.
        for i in 0..21 {
            let a = i as f32 / 21.0 * std::f32::consts::TAU;
            let (x, y) = (128.0 + 40.0 * a.cos(), 128.0 + 40.0 * a.sin());
            let kind = PrimKind::ALL[i % PrimKind::ALL.len()];
            let mut p = Prim::new(id, kind, Vec3::new(x, y, scene.ground_at(x, y) + 1.0));
            p.scale = Vec3::new(1.0 + (i % 3) as f32, 1.0 + (i % 2) as f32, 2.0);
            p.rotation = Quat::from_rotation_z(a);
            p.color = [(i * 12) as u8, 255 - (i * 12) as u8, 128, 255];
            p.texture = texture(i);
            if i % 3 == 0 {
                let rate = 0.25 + (i % 4) as f32 * 0.25;
                scene.motions.insert(
                    id,
                    PrimMotion::Spin {
                        axis: Vec3::Z,
                        rate,
                    },
                );
            }
            scene.prims.push(p);
            id += 1;
        }
        // A row of 21 along the valley.
        for i in 0..21 {
            let t = 20.0 + i as f32 * 10.0;
            let kind = PrimKind::ALL[(i * 3) % PrimKind::ALL.len()];
            let mut p = Prim::new(id, kind, Vec3::new(t, t, scene.ground_at(t, t) + 0.5));
            p.scale = Vec3::splat(0.5 + (i % 4) as f32 * 0.5);
            p.rotation = Quat::from_rotation_x(i as f32 * 0.3);
            // Shifted, so that a kind does not always wear the same texture.
            p.texture = texture(i + 3);
            scene.prims.push(p);
            id += 1;
        }
        scene
    }

    /// `count` demo regions side by side in a row going east from grid (1000, 1000): the
    /// first is [`Scene::default_demo`], the others copies named "Demo Region 2", "Demo
    /// Region 3"... with their own region ids.
    pub fn demo_row(count: usize) -> Vec<Scene> {
        let base = Scene::default_demo();
        (0..count)
            .map(|i| {
                let mut s = base.clone();
                if i > 0 {
                    s.name = format!("Demo Region {}", i + 1);
                    s.region_id = Uuid::from_u128(s.region_id.as_u128() + i as u128);
                    s.grid = (s.grid.0 + i as u32, s.grid.1);
                }
                s
            })
            .collect()
    }

    /// The region's extent in grid units (256 m) along x and y.
    pub fn grid_extent(&self) -> (u32, u32) {
        let size = self.size();
        (size.width().div_ceil(256), size.height().div_ceil(256))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use opensim_regions::objects::PrimType;

    use super::*;

    #[test]
    fn kinds_decode_as_their_prim_type() {
        let want = [
            PrimType::Box,
            PrimType::Cylinder,
            PrimType::Prism,
            PrimType::Sphere,
            PrimType::Torus,
            PrimType::Tube,
            PrimType::Ring,
        ];
        for (kind, ty) in PrimKind::ALL.iter().zip(want) {
            assert_eq!(kind.shape().prim_type(None), ty, "{kind:?}");
        }
    }

    #[test]
    fn demo_has_unique_ids_varied_shapes_and_relief() {
        let s = Scene::default_demo();
        assert!(s.prims.len() >= 24);
        let ids: HashSet<u32> = s.prims.iter().map(|p| p.local_id).collect();
        assert_eq!(ids.len(), s.prims.len());
        assert!(!ids.contains(&0));
        let shapes: HashSet<_> = s.prims.iter().map(|p| p.shape).collect();
        assert_eq!(shapes.len(), PrimKind::ALL.len());
        let (min, max) = s
            .terrain
            .as_slice()
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &h| (a.min(h), b.max(h)));
        assert!(max - min > 20.0, "relief {min}..{max}");
        for p in &s.prims {
            assert!(p.position.z > s.ground_at(p.position.x, p.position.y));
            p.to_full_update().unwrap();
        }
        assert!(!s.motions.is_empty());
        assert!(s.motions.keys().all(|id| ids.contains(id)));
    }

    #[test]
    fn motions_start_at_the_scene_pose_and_move() {
        let mut p = Prim::new(1, PrimKind::Box, Vec3::new(110.0, 100.0, 30.0));
        p.rotation = Quat::from_rotation_x(0.5);
        let orbit = PrimMotion::Orbit {
            centre: Vec3::new(100.0, 100.0, 0.0),
            rate: std::f32::consts::FRAC_PI_2,
        };
        let at0 = orbit.pose(&p, 0.0);
        assert!((at0.position - p.position).length() < 1e-4);
        let later = orbit.pose(&p, 1.0);
        assert!((later.position - Vec3::new(100.0, 110.0, 30.0)).length() < 1e-3);
        assert!((later.velocity.length() - 10.0 * std::f32::consts::FRAC_PI_2).abs() < 1e-3);
        let spin = PrimMotion::Spin {
            axis: Vec3::Z,
            rate: 1.0,
        };
        let s = spin.pose(&p, 2.0);
        assert_eq!(s.position, p.position);
        assert!(s.rotation.angle_between(p.rotation) > 1.0);
    }

    #[test]
    fn demo_row_is_side_by_side_with_distinct_ids() {
        let row = Scene::demo_row(3);
        assert_eq!(row.len(), 3);
        assert_eq!(row[0].name, "Demo Region");
        assert_eq!(row[2].grid, (1002, 1000));
        let ids: HashSet<Uuid> = row.iter().map(|s| s.region_id).collect();
        assert_eq!(ids.len(), 3);
    }
}
