//! Prim shape (volume) parameters: the 23 quantised wire bytes and their real values
//! (objects.md section 4).

use crate::error::Error;
use crate::wire::Cursor;

/// Quantum of the cut and hollow fields.
pub const CUT_QUANTA: f32 = 0.00002;
/// Quantum of path scale, shear, twist, radius offset, taper and skew.
pub const SCALE_QUANTA: f32 = 0.01;
/// Quantum of path revolutions.
pub const REV_QUANTA: f32 = 0.015;

/// `PathCurve` values.
pub mod path_curve {
    /// Linear extrusion (box, cylinder, prism).
    pub const LINE: u8 = 0x10;
    /// Circular path (sphere, torus, tube, ring).
    pub const CIRCLE: u8 = 0x20;
    /// Alternate circular path.
    pub const CIRCLE2: u8 = 0x30;
    /// Test path.
    pub const TEST: u8 = 0x40;
    /// Flexible (flexi prims).
    pub const FLEXIBLE: u8 = 0x80;
}

/// `ProfileCurve` low-nibble values.
pub mod profile_curve {
    /// Circle.
    pub const CIRCLE: u8 = 0;
    /// Square.
    pub const SQUARE: u8 = 1;
    /// Isosceles triangle.
    pub const ISO_TRIANGLE: u8 = 2;
    /// Equilateral triangle.
    pub const EQUAL_TRIANGLE: u8 = 3;
    /// Right triangle.
    pub const RIGHT_TRIANGLE: u8 = 4;
    /// Half circle.
    pub const HALF_CIRCLE: u8 = 5;
}

/// The shape fields as they travel (template types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PrimShape {
    /// `PathCurve` (see [`path_curve`]).
    pub path_curve: u8,
    /// `ProfileCurve`: low nibble profile (see [`profile_curve`]), high nibble hole shape.
    pub profile_curve: u8,
    /// `PathBegin`.
    pub path_begin: u16,
    /// `PathEnd`.
    pub path_end: u16,
    /// `PathScaleX`.
    pub path_scale_x: u8,
    /// `PathScaleY`.
    pub path_scale_y: u8,
    /// `PathShearX` (a signed byte sent as U8).
    pub path_shear_x: u8,
    /// `PathShearY` (a signed byte sent as U8).
    pub path_shear_y: u8,
    /// `PathTwist`.
    pub path_twist: i8,
    /// `PathTwistBegin`.
    pub path_twist_begin: i8,
    /// `PathRadiusOffset`.
    pub path_radius_offset: i8,
    /// `PathTaperX`.
    pub path_taper_x: i8,
    /// `PathTaperY`.
    pub path_taper_y: i8,
    /// `PathRevolutions`.
    pub path_revolutions: u8,
    /// `PathSkew`.
    pub path_skew: i8,
    /// `ProfileBegin`.
    pub profile_begin: u16,
    /// `ProfileEnd`.
    pub profile_end: u16,
    /// `ProfileHollow`.
    pub profile_hollow: u16,
}

/// The shape in real numbers (fractions of the path or profile, scale factors, turns).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ShapeParams {
    /// `PathCurve` code.
    pub path_curve: u8,
    /// `ProfileCurve` code (profile and hole shape).
    pub profile_curve: u8,
    /// Path cut start, 0 = start.
    pub path_begin: f32,
    /// Path cut end, 1 = uncut.
    pub path_end: f32,
    /// Top size X (1 = full; for circular paths the hole size).
    pub path_scale_x: f32,
    /// Top size Y.
    pub path_scale_y: f32,
    /// Top shear X.
    pub path_shear_x: f32,
    /// Top shear Y.
    pub path_shear_y: f32,
    /// Twist at the path end, in turns.
    pub path_twist: f32,
    /// Twist at the path start, in turns.
    pub path_twist_begin: f32,
    /// Radius offset.
    pub path_radius_offset: f32,
    /// Taper X.
    pub path_taper_x: f32,
    /// Taper Y.
    pub path_taper_y: f32,
    /// Revolutions (1 and up).
    pub path_revolutions: f32,
    /// Skew.
    pub path_skew: f32,
    /// Profile cut start.
    pub profile_begin: f32,
    /// Profile cut end (1 = uncut).
    pub profile_end: f32,
    /// Hollow fraction.
    pub profile_hollow: f32,
}

/// Shape family, classified as libopenmetaverse does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimType {
    /// Box.
    Box,
    /// Cylinder.
    Cylinder,
    /// Prism.
    Prism,
    /// Sphere.
    Sphere,
    /// Torus.
    Torus,
    /// Tube.
    Tube,
    /// Ring.
    Ring,
    /// Sculpted prim.
    Sculpt,
    /// Mesh.
    Mesh,
    /// None of the above.
    Unknown,
}

fn cut(v: u16) -> f32 {
    f32::from(v) * CUT_QUANTA
}

fn uncut(x: f32) -> u16 {
    let q = (x / CUT_QUANTA).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(0.0, 65535.0) as u16
    }
}

fn end(v: u16) -> f32 {
    (50000.0 - f32::from(v)) * CUT_QUANTA
}

fn unend(x: f32) -> u16 {
    let q = 50000.0 - (x / CUT_QUANTA).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(0.0, 65535.0) as u16
    }
}

fn s8(v: i8) -> f32 {
    f32::from(v) * SCALE_QUANTA
}

fn uns8(x: f32) -> i8 {
    let q = (x / SCALE_QUANTA).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(-128.0, 127.0) as i8
    }
}

impl PrimShape {
    /// The real values.
    pub fn to_params(&self) -> ShapeParams {
        ShapeParams {
            path_curve: self.path_curve,
            profile_curve: self.profile_curve,
            path_begin: cut(self.path_begin),
            path_end: end(self.path_end),
            path_scale_x: (200.0 - f32::from(self.path_scale_x)) * SCALE_QUANTA,
            path_scale_y: (200.0 - f32::from(self.path_scale_y)) * SCALE_QUANTA,
            path_shear_x: s8(self.path_shear_x as i8),
            path_shear_y: s8(self.path_shear_y as i8),
            path_twist: s8(self.path_twist),
            path_twist_begin: s8(self.path_twist_begin),
            path_radius_offset: s8(self.path_radius_offset),
            path_taper_x: s8(self.path_taper_x),
            path_taper_y: s8(self.path_taper_y),
            path_revolutions: 1.0 + f32::from(self.path_revolutions) * REV_QUANTA,
            path_skew: s8(self.path_skew),
            profile_begin: cut(self.profile_begin),
            profile_end: end(self.profile_end),
            profile_hollow: cut(self.profile_hollow),
        }
    }

    /// The nearest wire values of real ones (clamped to what the wire types hold).
    pub fn from_params(p: &ShapeParams) -> Self {
        let scale = |x: f32| {
            let q = 200.0 - (x / SCALE_QUANTA).round();
            if q.is_nan() {
                0
            } else {
                q.clamp(0.0, 255.0) as u8
            }
        };
        let rev = {
            let q = ((p.path_revolutions - 1.0) / REV_QUANTA).round();
            if q.is_nan() {
                0
            } else {
                q.clamp(0.0, 255.0) as u8
            }
        };
        PrimShape {
            path_curve: p.path_curve,
            profile_curve: p.profile_curve,
            path_begin: uncut(p.path_begin),
            path_end: unend(p.path_end),
            path_scale_x: scale(p.path_scale_x),
            path_scale_y: scale(p.path_scale_y),
            path_shear_x: uns8(p.path_shear_x) as u8,
            path_shear_y: uns8(p.path_shear_y) as u8,
            path_twist: uns8(p.path_twist),
            path_twist_begin: uns8(p.path_twist_begin),
            path_radius_offset: uns8(p.path_radius_offset),
            path_taper_x: uns8(p.path_taper_x),
            path_taper_y: uns8(p.path_taper_y),
            path_revolutions: rev,
            path_skew: uns8(p.path_skew),
            profile_begin: uncut(p.profile_begin),
            profile_end: unend(p.profile_end),
            profile_hollow: uncut(p.profile_hollow),
        }
    }

    /// The 23-byte form that closes an `ObjectUpdateCompressed` entry.
    pub(crate) fn decode_compressed(c: &mut Cursor<'_>) -> Result<Self, Error> {
        Ok(PrimShape {
            path_curve: c.u8()?,
            path_begin: c.u16()?,
            path_end: c.u16()?,
            path_scale_x: c.u8()?,
            path_scale_y: c.u8()?,
            path_shear_x: c.u8()?,
            path_shear_y: c.u8()?,
            path_twist: c.i8()?,
            path_twist_begin: c.i8()?,
            path_radius_offset: c.i8()?,
            path_taper_x: c.i8()?,
            path_taper_y: c.i8()?,
            path_revolutions: c.u8()?,
            path_skew: c.i8()?,
            profile_curve: c.u8()?,
            profile_begin: c.u16()?,
            profile_end: c.u16()?,
            profile_hollow: c.u16()?,
        })
    }

    /// Appends the 23-byte compressed-update form.
    pub(crate) fn encode_compressed(&self, out: &mut Vec<u8>) {
        out.push(self.path_curve);
        out.extend_from_slice(&self.path_begin.to_le_bytes());
        out.extend_from_slice(&self.path_end.to_le_bytes());
        out.extend_from_slice(&[
            self.path_scale_x,
            self.path_scale_y,
            self.path_shear_x,
            self.path_shear_y,
            self.path_twist as u8,
            self.path_twist_begin as u8,
            self.path_radius_offset as u8,
            self.path_taper_x as u8,
            self.path_taper_y as u8,
            self.path_revolutions,
            self.path_skew as u8,
            self.profile_curve,
        ]);
        out.extend_from_slice(&self.profile_begin.to_le_bytes());
        out.extend_from_slice(&self.profile_end.to_le_bytes());
        out.extend_from_slice(&self.profile_hollow.to_le_bytes());
    }

    /// The shape family; `sculpt_type` is the sculpt/mesh extra parameter's type byte, if any
    /// (with a non-nil texture).
    pub fn prim_type(&self, sculpt_type: Option<u8>) -> PrimType {
        if let Some(t) = sculpt_type {
            return if t & 0x07 == 5 {
                PrimType::Mesh
            } else {
                PrimType::Sculpt
            };
        }
        let profile = self.profile_curve & 0x0F;
        let scale_y = (200.0 - f32::from(self.path_scale_y)) * SCALE_QUANTA;
        match self.path_curve {
            path_curve::LINE | path_curve::FLEXIBLE => match profile {
                profile_curve::CIRCLE => PrimType::Cylinder,
                profile_curve::SQUARE => PrimType::Box,
                2..=4 => PrimType::Prism,
                _ => PrimType::Unknown,
            },
            path_curve::CIRCLE => match profile {
                profile_curve::CIRCLE if scale_y > 0.75 => PrimType::Sphere,
                profile_curve::CIRCLE => PrimType::Torus,
                profile_curve::HALF_CIRCLE => PrimType::Sphere,
                profile_curve::EQUAL_TRIANGLE => PrimType::Ring,
                profile_curve::SQUARE if scale_y <= 0.75 => PrimType::Tube,
                _ => PrimType::Unknown,
            },
            path_curve::CIRCLE2 if profile == profile_curve::CIRCLE => PrimType::Sphere,
            _ => PrimType::Unknown,
        }
    }
}
