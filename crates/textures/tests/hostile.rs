//! Hostile and odd codestreams: typed errors before any decoding, never a panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::testdata;
use opensim_textures::{
    Codestream, CodestreamError, DecodeError, EstimateReason, Exactness, Limits, decode_rgba8,
};
use proptest::prelude::*;

/// Builds a main header: SOC, SIZ, COD, QCD, then one SOT/SOD with a few zero bytes.
struct Hdr {
    size: (u32, u32),
    offset: (u32, u32),
    tile: (u32, u32),
    comps: u16,
    levels: u8,
    layers: u16,
    progression: u8,
}

impl Default for Hdr {
    fn default() -> Self {
        Hdr {
            size: (64, 64),
            offset: (0, 0),
            tile: (64, 64),
            comps: 3,
            levels: 5,
            layers: 1,
            progression: 0,
        }
    }
}

impl Hdr {
    fn bytes(&self) -> Vec<u8> {
        let mut v = vec![0xFF, 0x4F, 0xFF, 0x51];
        v.extend_from_slice(&(38 + 3 * self.comps).to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        for x in [
            self.size.0,
            self.size.1,
            self.offset.0,
            self.offset.1,
            self.tile.0,
            self.tile.1,
            0,
            0,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&self.comps.to_be_bytes());
        for _ in 0..self.comps {
            v.extend_from_slice(&[7, 1, 1]);
        }
        v.extend_from_slice(&[0xFF, 0x52, 0, 12, 0, self.progression]);
        v.extend_from_slice(&self.layers.to_be_bytes());
        v.extend_from_slice(&[0, self.levels, 4, 4, 0, 1]);
        // No quantization: one exponent byte per sub-band.
        let bands = 3 * u16::from(self.levels.min(32)) + 1;
        v.extend_from_slice(&[0xFF, 0x5C]);
        v.extend_from_slice(&(3 + bands).to_be_bytes());
        v.push(0x40);
        v.extend(std::iter::repeat_n(0x48, usize::from(bands)));
        // One empty packet (a single zero byte) per resolution and component.
        let packets = u32::from(self.comps) * (u32::from(self.levels.min(32)) + 1);
        v.extend_from_slice(&[0xFF, 0x90, 0, 10, 0, 0]);
        v.extend_from_slice(&(14 + packets).to_be_bytes());
        v.extend_from_slice(&[0, 1, 0xFF, 0x93]);
        v.extend(std::iter::repeat_n(0u8, packets as usize));
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }
}

fn parse(bytes: &[u8]) -> Result<(), CodestreamError> {
    Codestream::parse(bytes, &Limits::default()).map(|_| ())
}

fn refused_before_decoding(bytes: &[u8]) {
    match decode_rgba8(bytes, 0) {
        Err(DecodeError::Codestream(_)) => {}
        other => panic!("expected a codestream error, got {other:?}"),
    }
}

#[test]
fn a_sane_crafted_header_parses_and_decodes() {
    let bytes = Hdr::default().bytes();
    let cs = Codestream::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(cs.header().siz.width(), 64);
    let budget = cs.budget();
    assert_eq!(budget.estimate, None);
    // All packets are empty: OpenJPEG decodes a flat grey image.
    let img = decode_rgba8(&bytes, 2).unwrap();
    assert_eq!((img.width, img.height), (16, 16));
    assert!(img.pixels.chunks(4).all(|p| p == [128, 128, 128, 255]));
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    for size in [
        (100_000, 64),
        (64, 16_385),
        (16_384, 16_384),
        (u32::MAX, u32::MAX),
    ] {
        let bytes = Hdr {
            size,
            tile: size,
            ..Hdr::default()
        }
        .bytes();
        assert!(
            matches!(parse(&bytes), Err(CodestreamError::LimitExceeded { .. })),
            "{size:?}"
        );
        refused_before_decoding(&bytes);
    }
    // A huge reference grid with a small image area inside is fine.
    let bytes = Hdr {
        size: (u32::MAX, u32::MAX),
        offset: (u32::MAX - 64, u32::MAX - 64),
        tile: (64, 64),
        ..Hdr::default()
    }
    .bytes();
    assert!(
        matches!(parse(&bytes), Err(CodestreamError::Malformed { .. })),
        "tile grid origin"
    );
}

#[test]
fn empty_images_and_tiles_are_malformed() {
    for hdr in [
        Hdr {
            size: (0, 64),
            ..Hdr::default()
        },
        Hdr {
            size: (64, 64),
            offset: (64, 0),
            ..Hdr::default()
        },
        Hdr {
            tile: (0, 64),
            ..Hdr::default()
        },
        Hdr {
            comps: 0,
            ..Hdr::default()
        },
        Hdr {
            layers: 0,
            ..Hdr::default()
        },
        Hdr {
            levels: 33,
            ..Hdr::default()
        },
        Hdr {
            progression: 5,
            ..Hdr::default()
        },
    ] {
        let bytes = hdr.bytes();
        assert!(matches!(
            parse(&bytes),
            Err(CodestreamError::Malformed { .. })
        ));
        refused_before_decoding(&bytes);
    }
}

#[test]
fn component_and_tile_counts_are_limited() {
    let bytes = Hdr {
        comps: 5,
        ..Hdr::default()
    }
    .bytes();
    assert!(matches!(
        parse(&bytes),
        Err(CodestreamError::LimitExceeded {
            what: "component count",
            value: 5,
            limit: 4
        })
    ));
    let roomy = Limits {
        max_components: 16,
        ..Limits::default()
    };
    assert!(Codestream::parse(&bytes, &roomy).is_ok());
    // 4096 x 4096 one-pixel tiles: 16M tiles.
    let bytes = Hdr {
        size: (4096, 4096),
        tile: (1, 1),
        ..Hdr::default()
    }
    .bytes();
    assert!(matches!(
        parse(&bytes),
        Err(CodestreamError::LimitExceeded {
            what: "tile count",
            ..
        })
    ));
}

#[test]
fn marker_lengths_past_the_end_or_too_small() {
    let good = Hdr::default().bytes();
    let cod = good.windows(2).position(|w| w == [0xFF, 0x52]).unwrap();
    let mut long = good.clone();
    long[cod + 2..cod + 4].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert!(matches!(
        parse(&long),
        Err(CodestreamError::Truncated { .. })
    ));
    refused_before_decoding(&long);
    let mut tiny = good.clone();
    tiny[cod + 2..cod + 4].copy_from_slice(&1u16.to_be_bytes());
    assert!(matches!(
        parse(&tiny),
        Err(CodestreamError::Malformed { .. })
    ));
    // SIZ length that disagrees with its component count.
    let mut siz = good.clone();
    siz[5] += 3;
    assert!(parse(&siz).is_err());
    // Every truncation of the main header is a typed error.
    let header_len = Codestream::parse(&good, &Limits::default())
        .unwrap()
        .header()
        .header_len;
    for n in 0..header_len + 2 {
        assert!(parse(&good[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn other_refusals() {
    let good = Hdr::default().bytes();
    assert!(matches!(
        parse(&good[1..]),
        Err(CodestreamError::Malformed { .. })
    ));
    let mut jp2 = vec![0, 0, 0, 12];
    jp2.extend_from_slice(b"jP  \r\n\x87\n");
    jp2.extend_from_slice(&good);
    assert!(matches!(parse(&jp2), Err(CodestreamError::Unsupported(_))));
    // No COD.
    let cod = good.windows(2).position(|w| w == [0xFF, 0x52]).unwrap();
    let mut no_cod = good[..cod].to_vec();
    no_cod.extend_from_slice(&good[cod + 14..]);
    assert!(matches!(
        parse(&no_cod),
        Err(CodestreamError::Malformed { .. })
    ));
}

#[test]
fn decode_argument_and_prefix_errors() {
    let Some((_, data)) = testdata().into_iter().find(|(n, _)| n.contains("plywood")) else {
        return;
    };
    assert!(matches!(
        decode_rgba8(&data, 6),
        Err(DecodeError::DiscardOutOfRange {
            requested: 6,
            max: 5
        })
    ));
    let header_len = Codestream::parse(&data, &Limits::default())
        .unwrap()
        .header()
        .header_len;
    assert!(matches!(
        decode_rgba8(&data[..header_len + 5], 5),
        Err(DecodeError::NoTileData)
    ));
    // The first UDP packet (600 bytes) already gives a picture.
    let first = decode_rgba8(&data[..600], 5).unwrap();
    assert_eq!((first.width, first.height), (16, 16));
}

#[test]
fn walk_limits_fall_back_to_estimates() {
    for (name, data) in testdata() {
        let few = Limits {
            max_code_blocks: 10,
            ..Limits::default()
        };
        let b = Codestream::parse(&data, &few).unwrap().budget();
        assert_eq!(
            b.estimate,
            Some(EstimateReason::LimitExceeded(
                "precinct and code-block count"
            )),
            "{name}"
        );
        assert!(b.levels.iter().all(
            |l| l.bytes == data.len() as u64 && matches!(l.exactness, Exactness::Estimated(_))
        ));
        let lazy = Limits {
            max_work: 5,
            ..Limits::default()
        };
        let b = Codestream::parse(&data, &lazy).unwrap().budget();
        assert_eq!(
            b.estimate,
            Some(EstimateReason::LimitExceeded("packet header work")),
            "{name}"
        );
    }
}

fn real_files() -> Vec<Vec<u8>> {
    testdata().into_iter().map(|(_, d)| d).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut data = vec![0xFF, 0x4F, 0xFF, 0x51];
        data.extend_from_slice(&bytes);
        if let Ok(cs) = Codestream::parse(&data, &Limits::default()) {
            let b = cs.budget();
            prop_assert!(b.levels.iter().all(|l| l.bytes <= data.len() as u64));
        }
    }

    #[test]
    fn mutated_real_files_never_panic(
        file in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let files = real_files();
        if files.is_empty() {
            return Ok(());
        }
        let mut data = files[file % files.len()].clone();
        for (at, x) in flips {
            let i = at.index(data.len());
            data[i] ^= x;
        }
        let data = &data[..cut.index(data.len()) + 1];
        if let Ok(cs) = Codestream::parse(data, &Limits::default()) {
            let b = cs.budget();
            for l in &b.levels {
                prop_assert!(l.bytes <= data.len() as u64);
            }
        }
    }
}

proptest! {
    // OpenJPEG itself on damaged data: fewer cases, it is slower.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn decoding_damaged_files_returns_errors_or_images(
        file in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        discard in 0u8..6,
    ) {
        let files = real_files();
        if files.is_empty() {
            return Ok(());
        }
        let mut data = files[file % files.len()].clone();
        for (at, x) in flips {
            let i = at.index(data.len());
            data[i] ^= x;
        }
        if let Ok(img) = decode_rgba8(&data, discard) {
            prop_assert_eq!(img.pixels.len(), img.width as usize * img.height as usize * 4);
        }
    }
}
