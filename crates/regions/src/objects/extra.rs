//! Extra parameters: flexible, light, sculpt/mesh, light image, mesh flags, render materials
//! and reflection probes (objects.md section 7).

use bytes::Bytes;
use glam::Vec3;
use uuid::Uuid;

use crate::error::{Error, Malformed, Misuse};
use crate::wire::{Cursor, put_vec3};

/// Extra parameter type codes.
pub mod kind {
    /// Flexible (flexi prim) parameters.
    pub const FLEXIBLE: u16 = 0x10;
    /// Point light.
    pub const LIGHT: u16 = 0x20;
    /// Sculpt map (also meshes, sculpt type 5).
    pub const SCULPT: u16 = 0x30;
    /// Projector (light image).
    pub const LIGHT_IMAGE: u16 = 0x40;
    /// Mesh (viewer-side type; OpenSim sends meshes as [`SCULPT`]).
    pub const MESH: u16 = 0x60;
    /// Extended mesh flags.
    pub const MESH_FLAGS: u16 = 0x70;
    /// PBR render materials per face.
    pub const RENDER_MATERIAL: u16 = 0x80;
    /// Reflection probe.
    pub const REFLECTION_PROBE: u16 = 0x90;
}

/// Sculpt type of a [`Sculpt`] whose asset is a mesh.
pub const SCULPT_TYPE_MESH: u8 = 5;

/// Flexible-prim physics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flexible {
    /// Simulation level of detail, 0..=3.
    pub softness: u8,
    /// Tension, 0..=10.
    pub tension: f32,
    /// Air friction, 0..=10.
    pub drag: f32,
    /// Gravity, -10..=10.
    pub gravity: f32,
    /// Wind sensitivity, 0..=10.
    pub wind: f32,
    /// Constant user force.
    pub user_force: Vec3,
}

/// Point light.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Light {
    /// Colour R, G, B bytes and the intensity byte (linear, not inverted).
    pub color: [u8; 4],
    /// Radius in metres.
    pub radius: f32,
    /// Cutoff.
    pub cutoff: f32,
    /// Falloff.
    pub falloff: f32,
}

impl Light {
    /// Intensity in 0..=1.
    pub fn intensity(&self) -> f32 {
        f32::from(self.color[3]) / 255.0
    }
}

/// Sculpt map or mesh asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sculpt {
    /// Sculpt texture, or mesh asset id.
    pub texture: Uuid,
    /// Type (low 3 bits: 1 sphere, 2 torus, 3 plane, 4 cylinder, 5 mesh) and flags
    /// (0x40 invert, 0x80 mirror).
    pub kind: u8,
}

impl Sculpt {
    /// Whether this is a mesh.
    pub fn is_mesh(&self) -> bool {
        self.kind & 0x07 == SCULPT_TYPE_MESH
    }
}

/// Projector.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LightImage {
    /// Projected texture.
    pub texture: Uuid,
    /// Field of view, focus, ambiance.
    pub params: Vec3,
}

/// Reflection probe.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReflectionProbe {
    /// Ambiance.
    pub ambiance: f32,
    /// Near clip distance.
    pub clip_distance: f32,
    /// Flags: 0x01 box volume, 0x02 dynamic, 0x04 mirror.
    pub flags: u8,
}

/// One extra parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraParam {
    /// [`kind::FLEXIBLE`].
    Flexible(Flexible),
    /// [`kind::LIGHT`].
    Light(Light),
    /// [`kind::SCULPT`].
    Sculpt(Sculpt),
    /// [`kind::LIGHT_IMAGE`].
    LightImage(LightImage),
    /// [`kind::MESH`].
    Mesh(Sculpt),
    /// [`kind::MESH_FLAGS`] (bit 0: animated mesh).
    MeshFlags(u32),
    /// [`kind::RENDER_MATERIAL`]: (face, material id) pairs.
    RenderMaterial(Vec<(u8, Uuid)>),
    /// [`kind::REFLECTION_PROBE`].
    ReflectionProbe(ReflectionProbe),
    /// Any other type, kept as bytes.
    Unknown {
        /// The type code.
        kind: u16,
        /// Its data.
        data: Bytes,
    },
}

impl ExtraParam {
    /// The type code.
    pub fn kind(&self) -> u16 {
        match self {
            ExtraParam::Flexible(_) => kind::FLEXIBLE,
            ExtraParam::Light(_) => kind::LIGHT,
            ExtraParam::Sculpt(_) => kind::SCULPT,
            ExtraParam::LightImage(_) => kind::LIGHT_IMAGE,
            ExtraParam::Mesh(_) => kind::MESH,
            ExtraParam::MeshFlags(_) => kind::MESH_FLAGS,
            ExtraParam::RenderMaterial(_) => kind::RENDER_MATERIAL,
            ExtraParam::ReflectionProbe(_) => kind::REFLECTION_PROBE,
            ExtraParam::Unknown { kind, .. } => *kind,
        }
    }

    fn decode(kind: u16, data: &Bytes) -> Result<Self, Error> {
        let need = |n: usize| {
            if data.len() < n {
                Err(Malformed::ExtraParam {
                    kind,
                    len: data.len(),
                    needed: n,
                })
            } else {
                Ok(())
            }
        };
        let mut c = Cursor::new(data, "extra parameter");
        Ok(match kind {
            kind::FLEXIBLE => {
                need(4)?;
                let b = c.array::<4>()?;
                let user_force = if c.remaining() >= 12 {
                    c.vec3()?
                } else {
                    Vec3::ZERO
                };
                ExtraParam::Flexible(Flexible {
                    softness: ((b[0] >> 6) & 2) | (b[1] >> 7),
                    tension: f32::from(b[0] & 0x7F) / 10.0,
                    drag: f32::from(b[1] & 0x7F) / 10.0,
                    gravity: f32::from(b[2]) / 10.0 - 10.0,
                    wind: f32::from(b[3]) / 10.0,
                    user_force,
                })
            }
            kind::LIGHT => {
                need(16)?;
                ExtraParam::Light(Light {
                    color: c.array()?,
                    radius: c.f32()?,
                    cutoff: c.f32()?,
                    falloff: c.f32()?,
                })
            }
            kind::SCULPT | kind::MESH => {
                need(17)?;
                let s = Sculpt {
                    texture: c.uuid()?,
                    kind: c.u8()?,
                };
                if kind == kind::SCULPT {
                    ExtraParam::Sculpt(s)
                } else {
                    ExtraParam::Mesh(s)
                }
            }
            kind::LIGHT_IMAGE => {
                need(28)?;
                ExtraParam::LightImage(LightImage {
                    texture: c.uuid()?,
                    params: c.vec3()?,
                })
            }
            kind::MESH_FLAGS => {
                need(4)?;
                ExtraParam::MeshFlags(c.u32()?)
            }
            kind::RENDER_MATERIAL => {
                need(1)?;
                let n = usize::from(c.u8()?);
                need(1 + 17 * n)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push((c.u8()?, c.uuid()?));
                }
                ExtraParam::RenderMaterial(v)
            }
            kind::REFLECTION_PROBE => {
                need(9)?;
                ExtraParam::ReflectionProbe(ReflectionProbe {
                    ambiance: c.f32()?,
                    clip_distance: c.f32()?,
                    flags: c.u8()?,
                })
            }
            _ => ExtraParam::Unknown {
                kind,
                data: data.clone(),
            },
        })
    }

    fn encode_data(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            ExtraParam::Flexible(f) => {
                // The viewer multiplies by 10.01 before truncating, so decoded values re-encode
                // to the same bytes.
                let byte = |x: f32, max: u8| {
                    let v = (x * 10.01).floor();
                    if v.is_nan() {
                        0
                    } else {
                        v.clamp(0.0, f32::from(max)) as u8
                    }
                };
                out.push(byte(f.tension, 127) | ((f.softness & 2) << 6));
                out.push(byte(f.drag, 127) | ((f.softness & 1) << 7));
                out.push(byte(f.gravity + 10.0, 255));
                out.push(byte(f.wind, 255));
                put_vec3(out, f.user_force);
            }
            ExtraParam::Light(l) => {
                out.extend_from_slice(&l.color);
                for v in [l.radius, l.cutoff, l.falloff] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            ExtraParam::Sculpt(s) | ExtraParam::Mesh(s) => {
                out.extend_from_slice(s.texture.as_bytes());
                out.push(s.kind);
            }
            ExtraParam::LightImage(l) => {
                out.extend_from_slice(l.texture.as_bytes());
                put_vec3(out, l.params);
            }
            ExtraParam::MeshFlags(f) => out.extend_from_slice(&f.to_le_bytes()),
            ExtraParam::RenderMaterial(v) => {
                if v.len() > 255 {
                    return Err(Misuse::TooManyBlocks { count: v.len() }.into());
                }
                out.push(v.len() as u8);
                for (face, id) in v {
                    out.push(*face);
                    out.extend_from_slice(id.as_bytes());
                }
            }
            ExtraParam::ReflectionProbe(p) => {
                out.extend_from_slice(&p.ambiance.to_le_bytes());
                out.extend_from_slice(&p.clip_distance.to_le_bytes());
                out.push(p.flags);
            }
            ExtraParam::Unknown { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

/// A set of extra parameters, in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtraParams(pub Vec<ExtraParam>);

impl ExtraParams {
    /// Decodes the wire form (`u8` count, then `u16` type, `u32` length and data per entry).
    /// Fewer than 2 bytes mean no parameters, as OpenSimulator sends them in `ObjectUpdate`.
    ///
    /// # Errors
    /// [`Malformed`] when an entry runs past the end or a known type is too short.
    pub fn decode(data: &Bytes) -> Result<Self, Error> {
        let mut params = Vec::new();
        if data.len() < 2 {
            return Ok(ExtraParams(params));
        }
        let mut c = Cursor::with_backing(data, "ExtraParams");
        let count = c.u8()?;
        for _ in 0..count {
            let kind = c.u16()?;
            let len = c.u32()? as usize;
            let body = c.bytes(len)?;
            params.push(ExtraParam::decode(kind, &body)?);
        }
        Ok(ExtraParams(params))
    }

    /// Length of the wire form at the start of `data` (for walking a compressed update).
    pub(crate) fn skip(c: &mut Cursor<'_>) -> Result<(), Error> {
        let count = c.u8()?;
        for _ in 0..count {
            c.u16()?;
            let len = c.u32()? as usize;
            c.take(len)?;
        }
        Ok(())
    }

    /// Appends the wire form (a single 0 byte when empty).
    ///
    /// # Errors
    /// [`Misuse::TooManyBlocks`] for more than 255 parameters or render materials.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.0.len() > 255 {
            return Err(Misuse::TooManyBlocks {
                count: self.0.len(),
            }
            .into());
        }
        out.push(self.0.len() as u8);
        for p in &self.0 {
            out.extend_from_slice(&p.kind().to_le_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            p.encode_data(out)?;
            let len = (out.len() - len_at - 4) as u32;
            out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Ok(())
    }

    /// The wire form as a new buffer.
    ///
    /// # Errors
    /// As [`ExtraParams::encode`].
    pub fn to_bytes(&self) -> Result<Bytes, Error> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v.into())
    }

    /// The flexible parameters.
    pub fn flexible(&self) -> Option<&Flexible> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::Flexible(f) => Some(f),
            _ => None,
        })
    }

    /// The light.
    pub fn light(&self) -> Option<&Light> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::Light(l) => Some(l),
            _ => None,
        })
    }

    /// The sculpt or mesh parameter (sculpt first).
    pub fn sculpt(&self) -> Option<&Sculpt> {
        self.0
            .iter()
            .find_map(|p| match p {
                ExtraParam::Sculpt(s) => Some(s),
                _ => None,
            })
            .or_else(|| {
                self.0.iter().find_map(|p| match p {
                    ExtraParam::Mesh(s) => Some(s),
                    _ => None,
                })
            })
    }

    /// The projector.
    pub fn light_image(&self) -> Option<&LightImage> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::LightImage(l) => Some(l),
            _ => None,
        })
    }

    /// The extended mesh flags.
    pub fn mesh_flags(&self) -> Option<u32> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::MeshFlags(f) => Some(*f),
            _ => None,
        })
    }

    /// The PBR render materials.
    pub fn render_materials(&self) -> Option<&[(u8, Uuid)]> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::RenderMaterial(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The reflection probe.
    pub fn reflection_probe(&self) -> Option<&ReflectionProbe> {
        self.0.iter().find_map(|p| match p {
            ExtraParam::ReflectionProbe(r) => Some(r),
            _ => None,
        })
    }

    /// The sculpt type byte when a sculpt/mesh parameter names a texture (for
    /// [`PrimShape::prim_type`](super::PrimShape::prim_type)).
    pub fn sculpt_type(&self) -> Option<u8> {
        self.sculpt()
            .filter(|s| !s.texture.is_nil())
            .map(|s| s.kind)
    }
}
