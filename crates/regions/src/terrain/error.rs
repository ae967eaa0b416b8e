//! Errors of the terrain codec.

/// Anything that can go wrong decoding, encoding or storing terrain.
///
/// The three families tell who is at fault: bytes that are not a `LayerData` bit stream at all
/// ([`MalformedError`]), a well-formed stream that breaks the protocol's rules
/// ([`PeerError`]), and a caller asking for something impossible ([`MisuseError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TerrainError {
    /// The bytes cannot be parsed as a terrain bit stream.
    #[error("malformed terrain data: {0}")]
    Malformed(#[from] MalformedError),
    /// The bit stream parses but breaks the protocol's rules.
    #[error("peer broke the LayerData rules: {0}")]
    Peer(#[from] PeerError),
    /// The caller passed arguments the codec cannot honour.
    #[error("terrain API misuse: {0}")]
    Misuse(#[from] MisuseError),
}

/// The bytes are not a parsable terrain stream (or `.r32` file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedError {
    /// The stream ended in the middle of a field.
    #[error("ran out of bits at bit {bit_offset}: field needs {needed}, {available} left")]
    OutOfBits {
        /// Bit position (from the start of `Data`) where the field starts.
        bit_offset: usize,
        /// Bits the field needs.
        needed: u32,
        /// Bits left in the stream.
        available: usize,
    },
    /// Whole bytes follow the byte holding `END_OF_PATCHES`.
    #[error("{extra_bytes} byte(s) of trailing data after END_OF_PATCHES")]
    TrailingBytes {
        /// How many bytes follow.
        extra_bytes: usize,
    },
    /// An `.r32` heightmap whose length does not match the declared region size.
    #[error("r32 heightmap is {actual} bytes, expected {expected}")]
    R32Length {
        /// `width * height * 4`.
        expected: usize,
        /// What was given.
        actual: usize,
    },
}

/// The stream parses but a value in it breaks the protocol (or the declared region).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// `LayerID.Type` is none of the eight known layer codes.
    #[error("unknown layer type 0x{0:02X}")]
    UnknownLayerType(u8),
    /// The group header's layer type differs from `LayerID.Type`.
    #[error("LayerID.Type 0x{layer_id:02X} but group header says 0x{group_header:02X}")]
    LayerTypeMismatch {
        /// `LayerID.Type` of the message.
        layer_id: u8,
        /// Layer type inside the bit stream.
        group_header: u8,
    },
    /// The group header announces a patch size other than 16.
    #[error("unsupported patch size {0} (only 16 is in use)")]
    UnsupportedPatchSize(u8),
    /// A patch id lies outside the region the caller declared.
    #[error("patch ({x}, {y}) outside the region's {patches_x} x {patches_y} patches")]
    PatchOutOfRange {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
        /// Patches per row of the declared region.
        patches_x: u32,
        /// Patches per column of the declared region.
        patches_y: u32,
    },
    /// A patch header's `dc_offset` is NaN or infinite.
    #[error("patch ({x}, {y}) has a non-finite dc_offset {dc_offset}")]
    NonFiniteOffset {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
        /// The offending value.
        dc_offset: f32,
    },
}

/// The caller asked for something the codec cannot do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// Region sides must be multiples of 16 between 256 and 8192 metres.
    #[error("invalid region size {width} x {height} m (multiples of 16, 256..=8192)")]
    InvalidRegionSize {
        /// Requested width in metres.
        width: u32,
        /// Requested height in metres.
        height: u32,
    },
    /// A layer code this operation cannot use.
    #[error("layer type 0x{0:02X} cannot be used here")]
    WrongLayerType(u8),
    /// A patch applied to (or read from) a heightmap that does not contain it.
    #[error("patch ({x}, {y}) outside the heightmap's {patches_x} x {patches_y} patches")]
    PatchOutsideHeightmap {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
        /// Patches per row of the heightmap.
        patches_x: u32,
        /// Patches per column of the heightmap.
        patches_y: u32,
    },
    /// A patch id does not fit the layer's id field (5+5 bits, or 16+16 bits extended).
    #[error("patch ({x}, {y}) does not fit the {bits}-bit patch id field")]
    PatchIdTooLarge {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
        /// Width of the id field.
        bits: u32,
    },
    /// A height to encode is NaN or infinite.
    #[error("patch ({x}, {y}) holds a non-finite height")]
    NonFiniteHeight {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
    },
    /// A patch spans more than the 16-bit `range` field can describe.
    #[error("patch ({x}, {y}) spans {span} m, more than the 16-bit range allows")]
    RangeTooLarge {
        /// Patch column.
        x: u32,
        /// Patch row.
        y: u32,
        /// `max - min` of the patch.
        span: f32,
    },
}
