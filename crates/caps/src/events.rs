//! Typed event-queue events ([`Event`]) and their parsing from LLSD bodies.
//!
//! Field encodings follow what OpenSimulator's event writer produces (caps.md, section 4):
//! `U32`/`U64` fields may come as big-endian `binary` or as `integer` (both are accepted),
//! `IPADDR` as 4 bytes of `binary`, ports as `integer`, vectors as arrays of reals. Template
//! blocks come as arrays of maps. Optional fields a producer leaves out take their default;
//! a present field of an impossible type makes the event [`Event::Malformed`].

use std::net::{Ipv4Addr, SocketAddrV4};

use opensim_llsd::{Date, Value};
use uuid::Uuid;

use crate::EventError;

/// One event from a region's event queue.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Open a child circuit to a neighbour (`UseCircuitCode` to its address).
    EnableSimulator(EnableSimulator),
    /// A region's seed capability is ready: request it.
    EstablishAgentCommunication(EstablishAgentCommunication),
    /// A teleport succeeded: connect to the destination (arrives on the *old* region's queue).
    TeleportFinish(TeleportFinish),
    /// The agent walked or flew into a neighbouring region.
    CrossedRegion(CrossedRegion),
    /// The region lets go of the agent (Second Life sends it here; OpenSimulator over UDP).
    DisableSimulator,
    /// The `ParcelProperties` message (OpenSimulator sends it only over the event queue).
    ParcelProperties(Box<ParcelProperties>),
    /// The agent's group memberships.
    AgentGroupDataUpdate(AgentGroupDataUpdate),
    /// Whether a script in an object is running.
    ScriptRunningReply(ScriptRunningReply),
    /// Physics settings of objects (one entry per `ObjectData` block).
    ObjectPhysicsProperties(Vec<ObjectPhysicsProperties>),
    /// The region's environment changed: fetch it again.
    WindLightRefresh {
        /// Blend into the new settings rather than switching at once.
        interpolate: bool,
    },
    /// An invitation into a group or conference chat session (with its first message).
    ChatterBoxInvitation(ChatterBoxInvitation),
    /// The answer to a `ChatSessionRequest` that started a session.
    ChatterBoxSessionStartReply(ChatterBoxSessionStartReply),
    /// Participants joined or left a chat session.
    ChatterBoxSessionAgentListUpdates(ChatterBoxSessionAgentListUpdates),
    /// The server closed a chat session.
    ForceCloseChatterBoxSession {
        /// The session.
        session_id: Uuid,
        /// Why, for the user.
        reason: String,
    },
    /// Any event this crate has no type for, as received.
    Other {
        /// The event name (`message`).
        message: String,
        /// The event body.
        body: Value,
    },
    /// A known event whose body could not be read, as received, with the reason.
    Malformed {
        /// The event name (`message`; empty when the entry had none).
        message: String,
        /// The event body.
        body: Value,
        /// What is wrong with it.
        error: EventError,
    },
}

impl Event {
    /// The event's name on the wire (`message`).
    pub fn name(&self) -> &str {
        match self {
            Self::EnableSimulator(_) => "EnableSimulator",
            Self::EstablishAgentCommunication(_) => "EstablishAgentCommunication",
            Self::TeleportFinish(_) => "TeleportFinish",
            Self::CrossedRegion(_) => "CrossedRegion",
            Self::DisableSimulator => "DisableSimulator",
            Self::ParcelProperties(_) => "ParcelProperties",
            Self::AgentGroupDataUpdate(_) => "AgentGroupDataUpdate",
            Self::ScriptRunningReply(_) => "ScriptRunningReply",
            Self::ObjectPhysicsProperties(_) => "ObjectPhysicsProperties",
            Self::WindLightRefresh { .. } => "WindLightRefresh",
            Self::ChatterBoxInvitation(_) => "ChatterBoxInvitation",
            Self::ChatterBoxSessionStartReply(_) => "ChatterBoxSessionStartReply",
            Self::ChatterBoxSessionAgentListUpdates(_) => "ChatterBoxSessionAgentListUpdates",
            Self::ForceCloseChatterBoxSession { .. } => "ForceCloseChatterBoxSession",
            Self::Other { message, .. } | Self::Malformed { message, .. } => message,
        }
    }
}

/// `EnableSimulator`: a neighbour to open a child circuit to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnableSimulator {
    /// The neighbour's region handle.
    pub region_handle: u64,
    /// Its UDP endpoint.
    pub sim_addr: SocketAddrV4,
    /// Its width in metres (256 when not sent).
    pub region_size_x: u32,
    /// Its depth in metres (256 when not sent).
    pub region_size_y: u32,
}

/// `EstablishAgentCommunication`: a region's seed capability is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstablishAgentCommunication {
    /// The agent.
    pub agent_id: Uuid,
    /// The region's UDP endpoint (`sim-ip-and-port`).
    pub sim_addr: SocketAddrV4,
    /// The region's seed capability.
    pub seed_capability: String,
}

/// `TeleportFinish`: where to connect after a teleport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeleportFinish {
    /// The agent.
    pub agent_id: Uuid,
    /// `LocationID` (OpenSimulator always sends 4).
    pub location_id: u32,
    /// The destination's UDP endpoint (`SimIP`, `SimPort`).
    pub sim_addr: SocketAddrV4,
    /// The destination's region handle.
    pub region_handle: u64,
    /// The destination's seed capability.
    pub seed_capability: String,
    /// The destination's maturity (`SimAccess`: 13 PG, 21 mature, 42 adult).
    pub sim_access: u8,
    /// `TeleportFlags` (16 = via location).
    pub teleport_flags: u32,
    /// The destination's width in metres (256 when not sent).
    pub region_size_x: u32,
    /// The destination's depth in metres (256 when not sent).
    pub region_size_y: u32,
}

/// `CrossedRegion`: the agent moved into a neighbour.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossedRegion {
    /// The agent.
    pub agent_id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// Position in the new region.
    pub position: [f32; 3],
    /// Facing direction.
    pub look_at: [f32; 3],
    /// The new region's handle.
    pub region_handle: u64,
    /// The new region's seed capability.
    pub seed_capability: String,
    /// The new region's UDP endpoint.
    pub sim_addr: SocketAddrV4,
    /// The new region's width in metres (256 when not sent).
    pub region_size_x: u32,
    /// The new region's depth in metres (256 when not sent).
    pub region_size_y: u32,
}

/// The core of the `ParcelProperties` message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ParcelProperties {
    /// `LocalID`: the parcel's id within the region.
    pub local_id: i32,
    /// `SequenceID`: echoes the request's sequence id.
    pub sequence_id: i32,
    /// `RequestResult`.
    pub request_result: i32,
    /// `SnapSelection`.
    pub snap_selection: bool,
    /// `SelfCount`.
    pub self_count: i32,
    /// `OtherCount`.
    pub other_count: i32,
    /// `PublicCount`.
    pub public_count: i32,
    /// `OwnerID`.
    pub owner_id: Uuid,
    /// `IsGroupOwned`.
    pub is_group_owned: bool,
    /// `GroupID`.
    pub group_id: Uuid,
    /// `AuctionID`.
    pub auction_id: u32,
    /// `ClaimDate`.
    pub claim_date: Option<Date>,
    /// `ClaimPrice`.
    pub claim_price: i32,
    /// `RentPrice`.
    pub rent_price: i32,
    /// `AABBMin`: south-west-bottom corner of the parcel's bounding box.
    pub aabb_min: [f32; 3],
    /// `AABBMax`: north-east-top corner.
    pub aabb_max: [f32; 3],
    /// `Bitmap`: one bit per 4x4 m cell of the region that belongs to the parcel.
    pub bitmap: Vec<u8>,
    /// `Area` in square metres.
    pub area: i32,
    /// `Status` (0 leased, 1 for sale, 2 auction).
    pub status: u8,
    /// `SimWideMaxPrims`.
    pub sim_wide_max_prims: i32,
    /// `SimWideTotalPrims`.
    pub sim_wide_total_prims: i32,
    /// `MaxPrims`.
    pub max_prims: i32,
    /// `TotalPrims`.
    pub total_prims: i32,
    /// `OwnerPrims`.
    pub owner_prims: i32,
    /// `GroupPrims`.
    pub group_prims: i32,
    /// `OtherPrims`.
    pub other_prims: i32,
    /// `SelectedPrims`.
    pub selected_prims: i32,
    /// `ParcelPrimBonus`.
    pub parcel_prim_bonus: f32,
    /// `OtherCleanTime`.
    pub other_clean_time: i32,
    /// `ParcelFlags`.
    pub parcel_flags: u32,
    /// `SalePrice`.
    pub sale_price: i32,
    /// `Name`.
    pub name: String,
    /// `Desc`.
    pub desc: String,
    /// `MusicURL`.
    pub music_url: String,
    /// `MediaURL`.
    pub media_url: String,
    /// `MediaID`.
    pub media_id: Uuid,
    /// `MediaAutoScale`.
    pub media_auto_scale: bool,
    /// `PassPrice`.
    pub pass_price: i32,
    /// `PassHours`.
    pub pass_hours: f32,
    /// `Category`.
    pub category: u8,
    /// `AuthBuyerID`.
    pub auth_buyer_id: Uuid,
    /// `SnapshotID`.
    pub snapshot_id: Uuid,
    /// `UserLocation`: the landing point.
    pub user_location: [f32; 3],
    /// `UserLookAt`.
    pub user_look_at: [f32; 3],
    /// `LandingType` (0 blocked, 1 landing point, 2 anywhere).
    pub landing_type: u8,
    /// `RegionPushOverride`.
    pub region_push_override: bool,
    /// `RegionDenyAnonymous`.
    pub region_deny_anonymous: bool,
    /// `RegionDenyIdentified`.
    pub region_deny_identified: bool,
    /// `RegionDenyTransacted`.
    pub region_deny_transacted: bool,
    /// `SeeAVs`: avatars outside the parcel can see those inside.
    pub see_avs: bool,
    /// `AnyAVSounds`.
    pub any_av_sounds: bool,
    /// `GroupAVSounds`.
    pub group_av_sounds: bool,
    /// The `MediaData` block.
    pub media: Option<ParcelMedia>,
    /// `ParcelExtendedFlags[0].Flags`.
    pub extended_flags: Option<u32>,
    /// `AgeVerificationBlock[0].RegionDenyAgeUnverified`.
    pub region_deny_age_unverified: Option<bool>,
    /// `ParcelEnvironmentBlock[0].ParcelEnvironmentVersion` (-1: none).
    pub environment_version: Option<i32>,
    /// `ParcelEnvironmentBlock[0].RegionAllowEnvironmentOverride`.
    pub region_allow_environment_override: Option<bool>,
    /// `RegionAllowAccessBlock[0].RegionAllowAccessOverride`.
    pub region_allow_access_override: Option<bool>,
}

/// The `MediaData` block of `ParcelProperties`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParcelMedia {
    /// `MediaDesc`.
    pub desc: String,
    /// `MediaType` (a MIME type, `none/none` when unset).
    pub media_type: String,
    /// `MediaWidth`.
    pub width: i32,
    /// `MediaHeight`.
    pub height: i32,
    /// `MediaLoop`.
    pub looping: bool,
    /// `ObscureMedia`.
    pub obscure_media: bool,
    /// `ObscureMusic`.
    pub obscure_music: bool,
}

/// `AgentGroupDataUpdate`: the agent's group memberships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentGroupDataUpdate {
    /// The agent.
    pub agent_id: Uuid,
    /// One entry per group.
    pub groups: Vec<GroupMembership>,
}

/// One group of an [`AgentGroupDataUpdate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMembership {
    /// `GroupID`.
    pub group_id: Uuid,
    /// `GroupPowers`: the agent's power bits in the group.
    pub powers: u64,
    /// `AcceptNotices`.
    pub accept_notices: bool,
    /// `GroupInsigniaID`.
    pub insignia_id: Uuid,
    /// `Contribution`.
    pub contribution: i32,
    /// `GroupName`.
    pub name: String,
    /// `NewGroupData[i].ListInProfile`.
    pub list_in_profile: bool,
}

/// `ScriptRunningReply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptRunningReply {
    /// The object holding the script.
    pub object_id: Uuid,
    /// The script's inventory item.
    pub item_id: Uuid,
    /// Whether it runs.
    pub running: bool,
    /// Whether it is compiled to Mono.
    pub mono: bool,
}

/// One `ObjectData` block of `ObjectPhysicsProperties`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectPhysicsProperties {
    /// `LocalID` of the object.
    pub local_id: u32,
    /// `PhysicsShapeType` (0 prim, 1 none, 2 convex hull).
    pub physics_shape_type: u8,
    /// `Density`.
    pub density: f32,
    /// `Friction`.
    pub friction: f32,
    /// `Restitution`.
    pub restitution: f32,
    /// `GravityMultiplier`.
    pub gravity_multiplier: f32,
}

/// `ChatterBoxInvitation`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatterBoxInvitation {
    /// The chat session.
    pub session_id: Uuid,
    /// Its name (the group name for group chat).
    pub session_name: String,
    /// Who invited.
    pub from_id: Uuid,
    /// Their name.
    pub from_name: String,
    /// The message that came with the invitation, when there is one.
    pub instant_message: Option<InstantMessage>,
}

/// The `instantmessage.message_params` of a [`ChatterBoxInvitation`].
#[derive(Clone, Debug, PartialEq)]
pub struct InstantMessage {
    /// `from_id`.
    pub from_id: Uuid,
    /// `from_name`.
    pub from_name: String,
    /// `to_id` (the session for group chat).
    pub to_id: Uuid,
    /// `message`.
    pub message: String,
    /// `type`: the IM dialog (17 session send ...).
    pub dialog: u8,
    /// `timestamp`.
    pub timestamp: u32,
    /// `offline`.
    pub offline: bool,
    /// `id`: the transaction / session id.
    pub id: Uuid,
    /// `from_group`.
    pub from_group: bool,
    /// `parent_estate_id`.
    pub parent_estate_id: u32,
    /// `region_id`.
    pub region_id: Uuid,
    /// `position`.
    pub position: [f32; 3],
    /// `data.binary_bucket`.
    pub binary_bucket: Vec<u8>,
}

/// `ChatterBoxSessionStartReply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatterBoxSessionStartReply {
    /// The session.
    pub session_id: Uuid,
    /// The temporary id the request used.
    pub temp_session_id: Uuid,
    /// Whether the session started.
    pub success: bool,
    /// `session_info.session_name`.
    pub session_name: Option<String>,
    /// `session_info.type`.
    pub session_type: Option<i32>,
    /// `session_info.voice_enabled`.
    pub voice_enabled: Option<bool>,
    /// `session_info.moderated_mode.voice`.
    pub moderated_voice: Option<bool>,
    /// `error`, on failure.
    pub error: Option<String>,
}

/// `ChatterBoxSessionAgentListUpdates`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatterBoxSessionAgentListUpdates {
    /// The session.
    pub session_id: Uuid,
    /// One entry per agent that changed.
    pub updates: Vec<AgentListUpdate>,
}

/// One participant change of a chat session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentListUpdate {
    /// The participant.
    pub agent_id: Uuid,
    /// Joined (`Some(true)`, `ENTER`) or left (`Some(false)`, `LEAVE`).
    pub entered: Option<bool>,
    /// `info.can_voice_chat`.
    pub can_voice_chat: Option<bool>,
    /// `info.is_moderator`.
    pub is_moderator: Option<bool>,
    /// `info.mutes.text`: muted in text chat.
    pub muted_text: Option<bool>,
}

/// Reads one event body into its typed form: [`Event::Other`] for names without a type,
/// [`Event::Malformed`] (keeping the body) when a known body cannot be read.
pub fn parse_event(message: String, body: Value) -> Event {
    let parsed = match message.as_str() {
        "EnableSimulator" => enable_simulator(&body).map(Event::EnableSimulator),
        "EstablishAgentCommunication" => {
            establish_agent_communication(&body).map(Event::EstablishAgentCommunication)
        }
        "TeleportFinish" => teleport_finish(&body).map(Event::TeleportFinish),
        "CrossedRegion" => crossed_region(&body).map(Event::CrossedRegion),
        "DisableSimulator" => Ok(Event::DisableSimulator),
        "ParcelProperties" => {
            parcel_properties(&body).map(|p| Event::ParcelProperties(Box::new(p)))
        }
        "AgentGroupDataUpdate" => agent_group_data_update(&body).map(Event::AgentGroupDataUpdate),
        "ScriptRunningReply" => script_running_reply(&body).map(Event::ScriptRunningReply),
        "ObjectPhysicsProperties" => {
            object_physics_properties(&body).map(Event::ObjectPhysicsProperties)
        }
        "WindLightRefresh" => Fields(&body)
            .def("Interpolate", Value::as_bool_lenient)
            .map(|interpolate| Event::WindLightRefresh { interpolate }),
        "ChatterBoxInvitation" => chatterbox_invitation(&body).map(Event::ChatterBoxInvitation),
        "ChatterBoxSessionStartReply" => {
            session_start_reply(&body).map(Event::ChatterBoxSessionStartReply)
        }
        "ChatterBoxSessionAgentListUpdates" => {
            agent_list_updates(&body).map(Event::ChatterBoxSessionAgentListUpdates)
        }
        "ForceCloseChatterBoxSession" => {
            let f = Fields(&body);
            (|| {
                Ok(Event::ForceCloseChatterBoxSession {
                    session_id: f.req("session_id", Value::as_uuid_lenient)?,
                    reason: f.def("reason", string)?,
                })
            })()
        }
        _ => return Event::Other { message, body },
    };
    parsed.unwrap_or_else(|error| Event::Malformed {
        message,
        body,
        error,
    })
}

// --- field access ---

/// Typed access to the fields of one LLSD map, naming the field in errors.
#[derive(Clone, Copy)]
struct Fields<'a>(&'a Value);

impl<'a> Fields<'a> {
    fn raw(self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_undef())
    }

    /// A field that must be present.
    fn req<T>(
        self,
        key: &'static str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T, EventError> {
        let v = self.raw(key).ok_or(EventError::Missing(key))?;
        f(v).ok_or(EventError::Invalid {
            field: key,
            found: v.type_name(),
        })
    }

    /// A field that may be absent (`None`), but not of the wrong type.
    fn opt<T>(
        self,
        key: &'static str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, EventError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or(EventError::Invalid {
                field: key,
                found: v.type_name(),
            }),
        }
    }

    /// A field that takes its default when absent.
    fn def<T: Default>(
        self,
        key: &'static str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T, EventError> {
        Ok(self.opt(key, f)?.unwrap_or_default())
    }

    /// A region dimension: positive, 256 when absent.
    fn region_size(self, key: &'static str) -> Result<u32, EventError> {
        Ok(self
            .opt(key, |v| v.as_u32_lenient().filter(|n| *n > 0))?
            .unwrap_or(256))
    }

    fn sim_addr(self, ip: &'static str, port: &'static str) -> Result<SocketAddrV4, EventError> {
        let ip: Ipv4Addr = self.req(ip, Value::as_ipv4_lenient)?;
        Ok(SocketAddrV4::new(
            ip,
            self.req(port, Value::as_port_lenient)?,
        ))
    }
}

/// The blocks (maps) of the array `key`; a bare map counts as one block, absence as none.
fn blocks<'a>(body: &'a Value, key: &'static str) -> Result<Vec<Fields<'a>>, EventError> {
    let invalid = |v: &Value| EventError::Invalid {
        field: key,
        found: v.type_name(),
    };
    match body.get(key) {
        None | Some(Value::Undef) => Ok(Vec::new()),
        Some(m @ Value::Map(_)) => Ok(vec![Fields(m)]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|b| {
                if b.as_map().is_some() {
                    Ok(Fields(b))
                } else {
                    Err(invalid(b))
                }
            })
            .collect(),
        Some(other) => Err(invalid(other)),
    }
}

/// The first block of `key`, which must exist.
fn block<'a>(body: &'a Value, key: &'static str) -> Result<Fields<'a>, EventError> {
    opt_block(body, key)?.ok_or(EventError::Missing(key))
}

/// The first block of `key`, if any.
fn opt_block<'a>(body: &'a Value, key: &'static str) -> Result<Option<Fields<'a>>, EventError> {
    Ok(blocks(body, key)?.into_iter().next())
}

fn string(v: &Value) -> Option<String> {
    v.as_str().or_else(|| v.as_uri()).map(str::to_owned)
}

fn u8_field(v: &Value) -> Option<u8> {
    v.as_u32_lenient().and_then(|n| u8::try_from(n).ok())
}

fn f32_field(v: &Value) -> Option<f32> {
    v.as_f64_lenient().map(|f| f as f32)
}

fn vec3(v: &Value) -> Option<[f32; 3]> {
    v.as_vec3_lenient()
        .map(|[x, y, z]| [x as f32, y as f32, z as f32])
}

fn binary(v: &Value) -> Option<Vec<u8>> {
    v.as_binary().map(<[u8]>::to_vec)
}

// --- the events ---

fn enable_simulator(body: &Value) -> Result<EnableSimulator, EventError> {
    let b = block(body, "SimulatorInfo")?;
    Ok(EnableSimulator {
        region_handle: b.req("Handle", Value::as_u64_lenient)?,
        sim_addr: b.sim_addr("IP", "Port")?,
        region_size_x: b.region_size("RegionSizeX")?,
        region_size_y: b.region_size("RegionSizeY")?,
    })
}

fn establish_agent_communication(body: &Value) -> Result<EstablishAgentCommunication, EventError> {
    let f = Fields(body);
    Ok(EstablishAgentCommunication {
        agent_id: f.req("agent-id", Value::as_uuid_lenient)?,
        sim_addr: f.req("sim-ip-and-port", Value::as_socket_addr_lenient)?,
        seed_capability: f.req("seed-capability", string)?,
    })
}

fn teleport_finish(body: &Value) -> Result<TeleportFinish, EventError> {
    let b = block(body, "Info")?;
    Ok(TeleportFinish {
        agent_id: b.def("AgentID", Value::as_uuid_lenient)?,
        location_id: b.def("LocationID", Value::as_u32_lenient)?,
        sim_addr: b.sim_addr("SimIP", "SimPort")?,
        region_handle: b.req("RegionHandle", Value::as_u64_lenient)?,
        seed_capability: b.req("SeedCapability", string)?,
        sim_access: b.def("SimAccess", u8_field)?,
        teleport_flags: b.def("TeleportFlags", Value::as_u32_lenient)?,
        region_size_x: b.region_size("RegionSizeX")?,
        region_size_y: b.region_size("RegionSizeY")?,
    })
}

fn crossed_region(body: &Value) -> Result<CrossedRegion, EventError> {
    let agent = block(body, "AgentData")?;
    let info = block(body, "Info")?;
    let region = block(body, "RegionData")?;
    Ok(CrossedRegion {
        agent_id: agent.def("AgentID", Value::as_uuid_lenient)?,
        session_id: agent.def("SessionID", Value::as_uuid_lenient)?,
        position: info.def("Position", vec3)?,
        look_at: info.def("LookAt", vec3)?,
        region_handle: region.req("RegionHandle", Value::as_u64_lenient)?,
        seed_capability: region.req("SeedCapability", string)?,
        sim_addr: region.sim_addr("SimIP", "SimPort")?,
        region_size_x: region.region_size("RegionSizeX")?,
        region_size_y: region.region_size("RegionSizeY")?,
    })
}

fn parcel_properties(body: &Value) -> Result<ParcelProperties, EventError> {
    let p = block(body, "ParcelData")?;
    let i32f = Value::as_i32_lenient;
    let boolf = Value::as_bool_lenient;
    let uuidf = Value::as_uuid_lenient;
    let media = opt_block(body, "MediaData")?
        .map(|m| -> Result<ParcelMedia, EventError> {
            Ok(ParcelMedia {
                desc: m.def("MediaDesc", string)?,
                media_type: m.def("MediaType", string)?,
                width: m.def("MediaWidth", i32f)?,
                height: m.def("MediaHeight", i32f)?,
                looping: m.def("MediaLoop", boolf)?,
                obscure_media: m.def("ObscureMedia", boolf)?,
                obscure_music: m.def("ObscureMusic", boolf)?,
            })
        })
        .transpose()?;
    let in_block = |name: &'static str| opt_block(body, name);
    let extended_flags = match in_block("ParcelExtendedFlags")? {
        Some(b) => b.opt("Flags", Value::as_u32_lenient)?,
        None => None,
    };
    let region_deny_age_unverified = match in_block("AgeVerificationBlock")? {
        Some(b) => b.opt("RegionDenyAgeUnverified", boolf)?,
        None => None,
    };
    let (environment_version, region_allow_environment_override) =
        match in_block("ParcelEnvironmentBlock")? {
            Some(b) => (
                b.opt("ParcelEnvironmentVersion", i32f)?,
                b.opt("RegionAllowEnvironmentOverride", boolf)?,
            ),
            None => (None, None),
        };
    let region_allow_access_override = match in_block("RegionAllowAccessBlock")? {
        Some(b) => b.opt("RegionAllowAccessOverride", boolf)?,
        None => None,
    };
    Ok(ParcelProperties {
        local_id: p.req("LocalID", i32f)?,
        sequence_id: p.def("SequenceID", i32f)?,
        request_result: p.def("RequestResult", i32f)?,
        snap_selection: p.def("SnapSelection", boolf)?,
        self_count: p.def("SelfCount", i32f)?,
        other_count: p.def("OtherCount", i32f)?,
        public_count: p.def("PublicCount", i32f)?,
        owner_id: p.def("OwnerID", uuidf)?,
        is_group_owned: p.def("IsGroupOwned", boolf)?,
        group_id: p.def("GroupID", uuidf)?,
        auction_id: p.def("AuctionID", Value::as_u32_lenient)?,
        claim_date: p.opt("ClaimDate", Value::as_date)?,
        claim_price: p.def("ClaimPrice", i32f)?,
        rent_price: p.def("RentPrice", i32f)?,
        aabb_min: p.def("AABBMin", vec3)?,
        aabb_max: p.def("AABBMax", vec3)?,
        bitmap: p.def("Bitmap", binary)?,
        area: p.def("Area", i32f)?,
        status: p.def("Status", u8_field)?,
        sim_wide_max_prims: p.def("SimWideMaxPrims", i32f)?,
        sim_wide_total_prims: p.def("SimWideTotalPrims", i32f)?,
        max_prims: p.def("MaxPrims", i32f)?,
        total_prims: p.def("TotalPrims", i32f)?,
        owner_prims: p.def("OwnerPrims", i32f)?,
        group_prims: p.def("GroupPrims", i32f)?,
        other_prims: p.def("OtherPrims", i32f)?,
        selected_prims: p.def("SelectedPrims", i32f)?,
        parcel_prim_bonus: p.def("ParcelPrimBonus", f32_field)?,
        other_clean_time: p.def("OtherCleanTime", i32f)?,
        parcel_flags: p.def("ParcelFlags", Value::as_u32_lenient)?,
        sale_price: p.def("SalePrice", i32f)?,
        name: p.def("Name", string)?,
        desc: p.def("Desc", string)?,
        music_url: p.def("MusicURL", string)?,
        media_url: p.def("MediaURL", string)?,
        media_id: p.def("MediaID", uuidf)?,
        media_auto_scale: p.def("MediaAutoScale", boolf)?,
        pass_price: p.def("PassPrice", i32f)?,
        pass_hours: p.def("PassHours", f32_field)?,
        category: p.def("Category", u8_field)?,
        auth_buyer_id: p.def("AuthBuyerID", uuidf)?,
        snapshot_id: p.def("SnapshotID", uuidf)?,
        user_location: p.def("UserLocation", vec3)?,
        user_look_at: p.def("UserLookAt", vec3)?,
        landing_type: p.def("LandingType", u8_field)?,
        region_push_override: p.def("RegionPushOverride", boolf)?,
        region_deny_anonymous: p.def("RegionDenyAnonymous", boolf)?,
        region_deny_identified: p.def("RegionDenyIdentified", boolf)?,
        region_deny_transacted: p.def("RegionDenyTransacted", boolf)?,
        see_avs: p.def("SeeAVs", boolf)?,
        any_av_sounds: p.def("AnyAVSounds", boolf)?,
        group_av_sounds: p.def("GroupAVSounds", boolf)?,
        media,
        extended_flags,
        region_deny_age_unverified,
        environment_version,
        region_allow_environment_override,
        region_allow_access_override,
    })
}

fn agent_group_data_update(body: &Value) -> Result<AgentGroupDataUpdate, EventError> {
    let agent_id = block(body, "AgentData")?.req("AgentID", Value::as_uuid_lenient)?;
    let extra = blocks(body, "NewGroupData")?;
    let groups = blocks(body, "GroupData")?
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            Ok(GroupMembership {
                group_id: g.req("GroupID", Value::as_uuid_lenient)?,
                powers: g.def("GroupPowers", Value::as_u64_lenient)?,
                accept_notices: g.def("AcceptNotices", Value::as_bool_lenient)?,
                insignia_id: g.def("GroupInsigniaID", Value::as_uuid_lenient)?,
                contribution: g.def("Contribution", Value::as_i32_lenient)?,
                name: g.def("GroupName", string)?,
                list_in_profile: match extra.get(i) {
                    Some(n) => n.def("ListInProfile", Value::as_bool_lenient)?,
                    None => false,
                },
            })
        })
        .collect::<Result<_, EventError>>()?;
    Ok(AgentGroupDataUpdate { agent_id, groups })
}

fn script_running_reply(body: &Value) -> Result<ScriptRunningReply, EventError> {
    let s = block(body, "Script")?;
    Ok(ScriptRunningReply {
        object_id: s.req("ObjectID", Value::as_uuid_lenient)?,
        item_id: s.req("ItemID", Value::as_uuid_lenient)?,
        running: s.def("Running", Value::as_bool_lenient)?,
        mono: s.def("Mono", Value::as_bool_lenient)?,
    })
}

fn object_physics_properties(body: &Value) -> Result<Vec<ObjectPhysicsProperties>, EventError> {
    blocks(body, "ObjectData")?
        .into_iter()
        .map(|o| {
            Ok(ObjectPhysicsProperties {
                local_id: o.req("LocalID", Value::as_u32_lenient)?,
                physics_shape_type: o.def("PhysicsShapeType", u8_field)?,
                density: o.def("Density", f32_field)?,
                friction: o.def("Friction", f32_field)?,
                restitution: o.def("Restitution", f32_field)?,
                gravity_multiplier: o.def("GravityMultiplier", f32_field)?,
            })
        })
        .collect()
}

fn chatterbox_invitation(body: &Value) -> Result<ChatterBoxInvitation, EventError> {
    let f = Fields(body);
    let params = body
        .get("instantmessage")
        .and_then(|im| im.get("message_params"))
        .filter(|p| p.as_map().is_some());
    let instant_message = params
        .map(|p| -> Result<InstantMessage, EventError> {
            let m = Fields(p);
            Ok(InstantMessage {
                from_id: m.def("from_id", Value::as_uuid_lenient)?,
                from_name: m.def("from_name", string)?,
                to_id: m.def("to_id", Value::as_uuid_lenient)?,
                message: m.def("message", string)?,
                dialog: m.def("type", u8_field)?,
                timestamp: m.def("timestamp", Value::as_u32_lenient)?,
                offline: m.def("offline", Value::as_bool_lenient)?,
                id: m.def("id", Value::as_uuid_lenient)?,
                from_group: m.def("from_group", Value::as_bool_lenient)?,
                parent_estate_id: m.def("parent_estate_id", Value::as_u32_lenient)?,
                region_id: m.def("region_id", Value::as_uuid_lenient)?,
                position: m.def("position", vec3)?,
                binary_bucket: match p.get("data") {
                    Some(d) => Fields(d).def("binary_bucket", binary)?,
                    None => Vec::new(),
                },
            })
        })
        .transpose()?;
    Ok(ChatterBoxInvitation {
        session_id: f.req("session_id", Value::as_uuid_lenient)?,
        session_name: f.def("session_name", string)?,
        from_id: f.def("from_id", Value::as_uuid_lenient)?,
        from_name: f.def("from_name", string)?,
        instant_message,
    })
}

fn session_start_reply(body: &Value) -> Result<ChatterBoxSessionStartReply, EventError> {
    let f = Fields(body);
    let info = body.get("session_info").filter(|i| i.as_map().is_some());
    let (session_name, session_type, voice_enabled, moderated_voice) = match info {
        Some(i) => {
            let i = Fields(i);
            (
                i.opt("session_name", string)?,
                i.opt("type", Value::as_i32_lenient)?,
                i.opt("voice_enabled", Value::as_bool_lenient)?,
                match i.0.get("moderated_mode") {
                    Some(m) => Fields(m).opt("voice", Value::as_bool_lenient)?,
                    None => None,
                },
            )
        }
        None => (None, None, None, None),
    };
    Ok(ChatterBoxSessionStartReply {
        session_id: f.req("session_id", Value::as_uuid_lenient)?,
        temp_session_id: f.def("temp_session_id", Value::as_uuid_lenient)?,
        success: f.def("success", Value::as_bool_lenient)?,
        session_name,
        session_type,
        voice_enabled,
        moderated_voice,
        error: f.opt("error", string)?,
    })
}

fn agent_list_updates(body: &Value) -> Result<ChatterBoxSessionAgentListUpdates, EventError> {
    let f = Fields(body);
    let transition = |v: &Value| match v.as_str()? {
        s if s.eq_ignore_ascii_case("ENTER") => Some(true),
        s if s.eq_ignore_ascii_case("LEAVE") => Some(false),
        _ => None,
    };
    let agent_key = |key: &str, field: &'static str| {
        Uuid::try_parse(key.trim()).map_err(|_| EventError::Invalid {
            field,
            found: "a key that is not a UUID",
        })
    };
    let mut updates = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if let Some(map) = f.raw("agent_updates").and_then(Value::as_map) {
        for (key, entry) in map {
            let e = Fields(entry);
            let info = entry.get("info").map(Fields);
            let opt_info = |k: &'static str| match info {
                Some(i) => i.opt(k, Value::as_bool_lenient),
                None => Ok(None),
            };
            let agent_id = agent_key(key, "agent_updates")?;
            seen.insert(agent_id);
            updates.push(AgentListUpdate {
                agent_id,
                entered: e.opt("transition", transition)?,
                can_voice_chat: opt_info("can_voice_chat")?,
                is_moderator: opt_info("is_moderator")?,
                muted_text: match info.and_then(|i| i.0.get("mutes")) {
                    Some(m) => Fields(m).opt("text", Value::as_bool_lenient)?,
                    None => None,
                },
            });
        }
    }
    // The older form: `updates: { <agent id>: "ENTER" | "LEAVE" }`.
    if let Some(map) = f.raw("updates").and_then(Value::as_map) {
        for (key, v) in map {
            let agent_id = agent_key(key, "updates")?;
            // A hash set, not a scan: a hostile map may hold very many entries.
            if !seen.insert(agent_id) {
                continue;
            }
            updates.push(AgentListUpdate {
                agent_id,
                entered: Some(transition(v).ok_or(EventError::Invalid {
                    field: "updates",
                    found: v.type_name(),
                })?),
                can_voice_chat: None,
                is_moderator: None,
                muted_text: None,
            });
        }
    }
    Ok(ChatterBoxSessionAgentListUpdates {
        session_id: f.req("session_id", Value::as_uuid_lenient)?,
        updates,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn xml(body: &str) -> Value {
        opensim_llsd::from_xml(format!("<llsd>{body}</llsd>").as_bytes()).unwrap()
    }

    const A: &str = "aaaaaaaa-bbbb-4ccc-8ddd-000000000001";
    const B: &str = "11111111-2222-4333-8444-555555555555";

    #[test]
    fn crossed_region_in_opensim_form() {
        let body = xml(&format!(
            "<map><key>AgentData</key><array><map><key>AgentID</key><uuid>{A}</uuid>\
             <key>SessionID</key><uuid>{B}</uuid></map></array>\
             <key>Info</key><array><map><key>LookAt</key><array><real>1</real><real>0</real><real>0</real></array>\
             <key>Position</key><array><real>3.5</real><real>128</real><real>22</real></array></map></array>\
             <key>RegionData</key><array><map><key>RegionHandle</key><binary>AAPoAAAD6QA=</binary>\
             <key>SeedCapability</key><string>http://h:9000/CAPS/s0000/</string>\
             <key>SimIP</key><binary>wKgBAg==</binary><key>SimPort</key><integer>9005</integer>\
             <key>RegionSizeX</key><integer>256</integer><key>RegionSizeY</key><binary>AAABAA==</binary>\
             </map></array></map>"
        ));
        let Event::CrossedRegion(c) = parse_event("CrossedRegion".into(), body) else {
            panic!()
        };
        assert_eq!(c.agent_id.to_string(), A);
        assert_eq!(c.session_id.to_string(), B);
        assert_eq!(c.position, [3.5, 128.0, 22.0]);
        assert_eq!(c.look_at, [1.0, 0.0, 0.0]);
        assert_eq!(c.region_handle, ((1000u64 * 256) << 32) | (1001 * 256));
        assert_eq!(c.sim_addr.to_string(), "192.168.1.2:9005");
        assert_eq!(c.seed_capability, "http://h:9000/CAPS/s0000/");
        // RegionSizeX as an integer, RegionSizeY as binary: both accepted.
        assert_eq!((c.region_size_x, c.region_size_y), (256, 256));
    }

    #[test]
    fn enable_simulator_without_sizes_defaults_to_256() {
        let body = xml(
            "<map><key>SimulatorInfo</key><array><map><key>Handle</key><binary>AAPoAAAD6AA=</binary>\
             <key>IP</key><binary>fwAAAQ==</binary><key>Port</key><integer>9000</integer></map></array></map>",
        );
        let Event::EnableSimulator(e) = parse_event("EnableSimulator".into(), body) else {
            panic!()
        };
        assert_eq!(e.region_handle, 1_099_511_628_032_000);
        assert_eq!((e.region_size_x, e.region_size_y), (256, 256));
    }

    #[test]
    fn group_data_in_opensim_form() {
        let body = xml(&format!(
            "<map><key>AgentData</key><array><map><key>AgentID</key><uuid>{A}</uuid></map></array>\
             <key>GroupData</key><array>\
               <map><key>GroupID</key><uuid>{B}</uuid><key>GroupPowers</key><binary>AAAAAQAAAAI=</binary>\
               <key>AcceptNotices</key><boolean>1</boolean><key>GroupInsigniaID</key><uuid/>\
               <key>Contribution</key><integer>-3</integer><key>GroupName</key><string>Builders</string></map>\
               <map><key>GroupID</key><uuid>{A}</uuid></map>\
             </array><key>NewGroupData</key><array><map><key>ListInProfile</key><boolean>1</boolean></map></array></map>"
        ));
        let Event::AgentGroupDataUpdate(g) = parse_event("AgentGroupDataUpdate".into(), body)
        else {
            panic!()
        };
        assert_eq!(g.agent_id.to_string(), A);
        assert_eq!(g.groups.len(), 2);
        let first = &g.groups[0];
        assert_eq!(first.powers, (1 << 32) | 2);
        assert!(first.accept_notices && first.list_in_profile);
        assert_eq!((first.contribution, first.name.as_str()), (-3, "Builders"));
        assert_eq!(first.insignia_id, Uuid::nil());
        // Fewer NewGroupData blocks than groups: the rest are not listed.
        assert!(!g.groups[1].list_in_profile);

        let empty = xml(&format!(
            "<map><key>AgentData</key><array><map><key>AgentID</key><uuid>{A}</uuid></map></array>\
             <key>GroupData</key><array/><key>NewGroupData</key><array/></map>"
        ));
        let Event::AgentGroupDataUpdate(g) = parse_event("AgentGroupDataUpdate".into(), empty)
        else {
            panic!()
        };
        assert!(g.groups.is_empty());
    }

    #[test]
    fn chat_session_events() {
        let invite = xml(&format!(
            "<map><key>session_id</key><uuid>{B}</uuid><key>from_name</key><string>Ann</string>\
             <key>session_name</key><string>Builders</string><key>from_id</key><uuid>{A}</uuid>\
             <key>instantmessage</key><map><key>message_params</key><map>\
               <key>type</key><integer>17</integer><key>position</key><array><real>1</real><real>2</real><real>3</real></array>\
               <key>region_id</key><uuid/><key>to_id</key><uuid>{B}</uuid><key>source</key><integer>0</integer>\
               <key>data</key><map><key>binary_bucket</key><binary>AQI=</binary></map>\
               <key>message</key><string>hi all</string><key>id</key><uuid>{B}</uuid>\
               <key>from_name</key><string>Ann</string><key>timestamp</key><binary>AAAAKg==</binary>\
               <key>offline</key><integer>0</integer><key>parent_estate_id</key><integer>1</integer>\
               <key>ttl</key><integer>0</integer><key>from_id</key><uuid>{A}</uuid>\
               <key>from_group</key><boolean>1</boolean></map>\
             <key>agent_params</key><map/></map></map>"
        ));
        let Event::ChatterBoxInvitation(i) = parse_event("ChatterBoxInvitation".into(), invite)
        else {
            panic!()
        };
        assert_eq!(
            (i.session_name.as_str(), i.from_name.as_str()),
            ("Builders", "Ann")
        );
        let m = i.instant_message.unwrap();
        assert_eq!(
            (m.message.as_str(), m.dialog, m.timestamp),
            ("hi all", 17, 42)
        );
        assert_eq!(m.binary_bucket, [1, 2]);
        assert!(m.from_group && !m.offline);
        assert_eq!((m.parent_estate_id, m.position), (1, [1.0, 2.0, 3.0]));

        let reply = xml(&format!(
            "<map><key>session_id</key><uuid>{B}</uuid><key>temp_session_id</key><uuid>{A}</uuid>\
             <key>success</key><boolean>1</boolean><key>session_info</key><map>\
             <key>moderated_mode</key><map><key>voice</key><boolean>0</boolean></map>\
             <key>session_name</key><string>Builders</string><key>type</key><integer>0</integer>\
             <key>voice_enabled</key><boolean>1</boolean></map></map>"
        ));
        let Event::ChatterBoxSessionStartReply(r) =
            parse_event("ChatterBoxSessionStartReply".into(), reply)
        else {
            panic!()
        };
        assert!(r.success);
        assert_eq!(r.session_name.as_deref(), Some("Builders"));
        assert_eq!(
            (r.session_type, r.voice_enabled, r.moderated_voice),
            (Some(0), Some(true), Some(false))
        );
        assert_eq!(r.error, None);

        let updates = xml(&format!(
            "<map><key>agent_updates</key><map><key>{A}</key><map><key>info</key><map>\
             <key>can_voice_chat</key><boolean>1</boolean><key>is_moderator</key><boolean>0</boolean>\
             <key>mutes</key><map><key>text</key><boolean>0</boolean></map></map>\
             <key>transition</key><string>ENTER</string></map></map>\
             <key>updates</key><map><key>{B}</key><string>LEAVE</string><key>{A}</key><string>LEAVE</string></map>\
             <key>session_id</key><uuid>{B}</uuid></map>"
        ));
        let Event::ChatterBoxSessionAgentListUpdates(u) =
            parse_event("ChatterBoxSessionAgentListUpdates".into(), updates)
        else {
            panic!()
        };
        assert_eq!(u.updates.len(), 2);
        assert_eq!(u.updates[0].agent_id.to_string(), A);
        assert_eq!(u.updates[0].entered, Some(true));
        assert_eq!(u.updates[0].can_voice_chat, Some(true));
        assert_eq!(u.updates[0].muted_text, Some(false));
        assert_eq!(
            (
                u.updates[1].agent_id.to_string().as_str(),
                u.updates[1].entered
            ),
            (B, Some(false))
        );

        let close = xml(&format!(
            "<map><key>session_id</key><uuid>{B}</uuid><key>reason</key><string>bye</string></map>"
        ));
        assert_eq!(
            parse_event("ForceCloseChatterBoxSession".into(), close),
            Event::ForceCloseChatterBoxSession {
                session_id: Uuid::parse_str(B).unwrap(),
                reason: "bye".into()
            }
        );
    }

    #[test]
    fn object_physics_properties_blocks() {
        let body = xml(
            "<map><key>ObjectData</key><array><map><key>LocalID</key><integer>-2</integer>\
             <key>Density</key><real>1000</real><key>Friction</key><real>0.6</real>\
             <key>GravityMultiplier</key><real>1</real><key>Restitution</key><real>0.5</real>\
             <key>PhysicsShapeType</key><integer>2</integer></map></array></map>",
        );
        let Event::ObjectPhysicsProperties(o) = parse_event("ObjectPhysicsProperties".into(), body)
        else {
            panic!()
        };
        // OpenSimulator casts the U32 local id to int: large ids arrive negative.
        assert_eq!(o[0].local_id, u32::MAX - 1);
        assert_eq!((o[0].physics_shape_type, o[0].friction), (2, 0.6));
    }

    #[test]
    fn wrong_types_make_the_event_malformed_and_keep_the_body() {
        let body = xml(
            "<map><key>Info</key><array><map><key>SimIP</key><string>not an ip</string>\
             <key>SimPort</key><integer>9000</integer></map></array></map>",
        );
        match parse_event("TeleportFinish".into(), body.clone()) {
            Event::Malformed {
                message,
                body: kept,
                error,
            } => {
                assert_eq!(message, "TeleportFinish");
                assert_eq!(kept, body);
                assert_eq!(
                    error,
                    EventError::Invalid {
                        field: "SimIP",
                        found: "string"
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        let port = xml(
            "<map><key>SimulatorInfo</key><map><key>Handle</key><integer>1</integer>\
             <key>IP</key><binary>fwAAAQ==</binary><key>Port</key><integer>70000</integer></map></map>",
        );
        assert!(matches!(
            parse_event("EnableSimulator".into(), port),
            Event::Malformed {
                error: EventError::Invalid { field: "Port", .. },
                ..
            }
        ));
        let no_parcel = xml("<map><key>ParcelData</key><array><string>x</string></array></map>");
        assert!(matches!(
            parse_event("ParcelProperties".into(), no_parcel),
            Event::Malformed {
                error: EventError::Invalid {
                    field: "ParcelData",
                    ..
                },
                ..
            }
        ));
        let bad_key = xml(
            "<map><key>agent_updates</key><map><key>nope</key><map/></map><key>session_id</key><uuid/></map>",
        );
        assert!(matches!(
            parse_event("ChatterBoxSessionAgentListUpdates".into(), bad_key),
            Event::Malformed {
                error: EventError::Invalid {
                    field: "agent_updates",
                    ..
                },
                ..
            }
        ));
    }
}
