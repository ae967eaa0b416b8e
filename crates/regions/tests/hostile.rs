//! Hostile `LayerData`: every defect is a typed error, never a panic or a hang.

#![allow(clippy::unwrap_used)]

use opensim_regions::terrain::{
    self, END_OF_PATCHES, Heightmap, LayerEncoder, LayerType, MalformedError, PATCH_AREA,
    PeerError, RegionSize, TerrainError, bits::BitWriter,
};
use proptest::prelude::*;

/// Decodes everything, returning the patch count or the first error.
fn run(layer_type: u8, data: &[u8], region: RegionSize) -> Result<usize, TerrainError> {
    let mut n = 0;
    for p in terrain::decode_layer(layer_type, data, region)? {
        let p = p?;
        assert!(p.heights.iter().all(|h| h.is_finite()));
        assert!(region.contains_patch(p.x, p.y));
        n += 1;
    }
    Ok(n)
}

fn valid_payload() -> Vec<u8> {
    let mut enc = LayerEncoder::new(LayerType::Land);
    for k in 0..6u32 {
        let h: [f32; PATCH_AREA] =
            std::array::from_fn(|i| (i as f32 * 0.37 + k as f32).sin() * 9.0 + 30.0);
        enc.push_patch(k, 15 - k, &h).unwrap();
    }
    enc.push_patch(9, 9, &[4.0; PATCH_AREA]).unwrap();
    let mut payloads = enc.finish();
    assert_eq!(payloads.len(), 1);
    payloads.pop().unwrap()
}

/// A group header then one hand-made patch header; the caller appends coefficients.
fn crafted(layer: u8, quant_wbits: u8, dc_offset: f32, range: u16, ids: u32) -> BitWriter {
    let mut w = BitWriter::new();
    w.write_bits(264, 16);
    w.write_bits(16, 8);
    w.write_bits(u32::from(layer), 8);
    w.write_bits(u32::from(quant_wbits), 8);
    w.write_f32(dc_offset);
    w.write_bits(u32::from(range), 16);
    w.write_bits(ids, LayerType::from_code(layer).unwrap().patch_id_bits());
    w
}

#[test]
fn every_truncation_is_out_of_bits() {
    let data = valid_payload();
    assert_eq!(run(b'L', &data, RegionSize::LEGACY).unwrap(), 7);
    for len in 0..data.len() {
        match run(b'L', &data[..len], RegionSize::LEGACY) {
            Err(TerrainError::Malformed(MalformedError::OutOfBits { .. })) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut data = valid_payload();
    data.push(0);
    assert_eq!(
        run(b'L', &data, RegionSize::LEGACY),
        Err(MalformedError::TrailingBytes { extra_bytes: 1 }.into())
    );
}

#[test]
fn group_header_defects() {
    let data = valid_payload();
    assert_eq!(
        run(b'Q', &data, RegionSize::LEGACY),
        Err(PeerError::UnknownLayerType(b'Q').into())
    );
    assert_eq!(
        run(b'M', &data, RegionSize::LEGACY),
        Err(PeerError::LayerTypeMismatch {
            layer_id: b'M',
            group_header: b'L'
        }
        .into())
    );
    let mut large = data.clone();
    large[2] = 32;
    assert_eq!(
        run(b'L', &large, RegionSize::LEGACY),
        Err(PeerError::UnsupportedPatchSize(32).into())
    );
    assert!(matches!(
        run(b'L', &data[..3], RegionSize::LEGACY),
        Err(TerrainError::Malformed(MalformedError::OutOfBits { .. }))
    ));
}

#[test]
fn patch_ids_outside_the_declared_region() {
    // x = 16 in a 10-bit id: legal bits, but a legacy region has patches 0..16 only.
    let mut w = crafted(b'L', 0x88, 1.0, 2, 16 << 5);
    w.write_bits(0b10, 2);
    w.write_bits(u32::from(END_OF_PATCHES), 8);
    let data = w.into_bytes();
    assert_eq!(
        run(b'L', &data, RegionSize::LEGACY),
        Err(PeerError::PatchOutOfRange {
            x: 16,
            y: 0,
            patches_x: 16,
            patches_y: 16
        }
        .into())
    );
    assert_eq!(run(b'L', &data, RegionSize::new(512, 256).unwrap()), Ok(1));

    // Extended ids: x in the high half, y in the low half.
    for (x, y, ok) in [
        (63, 63, true),
        (64, 0, false),
        (0, 64, false),
        (0xFFFF, 0xFFFF, false),
    ] {
        let mut w = crafted(b'M', 0x88, 1.0, 2, (x << 16) | y);
        w.write_bits(0b10, 2);
        w.write_bits(u32::from(END_OF_PATCHES), 8);
        let got = run(b'M', &w.into_bytes(), RegionSize::new(1024, 1024).unwrap());
        assert_eq!(got.is_ok(), ok, "({x}, {y}): {got:?}");
    }
}

#[test]
fn largest_word_bits_decode_without_overflow() {
    // quant_wbits 0xFF: word_bits 17 and prequant 17, every coefficient at its largest.
    let mut w = crafted(b'L', 0xFF, -1000.0, u16::MAX, 0);
    for n in 0..PATCH_AREA {
        w.write_bits(if n % 2 == 0 { 0b110 } else { 0b111 }, 3);
        w.write_bits((1 << 17) - 1, 17);
    }
    w.write_bits(u32::from(END_OF_PATCHES), 8);
    let data = w.into_bytes();
    let p = terrain::decode_layer(b'L', &data, RegionSize::LEGACY)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!((p.word_bits(), p.prequant()), (17, 17));
    assert!(p.heights.iter().all(|h| h.is_finite()));
    assert_eq!(run(b'L', &data, RegionSize::LEGACY), Ok(1));
}

#[test]
fn non_finite_offsets_are_refused() {
    for dc in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = crafted(b'L', 0x88, dc, 4, 3);
        w.write_bits(0b10, 2);
        w.write_bits(u32::from(END_OF_PATCHES), 8);
        let got = run(b'L', &w.into_bytes(), RegionSize::LEGACY);
        assert!(
            matches!(
                got,
                Err(TerrainError::Peer(PeerError::NonFiniteOffset {
                    x: 0,
                    y: 3,
                    ..
                }))
            ),
            "{got:?}"
        );
    }
    // The most extreme finite header cannot push a height to infinity (run() checks).
    for (q, dc) in [(0x0F, f32::MAX), (0x0F, -f32::MAX), (0xFF, f32::MAX)] {
        let mut w = crafted(b'L', q, dc, u16::MAX, 3);
        for n in 0..PATCH_AREA {
            w.write_bits(
                if (n + usize::from(dc < 0.0)) % 2 == 0 {
                    0b110
                } else {
                    0b111
                },
                3,
            );
            w.write_bits((1 << 17) - 1, 17);
        }
        w.write_bits(u32::from(END_OF_PATCHES), 8);
        assert_eq!(run(b'L', &w.into_bytes(), RegionSize::LEGACY), Ok(1));
    }
}

#[test]
fn a_bad_patch_keeps_the_good_ones_before_it() {
    let good = valid_payload();
    // A flat patch at (2, 3), then one at x = 20.
    let mut w = crafted(b'L', 0x00, 9.5, 1, (2 << 5) | 3);
    w.write_bits(0b10, 2);
    w.write_bits(0, 8);
    w.write_f32(1.0);
    w.write_bits(1, 16);
    w.write_bits(20 << 5, 10);
    w.write_bits(0b10, 2);
    w.write_bits(u32::from(END_OF_PATCHES), 8);
    let data = w.into_bytes();
    let mut map = Heightmap::new(RegionSize::LEGACY);
    let err = map.apply_layer_data(b'L', &data).unwrap_err();
    assert!(matches!(
        err,
        TerrainError::Peer(PeerError::PatchOutOfRange { x: 20, .. })
    ));
    assert_eq!(map.patches_received(), 1);
    assert_eq!(map.get(32, 48), Some(10.0));
    assert_eq!(map.apply_layer_data(b'L', &good).unwrap(), 7);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes_never_panic(
        layer in prop::sample::select(vec![b'L', b'M', b'W', b'X', b'7', b'9', b'8', b':', 0, 0xFF]),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        sized_header in any::<bool>(),
    ) {
        let mut data = body;
        if sized_header && data.len() >= 4 {
            // Make the group header valid so the patch parser is exercised.
            data[..4].copy_from_slice(&[0x08, 0x01, 0x10, layer]);
        }
        let _ = run(layer, &data, RegionSize::LEGACY);
        let _ = run(layer, &data, RegionSize::MAX);
        let mut map = Heightmap::new(RegionSize::LEGACY);
        let _ = map.apply_layer_data(layer, &data);
    }

    #[test]
    fn mutated_payloads_never_panic(flips in prop::collection::vec(0usize..10_000, 1..8)) {
        let mut data = valid_payload();
        let bits = data.len() * 8;
        for pos in flips {
            let p = pos % bits;
            data[p / 8] ^= 1 << (p % 8);
        }
        let _ = run(b'L', &data, RegionSize::LEGACY);
    }
}
