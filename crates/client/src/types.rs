//! Plain data handed out by a session.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

/// The current region as a caller sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionSummary {
    /// Name from `RegionHandshake`.
    pub name: String,
    /// Region handle (global corner in metres, x in the high 32 bits).
    pub handle: u64,
    /// Width and depth in metres.
    pub size: (u32, u32),
    /// Water level in metres.
    pub water_height: f32,
    /// The simulator's UDP address.
    pub sim_addr: SocketAddr,
    /// The region's UUID.
    pub region_id: Uuid,
}

impl RegionSummary {
    /// Global grid position of the region's south-west corner, in metres.
    pub fn global_corner(&self) -> (u32, u32) {
        ((self.handle >> 32) as u32, self.handle as u32)
    }
}

/// Chat volume (`ChatFromViewer.Type`, `ChatFromSimulator.ChatType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatKind {
    /// 10 m.
    Whisper,
    /// 20 m.
    Normal,
    /// 100 m.
    Shout,
    /// Any other type (typing, owner say, region say ...), as its wire number.
    Other(u8),
}

impl ChatKind {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            ChatKind::Whisper => 0,
            ChatKind::Normal => 1,
            ChatKind::Shout => 2,
            ChatKind::Other(n) => n,
        }
    }

    /// From the wire value.
    pub fn from_u8(n: u8) -> Self {
        match n {
            0 => ChatKind::Whisper,
            1 => ChatKind::Normal,
            2 => ChatKind::Shout,
            n => ChatKind::Other(n),
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// [`Session::logout`](crate::Session::logout) finished.
    #[error("logged out")]
    LoggedOut,
    /// The simulator kicked the agent (`KickUser`), with its reason.
    #[error("kicked: {0}")]
    Kicked(String),
    /// The current region closed the agent (`DisableSimulator`, e.g. region shutdown).
    #[error("the region closed the connection")]
    RegionClosed,
    /// Nothing was heard from the current region for the circuit's idle timeout.
    #[error("the region stopped answering")]
    TimedOut,
    /// The circuit to the current region closed (the peer sent `CloseCircuit`).
    #[error("the circuit was closed")]
    CircuitClosed,
}

/// Something that happened in a session, in arrival order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The handshake with a region is done and the agent stands in it.
    RegionReady(RegionSummary),
    /// A terrain patch arrived (patch coordinates, 16 m units; terrain subsystem only).
    TerrainPatch {
        /// Column (east).
        x: u32,
        /// Row (north).
        y: u32,
    },
    /// A new object (objects subsystem only).
    ObjectAdded {
        /// Its local id.
        local_id: u32,
    },
    /// An object changed (full or terse update).
    ObjectUpdated {
        /// Its local id.
        local_id: u32,
    },
    /// An object left.
    ObjectRemoved {
        /// Its local id.
        local_id: u32,
    },
    /// Local chat heard (own chat included: the simulator echoes it).
    Chat {
        /// Speaker's name.
        from_name: String,
        /// Speaker's id (avatar or object).
        from_id: Uuid,
        /// The text.
        text: String,
        /// `ChatFromSimulator` carries no channel: 0, or `0x7FFFFFFF` for debug chat (type 6).
        channel: i32,
        /// Volume or type.
        kind: ChatKind,
    },
    /// An instant message to this agent (ordinary, from an object, or a system notice).
    InstantMessage {
        /// Sender.
        from_id: Uuid,
        /// Sender's name.
        from_name: String,
        /// The text.
        text: String,
    },
    /// A teleport moved on (`TeleportStart`, `TeleportProgress`, `TeleportFinish` received).
    TeleportProgress {
        /// What is going on.
        message: String,
    },
    /// A teleport ended and the agent stands in the destination.
    TeleportFinished(RegionSummary),
    /// The session is over; the last event.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// How to fetch a texture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextureVia {
    /// The region's `GetTexture` capability.
    Http,
    /// `RequestImage` over the circuit (`ImageData` + `ImagePacket`s).
    Udp,
    /// HTTP when the region grants the capability, else UDP.
    Auto,
}

/// A fetched, decoded texture.
#[derive(Clone, PartialEq, Eq)]
pub struct Texture {
    /// Asset id.
    pub id: Uuid,
    /// The JPEG 2000 codestream as received.
    pub j2k: Bytes,
    /// Width in pixels at the requested discard level.
    pub width: u32,
    /// Height in pixels at the requested discard level.
    pub height: u32,
    /// `width * height * 4` bytes of RGBA, rows top to bottom.
    pub rgba: Vec<u8>,
    /// How it was fetched.
    pub via: TextureVia,
}

impl std::fmt::Debug for Texture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texture")
            .field("id", &self.id)
            .field("j2k_bytes", &self.j2k.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("via", &self.via)
            .finish()
    }
}

/// Counters of a session, summed over its circuits (closed ones included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Datagrams received.
    pub packets_in: u64,
    /// Retransmissions.
    pub resends: u64,
    /// Reliable sends given up.
    pub gave_up: u64,
    /// Duplicate packets received.
    pub duplicates: u64,
    /// Smoothed round trip to the current region, once measured.
    pub srtt: Option<Duration>,
    /// Circuits open now.
    pub circuits_open: usize,
    /// Session events dropped because the reader was behind.
    pub events_dropped: u64,
}

impl SessionStats {
    /// Adds one circuit's counters.
    pub(crate) fn add_circuit(&mut self, st: &opensim_circuit::Stats) {
        self.bytes_out += st.bytes_sent;
        self.bytes_in += st.bytes_received;
        self.packets_out += st.sent;
        self.packets_in += st.received;
        self.resends += st.resent;
        self.gave_up += st.given_up;
        self.duplicates += st.duplicates;
    }
}
