//! Terrain codec speed: whole regions decoded and encoded.
//!
//! `cargo bench -p opensim-regions --bench terrain`

#![allow(clippy::unwrap_used, missing_docs)]

use std::f32::consts::TAU;
use std::hint::black_box;
use std::sync::LazyLock;

use divan::Bencher;
use opensim_messages::Message;
use opensim_packet::Packet;
use opensim_regions::terrain::{self, Heightmap, LayerType, Patch, RegionSize};

fn main() {
    divan::main();
}

/// Rolling hills: a few octaves of sine waves, 0..~60 m, with a flat sea floor.
fn synthetic(side: u32) -> Heightmap {
    let region = RegionSize::new(side, side).unwrap();
    Heightmap::from_fn(region, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let mut h = 20.0;
        for (k, amp) in [(1.0f32, 18.0f32), (2.3, 7.0), (5.1, 2.5), (11.7, 0.6)] {
            h += amp * (TAU * k * x / 512.0 + k).sin() * (TAU * k * y / 448.0 - k).cos();
        }
        h.max(0.0)
    })
}

struct Case {
    layer: u8,
    region: RegionSize,
    payloads: Vec<Vec<u8>>,
    map: Heightmap,
}

fn case(side: u32) -> Case {
    let map = synthetic(side);
    let region = map.region();
    let payloads = map
        .encode_land(terrain::patches_by_distance(region, 8, 8))
        .unwrap();
    Case {
        layer: LayerType::land_for(region).code(),
        region,
        payloads,
        map,
    }
}

static R256: LazyLock<Case> = LazyLock::new(|| case(256));
static R1024: LazyLock<Case> = LazyLock::new(|| case(1024));
static SESSION: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session") else {
        return Vec::new();
    };
    opensim_testkit::files_with_extension(&dir, "bin")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("_LayerData"))
        .map(
            |p| match Packet::decode(&std::fs::read(p).unwrap()).unwrap().message {
                Message::LayerData(m) => (m.layer_id.type_, m.layer_data.data.to_vec()),
                other => panic!("not a LayerData message: {other:?}"),
            },
        )
        .filter(|(t, _)| *t == terrain::LAYER_LAND)
        .map(|(_, d)| d)
        .collect()
});

fn decode_patches(layer: u8, region: RegionSize, payloads: &[Vec<u8>]) -> usize {
    let mut patch = Patch {
        x: 0,
        y: 0,
        quant_wbits: 0,
        dc_offset: 0.0,
        range: 0,
        heights: [0.0; 256],
    };
    let mut n = 0;
    for data in payloads {
        let mut dec = terrain::decode_layer(layer, data, region).unwrap();
        while dec.next_into(&mut patch).unwrap() {
            black_box(&patch);
            n += 1;
        }
    }
    n
}

#[divan::bench(args = [256, 1024])]
fn decode_region(bencher: Bencher, side: u32) {
    let c = if side == 256 { &*R256 } else { &*R1024 };
    bencher
        .counter(divan::counter::ItemsCount::new(c.region.patch_count()))
        .bench(|| decode_patches(c.layer, c.region, black_box(&c.payloads)));
}

#[divan::bench(args = [256, 1024])]
fn decode_into_heightmap(bencher: Bencher, side: u32) {
    let c = if side == 256 { &*R256 } else { &*R1024 };
    let mut map = Heightmap::new(c.region);
    bencher.bench_local(|| {
        for data in black_box(&c.payloads) {
            map.apply_layer_data(c.layer, data).unwrap();
        }
    });
}

#[divan::bench]
fn decode_session_fixture(bencher: Bencher) {
    let payloads = &*SESSION;
    if payloads.is_empty() {
        return;
    }
    bencher.bench(|| decode_patches(terrain::LAYER_LAND, RegionSize::LEGACY, black_box(payloads)));
}

#[divan::bench(args = [256, 1024])]
fn encode_region(bencher: Bencher, side: u32) {
    let c = if side == 256 { &*R256 } else { &*R1024 };
    let order = terrain::patches_by_distance(c.region, 8, 8);
    bencher
        .counter(divan::counter::ItemsCount::new(c.region.patch_count()))
        .bench(|| c.map.encode_land(black_box(order.iter().copied())).unwrap());
}
