//! TextureEntry: the per-face surface data of prims and avatars (objects.md section 1).
//!
//! The wire form is eleven sections (texture id, colour, repeat U, repeat V, offset U,
//! offset V, rotation, material, media, glow, material id); each holds a default value and
//! exceptions naming faces with a 7-bits-per-byte bitfield. [`TextureEntry`] keeps the default
//! face and the faces that were named; fields keep their wire quantisation so that decoding and
//! encoding are exact, with float accessors on [`TextureFace`].

use std::f32::consts::TAU;

use uuid::Uuid;

use crate::error::{Error, Malformed, Misuse};

/// Most faces a TextureEntry can address (also the avatar texture count).
pub const MAX_FACES: usize = 45;

/// Plywood, the texture of a new prim.
pub const PLYWOOD: Uuid = Uuid::from_u128(0x89556747_24cb_43ed_920b_47caed15465f);

/// Wire sizes of the eleven sections' values.
const SECTION_SIZES: [usize; 11] = [16, 4, 4, 4, 2, 2, 2, 1, 1, 1, 16];

/// Bump map bits of [`TextureFace::material`].
pub const MATERIAL_BUMP_MASK: u8 = 0x1F;
/// Fullbright bit of [`TextureFace::material`].
pub const MATERIAL_FULLBRIGHT: u8 = 0x20;
/// Shininess bits of [`TextureFace::material`].
pub const MATERIAL_SHINY_MASK: u8 = 0xC0;
/// Media bit of [`TextureFace::media`].
pub const MEDIA_FLAG: u8 = 0x01;
/// Texture mapping bits of [`TextureFace::media`].
pub const MEDIA_TEXGEN_MASK: u8 = 0x06;

/// The surface of one face, in wire quantisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextureFace {
    /// Texture asset id.
    pub texture_id: Uuid,
    /// Colour as R, G, B, A bytes (already un-inverted: 255 = full).
    pub color: [u8; 4],
    /// Texture repeats along U.
    pub repeat_u: f32,
    /// Texture repeats along V.
    pub repeat_v: f32,
    /// Offset along U, `s / 32767` (see [`TextureFace::offset_u`]).
    pub offset_u: i16,
    /// Offset along V, `s / 32767`.
    pub offset_v: i16,
    /// Rotation, `s / 32768` of a full turn (see [`TextureFace::rotation`]).
    pub rotation: i16,
    /// Bump (bits 0-4), fullbright (bit 5) and shininess (bits 6-7).
    pub material: u8,
    /// Media flag (bit 0) and texture mapping (bits 1-2).
    pub media: u8,
    /// Glow, `b / 255`.
    pub glow: u8,
    /// Legacy material id (zero: none).
    pub material_id: Uuid,
}

impl Default for TextureFace {
    /// Nil texture, opaque white, one repeat, everything else zero.
    fn default() -> Self {
        TextureFace {
            texture_id: Uuid::nil(),
            color: [255; 4],
            repeat_u: 1.0,
            repeat_v: 1.0,
            offset_u: 0,
            offset_v: 0,
            rotation: 0,
            material: 0,
            media: 0,
            glow: 0,
            material_id: Uuid::nil(),
        }
    }
}

fn offset_to_s16(x: f32) -> i16 {
    let x = if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) };
    (x * 32767.0).round() as i16
}

impl TextureFace {
    /// Colour as floats in 0..=1 (R, G, B, A).
    pub fn color_f32(&self) -> [f32; 4] {
        self.color.map(|c| f32::from(c) / 255.0)
    }

    /// Sets the colour from floats in 0..=1.
    pub fn set_color_f32(&mut self, c: [f32; 4]) {
        self.color = c.map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8);
    }

    /// Offset along U in -1..=1.
    pub fn offset_u(&self) -> f32 {
        f32::from(self.offset_u) / 32767.0
    }

    /// Offset along V in -1..=1.
    pub fn offset_v(&self) -> f32 {
        f32::from(self.offset_v) / 32767.0
    }

    /// Sets both offsets (clamped to -1..=1).
    pub fn set_offsets(&mut self, u: f32, v: f32) {
        self.offset_u = offset_to_s16(u);
        self.offset_v = offset_to_s16(v);
    }

    /// Rotation in radians, -pi..pi.
    pub fn rotation(&self) -> f32 {
        f32::from(self.rotation) / 32768.0 * TAU
    }

    /// Sets the rotation in radians (reduced modulo a full turn).
    pub fn set_rotation(&mut self, radians: f32) {
        let r = if radians.is_finite() {
            radians % TAU
        } else {
            0.0
        };
        let s = (r / TAU * 32768.0).round();
        // Values at or beyond half a turn wrap, as the S16 does on the wire.
        self.rotation = (s as i32).rem_euclid(65536) as u16 as i16;
    }

    /// Glow in 0..=1.
    pub fn glow(&self) -> f32 {
        f32::from(self.glow) / 255.0
    }

    /// Sets the glow (clamped to 0..=1).
    pub fn set_glow(&mut self, g: f32) {
        let g = if g.is_nan() { 0.0 } else { g.clamp(0.0, 1.0) };
        self.glow = (g * 255.0).round() as u8;
    }

    /// Bump map code (0 none, 1 brightness, 2 darkness, 3.. named maps).
    pub fn bump(&self) -> u8 {
        self.material & MATERIAL_BUMP_MASK
    }

    /// Shininess 0 (none) to 3 (high).
    pub fn shininess(&self) -> u8 {
        self.material >> 6
    }

    /// Whether the face is fullbright.
    pub fn fullbright(&self) -> bool {
        self.material & MATERIAL_FULLBRIGHT != 0
    }

    /// Whether the face shows media.
    pub fn has_media(&self) -> bool {
        self.media & MEDIA_FLAG != 0
    }

    /// Texture mapping: 0 default, 1 planar, 2 spherical, 3 cylindrical.
    pub fn texgen(&self) -> u8 {
        (self.media & MEDIA_TEXGEN_MASK) >> 1
    }

    fn field(&self, section: usize, out: &mut [u8; 16]) -> usize {
        let n = SECTION_SIZES[section];
        match section {
            0 => out.copy_from_slice(self.texture_id.as_bytes()),
            1 => out[..4].copy_from_slice(&self.color.map(|c| 255 - c)),
            2 => out[..4].copy_from_slice(&self.repeat_u.to_le_bytes()),
            3 => out[..4].copy_from_slice(&self.repeat_v.to_le_bytes()),
            4 => out[..2].copy_from_slice(&self.offset_u.to_le_bytes()),
            5 => out[..2].copy_from_slice(&self.offset_v.to_le_bytes()),
            6 => out[..2].copy_from_slice(&self.rotation.to_le_bytes()),
            7 => out[0] = self.material,
            8 => out[0] = self.media,
            9 => out[0] = self.glow,
            _ => out.copy_from_slice(self.material_id.as_bytes()),
        }
        n
    }

    fn set_field(&mut self, section: usize, v: &[u8]) {
        let a2 = || [v[0], v[1]];
        let a4 = || [v[0], v[1], v[2], v[3]];
        match section {
            0 => self.texture_id = Uuid::from_slice(v).unwrap_or_default(),
            1 => self.color = a4().map(|c| 255 - c),
            2 => self.repeat_u = f32::from_le_bytes(a4()),
            3 => self.repeat_v = f32::from_le_bytes(a4()),
            4 => self.offset_u = i16::from_le_bytes(a2()),
            5 => self.offset_v = i16::from_le_bytes(a2()),
            6 => self.rotation = i16::from_le_bytes(a2()),
            7 => self.material = v[0],
            8 => self.media = v[0],
            9 => self.glow = v[0],
            _ => self.material_id = Uuid::from_slice(v).unwrap_or_default(),
        }
    }
}

/// A decoded TextureEntry: a default face and the faces that differ from it in any field.
///
/// `faces[n]` is face `n` (faces past the end are the default). Equality compares what each of
/// the 45 faces looks like, so two encodings of the same surfaces compare equal.
#[derive(Debug, Clone, Default)]
pub struct TextureEntry {
    /// The values of every face not named otherwise.
    pub default: TextureFace,
    /// Faces 0.. up to the highest face named in the wire form.
    pub faces: Vec<TextureFace>,
}

impl PartialEq for TextureEntry {
    fn eq(&self, other: &Self) -> bool {
        self.default == other.default && (0..MAX_FACES).all(|i| self.face(i) == other.face(i))
    }
}

fn read_bitfield(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        // Bits shifted past 64 are dropped: only the low 45 matter.
        v = (v << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
}

fn write_bitfield(bits: u64, out: &mut Vec<u8>) {
    let mut groups = 1;
    while groups < 10 && bits >> (7 * groups) != 0 {
        groups += 1;
    }
    for g in (0..groups).rev() {
        let b = ((bits >> (7 * g)) & 0x7F) as u8;
        out.push(if g > 0 { b | 0x80 } else { b });
    }
}

impl TextureEntry {
    /// A TextureEntry whose every face is `default`.
    pub fn new(default: TextureFace) -> Self {
        TextureEntry {
            default,
            faces: Vec::new(),
        }
    }

    /// Face `n` (the default for faces that were not named).
    pub fn face(&self, n: usize) -> &TextureFace {
        self.faces.get(n).unwrap_or(&self.default)
    }

    /// Face `n` for editing; the face list grows (with copies of the default) to reach it.
    ///
    /// # Errors
    /// [`Misuse::TooManyFaces`] for `n` >= 45.
    pub fn face_mut(&mut self, n: usize) -> Result<&mut TextureFace, Error> {
        if n >= MAX_FACES {
            return Err(Misuse::TooManyFaces { faces: n + 1 }.into());
        }
        if self.faces.len() <= n {
            self.faces.resize(n + 1, self.default);
        }
        Ok(&mut self.faces[n])
    }

    /// Decodes the wire form.
    ///
    /// Fewer than 16 bytes mean "no TextureEntry" and give the all-default entry. The
    /// material-id section may be absent, and the last section may end at the end of the
    /// buffer without its terminator; a broken material-id section resets the material ids.
    ///
    /// # Errors
    /// [`Malformed::TextureEntry`] when the data ends inside one of sections 1 to 10.
    pub fn decode(data: &[u8]) -> Result<Self, Error> {
        let mut te = TextureEntry::default();
        if data.len() < 16 {
            return Ok(te);
        }
        let mut pos = 0;
        for (section, &size) in SECTION_SIZES.iter().enumerate() {
            let last = section == SECTION_SIZES.len() - 1;
            if last && data.len() - pos < size {
                break;
            }
            match Self::decode_section(data, &mut pos, section, size, &mut te) {
                Ok(()) => {}
                Err(_) if last => {
                    // Keep everything else; material ids fall back to none, like the viewer.
                    te.default.material_id = Uuid::nil();
                    for f in &mut te.faces {
                        f.material_id = Uuid::nil();
                    }
                    break;
                }
                Err(at) => {
                    return Err(Malformed::TextureEntry {
                        section: section as u8 + 1,
                        at,
                    }
                    .into());
                }
            }
        }
        Ok(te)
    }

    /// One section into `te`; on failure, the offset where the data ran out.
    ///
    /// Only faces named so far are materialised: a face first named in a later section starts
    /// as a copy of the default, which by then holds every earlier section's default.
    fn decode_section(
        data: &[u8],
        pos: &mut usize,
        section: usize,
        size: usize,
        te: &mut TextureEntry,
    ) -> Result<(), usize> {
        let value = data.get(*pos..*pos + size).ok_or(*pos)?;
        *pos += size;
        te.default.set_field(section, value);
        for f in &mut te.faces {
            f.set_field(section, value);
        }
        loop {
            if *pos >= data.len() {
                // End of buffer terminates a section (the viewer appends a 0 before parsing).
                return Ok(());
            }
            let at = *pos;
            let bits = read_bitfield(data, pos).ok_or(at)?;
            if bits == 0 {
                return Ok(());
            }
            let value = data.get(*pos..*pos + size).ok_or(*pos)?;
            *pos += size;
            let mut b = bits & ((1u64 << MAX_FACES) - 1);
            let hi = (u64::BITS - b.leading_zeros()) as usize;
            if hi > te.faces.len() {
                te.faces.resize(hi, te.default);
            }
            while b != 0 {
                let i = b.trailing_zeros() as usize;
                te.faces[i].set_field(section, value);
                b &= b - 1;
            }
        }
    }

    /// Appends the wire form: each section's default, then one exception per distinct value
    /// naming every face that has it (starting from the highest face, as OpenSimulator
    /// does), each section terminated by 0x00, the material ids included.
    ///
    /// # Errors
    /// [`Misuse::TooManyFaces`] when more than 45 faces are listed.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let n = self.faces.len();
        if n > MAX_FACES {
            return Err(Misuse::TooManyFaces { faces: n }.into());
        }
        let mut def = [0u8; 16];
        let mut val = [0u8; 16];
        let mut other = [0u8; 16];
        for section in 0..SECTION_SIZES.len() {
            let size = self.default.field(section, &mut def);
            out.extend_from_slice(&def[..size]);
            let mut done = 0u64;
            // Highest face first, as OpenSimulator writes them.
            for i in (0..n).rev() {
                if done & (1 << i) != 0 {
                    continue;
                }
                self.faces[i].field(section, &mut val);
                if val[..size] == def[..size] {
                    continue;
                }
                let mut bits = 1u64 << i;
                for j in (0..i).rev() {
                    if done & (1 << j) == 0 {
                        self.faces[j].field(section, &mut other);
                        if other[..size] == val[..size] {
                            bits |= 1 << j;
                        }
                    }
                }
                done |= bits;
                write_bitfield(bits, out);
                out.extend_from_slice(&val[..size]);
            }
            out.push(0);
        }
        Ok(())
    }

    /// The wire form as a new buffer.
    ///
    /// # Errors
    /// As [`TextureEntry::encode`].
    pub fn to_bytes(&self) -> Result<bytes::Bytes, Error> {
        let mut v = Vec::with_capacity(100);
        self.encode(&mut v)?;
        Ok(v.into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn bitfields_are_minimal_and_msb_first() {
        let cases: [(u64, &str); 5] = [
            (1, "01"),
            (3, "03"),
            (1 << 7, "81 00"),
            (1 << 14, "81 80 00"),
            ((1 << 45) - 1, "87 FF FF FF FF FF 7F"),
        ];
        for (bits, want) in cases {
            let mut out = Vec::new();
            write_bitfield(bits, &mut out);
            assert_eq!(out, hex(want), "{bits:#x}");
            let mut pos = 0;
            assert_eq!(read_bitfield(&out, &mut pos), Some(bits));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn the_protocol_notes_example_decodes_and_reencodes() {
        // objects.md 1.8: plywood default, face 7 = the "missing image" texture.
        let mut wire = hex("89 55 67 47 24 cb 43 ed 92 0b 47 ca ed 15 46 5f 81 00");
        wire.extend(hex("57 48 de cc f6 29 46 1c 9a 36 a3 5a 22 1f e2 1f 00"));
        wire.extend(hex("00 00 00 00 00 00 00 80 3f 00 00 00 80 3f 00"));
        wire.extend(hex("00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"));
        wire.extend([0; 17]);
        assert_eq!(wire.len(), 82);
        let te = TextureEntry::decode(&wire).unwrap();
        assert_eq!(te.default.texture_id, PLYWOOD);
        assert_eq!(te.faces.len(), 8);
        assert_eq!(
            te.face(7).texture_id.to_string(),
            "5748decc-f629-461c-9a36-a35a221fe21f"
        );
        assert_eq!(te.face(6).texture_id, PLYWOOD);
        assert_eq!(te.face(7).color, [255; 4]);
        assert_eq!(te.face(7).repeat_u, 1.0);
        assert_eq!(te.to_bytes().unwrap().as_ref(), wire.as_slice());
    }

    #[test]
    fn quantisation_matches_the_notes() {
        let mut f = TextureFace::default();
        f.set_rotation(std::f32::consts::FRAC_PI_2);
        assert_eq!(f.rotation, 8192);
        f.set_offsets(0.5, -1.0);
        assert_eq!((f.offset_u, f.offset_v), (16384, -32767));
        f.set_glow(1.0);
        assert_eq!(f.glow, 255);
        f.set_rotation(-std::f32::consts::FRAC_PI_2);
        assert!((f.rotation() + std::f32::consts::FRAC_PI_2).abs() < 1e-6);
    }

    #[test]
    fn truncated_sections_are_errors_but_missing_material_ids_are_not() {
        // 16 bytes: the texture section only; the colour section cannot be read.
        assert!(matches!(
            TextureEntry::decode(&[0; 16]),
            Err(Error::Malformed(Malformed::TextureEntry {
                section: 2,
                at: 16
            }))
        ));
        let mut full = TextureEntry::default().to_bytes().unwrap().to_vec();
        assert_eq!(full.len(), 64);
        let without_ids = full.len() - 17;
        assert_eq!(
            TextureEntry::decode(&full[..without_ids]).unwrap(),
            TextureEntry::default()
        );
        // A material id, then a bitfield with no value: ids reset, the rest kept.
        full[without_ids] = 7;
        assert_ne!(
            TextureEntry::decode(&full).unwrap().default.material_id,
            Uuid::nil()
        );
        *full.last_mut().unwrap() = 0x01;
        full[0] = 9;
        let te = TextureEntry::decode(&full).unwrap();
        assert_eq!(te.default.material_id, Uuid::nil());
        assert_eq!(te.default.texture_id.as_bytes()[0], 9);
        assert!(matches!(
            TextureEntry::decode(&full[..30]),
            Err(Error::Malformed(Malformed::TextureEntry { .. }))
        ));
    }
}
