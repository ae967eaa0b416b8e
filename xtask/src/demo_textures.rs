//! `cargo xtask demo-textures`: the JPEG 2000 textures of the simulator's demo scene.
//!
//! Every image is painted here from integer hashes and plain arithmetic (no trigonometry, no
//! randomness), so the pixels are the same on every machine, and then encoded by OpenJPEG's
//! `opj_compress` the way Second Life / OpenSimulator textures are made: a raw codestream
//! (`.j2c`), 6 resolutions (discard levels 0 to 5), 5 quality layers in LRCP order, the
//! irreversible 9/7 wavelet with the colour transform. `jpeg2k` 0.10 cannot be used: its
//! `EncodeParameters` has no setters and it cannot build an image from pixels.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the textures are written, relative to the workspace root.
pub const TEXTURE_DIR: &str = "crates/sim/textures";

/// Resolutions per image (`opj_compress -n`): decomposition levels plus one.
pub const RESOLUTIONS: u32 = 6;

/// Compression ratio of each quality layer over the final one, first layer first.
const LAYER_FACTORS: [u32; 5] = [32, 12, 5, 2, 1];

/// One demo texture: its file stem, size and how it is painted.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// File stem (`<name>.j2c`).
    pub name: &'static str,
    /// Side in pixels (square images).
    pub side: u32,
    /// Whether an alpha channel is written.
    pub alpha: bool,
    /// Compression ratio of the last (full-quality) layer.
    pub ratio: u32,
    /// The pixel at `(x, y)` as RGBA.
    pub paint: fn(u32, u32) -> [u8; 4],
}

/// The demo textures, in the order the simulator's scene lists them.
pub const SPECS: [Spec; 6] = [
    Spec {
        name: "checker",
        side: 256,
        alpha: false,
        ratio: 12,
        paint: checker,
    },
    Spec {
        name: "bricks",
        side: 512,
        alpha: false,
        ratio: 30,
        paint: bricks,
    },
    Spec {
        name: "glow",
        side: 256,
        alpha: true,
        // Smooth: at lower ratios its last layers would be empty.
        ratio: 60,
        paint: glow,
    },
    Spec {
        name: "plywood",
        side: 512,
        alpha: false,
        ratio: 30,
        paint: plywood,
    },
    Spec {
        name: "stone",
        side: 256,
        alpha: false,
        ratio: 12,
        paint: stone,
    },
    Spec {
        name: "grass",
        side: 256,
        alpha: false,
        ratio: 12,
        paint: grass,
    },
];

/// Why generating the textures failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TextureError {
    /// Reading or writing a file failed.
    Io(PathBuf, std::io::Error),
    /// `opj_compress` could not be run (not installed?).
    Spawn(std::io::Error),
    /// `opj_compress` failed on one image.
    Encoder(String, String),
    /// `--check`: these files differ from what the generator produces.
    Stale(Vec<PathBuf>),
}

impl std::fmt::Display for TextureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextureError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TextureError::Spawn(e) => write!(
                f,
                "cannot run opj_compress ({e}); install OpenJPEG's tools (Debian: libopenjp2-tools)"
            ),
            TextureError::Encoder(name, out) => write!(f, "opj_compress failed on {name}: {out}"),
            TextureError::Stale(files) => {
                write!(
                    f,
                    "demo textures are stale (run `cargo xtask demo-textures`):"
                )?;
                for p in files {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for TextureError {}

/// The image as a PNM file `opj_compress` reads: binary PPM (P6) for RGB, PAM (P7) for RGBA.
pub fn pnm(spec: &Spec) -> Vec<u8> {
    let side = spec.side;
    let channels = if spec.alpha { 4 } else { 3 };
    let mut out = if spec.alpha {
        format!(
            "P7\nWIDTH {side}\nHEIGHT {side}\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n"
        )
    } else {
        format!("P6\n{side} {side}\n255\n")
    }
    .into_bytes();
    out.reserve(side as usize * side as usize * channels);
    for y in 0..side {
        for x in 0..side {
            out.extend_from_slice(&(spec.paint)(x, y)[..channels]);
        }
    }
    out
}

/// Encodes one image into a codestream with `opj_compress`, through files in `scratch`.
///
/// # Errors
/// When the scratch files cannot be written or read, or the encoder fails.
pub fn encode(spec: &Spec, scratch: &Path) -> Result<Vec<u8>, TextureError> {
    let ext = if spec.alpha { "pam" } else { "ppm" };
    let input = scratch.join(format!("{}.{ext}", spec.name));
    let output = scratch.join(format!("{}.j2c", spec.name));
    std::fs::write(&input, pnm(spec)).map_err(|e| TextureError::Io(input.clone(), e))?;
    let rates: Vec<String> = LAYER_FACTORS
        .iter()
        .map(|f| (f * spec.ratio).to_string())
        .collect();
    let result = Command::new("opj_compress")
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["-n", &RESOLUTIONS.to_string()])
        .args(["-r", &rates.join(",")])
        .args(["-p", "LRCP", "-I"])
        .output()
        .map_err(TextureError::Spawn)?;
    if !result.status.success() {
        let mut text = String::from_utf8_lossy(&result.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&result.stderr));
        return Err(TextureError::Encoder(spec.name.to_owned(), text));
    }
    std::fs::read(&output).map_err(|e| TextureError::Io(output, e))
}

/// Encodes every texture: `(file name, codestream)` pairs.
///
/// # Errors
/// See [`encode`].
pub fn render() -> Result<Vec<(String, Vec<u8>)>, TextureError> {
    let scratch = std::env::temp_dir().join(format!("osn-demo-textures-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| TextureError::Io(scratch.clone(), e))?;
    let result = SPECS
        .iter()
        .map(|s| Ok((format!("{}.j2c", s.name), encode(s, &scratch)?)))
        .collect();
    // Best effort: a leftover scratch directory in the temp dir harms nothing.
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Writes `files` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), TextureError> {
    std::fs::create_dir_all(dir).map_err(|e| TextureError::Io(dir.to_path_buf(), e))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| TextureError::Io(path, e))?;
    }
    Ok(())
}

/// Fails, naming them, when files in `dir` differ from `files`.
///
/// # Errors
/// [`TextureError::Stale`] when any file is missing or different.
pub fn check(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), TextureError> {
    let stale: Vec<PathBuf> = files
        .iter()
        .map(|(name, bytes)| (dir.join(name), bytes))
        .filter(|(path, bytes)| std::fs::read(path).ok().as_ref() != Some(*bytes))
        .map(|(path, _)| path)
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(TextureError::Stale(stale))
    }
}

/// A well-mixed 32-bit hash of a lattice point and a seed.
fn hash(x: u32, y: u32, seed: u32) -> u32 {
    let mut h = x
        .wrapping_mul(0x8da6_b343)
        .wrapping_add(y.wrapping_mul(0xd816_3841))
        .wrapping_add(seed.wrapping_mul(0xcb1a_b31f));
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^ (h >> 16)
}

/// [`hash`] as a number in `[0, 1)`.
fn unit(x: u32, y: u32, seed: u32) -> f32 {
    (hash(x, y, seed) >> 8) as f32 / (1u32 << 24) as f32
}

/// Value noise on a lattice of `cell`-pixel squares that repeats every `period` cells, so
/// textures tile without seams.
fn value_noise(x: f32, y: f32, cell: f32, period: u32, seed: u32) -> f32 {
    let (fx, fy) = (x / cell, y / cell);
    let (ix, iy) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - ix, fy - iy);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let wrap = |i: f32| (i as i64).rem_euclid(i64::from(period)) as u32;
    let (x0, y0) = (wrap(ix), wrap(iy));
    let (x1, y1) = ((x0 + 1) % period, (y0 + 1) % period);
    let top = lerp(unit(x0, y0, seed), unit(x1, y0, seed), sx);
    let bottom = lerp(unit(x0, y1, seed), unit(x1, y1, seed), sx);
    lerp(top, bottom, sy)
}

/// Fractal noise in `[0, 1)`: `octaves` layers of [`value_noise`] on an image of `side`
/// pixels, the first with cells of `cell` pixels.
fn fbm(x: f32, y: f32, side: u32, cell: f32, octaves: u32, seed: u32) -> f32 {
    let (mut sum, mut weight, mut amp, mut cell) = (0.0, 0.0, 1.0, cell);
    for o in 0..octaves {
        let period = ((side as f32 / cell) as u32).max(1);
        sum += amp * value_noise(x, y, cell, period, seed.wrapping_add(o));
        weight += amp;
        amp *= 0.5;
        cell *= 0.5;
    }
    sum / weight
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Mixes two colours by `t` in `[0, 1]`, opaque.
fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 4] {
    let t = t.clamp(0.0, 1.0);
    let c = |i: usize| lerp(f32::from(a[i]), f32::from(b[i]), t).round() as u8;
    [c(0), c(1), c(2), 255]
}

/// Scales an opaque colour's brightness by `k`.
fn shade(c: [u8; 4], k: f32) -> [u8; 4] {
    let s = |v: u8| (f32::from(v) * k).round().clamp(0.0, 255.0) as u8;
    [s(c[0]), s(c[1]), s(c[2]), c[3]]
}

/// Teal and cream squares of 32 pixels with a darker seam.
fn checker(x: u32, y: u32) -> [u8; 4] {
    let (cx, cy) = (x / 32, y / 32);
    let base = if (cx + cy) % 2 == 0 {
        [24, 128, 136, 255]
    } else {
        [238, 228, 196, 255]
    };
    let (sx, sy) = (x % 32, y % 32);
    let seam = sx == 0 || sy == 0 || sx == 31 || sy == 31;
    if seam { shade(base, 0.8) } else { base }
}

/// Running-bond red bricks (128 x 64 pixels) in grey mortar, each brick a little different.
fn bricks(x: u32, y: u32) -> [u8; 4] {
    const W: u32 = 128;
    const H: u32 = 64;
    const MORTAR: u32 = 6;
    let row = y / H;
    let shifted = (x + (row % 2) * (W / 2)) % 512;
    let col = shifted / W;
    let (bx, by) = (shifted % W, y % H);
    let grit = fbm(x as f32, y as f32, 512, 16.0, 3, 7);
    if bx < MORTAR || by < MORTAR {
        return shade([188, 182, 170, 255], 0.8 + 0.3 * grit);
    }
    let tone = unit(col, row, 11);
    let base = mix([150, 52, 36], [190, 92, 58], tone);
    // A soft bevel: a brick darkens towards its lower and right edges.
    let edge = (W - 1 - bx).min(H - 1 - by);
    let bevel = if edge < 4 {
        0.8 + 0.05 * edge as f32
    } else {
        1.0
    };
    shade(base, (0.8 + 0.4 * grit) * bevel)
}

/// A warm radial glow with a flickering rim, fading to transparent at the edge (RGBA).
fn glow(x: u32, y: u32) -> [u8; 4] {
    let (dx, dy) = (x as f32 + 0.5 - 128.0, y as f32 + 0.5 - 128.0);
    let flicker = fbm(x as f32, y as f32, 256, 32.0, 4, 41);
    let r = ((dx * dx + dy * dy).sqrt() / 128.0 * (0.8 + 0.4 * flicker)).min(1.0);
    let falloff = 1.0 - r;
    let [red, green, blue, _] = mix([255, 250, 214], [255, 112, 16], r * 1.3);
    let alpha = (falloff * falloff * 255.0).round() as u8;
    [red, green, blue, alpha]
}

/// Plywood: honey-coloured grain running top to bottom, bent by noise, with darker late wood.
fn plywood(x: u32, y: u32) -> [u8; 4] {
    let (fx, fy) = (x as f32, y as f32);
    let warp = fbm(fx, fy, 512, 128.0, 4, 3);
    let d = fx + 90.0 * warp + 6.0 * fbm(fx, fy, 512, 8.0, 2, 5);
    let ring = (d / 18.0).fract();
    // Late wood: a narrow dark band at the end of each ring.
    let late = if ring > 0.75 {
        (ring - 0.75) * 4.0
    } else {
        0.0
    };
    let fibre = fbm(fx * 4.0, fy * 0.25, 2048, 8.0, 2, 9);
    let base = mix([226, 190, 140], [168, 112, 62], late * 0.9 + 0.15 * fibre);
    shade(base, 0.92 + 0.12 * fibre)
}

/// Grey cobbles: cells around jittered points, darker in the gaps between them.
fn stone(x: u32, y: u32) -> [u8; 4] {
    const CELL: u32 = 32;
    const N: u32 = 256 / CELL;
    let (fx, fy) = (x as f32, y as f32);
    let (cx, cy) = (x / CELL, y / CELL);
    // The nearest and second-nearest cell centre (the lattice wraps, so the image tiles).
    let (mut d1, mut d2, mut nearest) = (f32::MAX, f32::MAX, (0, 0));
    for oy in 0..3u32 {
        for ox in 0..3u32 {
            let (gx, gy) = ((cx + N + ox - 1) % N, (cy + N + oy - 1) % N);
            let px = (cx + ox) as f32 * CELL as f32 - CELL as f32
                + (0.2 + 0.6 * unit(gx, gy, 21)) * CELL as f32;
            let py = (cy + oy) as f32 * CELL as f32 - CELL as f32
                + (0.2 + 0.6 * unit(gx, gy, 22)) * CELL as f32;
            let d = ((fx - px) * (fx - px) + (fy - py) * (fy - py)).sqrt();
            if d < d1 {
                d2 = d1;
                d1 = d;
                nearest = (gx, gy);
            } else if d < d2 {
                d2 = d;
            }
        }
    }
    let gap = ((d2 - d1) / 6.0).min(1.0);
    let tone = unit(nearest.0, nearest.1, 23);
    let grain = fbm(fx, fy, 256, 16.0, 4, 25);
    let base = mix([118, 118, 124], [176, 172, 164], tone);
    shade(base, (0.35 + 0.65 * gap) * (0.8 + 0.35 * grain))
}

/// Grass: green patches with upright blades.
fn grass(x: u32, y: u32) -> [u8; 4] {
    let (fx, fy) = (x as f32, y as f32);
    let patches = fbm(fx, fy, 256, 64.0, 3, 31);
    // Blades: noise stretched vertically, thin across and long along.
    let blades = fbm(fx * 4.0, fy * 0.5, 1024, 8.0, 2, 33);
    let base = mix(
        [34, 92, 22],
        [118, 172, 52],
        patches * 0.6 + blades * 0.6 - 0.1,
    );
    shade(base, 0.75 + 0.4 * blades)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_varied() {
        for spec in &SPECS {
            let a = pnm(spec);
            assert_eq!(a, pnm(spec), "{}", spec.name);
            let channels = if spec.alpha { 4 } else { 3 };
            let pixels = &a[a.len() - (spec.side * spec.side) as usize * channels..];
            let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(channels).collect();
            assert!(distinct.len() >= 2, "{} is flat", spec.name);
        }
        // The glow is transparent in the corners and opaque in the middle.
        assert_eq!(glow(0, 0)[3], 0);
        assert!(glow(128, 128)[3] > 250);
    }

    #[test]
    fn tiling_noise_wraps() {
        for y in [0.0, 17.0, 100.0] {
            let a = value_noise(0.0, y, 32.0, 8, 1);
            let b = value_noise(256.0, y, 32.0, 8, 1);
            assert!((a - b).abs() < 1e-6);
        }
    }
}
