//! Decoding codestreams into RGBA8 with OpenJPEG (through the `jpeg2k` crate).
//!
//! The header is parsed and checked against [`Limits`] first, so OpenJPEG never sees a
//! codestream whose declared size is beyond them. Partial codestreams (a prefix of the file,
//! as during a progressive fetch) decode at whatever quality the prefix holds; use
//! [`Budget`](crate::Budget) to know which discard level a prefix decodes exactly.

use crate::codestream::{Codestream, CodestreamError, Limits};

/// A decoded image, 4 bytes per pixel (R, G, B, A), rows top to bottom.
#[derive(Clone, PartialEq, Eq)]
pub struct Rgba8Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Rgba8Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rgba8Image")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.pixels.len())
            .finish()
    }
}

/// Why decoding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The codestream header is malformed, truncated or beyond the limits.
    #[error(transparent)]
    Codestream(#[from] CodestreamError),
    /// The caller asked for a discard level the image does not have.
    #[error("discard level {requested} is beyond the image's maximum of {max}")]
    DiscardOutOfRange {
        /// The level asked for.
        requested: u8,
        /// The largest level the image supports.
        max: u8,
    },
    /// The data holds the main header but no tile data yet: fetch more.
    #[error("the data ends before the first tile-part's data")]
    NoTileData,
    /// OpenJPEG refused the codestream.
    #[error("OpenJPEG failed: {0}")]
    Decoder(String),
    /// OpenJPEG produced something this crate cannot turn into RGBA.
    #[error("unsupported decoded image: {0}")]
    Unsupported(&'static str),
    /// The blocking pool task ended without a result.
    #[error("decode task failed")]
    TaskFailed,
}

/// Options for [`decode_rgba8_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Discard level: the result is the image divided by `2^discard`.
    pub discard: u8,
    /// Header limits checked before decoding.
    pub limits: Limits,
    /// Whether a truncated codestream is decoded (as far as it goes) rather than refused.
    pub allow_partial: bool,
    /// Decode only this many leading quality layers (0 = all).
    pub layers: u16,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            discard: 0,
            limits: Limits::default(),
            allow_partial: true,
            layers: 0,
        }
    }
}

impl DecodeOptions {
    /// Default options at the given discard level.
    pub fn at_discard(discard: u8) -> Self {
        DecodeOptions {
            discard,
            ..DecodeOptions::default()
        }
    }
}

/// Decodes `data` (a whole codestream or a prefix) at `discard` with default limits.
pub fn decode_rgba8(data: &[u8], discard: u8) -> Result<Rgba8Image, DecodeError> {
    decode_rgba8_with(data, &DecodeOptions::at_discard(discard))
}

/// Decodes on the `blocking` thread pool so that an async executor is never stalled.
pub async fn decode_rgba8_async<D>(
    data: D,
    options: DecodeOptions,
) -> Result<Rgba8Image, DecodeError>
where
    D: AsRef<[u8]> + Send + 'static,
{
    blocking::unblock(move || decode_rgba8_with(data.as_ref(), &options)).await
}

/// Decodes `data` with explicit options.
pub fn decode_rgba8_with(data: &[u8], options: &DecodeOptions) -> Result<Rgba8Image, DecodeError> {
    let cs = Codestream::parse(data, &options.limits)?;
    let header = cs.header();
    let max = header.max_discard();
    if options.discard > max {
        return Err(DecodeError::DiscardOutOfRange {
            requested: options.discard,
            max,
        });
    }
    let repaired = if options.allow_partial {
        close_prefix(data, header.header_len)
    } else {
        None
    };
    let data = repaired.as_deref().unwrap_or(data);
    if !has_tile_data(data, header.header_len) {
        return Err(DecodeError::NoTileData);
    }
    let params = jpeg2k::DecodeParameters::new()
        .reduce(u32::from(options.discard))
        .strict(!options.allow_partial)
        .layers(u32::from(options.layers));
    let image = jpeg2k::Image::from_bytes_with(data, params)
        .map_err(|e| DecodeError::Decoder(e.to_string()))?;
    let (width, height) = header.siz.size_at_discard(options.discard);
    to_rgba8(&image, width, height, header.siz.components.len())
}

/// Turns a truncated codestream into a complete one that OpenJPEG accepts, or `None` when
/// `data` already ends with EOC.
///
/// OpenJPEG refuses a stream that ends between two tile-parts of a tile, or inside a tile-part
/// of a tile that declared more tile-parts. So the last tile-part is cut to what is present
/// (its `Psot` rewritten; a tile-part whose header is incomplete is dropped) and EOC is
/// appended. Packets beyond the end then read as empty, exactly as if they carried nothing.
fn close_prefix(data: &[u8], header_len: usize) -> Option<Vec<u8>> {
    use crate::codestream::{SOD, read_segment};
    const SOT: [u8; 2] = [0xFF, 0x90];
    const EOC: [u8; 2] = [0xFF, 0xD9];
    let mut pos = header_len;
    // Where to cut, and the SOT whose length must become `cut - sot`.
    let (cut, patch) = loop {
        let Some(marker) = data.get(pos..pos + 2) else {
            break (pos.min(data.len()), None);
        };
        if marker == EOC {
            return None;
        }
        if marker != SOT || pos + 12 > data.len() {
            break (pos, None);
        }
        let psot = u32::from_be_bytes([data[pos + 6], data[pos + 7], data[pos + 8], data[pos + 9]])
            as usize;
        let end = pos.saturating_add(psot);
        if psot != 0 && end <= data.len() {
            pos = end;
            continue;
        }
        // The last tile-part present: keep it only if its header is complete.
        let mut q = pos + 12;
        let header_complete = loop {
            match read_segment(data, q) {
                Ok(seg) if seg.marker == SOD => break true,
                Ok(seg) => q = seg.end,
                Err(_) => break false,
            }
        };
        if psot == 0 && data.ends_with(&EOC) {
            return None;
        }
        let cut = if header_complete { data.len() } else { pos };
        break (cut, (header_complete && psot != 0).then_some(pos));
    };
    let mut out = Vec::with_capacity(cut + 2);
    out.extend_from_slice(&data[..cut]);
    if let Some(sot) = patch {
        let len = u32::try_from(cut - sot).ok()?;
        out[sot + 6..sot + 10].copy_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&EOC);
    Some(out)
}

/// Whether the first tile-part header (through SOD) is present.
fn has_tile_data(data: &[u8], mut pos: usize) -> bool {
    // The main header parsed, so a SOT marker segment starts at `pos`.
    while let Ok(seg) = crate::codestream::read_segment(data, pos) {
        if seg.marker == crate::codestream::SOD {
            return true;
        }
        pos = seg.end;
    }
    false
}

/// Maps decoded samples of any precision to 8 bits, rounding.
#[derive(Clone, Copy)]
struct Scale {
    offset: i64,
    max: i64,
}

impl Scale {
    fn new(precision: u32, signed: bool) -> Self {
        let precision = precision.clamp(1, 31);
        Scale {
            offset: if signed { 1i64 << (precision - 1) } else { 0 },
            max: (1i64 << precision) - 1,
        }
    }

    #[inline]
    fn apply(self, v: i32) -> u8 {
        let v = (i64::from(v) + self.offset).clamp(0, self.max);
        if self.max == 255 {
            v as u8
        } else {
            ((v * 255 + self.max / 2) / self.max) as u8
        }
    }
}

fn to_rgba8(
    image: &jpeg2k::Image,
    width: u32,
    height: u32,
    declared_components: usize,
) -> Result<Rgba8Image, DecodeError> {
    let comps = image.components();
    if comps.len() != declared_components || comps.is_empty() || comps.len() > 4 {
        return Err(DecodeError::Unsupported("component count"));
    }
    let (w, h) = (width as usize, height as usize);
    let mut pixels = vec![255u8; w * h * 4];
    // Which RGBA channels each component fills: gray, gray+alpha, RGB or RGBA.
    let targets: &[&[usize]] = match comps.len() {
        1 => &[&[0, 1, 2]],
        2 => &[&[0, 1, 2], &[3]],
        3 => &[&[0], &[1], &[2]],
        _ => &[&[0], &[1], &[2], &[3]],
    };
    for (comp, channels) in comps.iter().zip(targets) {
        let (cw, ch) = (comp.width() as usize, comp.height() as usize);
        let data = comp.data();
        if cw == 0 || ch == 0 || data.len() != cw * ch {
            return Err(DecodeError::Unsupported("component size"));
        }
        let scale = Scale::new(comp.precision(), comp.is_signed());
        if cw == w && ch == h {
            for (px, &v) in pixels.chunks_exact_mut(4).zip(data) {
                let b = scale.apply(v);
                for &c in *channels {
                    px[c] = b;
                }
            }
        } else {
            // Subsampled component: nearest sample.
            for (y, row) in pixels.chunks_exact_mut(w * 4).enumerate() {
                let src = &data[(y * ch / h) * cw..][..cw];
                for (x, px) in row.chunks_exact_mut(4).enumerate() {
                    let b = scale.apply(src[x * cw / w]);
                    for &c in *channels {
                        px[c] = b;
                    }
                }
            }
        }
    }
    Ok(Rgba8Image {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_precisions() {
        let s8 = Scale::new(8, false);
        assert_eq!(s8.apply(0), 0);
        assert_eq!(s8.apply(255), 255);
        assert_eq!(s8.apply(300), 255);
        assert_eq!(s8.apply(-4), 0);
        let s12 = Scale::new(12, false);
        assert_eq!(s12.apply(4095), 255);
        assert_eq!(s12.apply(2048), 128);
        let s1 = Scale::new(1, false);
        assert_eq!(s1.apply(1), 255);
        let signed = Scale::new(8, true);
        assert_eq!(signed.apply(-128), 0);
        assert_eq!(signed.apply(127), 255);
        let s4 = Scale::new(4, false);
        assert_eq!(s4.apply(15), 255);
        assert_eq!(s4.apply(1), 17);
    }
}
