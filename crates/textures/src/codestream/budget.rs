//! Byte budgets: how long a prefix of the codestream must be for each discard level and each
//! number of quality layers.

use super::tier2::{Packet, TileStyle, TileWalk, WalkBudget, WalkError};
use super::{
    COC, COD, COM, Codestream, CodestreamError, EOC, Header, PLT, POC, PPT, QCC, QCD, RGN, SIZ,
    SOC, SOD, SOT, parse_coc, parse_cod, read_packet_length, read_segment,
};

/// Why a figure could not be computed exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EstimateReason {
    /// The codestream uses a feature the packet walk does not follow.
    Unsupported(&'static str),
    /// Following the packets would exceed [`Limits`](super::Limits).
    LimitExceeded(&'static str),
    /// The packet data contradicts itself (or its PLT/PLM lengths).
    Inconsistent(&'static str),
}

impl std::fmt::Display for EstimateReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EstimateReason::Unsupported(s) => write!(f, "unsupported: {s}"),
            EstimateReason::LimitExceeded(s) => write!(f, "limit exceeded: {s}"),
            EstimateReason::Inconsistent(s) => write!(f, "inconsistent: {s}"),
        }
    }
}

/// How far a byte figure can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exactness {
    /// Found by walking every packet: a prefix of `bytes` decodes exactly like the whole
    /// stream at this level, and no packet that carries data for it lies beyond.
    Exact,
    /// The data given ends before all packets for this figure were seen: `bytes` is only a
    /// lower bound (the length given). Fetch more and ask again.
    Incomplete,
    /// The packets could not be followed; `bytes` is the whole stream given (conservative).
    Estimated(EstimateReason),
}

impl Exactness {
    /// Whether the figure is exact.
    pub fn is_exact(&self) -> bool {
        matches!(self, Exactness::Exact)
    }
}

/// Bytes needed for one discard level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelBudget {
    /// Discard level: resolution divided by `2^discard`.
    pub discard: u8,
    /// Decoded width at this level.
    pub width: u32,
    /// Decoded height at this level.
    pub height: u32,
    /// Length of the prefix needed (see [`exactness`](Self::exactness)).
    pub bytes: u64,
    /// How far `bytes` can be trusted.
    pub exactness: Exactness,
}

/// Bytes needed for the first `layers` quality layers at full resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerBudget {
    /// Number of leading quality layers.
    pub layers: u16,
    /// Length of the prefix needed.
    pub bytes: u64,
    /// How far `bytes` can be trusted.
    pub exactness: Exactness,
}

/// Result of [`Codestream::budget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// One entry per discard level, index = level, from 0 (full size) to the largest level
    /// every component supports.
    pub levels: Vec<LevelBudget>,
    /// One entry per layer count, index = count - 1.
    pub layers: Vec<LayerBudget>,
    /// Number of bytes that were analysed.
    pub available: u64,
    /// Where the codestream ends: after EOC, or after the last tile-part once every packet of
    /// every tile has been seen.
    pub stream_end: Option<u64>,
    /// Number of packets walked.
    pub packets: u64,
    /// Set when the walk gave up: every figure is then [`Exactness::Estimated`].
    pub estimate: Option<EstimateReason>,
    /// When the data ends inside the body of a packet whose header was read: where that packet
    /// ends. No further packet can be walked before a prefix reaches it, so a progressive
    /// fetcher can ask for at least this much next.
    pub pending_packet_end: Option<u64>,
}

impl Budget {
    /// The budget for `discard`, if the image has that many levels.
    pub fn level(&self, discard: u8) -> Option<&LevelBudget> {
        self.levels.get(usize::from(discard))
    }

    /// The largest supported discard level (the smallest image).
    pub fn max_discard(&self) -> u8 {
        // At most 33 entries.
        self.levels.len().saturating_sub(1) as u8
    }

    /// The exact prefix length for `discard`, when known.
    pub fn bytes_for_discard(&self, discard: u8) -> Option<u64> {
        self.level(discard)
            .filter(|l| l.exactness.is_exact())
            .map(|l| l.bytes)
    }

    /// The exact prefix length for the first `layers` quality layers, when known.
    pub fn bytes_for_layers(&self, layers: u16) -> Option<u64> {
        self.layers
            .get(usize::from(layers).checked_sub(1)?)
            .filter(|l| l.exactness.is_exact())
            .map(|l| l.bytes)
    }

    /// The finest discard level that `have` leading bytes decode exactly, if any.
    pub fn best_discard_within(&self, have: u64) -> Option<u8> {
        self.levels
            .iter()
            .find(|l| l.exactness.is_exact() && l.bytes <= have)
            .map(|l| l.discard)
    }

    /// How many quality layers OpenSimulator's UDP image pipeline sends for a requested
    /// `DiscardLevel` (it drops `discard` layers, clamped so that at least one remains).
    pub fn opensim_layers_for_discard(&self, discard: u8) -> u16 {
        // At most 65535 entries.
        let total = self.layers.len() as u16;
        total.saturating_sub(u16::from(discard).min(total.saturating_sub(1)))
    }
}

/// What the tile-part loop found.
struct Outcome {
    saw_eoc: bool,
    stream_end: Option<u64>,
    /// Where the packet the data ends in finishes, when its header could be read.
    pending_packet_end: Option<u64>,
}

#[derive(Default)]
struct TileSlot {
    walk: Option<Box<TileWalk>>,
    next_part: u16,
    header_end: usize,
}

struct Rec {
    /// Per "need" value (levels - r): the end of the last contributing packet.
    level_rec: [u64; 33],
    /// Per layer: the end of the last contributing packet.
    layer_rec: Vec<u64>,
    packets: u64,
}

struct Acc {
    rec: Rec,
    /// The fewest decomposition levels seen in any component of any tile.
    min_levels: u8,
    /// The most layers seen in any tile.
    max_layers: u16,
    tiles: Vec<TileSlot>,
    /// Whether any tile ends its packet headers with EPH markers.
    eph: bool,
}

impl Rec {
    fn record(&mut self, p: &Packet) {
        self.packets += 1;
        if !p.contributes {
            return;
        }
        let end = p.end as u64;
        let slot = &mut self.level_rec[usize::from(p.need.min(32))];
        *slot = (*slot).max(end);
        if let Some(slot) = self.layer_rec.get_mut(usize::from(p.layer)) {
            *slot = (*slot).max(end);
        }
    }
}

pub(super) fn compute(cs: &Codestream<'_>) -> Budget {
    let h = cs.header();
    let mut acc = Acc {
        rec: Rec {
            level_rec: [0; 33],
            layer_rec: vec![0; usize::from(h.cod.layers)],
            packets: 0,
        },
        min_levels: h.max_discard(),
        max_layers: h.cod.layers,
        tiles: Vec::new(),
        eph: false,
    };
    match walk(cs, &mut acc) {
        // OpenJPEG requires the EPH marker of every packet it reads, and it reads the headers
        // of all packets, even those of dropped resolutions: a truncated stream with EPH
        // markers does not decode at all, so only the whole stream is a safe answer.
        Ok(_) if acc.eph => estimated(
            cs,
            EstimateReason::Unsupported(
                "EPH markers (OpenJPEG refuses truncated streams with them)",
            ),
            acc.rec.packets,
        ),
        Ok(outcome) => finish(cs, acc, &outcome),
        Err(reason) => estimated(cs, reason, acc.rec.packets),
    }
}

fn estimated(cs: &Codestream<'_>, reason: EstimateReason, packets: u64) -> Budget {
    let h = cs.header();
    let all = cs.data().len() as u64;
    let e = Exactness::Estimated(reason);
    Budget {
        levels: (0..=h.max_discard())
            .map(|d| {
                let (width, height) = h.siz.size_at_discard(d);
                LevelBudget {
                    discard: d,
                    width,
                    height,
                    bytes: all,
                    exactness: e,
                }
            })
            .collect(),
        layers: (1..=h.cod.layers)
            .map(|layers| LayerBudget {
                layers,
                bytes: all,
                exactness: e,
            })
            .collect(),
        available: all,
        stream_end: None,
        packets,
        estimate: Some(reason),
        pending_packet_end: None,
    }
}

fn finish(cs: &Codestream<'_>, mut acc: Acc, outcome: &Outcome) -> Budget {
    let h = cs.header();
    let available = cs.data().len() as u64;
    let all_done = acc
        .tiles
        .iter_mut()
        .all(|t| t.walk.as_mut().is_some_and(|w| w.finished()));
    let complete = outcome.saw_eoc || all_done;
    // The discard levels and the layers that packets not yet seen could still be needed by.
    let mut missing_need: Option<u8> = None;
    let mut missing_layer: Option<u16> = None;
    if !complete {
        for t in &mut acc.tiles {
            let (need, layer) = match t.walk.as_mut() {
                None => (32, 0),
                Some(w) => match w.remaining_needs() {
                    Some(x) => x,
                    None => continue,
                },
            };
            missing_need = Some(missing_need.map_or(need, |m| m.max(need)));
            missing_layer = Some(missing_layer.map_or(layer, |m| m.min(layer)));
        }
    }
    let floor = acc
        .tiles
        .iter()
        .map(|t| t.header_end as u64)
        .max()
        .unwrap_or(0)
        .max(h.header_len as u64);

    let mut levels = Vec::with_capacity(usize::from(acc.min_levels) + 1);
    let mut suffix = 0u64;
    let mut needs = [0u64; 33];
    for (d, rec) in acc.rec.level_rec.iter().enumerate().rev() {
        suffix = suffix.max(*rec);
        needs[d] = suffix;
    }
    for d in 0..=acc.min_levels {
        let (width, height) = h.siz.size_at_discard(d);
        let incomplete = missing_need.is_some_and(|n| d <= n);
        let bytes = needs[usize::from(d)].max(floor);
        levels.push(LevelBudget {
            discard: d,
            width,
            height,
            bytes: if incomplete {
                bytes.max(available)
            } else {
                bytes
            },
            exactness: if incomplete {
                Exactness::Incomplete
            } else {
                Exactness::Exact
            },
        });
    }
    let mut layers = Vec::with_capacity(usize::from(acc.max_layers));
    let mut prefix = floor;
    for n in 1..=acc.max_layers {
        prefix = prefix.max(
            acc.rec
                .layer_rec
                .get(usize::from(n) - 1)
                .copied()
                .unwrap_or(0),
        );
        let incomplete = missing_layer.is_some_and(|l| l < n);
        layers.push(LayerBudget {
            layers: n,
            bytes: if incomplete {
                prefix.max(available)
            } else {
                prefix
            },
            exactness: if incomplete {
                Exactness::Incomplete
            } else {
                Exactness::Exact
            },
        });
    }
    Budget {
        levels,
        layers,
        available,
        stream_end: if complete { outcome.stream_end } else { None },
        packets: acc.rec.packets,
        estimate: None,
        pending_packet_end: if complete {
            None
        } else {
            outcome.pending_packet_end
        },
    }
}

/// The coding style of a tile: main header defaults overridden by its first tile-part header.
fn tile_style(
    h: &Header<'_>,
    cod: Option<(super::CodingStyle, super::ComponentStyle)>,
    coc: &[(usize, super::ComponentStyle)],
) -> TileStyle {
    let n = h.siz.components.len();
    let mut comps: Vec<_> = (0..n).map(|c| *h.style(c)).collect();
    let mut coding = h.cod;
    if let Some((c, s)) = cod {
        coding = c;
        comps.iter_mut().for_each(|x| *x = s);
    }
    for &(c, s) in coc {
        comps[c] = s;
    }
    TileStyle { cod: coding, comps }
}

const fn inconsistent(s: &'static str) -> EstimateReason {
    EstimateReason::Inconsistent(s)
}

fn walk(cs: &Codestream<'_>, acc: &mut Acc) -> Result<Outcome, EstimateReason> {
    let h = cs.header();
    let data = cs.data();
    if h.has_ppm {
        return Err(EstimateReason::Unsupported("packed packet headers (PPM)"));
    }
    if h.has_poc {
        return Err(EstimateReason::Unsupported(
            "progression order change (POC)",
        ));
    }
    let ntiles = h.siz.num_tiles();
    acc.tiles = (0..ntiles).map(|_| TileSlot::default()).collect();
    let plm = h.plm_tile_parts();
    if h.plm_present() && plm.is_none() {
        return Err(inconsistent("malformed PLM"));
    }
    let mut budget = WalkBudget::new(cs.limits());
    let mut pos = h.header_len;
    let mut tile_part_no = 0usize;
    let ends_with_eoc = data.ends_with(&EOC.to_be_bytes());
    let mut coc = Vec::new();
    let mut plt: Vec<&[u8]> = Vec::new();
    loop {
        let sot = match read_segment(data, pos) {
            Ok(s) => s,
            Err(CodestreamError::Truncated { .. }) => {
                return Ok(Outcome {
                    saw_eoc: false,
                    stream_end: (pos == data.len()).then_some(pos as u64),
                    pending_packet_end: None,
                });
            }
            Err(_) => return Err(inconsistent("expected a tile-part or EOC")),
        };
        match sot.marker {
            EOC => {
                return Ok(Outcome {
                    saw_eoc: true,
                    stream_end: Some(sot.end as u64),
                    pending_packet_end: None,
                });
            }
            SOT => {}
            _ => return Err(inconsistent("expected a tile-part or EOC")),
        }
        let [i0, i1, p0, p1, p2, p3, tpsot, _tnsot] = sot.body else {
            return Err(inconsistent("SOT length is not 10"));
        };
        let isot = u16::from_be_bytes([*i0, *i1]);
        let psot = u32::from_be_bytes([*p0, *p1, *p2, *p3]) as usize;
        let slot_index = usize::from(isot);
        if slot_index >= acc.tiles.len() {
            return Err(inconsistent("tile index beyond the tile count"));
        }

        // Tile-part header.
        let mut cod = None;
        coc.clear();
        plt.clear();
        let mut q = sot.end;
        let sod_end = loop {
            let seg = match read_segment(data, q) {
                Ok(s) => s,
                Err(CodestreamError::Truncated { .. }) => {
                    return Ok(Outcome {
                        saw_eoc: false,
                        stream_end: None,
                        pending_packet_end: None,
                    });
                }
                Err(_) => return Err(inconsistent("bad marker in a tile-part header")),
            };
            match seg.marker {
                SOD => break seg.end,
                COD => cod = Some(parse_cod(&seg).map_err(|_| inconsistent("bad tile COD"))?),
                COC => coc.push(
                    parse_coc(&seg, h.siz.components.len())
                        .map_err(|_| inconsistent("bad tile COC"))?,
                ),
                PLT => plt.push(seg.body.get(1..).unwrap_or_default()),
                POC => {
                    return Err(EstimateReason::Unsupported(
                        "progression order change (POC)",
                    ));
                }
                PPT => return Err(EstimateReason::Unsupported("packed packet headers (PPT)")),
                SOT | SIZ | SOC | EOC => {
                    return Err(inconsistent("unexpected marker in a tile-part header"));
                }
                QCD | QCC | RGN | COM => {}
                _ => {}
            }
            q = seg.end;
        };
        let (tp_end, complete) = if psot == 0 {
            let end = if ends_with_eoc {
                data.len() - 2
            } else {
                data.len()
            };
            (end.max(sod_end), ends_with_eoc)
        } else {
            let end = sot.offset.saturating_add(psot);
            if end < sod_end {
                return Err(inconsistent("tile-part length shorter than its header"));
            }
            (end, end <= data.len())
        };
        let avail_end = tp_end.min(data.len());

        let slot = &mut acc.tiles[slot_index];
        if slot.walk.is_none() {
            if *tpsot != 0 {
                return Err(inconsistent(
                    "first tile-part of a tile has a non-zero index",
                ));
            }
            let style = tile_style(h, cod, &coc);
            acc.eph |= style.cod.eph();
            let walk = TileWalk::new(&h.siz, u32::from(isot), &style, &mut budget)?;
            let min_levels = style.comps.iter().map(|c| c.levels).min().unwrap_or(0);
            let layers = walk.layers();
            slot.walk = Some(Box::new(walk));
            slot.header_end = sod_end;
            acc.min_levels = acc.min_levels.min(min_levels);
            if layers > acc.max_layers {
                acc.max_layers = layers;
                acc.rec.layer_rec.resize(usize::from(layers), 0);
            }
        } else {
            if cod.is_some() || !coc.is_empty() {
                return Err(EstimateReason::Unsupported(
                    "coding style change after the first tile-part",
                ));
            }
            if u16::from(*tpsot) != slot.next_part {
                return Err(inconsistent("tile-parts out of order"));
            }
        }
        slot.next_part = slot.next_part.saturating_add(1);

        // Signalled packet lengths (PLT, else PLM), used to cross-check the walk.
        let joined = plt.concat();
        let plm_part = plm.as_ref().and_then(|p| p.get(tile_part_no));
        let mut plt_at = 0usize;
        let mut plm_index = 0usize;

        let body = &data[..avail_end];
        let mut p = sod_end;
        let Some(walk) = acc.tiles[slot_index].walk.as_mut() else {
            return Err(inconsistent("tile state missing"));
        };
        while p < avail_end {
            match walk.walk_next(body, p, complete, &mut budget) {
                Ok(Some(packet)) => {
                    let len = (packet.end - p) as u64;
                    let expected = if !joined.is_empty() {
                        Some(read_packet_length(&joined, &mut plt_at))
                    } else {
                        plm_part.map(|lens| {
                            plm_index += 1;
                            lens.get(plm_index - 1).copied()
                        })
                    };
                    if expected.is_some_and(|e| e != Some(len)) {
                        return Err(inconsistent(
                            "PLT/PLM packet lengths disagree with the packet headers",
                        ));
                    }
                    p = packet.end;
                    acc.rec.record(&packet);
                }
                Ok(None) => break,
                Err(WalkError::NeedMore) => {
                    return Ok(Outcome {
                        saw_eoc: false,
                        stream_end: None,
                        pending_packet_end: None,
                    });
                }
                Err(WalkError::NeedBody(end)) => {
                    return Ok(Outcome {
                        saw_eoc: false,
                        stream_end: None,
                        pending_packet_end: Some(end as u64),
                    });
                }
                Err(WalkError::Give(r)) => return Err(r),
            }
        }
        if !complete {
            return Ok(Outcome {
                saw_eoc: false,
                stream_end: None,
                pending_packet_end: None,
            });
        }
        if psot == 0 {
            return Ok(Outcome {
                saw_eoc: ends_with_eoc,
                stream_end: Some(data.len() as u64),
                pending_packet_end: None,
            });
        }
        pos = tp_end;
        tile_part_no += 1;
    }
}
