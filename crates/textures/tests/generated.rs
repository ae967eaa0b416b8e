//! The byte-budget property on codestreams made by `opj_compress` with every progression order,
//! precincts, tiles and tile-parts, SOP/EPH, PLT/TLM, code-block modes and grid offsets.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{check_prefix, decode_at, testdata, tool, write_pgm, write_ppm, write_raw_planar};
use opensim_textures::{Codestream, Exactness, Limits};

/// Source images written from the OpenSim test textures: RGB 256x256, RGBA 128x128, gray 256x256.
fn write_sources(dir: &Path) -> bool {
    let data = testdata();
    let Some((_, plywood)) = data.iter().find(|(n, _)| n.contains("plywood")) else {
        return false;
    };
    let Some((_, halo)) = data.iter().find(|(n, _)| n.contains("halo")) else {
        return false;
    };
    let ply = decode_at("plywood", plywood, 1);
    write_ppm(&dir.join("rgb.ppm"), ply.width, ply.height, &ply.pixels);
    write_pgm(&dir.join("gray.pgm"), ply.width, ply.height, &ply.pixels);
    let halo = decode_at("halo", halo, 0);
    write_raw_planar(&dir.join("rgba.raw"), &halo.pixels);
    true
}

const CASES: &[(&str, &str, &[&str])] = &[
    ("lrcp-1layer", "rgb.ppm", &["-n", "5"]),
    ("lrcp-layers", "rgb.ppm", &["-r", "80,20,5"]),
    ("rlcp", "rgb.ppm", &["-r", "40,10", "-p", "RLCP"]),
    (
        "rpcl-precincts",
        "rgb.ppm",
        &["-r", "40,10", "-p", "RPCL", "-c", "[64,64],[32,32]"],
    ),
    (
        "pcrl-precincts-cblk16",
        "rgb.ppm",
        &["-r", "40,10", "-p", "PCRL", "-c", "[32,32]", "-b", "16,16"],
    ),
    (
        "cprl-tiles",
        "rgb.ppm",
        &["-r", "40,10", "-p", "CPRL", "-c", "[64,64]", "-t", "96,96"],
    ),
    (
        "sop-plt-tlm",
        "rgb.ppm",
        &["-r", "30,10", "-SOP", "-PLT", "-TLM"],
    ),
    ("bypass", "rgb.ppm", &["-r", "30,10", "-M", "1"]),
    ("termall", "rgb.ppm", &["-r", "30,10", "-M", "4"]),
    ("all-modes", "rgb.ppm", &["-r", "30,10", "-M", "63"]),
    (
        "tileparts-by-resolution",
        "rgb.ppm",
        &["-r", "20,5", "-t", "64,64", "-TP", "R", "-p", "RLCP"],
    ),
    (
        "offsets-rpcl",
        "rgb.ppm",
        &[
            "-r", "30,10", "-d", "3,5", "-T", "1,2", "-t", "100,100", "-p", "RPCL", "-c", "[32,32]",
        ],
    ),
    (
        "irreversible-gray",
        "gray.pgm",
        &["-I", "-r", "50,10", "-p", "LRCP", "-b", "32,32"],
    ),
    (
        "subsampled-pcrl",
        "rgb.ppm",
        &["-r", "20,5", "-s", "2,2", "-p", "PCRL", "-c", "[32,32]"],
    ),
    (
        "rgba-sop-tiles",
        "rgba.raw",
        &[
            "-F",
            "128,128,4,8,u",
            "-r",
            "20,5",
            "-SOP",
            "-t",
            "64,64",
            "-p",
            "RPCL",
        ],
    ),
];

#[test]
fn opj_compress_variants_have_exact_tight_budgets() {
    let Some(opj_compress) = tool("opj_compress") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if !write_sources(dir.path()) {
        return;
    }
    let mut meaningful = 0;
    for (name, source, args) in CASES {
        let out = dir.path().join(format!("{name}.j2k"));
        let status = Command::new(&opj_compress)
            .arg("-i")
            .arg(dir.path().join(source))
            .arg("-o")
            .arg(&out)
            .args(*args)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{name}: opj_compress failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let data = std::fs::read(&out).unwrap();
        let cs = Codestream::parse(&data, &Limits::default()).unwrap();
        let budget = cs.budget();
        assert_eq!(budget.estimate, None, "{name}");
        assert_eq!(budget.stream_end, Some(data.len() as u64), "{name}");
        let total_layers = cs.header().cod.layers;
        for level in &budget.levels {
            assert_eq!(level.exactness, Exactness::Exact, "{name}");
            meaningful += usize::from(check_prefix(
                name,
                &data,
                level.bytes as usize,
                level.discard,
                0,
                total_layers,
            ));
        }
        for layer in &budget.layers {
            assert_eq!(layer.exactness, Exactness::Exact, "{name}");
            meaningful += usize::from(check_prefix(
                name,
                &data,
                layer.bytes as usize,
                0,
                layer.layers,
                total_layers,
            ));
        }
        eprintln!(
            "{name}: {} bytes, {} packets, discard budgets {:?}",
            data.len(),
            budget.packets,
            budget.levels.iter().map(|l| l.bytes).collect::<Vec<_>>()
        );
    }
    assert!(
        meaningful >= 60,
        "only {meaningful} tightness checks were meaningful"
    );
}

#[test]
fn plt_lengths_cross_check_the_walk() {
    let Some(opj_compress) = tool("opj_compress") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if !write_sources(dir.path()) {
        return;
    }
    let out = dir.path().join("plt.j2k");
    let ok = Command::new(&opj_compress)
        .arg("-i")
        .arg(dir.path().join("rgb.ppm"))
        .arg("-o")
        .arg(&out)
        .args(["-r", "30,10", "-PLT"])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut data = std::fs::read(&out).unwrap();
    assert_eq!(
        Codestream::parse(&data, &Limits::default())
            .unwrap()
            .budget()
            .estimate,
        None
    );
    // Corrupt one PLT length: the walk must notice the disagreement and fall back.
    let plt = data.windows(2).position(|w| w == [0xFF, 0x58]).unwrap();
    data[plt + 5] ^= 0x01;
    let budget = Codestream::parse(&data, &Limits::default())
        .unwrap()
        .budget();
    assert!(matches!(
        budget.estimate,
        Some(opensim_textures::EstimateReason::Inconsistent(_))
    ));
    assert!(budget.levels.iter().all(|l| l.bytes == data.len() as u64));
}

#[test]
fn eph_streams_fall_back_to_the_whole_stream() {
    let Some(opj_compress) = tool("opj_compress") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if !write_sources(dir.path()) {
        return;
    }
    let out = dir.path().join("eph.j2k");
    let ok = Command::new(&opj_compress)
        .arg("-i")
        .arg(dir.path().join("rgb.ppm"))
        .arg("-o")
        .arg(&out)
        .args(["-r", "30,10", "-SOP", "-EPH"])
        .status()
        .unwrap();
    assert!(ok.success());
    let data = std::fs::read(&out).unwrap();
    let budget = Codestream::parse(&data, &Limits::default())
        .unwrap()
        .budget();
    assert!(matches!(
        budget.estimate,
        Some(opensim_textures::EstimateReason::Unsupported(_))
    ));
    assert!(budget.levels.iter().all(|l| l.bytes == data.len() as u64));
    // Why: OpenJPEG cannot decode even a generous prefix of such a stream.
    let most = &data[..data.len() * 9 / 10];
    assert!(opensim_textures::decode_rgba8(most, budget.max_discard()).is_err());
    assert!(opensim_textures::decode_rgba8(&data, budget.max_discard()).is_ok());
}
