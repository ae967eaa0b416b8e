//! The objects of one region, kept up to date from the object messages.
//!
//! A [`Scene`] holds [`Object`]s keyed by local id (and findable by full id), applies
//! `ObjectUpdate`, `ObjectUpdateCompressed`, `ImprovedTerseObjectUpdate` and `KillObject` in the
//! order they arrive, and reports each change as a [`SceneEvent`] in a caller-owned buffer.
//! Parent links are indexed by the parent's local id whether or not the parent has arrived, so a
//! child that comes before its root is linked as soon as the root appears.
//!
//! How much of each update is decoded is chosen per subsystem with [`DecodeOptions`]: a bot
//! that only tracks positions uses [`DecodeOptions::POSITIONS`] and never pays for
//! TextureEntries, extra parameters or strings; applying a terse update then allocates nothing.
//!
//! `ObjectUpdateCached` needs the caller's cache: [`Scene::handle_cached`] asks it about each
//! entry and returns the `RequestMultipleObjects` for what it lacks.
//!
//! ```
//! use opensim_regions::objects::{self, FullUpdate, TerseUpdate, pcode};
//! use opensim_regions::scene::{DecodeOptions, Scene, SceneEvent};
//! use opensim_messages::Message;
//! use glam::Vec3;
//!
//! let mut scene = Scene::new(DecodeOptions::POSITIONS);
//! let mut events = Vec::new();
//! let root = FullUpdate::new(10, uuid::Uuid::from_u128(10), pcode::PRIMITIVE);
//! let mut child = FullUpdate::new(11, uuid::Uuid::from_u128(11), pcode::PRIMITIVE);
//! child.parent_id = 10;
//! // The child arrives first; the root later.
//! let msg = objects::object_update_compressed(0, 65535, &[child, root])?;
//! scene.apply(&Message::from(msg), &mut events)?;
//! assert_eq!(scene.children(10), &[11]);
//!
//! let mut t = TerseUpdate { local_id: 10, ..Default::default() };
//! t.motion.position = Vec3::new(1.0, 2.0, 3.0);
//! let msg = objects::improved_terse_object_update(0, 65535, &[t])?;
//! events.clear();
//! scene.apply(&Message::from(msg), &mut events)?;
//! assert_eq!(events, [SceneEvent::Moved { local_id: 10 }]);
//! assert_eq!(scene.get(10).unwrap().motion.position, Vec3::new(1.0, 2.0, 3.0));
//! # Ok::<(), opensim_regions::Error>(())
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

use bytes::Bytes;
use glam::{Quat, Vec3};
use opensim_messages::{
    ImprovedTerseObjectUpdate, KillObject, Message, ObjectUpdate, ObjectUpdateCached,
    ObjectUpdateCompressed, RequestMultipleObjects, request_multiple_objects,
};
use uuid::Uuid;

use crate::error::{Error, PeerFault};
use crate::objects::{
    ExtraParams, FullUpdate, HoverText, Motion, NameValue, PrimShape, Sound, TerseUpdate,
    TextureEntry, decode_compressed_into, name_values, pcode, terse_texture_entry,
};

/// Which parts of full updates a scene decodes and keeps. Positions, rotations, motion, scale,
/// ids, parents, flags and CRCs are always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeOptions {
    /// Keep the shape parameters.
    pub shape: bool,
    /// Decode TextureEntries (full and terse updates).
    pub texture_entry: bool,
    /// Decode extra parameters.
    pub extra_params: bool,
    /// Keep NameValue text (avatar names, attachment item ids).
    pub name_values: bool,
    /// Keep hover text.
    pub text: bool,
    /// Keep the media URL.
    pub media: bool,
    /// Keep attached sounds.
    pub sound: bool,
    /// Keep particle systems (as bytes).
    pub particles: bool,
    /// Keep texture animations and generic data (as bytes).
    pub raw: bool,
    /// The most objects the scene holds; more are refused as a misbehaving peer.
    pub max_objects: usize,
}

impl DecodeOptions {
    /// Everything decoded.
    pub const FULL: Self = DecodeOptions {
        shape: true,
        texture_entry: true,
        extra_params: true,
        name_values: true,
        text: true,
        media: true,
        sound: true,
        particles: true,
        raw: true,
        max_objects: 1_000_000,
    };
    /// Positions and identities only.
    pub const POSITIONS: Self = DecodeOptions {
        shape: false,
        texture_entry: false,
        extra_params: false,
        name_values: false,
        text: false,
        media: false,
        sound: false,
        particles: false,
        raw: false,
        max_objects: 1_000_000,
    };

    /// These options plus NameValues (so avatars have names).
    pub const fn with_names(mut self) -> Self {
        self.name_values = true;
        self
    }

    fn needs_tail(&self) -> bool {
        self.shape
            || self.texture_entry
            || self.extra_params
            || self.name_values
            || self.text
            || self.media
            || self.sound
            || self.particles
            || self.raw
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::FULL
    }
}

/// One object in a scene. Optional parts are `None` when the scene's [`DecodeOptions`] leave
/// them out (or the object has none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    /// Region-local id.
    pub local_id: u32,
    /// UUID.
    pub full_id: Uuid,
    /// Parent's local id (0: none).
    pub parent_id: u32,
    /// Update CRC.
    pub crc: u32,
    /// Object kind (see [`pcode`]).
    pub pcode: u8,
    /// Attachment point (nibble-swapped) or tree species.
    pub state: u8,
    /// Material.
    pub material: u8,
    /// Click action.
    pub click_action: u8,
    /// PrimFlags for this agent.
    pub update_flags: u32,
    /// Size in metres.
    pub scale: Vec3,
    /// Position (relative to the parent, if any), rotation and motion.
    pub motion: Motion,
    /// Owner (when the simulator sent it).
    pub owner_id: Uuid,
    /// Shape parameters.
    pub shape: Option<PrimShape>,
    /// Decoded TextureEntry.
    pub texture_entry: Option<TextureEntry>,
    /// Decoded extra parameters.
    pub extra_params: Option<ExtraParams>,
    /// NameValue text.
    pub name_values: Option<String>,
    /// Hover text.
    pub text: Option<HoverText>,
    /// Media URL.
    pub media_url: Option<String>,
    /// Attached sound.
    pub sound: Option<Sound>,
    /// Particle system bytes.
    pub particles: Option<Bytes>,
    /// Texture animation bytes.
    pub texture_anim: Option<Bytes>,
    /// Generic data bytes.
    pub data: Option<Bytes>,
}

impl Object {
    /// Whether this is an avatar.
    pub fn is_avatar(&self) -> bool {
        self.pcode == pcode::AVATAR
    }

    /// The NameValue lines (empty unless the scene keeps NameValues).
    pub fn name_values(&self) -> impl Iterator<Item = NameValue<'_>> {
        name_values(self.name_values.as_deref().unwrap_or(""))
    }

    /// The value of one NameValue.
    pub fn name_value(&self, name: &str) -> Option<&str> {
        self.name_values()
            .find(|nv| nv.name == name)
            .map(|nv| nv.value)
    }

    /// An avatar's "First Last" name, from its NameValues.
    pub fn avatar_name(&self) -> Option<String> {
        let first = self.name_value("FirstName")?;
        let last = self.name_value("LastName").unwrap_or("");
        Some(if last.is_empty() {
            first.to_owned()
        } else {
            format!("{first} {last}")
        })
    }

    /// Copies a full update in, decoding what `opt` asks for. A broken TextureEntry or extra
    /// parameter set keeps the previous value and is reported after everything else applied.
    fn apply_full(&mut self, u: &FullUpdate, opt: &DecodeOptions) -> Result<(), Error> {
        self.local_id = u.local_id;
        self.full_id = u.full_id;
        self.parent_id = u.parent_id;
        self.crc = u.crc;
        self.pcode = u.pcode;
        self.state = u.state;
        self.material = u.material;
        self.click_action = u.click_action;
        self.update_flags = u.update_flags;
        self.scale = u.scale;
        self.motion = u.motion;
        self.owner_id = u.owner_id;
        let lossy = |b: &Bytes| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
        let bytes = |b: &Bytes| (!b.is_empty()).then(|| b.clone());
        if opt.shape {
            self.shape = Some(u.shape);
        }
        if opt.name_values {
            self.name_values = lossy(&u.name_values);
        }
        if opt.text {
            self.text = u.hover_text();
        }
        if opt.media {
            self.media_url = lossy(&u.media_url);
        }
        if opt.sound {
            self.sound = u.sound;
        }
        if opt.particles {
            self.particles = bytes(&u.particles);
        }
        if opt.raw {
            self.texture_anim = bytes(&u.texture_anim);
            self.data = bytes(&u.data);
        }
        let mut result = Ok(());
        if opt.texture_entry {
            match u.texture_entry() {
                Ok(te) => self.texture_entry = Some(te),
                Err(e) => result = Err(e),
            }
        }
        if opt.extra_params {
            match u.extra_params() {
                Ok(p) => self.extra_params = Some(p),
                Err(e) => result = result.and(Err(e)),
            }
        }
        result
    }
}

/// A change to a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SceneEvent {
    /// A new object.
    Added {
        /// Its local id.
        local_id: u32,
        /// Its UUID.
        full_id: Uuid,
        /// Its kind.
        pcode: u8,
    },
    /// A full update of a known object (any field may have changed, the parent too).
    Updated {
        /// Its local id.
        local_id: u32,
    },
    /// A terse update: motion (and state, maybe TextureEntry) changed.
    Moved {
        /// Its local id.
        local_id: u32,
    },
    /// An object left (killed, replaced, or removed with its parent).
    Removed {
        /// Its local id.
        local_id: u32,
        /// Its UUID.
        full_id: Uuid,
    },
    /// A terse update for an object the scene does not know: ask for it with
    /// `RequestMultipleObjects` (see [`request_objects`]).
    Unknown {
        /// The local id.
        local_id: u32,
    },
}

/// One `ObjectUpdateCached` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CachedObject {
    /// Local id.
    pub local_id: u32,
    /// CRC of the simulator's current version.
    pub crc: u32,
    /// PrimFlags for this agent.
    pub update_flags: u32,
}

/// What the caller's cache holds for a [`CachedObject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheLookup {
    /// The cache has this version; the caller feeds it to the scene itself.
    Hit,
    /// Nothing cached.
    Miss,
    /// An older version is cached.
    CrcMismatch,
}

/// `RequestMultipleObjects.CacheMissType` for an object the cache lacks.
pub const CACHE_MISS_FULL: u8 = 0;
/// `RequestMultipleObjects.CacheMissType` for a cached object with another CRC.
pub const CACHE_MISS_CRC: u8 = 1;

/// `RequestMultipleObjects` messages (255 ids each) asking for full updates of `ids`.
pub fn request_objects(
    agent_id: Uuid,
    session_id: Uuid,
    ids: impl IntoIterator<Item = u32>,
) -> Vec<RequestMultipleObjects> {
    let blocks: Vec<_> = ids
        .into_iter()
        .map(|id| request_multiple_objects::ObjectData {
            cache_miss_type: CACHE_MISS_FULL,
            id,
        })
        .collect();
    blocks
        .chunks(255)
        .map(|c| RequestMultipleObjects {
            agent_data: request_multiple_objects::AgentData {
                agent_id,
                session_id,
            },
            object_data: c.to_vec().into(),
        })
        .collect()
}

/// Hashes local ids: a multiply-xorshift keyed with a random per-scene seed. Much cheaper than
/// SipHash on the terse-update path, and the seed keeps a peer from choosing ids that collide.
#[derive(Debug, Clone, Copy)]
struct IdHash(u64);

impl IdHash {
    fn new() -> Self {
        IdHash(RandomState::new().hash_one(0x5EED_u64) | 1)
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

#[derive(Debug)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    fn write_u32(&mut self, i: u32) {
        let h = (self.0 ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The objects of one region.
#[derive(Debug, Clone)]
pub struct Scene {
    options: DecodeOptions,
    region_width: f32,
    objects: HashMap<u32, Object, IdHash>,
    by_full_id: HashMap<Uuid, u32>,
    children: HashMap<u32, Vec<u32>, IdHash>,
    time_dilation: u16,
}

/// The deepest parent chain followed (linksets are one level, attachments and sitters two).
const MAX_DEPTH: usize = 16;

impl Scene {
    /// An empty scene of a 256 m region.
    pub fn new(options: DecodeOptions) -> Self {
        Scene {
            options,
            region_width: 256.0,
            objects: HashMap::with_hasher(IdHash::new()),
            by_full_id: HashMap::new(),
            children: HashMap::with_hasher(IdHash::new()),
            time_dilation: u16::MAX,
        }
    }

    /// Sets the region width in metres (it scales the quantised motion layouts).
    pub fn set_region_width(&mut self, width: f32) {
        self.region_width = width;
    }

    /// The decoding options.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// The last `TimeDilation` seen (65535 = 1.0).
    pub fn time_dilation(&self) -> f32 {
        f32::from(self.time_dilation) / 65535.0
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the scene is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The object with this local id.
    pub fn get(&self, local_id: u32) -> Option<&Object> {
        self.objects.get(&local_id)
    }

    /// The object with this UUID.
    pub fn get_by_full_id(&self, full_id: &Uuid) -> Option<&Object> {
        self.by_full_id
            .get(full_id)
            .and_then(|id| self.objects.get(id))
    }

    /// The local id of a UUID.
    pub fn local_id(&self, full_id: &Uuid) -> Option<u32> {
        self.by_full_id.get(full_id).copied()
    }

    /// Every object, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    /// The avatars.
    pub fn avatars(&self) -> impl Iterator<Item = &Object> {
        self.objects.values().filter(|o| o.is_avatar())
    }

    /// Local ids of the objects whose parent is `local_id` (present or not yet arrived).
    pub fn children(&self, local_id: u32) -> &[u32] {
        self.children.get(&local_id).map_or(&[], Vec::as_slice)
    }

    /// Objects whose parent has not arrived (or was removed).
    pub fn orphans(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .values()
            .filter(|o| o.parent_id != 0 && !self.objects.contains_key(&o.parent_id))
    }

    /// The root of an object's linkset (itself when it has no parent); `None` when a parent in
    /// the chain is missing.
    pub fn root_of(&self, local_id: u32) -> Option<&Object> {
        let mut o = self.objects.get(&local_id)?;
        for _ in 0..MAX_DEPTH {
            if o.parent_id == 0 {
                return Some(o);
            }
            o = self.objects.get(&o.parent_id)?;
        }
        None
    }

    /// Region-local position and rotation of an object, composed through its parents; `None`
    /// when a parent in the chain is missing.
    pub fn region_transform(&self, local_id: u32) -> Option<(Vec3, Quat)> {
        let o = self.objects.get(&local_id)?;
        let (mut pos, mut rot) = (o.motion.position, o.motion.rotation);
        let mut parent = o.parent_id;
        for _ in 0..MAX_DEPTH {
            if parent == 0 {
                return Some((pos, rot));
            }
            let p = self.objects.get(&parent)?;
            pos = p.motion.position + p.motion.rotation * pos;
            rot = p.motion.rotation * rot;
            parent = p.parent_id;
        }
        None
    }

    /// Forgets every object (the region was closed).
    pub fn clear(&mut self) {
        self.objects.clear();
        self.by_full_id.clear();
        self.children.clear();
    }

    /// Applies an object message: `ObjectUpdate`, `ObjectUpdateCompressed`,
    /// `ImprovedTerseObjectUpdate` or `KillObject`. Returns whether the message was one of
    /// them. Blocks are applied in order; a malformed block is skipped and the first error is
    /// returned once the others have been applied.
    ///
    /// # Errors
    /// [`Error`] for a malformed block or a full scene.
    pub fn apply(&mut self, msg: &Message, events: &mut Vec<SceneEvent>) -> Result<bool, Error> {
        match msg {
            Message::ObjectUpdate(m) => self.apply_object_update(m, events),
            Message::ObjectUpdateCompressed(m) => self.apply_compressed(m, events),
            Message::ImprovedTerseObjectUpdate(m) => self.apply_terse(m, events),
            Message::KillObject(m) => {
                self.apply_kill(m, events);
                Ok(())
            }
            _ => return Ok(false),
        }
        .map(|()| true)
    }

    /// Applies an `ObjectUpdate`.
    ///
    /// # Errors
    /// As [`Scene::apply`].
    pub fn apply_object_update(
        &mut self,
        m: &ObjectUpdate,
        events: &mut Vec<SceneEvent>,
    ) -> Result<(), Error> {
        self.time_dilation = m.region_data.time_dilation;
        let mut first = Ok(());
        for b in &m.object_data {
            let r = Motion::decode(&b.object_data, self.region_width).and_then(|motion| {
                let u = FullUpdate::from_object_data_with(b, motion);
                self.apply_full(&u, events)
            });
            first = first.and(r);
        }
        first
    }

    /// Applies an `ObjectUpdateCompressed`.
    ///
    /// # Errors
    /// As [`Scene::apply`].
    pub fn apply_compressed(
        &mut self,
        m: &ObjectUpdateCompressed,
        events: &mut Vec<SceneEvent>,
    ) -> Result<(), Error> {
        self.time_dilation = m.region_data.time_dilation;
        let full = self.options.needs_tail();
        let mut first = Ok(());
        for b in &m.object_data {
            let mut u = FullUpdate::default();
            let r = decode_compressed_into(&mut u, b.update_flags, &b.data, full)
                .and_then(|()| self.apply_full(&u, events));
            first = first.and(r);
        }
        first
    }

    /// Applies an `ImprovedTerseObjectUpdate`.
    ///
    /// # Errors
    /// As [`Scene::apply`].
    pub fn apply_terse(
        &mut self,
        m: &ImprovedTerseObjectUpdate,
        events: &mut Vec<SceneEvent>,
    ) -> Result<(), Error> {
        self.time_dilation = m.region_data.time_dilation;
        let mut first = Ok(());
        for b in &m.object_data {
            first = first.and(self.apply_terse_block(&b.data, &b.texture_entry, events));
        }
        first
    }

    /// Applies one terse block (`Data` and `TextureEntry` fields). Allocates nothing unless
    /// TextureEntries are decoded and one is present.
    ///
    /// # Errors
    /// As [`Scene::apply`].
    pub fn apply_terse_block(
        &mut self,
        data: &[u8],
        texture_entry: &Bytes,
        events: &mut Vec<SceneEvent>,
    ) -> Result<(), Error> {
        let mut t = TerseUpdate::default();
        t.decode_motion(data)?;
        let Some(o) = self.objects.get_mut(&t.local_id) else {
            events.push(SceneEvent::Unknown {
                local_id: t.local_id,
            });
            return Ok(());
        };
        o.motion = t.motion;
        o.state = t.state;
        events.push(SceneEvent::Moved {
            local_id: t.local_id,
        });
        if self.options.texture_entry && !texture_entry.is_empty() {
            let te = terse_texture_entry(texture_entry)?;
            if !te.is_empty() {
                o.texture_entry = Some(TextureEntry::decode(&te)?);
            }
        }
        Ok(())
    }

    /// Applies a `KillObject`.
    pub fn apply_kill(&mut self, m: &KillObject, events: &mut Vec<SceneEvent>) {
        for b in &m.object_data {
            self.kill(b.id, events);
        }
    }

    /// Removes an object and, recursively, its non-avatar children; avatars sitting on a
    /// removed object stay, unparented.
    pub fn kill(&mut self, local_id: u32, events: &mut Vec<SceneEvent>) {
        let mut stack = vec![local_id];
        while let Some(id) = stack.pop() {
            let Some(o) = self.remove(id, events) else {
                continue;
            };
            if let Some(kids) = self.children.remove(&o.local_id) {
                for k in kids {
                    match self.objects.get_mut(&k) {
                        Some(c) if c.is_avatar() => {
                            c.parent_id = 0;
                            events.push(SceneEvent::Updated { local_id: k });
                        }
                        Some(_) => stack.push(k),
                        None => {}
                    }
                }
            }
        }
    }

    /// Removes one object and its index entries (not its children).
    fn remove(&mut self, local_id: u32, events: &mut Vec<SceneEvent>) -> Option<Object> {
        let o = self.objects.remove(&local_id)?;
        if self.by_full_id.get(&o.full_id) == Some(&local_id) {
            self.by_full_id.remove(&o.full_id);
        }
        if o.parent_id != 0 {
            self.unlink(o.parent_id, local_id);
        }
        events.push(SceneEvent::Removed {
            local_id,
            full_id: o.full_id,
        });
        Some(o)
    }

    fn unlink(&mut self, parent: u32, child: u32) {
        if let Some(v) = self.children.get_mut(&parent) {
            v.retain(|&c| c != child);
            if v.is_empty() {
                self.children.remove(&parent);
            }
        }
    }

    /// Applies one full update (from either message, or from the caller's cache).
    ///
    /// # Errors
    /// [`PeerFault::SceneFull`] when the scene holds `max_objects` already; a broken
    /// TextureEntry or extra parameter set (the rest of the update is applied).
    pub fn apply_full(
        &mut self,
        u: &FullUpdate,
        events: &mut Vec<SceneEvent>,
    ) -> Result<(), Error> {
        // The same UUID under another local id: the object was re-created; the old one goes.
        if let Some(&old) = self.by_full_id.get(&u.full_id)
            && old != u.local_id
        {
            self.remove(old, events);
        }
        let replaced = match self.objects.get(&u.local_id) {
            Some(o) if o.full_id != u.full_id => true,
            Some(_) => false,
            None => {
                if self.objects.len() >= self.options.max_objects {
                    return Err(PeerFault::SceneFull {
                        limit: self.options.max_objects,
                    }
                    .into());
                }
                false
            }
        };
        if replaced {
            self.remove(u.local_id, events);
        }
        let opts = self.options;
        let (result, old_parent, added) = match self.objects.get_mut(&u.local_id) {
            Some(o) => {
                let old_parent = o.parent_id;
                (o.apply_full(u, &opts), old_parent, false)
            }
            None => {
                let mut o = Object::default();
                let r = o.apply_full(u, &opts);
                self.objects.insert(u.local_id, o);
                (r, 0, true)
            }
        };
        self.by_full_id.insert(u.full_id, u.local_id);
        if added || old_parent != u.parent_id {
            if old_parent != 0 {
                self.unlink(old_parent, u.local_id);
            }
            if u.parent_id != 0 {
                let kids = self.children.entry(u.parent_id).or_default();
                if !kids.contains(&u.local_id) {
                    kids.push(u.local_id);
                }
            }
        }
        events.push(if added {
            SceneEvent::Added {
                local_id: u.local_id,
                full_id: u.full_id,
                pcode: u.pcode,
            }
        } else {
            SceneEvent::Updated {
                local_id: u.local_id,
            }
        });
        result
    }

    /// Handles `ObjectUpdateCached`: entries the scene already has with the same CRC are
    /// skipped, the others are looked up with `lookup`, and the returned message asks for every
    /// one the cache lacks (`None` when nothing is missing). On [`CacheLookup::Hit`] the caller
    /// applies its cached copy with [`Scene::apply_full`].
    pub fn handle_cached(
        &self,
        m: &ObjectUpdateCached,
        agent_id: Uuid,
        session_id: Uuid,
        mut lookup: impl FnMut(&CachedObject) -> CacheLookup,
    ) -> Option<RequestMultipleObjects> {
        let mut missing = Vec::new();
        for b in &m.object_data {
            if self.objects.get(&b.id).is_some_and(|o| o.crc == b.crc) {
                continue;
            }
            let entry = CachedObject {
                local_id: b.id,
                crc: b.crc,
                update_flags: b.update_flags,
            };
            let miss = match lookup(&entry) {
                CacheLookup::Hit => continue,
                CacheLookup::Miss => CACHE_MISS_FULL,
                CacheLookup::CrcMismatch => CACHE_MISS_CRC,
            };
            missing.push(request_multiple_objects::ObjectData {
                cache_miss_type: miss,
                id: b.id,
            });
        }
        (!missing.is_empty()).then_some(RequestMultipleObjects {
            agent_data: request_multiple_objects::AgentData {
                agent_id,
                session_id,
            },
            object_data: missing.into(),
        })
    }
}
