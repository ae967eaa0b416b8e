//! Zero-copy, bounds-checked parsing of a raw JPEG 2000 codestream (`.j2c`).
//!
//! [`Codestream::parse`] reads the main header (SIZ, COD, COC, QCD, QCC, COM, TLM, PLM, ...)
//! and validates it against [`Limits`] before anything is sized from it.
//! [`Codestream::budget`] then walks the tile-parts and the tier-2 packet headers to find how
//! many leading bytes are needed for each discard level and each number of quality layers.

mod budget;
mod tier2;

pub use budget::{Budget, EstimateReason, Exactness, LayerBudget, LevelBudget};

/// Start of codestream.
pub(crate) const SOC: u16 = 0xFF4F;
/// Image and tile size.
const SIZ: u16 = 0xFF51;
/// Coding style default.
const COD: u16 = 0xFF52;
/// Coding style component.
const COC: u16 = 0xFF53;
/// Tile-part lengths.
const TLM: u16 = 0xFF55;
/// Packet lengths, main header.
const PLM: u16 = 0xFF57;
/// Packet lengths, tile-part header.
const PLT: u16 = 0xFF58;
/// Quantization default.
const QCD: u16 = 0xFF5C;
/// Quantization component.
const QCC: u16 = 0xFF5D;
/// Region of interest.
const RGN: u16 = 0xFF5E;
/// Progression order change.
const POC: u16 = 0xFF5F;
/// Packed packet headers, main header.
const PPM: u16 = 0xFF60;
/// Packed packet headers, tile-part header.
const PPT: u16 = 0xFF61;
/// Comment.
const COM: u16 = 0xFF64;
/// Start of tile-part.
const SOT: u16 = 0xFF90;
/// Start of packet.
const SOP: u16 = 0xFF91;
/// End of packet header.
const EPH: u16 = 0xFF92;
/// Start of data.
pub(crate) const SOD: u16 = 0xFF93;
/// End of codestream.
const EOC: u16 = 0xFFD9;

/// Code-block style flag: selective arithmetic coding bypass.
const CBLK_LAZY: u8 = 0x01;
/// Code-block style flag: termination on each coding pass.
const CBLK_TERMALL: u8 = 0x04;
/// Code-block style flag: high-throughput (JPEG 2000 part 15) block coder.
const CBLK_HT: u8 = 0x40;

/// Upper bounds applied while parsing, so that hostile headers are refused before anything is
/// allocated from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted image width or height in pixels.
    pub max_side: u32,
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
    /// Largest accepted number of components (textures use 1 to 4).
    pub max_components: u16,
    /// Largest accepted number of tiles.
    pub max_tiles: u32,
    /// Largest number of precincts plus code-blocks the packet walk keeps state for.
    pub max_code_blocks: u64,
    /// Largest number of code-block visits the packet walk may spend (bounds its time).
    pub max_work: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_side: 16384,
            max_pixels: 64 * 1024 * 1024,
            max_components: 4,
            max_tiles: 65535,
            max_code_blocks: 1 << 21,
            max_work: 1 << 26,
        }
    }
}

/// Why a codestream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodestreamError {
    /// The data ends inside the main header: either a prefix too short to parse (fetch more)
    /// or a truncated file.
    #[error("codestream data ends at byte {len}, inside the main header (need at least {needed})")]
    Truncated {
        /// How many bytes are needed at least to go on parsing.
        needed: usize,
        /// How many bytes were given.
        len: usize,
    },
    /// The bytes break the codestream syntax.
    #[error("malformed codestream at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the offending marker or field.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A declared size is beyond the configured [`Limits`].
    #[error("{what} is {value}, above the limit of {limit}")]
    LimitExceeded {
        /// Which quantity.
        what: &'static str,
        /// The declared value.
        value: u64,
        /// The limit in force.
        limit: u64,
    },
    /// Valid JPEG 2000 that this crate does not handle (for example a JP2 file wrapper).
    #[error("unsupported codestream: {0}")]
    Unsupported(&'static str),
}

fn malformed(offset: usize, reason: &'static str) -> CodestreamError {
    CodestreamError::Malformed { offset, reason }
}

/// Bounds-checked big-endian reads over a slice.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute offset of `data[0]` in the codestream, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodestreamError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| malformed(self.offset(), what))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodestreamError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CodestreamError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CodestreamError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// One marker segment found at `offset`: its code and its parameter bytes (after the length).
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub(crate) marker: u16,
    pub(crate) offset: usize,
    pub(crate) body: &'a [u8],
    /// Offset just past the segment.
    pub(crate) end: usize,
}

/// Reads the marker segment starting at `pos`. Markers without a length (SOC, SOD, EOC and the
/// reserved 0xFF30..=0xFF3F range) get an empty body.
pub(crate) fn read_segment(data: &[u8], pos: usize) -> Result<Segment<'_>, CodestreamError> {
    let head = data
        .get(pos..pos.saturating_add(2))
        .filter(|h| h.len() == 2)
        .ok_or(CodestreamError::Truncated {
            needed: pos.saturating_add(2),
            len: data.len(),
        })?;
    let marker = u16::from_be_bytes([head[0], head[1]]);
    if head[0] != 0xFF || marker < 0xFF30 {
        return Err(malformed(pos, "expected a marker"));
    }
    if matches!(marker, SOC | SOD | EOC) || (0xFF30..=0xFF3F).contains(&marker) {
        return Ok(Segment {
            marker,
            offset: pos,
            body: &[],
            end: pos + 2,
        });
    }
    let len_bytes = data
        .get(pos + 2..pos + 4)
        .ok_or(CodestreamError::Truncated {
            needed: pos + 4,
            len: data.len(),
        })?;
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if len < 2 {
        return Err(malformed(pos, "marker segment length below 2"));
    }
    let end = pos + 2 + len;
    let body = data.get(pos + 4..end).ok_or(CodestreamError::Truncated {
        needed: end,
        len: data.len(),
    })?;
    Ok(Segment {
        marker,
        offset: pos,
        body,
        end,
    })
}

/// One image component as declared in SIZ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Bit depth, 1 to 38.
    pub precision: u8,
    /// Whether samples are signed.
    pub signed: bool,
    /// Horizontal subsampling (`XRsiz`), at least 1.
    pub dx: u8,
    /// Vertical subsampling (`YRsiz`), at least 1.
    pub dy: u8,
}

/// The SIZ marker: reference grid, tiling and components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Siz {
    /// Capabilities (`Rsiz`).
    pub rsiz: u16,
    /// Reference grid width (`Xsiz`).
    pub x1: u32,
    /// Reference grid height (`Ysiz`).
    pub y1: u32,
    /// Image area horizontal offset (`XOsiz`).
    pub x0: u32,
    /// Image area vertical offset (`YOsiz`).
    pub y0: u32,
    /// Tile width (`XTsiz`).
    pub tile_w: u32,
    /// Tile height (`YTsiz`).
    pub tile_h: u32,
    /// Tile grid horizontal offset (`XTOsiz`).
    pub tile_x0: u32,
    /// Tile grid vertical offset (`YTOsiz`).
    pub tile_y0: u32,
    /// The components, in codestream order.
    pub components: Vec<Component>,
}

impl Siz {
    /// Image width in pixels.
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    /// Image height in pixels.
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// Number of tiles across.
    pub fn tiles_x(&self) -> u32 {
        // Validated non-zero tile size and x1 > tile_x0 at parse time.
        (self.x1 - self.tile_x0).div_ceil(self.tile_w)
    }

    /// Number of tiles down.
    pub fn tiles_y(&self) -> u32 {
        (self.y1 - self.tile_y0).div_ceil(self.tile_h)
    }

    /// Total number of tiles.
    pub fn num_tiles(&self) -> u32 {
        // Validated against the tile limit (at most 65535) at parse time.
        self.tiles_x() * self.tiles_y()
    }

    /// Image size at discard level `d` (resolution divided by `2^d`), as a decoder produces it.
    pub fn size_at_discard(&self, discard: u8) -> (u32, u32) {
        let w =
            ceil_div_pow2(u64::from(self.x1), discard) - ceil_div_pow2(u64::from(self.x0), discard);
        let h =
            ceil_div_pow2(u64::from(self.y1), discard) - ceil_div_pow2(u64::from(self.y0), discard);
        // Both differences are at most the full size, which fits a u32.
        (w as u32, h as u32)
    }

    /// Bounds of tile `t` on the reference grid: `(x0, y0, x1, y1)`, end exclusive.
    pub(crate) fn tile_rect(&self, t: u32) -> (u32, u32, u32, u32) {
        let tx = t % self.tiles_x();
        let ty = t / self.tiles_x();
        let x0 = u64::from(self.tile_x0) + u64::from(tx) * u64::from(self.tile_w);
        let y0 = u64::from(self.tile_y0) + u64::from(ty) * u64::from(self.tile_h);
        let x1 = (x0 + u64::from(self.tile_w)).min(u64::from(self.x1));
        let y1 = (y0 + u64::from(self.tile_h)).min(u64::from(self.y1));
        let x0 = x0.max(u64::from(self.x0));
        let y0 = y0.max(u64::from(self.y0));
        // All values are clamped into [x0, x1] of the grid, which are u32.
        (x0 as u32, y0 as u32, x1 as u32, y1 as u32)
    }
}

pub(crate) fn ceil_div_pow2(v: u64, s: u8) -> u64 {
    if s >= 64 {
        return u64::from(v != 0);
    }
    (v + (1u64 << s) - 1) >> s
}

/// Packet progression order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progression {
    /// Layer, resolution, component, position (the usual order for SL/OpenSim textures).
    Lrcp,
    /// Resolution, layer, component, position.
    Rlcp,
    /// Resolution, position, component, layer.
    Rpcl,
    /// Position, component, resolution, layer.
    Pcrl,
    /// Component, position, resolution, layer.
    Cprl,
}

impl Progression {
    fn from_byte(b: u8, offset: usize) -> Result<Self, CodestreamError> {
        Ok(match b {
            0 => Progression::Lrcp,
            1 => Progression::Rlcp,
            2 => Progression::Rpcl,
            3 => Progression::Pcrl,
            4 => Progression::Cprl,
            _ => return Err(malformed(offset, "unknown progression order")),
        })
    }
}

/// Coding parameters shared by all components (from COD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodingStyle {
    /// `Scod`: bit 0 = precinct sizes given, bit 1 = SOP markers may be used, bit 2 = EPH markers used.
    pub scod: u8,
    /// Packet progression order.
    pub progression: Progression,
    /// Number of quality layers (at least 1).
    pub layers: u16,
    /// Multiple component transform (0 = none, 1 = RCT/ICT on the first three components).
    pub mct: u8,
}

impl CodingStyle {
    /// Whether packets may start with an SOP marker segment.
    pub fn sop(&self) -> bool {
        self.scod & 0x02 != 0
    }

    /// Whether packet headers end with an EPH marker.
    pub fn eph(&self) -> bool {
        self.scod & 0x04 != 0
    }
}

/// Per-component coding parameters (from COD or COC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentStyle {
    /// Number of wavelet decomposition levels (0 to 32); resolutions = levels + 1.
    pub levels: u8,
    /// Code-block width exponent (width = `2^cblk_w_exp`, 2 to 10).
    pub cblk_w_exp: u8,
    /// Code-block height exponent.
    pub cblk_h_exp: u8,
    /// Code-block style flags (bypass, reset, termall, causal, ert, segmark, HT).
    pub cblk_style: u8,
    /// Whether the 5/3 reversible wavelet is used (else 9/7 irreversible).
    pub reversible: bool,
    /// Precinct size exponents per resolution: low nibble PPx, high nibble PPy.
    pub precincts: [u8; 33],
}

impl ComponentStyle {
    /// Precinct exponents `(PPx, PPy)` at resolution `r`.
    pub fn precinct_exp(&self, r: u8) -> (u8, u8) {
        let b = self.precincts[usize::from(r.min(32))];
        (b & 0x0F, b >> 4)
    }
}

/// Parses SPcod/SPcoc (after the fields specific to COD or COC).
fn parse_component_style(
    r: &mut Reader<'_>,
    explicit_precincts: bool,
) -> Result<ComponentStyle, CodestreamError> {
    let at = r.offset();
    let levels = r.u8("coding style: decomposition levels")?;
    if levels > 32 {
        return Err(malformed(at, "more than 32 decomposition levels"));
    }
    let xcb = r.u8("coding style: code-block width")?;
    let ycb = r.u8("coding style: code-block height")?;
    if xcb > 8 || ycb > 8 || xcb + ycb > 8 {
        return Err(malformed(at, "code-block size out of range"));
    }
    let cblk_style = r.u8("coding style: code-block style")?;
    let transform = r.u8("coding style: transform")?;
    if transform > 1 {
        return Err(malformed(at, "unknown wavelet transform"));
    }
    let mut precincts = [0xFFu8; 33];
    if explicit_precincts {
        for (res, p) in precincts
            .iter_mut()
            .enumerate()
            .take(usize::from(levels) + 1)
        {
            let at = r.offset();
            *p = r.u8("coding style: precinct size")?;
            // Only the lowest resolution may use 1-sample precincts: the others halve it per band.
            if res > 0 && (*p & 0x0F == 0 || *p >> 4 == 0) {
                return Err(malformed(at, "precinct exponent 0 above resolution 0"));
            }
        }
    }
    if r.remaining() != 0 {
        return Err(malformed(
            r.offset(),
            "coding style segment has trailing bytes",
        ));
    }
    Ok(ComponentStyle {
        levels,
        cblk_w_exp: xcb + 2,
        cblk_h_exp: ycb + 2,
        cblk_style,
        reversible: transform == 1,
        precincts,
    })
}

/// Parses a COD body.
fn parse_cod(seg: &Segment<'_>) -> Result<(CodingStyle, ComponentStyle), CodestreamError> {
    let mut r = Reader::new(seg.body, seg.offset + 4);
    let scod = r.u8("COD: Scod")?;
    let at = r.offset();
    let progression = Progression::from_byte(r.u8("COD: progression")?, at)?;
    let at = r.offset();
    let layers = r.u16("COD: layers")?;
    if layers == 0 {
        return Err(malformed(at, "zero quality layers"));
    }
    let mct = r.u8("COD: MCT")?;
    let style = parse_component_style(&mut r, scod & 1 != 0)?;
    Ok((
        CodingStyle {
            scod,
            progression,
            layers,
            mct,
        },
        style,
    ))
}

/// Parses a COC body: the component index and its style.
fn parse_coc(
    seg: &Segment<'_>,
    num_comps: usize,
) -> Result<(usize, ComponentStyle), CodestreamError> {
    let mut r = Reader::new(seg.body, seg.offset + 4);
    let at = r.offset();
    let comp = if num_comps < 257 {
        usize::from(r.u8("COC: component")?)
    } else {
        usize::from(r.u16("COC: component")?)
    };
    if comp >= num_comps {
        return Err(malformed(at, "COC names a component that does not exist"));
    }
    let scoc = r.u8("COC: Scoc")?;
    Ok((comp, parse_component_style(&mut r, scoc & 1 != 0)?))
}

/// Checks a QCD/QCC body (after the component index for QCC) for a consistent length.
fn check_quantization(body: &[u8], offset: usize) -> Result<(), CodestreamError> {
    let Some((&sq, rest)) = body.split_first() else {
        return Err(malformed(offset, "empty quantization segment"));
    };
    let ok = match sq & 0x1F {
        0 => !rest.is_empty(),
        1 => rest.len() == 2,
        2 => !rest.is_empty() && rest.len() % 2 == 0,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(malformed(offset, "bad quantization segment"))
    }
}

/// Reads one packet length (7 bits per byte, high bit = more bytes follow), as in PLT/PLM.
pub(crate) fn read_packet_length(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for _ in 0..5 {
        let b = *data.get(*pos)?;
        *pos += 1;
        v = (v << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A tile-part length from TLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlmEntry {
    /// Tile index, when the TLM segment carries it.
    pub tile: Option<u16>,
    /// Length of the tile-part in bytes (`Psot`).
    pub length: u32,
}

/// The main header of a codestream, parsed.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// Image geometry and components.
    pub siz: Siz,
    /// Default coding style.
    pub cod: CodingStyle,
    /// Default per-component style (from COD).
    pub default_style: ComponentStyle,
    /// Per-component overrides from COC, indexed by component.
    pub component_styles: Vec<Option<ComponentStyle>>,
    /// Comment (COM) payloads: registration value and bytes.
    pub comments: Vec<(u16, &'a [u8])>,
    /// Whether a POC marker (progression order change) is present.
    pub has_poc: bool,
    /// Whether PPM (packed packet headers) is present.
    pub has_ppm: bool,
    /// Raw TLM segment bodies, in codestream order.
    tlm: Vec<&'a [u8]>,
    /// Raw PLM segment bodies, in codestream order.
    plm: Vec<&'a [u8]>,
    /// Offset of the first SOT marker (the main header length).
    pub header_len: usize,
}

impl Header<'_> {
    /// Style in force for component `c` in the main header.
    pub fn style(&self, c: usize) -> &ComponentStyle {
        self.component_styles
            .get(c)
            .and_then(Option::as_ref)
            .unwrap_or(&self.default_style)
    }

    /// The largest discard level every component supports (the fewest decomposition levels).
    pub fn max_discard(&self) -> u8 {
        (0..self.siz.components.len())
            .map(|c| self.style(c).levels)
            .min()
            .unwrap_or(0)
    }

    /// Tile-part lengths from TLM segments, if present and well formed.
    pub fn tlm_entries(&self) -> Option<Vec<TlmEntry>> {
        if self.tlm.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for body in &self.tlm {
            let (&stlm, rest) = body.get(1..)?.split_first()?;
            let st = usize::from((stlm >> 4) & 3);
            let sp = if stlm & 0x40 != 0 { 4 } else { 2 };
            if st == 3 || rest.len() % (st + sp) != 0 {
                return None;
            }
            for e in rest.chunks_exact(st + sp) {
                let tile = match st {
                    0 => None,
                    1 => Some(u16::from(e[0])),
                    _ => Some(u16::from_be_bytes([e[0], e[1]])),
                };
                let l = &e[st..];
                let length = if sp == 4 {
                    u32::from_be_bytes([l[0], l[1], l[2], l[3]])
                } else {
                    u32::from(u16::from_be_bytes([l[0], l[1]]))
                };
                out.push(TlmEntry { tile, length });
            }
        }
        Some(out)
    }

    /// Whether PLM segments are present.
    pub fn plm_present(&self) -> bool {
        !self.plm.is_empty()
    }

    /// Packet lengths from PLM segments, grouped per tile-part in codestream order, if present
    /// and well formed.
    pub fn plm_tile_parts(&self) -> Option<Vec<Vec<u64>>> {
        if self.plm.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for body in &self.plm {
            let mut pos = 1; // Zplm
            while pos < body.len() {
                let n = usize::from(body[pos]);
                pos += 1;
                let group = body.get(pos..pos + n)?;
                pos += n;
                let mut lens = Vec::new();
                let mut p = 0;
                while p < group.len() {
                    lens.push(read_packet_length(group, &mut p)?);
                }
                parts.push(lens);
            }
        }
        Some(parts)
    }
}

/// A parsed codestream borrowing its bytes (which may be just a prefix of the file).
#[derive(Debug, Clone)]
pub struct Codestream<'a> {
    data: &'a [u8],
    header: Header<'a>,
    limits: Limits,
}

impl<'a> Codestream<'a> {
    /// Parses and validates the main header of `data` (a whole codestream or a prefix of one
    /// that holds at least the main header).
    pub fn parse(data: &'a [u8], limits: &Limits) -> Result<Self, CodestreamError> {
        let header = parse_header(data, limits)?;
        Ok(Codestream {
            data,
            header,
            limits: *limits,
        })
    }

    /// The parsed main header.
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// The bytes this codestream was parsed from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The limits it was parsed with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Walks tile-parts and packet headers to find how many leading bytes each discard level and
    /// each number of quality layers needs. Never fails: what cannot be worked out is reported
    /// through [`Exactness`].
    pub fn budget(&self) -> Budget {
        budget::compute(self)
    }
}

fn parse_header<'a>(data: &'a [u8], limits: &Limits) -> Result<Header<'a>, CodestreamError> {
    if data.len() >= 12 && data[4..8] == *b"jP  " {
        return Err(CodestreamError::Unsupported(
            "JP2 file format wrapper; a raw codestream is expected",
        ));
    }
    let soc = read_segment(data, 0)?;
    if soc.marker != SOC {
        return Err(malformed(0, "codestream does not start with SOC"));
    }
    let siz_seg = read_segment(data, soc.end)?;
    if siz_seg.marker != SIZ {
        return Err(malformed(soc.end, "SIZ must follow SOC"));
    }
    let siz = parse_siz(&siz_seg, limits)?;
    let num_comps = siz.components.len();

    let mut cod: Option<(CodingStyle, ComponentStyle)> = None;
    let mut component_styles: Vec<Option<ComponentStyle>> = vec![None; num_comps];
    let mut comments = Vec::new();
    let mut has_qcd = false;
    let mut has_poc = false;
    let mut has_ppm = false;
    let mut tlm = Vec::new();
    let mut plm = Vec::new();
    let mut pos = siz_seg.end;
    loop {
        // The main header ends at the first SOT; its segment need not be there yet.
        if data.get(pos..pos + 2) == Some(&SOT.to_be_bytes()[..]) {
            break;
        }
        let seg = read_segment(data, pos)?;
        match seg.marker {
            COD => {
                if cod.is_some() {
                    return Err(malformed(seg.offset, "second COD in the main header"));
                }
                cod = Some(parse_cod(&seg)?);
            }
            COC => {
                let (c, style) = parse_coc(&seg, num_comps)?;
                component_styles[c] = Some(style);
            }
            QCD => {
                check_quantization(seg.body, seg.offset)?;
                has_qcd = true;
            }
            QCC => {
                let skip = if num_comps < 257 { 1 } else { 2 };
                let rest = seg
                    .body
                    .get(skip..)
                    .ok_or_else(|| malformed(seg.offset, "QCC too short"))?;
                check_quantization(rest, seg.offset)?;
            }
            COM => {
                if seg.body.len() < 2 {
                    return Err(malformed(seg.offset, "COM too short"));
                }
                comments.push((
                    u16::from_be_bytes([seg.body[0], seg.body[1]]),
                    &seg.body[2..],
                ));
            }
            TLM => {
                if seg.body.len() < 2 {
                    return Err(malformed(seg.offset, "TLM too short"));
                }
                tlm.push(seg.body);
            }
            PLM => {
                if seg.body.is_empty() {
                    return Err(malformed(seg.offset, "PLM too short"));
                }
                plm.push(seg.body);
            }
            POC => has_poc = true,
            PPM => has_ppm = true,
            SIZ | SOC | SOD | EOC | SOP | EPH | PLT | PPT | SOT => {
                return Err(malformed(
                    seg.offset,
                    "marker not allowed in the main header",
                ));
            }
            // RGN, CRG, CAP, CPF and unknown markers carry nothing the packet walk needs.
            _ => {}
        }
        pos = seg.end;
    }
    let Some((cod, default_style)) = cod else {
        return Err(malformed(pos, "main header has no COD"));
    };
    if !has_qcd {
        return Err(malformed(pos, "main header has no QCD"));
    }
    Ok(Header {
        siz,
        cod,
        default_style,
        component_styles,
        comments,
        has_poc,
        has_ppm,
        tlm,
        plm,
        header_len: pos,
    })
}

fn parse_siz(seg: &Segment<'_>, limits: &Limits) -> Result<Siz, CodestreamError> {
    let mut r = Reader::new(seg.body, seg.offset + 4);
    let rsiz = r.u16("SIZ: Rsiz")?;
    let x1 = r.u32("SIZ: Xsiz")?;
    let y1 = r.u32("SIZ: Ysiz")?;
    let x0 = r.u32("SIZ: XOsiz")?;
    let y0 = r.u32("SIZ: YOsiz")?;
    let tile_w = r.u32("SIZ: XTsiz")?;
    let tile_h = r.u32("SIZ: YTsiz")?;
    let tile_x0 = r.u32("SIZ: XTOsiz")?;
    let tile_y0 = r.u32("SIZ: YTOsiz")?;
    let at = r.offset();
    let csiz = r.u16("SIZ: Csiz")?;
    let at_geom = seg.offset;
    if x1 <= x0 || y1 <= y0 {
        return Err(malformed(at_geom, "SIZ declares an empty image"));
    }
    let (w, h) = (x1 - x0, y1 - y0);
    for side in [w, h] {
        if side > limits.max_side {
            return Err(CodestreamError::LimitExceeded {
                what: "image side",
                value: u64::from(side),
                limit: u64::from(limits.max_side),
            });
        }
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(CodestreamError::LimitExceeded {
            what: "pixel count",
            value: pixels,
            limit: limits.max_pixels,
        });
    }
    if tile_w == 0 || tile_h == 0 {
        return Err(malformed(at_geom, "SIZ declares an empty tile size"));
    }
    if tile_x0 > x0
        || tile_y0 > y0
        || u64::from(tile_x0) + u64::from(tile_w) <= u64::from(x0)
        || u64::from(tile_y0) + u64::from(tile_h) <= u64::from(y0)
    {
        return Err(malformed(
            at_geom,
            "SIZ tile grid does not cover the image origin",
        ));
    }
    let tiles =
        u64::from((x1 - tile_x0).div_ceil(tile_w)) * u64::from((y1 - tile_y0).div_ceil(tile_h));
    if tiles > u64::from(limits.max_tiles.min(65535)) {
        return Err(CodestreamError::LimitExceeded {
            what: "tile count",
            value: tiles,
            limit: u64::from(limits.max_tiles.min(65535)),
        });
    }
    if csiz == 0 {
        return Err(malformed(at, "SIZ declares no components"));
    }
    if csiz > limits.max_components {
        return Err(CodestreamError::LimitExceeded {
            what: "component count",
            value: u64::from(csiz),
            limit: u64::from(limits.max_components),
        });
    }
    if r.remaining() != 3 * usize::from(csiz) {
        return Err(malformed(
            at,
            "SIZ length does not match its component count",
        ));
    }
    let mut components = Vec::with_capacity(usize::from(csiz));
    for _ in 0..csiz {
        let at = r.offset();
        let ssiz = r.u8("SIZ: Ssiz")?;
        let dx = r.u8("SIZ: XRsiz")?;
        let dy = r.u8("SIZ: YRsiz")?;
        let precision = (ssiz & 0x7F) + 1;
        if precision > 38 {
            return Err(malformed(at, "component precision above 38 bits"));
        }
        if dx == 0 || dy == 0 {
            return Err(malformed(at, "component subsampling of zero"));
        }
        components.push(Component {
            precision,
            signed: ssiz & 0x80 != 0,
            dx,
            dy,
        });
    }
    Ok(Siz {
        rsiz,
        x1,
        y1,
        x0,
        y0,
        tile_w,
        tile_h,
        tile_x0,
        tile_y0,
        components,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn packet_length_varint() {
        let data = [0x81, 0x00, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        let mut pos = 0;
        assert_eq!(read_packet_length(&data, &mut pos), Some(128));
        assert_eq!(read_packet_length(&data, &mut pos), Some(5));
        // Five continuation bytes in a row are refused rather than overflowing.
        assert_eq!(read_packet_length(&data, &mut pos), None);
    }

    #[test]
    fn ceil_div() {
        assert_eq!(ceil_div_pow2(512, 5), 16);
        assert_eq!(ceil_div_pow2(33, 5), 2);
        assert_eq!(ceil_div_pow2(0, 70), 0);
        assert_eq!(ceil_div_pow2(7, 70), 1);
    }
}
