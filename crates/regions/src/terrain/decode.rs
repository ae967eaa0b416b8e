//! Decoding a `LayerData` bit stream into patches.

use super::bits::BitReader;
use super::dct::{self, TABLES};
use super::error::{MalformedError, PeerError, TerrainError};
use super::{END_OF_PATCHES, LayerType, PATCH_AREA, PATCH_SIZE, Patch, RegionSize};

/// The group header that opens every `LayerData` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHeader {
    /// Stride (OpenSimulator writes 264; unused by decoders).
    pub stride: u16,
    /// Patch side; only 16 is accepted.
    pub patch_size: u8,
    /// The layer, equal to the message's `LayerID.Type`.
    pub layer: LayerType,
}

/// Reads the group header of `data` and returns an iterator over its patches.
///
/// `layer_type` is the message's `LayerID.Type`; it decides the patch-id width and must match
/// the group header. Every patch id is checked against `region` (for wind and cloud, whose
/// patches OpenSimulator numbers 0, any region size will do). The iterator yields each patch as
/// soon as it is decoded and stops after the first error, so a caller that applies patches as
/// they come keeps the good ones that preceded a corrupt one.
pub fn decode_layer(
    layer_type: u8,
    data: &[u8],
    region: RegionSize,
) -> Result<LayerDecoder<'_>, TerrainError> {
    let layer = LayerType::try_from(layer_type)?;
    let mut reader = BitReader::new(data);
    let stride = reader.read_bits(16)? as u16;
    let patch_size = reader.read_bits(8)? as u8;
    let group_type = reader.read_bits(8)? as u8;
    if group_type != layer_type {
        return Err(PeerError::LayerTypeMismatch {
            layer_id: layer_type,
            group_header: group_type,
        }
        .into());
    }
    if usize::from(patch_size) != PATCH_SIZE {
        return Err(PeerError::UnsupportedPatchSize(patch_size).into());
    }
    Ok(LayerDecoder {
        reader,
        data_len: data.len(),
        header: GroupHeader {
            stride,
            patch_size,
            layer,
        },
        region,
        done: false,
    })
}

/// Iterator over the patches of one `LayerData` payload (see [`decode_layer`]).
#[derive(Debug, Clone)]
pub struct LayerDecoder<'a> {
    reader: BitReader<'a>,
    data_len: usize,
    header: GroupHeader,
    region: RegionSize,
    done: bool,
}

impl LayerDecoder<'_> {
    /// The payload's group header.
    pub fn header(&self) -> GroupHeader {
        self.header
    }

    /// Decodes the next patch into `out`; `Ok(false)` at the end of the list.
    ///
    /// This is the allocation- and copy-free form of [`Iterator::next`]: `out` is overwritten.
    pub fn next_into(&mut self, out: &mut Patch) -> Result<bool, TerrainError> {
        if self.done {
            return Ok(false);
        }
        let result = self.decode_patch(out);
        if !matches!(result, Ok(true)) {
            self.done = true;
        }
        result
    }

    /// Decodes every remaining patch, handing each to `f`; returns how many there were.
    pub fn for_each_patch(&mut self, mut f: impl FnMut(&Patch)) -> Result<usize, TerrainError> {
        let mut patch = blank_patch();
        let mut count = 0;
        while self.next_into(&mut patch)? {
            f(&patch);
            count += 1;
        }
        Ok(count)
    }

    fn decode_patch(&mut self, out: &mut Patch) -> Result<bool, TerrainError> {
        let r = &mut self.reader;
        let quant_wbits = r.read_bits(8)? as u8;
        if quant_wbits == END_OF_PATCHES {
            // OpenSimulator sends exactly the bytes it wrote: only padding bits may follow.
            let extra_bytes = self.data_len - r.bytes_touched();
            if extra_bytes > 0 {
                return Err(MalformedError::TrailingBytes { extra_bytes }.into());
            }
            return Ok(false);
        }
        let dc_offset = r.read_f32()?;
        let range = r.read_bits(16)? as u16;
        let ids = r.read_bits(self.header.layer.patch_id_bits())?;
        let (x, y) = if self.header.layer.is_extended() {
            (ids >> 16, ids & 0xFFFF)
        } else {
            (ids >> 5, ids & 0x1F)
        };
        if !self.region.contains_patch(x, y) {
            return Err(PeerError::PatchOutOfRange {
                x,
                y,
                patches_x: self.region.patches_x(),
                patches_y: self.region.patches_y(),
            }
            .into());
        }
        if !dc_offset.is_finite() {
            return Err(PeerError::NonFiniteOffset { x, y, dc_offset }.into());
        }

        // Coefficients arrive in zig-zag order; place each one dequantised at its raster slot.
        let block = &mut out.heights;
        *block = [0.0; PATCH_AREA];
        let (mut nonzero_rows, mut nonzero_cols) = (0u16, 0u16);
        let word_bits = u32::from(quant_wbits & 0x0F) + 2;
        let tables = &*TABLES;
        for n in 0..PATCH_AREA {
            // One look at the next three bits: 0 = zero, 10 = end of block, 11s = value.
            let code = r.peek_msb(3);
            if code & 0b100 == 0 {
                r.skip(1)?;
                continue;
            }
            if code & 0b010 == 0 {
                r.skip(2)?;
                break; // the rest are zero
            }
            r.skip(3)?;
            let negative = code & 1 != 0;
            // At most 17 bits, so the value is exact in f32 and cannot overflow i32.
            let magnitude = r.read_bits(word_bits)? as f32;
            if magnitude != 0.0 {
                let (raster, deq) = tables.dezigzag[n];
                let value = if negative { -magnitude } else { magnitude };
                block[usize::from(raster)] = value * deq;
                nonzero_rows |= 1 << (usize::from(raster) / PATCH_SIZE);
                nonzero_cols |= 1 << (usize::from(raster) % PATCH_SIZE);
            }
        }
        dct::idct_unscaled(block, nonzero_rows, nonzero_cols);

        let prequant = u32::from(quant_wbits >> 4) + 2;
        let mult = f32::from(range) / (1u32 << prequant) as f32;
        let addval = mult * (1u32 << (prequant - 1)) as f32 + dc_offset;
        // The IDCT's 1/8 is a power of two, so folding it into mult changes no bits.
        // No overflow: |coefficient| < 2^17 and DEQ <= 31 bound |IDCT| below 2^32, and
        // scale <= 2^13, so a finite dc_offset keeps every height finite (adding < 2^45 to
        // f32::MAX rounds back to f32::MAX).
        let scale = mult * 0.125;
        for h in block.iter_mut() {
            *h = *h * scale + addval;
        }
        out.x = x;
        out.y = y;
        out.quant_wbits = quant_wbits;
        out.dc_offset = dc_offset;
        out.range = range;
        Ok(true)
    }
}

impl Iterator for LayerDecoder<'_> {
    type Item = Result<Patch, TerrainError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut patch = blank_patch();
        match self.next_into(&mut patch) {
            Ok(true) => Some(Ok(patch)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl std::iter::FusedIterator for LayerDecoder<'_> {}

fn blank_patch() -> Patch {
    Patch {
        x: 0,
        y: 0,
        quant_wbits: 0,
        dc_offset: 0.0,
        range: 0,
        heights: [0.0; PATCH_AREA],
    }
}
