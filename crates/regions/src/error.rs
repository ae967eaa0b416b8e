//! Errors of the handshake, object, scene, stats and neighbour layers.
//!
//! The terrain codec keeps its own [`TerrainError`](crate::terrain::TerrainError); everything
//! else in this crate reports an [`Error`], which says whose fault it was: bytes that do not
//! parse ([`Malformed`]), a simulator that breaks the protocol's rules ([`PeerFault`]), or a
//! caller that asked for something impossible ([`Misuse`]).

/// Any failure of this crate outside the terrain codec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the peer that cannot be parsed.
    #[error("malformed data: {0}")]
    Malformed(#[from] Malformed),
    /// Well-formed data that breaks the protocol's rules.
    #[error("misbehaving peer: {0}")]
    Peer(#[from] PeerFault),
    /// The caller asked for something that cannot be done.
    #[error("API misuse: {0}")]
    Misuse(#[from] Misuse),
}

/// Bytes that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A field runs past the end of its buffer.
    #[error("{what} truncated at byte {at}: {needed} bytes needed, {available} left")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Offset of the read in that structure.
        at: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// An `ObjectUpdate` motion blob whose length is none of the known layouts.
    #[error("motion blob of {len} bytes has no known layout")]
    MotionLength {
        /// The blob's length.
        len: usize,
    },
    /// An `ImprovedTerseObjectUpdate` data block shorter than its layout.
    #[error("terse update of {len} bytes is shorter than the {needed} its layout needs")]
    TerseLength {
        /// The block's length.
        len: usize,
        /// The layout's length (44 for prims, 60 for avatars).
        needed: usize,
    },
    /// A TextureEntry that ends inside a section before the material ids.
    #[error("TextureEntry truncated in section {section} at byte {at}")]
    TextureEntry {
        /// The section (1-based, as in the protocol notes: 1 texture ... 11 material id).
        section: u8,
        /// Offset where the read failed.
        at: usize,
    },
    /// A known extra parameter whose data is too short for its type.
    #[error("extra parameter 0x{kind:02X} has {len} bytes, needs {needed}")]
    ExtraParam {
        /// The parameter type.
        kind: u16,
        /// Its data length.
        len: usize,
        /// The least its type needs.
        needed: usize,
    },
}

/// Data that parses but breaks the protocol's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFault {
    /// `CoarseLocationUpdate` with different numbers of locations and agent ids.
    #[error("CoarseLocationUpdate has {locations} locations but {agents} agent ids")]
    CoarseLocationMismatch {
        /// `Location` blocks.
        locations: usize,
        /// `AgentData` blocks.
        agents: usize,
    },
    /// More objects than the scene was allowed to hold.
    #[error("scene is full ({limit} objects)")]
    SceneFull {
        /// The configured limit.
        limit: usize,
    },
    /// A region size that is not a multiple of 16 in 256..=8192 metres.
    #[error("invalid region size {width} x {height} m")]
    RegionSize {
        /// Width in metres.
        width: u32,
        /// Height in metres.
        height: u32,
    },
}

/// A request the API cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// A value is too long for the wire field that must carry it.
    #[error("{what} of {len} bytes exceeds its {max}-byte limit")]
    FieldTooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most the wire format allows.
        max: usize,
    },
    /// More than 255 blocks for one message.
    #[error("{count} blocks do not fit in one message (255 at most)")]
    TooManyBlocks {
        /// The number of blocks.
        count: usize,
    },
    /// A teleport was requested while another one is under way.
    #[error("a teleport is already in progress")]
    TeleportInProgress,
    /// More faces than a TextureEntry can address.
    #[error("{faces} faces exceed the TextureEntry limit of 45")]
    TooManyFaces {
        /// The number of faces.
        faces: usize,
    },
}
