//! Objects: typed decoders and encoders for `ObjectUpdate`, `ObjectUpdateCompressed`,
//! `ImprovedTerseObjectUpdate` and `KillObject`, and the payloads inside them.
//!
//! * [`FullUpdate`] is one object's full state, from an `ObjectUpdate` block
//!   ([`FullUpdate::from_object_data`]) or an `ObjectUpdateCompressed` entry
//!   ([`FullUpdate::decode_compressed`]). Nested payloads stay as zero-copy [`Bytes`] until
//!   asked for: [`FullUpdate::texture_entry`], [`FullUpdate::extra_params`],
//!   [`FullUpdate::name_values`], [`FullUpdate::hover_text`], [`PrimShape::to_params`].
//! * [`TerseUpdate`] is one `ImprovedTerseObjectUpdate` block (position and motion).
//! * [`Motion`] is the motion blob in its five layouts; [`TextureEntry`], [`ExtraParams`],
//!   [`NameValue`] and [`PrimShape`] are the nested formats.
//! * The free functions build whole messages for a simulator: [`object_update()`],
//!   [`object_update_compressed()`], [`improved_terse_object_update()`], [`kill_object()`].
//!
//! ```
//! use opensim_regions::objects::{self, FullUpdate, Motion, pcode};
//! use glam::Vec3;
//!
//! let mut prim = FullUpdate::new(17, uuid::Uuid::from_u128(1), pcode::PRIMITIVE);
//! prim.scale = Vec3::splat(0.5);
//! prim.motion.position = Vec3::new(128.0, 64.0, 25.0);
//! let msg = objects::object_update_compressed(1099511628032000, 65535, &[prim.clone()])?;
//! let back: Vec<_> = objects::decode_compressed(&msg).collect::<Result<_, _>>()?;
//! assert_eq!(back[0], prim);
//! # Ok::<(), opensim_regions::Error>(())
//! ```

mod extra;
mod motion;
mod name_value;
mod shape;
mod texture_entry;

use bytes::Bytes;
use glam::Vec3;
use opensim_messages::{
    ImprovedTerseObjectUpdate, KillObject, ObjectUpdate, ObjectUpdateCompressed,
    improved_terse_object_update, kill_object, object_update, object_update_compressed,
};
use uuid::Uuid;

pub use extra::{
    ExtraParam, ExtraParams, Flexible, Light, LightImage, ReflectionProbe, SCULPT_TYPE_MESH,
    Sculpt, kind as extra_kind,
};
pub(crate) use motion::terse_texture_entry;
pub use motion::{
    DEFAULT_COLLISION_PLANE, Motion, MotionLayout, TERSE_ACCELERATION_RANGE,
    TERSE_ANGULAR_VELOCITY_RANGE, TERSE_AVATAR_LEN, TERSE_PRIM_LEN, TERSE_VELOCITY_RANGE,
    TerseUpdate, clamp_direction, float_to_u8, float_to_u16, u8_to_float, u16_to_float,
};
pub use name_value::{NameValue, format_name_values, name_value, name_values};
pub use shape::{
    CUT_QUANTA, PrimShape, PrimType, REV_QUANTA, SCALE_QUANTA, ShapeParams, path_curve,
    profile_curve,
};
pub use texture_entry::{
    MATERIAL_BUMP_MASK, MATERIAL_FULLBRIGHT, MATERIAL_SHINY_MASK, MAX_FACES, MEDIA_FLAG,
    MEDIA_TEXGEN_MASK, PLYWOOD, TextureEntry, TextureFace,
};

use crate::error::{Error, Misuse};
use crate::wire::{Cursor, check_len, nul_terminated, put_vec3, quat_xyz, strip_nul};

/// `PCode` values.
pub mod pcode {
    /// Primitive (including sculpts and meshes).
    pub const PRIMITIVE: u8 = 9;
    /// Avatar.
    pub const AVATAR: u8 = 47;
    /// Grass.
    pub const GRASS: u8 = 95;
    /// New tree.
    pub const NEW_TREE: u8 = 111;
    /// Legacy particle system.
    pub const PARTICLE_SYSTEM: u8 = 143;
    /// Tree.
    pub const TREE: u8 = 255;

    /// Whether the code is a tree or grass (species in `State` and `Data`).
    pub const fn is_plant(p: u8) -> bool {
        matches!(p, GRASS | NEW_TREE | TREE)
    }
}

/// The most useful `UpdateFlags` (PrimFlags) bits, as computed for the receiving agent.
pub mod update_flags {
    /// Physical object.
    pub const USE_PHYSICS: u32 = 0x0000_0001;
    /// Just rezzed by this agent: select it.
    pub const CREATE_SELECTED: u32 = 0x0000_0002;
    /// The agent may edit it.
    pub const OBJECT_MODIFY: u32 = 0x0000_0004;
    /// The agent may copy it.
    pub const OBJECT_COPY: u32 = 0x0000_0008;
    /// It has an owner.
    pub const OBJECT_ANY_OWNER: u32 = 0x0000_0010;
    /// The agent owns it.
    pub const OBJECT_YOU_OWNER: u32 = 0x0000_0020;
    /// Contains running scripts.
    pub const SCRIPTED: u32 = 0x0000_0040;
    /// Has a touch handler.
    pub const HANDLE_TOUCH: u32 = 0x0000_0080;
    /// The agent may move it.
    pub const OBJECT_MOVE: u32 = 0x0000_0100;
    /// Has a money handler.
    pub const TAKES_MONEY: u32 = 0x0000_0200;
    /// Phantom.
    pub const PHANTOM: u32 = 0x0000_0400;
    /// Task inventory is empty.
    pub const INVENTORY_EMPTY: u32 = 0x0000_0800;
    /// Others may drop items into it.
    pub const ALLOW_INVENTORY_DROP: u32 = 0x0001_0000;
    /// The agent may transfer it.
    pub const OBJECT_TRANSFER: u32 = 0x0002_0000;
    /// Group owned.
    pub const OBJECT_GROUP_OWNED: u32 = 0x0004_0000;
    /// The owner may modify it.
    pub const OBJECT_OWNER_MODIFY: u32 = 0x1000_0000;
    /// Temporary object.
    pub const TEMPORARY_ON_REZ: u32 = 0x2000_0000;
}

/// `ObjectUpdateCompressed` flags saying which optional parts follow.
pub mod compressed_flags {
    /// Scratch pad (u8 length + bytes).
    pub const SCRATCH_PAD: u32 = 0x01;
    /// Tree species byte.
    pub const TREE: u32 = 0x02;
    /// Hover text and colour.
    pub const HAS_TEXT: u32 = 0x04;
    /// Legacy 86-byte particle system.
    pub const HAS_PARTICLES: u32 = 0x08;
    /// Attached sound.
    pub const HAS_SOUND: u32 = 0x10;
    /// Parent id.
    pub const HAS_PARENT: u32 = 0x20;
    /// Texture animation.
    pub const TEXTURE_ANIMATION: u32 = 0x40;
    /// Angular velocity.
    pub const HAS_ANGULAR_VELOCITY: u32 = 0x80;
    /// NameValue text.
    pub const HAS_NAME_VALUES: u32 = 0x100;
    /// Media URL.
    pub const MEDIA_URL: u32 = 0x200;
    /// Extended particle system (longer than 86 bytes), at the end.
    pub const HAS_PARTICLES_NEW: u32 = 0x400;
}

/// Length of a legacy particle system block.
pub const LEGACY_PARTICLES_LEN: usize = 86;

/// The attachment point carried in an attachment's `State` (its nibbles are swapped on the wire;
/// the same swap encodes it).
pub const fn attachment_point(state: u8) -> u8 {
    state.rotate_left(4)
}

/// A looped or attached sound.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sound {
    /// Sound asset.
    pub id: Uuid,
    /// Gain, 0..=1.
    pub gain: f32,
    /// Sound flags (0x01 loop, 0x02 sync master, 0x04 sync slave, 0x08 sync pending,
    /// 0x10 queue, 0x20 stop).
    pub flags: u8,
    /// Cutoff radius in metres.
    pub radius: f32,
}

/// Hover text over an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoverText {
    /// The text.
    pub text: String,
    /// Colour as R, G, B, A bytes (255 alpha = opaque).
    pub color: [u8; 4],
}

/// One object's full state, from `ObjectUpdate` or `ObjectUpdateCompressed`.
///
/// Byte fields hold the nested payloads as sent (strings without their NUL) and are decoded on
/// request, so a caller that only tracks positions never pays for them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FullUpdate {
    /// Region-local id, used by every other object message.
    pub local_id: u32,
    /// The object's UUID (an avatar's is its agent id).
    pub full_id: Uuid,
    /// Local id of the parent (linkset root, or the avatar an attachment or sitter belongs
    /// to); 0 for none.
    pub parent_id: u32,
    /// Update CRC (cache key).
    pub crc: u32,
    /// Object kind (see [`pcode`]).
    pub pcode: u8,
    /// Attachment point (nibble-swapped, see [`attachment_point`]) or tree species.
    pub state: u8,
    /// Material (low nibble: 0 stone .. 7 light).
    pub material: u8,
    /// Default click action.
    pub click_action: u8,
    /// PrimFlags for the receiving agent (see [`update_flags`]).
    pub update_flags: u32,
    /// Size in metres.
    pub scale: Vec3,
    /// Position, rotation and motion.
    pub motion: Motion,
    /// Owner (OpenSim fills it only with a sound or particles).
    pub owner_id: Uuid,
    /// Shape parameters.
    pub shape: PrimShape,
    /// TextureEntry bytes (see [`FullUpdate::texture_entry`]).
    pub texture_entry: Bytes,
    /// Texture animation block (empty or 16 bytes).
    pub texture_anim: Bytes,
    /// NameValue text without NUL (see [`FullUpdate::name_values`]).
    pub name_values: Bytes,
    /// Generic data; tree/grass species or the compressed update's scratch pad.
    pub data: Bytes,
    /// Hover text without NUL.
    pub text: Bytes,
    /// Hover text colour as sent: R, G, B, then 255 - alpha (all zeros = opaque black; see
    /// [`FullUpdate::hover_text`]).
    pub text_color: [u8; 4],
    /// Legacy media URL without NUL.
    pub media_url: Bytes,
    /// Particle system, kept as bytes (86-byte legacy or extended form).
    pub particles: Bytes,
    /// ExtraParams bytes (see [`FullUpdate::extra_params`]).
    pub extra_params: Bytes,
    /// Attached sound.
    pub sound: Option<Sound>,
}

impl FullUpdate {
    /// An object with identity rotation, unit scale and nothing else set.
    pub fn new(local_id: u32, full_id: Uuid, pcode: u8) -> Self {
        FullUpdate {
            local_id,
            full_id,
            pcode,
            scale: Vec3::ONE,
            ..FullUpdate::default()
        }
    }

    /// Whether this is an avatar.
    pub fn is_avatar(&self) -> bool {
        self.pcode == pcode::AVATAR
    }

    /// The attachment point in `State`.
    pub fn attachment_point(&self) -> u8 {
        attachment_point(self.state)
    }

    /// Decodes the TextureEntry.
    ///
    /// # Errors
    /// As [`TextureEntry::decode`].
    pub fn texture_entry(&self) -> Result<TextureEntry, Error> {
        TextureEntry::decode(&self.texture_entry)
    }

    /// Decodes the extra parameters.
    ///
    /// # Errors
    /// As [`ExtraParams::decode`].
    pub fn extra_params(&self) -> Result<ExtraParams, Error> {
        ExtraParams::decode(&self.extra_params)
    }

    /// The NameValue text (lossy UTF-8).
    pub fn name_value_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name_values)
    }

    /// The NameValue lines, when the text is valid UTF-8.
    pub fn name_values(&self) -> impl Iterator<Item = NameValue<'_>> {
        name_values(std::str::from_utf8(&self.name_values).unwrap_or(""))
    }

    /// The hover text, if any.
    pub fn hover_text(&self) -> Option<HoverText> {
        let [r, g, b, a] = self.text_color;
        (!self.text.is_empty()).then(|| HoverText {
            text: String::from_utf8_lossy(&self.text).into_owned(),
            color: [r, g, b, 255 - a],
        })
    }

    /// The shape in real numbers.
    pub fn shape_params(&self) -> ShapeParams {
        self.shape.to_params()
    }

    /// Reads an `ObjectUpdate` block. Byte fields are shared with the message, not copied.
    /// `region_width` scales the quantised motion layouts (256 for classic regions).
    ///
    /// # Errors
    /// [`Malformed::MotionLength`](crate::error::Malformed::MotionLength) for an unknown motion
    /// blob length.
    pub fn from_object_data(
        b: &object_update::ObjectData,
        region_width: f32,
    ) -> Result<Self, Error> {
        let motion = Motion::decode(&b.object_data, region_width)?;
        Ok(Self::from_object_data_with(b, motion))
    }

    pub(crate) fn from_object_data_with(b: &object_update::ObjectData, motion: Motion) -> Self {
        FullUpdate {
            local_id: b.id,
            full_id: b.full_id,
            parent_id: b.parent_id,
            crc: b.crc,
            pcode: b.p_code,
            state: b.state,
            material: b.material,
            click_action: b.click_action,
            update_flags: b.update_flags,
            scale: b.scale,
            motion,
            owner_id: b.owner_id,
            shape: shape_of(b),
            texture_entry: b.texture_entry.clone(),
            texture_anim: b.texture_anim.clone(),
            name_values: strip_nul(&b.name_value),
            data: b.data.clone(),
            text: strip_nul(&b.text),
            text_color: b.text_color,
            media_url: strip_nul(&b.media_url),
            particles: b.ps_block.clone(),
            extra_params: b.extra_params.clone(),
            sound: (!b.sound.is_nil()).then_some(Sound {
                id: b.sound,
                gain: b.gain,
                flags: b.flags,
                radius: b.radius,
            }),
        }
    }

    /// The `ObjectUpdate` block for this object; the motion blob is 76 bytes when the motion
    /// has a collision plane (avatars) and 60 otherwise.
    ///
    /// # Errors
    /// [`Misuse::FieldTooLong`] when a payload exceeds its field.
    pub fn to_object_data(&self, region_width: f32) -> Result<object_update::ObjectData, Error> {
        let text = nul_terminated(&self.text);
        let name_value = nul_terminated(&self.name_values);
        let media_url = nul_terminated(&self.media_url);
        check_len("TextureEntry", self.texture_entry.len(), 65535)?;
        check_len("TextureAnim", self.texture_anim.len(), 255)?;
        check_len("NameValue", name_value.len(), 65535)?;
        check_len("Data", self.data.len(), 65535)?;
        check_len("Text", text.len(), 255)?;
        check_len("MediaURL", media_url.len(), 255)?;
        check_len("PSBlock", self.particles.len(), 255)?;
        check_len("ExtraParams", self.extra_params.len(), 255)?;
        let s = &self.shape;
        let sound = self.sound.unwrap_or_default();
        Ok(object_update::ObjectData {
            id: self.local_id,
            state: self.state,
            full_id: self.full_id,
            crc: self.crc,
            p_code: self.pcode,
            material: self.material,
            click_action: self.click_action,
            scale: self.scale,
            object_data: self
                .motion
                .to_blob(self.motion.default_layout(), region_width),
            parent_id: self.parent_id,
            update_flags: self.update_flags,
            path_curve: s.path_curve,
            profile_curve: s.profile_curve,
            path_begin: s.path_begin,
            path_end: s.path_end,
            path_scale_x: s.path_scale_x,
            path_scale_y: s.path_scale_y,
            path_shear_x: s.path_shear_x,
            path_shear_y: s.path_shear_y,
            path_twist: s.path_twist,
            path_twist_begin: s.path_twist_begin,
            path_radius_offset: s.path_radius_offset,
            path_taper_x: s.path_taper_x,
            path_taper_y: s.path_taper_y,
            path_revolutions: s.path_revolutions,
            path_skew: s.path_skew,
            profile_begin: s.profile_begin,
            profile_end: s.profile_end,
            profile_hollow: s.profile_hollow,
            texture_entry: self.texture_entry.clone(),
            texture_anim: self.texture_anim.clone(),
            name_value,
            data: self.data.clone(),
            text,
            text_color: self.text_color,
            media_url,
            ps_block: self.particles.clone(),
            extra_params: self.extra_params.clone(),
            sound: sound.id,
            owner_id: self.owner_id,
            gain: sound.gain,
            flags: sound.flags,
            radius: sound.radius,
            joint_type: 0,
            joint_pivot: Vec3::ZERO,
            joint_axis_or_anchor: Vec3::ZERO,
        })
    }

    /// Reads an `ObjectUpdateCompressed` entry (every optional part by its flag). Byte fields
    /// are slices of `data`. The entry carries no velocity or acceleration (they read as zero).
    ///
    /// # Errors
    /// [`Malformed`](crate::error::Malformed) when a part runs past the end.
    pub fn decode_compressed(update_flags: u32, data: &Bytes) -> Result<Self, Error> {
        let mut u = FullUpdate::default();
        decode_compressed_into(&mut u, update_flags, data, true)?;
        Ok(u)
    }

    /// The compressed form's flags for this object's content.
    pub fn compressed_flags(&self) -> u32 {
        use compressed_flags as f;
        let mut flags = 0;
        if self.motion.angular_velocity != Vec3::ZERO {
            flags |= f::HAS_ANGULAR_VELOCITY;
        }
        if self.parent_id != 0 {
            flags |= f::HAS_PARENT;
        }
        if pcode::is_plant(self.pcode) && self.data.len() == 1 {
            flags |= f::TREE;
        } else if !self.data.is_empty() {
            flags |= f::SCRATCH_PAD;
        }
        if !self.text.is_empty() {
            flags |= f::HAS_TEXT;
        }
        if !self.media_url.is_empty() {
            flags |= f::MEDIA_URL;
        }
        if self.particles.len() == LEGACY_PARTICLES_LEN {
            flags |= f::HAS_PARTICLES;
        } else if !self.particles.is_empty() {
            flags |= f::HAS_PARTICLES_NEW;
        }
        if self.sound.is_some() {
            flags |= f::HAS_SOUND;
        }
        if !self.name_values.is_empty() {
            flags |= f::HAS_NAME_VALUES;
        }
        if !self.texture_anim.is_empty() {
            flags |= f::TEXTURE_ANIMATION;
        }
        flags
    }

    /// Appends the `ObjectUpdateCompressed` entry (flags chosen by
    /// [`FullUpdate::compressed_flags`]). Velocity, acceleration and the collision plane are not
    /// part of the format.
    ///
    /// # Errors
    /// [`Misuse::FieldTooLong`] for a scratch pad over 255 bytes.
    pub fn encode_compressed(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        use compressed_flags as f;
        let flags = self.compressed_flags();
        out.extend_from_slice(self.full_id.as_bytes());
        out.extend_from_slice(&self.local_id.to_le_bytes());
        out.push(self.pcode);
        out.push(self.state);
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.push(self.material);
        out.push(self.click_action);
        put_vec3(out, self.scale);
        put_vec3(out, self.motion.position);
        put_vec3(out, quat_xyz(self.motion.rotation));
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(self.owner_id.as_bytes());
        if flags & f::HAS_ANGULAR_VELOCITY != 0 {
            put_vec3(out, self.motion.angular_velocity);
        }
        if flags & f::HAS_PARENT != 0 {
            out.extend_from_slice(&self.parent_id.to_le_bytes());
        }
        if flags & f::TREE != 0 {
            out.push(self.data[0]);
        } else if flags & f::SCRATCH_PAD != 0 {
            check_len("scratch pad", self.data.len(), 255)?;
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if flags & f::HAS_TEXT != 0 {
            out.extend_from_slice(&self.text);
            out.push(0);
            out.extend_from_slice(&self.text_color);
        }
        if flags & f::MEDIA_URL != 0 {
            out.extend_from_slice(&self.media_url);
            out.push(0);
        }
        if flags & f::HAS_PARTICLES != 0 {
            out.extend_from_slice(&self.particles);
        }
        if self.extra_params.is_empty() {
            out.push(0);
        } else {
            out.extend_from_slice(&self.extra_params);
        }
        if let Some(s) = self.sound {
            out.extend_from_slice(s.id.as_bytes());
            out.extend_from_slice(&s.gain.to_le_bytes());
            out.push(s.flags);
            out.extend_from_slice(&s.radius.to_le_bytes());
        }
        if flags & f::HAS_NAME_VALUES != 0 {
            out.extend_from_slice(&self.name_values);
            out.push(0);
        }
        self.shape.encode_compressed(out);
        out.extend_from_slice(&(self.texture_entry.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.texture_entry);
        if flags & f::TEXTURE_ANIMATION != 0 {
            out.extend_from_slice(&(self.texture_anim.len() as u32).to_le_bytes());
            out.extend_from_slice(&self.texture_anim);
        }
        if flags & f::HAS_PARTICLES_NEW != 0 {
            out.extend_from_slice(&self.particles);
        }
        Ok(())
    }

    /// The `ObjectUpdateCompressed` block for this object.
    ///
    /// # Errors
    /// [`Misuse::FieldTooLong`] when the entry exceeds 65535 bytes.
    pub fn to_compressed_block(&self) -> Result<object_update_compressed::ObjectData, Error> {
        let mut data = Vec::with_capacity(160 + self.texture_entry.len());
        self.encode_compressed(&mut data)?;
        check_len("compressed object", data.len(), 65535)?;
        Ok(object_update_compressed::ObjectData {
            update_flags: self.update_flags,
            data: data.into(),
        })
    }
}

fn shape_of(b: &object_update::ObjectData) -> PrimShape {
    PrimShape {
        path_curve: b.path_curve,
        profile_curve: b.profile_curve,
        path_begin: b.path_begin,
        path_end: b.path_end,
        path_scale_x: b.path_scale_x,
        path_scale_y: b.path_scale_y,
        path_shear_x: b.path_shear_x,
        path_shear_y: b.path_shear_y,
        path_twist: b.path_twist,
        path_twist_begin: b.path_twist_begin,
        path_radius_offset: b.path_radius_offset,
        path_taper_x: b.path_taper_x,
        path_taper_y: b.path_taper_y,
        path_revolutions: b.path_revolutions,
        path_skew: b.path_skew,
        profile_begin: b.profile_begin,
        profile_end: b.profile_end,
        profile_hollow: b.profile_hollow,
    }
}

/// Reads a compressed entry into `u`; with `full` false it stops after the parent id and the
/// tree/scratch-pad part (everything a positions-only reader needs).
pub(crate) fn decode_compressed_into(
    u: &mut FullUpdate,
    update_flags: u32,
    data: &Bytes,
    full: bool,
) -> Result<(), Error> {
    use compressed_flags as f;
    let mut c = Cursor::with_backing(data, "ObjectUpdateCompressed entry");
    u.update_flags = update_flags;
    u.full_id = c.uuid()?;
    u.local_id = c.u32()?;
    u.pcode = c.u8()?;
    u.state = c.u8()?;
    u.crc = c.u32()?;
    u.material = c.u8()?;
    u.click_action = c.u8()?;
    u.scale = c.vec3()?;
    u.motion.position = c.vec3()?;
    u.motion.rotation = c.quat3()?;
    let flags = c.u32()?;
    u.owner_id = c.uuid()?;
    u.motion.angular_velocity = if flags & f::HAS_ANGULAR_VELOCITY != 0 {
        c.vec3()?
    } else {
        Vec3::ZERO
    };
    u.parent_id = if flags & f::HAS_PARENT != 0 {
        c.u32()?
    } else {
        0
    };
    if !full {
        return Ok(());
    }
    u.data = if flags & f::TREE != 0 {
        c.bytes(1)?
    } else if flags & f::SCRATCH_PAD != 0 {
        let n = usize::from(c.u8()?);
        c.bytes(n)?
    } else {
        Bytes::new()
    };
    if flags & f::HAS_TEXT != 0 {
        u.text = c.cstr()?;
        u.text_color = c.array::<4>()?;
    }
    if flags & f::MEDIA_URL != 0 {
        u.media_url = c.cstr()?;
    }
    if flags & f::HAS_PARTICLES != 0 {
        u.particles = c.bytes(LEGACY_PARTICLES_LEN)?;
    }
    let start = c.pos();
    ExtraParams::skip(&mut c)?;
    let end = c.pos();
    // A lone zero count means "none": kept empty, as ObjectUpdate sends it.
    u.extra_params = if end - start > 1 {
        data.slice(start..end)
    } else {
        Bytes::new()
    };
    if flags & f::HAS_SOUND != 0 {
        u.sound = Some(Sound {
            id: c.uuid()?,
            gain: c.f32()?,
            flags: c.u8()?,
            radius: c.f32()?,
        });
    }
    if flags & f::HAS_NAME_VALUES != 0 {
        u.name_values = c.cstr()?;
    }
    u.shape = PrimShape::decode_compressed(&mut c)?;
    let te_len = c.u32()? as usize;
    u.texture_entry = c.bytes(te_len)?;
    if flags & f::TEXTURE_ANIMATION != 0 {
        let n = c.u32()? as usize;
        u.texture_anim = c.bytes(n)?;
    }
    if flags & f::HAS_PARTICLES_NEW != 0 {
        u.particles = c.rest();
    }
    Ok(())
}

/// The typed blocks of an `ObjectUpdate` (`region_width` in metres scales quantised blobs).
pub fn decode_object_update(
    m: &ObjectUpdate,
    region_width: f32,
) -> impl Iterator<Item = Result<FullUpdate, Error>> + '_ {
    m.object_data
        .iter()
        .map(move |b| FullUpdate::from_object_data(b, region_width))
}

/// The typed entries of an `ObjectUpdateCompressed`.
pub fn decode_compressed(
    m: &ObjectUpdateCompressed,
) -> impl Iterator<Item = Result<FullUpdate, Error>> + '_ {
    m.object_data
        .iter()
        .map(|b| FullUpdate::decode_compressed(b.update_flags, &b.data))
}

/// The typed blocks of an `ImprovedTerseObjectUpdate`.
pub fn decode_terse(
    m: &ImprovedTerseObjectUpdate,
) -> impl Iterator<Item = Result<TerseUpdate, Error>> + '_ {
    m.object_data
        .iter()
        .map(|b| TerseUpdate::decode(&b.data, &b.texture_entry))
}

fn check_count(n: usize) -> Result<(), Error> {
    if n > 255 {
        Err(Misuse::TooManyBlocks { count: n }.into())
    } else {
        Ok(())
    }
}

/// An `ObjectUpdate` message for `objects` (at most 255; the caller keeps datagrams under
/// the MTU).
///
/// # Errors
/// [`Misuse`] for too many objects or oversized payloads.
pub fn object_update(
    region_handle: u64,
    time_dilation: u16,
    objects: &[FullUpdate],
    region_width: f32,
) -> Result<ObjectUpdate, Error> {
    check_count(objects.len())?;
    Ok(ObjectUpdate {
        region_data: object_update::RegionData {
            region_handle,
            time_dilation,
        },
        object_data: objects
            .iter()
            .map(|o| o.to_object_data(region_width))
            .collect::<Result<_, _>>()?,
    })
}

/// An `ObjectUpdateCompressed` message for `objects` (at most 255).
///
/// # Errors
/// [`Misuse`] for too many objects or oversized payloads.
pub fn object_update_compressed(
    region_handle: u64,
    time_dilation: u16,
    objects: &[FullUpdate],
) -> Result<ObjectUpdateCompressed, Error> {
    check_count(objects.len())?;
    Ok(ObjectUpdateCompressed {
        region_data: object_update_compressed::RegionData {
            region_handle,
            time_dilation,
        },
        object_data: objects
            .iter()
            .map(FullUpdate::to_compressed_block)
            .collect::<Result<_, _>>()?,
    })
}

/// An `ImprovedTerseObjectUpdate` message for `updates` (at most 255).
///
/// # Errors
/// [`Misuse`] for too many updates or an oversized TextureEntry.
pub fn improved_terse_object_update(
    region_handle: u64,
    time_dilation: u16,
    updates: &[TerseUpdate],
) -> Result<ImprovedTerseObjectUpdate, Error> {
    check_count(updates.len())?;
    Ok(ImprovedTerseObjectUpdate {
        region_data: improved_terse_object_update::RegionData {
            region_handle,
            time_dilation,
        },
        object_data: updates
            .iter()
            .map(TerseUpdate::to_block)
            .collect::<Result<_, _>>()?,
    })
}

/// A `KillObject` message for local ids (at most 255).
///
/// # Errors
/// [`Misuse::TooManyBlocks`] for more than 255 ids.
pub fn kill_object(local_ids: &[u32]) -> Result<KillObject, Error> {
    check_count(local_ids.len())?;
    Ok(KillObject {
        object_data: local_ids
            .iter()
            .map(|&id| kill_object::ObjectData { id })
            .collect(),
    })
}
