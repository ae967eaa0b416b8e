//! Encoding patches into `LayerData` payloads the way OpenSimulator 0.9.x does.
//!
//! Facts taken from OpenSimulator's `TerrainCompressor.cs` and `LLClientView.cs` (0.9.x):
//!
//! * Every layer uses 16 x 16 patches, prequant 10 and `quant_wbits = 0x80 | (word_bits - 2)`.
//! * `dc_offset = min`, `range = (int)(max - min + 1)`; samples are mapped to
//!   `(h - (range/2 + min)) * 2^10 / range` before a 2-D DCT.
//! * Coefficients are `(int)(F * (2/16) / (1 + 2(i + j)))` (truncated toward zero). The word
//!   size starts at `prequant / 2 = 5` and grows while some `|coefficient| > 2^word_bits`, up to
//!   17; a coefficient equal to `2^word_bits` is then clamped to `2^word_bits - 1` (an
//!   OpenSimulator quirk kept here so the output matches).
//! * OpenSimulator 0.9.2.2 misses a patch's south-west sample when it scans for the minimum,
//!   so where that sample is the strict minimum its `dc_offset` is the second lowest sample.
//!   This encoder uses the true minimum; every other patch of a captured 0.9.2.2 session comes
//!   out bit for bit as the server sent it (see the crate's fixture tests).
//! * Land only: a patch whose `max - min + 1` rounds (two decimals) to 1.0 is sent as
//!   `quant_wbits = 0`, `dc_offset = min - 0.5`, `range = 1` and an immediate end-of-block.
//! * Land packets are cut once the payload's `Data` exceeds [`OPENSIM_SPLIT_BYTES`] bytes
//!   (0.9.x checks `BytePos > 900` on a buffer whose `Data` starts at offset 10; older releases
//!   cut at 980 bytes of a zero-based buffer, i.e. 981 `Data` bytes).
//! * Wind: one payload, layer `'7'`, two patches (east then north components, one sample per
//!   16 m) both with id 0, no flat shortcut, never split. Cloud: one payload, layer `'8'`, one
//!   patch with id 0, likewise. OpenSimulator never sends the extended wind/cloud codes, and
//!   current releases no longer send cloud at all.

use super::bits::BitWriter;
use super::dct::{self, COPY, TABLES};
use super::error::{MisuseError, TerrainError};
use super::{END_OF_PATCHES, LayerType, PATCH_AREA, PATCH_SIZE, RegionSize, STRIDE};

/// Prequantisation exponent OpenSimulator uses for every layer.
pub const PREQUANT: u32 = 10;
/// OpenSimulator 0.9.x closes a land payload once its `Data` is longer than this many bytes.
pub const OPENSIM_SPLIT_BYTES: usize = 891;

const MAX_WORD_BITS: u32 = 17;

/// Builds the `Data` payloads of one layer, patch by patch.
#[derive(Debug, Clone)]
pub struct LayerEncoder {
    layer: LayerType,
    split_after: Option<usize>,
    flat_shortcut: bool,
    writer: BitWriter,
    patches_in_current: usize,
    payloads: Vec<Vec<u8>>,
}

impl LayerEncoder {
    /// An encoder for `layer` with OpenSimulator's defaults: payloads cut after
    /// [`OPENSIM_SPLIT_BYTES`], flat-patch shortcut for land only.
    pub fn new(layer: LayerType) -> Self {
        let mut enc = Self {
            layer,
            split_after: Some(OPENSIM_SPLIT_BYTES),
            flat_shortcut: layer.is_land(),
            writer: BitWriter::with_capacity(1024),
            patches_in_current: 0,
            payloads: Vec::new(),
        };
        enc.start_payload();
        enc
    }

    /// Cut payloads once `Data` exceeds `bytes` bytes, or never (`None`).
    pub fn with_split_after(mut self, bytes: Option<usize>) -> Self {
        self.split_after = bytes;
        self
    }

    /// Use (or not) the flat-patch shortcut.
    pub fn with_flat_shortcut(mut self, on: bool) -> Self {
        self.flat_shortcut = on;
        self
    }

    /// The layer being encoded.
    pub fn layer(&self) -> LayerType {
        self.layer
    }

    /// Compresses one patch (`heights[j*16 + i]`) with id (x, y) and appends it.
    ///
    /// Fails, writing nothing, when the id does not fit the layer's id field, a height is not
    /// finite, or the patch spans 65535 m or more.
    pub fn push_patch(
        &mut self,
        x: u32,
        y: u32,
        heights: &[f32; PATCH_AREA],
    ) -> Result<(), TerrainError> {
        let ids = patch_ids(self.layer, x, y)?;
        let patch = compress(heights, self.flat_shortcut, x, y)?;
        if self.patches_in_current > 0
            && self
                .split_after
                .is_some_and(|limit| self.writer.byte_len() > limit)
        {
            self.close_payload();
            self.start_payload();
        }
        patch.write(&mut self.writer, ids, self.layer.patch_id_bits());
        self.patches_in_current += 1;
        Ok(())
    }

    /// Ends the last payload and returns all of them (at least one, possibly with no patch).
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        self.close_payload();
        self.payloads
    }

    fn start_payload(&mut self) {
        self.writer.write_bits(u32::from(STRIDE), 16);
        self.writer.write_bits(PATCH_SIZE as u32, 8);
        self.writer.write_bits(u32::from(self.layer.code()), 8);
        self.patches_in_current = 0;
    }

    fn close_payload(&mut self) {
        self.writer.write_bits(u32::from(END_OF_PATCHES), 8);
        self.payloads.push(self.writer.take_bytes());
    }
}

/// Encodes `(x, y, heights)` patches of layer `layer_type` into payloads (see [`LayerEncoder`]).
pub fn encode_layer<'a>(
    layer_type: u8,
    patches: impl IntoIterator<Item = (u32, u32, &'a [f32; PATCH_AREA])>,
) -> Result<Vec<Vec<u8>>, TerrainError> {
    let layer = LayerType::from_code(layer_type).ok_or(MisuseError::WrongLayerType(layer_type))?;
    let mut enc = LayerEncoder::new(layer);
    for (x, y, heights) in patches {
        enc.push_patch(x, y, heights)?;
    }
    Ok(enc.finish())
}

/// The wind payload OpenSimulator sends: layer `'7'`, east components then north components,
/// each a 16 x 16 grid (one sample per 16 m, row-major from the south-west corner).
pub fn encode_wind(
    east: &[f32; PATCH_AREA],
    north: &[f32; PATCH_AREA],
) -> Result<Vec<u8>, TerrainError> {
    single_payload(LayerType::Wind, &[east, north])
}

/// The cloud payload older OpenSimulator releases send: layer `'8'`, one 16 x 16 density grid.
pub fn encode_cloud(density: &[f32; PATCH_AREA]) -> Result<Vec<u8>, TerrainError> {
    single_payload(LayerType::Cloud, &[density])
}

fn single_payload(layer: LayerType, grids: &[&[f32; PATCH_AREA]]) -> Result<Vec<u8>, TerrainError> {
    let mut enc = LayerEncoder::new(layer)
        .with_split_after(None)
        .with_flat_shortcut(false);
    for grid in grids {
        enc.push_patch(0, 0, grid)?;
    }
    Ok(enc.finish().pop().unwrap_or_default())
}

/// The order of OpenSimulator's full-region send in `LLClientView.DoSendLayerData`: a spiral
/// along the south row eastwards, up the east column, back along the north row, down the west
/// column, then inwards.
pub fn spiral_patch_order(region: RegionSize) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(region.patch_count());
    // Inclusive bounds of the part not yet visited.
    let (mut x1, mut y1) = (0i64, 0i64);
    let (mut x2, mut y2) = (
        i64::from(region.patches_x()) - 1,
        i64::from(region.patches_y()) - 1,
    );
    let mut top_right = true;
    loop {
        if top_right {
            for i in x1..=x2 {
                out.push((i, y1));
            }
            for j in y1 + 1..=y2 {
                out.push((x2, j));
            }
            if !(x2 > x1 && y2 > y1) {
                break;
            }
            y1 += 1;
            x2 -= 1;
        } else {
            for i in (x1..=x2).rev() {
                out.push((i, y2));
            }
            for j in (y1..y2).rev() {
                out.push((x1, j));
            }
            if !(x2 > x1 && y2 > y1) {
                break;
            }
            x1 += 1;
            y2 -= 1;
        }
        top_right = !top_right;
    }
    out.into_iter().map(|(x, y)| (x as u32, y as u32)).collect()
}

/// Every patch of `region`, nearest first to the patch (`px`, `py`) holding the agent.
///
/// This is the order OpenSimulator 0.9.x's terrain module uses at login (squared distance in
/// patch units from the agent's patch, as the captured 0.9.2.2 session shows). Ties come in
/// row-major order here; OpenSimulator's unstable sort may order them differently.
pub fn patches_by_distance(region: RegionSize, px: u32, py: u32) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = (0..region.patches_y())
        .flat_map(|y| (0..region.patches_x()).map(move |x| (x, y)))
        .collect();
    out.sort_by_key(|&(x, y)| {
        let dx = i64::from(x) - i64::from(px);
        let dy = i64::from(y) - i64::from(py);
        dx * dx + dy * dy
    });
    out
}

fn patch_ids(layer: LayerType, x: u32, y: u32) -> Result<u32, MisuseError> {
    let (fits, ids, bits) = if layer.is_extended() {
        (x <= 0xFFFF && y <= 0xFFFF, (x << 16) | (y & 0xFFFF), 32)
    } else {
        (x < 32 && y < 32, (x << 5) | (y & 0x1F), 10)
    };
    if fits {
        Ok(ids)
    } else {
        Err(MisuseError::PatchIdTooLarge { x, y, bits })
    }
}

/// A patch ready to be written.
struct Compressed {
    quant_wbits: u8,
    dc_offset: f32,
    range: u16,
    word_bits: u32,
    /// Coefficients in stream (zig-zag) order.
    coeffs: [i32; PATCH_AREA],
    /// Coefficients from this index on are all zero (0 for a flat patch).
    end: usize,
}

fn compress(
    heights: &[f32; PATCH_AREA],
    flat_shortcut: bool,
    x: u32,
    y: u32,
) -> Result<Compressed, MisuseError> {
    let mut zmin = f32::MAX;
    let mut zmax = f32::MIN;
    for &h in heights {
        if !h.is_finite() {
            return Err(MisuseError::NonFiniteHeight { x, y });
        }
        zmin = zmin.min(h);
        zmax = zmax.max(h);
    }
    let frange = (zmax - zmin) + 1.0;
    if frange >= 65536.0 {
        return Err(MisuseError::RangeTooLarge {
            x,
            y,
            span: zmax - zmin,
        });
    }
    // OpenSimulator: Math.Round((double)frange, 2) == 1.0 (round half to even).
    if flat_shortcut && (f64::from(frange) * 100.0).round_ties_even() == 100.0 {
        return Ok(Compressed {
            quant_wbits: 0,
            dc_offset: zmin - 0.5,
            range: 1,
            word_bits: 2,
            coeffs: [0; PATCH_AREA],
            end: 0,
        });
    }
    let range = frange as u16; // truncation, as C#'s (int) cast
    let rangef = f32::from(range);
    let premult = (1.0 / rangef) * (1u32 << PREQUANT) as f32;
    let sub = 0.5 * rangef + zmin;
    let mut block = [0f32; PATCH_AREA];
    for (b, &h) in block.iter_mut().zip(heights) {
        *b = (h - sub) * premult;
    }
    let f = dct::dct(&block);

    let quantise = &TABLES.quantise;
    let mut coeffs = [0i32; PATCH_AREA];
    let mut max_abs = 0u32;
    for (k, &fk) in f.iter().enumerate() {
        let q = (fk * quantise[k]) as i32;
        coeffs[usize::from(COPY[k])] = q;
        max_abs = max_abs.max(q.unsigned_abs());
    }
    // Smallest word size >= prequant/2 with max |q| <= 2^word_bits, at most 17.
    let mut word_bits = PREQUANT >> 1;
    while word_bits < MAX_WORD_BITS && max_abs > (1u32 << word_bits) {
        word_bits += 1;
    }
    let end = coeffs.iter().rposition(|&q| q != 0).map_or(0, |i| i + 1);
    Ok(Compressed {
        quant_wbits: (((PREQUANT - 2) << 4) | (word_bits - 2)) as u8,
        dc_offset: zmin,
        range,
        word_bits,
        coeffs,
        end,
    })
}

impl Compressed {
    fn write(&self, w: &mut BitWriter, ids: u32, id_bits: u32) {
        w.write_bits(u32::from(self.quant_wbits), 8);
        w.write_f32(self.dc_offset);
        w.write_bits(u32::from(self.range), 16);
        w.write_bits(ids, id_bits);
        let max_value = (1u32 << self.word_bits) - 1;
        for (i, &q) in self.coeffs.iter().enumerate() {
            if i >= self.end {
                w.write_bits(0b10, 2); // end of block
                return;
            }
            if q == 0 {
                w.write_bit(false);
            } else {
                w.write_bits(if q < 0 { 0b111 } else { 0b110 }, 3);
                w.write_bits(q.unsigned_abs().min(max_value), self.word_bits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn spiral_visits_every_patch_once() {
        for (w, h) in [
            (256, 256),
            (512, 256),
            (256, 768),
            (1024, 1024),
            (272, 4096),
        ] {
            let region = RegionSize::new(w, h).unwrap();
            let order = spiral_patch_order(region);
            assert_eq!(order.len(), region.patch_count());
            let set: HashSet<_> = order.iter().copied().collect();
            assert_eq!(set.len(), order.len(), "{w}x{h} repeats a patch");
            assert!(order.iter().all(|&(x, y)| region.contains_patch(x, y)));
        }
        let order = spiral_patch_order(RegionSize::LEGACY);
        assert_eq!(&order[..3], &[(0, 0), (1, 0), (2, 0)]);
        assert_eq!(order[16], (15, 1));
        assert_eq!(order[31], (14, 15));
    }

    #[test]
    fn distance_order_starts_at_the_agent() {
        let region = RegionSize::new(512, 256).unwrap();
        let order = patches_by_distance(region, 7, 7);
        assert_eq!(order.len(), region.patch_count());
        assert_eq!(order[0], (7, 7));
        assert_eq!(&order[1..5], &[(7, 6), (6, 7), (8, 7), (7, 8)]);
        assert_eq!(*order.last().unwrap(), (31, 15));
    }

    #[test]
    fn flat_patch_uses_the_shortcut() {
        let mut enc = LayerEncoder::new(LayerType::Land);
        enc.push_patch(1, 2, &[12.5; PATCH_AREA]).unwrap();
        let data = enc.finish().pop().unwrap();
        // 32-bit group header, 8 + 32 + 16 + 10 header bits, 2-bit EOB, 8-bit END: 108 bits.
        assert_eq!(data.len(), 14);
        assert_eq!(&data[..4], &[0x08, 0x01, 0x10, b'L']);
        assert_eq!(data[4], 0, "quant_wbits of a flat patch");
    }

    #[test]
    fn ids_must_fit_their_field() {
        let mut enc = LayerEncoder::new(LayerType::Land);
        let h = [0.0; PATCH_AREA];
        assert!(enc.push_patch(32, 0, &h).is_err());
        assert!(enc.push_patch(31, 31, &h).is_ok());
        let mut enc = LayerEncoder::new(LayerType::LandExtended);
        assert!(enc.push_patch(511, 511, &h).is_ok());
        assert!(enc.push_patch(0x1_0000, 0, &h).is_err());
    }

    #[test]
    fn bad_heights_are_refused_without_writing() {
        let mut enc = LayerEncoder::new(LayerType::Land);
        let mut h = [0.0; PATCH_AREA];
        h[7] = f32::NAN;
        assert!(matches!(
            enc.push_patch(0, 0, &h),
            Err(TerrainError::Misuse(MisuseError::NonFiniteHeight { .. }))
        ));
        h[7] = 70000.0;
        assert!(matches!(
            enc.push_patch(0, 0, &h),
            Err(TerrainError::Misuse(MisuseError::RangeTooLarge { .. }))
        ));
        // Nothing but the group header and the end marker.
        assert_eq!(
            enc.finish(),
            vec![vec![0x08, 0x01, 0x10, b'L', END_OF_PATCHES]]
        );
    }
}
