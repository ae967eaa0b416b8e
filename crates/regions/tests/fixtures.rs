//! Real `LayerData` captures: they must decode, and the 0.9.2.2 session must reproduce the
//! server's own heightmap within the coding error.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use opensim_messages::Message;
use opensim_packet::Packet;
use opensim_regions::terrain::{
    self, Heightmap, LayerEncoder, LayerType, MisuseError, PATCH_AREA, Patch, PeerError,
    RegionSize, TerrainError,
};

/// `(LayerID.Type, Data)` of every `.bin` datagram in `dir` whose name contains `filter`.
fn payloads(dir: &Path, filter: &str) -> Vec<(u8, Vec<u8>)> {
    opensim_testkit::files_with_extension(dir, "bin")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(filter))
        .map(|p| layer_data(&std::fs::read(p).unwrap()))
        .collect()
}

/// `(LayerID.Type, Data)` of a raw `LayerData` datagram.
fn layer_data(datagram: &[u8]) -> (u8, Vec<u8>) {
    match Packet::decode(datagram).unwrap().message {
        Message::LayerData(m) => (m.layer_id.type_, m.layer_data.data.to_vec()),
        other => panic!("not a LayerData message: {other:?}"),
    }
}

fn decode_all(layer_type: u8, data: &[u8], region: RegionSize) -> Vec<Patch> {
    terrain::decode_layer(layer_type, data, region)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn captured_land_layers_cover_a_legacy_region() {
    let Some(dir) = opensim_testkit::fixture_subdir("captured/layer_land") else {
        return;
    };
    let packets = payloads(&dir, "");
    assert_eq!(packets.len(), 14);
    let mut map = Heightmap::new(RegionSize::LEGACY);
    let mut decoded = 0;
    for (layer_type, data) in &packets {
        assert_eq!(*layer_type, terrain::LAYER_LAND);
        let patches = decode_all(*layer_type, data, RegionSize::LEGACY);
        assert!(!patches.is_empty());
        for p in &patches {
            assert!(
                p.heights
                    .iter()
                    .all(|h| h.is_finite() && (-100.0..1000.0).contains(h))
            );
            map.apply(p).unwrap();
        }
        decoded += patches.len();
        assert_eq!(
            map.apply_layer_data(*layer_type, data).unwrap(),
            patches.len()
        );
    }
    // Two of the fourteen datagrams are resends (flag 0x20) of earlier ones, so 292 patches
    // decode and together they cover each of the 16 x 16 patches exactly once.
    assert_eq!(decoded, 292);
    assert_eq!(map.patches_received(), 256);
    assert!(map.is_complete());
}

#[test]
fn captured_varland_layers_come_from_a_1024_m_region() {
    let Some(dir) = opensim_testkit::fixture_subdir("captured/layer_varland") else {
        return;
    };
    let packets = payloads(&dir, "");
    assert_eq!(packets.len(), 35);
    let mut ids = BTreeSet::new();
    let mut decoded = 0;
    for (layer_type, data) in &packets {
        assert_eq!(*layer_type, terrain::LAYER_LAND_EXTENDED);
        // Decode against the largest region first, to learn the extent from the ids alone.
        for p in decode_all(*layer_type, data, RegionSize::MAX) {
            ids.insert((p.x, p.y));
            decoded += 1;
        }
    }
    let max_x = ids.iter().map(|&(x, _)| x).max().unwrap();
    let max_y = ids.iter().map(|&(_, y)| y).max().unwrap();
    // x reaches patch 63: the region is 64 patches = 1024 m wide. y reaches 62 in these 35
    // datagrams (the capture stops before the last row); OpenSimulator var-regions are square
    // multiples of 256 m, so the region is 1024 x 1024 m.
    assert_eq!(max_x, 63);
    assert_eq!(max_y, 62);
    println!("varland: {decoded} patches, {} distinct", ids.len());
    // Every patch arrives once (no resends in this capture).
    assert_eq!(decoded, 1914);
    assert_eq!(ids.len(), 1914);

    let region = RegionSize::new(1024, 1024).unwrap();
    let mut map = Heightmap::new(region);
    for (layer_type, data) in &packets {
        map.apply_layer_data(*layer_type, data).unwrap();
    }
    assert_eq!(map.patches_received(), ids.len());
    assert!(!map.is_complete());

    // Declared as a legacy region, any payload reaching past patch 15 is a peer breaking the
    // rules, reported at the first offending patch.
    let mut refused = 0;
    for (layer_type, data) in &packets {
        let inside = decode_all(*layer_type, data, RegionSize::MAX)
            .iter()
            .take_while(|p| p.x < 16 && p.y < 16)
            .count();
        let mut legacy = terrain::decode_layer(*layer_type, data, RegionSize::LEGACY).unwrap();
        for _ in 0..inside {
            legacy.next().unwrap().unwrap();
        }
        match legacy.next() {
            None => {}
            Some(Err(TerrainError::Peer(PeerError::PatchOutOfRange {
                patches_x: 16,
                patches_y: 16,
                ..
            }))) => refused += 1,
            other => panic!("expected PatchOutOfRange, got {other:?}"),
        }
        assert!(legacy.next().is_none(), "the decoder stops after an error");
    }
    assert_eq!(refused, 30);
}

struct Session {
    truth: Heightmap,
    /// The server's land payloads in wire order.
    land: Vec<Vec<u8>>,
    /// The server's wind payloads.
    wind: Vec<Vec<u8>>,
}

fn session() -> Option<Session> {
    let dir = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session")?;
    let r32 = std::fs::read(dir.join("terrain_truth.r32")).unwrap();
    let truth = Heightmap::from_r32_bytes(RegionSize::LEGACY, &r32).unwrap();
    let (mut land, mut wind) = (Vec::new(), Vec::new());
    for (layer_type, data) in payloads(&dir, "_LayerData") {
        match layer_type {
            terrain::LAYER_LAND => land.push(data),
            terrain::LAYER_WIND => wind.push(data),
            other => panic!("unexpected layer 0x{other:02X}"),
        }
    }
    Some(Session { truth, land, wind })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Per-patch bound, in prequantisation steps (`range / 2^prequant`, 2^-10 of the patch's
/// range for land): MEASURED 45.48 steps over the 256 patches of this session (the worst is
/// patch (10, 6), range 6 m, 0.216 m).
///
/// Why the error is a number of steps: the encoder maps the patch onto +-512 steps, takes the
/// DCT and truncates every coefficient toward zero after dividing by `1 + 2(i + j)` (1..31).
/// Each coefficient therefore loses less than `1 + 2(i + j)` steps, fully for the small
/// high-frequency ones; the inverse DCT spreads these losses with weights 1/16..1/8. Summed
/// with equal signs they could reach ~960 steps, but they are independent and mostly cancel;
/// on this gently sloped terrain the worst sample is 45 steps off.
const SESSION_STEPS_BOUND: f32 = 48.0;
/// The same in metres: MEASURED 0.2159 m for the session's 0..25 m terrain.
const SESSION_METRES_BOUND: f32 = 0.22;

#[test]
fn session_terrain_matches_the_servers_heightmap() {
    let Some(s) = session() else { return };
    assert_eq!(s.land.len(), 11);
    let mut map = Heightmap::new(RegionSize::LEGACY);
    let mut order = Vec::new();
    let (mut worst_steps, mut flat) = (0f32, 0);
    for data in &s.land {
        for p in decode_all(terrain::LAYER_LAND, data, RegionSize::LEGACY) {
            let truth = s.truth.patch_heights(p.x, p.y).unwrap();
            let err = max_abs_diff(&p.heights, &truth);
            if p.quant_wbits == 0 {
                // The flat shortcut reproduces `min` exactly.
                flat += 1;
                let min = truth.iter().copied().fold(f32::MAX, f32::min);
                assert!(p.heights.iter().all(|&h| h == min));
            } else {
                assert!(
                    err <= SESSION_STEPS_BOUND * p.step(),
                    "patch ({}, {}): {err} m = {} steps",
                    p.x,
                    p.y,
                    err / p.step()
                );
                worst_steps = worst_steps.max(err / p.step());
            }
            order.push((p.x, p.y));
            map.apply(&p).unwrap();
        }
    }
    assert_eq!(flat, 108);
    assert!(map.is_complete());
    let err = max_abs_diff(map.as_slice(), s.truth.as_slice());
    println!("session: max error {err} m, {worst_steps} steps");
    assert!(err <= SESSION_METRES_BOUND, "max error {err} m");
    assert!(err > 0.0, "lossy coding cannot be exact everywhere");

    // 0.9.2.2 sends the patches nearest first to the agent's patch. AgentMovementComplete of
    // this session places the agent at (127.999, 127.999), i.e. in patch (7, 7).
    let dist = |&(x, y): &(u32, u32)| (i64::from(x) - 7).pow(2) + (i64::from(y) - 7).pow(2);
    assert_eq!(order[0], (7, 7));
    assert!(order.windows(2).all(|w| dist(&w[0]) <= dist(&w[1])));
    let mut expected = terrain::patches_by_distance(RegionSize::LEGACY, 7, 7);
    let mut got = order.clone();
    expected.sort_by_key(|p| (dist(p), *p));
    got.sort_by_key(|p| (dist(p), *p));
    assert_eq!(got, expected);
}

#[test]
fn session_wind_decodes_as_two_patches() {
    let Some(s) = session() else { return };
    assert_eq!(s.wind.len(), 2);
    for data in &s.wind {
        let patches = decode_all(terrain::LAYER_WIND, data, RegionSize::LEGACY);
        assert_eq!(patches.len(), 2, "east and north components");
        for p in &patches {
            assert_eq!((p.x, p.y), (0, 0));
            assert_eq!(p.prequant(), 10);
            assert!(p.heights.iter().all(|v| v.abs() < 100.0), "wind in m/s");
        }
        // Our wind encoder writes the same shape; re-encoding the decoded grids and decoding
        // again changes them by no more than the coding error.
        let again = terrain::encode_wind(&patches[0].heights, &patches[1].heights).unwrap();
        let re = decode_all(terrain::LAYER_WIND, &again, RegionSize::LEGACY);
        for (a, b) in patches.iter().zip(&re) {
            assert!(max_abs_diff(&a.heights, &b.heights) <= 128.0 * b.step());
        }
    }
}

/// Whether the patch's south-west sample is strictly below all its others.
fn corner_is_strict_min(h: &[f32; PATCH_AREA]) -> bool {
    h[1..].iter().all(|&v| v > h[0])
}

#[test]
fn our_encoder_reproduces_the_servers_bits() {
    let Some(s) = session() else { return };
    let theirs: Vec<Vec<Patch>> = s
        .land
        .iter()
        .map(|d| decode_all(terrain::LAYER_LAND, d, RegionSize::LEGACY))
        .collect();
    let order: Vec<(u32, u32)> = theirs.iter().flatten().map(|p| (p.x, p.y)).collect();

    let mut identical = 0;
    let mut first_quirky_payload_end = 0;
    for (k, payload) in theirs.iter().enumerate() {
        for p in payload {
            let heights = s.truth.patch_heights(p.x, p.y).unwrap();
            let mut enc = LayerEncoder::new(LayerType::Land);
            enc.push_patch(p.x, p.y, &heights).unwrap();
            let ours = decode_all(terrain::LAYER_LAND, &enc.finish()[0], RegionSize::LEGACY);
            if corner_is_strict_min(&heights) {
                // OpenSimulator 0.9.2.2 misses the south-west sample when it looks for the
                // minimum, so its dc_offset is the second lowest sample; we use the true one.
                assert!(p.dc_offset > ours[0].dc_offset, "patch ({}, {})", p.x, p.y);
                first_quirky_payload_end = k + 1;
            } else {
                assert_eq!(ours[0], *p, "patch ({}, {}) differs", p.x, p.y);
                identical += 1;
            }
        }
    }
    assert_eq!(identical, 232);
    assert_eq!(first_quirky_payload_end, 5);

    // From the first payload with no quirky patch on, encoding the same patches in the same
    // order gives the server's payloads byte for byte: same bits and the same cut points.
    let skip: usize = theirs[..5].iter().map(Vec::len).sum();
    let region = s.truth.clone();
    let ours = region.encode_land(order[skip..].iter().copied()).unwrap();
    assert_eq!(ours.len(), s.land.len() - 5);
    for (k, (a, b)) in ours.iter().zip(&s.land[5..]).enumerate() {
        assert_eq!(a, b, "payload {} differs", k + 5);
    }
}

#[test]
fn r32_round_trips_the_truth_file() {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session") else {
        return;
    };
    let bytes = std::fs::read(dir.join("terrain_truth.r32")).unwrap();
    let map = Heightmap::from_r32_bytes(RegionSize::LEGACY, &bytes).unwrap();
    assert_eq!(map.to_r32_bytes(), bytes);
    assert!(map.is_complete());
    let (lo, hi) = map
        .as_slice()
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &h| (a.min(h), b.max(h)));
    assert_eq!((lo, hi), (0.0, 25.0));
    assert!(matches!(
        Heightmap::from_r32_bytes(RegionSize::new(512, 256).unwrap(), &bytes),
        Err(TerrainError::Malformed(_))
    ));
    assert!(matches!(
        map.clone().apply_layer_data(terrain::LAYER_WIND, &[]),
        Err(TerrainError::Misuse(MisuseError::WrongLayerType(b'7')))
    ));
}
