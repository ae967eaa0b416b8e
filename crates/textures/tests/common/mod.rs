//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use opensim_textures::{DecodeOptions, decode};

/// The four OpenSim test textures as (file name, bytes); empty when the shared data is absent.
pub fn testdata() -> Vec<(String, Vec<u8>)> {
    let Some(dir) = opensim_testkit::protocol_dir() else {
        return Vec::new();
    };
    let files = opensim_testkit::files_with_extension(&dir.join("testdata"), "j2c");
    assert_eq!(files.len(), 4, "expected the four OpenSim test textures");
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Decoded pixels summarised as (length, FNV-1a hash), or the error text: failures must stay
/// readable instead of dumping megabytes of pixels.
pub fn decode_summary(data: &[u8], discard: u8, layers: u16) -> Result<(usize, u64), String> {
    let opts = DecodeOptions {
        layers,
        ..DecodeOptions::at_discard(discard)
    };
    let img = decode::decode_rgba8_with(data, &opts).map_err(|e| e.to_string())?;
    let hash = img.pixels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    Ok((img.pixels.len(), hash))
}

/// Checks one budget figure (`layers == 0` = all layers). Returns whether the tightness half
/// was meaningful: it is not when the last layer that can contribute changes no pixel at this
/// level, since then no byte of it can be told apart by decoding.
pub fn check_prefix(
    name: &str,
    data: &[u8],
    bytes: usize,
    discard: u8,
    layers: u16,
    total_layers: u16,
) -> bool {
    let full = decode_summary(data, discard, layers).expect("full decode");
    let prefix = decode_summary(&data[..bytes], discard, layers);
    assert_eq!(
        prefix,
        Ok(full),
        "{name}: prefix of {bytes} bytes at discard {discard}, layers {layers} decodes differently"
    );
    let top = if layers == 0 { total_layers } else { layers };
    let visible = top == 1 || decode_summary(data, discard, top - 1) != Ok(full);
    if visible {
        let shorter = decode_summary(&data[..bytes - 1], discard, layers);
        assert_ne!(
            shorter,
            Ok(full),
            "{name}: {} bytes (one short) at discard {discard}, layers {layers} still decode the same",
            bytes - 1
        );
    }
    visible
}

/// Finds an executable on `PATH`; prints a skip notice when absent (and fails under CI).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !opensim_testkit::in_ci(),
            "{name} is required under CI=true (apt-get install libopenjp2-tools)"
        );
        eprintln!("skipped: {name} not found (apt-get install libopenjp2-tools)");
    }
    found
}

/// Writes RGBA pixels as a binary PPM (alpha dropped).
pub fn write_ppm(path: &Path, width: u32, height: u32, rgba: &[u8]) {
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    for px in rgba.chunks_exact(4) {
        out.extend_from_slice(&px[..3]);
    }
    std::fs::write(path, out).unwrap();
}

/// Writes one channel of RGBA pixels as a binary PGM.
pub fn write_pgm(path: &Path, width: u32, height: u32, rgba: &[u8]) {
    let mut out = format!("P5\n{width} {height}\n255\n").into_bytes();
    out.extend(rgba.chunks_exact(4).map(|px| px[1]));
    std::fs::write(path, out).unwrap();
}

/// Writes RGBA pixels as planar raw components (what `opj_compress -F w,h,4,8,u` reads).
pub fn write_raw_planar(path: &Path, rgba: &[u8]) {
    let mut out = Vec::with_capacity(rgba.len());
    for c in 0..4 {
        out.extend(rgba.chunks_exact(4).map(|px| px[c]));
    }
    std::fs::write(path, out).unwrap();
}

/// Decodes with default options or panics with the file name.
pub fn decode_at(name: &str, data: &[u8], discard: u8) -> opensim_textures::Rgba8Image {
    decode::decode_rgba8_with(data, &DecodeOptions::at_discard(discard))
        .unwrap_or_else(|e| panic!("{name}: decode at discard {discard}: {e}"))
}
