//! Where an object is and how it moves: the `ObjectUpdate` motion blob (76/60/48/32/16 bytes)
//! and the `ImprovedTerseObjectUpdate` data block, with their quantisation.

use bytes::Bytes;
use glam::{Quat, Vec3, Vec4};
use opensim_messages::improved_terse_object_update;

use crate::error::{Error, Malformed};
use crate::wire::{Cursor, check_len, put_vec3, put_vec4, quat_xyz};

/// Range of terse-update velocities: [-128, 128] m/s.
pub const TERSE_VELOCITY_RANGE: f32 = 128.0;
/// Range of terse-update accelerations: [-64, 64] m/s².
pub const TERSE_ACCELERATION_RANGE: f32 = 64.0;
/// Range of terse-update angular velocities: [-64, 64] rad/s.
pub const TERSE_ANGULAR_VELOCITY_RANGE: f32 = 64.0;
/// Length of a prim's terse data block.
pub const TERSE_PRIM_LEN: usize = 44;
/// Length of an avatar's terse data block (with the collision plane).
pub const TERSE_AVATAR_LEN: usize = 60;
/// The collision plane OpenSim sends when it knows none.
pub const DEFAULT_COLLISION_PLANE: Vec4 = Vec4::new(0.0, 0.0, 0.0, 1.0);

/// A decoded U16 in [`lo`, `hi`], snapped to zero within one step (as libopenmetaverse does,
/// so that a sender's "zero" never comes out as a tiny drift).
pub fn u16_to_float(u: u16, lo: f32, hi: f32) -> f32 {
    let step = (hi - lo) / 65535.0;
    let v = f32::from(u) * step + lo;
    if v.abs() < step { 0.0 } else { v }
}

/// `v` clamped to [`lo`, `hi`] and quantised to a U16 (NaN becomes `lo`).
pub fn float_to_u16(v: f32, lo: f32, hi: f32) -> u16 {
    let v = if v.is_nan() { lo } else { v.clamp(lo, hi) };
    ((v - lo) / (hi - lo) * 65535.0).round() as u16
}

/// A decoded U8 in [`lo`, `hi`], snapped to zero within one step.
pub fn u8_to_float(u: u8, lo: f32, hi: f32) -> f32 {
    let step = (hi - lo) / 255.0;
    let v = f32::from(u) * step + lo;
    if v.abs() < step { 0.0 } else { v }
}

/// `v` clamped to [`lo`, `hi`] and quantised to a U8 (NaN becomes `lo`).
pub fn float_to_u8(v: f32, lo: f32, hi: f32) -> u8 {
    let v = if v.is_nan() { lo } else { v.clamp(lo, hi) };
    ((v - lo) / (hi - lo) * 255.0).round() as u8
}

const TERSE_VELOCITY_STEP: f32 = 2.0 * TERSE_VELOCITY_RANGE / 65535.0;
const TERSE_ACCELERATION_STEP: f32 = 2.0 * TERSE_ACCELERATION_RANGE / 65535.0;
const TERSE_ANGULAR_VELOCITY_STEP: f32 = 2.0 * TERSE_ANGULAR_VELOCITY_RANGE / 65535.0;
const UNIT_STEP: f32 = 2.0 / 65535.0;

/// [`u16_to_float`] over [-`range`, `range`] with the step precomputed (no division on the
/// terse path).
#[inline]
fn dequantise(u: u16, range: f32, step: f32) -> f32 {
    let v = f32::from(u) * step - range;
    if v.abs() < step { 0.0 } else { v }
}

/// The terse encoder's quantiser: like [`float_to_u16`] but truncating, as OpenSimulator
/// does (zero becomes 32767 and 1.0 in [-1, 1] becomes 65535, byte for byte).
fn terse_u16(v: f32, lo: f32, hi: f32) -> u16 {
    let v = if v.is_nan() { lo } else { v.clamp(lo, hi) };
    ((v - lo) / (hi - lo) * 65535.0) as u16
}

/// `v` scaled down so its largest component fits in [-`range`, `range`] (direction kept, as
/// OpenSimulator clamps terse velocities).
pub fn clamp_direction(v: Vec3, range: f32) -> Vec3 {
    let m = v.abs().max_element();
    if m > range && m.is_finite() {
        v * (range / m)
    } else {
        v
    }
}

/// Position, velocity, acceleration, rotation and angular velocity of an object.
///
/// Positions are region-local, or relative to the parent when the object has one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Motion {
    /// Avatar foot collision plane (normal and distance); present for avatars.
    pub collision_plane: Option<Vec4>,
    /// Position in metres.
    pub position: Vec3,
    /// Velocity in m/s.
    pub velocity: Vec3,
    /// Acceleration in m/s².
    pub acceleration: Vec3,
    /// Rotation.
    pub rotation: Quat,
    /// Angular velocity in rad/s.
    pub angular_velocity: Vec3,
}

/// The layouts of the `ObjectUpdate` motion blob, named after their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MotionLayout {
    /// 76 bytes: collision plane and full floats (OpenSim avatars).
    Full76,
    /// 60 bytes: full floats (OpenSim prims).
    Full60,
    /// 48 bytes: collision plane and U16-quantised values.
    Quantized48,
    /// 32 bytes: U16-quantised values.
    Quantized32,
    /// 16 bytes: U8-quantised values.
    Bytes16,
}

impl MotionLayout {
    /// The blob length.
    pub const fn byte_len(self) -> usize {
        match self {
            MotionLayout::Full76 => 76,
            MotionLayout::Full60 => 60,
            MotionLayout::Quantized48 => 48,
            MotionLayout::Quantized32 => 32,
            MotionLayout::Bytes16 => 16,
        }
    }

    /// Whether the layout starts with the collision plane.
    pub const fn has_collision_plane(self) -> bool {
        matches!(self, MotionLayout::Full76 | MotionLayout::Quantized48)
    }

    /// The layout for a blob length, including the viewer's reserved longer forms
    /// (140/124/80/64), whose known prefix is parsed and the rest ignored.
    pub const fn from_len(len: usize) -> Option<Self> {
        Some(match len {
            76 | 140 => MotionLayout::Full76,
            60 | 124 => MotionLayout::Full60,
            48 | 80 => MotionLayout::Quantized48,
            32 | 64 => MotionLayout::Quantized32,
            16 => MotionLayout::Bytes16,
            _ => return None,
        })
    }
}

/// Ranges of the U16 motion layouts for a region `width` metres wide.
struct Ranges {
    xy: (f32, f32),
    z: (f32, f32),
    w: f32,
}

impl Ranges {
    fn new(width: f32) -> Self {
        Ranges {
            xy: (-0.5 * width, 1.5 * width),
            z: (-256.0, 768.0),
            w: width,
        }
    }
}

fn quat_from_parts(x: f32, y: f32, z: f32, w: f32) -> Quat {
    let q = Quat::from_xyzw(x, y, z, w);
    let len = q.length();
    if len > 1e-6 && len.is_finite() {
        q * len.recip()
    } else {
        Quat::IDENTITY
    }
}

fn unit_quat(q: Quat) -> Quat {
    let len = q.length();
    if len > 1e-6 && len.is_finite() {
        q / len
    } else {
        Quat::IDENTITY
    }
}

impl Motion {
    /// Decodes a motion blob; `region_width` (metres) scales the U16 layouts' ranges.
    ///
    /// # Errors
    /// [`Malformed::MotionLength`] for a length with no known layout.
    pub fn decode(blob: &[u8], region_width: f32) -> Result<Self, Error> {
        let layout = MotionLayout::from_len(blob.len())
            .ok_or(Malformed::MotionLength { len: blob.len() })?;
        let mut c = Cursor::new(blob, "motion blob");
        let collision_plane = if layout.has_collision_plane() {
            Some(c.vec4()?)
        } else {
            None
        };
        let mut m = Motion {
            collision_plane,
            ..Motion::default()
        };
        match layout {
            MotionLayout::Full76 | MotionLayout::Full60 => {
                m.position = c.vec3()?;
                m.velocity = c.vec3()?;
                m.acceleration = c.vec3()?;
                m.rotation = c.quat3()?;
                m.angular_velocity = c.vec3()?;
            }
            MotionLayout::Quantized48 | MotionLayout::Quantized32 => {
                let r = Ranges::new(region_width);
                let mut q =
                    |lo: f32, hi: f32| -> Result<f32, Error> { Ok(u16_to_float(c.u16()?, lo, hi)) };
                m.position = Vec3::new(q(r.xy.0, r.xy.1)?, q(r.xy.0, r.xy.1)?, q(r.z.0, r.z.1)?);
                m.velocity = Vec3::new(q(-r.w, r.w)?, q(-r.w, r.w)?, q(-r.w, r.w)?);
                m.acceleration = Vec3::new(q(-r.w, r.w)?, q(-r.w, r.w)?, q(-r.w, r.w)?);
                let (x, y, z, w) = (q(-1.0, 1.0)?, q(-1.0, 1.0)?, q(-1.0, 1.0)?, q(-1.0, 1.0)?);
                m.rotation = quat_from_parts(x, y, z, w);
                m.angular_velocity = Vec3::new(q(-r.w, r.w)?, q(-r.w, r.w)?, q(-r.w, r.w)?);
            }
            MotionLayout::Bytes16 => {
                let b: [u8; 16] = c.array()?;
                let v = |i: usize| {
                    Vec3::new(
                        u8_to_float(b[i], -256.0, 256.0),
                        u8_to_float(b[i + 1], -256.0, 256.0),
                        u8_to_float(b[i + 2], -256.0, 256.0),
                    )
                };
                m.position = v(0);
                m.velocity = v(3);
                m.acceleration = v(6);
                let r = |i: usize| u8_to_float(b[i], -1.0, 1.0);
                m.rotation = quat_from_parts(r(9), r(10), r(11), r(12));
                m.angular_velocity = v(13);
            }
        }
        Ok(m)
    }

    /// The layout OpenSimulator uses for this motion: 76 bytes when it has a collision plane
    /// (avatars), 60 otherwise.
    pub fn default_layout(&self) -> MotionLayout {
        if self.collision_plane.is_some() {
            MotionLayout::Full76
        } else {
            MotionLayout::Full60
        }
    }

    /// Appends the blob in `layout`; layouts with a collision plane write
    /// [`DEFAULT_COLLISION_PLANE`] when there is none. Quantised layouts clamp to their ranges.
    pub fn encode(&self, layout: MotionLayout, region_width: f32, out: &mut Vec<u8>) {
        if layout.has_collision_plane() {
            put_vec4(out, self.collision_plane.unwrap_or(DEFAULT_COLLISION_PLANE));
        }
        match layout {
            MotionLayout::Full76 | MotionLayout::Full60 => {
                put_vec3(out, self.position);
                put_vec3(out, self.velocity);
                put_vec3(out, self.acceleration);
                // Not renormalised, so a decoded rotation re-encodes to the same bytes.
                put_vec3(out, quat_xyz(self.rotation));
                put_vec3(out, self.angular_velocity);
            }
            MotionLayout::Quantized48 | MotionLayout::Quantized32 => {
                let r = Ranges::new(region_width);
                let mut q = |v: f32, lo: f32, hi: f32| {
                    out.extend_from_slice(&float_to_u16(v, lo, hi).to_le_bytes())
                };
                let p = self.position;
                q(p.x, r.xy.0, r.xy.1);
                q(p.y, r.xy.0, r.xy.1);
                q(p.z, r.z.0, r.z.1);
                for v in [self.velocity, self.acceleration] {
                    for c in v.to_array() {
                        q(c, -r.w, r.w);
                    }
                }
                for c in unit_quat(self.rotation).to_array() {
                    q(c, -1.0, 1.0);
                }
                for c in self.angular_velocity.to_array() {
                    q(c, -r.w, r.w);
                }
            }
            MotionLayout::Bytes16 => {
                for v in [self.position, self.velocity, self.acceleration] {
                    for c in v.to_array() {
                        out.push(float_to_u8(c, -256.0, 256.0));
                    }
                }
                for c in unit_quat(self.rotation).to_array() {
                    out.push(float_to_u8(c, -1.0, 1.0));
                }
                for c in self.angular_velocity.to_array() {
                    out.push(float_to_u8(c, -256.0, 256.0));
                }
            }
        }
    }

    /// The blob in `layout` as a new buffer.
    pub fn to_blob(&self, layout: MotionLayout, region_width: f32) -> Bytes {
        let mut v = Vec::with_capacity(layout.byte_len());
        self.encode(layout, region_width, &mut v);
        Bytes::from(v)
    }
}

/// One `ImprovedTerseObjectUpdate.ObjectData` block, decoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TerseUpdate {
    /// The object's local id.
    pub local_id: u32,
    /// `State` (attachment point, nibble-swapped, for attachments).
    pub state: u8,
    /// The motion; `collision_plane` is `Some` exactly for avatars.
    pub motion: Motion,
    /// A TextureEntry, when the simulator included one (OpenSim: only on request).
    pub texture_entry: Bytes,
}

impl TerseUpdate {
    /// Whether the block is an avatar's (it carries a collision plane).
    pub fn is_avatar(&self) -> bool {
        self.motion.collision_plane.is_some()
    }

    /// Decodes a block from its `Data` field and its `TextureEntry` field (empty, or a u32
    /// length then the TextureEntry). Bytes after the known layout are ignored. The
    /// TextureEntry is sliced without copying.
    ///
    /// # Errors
    /// [`Malformed`] when `data` is shorter than its layout or the TextureEntry length is wrong.
    pub fn decode(data: &[u8], texture_entry: &Bytes) -> Result<Self, Error> {
        let mut u = TerseUpdate::default();
        u.decode_motion(data)?;
        u.texture_entry = terse_texture_entry(texture_entry)?;
        Ok(u)
    }

    /// Decodes the `Data` field only (no allocation), into `self`.
    pub(crate) fn decode_motion(&mut self, data: &[u8]) -> Result<(), Error> {
        let needed = match data.get(5) {
            Some(&0) => TERSE_PRIM_LEN,
            Some(_) => TERSE_AVATAR_LEN,
            None => TERSE_PRIM_LEN,
        };
        if data.len() < needed {
            return Err(Malformed::TerseLength {
                len: data.len(),
                needed,
            }
            .into());
        }
        // The length is checked above, so fixed offsets cannot run past the end.
        let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
        let f32_at =
            |i: usize| f32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        self.local_id = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        self.state = data[4];
        let m = &mut self.motion;
        let mut at = 6;
        m.collision_plane = if needed == TERSE_AVATAR_LEN {
            at += 16;
            Some(Vec4::new(f32_at(6), f32_at(10), f32_at(14), f32_at(18)))
        } else {
            None
        };
        m.position = Vec3::new(f32_at(at), f32_at(at + 4), f32_at(at + 8));
        at += 12;
        let v3 = |i: usize, range: f32, step: f32| {
            Vec3::new(
                dequantise(u16_at(i), range, step),
                dequantise(u16_at(i + 2), range, step),
                dequantise(u16_at(i + 4), range, step),
            )
        };
        m.velocity = v3(at, TERSE_VELOCITY_RANGE, TERSE_VELOCITY_STEP);
        m.acceleration = v3(at + 6, TERSE_ACCELERATION_RANGE, TERSE_ACCELERATION_STEP);
        let r = |i: usize| dequantise(u16_at(i), 1.0, UNIT_STEP);
        m.rotation = quat_from_parts(r(at + 12), r(at + 14), r(at + 16), r(at + 18));
        m.angular_velocity = v3(
            at + 20,
            TERSE_ANGULAR_VELOCITY_RANGE,
            TERSE_ANGULAR_VELOCITY_STEP,
        );
        Ok(())
    }

    /// Appends the `Data` field (44 bytes, or 60 for avatars). Values are quantised as
    /// OpenSimulator does (truncating); vectors beyond their ranges are scaled down with their
    /// direction kept.
    pub fn encode_data(&self, out: &mut Vec<u8>) {
        let m = &self.motion;
        out.extend_from_slice(&self.local_id.to_le_bytes());
        out.push(self.state);
        out.push(u8::from(m.collision_plane.is_some()));
        if let Some(p) = m.collision_plane {
            put_vec4(out, p);
        }
        put_vec3(out, m.position);
        for (v, range) in [
            (m.velocity, TERSE_VELOCITY_RANGE),
            (m.acceleration, TERSE_ACCELERATION_RANGE),
        ] {
            for c in clamp_direction(v, range).to_array() {
                out.extend_from_slice(&terse_u16(c, -range, range).to_le_bytes());
            }
        }
        let q = unit_quat(m.rotation);
        for c in q.to_array() {
            out.extend_from_slice(&terse_u16(c, -1.0, 1.0).to_le_bytes());
        }
        let range = TERSE_ANGULAR_VELOCITY_RANGE;
        for c in clamp_direction(m.angular_velocity, range).to_array() {
            out.extend_from_slice(&terse_u16(c, -range, range).to_le_bytes());
        }
    }

    /// The message block.
    ///
    /// # Errors
    /// [`Misuse::FieldTooLong`](crate::error::Misuse::FieldTooLong) for a TextureEntry over
    /// 65531 bytes.
    pub fn to_block(&self) -> Result<improved_terse_object_update::ObjectData, Error> {
        let mut data = Vec::with_capacity(TERSE_AVATAR_LEN);
        self.encode_data(&mut data);
        let texture_entry = if self.texture_entry.is_empty() {
            Bytes::new()
        } else {
            check_len("terse TextureEntry", self.texture_entry.len() + 4, 65535)?;
            let mut te = Vec::with_capacity(self.texture_entry.len() + 4);
            te.extend_from_slice(&(self.texture_entry.len() as u32).to_le_bytes());
            te.extend_from_slice(&self.texture_entry);
            Bytes::from(te)
        };
        Ok(improved_terse_object_update::ObjectData {
            data: Bytes::from(data),
            texture_entry,
        })
    }
}

/// The TextureEntry inside a terse block's `TextureEntry` field.
pub(crate) fn terse_texture_entry(field: &Bytes) -> Result<Bytes, Error> {
    if field.is_empty() {
        return Ok(Bytes::new());
    }
    let mut c = Cursor::with_backing(field, "terse TextureEntry");
    let len = c.u32()? as usize;
    c.bytes(len)
}
