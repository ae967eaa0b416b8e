//! RGBA expansion of 1 to 4 components and precision scaling, checked on lossless codestreams
//! made by `opj_compress` from known samples; and the async helper.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{testdata, tool};
use opensim_textures::{DecodeOptions, decode_rgba8, decode_rgba8_async};

const W: usize = 24;
const H: usize = 20;

/// A deterministic sample pattern in `0..=max`.
fn samples(comp: usize, max: u32) -> Vec<u32> {
    (0..W * H)
        .map(|i| {
            ((i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(comp as u32 * 7 + 3))
                % (max + 1)
        })
        .collect()
}

/// Encodes planar samples losslessly; `.raw` input is big-endian for depths above 8.
fn encode(
    opj: &std::path::Path,
    dir: &std::path::Path,
    comps: usize,
    bits: u32,
    signed: bool,
) -> (Vec<Vec<u32>>, Vec<u8>) {
    let max = (1u32 << bits) - 1;
    let planes: Vec<Vec<u32>> = (0..comps).map(|c| samples(c, max)).collect();
    let mut raw = Vec::new();
    for p in &planes {
        for &v in p {
            if bits > 8 {
                raw.extend_from_slice(&(v as u16).to_be_bytes());
            } else {
                raw.push(v as u8);
            }
        }
    }
    let name = format!("c{comps}b{bits}{}", if signed { "s" } else { "u" });
    let input = dir.join(format!("{name}.raw"));
    let output = dir.join(format!("{name}.j2k"));
    std::fs::write(&input, raw).unwrap();
    let fmt = format!("{W},{H},{comps},{bits},{}", if signed { "s" } else { "u" });
    let run = Command::new(opj)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["-F", &fmt, "-n", "3"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    (planes, std::fs::read(&output).unwrap())
}

fn to8(v: u32, bits: u32, signed: bool) -> u8 {
    let max = (1u64 << bits) - 1;
    // Signed samples were written as two's complement bit patterns of `bits` bits.
    let v = if signed {
        let half = 1i64 << (bits - 1);
        let s = if i64::from(v) >= half {
            i64::from(v) - (1i64 << bits)
        } else {
            i64::from(v)
        };
        (s + half) as u64
    } else {
        u64::from(v)
    };
    if max == 255 {
        v as u8
    } else {
        ((v * 255 + max / 2) / max) as u8
    }
}

#[test]
fn components_expand_to_rgba_and_precisions_scale() {
    let Some(opj) = tool("opj_compress") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (comps, bits, signed) in [
        (1, 8, false),
        (2, 8, false),
        (3, 8, false),
        (4, 8, false),
        (1, 12, false),
        (3, 4, false),
        (4, 16, false),
        (1, 8, true),
        (1, 1, false),
    ] {
        let (planes, j2k) = encode(&opj, dir.path(), comps, bits, signed);
        let img = decode_rgba8(&j2k, 0).unwrap();
        assert_eq!((img.width as usize, img.height as usize), (W, H));
        for (i, px) in img.pixels.chunks_exact(4).enumerate() {
            let s = |c: usize| to8(planes[c][i], bits, signed);
            let want = match comps {
                1 => [s(0), s(0), s(0), 255],
                2 => [s(0), s(0), s(0), s(1)],
                3 => [s(0), s(1), s(2), 255],
                _ => [s(0), s(1), s(2), s(3)],
            };
            assert_eq!(
                px, want,
                "{comps} comps, {bits} bits, signed {signed}, pixel {i}"
            );
        }
        // Reduced levels keep the layout.
        let small = decode_rgba8(&j2k, 2).unwrap();
        assert_eq!((small.width, small.height), (6, 5));
    }
}

#[test]
fn async_decode_matches_the_blocking_one() {
    let Some((name, data)) = testdata().into_iter().find(|(n, _)| n.contains("terrain")) else {
        return;
    };
    let sync = decode_rgba8(&data, 1).unwrap();
    let caller = std::thread::current().id();
    let (image, ran_on) = futures_lite::future::block_on(async {
        let image = decode_rgba8_async(data.clone(), DecodeOptions::at_discard(1))
            .await
            .unwrap();
        // The blocking pool runs the closure elsewhere; learn where from a second task.
        let ran_on = blocking::unblock(|| std::thread::current().id()).await;
        (image, ran_on)
    });
    assert_eq!(image, sync, "{name}");
    assert_ne!(
        ran_on, caller,
        "the blocking pool must not run on the executor thread"
    );
    // Shared ownership types work as input too.
    let shared: std::sync::Arc<[u8]> = data.into();
    let again =
        futures_lite::future::block_on(decode_rgba8_async(shared, DecodeOptions::at_discard(1)))
            .unwrap();
    assert_eq!(again, sync);
}
