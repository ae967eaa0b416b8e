//! The region itself: its handle and size, the typed `RegionHandshake` and its reply.
//!
//! A simulator sends `RegionHandshake` when a circuit is set up (fresh login or teleport
//! arrival) and sometimes again later (estate changes). The client must answer every one with
//! `RegionHandshakeReply`; [`RegionHandshake::reply`] builds it. Its flags decide whether the
//! simulator sends full object updates (`0`) or `ObjectUpdateCached` probes first
//! ([`reply_flags::SEND_ALL_CACHEABLE_OBJECTS`]).
//!
//! The handshake does not say how large the region is: the size comes from the login response
//! (`region_size_x`/`_y`), from `TeleportFinish`, `CrossedRegion` and `EnableSimulator` on the
//! event queue, and defaults to 256 m. [`RegionInfo`] keeps the handle, the size and the last
//! handshake together.

use glam::DVec2;
use opensim_messages::{RegionHandshakeReply, region_handshake, region_handshake_reply};
use uuid::Uuid;

use crate::error::{Error, PeerFault};
use crate::terrain::RegionSize;
use crate::wire::{check_len, nul_terminated, strip_nul};

/// `RegionHandshakeReply.RegionInfo.Flags` bits (viewer object-cache capabilities).
pub mod reply_flags {
    /// The viewer has an object cache: send `ObjectUpdateCached` probes for cacheable objects.
    pub const SEND_ALL_CACHEABLE_OBJECTS: u32 = 0x1;
    /// The viewer's cache file for this region is empty: no need to probe.
    pub const CACHE_FILE_IS_EMPTY: u32 = 0x2;
    /// The viewer can show its own appearance from server-side bakes.
    pub const SUPPORTS_SELF_APPEARANCE: u32 = 0x4;
}

/// A few `RegionFlags` bits (viewer `llregionflags.h`).
pub mod region_flags {
    /// Damage (combat) is enabled.
    pub const ALLOW_DAMAGE: u32 = 1 << 0;
    /// Landmarks may be created.
    pub const ALLOW_LANDMARK: u32 = 1 << 1;
    /// Home may be set here.
    pub const ALLOW_SET_HOME: u32 = 1 << 2;
    /// Terraforming is blocked.
    pub const BLOCK_TERRAFORM: u32 = 1 << 6;
    /// Sandbox region.
    pub const SANDBOX: u32 = 1 << 8;
    /// Flying is blocked.
    pub const BLOCK_FLY: u32 = 1 << 19;
    /// Direct teleports are allowed (no telehub routing).
    pub const ALLOW_DIRECT_TELEPORT: u32 = 1 << 20;
    /// Voice is enabled.
    pub const ALLOW_VOICE: u32 = 1 << 28;
}

/// A region's handle: the grid position of its south-west corner in metres,
/// `(global_x << 32) | global_y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RegionHandle(pub u64);

impl RegionHandle {
    /// The handle of the region whose corner is at (`x`, `y`) metres on the grid.
    pub const fn from_global(x: u32, y: u32) -> Self {
        RegionHandle(((x as u64) << 32) | y as u64)
    }

    /// The handle of grid cell (`gx`, `gy`) in 256 m units.
    pub const fn from_grid(gx: u32, gy: u32) -> Self {
        Self::from_global(gx.wrapping_mul(256), gy.wrapping_mul(256))
    }

    /// The corner's global x in metres.
    pub const fn global_x(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The corner's global y in metres.
    pub const fn global_y(self) -> u32 {
        self.0 as u32
    }

    /// The grid x in 256 m units.
    pub const fn grid_x(self) -> u32 {
        self.global_x() / 256
    }

    /// The grid y in 256 m units.
    pub const fn grid_y(self) -> u32 {
        self.global_y() / 256
    }

    /// The corner as a global position.
    pub fn corner(self) -> DVec2 {
        DVec2::new(f64::from(self.global_x()), f64::from(self.global_y()))
    }

    /// Whether a global position lies in the region of this handle and `size`.
    pub fn contains(self, size: RegionSize, global: DVec2) -> bool {
        let local = global - self.corner();
        (0.0..f64::from(size.width())).contains(&local.x)
            && (0.0..f64::from(size.height())).contains(&local.y)
    }
}

impl From<u64> for RegionHandle {
    fn from(v: u64) -> Self {
        RegionHandle(v)
    }
}

/// A region size from a peer's numbers (login response, event-queue maps); absent sides mean
/// the classic 256 m.
pub fn region_size(width: Option<u32>, height: Option<u32>) -> Result<RegionSize, Error> {
    let (width, height) = (width.unwrap_or(256), height.unwrap_or(256));
    RegionSize::new(width, height).map_err(|_| PeerFault::RegionSize { width, height }.into())
}

/// Maturity rating from `SimAccess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Maturity {
    /// 13: general (PG).
    General,
    /// 21: moderate (Mature).
    Moderate,
    /// 42: adult.
    Adult,
    /// Any other value.
    Other(u8),
}

impl From<u8> for Maturity {
    fn from(v: u8) -> Self {
        match v {
            13 => Maturity::General,
            21 => Maturity::Moderate,
            42 => Maturity::Adult,
            other => Maturity::Other(other),
        }
    }
}

/// `RegionHandshake`, typed. Corner arrays are in the order 00 (SW), 01 (NW), 10 (SE), 11 (NE).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegionHandshake {
    /// `RegionFlags` (see [`region_flags`]).
    pub region_flags: u32,
    /// `SimAccess` maturity byte (see [`Maturity`]).
    pub sim_access: u8,
    /// Region name.
    pub sim_name: String,
    /// Estate owner.
    pub sim_owner: Uuid,
    /// Whether this agent manages the estate.
    pub is_estate_manager: bool,
    /// Water level in metres.
    pub water_height: f32,
    /// Billable factor (OpenSim: 0).
    pub billable_factor: f32,
    /// Object-cache id; a change invalidates the viewer's cache of this region.
    pub cache_id: Uuid,
    /// `TerrainBase0..3` (OpenSim: zero).
    pub terrain_base: [Uuid; 4],
    /// `TerrainDetail0..3`: the four terrain textures (or PBR materials), low to high.
    pub terrain_detail: [Uuid; 4],
    /// `TerrainStartHeight00/01/10/11`: low elevation of the texture blend at each corner.
    pub terrain_start_height: [f32; 4],
    /// `TerrainHeightRange00/01/10/11`: high elevation of the blend at each corner.
    pub terrain_height_range: [f32; 4],
    /// `RegionInfo2.RegionID`: the region's UUID.
    pub region_id: Uuid,
    /// `CPUClassID` (OpenSim: 9).
    pub cpu_class_id: i32,
    /// `CPURatio` (OpenSim: 1).
    pub cpu_ratio: i32,
    /// `ColoName`.
    pub colo_name: String,
    /// `ProductSKU`.
    pub product_sku: String,
    /// `ProductName` (OpenSim: the region type).
    pub product_name: String,
    /// `RegionInfo4.RegionFlagsExtended`, when sent.
    pub region_flags_extended: Option<u64>,
    /// `RegionInfo4.RegionProtocols`, when sent (bit 63: more than 6 baked textures).
    pub region_protocols: Option<u64>,
}

fn text(b: &bytes::Bytes) -> String {
    String::from_utf8_lossy(&strip_nul(b)).into_owned()
}

fn string_field(what: &'static str, s: &str) -> Result<bytes::Bytes, Error> {
    let b = nul_terminated(s.as_bytes());
    check_len(what, b.len(), 255)?;
    Ok(b)
}

impl From<&opensim_messages::RegionHandshake> for RegionHandshake {
    fn from(m: &opensim_messages::RegionHandshake) -> Self {
        let r = &m.region_info;
        let r4 = m.region_info4.first();
        RegionHandshake {
            region_flags: r.region_flags,
            sim_access: r.sim_access,
            sim_name: text(&r.sim_name),
            sim_owner: r.sim_owner,
            is_estate_manager: r.is_estate_manager,
            water_height: r.water_height,
            billable_factor: r.billable_factor,
            cache_id: r.cache_id,
            terrain_base: [
                r.terrain_base0,
                r.terrain_base1,
                r.terrain_base2,
                r.terrain_base3,
            ],
            terrain_detail: [
                r.terrain_detail0,
                r.terrain_detail1,
                r.terrain_detail2,
                r.terrain_detail3,
            ],
            terrain_start_height: [
                r.terrain_start_height00,
                r.terrain_start_height01,
                r.terrain_start_height10,
                r.terrain_start_height11,
            ],
            terrain_height_range: [
                r.terrain_height_range00,
                r.terrain_height_range01,
                r.terrain_height_range10,
                r.terrain_height_range11,
            ],
            region_id: m.region_info2.region_id,
            cpu_class_id: m.region_info3.cpu_class_id,
            cpu_ratio: m.region_info3.cpu_ratio,
            colo_name: text(&m.region_info3.colo_name),
            product_sku: text(&m.region_info3.product_sku),
            product_name: text(&m.region_info3.product_name),
            region_flags_extended: r4.map(|b| b.region_flags_extended),
            region_protocols: r4.map(|b| b.region_protocols),
        }
    }
}

impl RegionHandshake {
    /// The maturity rating.
    pub fn maturity(&self) -> Maturity {
        Maturity::from(self.sim_access)
    }

    /// The `RegionHandshakeReply` that answers this handshake with the given [`reply_flags`].
    pub fn reply(&self, agent_id: Uuid, session_id: Uuid, flags: u32) -> RegionHandshakeReply {
        RegionHandshakeReply {
            agent_data: region_handshake_reply::AgentData {
                agent_id,
                session_id,
            },
            region_info: region_handshake_reply::RegionInfo { flags },
        }
    }

    /// The message a simulator sends (the `RegionInfo4` block only when either of its fields
    /// is set).
    ///
    /// # Errors
    /// [`Misuse::FieldTooLong`](crate::error::Misuse::FieldTooLong) for a string over 254 bytes.
    pub fn to_message(&self) -> Result<opensim_messages::RegionHandshake, Error> {
        let [b0, b1, b2, b3] = self.terrain_base;
        let [d0, d1, d2, d3] = self.terrain_detail;
        let [s00, s01, s10, s11] = self.terrain_start_height;
        let [r00, r01, r10, r11] = self.terrain_height_range;
        let region_info4 =
            if self.region_flags_extended.is_some() || self.region_protocols.is_some() {
                vec![region_handshake::RegionInfo4 {
                    region_flags_extended: self.region_flags_extended.unwrap_or(0),
                    region_protocols: self.region_protocols.unwrap_or(0),
                }]
            } else {
                Vec::new()
            };
        Ok(opensim_messages::RegionHandshake {
            region_info: region_handshake::RegionInfo {
                region_flags: self.region_flags,
                sim_access: self.sim_access,
                sim_name: string_field("SimName", &self.sim_name)?,
                sim_owner: self.sim_owner,
                is_estate_manager: self.is_estate_manager,
                water_height: self.water_height,
                billable_factor: self.billable_factor,
                cache_id: self.cache_id,
                terrain_base0: b0,
                terrain_base1: b1,
                terrain_base2: b2,
                terrain_base3: b3,
                terrain_detail0: d0,
                terrain_detail1: d1,
                terrain_detail2: d2,
                terrain_detail3: d3,
                terrain_start_height00: s00,
                terrain_start_height01: s01,
                terrain_start_height10: s10,
                terrain_start_height11: s11,
                terrain_height_range00: r00,
                terrain_height_range01: r01,
                terrain_height_range10: r10,
                terrain_height_range11: r11,
            },
            region_info2: region_handshake::RegionInfo2 {
                region_id: self.region_id,
            },
            region_info3: region_handshake::RegionInfo3 {
                cpu_class_id: self.cpu_class_id,
                cpu_ratio: self.cpu_ratio,
                colo_name: string_field("ColoName", &self.colo_name)?,
                product_sku: string_field("ProductSKU", &self.product_sku)?,
                product_name: string_field("ProductName", &self.product_name)?,
            },
            region_info4: region_info4.into(),
        })
    }
}

/// What a client knows about one region: where it is, how large, and its last handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionInfo {
    /// The region's handle.
    pub handle: RegionHandle,
    /// Its size (256 m unless told otherwise).
    pub size: RegionSize,
    /// The last `RegionHandshake` received on its circuit.
    pub handshake: Option<RegionHandshake>,
}

impl RegionInfo {
    /// A region of known handle and size, before its handshake.
    pub fn new(handle: RegionHandle, size: RegionSize) -> Self {
        RegionInfo {
            handle,
            size,
            handshake: None,
        }
    }

    /// From the login response's `region_x`, `region_y` (metres) and optional
    /// `region_size_x`/`_y`.
    ///
    /// # Errors
    /// [`PeerFault::RegionSize`] for a size that is not a multiple of 16 in 256..=8192.
    pub fn from_login(
        region_x: u32,
        region_y: u32,
        size_x: Option<u32>,
        size_y: Option<u32>,
    ) -> Result<Self, Error> {
        Ok(Self::new(
            RegionHandle::from_global(region_x, region_y),
            region_size(size_x, size_y)?,
        ))
    }

    /// Records a `RegionHandshake` received on this region's circuit and returns its typed form.
    pub fn apply_handshake(&mut self, m: &opensim_messages::RegionHandshake) -> &RegionHandshake {
        self.handshake.insert(RegionHandshake::from(m))
    }

    /// The region's name, once the handshake arrived.
    pub fn name(&self) -> Option<&str> {
        self.handshake.as_ref().map(|h| h.sim_name.as_str())
    }

    /// Whether a global position lies in this region.
    pub fn contains(&self, global: DVec2) -> bool {
        self.handle.contains(self.size, global)
    }

    /// The global position of a region-local one.
    pub fn to_global(&self, local: glam::Vec3) -> glam::DVec3 {
        self.handle.corner().extend(0.0) + local.as_dvec3()
    }
}
