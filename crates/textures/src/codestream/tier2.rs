//! Tier-2 walk of one tile: precinct and code-block geometry, the packet sequence of each
//! progression order, and packet-header decoding (tag trees, pass counts, lengths) to find
//! where every packet ends without decoding any coefficient.

use super::{
    CBLK_HT, CBLK_LAZY, CBLK_TERMALL, CodingStyle, ComponentStyle, Limits, Progression, Siz,
    ceil_div_pow2,
};
use crate::codestream::EstimateReason;

/// Coding parameters in force for one tile (main header plus tile-part header overrides).
#[derive(Debug, Clone)]
pub(crate) struct TileStyle {
    pub(crate) cod: CodingStyle,
    pub(crate) comps: Vec<ComponentStyle>,
}

/// Why a packet could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// The available bytes end inside this packet, and the tile-part is known to go on.
    NeedMore,
    /// The header of this packet was read but the available bytes end inside its body, which
    /// ends at the given offset (the tile-part is known to go on).
    NeedBody(usize),
    /// The packet structure cannot be followed: give up on exact figures.
    Give(EstimateReason),
}

/// Where one walked packet ends and whether it carries code-block contributions (a packet
/// whose header only advances tag trees changes nothing unless a later packet of the same
/// precinct is needed, and that one comes later in the stream anyway).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet {
    pub(crate) end: usize,
    pub(crate) contributes: bool,
    pub(crate) layer: u16,
    /// `levels(c) - r`: the packet is needed by every discard level up to this one.
    pub(crate) need: u8,
}

#[derive(Debug, Clone, Copy)]
struct Precinct {
    comp: u16,
    res: u8,
    /// The component's decomposition levels minus `res`.
    need: u8,
    index: u32,
    anchor_x: u64,
    anchor_y: u64,
    band_start: u32,
    band_count: u8,
}

#[derive(Debug, Clone, Copy)]
struct BandPrecinct {
    cw: u32,
    ch: u32,
    cblk_start: u32,
    incl_base: u32,
    imsb_base: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct CodeBlock {
    included: bool,
    lblock: u8,
    seg_max: u8,
    seg_passes: u8,
}

#[derive(Debug, Clone, Copy)]
struct TagNode {
    value: u32,
    low: u32,
}

const TAG_UNKNOWN: TagNode = TagNode {
    value: u32::MAX,
    low: 0,
};

/// Number of nodes of a tag tree over `w x h` leaves.
fn tag_tree_nodes(mut w: u64, mut h: u64) -> u64 {
    if w == 0 || h == 0 {
        return 0;
    }
    let mut n = 0;
    loop {
        n += w * h;
        if w == 1 && h == 1 {
            return n;
        }
        w = w.div_ceil(2);
        h = h.div_ceil(2);
    }
}

/// Bit reader for packet headers: after an 0xFF byte the next byte carries only 7 bits.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    last: u8,
    ct: u8,
}

struct Overrun;

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            last: 0,
            ct: 0,
        }
    }

    #[inline]
    fn bit(&mut self) -> Result<u32, Overrun> {
        if self.ct == 0 {
            let b = *self.data.get(self.pos).ok_or(Overrun)?;
            self.ct = if self.last == 0xFF { 7 } else { 8 };
            self.last = b;
            self.pos += 1;
        }
        self.ct -= 1;
        Ok(u32::from(self.last >> self.ct) & 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, Overrun> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    /// Skips to the byte boundary; a header ending on 0xFF is followed by a stuffed byte.
    fn align(&mut self) -> Result<(), Overrun> {
        if self.last == 0xFF {
            self.data.get(self.pos).ok_or(Overrun)?;
            self.pos += 1;
            self.last = 0;
        }
        self.ct = 0;
        Ok(())
    }
}

/// Decodes a tag-tree value against `threshold`; true when the leaf's value is below it.
fn tag_decode(
    nodes: &mut [TagNode],
    w: u32,
    h: u32,
    leaf: u32,
    threshold: u32,
    bits: &mut Bits<'_>,
) -> Result<bool, Overrun> {
    // At most 33 levels: each halves a side below 2^32.
    let mut path = [0usize; 34];
    let mut n = 0;
    let (mut lw, mut lh) = (w as usize, h as usize);
    let (mut x, mut y) = ((leaf % w) as usize, (leaf / w) as usize);
    let mut offset = 0usize;
    loop {
        path[n] = offset + y * lw + x;
        n += 1;
        if (lw == 1 && lh == 1) || n == path.len() {
            break;
        }
        offset += lw * lh;
        x /= 2;
        y /= 2;
        lw = lw.div_ceil(2);
        lh = lh.div_ceil(2);
    }
    let mut low = 0u32;
    for &i in path[..n].iter().rev() {
        let node = &mut nodes[i];
        if low > node.low {
            node.low = low;
        } else {
            low = node.low;
        }
        while low < threshold && low < node.value {
            if bits.bit()? == 1 {
                node.value = low;
            } else {
                low += 1;
            }
        }
        node.low = low;
    }
    Ok(nodes[path[0]].value < threshold)
}

/// Number of coding passes (B.10.6 codewords).
fn num_passes(bits: &mut Bits<'_>) -> Result<u32, Overrun> {
    if bits.bit()? == 0 {
        return Ok(1);
    }
    if bits.bit()? == 0 {
        return Ok(2);
    }
    let n = bits.bits(2)?;
    if n != 3 {
        return Ok(3 + n);
    }
    let n = bits.bits(5)?;
    if n != 31 {
        return Ok(6 + n);
    }
    Ok(37 + bits.bits(7)?)
}

fn first_segment_max(style: u8) -> u8 {
    if style & CBLK_TERMALL != 0 {
        1
    } else if style & CBLK_LAZY != 0 {
        10
    } else {
        109
    }
}

fn next_segment_max(style: u8, previous: u8) -> u8 {
    if style & CBLK_TERMALL != 0 {
        1
    } else if style & CBLK_LAZY != 0 {
        // Bypass alternates raw segments of two passes with arithmetic segments of one.
        if previous == 1 || previous == 10 {
            2
        } else {
            1
        }
    } else {
        109
    }
}

/// Packet walk state for one tile.
pub(crate) struct TileWalk {
    cod: CodingStyle,
    cblk_styles: Vec<u8>,
    precincts: Vec<Precinct>,
    bands: Vec<BandPrecinct>,
    cblks: Vec<CodeBlock>,
    nodes: Vec<TagNode>,
    /// Precinct indices in progression order.
    order: Vec<u32>,
    /// Boundaries into `order`: within a run, every layer of the run comes before the next run.
    runs: Vec<u32>,
    run: usize,
    layer: u16,
    pos: u32,
}

/// Shared budget of the walk across tiles.
pub(crate) struct WalkBudget {
    pub(crate) units_left: u64,
    pub(crate) work_left: u64,
}

impl WalkBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        WalkBudget {
            units_left: limits.max_code_blocks,
            work_left: limits.max_work,
        }
    }

    fn take_units(&mut self, n: u64) -> Result<(), EstimateReason> {
        self.units_left = self
            .units_left
            .checked_sub(n)
            .ok_or(EstimateReason::LimitExceeded(
                "precinct and code-block count",
            ))?;
        Ok(())
    }
}

impl TileWalk {
    /// Lays out precincts, code-blocks and tag trees of tile `tile`, charging them to `budget`
    /// before allocating.
    pub(crate) fn new(
        siz: &Siz,
        tile: u32,
        style: &TileStyle,
        budget: &mut WalkBudget,
    ) -> Result<TileWalk, EstimateReason> {
        if style.comps.iter().any(|c| c.cblk_style & CBLK_HT != 0) {
            return Err(EstimateReason::Unsupported(
                "high-throughput (HTJ2K) code-blocks",
            ));
        }
        let positional = matches!(
            style.cod.progression,
            Progression::Rpcl | Progression::Pcrl | Progression::Cprl
        );
        if positional
            && siz
                .components
                .iter()
                .any(|c| !c.dx.is_power_of_two() || !c.dy.is_power_of_two())
        {
            return Err(EstimateReason::Unsupported(
                "position-driven progression with non-power-of-two subsampling",
            ));
        }
        let (tx0, ty0, tx1, ty1) = siz.tile_rect(tile);
        let mut walk = TileWalk {
            cod: style.cod,
            cblk_styles: style.comps.iter().map(|c| c.cblk_style).collect(),
            precincts: Vec::new(),
            bands: Vec::new(),
            cblks: Vec::new(),
            nodes: Vec::new(),
            order: Vec::new(),
            runs: Vec::new(),
            run: 0,
            layer: 0,
            pos: 0,
        };
        for (c, (comp, cs)) in siz.components.iter().zip(&style.comps).enumerate() {
            let tcx0 = u64::from(tx0).div_ceil(u64::from(comp.dx));
            let tcy0 = u64::from(ty0).div_ceil(u64::from(comp.dy));
            let tcx1 = u64::from(tx1).div_ceil(u64::from(comp.dx));
            let tcy1 = u64::from(ty1).div_ceil(u64::from(comp.dy));
            for r in 0..=cs.levels {
                let level = cs.levels - r;
                walk.add_resolution(
                    budget,
                    c as u16,
                    r,
                    level,
                    cs,
                    [tcx0, tcy0, tcx1, tcy1],
                    (u64::from(tx0), u64::from(ty0)),
                    (u64::from(comp.dx), u64::from(comp.dy)),
                )?;
            }
        }
        walk.build_order(style.cod.progression, budget)?;
        Ok(walk)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_resolution(
        &mut self,
        budget: &mut WalkBudget,
        comp: u16,
        r: u8,
        level: u8,
        cs: &ComponentStyle,
        tc: [u64; 4],
        tile_origin: (u64, u64),
        sub: (u64, u64),
    ) -> Result<(), EstimateReason> {
        let [tcx0, tcy0, tcx1, tcy1] = tc;
        let (trx0, try0) = (ceil_div_pow2(tcx0, level), ceil_div_pow2(tcy0, level));
        let (trx1, try1) = (ceil_div_pow2(tcx1, level), ceil_div_pow2(tcy1, level));
        let (ppx, ppy) = cs.precinct_exp(r);
        let pw = if trx0 == trx1 {
            0
        } else {
            (ceil_div_pow2(trx1, ppx) << ppx).saturating_sub((trx0 >> ppx) << ppx) >> ppx
        };
        let ph = if try0 == try1 {
            0
        } else {
            (ceil_div_pow2(try1, ppy) << ppy).saturating_sub((try0 >> ppy) << ppy) >> ppy
        };
        let count = pw.saturating_mul(ph);
        if count == 0 {
            return Ok(());
        }
        budget.take_units(count)?;

        // Band rectangles (i64: the high-pass offset can make coordinates negative).
        let nbands: u8 = if r == 0 { 1 } else { 3 };
        let mut band_rects = [[0i64; 4]; 3];
        for (b, rect) in band_rects.iter_mut().enumerate().take(usize::from(nbands)) {
            *rect = if r == 0 {
                [trx0 as i64, try0 as i64, trx1 as i64, try1 as i64]
            } else {
                let bandno = b as i64 + 1;
                let (xob, yob) = (bandno & 1, bandno >> 1);
                let sh = u32::from(level);
                let f = |v: u64, o: i64| ceil_div_pow2_signed(v as i64 - (o << sh), sh + 1);
                [f(tcx0, xob), f(tcy0, yob), f(tcx1, xob), f(tcy1, yob)]
            };
        }
        let (cbg_w, cbg_h) = if r == 0 {
            (u32::from(ppx), u32::from(ppy))
        } else {
            (u32::from(ppx) - 1, u32::from(ppy) - 1)
        };
        let cblk_w = u32::from(cs.cblk_w_exp).min(cbg_w);
        let cblk_h = u32::from(cs.cblk_h_exp).min(cbg_h);
        let tl_prc_x = ((trx0 >> ppx) << ppx) as i64;
        let tl_prc_y = ((try0 >> ppy) << ppy) as i64;
        let (tl_cbg_x, tl_cbg_y) = if r == 0 {
            (tl_prc_x, tl_prc_y)
        } else {
            (
                ceil_div_pow2_signed(tl_prc_x, 1),
                ceil_div_pow2_signed(tl_prc_y, 1),
            )
        };
        let need = level;
        let (tile_x0, tile_y0) = tile_origin;
        let (dx, dy) = sub;
        for k in 0..count {
            let (kx, ky) = (k % pw, k / pw);
            let band_start = self.bands.len() as u32;
            for rect in band_rects.iter().take(usize::from(nbands)) {
                // Empty bands carry no code-blocks and read no header bits.
                if rect[0] >= rect[2] || rect[1] >= rect[3] {
                    continue;
                }
                let cbg_x0 = tl_cbg_x + ((kx as i64) << cbg_w);
                let cbg_y0 = tl_cbg_y + ((ky as i64) << cbg_h);
                let px0 = cbg_x0.max(rect[0]);
                let py0 = cbg_y0.max(rect[1]);
                let px1 = (cbg_x0 + (1i64 << cbg_w)).min(rect[2]);
                let py1 = (cbg_y0 + (1i64 << cbg_h)).min(rect[3]);
                let cw = ((ceil_div_pow2_signed(px1, cblk_w) << cblk_w)
                    - ((px0 >> cblk_w) << cblk_w))
                    .max(0)
                    >> cblk_w;
                let ch = ((ceil_div_pow2_signed(py1, cblk_h) << cblk_h)
                    - ((py0 >> cblk_h) << cblk_h))
                    .max(0)
                    >> cblk_h;
                let (cw, ch) = (cw as u64, ch as u64);
                let n = cw.saturating_mul(ch);
                let nodes = tag_tree_nodes(cw, ch);
                budget.take_units(1 + n + 2 * nodes)?;
                let cblk_start = self.cblks.len() as u32;
                let incl_base = self.nodes.len() as u32;
                self.cblks
                    .resize(self.cblks.len() + n as usize, CodeBlock::default());
                self.nodes
                    .resize(self.nodes.len() + 2 * nodes as usize, TAG_UNKNOWN);
                self.bands.push(BandPrecinct {
                    cw: cw as u32,
                    ch: ch as u32,
                    cblk_start,
                    incl_base,
                    imsb_base: incl_base + nodes as u32,
                });
            }
            let prx = ((trx0 >> ppx) + kx) << ppx;
            let pry = ((try0 >> ppy) + ky) << ppy;
            self.precincts.push(Precinct {
                comp,
                res: r,
                need,
                index: k as u32,
                anchor_x: tile_x0.max((prx * dx) << level),
                anchor_y: tile_y0.max((pry * dy) << level),
                band_start,
                band_count: (self.bands.len() as u32 - band_start) as u8,
            });
        }
        Ok(())
    }

    fn build_order(
        &mut self,
        prog: Progression,
        budget: &mut WalkBudget,
    ) -> Result<(), EstimateReason> {
        let n = self.precincts.len();
        budget.take_units(n as u64)?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let p = &self.precincts;
        let key = |i: &u32| {
            let q = &p[*i as usize];
            match prog {
                Progression::Lrcp | Progression::Rlcp => {
                    (u64::from(q.res), u64::from(q.comp), u64::from(q.index), 0)
                }
                Progression::Rpcl => (u64::from(q.res), q.anchor_y, q.anchor_x, u64::from(q.comp)),
                Progression::Pcrl => (q.anchor_y, q.anchor_x, u64::from(q.comp), u64::from(q.res)),
                Progression::Cprl => (u64::from(q.comp), q.anchor_y, q.anchor_x, u64::from(q.res)),
            }
        };
        order.sort_unstable_by_key(key);
        let mut runs = vec![0u32];
        match prog {
            Progression::Lrcp => {}
            Progression::Rlcp => {
                for i in 1..n {
                    if p[order[i] as usize].res != p[order[i - 1] as usize].res {
                        runs.push(i as u32);
                    }
                }
            }
            _ => runs.extend(1..n as u32),
        }
        if n > 0 {
            runs.push(n as u32);
        }
        self.order = order;
        self.runs = runs;
        Ok(())
    }

    /// Number of quality layers of this tile.
    pub(crate) fn layers(&self) -> u16 {
        self.cod.layers
    }

    /// The next packet to walk as `(layer, precinct)`, without consuming it.
    fn peek(&mut self) -> Option<(u16, u32)> {
        while self.run + 1 < self.runs.len() {
            let (s, e) = (self.runs[self.run], self.runs[self.run + 1]);
            if self.layer < self.cod.layers {
                if self.pos < e - s {
                    return Some((self.layer, self.order[(s + self.pos) as usize]));
                }
                self.pos = 0;
                self.layer += 1;
                continue;
            }
            self.run += 1;
            self.layer = 0;
            self.pos = 0;
        }
        None
    }

    /// Whether every packet of the tile has been walked.
    pub(crate) fn finished(&mut self) -> bool {
        self.peek().is_none()
    }

    /// For the packets not walked yet: the largest discard level that needs one of them and the
    /// lowest layer among them.
    pub(crate) fn remaining_needs(&mut self) -> Option<(u8, u16)> {
        let (layer, _) = self.peek()?;
        let (s, e) = (self.runs[self.run], self.runs[self.run + 1]);
        let from = if layer + 1 < self.cod.layers {
            s
        } else {
            s + self.pos
        };
        let need = self.order[from as usize..e as usize]
            .iter()
            .chain(&self.order[e as usize..])
            .map(|&i| self.precincts[i as usize].need)
            .max()
            .unwrap_or(0);
        let min_layer = if (e as usize) < self.order.len() {
            0
        } else {
            layer
        };
        Some((need, min_layer))
    }

    /// Walks the next packet, which starts at `pos` in `body` (the available bytes of the
    /// tile-part, `complete` when they reach its declared end). Returns `None` when the tile has
    /// no packets left.
    pub(crate) fn walk_next(
        &mut self,
        body: &[u8],
        pos: usize,
        complete: bool,
        budget: &mut WalkBudget,
    ) -> Result<Option<Packet>, WalkError> {
        let Some((layer, prec)) = self.peek() else {
            return Ok(None);
        };
        let overrun = || {
            if complete {
                WalkError::Give(EstimateReason::Inconsistent(
                    "packet runs past the end of its tile-part",
                ))
            } else {
                WalkError::NeedMore
            }
        };
        let precinct = self.precincts[prec as usize];
        let mut p = pos;
        if self.cod.sop() {
            match body.get(p..p + 6) {
                Some(s) if s[0] == 0xFF && s[1] == 0x91 => p += 6,
                None if !complete => return Err(WalkError::NeedMore),
                _ => {}
            }
        }
        let header = body.get(p..).ok_or_else(overrun)?;
        let mut bits = Bits::new(header);
        let present = bits.bit().map_err(|_| overrun())? == 1;
        let mut body_len: u64 = 0;
        let mut included = false;
        if present {
            (body_len, included) = self
                .read_contributions(&mut bits, precinct, layer, budget)
                .map_err(|e| match e {
                    ContribError::Overrun => overrun(),
                    ContribError::Give(r) => WalkError::Give(r),
                })?;
        }
        bits.align().map_err(|_| overrun())?;
        p += bits.pos;
        if self.cod.eph() {
            match body.get(p..p + 2) {
                Some([0xFF, 0x92]) => p += 2,
                None if !complete => return Err(WalkError::NeedMore),
                _ => {
                    return Err(WalkError::Give(EstimateReason::Inconsistent(
                        "missing EPH marker after a packet header",
                    )));
                }
            }
        }
        let end = (p as u64).checked_add(body_len).ok_or_else(overrun)?;
        if end > body.len() as u64 {
            return Err(match usize::try_from(end) {
                Ok(end) if !complete => WalkError::NeedBody(end),
                _ => overrun(),
            });
        }
        let end = end as usize;
        self.pos += 1;
        Ok(Some(Packet {
            end,
            contributes: included,
            layer,
            need: precinct.need,
        }))
    }

    fn read_contributions(
        &mut self,
        bits: &mut Bits<'_>,
        precinct: Precinct,
        layer: u16,
        budget: &mut WalkBudget,
    ) -> Result<(u64, bool), ContribError> {
        let style = self.cblk_styles[usize::from(precinct.comp)];
        let mut total: u64 = 0;
        let mut any = false;
        let bands = precinct.band_start as usize
            ..(precinct.band_start as usize + usize::from(precinct.band_count));
        for b in bands {
            let band = self.bands[b];
            let n = band.cw as usize * band.ch as usize;
            budget.work_left = budget
                .work_left
                .checked_sub(n as u64)
                .ok_or(ContribError::Give(EstimateReason::LimitExceeded(
                    "packet header work",
                )))?;
            let tree_len = (band.imsb_base - band.incl_base) as usize;
            let (incl, imsb) = self.nodes
                [band.incl_base as usize..band.incl_base as usize + 2 * tree_len]
                .split_at_mut(tree_len);
            let cblks = &mut self.cblks[band.cblk_start as usize..band.cblk_start as usize + n];
            for (i, cb) in cblks.iter_mut().enumerate() {
                let included = if cb.included {
                    bits.bit()? == 1
                } else {
                    tag_decode(incl, band.cw, band.ch, i as u32, u32::from(layer) + 1, bits)?
                };
                if !included {
                    continue;
                }
                any = true;
                if cb.included {
                    if cb.seg_passes == cb.seg_max {
                        cb.seg_max = next_segment_max(style, cb.seg_max);
                        cb.seg_passes = 0;
                    }
                } else {
                    let mut zero_planes = 0u32;
                    while !tag_decode(imsb, band.cw, band.ch, i as u32, zero_planes, bits)? {
                        zero_planes += 1;
                        if zero_planes > 128 {
                            return Err(ContribError::Give(EstimateReason::Inconsistent(
                                "implausible count of missing bit-planes",
                            )));
                        }
                    }
                    cb.included = true;
                    cb.lblock = 3;
                    cb.seg_max = first_segment_max(style);
                    cb.seg_passes = 0;
                }
                let mut passes = num_passes(bits)?;
                let mut increment = 0u32;
                while bits.bit()? == 1 {
                    increment += 1;
                    if increment > 32 {
                        return Err(bad_length());
                    }
                }
                let lblock = u32::from(cb.lblock) + increment;
                if lblock > 32 {
                    return Err(bad_length());
                }
                cb.lblock = lblock as u8;
                loop {
                    let new = u32::from(cb.seg_max - cb.seg_passes).min(passes);
                    let nbits = lblock + new.ilog2();
                    if nbits > 32 {
                        return Err(bad_length());
                    }
                    total += u64::from(bits.bits(nbits)?);
                    passes -= new;
                    cb.seg_passes += new as u8;
                    if passes == 0 {
                        break;
                    }
                    cb.seg_max = next_segment_max(style, cb.seg_max);
                    cb.seg_passes = 0;
                }
            }
        }
        Ok((total, any))
    }
}

fn bad_length() -> ContribError {
    ContribError::Give(EstimateReason::Inconsistent(
        "code-block length field too wide",
    ))
}

enum ContribError {
    Overrun,
    Give(EstimateReason),
}

impl From<Overrun> for ContribError {
    fn from(_: Overrun) -> Self {
        ContribError::Overrun
    }
}

fn ceil_div_pow2_signed(v: i64, s: u32) -> i64 {
    -((-v) >> s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bits_skip_stuffed_msb_after_ff() {
        // 0xFF then 0x7F: the second byte contributes only its 7 low bits.
        let data = [0xFF, 0x7F];
        let mut b = Bits::new(&data);
        assert_eq!(b.bits(8).ok(), Some(0xFF));
        assert_eq!(b.bits(7).ok(), Some(0x7F));
        assert!(b.bit().is_err());
    }

    #[test]
    fn align_after_ff_consumes_stuffing_byte() {
        let data = [0xFF, 0x00, 0xAA];
        let mut b = Bits::new(&data);
        b.bits(3).ok().unwrap();
        b.align().ok().unwrap();
        assert_eq!(b.pos, 2);
    }

    #[test]
    fn tag_tree_counts() {
        assert_eq!(tag_tree_nodes(1, 1), 1);
        assert_eq!(tag_tree_nodes(3, 2), 6 + 2 + 1);
        assert_eq!(tag_tree_nodes(0, 5), 0);
    }

    #[test]
    fn tag_tree_decodes_known_values() {
        // A 2x1 tree: root then leaves. Encode leaf values 1 and 0 at threshold 2 by hand:
        // root: 0 -> bit 1 (value 0); leaf0: low 0, bit 0 (low 1), bit 1 (value 1);
        // leaf1: low 0, bit 1 (value 0).
        let data = [0b1011_0000];
        let mut nodes = vec![TAG_UNKNOWN; tag_tree_nodes(2, 1) as usize];
        let mut b = Bits::new(&data);
        assert!(tag_decode(&mut nodes, 2, 1, 0, 2, &mut b).ok().unwrap());
        assert_eq!(nodes[0].value, 1);
        assert!(tag_decode(&mut nodes, 2, 1, 1, 2, &mut b).ok().unwrap());
        assert_eq!(nodes[1].value, 0);
        assert_eq!(b.pos, 1);
    }

    #[test]
    fn pass_count_codewords() {
        for (bytes, want) in [
            ([0x00u8, 0x00], 1),
            ([0x80, 0x00], 2),
            ([0xC0, 0x00], 3),
            ([0xE0, 0x00], 5),
            ([0xF0, 0x00], 6),
            ([0xFF, 0x00], 36),
        ] {
            let mut b = Bits::new(&bytes);
            assert_eq!(num_passes(&mut b).ok(), Some(want), "{bytes:02x?}");
        }
        // 11 11 11111 then seven bits 1000001. After 0xFF the next byte carries only 7 bits.
        let data = [0xFF, 0x60, 0xA0];
        let mut b = Bits::new(&data);
        assert_eq!(num_passes(&mut b).ok(), Some(37 + 0b100_0001));
    }

    #[test]
    fn lazy_segments_alternate() {
        let s = CBLK_LAZY;
        assert_eq!(first_segment_max(s), 10);
        assert_eq!(next_segment_max(s, 10), 2);
        assert_eq!(next_segment_max(s, 2), 1);
        assert_eq!(next_segment_max(s, 1), 2);
        assert_eq!(first_segment_max(CBLK_LAZY | CBLK_TERMALL), 1);
        assert_eq!(first_segment_max(0), 109);
    }
}
