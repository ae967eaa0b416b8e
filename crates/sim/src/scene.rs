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

/// OpenSim's default plywood texture.
pub const PLYWOOD: Uuid = Uuid::from_u128(0x89556747_24cb_43ed_920b_47caed15465f);

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
    /// Textures (J2C bytes) served over GetTexture / ViewerAsset.
    pub textures: HashMap<Uuid, Bytes>,
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
    /// every kind in rings and rows on the ground.
    pub fn default_demo() -> Self {
        let mut scene = Scene::flat("Demo Region", RegionSize::LEGACY);
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
            scene.prims.push(p);
            id += 1;
        }
        scene
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
    }
}
