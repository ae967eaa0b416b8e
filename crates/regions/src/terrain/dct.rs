//! The 16 x 16 DCT of terrain patches, its tables and the zig-zag order (regions.md section 4).
//!
//! Both directions use one basis matrix `BASIS[u][n] = s(u) * cos((2n + 1) u pi / 32)` with
//! `s(0) = 1/sqrt 2`, `s(u) = 1` otherwise. With it the decoder's transform is
//! `out = (1/8) * B^T * block * B` (the normalised 2-D IDCT of the reference decoders) and the
//! encoder's is its exact inverse `F = B * patch * B^T`, followed by OpenSimulator's quantiser
//! `(2/16) / (1 + 2(i + j))`.

use std::sync::LazyLock;

use super::PATCH_SIZE;

const N: usize = PATCH_SIZE;
const AREA: usize = N * N;

/// `COPY[j*16 + i]` = index in the coefficient stream of raster position (i, j).
pub(crate) const COPY: [u8; AREA] = build_copy();

/// JPEG-style zig-zag: start at (0,0), step right, then alternate down-left / up-right diagonals.
const fn build_copy() -> [u8; AREA] {
    let mut out = [0u8; AREA];
    let (mut i, mut j) = (0usize, 0usize);
    let mut diag = false;
    let mut right = true;
    let mut count = 0usize;
    while i < N && j < N {
        out[j * N + i] = count as u8;
        count += 1;
        if !diag {
            if right {
                if i < N - 1 {
                    i += 1;
                } else {
                    j += 1;
                }
            } else if j < N - 1 {
                j += 1;
            } else {
                i += 1;
            }
            right = !right;
            diag = true;
        } else if right {
            i += 1;
            j -= 1;
            if i == N - 1 || j == 0 {
                diag = false;
            }
        } else {
            i -= 1;
            j += 1;
            if j == N - 1 || i == 0 {
                diag = false;
            }
        }
    }
    out
}

/// Tables built once on first use.
pub(crate) struct Tables {
    /// `BASIS[u*16 + n]`.
    pub basis: [f32; AREA],
    /// Decoder: coefficient-stream index -> (raster position, dequantisation factor).
    pub dezigzag: [(u8, f32); AREA],
    /// Encoder: `(2/16) / (1 + 2(i + j))` at raster position `j*16 + i`.
    pub quantise: [f32; AREA],
}

pub(crate) static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut basis = [0f32; AREA];
    for u in 0..N {
        for n in 0..N {
            basis[u * N + n] = if u == 0 {
                std::f32::consts::FRAC_1_SQRT_2
            } else {
                (((2 * n + 1) * u) as f64 * std::f64::consts::PI / (2 * N) as f64).cos() as f32
            };
        }
    }
    let mut dezigzag = [(0u8, 0f32); AREA];
    let mut quantise = [0f32; AREA];
    for j in 0..N {
        for i in 0..N {
            let raster = j * N + i;
            let deq = 1.0 + 2.0 * (i + j) as f32;
            dezigzag[usize::from(COPY[raster])] = (raster as u8, deq);
            quantise[raster] = (2.0 / N as f32) / deq;
        }
    }
    Tables {
        basis,
        dezigzag,
        quantise,
    }
});

/// In-place 2-D IDCT of `block` (raster order, row = y frequency), without the final 1/8.
///
/// Bit `v` of `nonzero_rows` (bit `u` of `nonzero_cols`) is set when row `v` (column `u`) of
/// `block` holds a non-zero value: both passes skip the typically many empty high frequencies.
#[inline]
pub(crate) fn idct_unscaled(block: &mut [f32; AREA], nonzero_rows: u16, nonzero_cols: u16) {
    let b = &TABLES.basis;
    // Column pass: tmp[n][c] = sum_u block[u][c] * B[u][n]. Columns past the last non-zero one
    // stay zero, so only the first 4, 8, 12 or 16 are computed (fixed widths vectorise).
    let mut tmp = [0f32; AREA];
    let width = (16 - nonzero_cols.leading_zeros() as usize).next_multiple_of(4);
    match width {
        0 => {}
        4 => column_pass::<4>(block, &mut tmp, nonzero_rows),
        8 => column_pass::<8>(block, &mut tmp, nonzero_rows),
        12 => column_pass::<12>(block, &mut tmp, nonzero_rows),
        _ => column_pass::<16>(block, &mut tmp, nonzero_rows),
    }
    // Row pass: out[r][n] = sum_u tmp[r][u] * B[u][n].
    for r in 0..N {
        let t: [f32; N] = *sub(&tmp, r);
        let out: &mut [f32; N] = sub_mut(block, r);
        *out = [0.0; N];
        for (u, &tv) in t.iter().enumerate() {
            // Column u of tmp is zero wherever column u of block was.
            if nonzero_cols & (1 << u) == 0 {
                continue;
            }
            let bu: &[f32; N] = sub(b, u);
            for n in 0..N {
                out[n] += tv * bu[n];
            }
        }
    }
}

#[inline]
fn column_pass<const W: usize>(block: &[f32; AREA], tmp: &mut [f32; AREA], nonzero_rows: u16) {
    let b = &TABLES.basis;
    for u in 0..N {
        if nonzero_rows & (1 << u) == 0 {
            continue;
        }
        let Some(row) = sub(block, u).first_chunk::<W>() else {
            return;
        };
        for n in 0..N {
            let m = b[u * N + n];
            let Some(t) = sub_mut(tmp, n).first_chunk_mut::<W>() else {
                return;
            };
            for c in 0..W {
                t[c] += row[c] * m;
            }
        }
    }
}

/// Forward 2-D DCT `F = B * patch * B^T` of a raster-order patch (row = y).
#[inline]
pub(crate) fn dct(patch: &[f32; AREA]) -> [f32; AREA] {
    let b = &TABLES.basis;
    // Row pass: rows[y][u] = sum_x patch[y][x] * B[u][x].
    let mut rows = [0f32; AREA];
    for y in 0..N {
        let p: &[f32; N] = sub(patch, y);
        let out: &mut [f32; N] = sub_mut(&mut rows, y);
        for (u, o) in out.iter_mut().enumerate() {
            let bu: &[f32; N] = sub(b, u);
            *o = p.iter().zip(bu).fold(0.0, |acc, (x, c)| acc + x * c);
        }
    }
    // Column pass: F[v][u] = sum_y B[v][y] * rows[y][u].
    let mut f = [0f32; AREA];
    for v in 0..N {
        let out: &mut [f32; N] = sub_mut(&mut f, v);
        for y in 0..N {
            let m = b[v * N + y];
            let r: &[f32; N] = sub(&rows, y);
            for u in 0..N {
                out[u] += m * r[u];
            }
        }
    }
    f
}

#[inline]
fn sub(a: &[f32; AREA], row: usize) -> &[f32; N] {
    let (chunks, _) = a.as_chunks::<N>();
    &chunks[row]
}

#[inline]
fn sub_mut(a: &mut [f32; AREA], row: usize) -> &mut [f32; N] {
    let (chunks, _) = a.as_chunks_mut::<N>();
    &mut chunks[row]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix printed in regions.md section 4, first and last rows.
    #[test]
    fn copy_matrix_matches_regions_md() {
        let first: [u8; 16] = [0, 1, 5, 6, 14, 15, 27, 28, 44, 45, 65, 66, 90, 91, 119, 120];
        let second: [u8; 16] = [
            2, 4, 7, 13, 16, 26, 29, 43, 46, 64, 67, 89, 92, 118, 121, 150,
        ];
        let last: [u8; 16] = [
            135, 136, 164, 165, 189, 190, 210, 211, 227, 228, 240, 241, 249, 250, 254, 255,
        ];
        assert_eq!(COPY[..16], first);
        assert_eq!(COPY[16..32], second);
        assert_eq!(COPY[240..], last);
        let mut seen = [false; AREA];
        for &c in &COPY {
            assert!(!seen[usize::from(c)], "{c} appears twice");
            seen[usize::from(c)] = true;
        }
    }

    #[test]
    fn dct_then_idct_is_identity() {
        let mut patch = [0f32; AREA];
        for (k, v) in patch.iter_mut().enumerate() {
            *v = ((k * 37) % 101) as f32 - 50.0;
        }
        let mut f = dct(&patch);
        idct_unscaled(&mut f, u16::MAX, u16::MAX);
        for (a, b) in patch.iter().zip(f.iter()) {
            // B * B^T = 8 I, so the unscaled round trip multiplies by 64.
            assert!((a - b / 64.0).abs() < 1e-3, "{a} vs {}", b / 64.0);
        }
    }
}
