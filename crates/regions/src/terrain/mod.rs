//! Terrain: the `LayerData` patch codec and the region heightmap.
//!
//! A `LayerData` message carries a `LayerID.Type` byte and a `Data` bit stream: a group header,
//! then 16 x 16 patches, each a DCT block quantised to a few bits per coefficient, then the
//! 8-bit marker [`END_OF_PATCHES`] (see `regions.md` sections 1-4 in the shared protocol notes).
//!
//! * Decoding: [`decode_layer`] checks the group header and returns a [`LayerDecoder`], an
//!   iterator of [`Patch`]es (heights inline, no allocation per patch). Every id is checked
//!   against the [`RegionSize`] the caller declares. [`Heightmap::apply_layer_data`] does both
//!   steps for land.
//! * Storing: [`Heightmap`] keeps a region's heights row-major (row 0 = south edge) and which
//!   patches have arrived; it reads and writes OpenSimulator's `.r32` layout.
//! * Encoding: [`LayerEncoder`] compresses patches as OpenSimulator 0.9.x does (prequant 10,
//!   per-patch word size, the flat-patch shortcut for land) and cuts the stream into payloads
//!   where OpenSimulator cuts its packets. [`encode_wind`] and [`encode_cloud`] build the
//!   single-payload wind and cloud layers OpenSimulator sends.
//!
//! ```
//! use opensim_regions::terrain::{self, LayerEncoder, LayerType, RegionSize};
//!
//! let heights = [25.0f32; 256];
//! let mut enc = LayerEncoder::new(LayerType::Land);
//! enc.push_patch(3, 7, &heights)?;
//! let payloads = enc.finish();
//!
//! let patches: Vec<_> = terrain::decode_layer(terrain::LAYER_LAND, &payloads[0], RegionSize::LEGACY)?
//!     .collect::<Result<_, _>>()?;
//! assert_eq!((patches[0].x, patches[0].y), (3, 7));
//! assert_eq!(patches[0].heights[0], 25.0);
//! # Ok::<(), terrain::TerrainError>(())
//! ```

pub mod bits;
mod dct;
mod decode;
mod encode;
mod error;
mod heightmap;

pub use decode::{GroupHeader, LayerDecoder, decode_layer};
pub use encode::{
    LayerEncoder, OPENSIM_SPLIT_BYTES, PREQUANT, encode_cloud, encode_layer, encode_wind,
    patches_by_distance, spiral_patch_order,
};
pub use error::{MalformedError, MisuseError, PeerError, TerrainError};
pub use heightmap::Heightmap;

/// Side of a terrain patch in samples (and metres, for land).
pub const PATCH_SIZE: usize = 16;
/// Samples in one patch.
pub const PATCH_AREA: usize = PATCH_SIZE * PATCH_SIZE;
/// `quant_wbits` value that ends the patch list.
pub const END_OF_PATCHES: u8 = 97;
/// The group header's stride OpenSimulator writes (decoders ignore it).
pub const STRIDE: u16 = 264;

/// `LayerID.Type` of land (`'L'`).
pub const LAYER_LAND: u8 = b'L';
/// `LayerID.Type` of land in regions larger than 256 m (`'M'`).
pub const LAYER_LAND_EXTENDED: u8 = b'M';
/// `LayerID.Type` of water (`'W'`).
pub const LAYER_WATER: u8 = b'W';
/// `LayerID.Type` of extended water (`'X'`).
pub const LAYER_WATER_EXTENDED: u8 = b'X';
/// `LayerID.Type` of wind (`'7'`).
pub const LAYER_WIND: u8 = b'7';
/// `LayerID.Type` of extended wind (`'9'`).
pub const LAYER_WIND_EXTENDED: u8 = b'9';
/// `LayerID.Type` of cloud (`'8'`).
pub const LAYER_CLOUD: u8 = b'8';
/// `LayerID.Type` of extended cloud (`':'`).
pub const LAYER_CLOUD_EXTENDED: u8 = b':';

/// The eight `LayerData` layers; "extended" ones carry 32-bit patch ids instead of 10-bit ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerType {
    /// Terrain heights, 10-bit patch ids.
    Land,
    /// Terrain heights of regions larger than 256 m, 32-bit patch ids.
    LandExtended,
    /// Water (never sent by OpenSimulator), 10-bit ids.
    Water,
    /// Water, 32-bit ids.
    WaterExtended,
    /// Wind (two patches: east and north components), 10-bit ids.
    Wind,
    /// Wind, 32-bit ids.
    WindExtended,
    /// Cloud density, 10-bit ids.
    Cloud,
    /// Cloud density, 32-bit ids.
    CloudExtended,
}

impl LayerType {
    /// The layer for a `LayerID.Type` byte, if it is one of the eight codes.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            LAYER_LAND => Self::Land,
            LAYER_LAND_EXTENDED => Self::LandExtended,
            LAYER_WATER => Self::Water,
            LAYER_WATER_EXTENDED => Self::WaterExtended,
            LAYER_WIND => Self::Wind,
            LAYER_WIND_EXTENDED => Self::WindExtended,
            LAYER_CLOUD => Self::Cloud,
            LAYER_CLOUD_EXTENDED => Self::CloudExtended,
            _ => return None,
        })
    }

    /// The `LayerID.Type` byte.
    pub fn code(self) -> u8 {
        match self {
            Self::Land => LAYER_LAND,
            Self::LandExtended => LAYER_LAND_EXTENDED,
            Self::Water => LAYER_WATER,
            Self::WaterExtended => LAYER_WATER_EXTENDED,
            Self::Wind => LAYER_WIND,
            Self::WindExtended => LAYER_WIND_EXTENDED,
            Self::Cloud => LAYER_CLOUD,
            Self::CloudExtended => LAYER_CLOUD_EXTENDED,
        }
    }

    /// Whether patch ids are 32 bits (x in the high half, y in the low half).
    pub fn is_extended(self) -> bool {
        matches!(
            self,
            Self::LandExtended | Self::WaterExtended | Self::WindExtended | Self::CloudExtended
        )
    }

    /// Whether this is terrain height (`L` or `M`).
    pub fn is_land(self) -> bool {
        matches!(self, Self::Land | Self::LandExtended)
    }

    /// Width in bits of a patch id: 10 (5 bits x, 5 bits y) or 32 (16 + 16).
    pub fn patch_id_bits(self) -> u32 {
        if self.is_extended() { 32 } else { 10 }
    }

    /// The land layer OpenSimulator picks for a region: `M` when a side exceeds 256 m.
    pub fn land_for(region: RegionSize) -> Self {
        if region.width() > 256 || region.height() > 256 {
            Self::LandExtended
        } else {
            Self::Land
        }
    }
}

impl TryFrom<u8> for LayerType {
    type Error = TerrainError;

    fn try_from(code: u8) -> Result<Self, TerrainError> {
        Self::from_code(code).ok_or(PeerError::UnknownLayerType(code).into())
    }
}

/// A region's size in metres: sides are multiples of 16 from 256 to 8192 (var-regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionSize {
    width: u32,
    height: u32,
}

impl RegionSize {
    /// The classic 256 x 256 m region.
    pub const LEGACY: Self = Self {
        width: 256,
        height: 256,
    };
    /// The largest var-region, 8192 x 8192 m.
    pub const MAX: Self = Self {
        width: 8192,
        height: 8192,
    };

    /// A validated size (both sides multiples of 16 in 256..=8192).
    pub fn new(width: u32, height: u32) -> Result<Self, TerrainError> {
        let ok = |s: u32| (256..=8192).contains(&s) && s.is_multiple_of(16);
        if ok(width) && ok(height) {
            Ok(Self { width, height })
        } else {
            Err(MisuseError::InvalidRegionSize { width, height }.into())
        }
    }

    /// Width (east-west) in metres.
    pub fn width(self) -> u32 {
        self.width
    }

    /// Height (south-north) in metres.
    pub fn height(self) -> u32 {
        self.height
    }

    /// Patches per row.
    pub fn patches_x(self) -> u32 {
        self.width / PATCH_SIZE as u32
    }

    /// Patches per column.
    pub fn patches_y(self) -> u32 {
        self.height / PATCH_SIZE as u32
    }

    /// Patches in the region.
    pub fn patch_count(self) -> usize {
        self.patches_x() as usize * self.patches_y() as usize
    }

    /// Whether patch (x, y) lies in the region.
    pub fn contains_patch(self, x: u32, y: u32) -> bool {
        x < self.patches_x() && y < self.patches_y()
    }
}

/// One decoded 16 x 16 patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Patch column (16 m units eastwards).
    pub x: u32,
    /// Patch row (16 m units northwards).
    pub y: u32,
    /// The header's `quant_wbits`: low nibble = word bits - 2, high nibble = prequant - 2.
    pub quant_wbits: u8,
    /// The header's offset (OpenSimulator: the patch minimum).
    pub dc_offset: f32,
    /// The header's range (OpenSimulator: `(int)(max - min + 1)`).
    pub range: u16,
    /// Heights, row-major: `heights[j * 16 + i]` is at (x*16 + i, y*16 + j).
    pub heights: [f32; PATCH_AREA],
}

impl Patch {
    /// Bits per coefficient value, 2..=17.
    pub fn word_bits(&self) -> u32 {
        u32::from(self.quant_wbits & 0x0F) + 2
    }

    /// Prequantisation exponent, 2..=17 (OpenSimulator land: 10).
    pub fn prequant(&self) -> u32 {
        u32::from(self.quant_wbits >> 4) + 2
    }

    /// One unit of the prequantised scale in metres: `range / 2^prequant`.
    pub fn step(&self) -> f32 {
        f32::from(self.range) / (1u32 << self.prequant()) as f32
    }

    /// Height at (i, j) inside the patch (i eastwards, j northwards), if both are below 16.
    pub fn get(&self, i: usize, j: usize) -> Option<f32> {
        (i < PATCH_SIZE && j < PATCH_SIZE).then(|| self.heights[j * PATCH_SIZE + i])
    }
}
