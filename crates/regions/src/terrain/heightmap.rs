//! A region's heightmap assembled from patches.

use super::decode::decode_layer;
use super::encode::LayerEncoder;
use super::error::{MalformedError, MisuseError, TerrainError};
use super::{LayerType, PATCH_AREA, PATCH_SIZE, Patch, RegionSize};

/// Heights of a whole region, one `f32` per square metre, and which patches have arrived.
///
/// Row-major with row 0 at the south edge: the height at (x, y) is `as_slice()[y * width + x]`,
/// x growing east. This is also the layout of OpenSimulator's `terrain save` `.r32` files.
#[derive(Debug, Clone, PartialEq)]
pub struct Heightmap {
    region: RegionSize,
    heights: Vec<f32>,
    /// One bit per patch, index `py * patches_x + px`.
    received: Vec<u64>,
    received_count: usize,
}

impl Heightmap {
    /// A flat heightmap at 0 m with no patch received.
    pub fn new(region: RegionSize) -> Self {
        let samples = region.width() as usize * region.height() as usize;
        Self {
            region,
            heights: vec![0.0; samples],
            received: vec![0; region.patch_count().div_ceil(64)],
            received_count: 0,
        }
    }

    /// A complete heightmap whose height at (x, y) is `f(x, y)`.
    pub fn from_fn(region: RegionSize, mut f: impl FnMut(u32, u32) -> f32) -> Self {
        let mut map = Self::new(region);
        let width = region.width() as usize;
        for (k, h) in map.heights.iter_mut().enumerate() {
            *h = f((k % width) as u32, (k / width) as u32);
        }
        map.mark_all_received();
        map
    }

    /// Reads an `.r32` heightmap: `width * height` little-endian `f32`, row 0 = south edge.
    ///
    /// All patches count as received.
    pub fn from_r32_bytes(region: RegionSize, bytes: &[u8]) -> Result<Self, TerrainError> {
        let mut map = Self::new(region);
        let expected = map.heights.len() * 4;
        if bytes.len() != expected {
            return Err(MalformedError::R32Length {
                expected,
                actual: bytes.len(),
            }
            .into());
        }
        let (chunks, _) = bytes.as_chunks::<4>();
        for (h, c) in map.heights.iter_mut().zip(chunks) {
            *h = f32::from_le_bytes(*c);
        }
        map.mark_all_received();
        Ok(map)
    }

    /// The heights as an `.r32` file: little-endian `f32`, row-major, row 0 = south edge.
    pub fn to_r32_bytes(&self) -> Vec<u8> {
        self.heights.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// The region size.
    pub fn region(&self) -> RegionSize {
        self.region
    }

    /// Width in metres (samples per row).
    pub fn width(&self) -> u32 {
        self.region.width()
    }

    /// Height in metres (rows).
    pub fn height(&self) -> u32 {
        self.region.height()
    }

    /// Height at (x, y) metres from the south-west corner, if inside the region.
    pub fn get(&self, x: u32, y: u32) -> Option<f32> {
        (x < self.width() && y < self.height())
            .then(|| self.heights[y as usize * self.width() as usize + x as usize])
    }

    /// Sets the height at (x, y); returns false (and changes nothing) outside the region.
    pub fn set(&mut self, x: u32, y: u32, h: f32) -> bool {
        if x < self.width() && y < self.height() {
            let w = self.width() as usize;
            self.heights[y as usize * w + x as usize] = h;
            true
        } else {
            false
        }
    }

    /// All heights, row-major from the south-west corner.
    pub fn as_slice(&self) -> &[f32] {
        &self.heights
    }

    /// All heights, mutable (does not change which patches count as received).
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.heights
    }

    /// Writes a decoded patch into place and marks it received.
    pub fn apply(&mut self, patch: &Patch) -> Result<(), TerrainError> {
        if !self.region.contains_patch(patch.x, patch.y) {
            return Err(MisuseError::PatchOutsideHeightmap {
                x: patch.x,
                y: patch.y,
                patches_x: self.region.patches_x(),
                patches_y: self.region.patches_y(),
            }
            .into());
        }
        let w = self.width() as usize;
        let x0 = patch.x as usize * PATCH_SIZE;
        let y0 = patch.y as usize * PATCH_SIZE;
        let (rows, _) = patch.heights.as_chunks::<PATCH_SIZE>();
        for (j, row) in rows.iter().enumerate() {
            let start = (y0 + j) * w + x0;
            self.heights[start..start + PATCH_SIZE].copy_from_slice(row);
        }
        let index = patch.y as usize * self.region.patches_x() as usize + patch.x as usize;
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.received[word] & bit == 0 {
            self.received[word] |= bit;
            self.received_count += 1;
        }
        Ok(())
    }

    /// Decodes a land `LayerData` payload (`L` or `M`) and applies its patches.
    ///
    /// Returns the number of patches applied. On an error the patches decoded before it have
    /// been applied already.
    pub fn apply_layer_data(&mut self, layer_type: u8, data: &[u8]) -> Result<usize, TerrainError> {
        let layer = LayerType::try_from(layer_type)?;
        if !layer.is_land() {
            return Err(MisuseError::WrongLayerType(layer_type).into());
        }
        let mut decoder = decode_layer(layer_type, data, self.region)?;
        let mut result = Ok(());
        let count = decoder.for_each_patch(|p| {
            if result.is_ok() {
                result = self.apply(p);
            }
        })?;
        result.map(|()| count)
    }

    /// Whether patch (px, py) has been applied.
    pub fn patch_received(&self, px: u32, py: u32) -> bool {
        self.region.contains_patch(px, py) && {
            let index = py as usize * self.region.patches_x() as usize + px as usize;
            self.received[index / 64] & (1 << (index % 64)) != 0
        }
    }

    /// How many distinct patches have been applied.
    pub fn patches_received(&self) -> usize {
        self.received_count
    }

    /// How many patches the region has.
    pub fn patches_total(&self) -> usize {
        self.region.patch_count()
    }

    /// Whether every patch has been applied.
    pub fn is_complete(&self) -> bool {
        self.received_count == self.patches_total()
    }

    /// The 256 heights of patch (px, py), row-major, if it is in the region.
    pub fn patch_heights(&self, px: u32, py: u32) -> Option<[f32; PATCH_AREA]> {
        if !self.region.contains_patch(px, py) {
            return None;
        }
        let w = self.width() as usize;
        let mut out = [0f32; PATCH_AREA];
        let (rows, _) = out.as_chunks_mut::<PATCH_SIZE>();
        for (j, row) in rows.iter_mut().enumerate() {
            let start = (py as usize * PATCH_SIZE + j) * w + px as usize * PATCH_SIZE;
            row.copy_from_slice(&self.heights[start..start + PATCH_SIZE]);
        }
        Some(out)
    }

    /// Encodes the given patches as OpenSimulator sends land: layer `L`, or `M` for a region
    /// larger than 256 m, cut into payloads where OpenSimulator cuts packets.
    ///
    /// [`super::patches_by_distance`] gives the order OpenSimulator uses at login.
    pub fn encode_land(
        &self,
        order: impl IntoIterator<Item = (u32, u32)>,
    ) -> Result<Vec<Vec<u8>>, TerrainError> {
        let mut enc = LayerEncoder::new(LayerType::land_for(self.region));
        for (px, py) in order {
            let heights = self.patch_heights(px, py).ok_or_else(|| {
                TerrainError::from(MisuseError::PatchOutsideHeightmap {
                    x: px,
                    y: py,
                    patches_x: self.region.patches_x(),
                    patches_y: self.region.patches_y(),
                })
            })?;
            enc.push_patch(px, py, &heights)?;
        }
        Ok(enc.finish())
    }

    fn mark_all_received(&mut self) {
        let total = self.patches_total();
        for (k, word) in self.received.iter_mut().enumerate() {
            let bits = total.saturating_sub(k * 64).min(64);
            *word = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
        }
        self.received_count = total;
    }
}
