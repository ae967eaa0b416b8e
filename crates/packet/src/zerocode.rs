//! Zero-coding: the run-length code for 0x00 bytes that LLUDP applies after the 6-byte header.
//!
//! A run of n zero bytes (1..=255) is written `00 n`; longer runs are cut into runs of 255.
//! Decoding is bounded: a datagram cannot expand past [`MAX_DECODED_LEN`] bytes.

use bytes::BufMut;

/// The most bytes a zero-coded region may expand to (the viewer's 8 KiB receive buffer).
pub const MAX_DECODED_LEN: usize = 8192;

/// A zero-coded region that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZeroCodeError {
    /// A `00` was the last byte: its run length is missing.
    #[error("zero run at byte {at} has no count byte")]
    MissingCount {
        /// Offset of the `00` in the coded region.
        at: usize,
    },
    /// The region expands to more than the limit.
    #[error("zero-coded region expands past {limit} bytes")]
    TooLarge {
        /// The limit that was hit.
        limit: usize,
    },
}

/// Decodes `src` into `out`, returning the decoded length.
///
/// `00 00` (a run of zero zeros, which no known encoder writes) decodes to nothing, as
/// OpenSimulator's decoder does. Bytes of `out` past the decoded length may be overwritten.
///
/// # Errors
/// When a run has no count or the output does not fit in `out`.
pub fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, ZeroCodeError> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let limit = out.len();
    let mut i = 0;
    let mut o = 0;
    let mut clean_words = 0;
    // Eight bytes at a time while they fit: zero runs in real packets are short and close
    // together, so a search call per stretch (memchr) or a byte loop both cost more than
    // copying a whole word and keeping the part before its first zero.
    while let (Some(chunk), Some(dst)) = (src.get(i..i + 8), out.get_mut(o..o + 8)) {
        dst.copy_from_slice(chunk);
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // The lowest set bit marks the first zero byte (higher ones can be false positives).
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros == 0 {
            i += 8;
            o += 8;
            clean_words += 1;
            if clean_words >= 4 {
                // A long stretch without zeros (a terrain or overlay bitmap): find its end
                // with a vectorised search and copy it in one go.
                clean_words = 0;
                let run = memchr::memchr(0, &src[i..]).unwrap_or(src.len() - i);
                let end = o + run;
                if end > limit {
                    return Err(ZeroCodeError::TooLarge { limit });
                }
                out[o..end].copy_from_slice(&src[i..i + run]);
                i += run;
                o = end;
            }
            continue;
        }
        clean_words = 0;
        let k = (zeros.trailing_zeros() / 8) as usize;
        i += k;
        o += k;
        let Some(&count) = src.get(i + 1) else {
            return Err(ZeroCodeError::MissingCount { at: i });
        };
        let count = usize::from(count);
        match out.get_mut(o..o + 16) {
            // Short runs (the usual case) as one fixed-size store.
            Some(dst) if count <= 16 => dst.fill(0),
            _ => {
                let end = o + count;
                if end > limit {
                    return Err(ZeroCodeError::TooLarge { limit });
                }
                out[o..end].fill(0);
            }
        }
        o += count;
        i += 2;
    }
    // The last few bytes, or all of them near the end of `out`.
    while i < src.len() {
        let b = src[i];
        if b != 0 {
            if o >= limit {
                return Err(ZeroCodeError::TooLarge { limit });
            }
            out[o] = b;
            o += 1;
            i += 1;
            continue;
        }
        let Some(&count) = src.get(i + 1) else {
            return Err(ZeroCodeError::MissingCount { at: i });
        };
        let end = o + usize::from(count);
        if end > limit {
            return Err(ZeroCodeError::TooLarge { limit });
        }
        out[o..end].fill(0);
        o = end;
        i += 2;
    }
    Ok(o)
}

/// The length `src` decodes to, without decoding it.
///
/// # Errors
/// As [`decode_into`] with a [`MAX_DECODED_LEN`] limit.
pub fn decoded_len(src: &[u8]) -> Result<usize, ZeroCodeError> {
    let mut i = 0;
    let mut n = 0usize;
    while i < src.len() {
        if src[i] != 0 {
            n += 1;
            i += 1;
        } else {
            let Some(&count) = src.get(i + 1) else {
                return Err(ZeroCodeError::MissingCount { at: i });
            };
            n += usize::from(count);
            i += 2;
        }
        if n > MAX_DECODED_LEN {
            return Err(ZeroCodeError::TooLarge {
                limit: MAX_DECODED_LEN,
            });
        }
    }
    Ok(n)
}

/// The index of the first zero byte of `src` at or after `i`, or `src.len()`.
///
/// Eight bytes at a time: the stretches between zeros in real packets are short, where a
/// search call (memchr) costs more than it saves, and a byte loop is slow on long ones.
#[inline]
fn next_zero(src: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(chunk) = src.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        // The lowest set bit marks the first zero byte (higher ones can be false positives).
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return i + (zeros.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < src.len() && src[i] != 0 {
        i += 1;
    }
    i
}

/// The index of the first non-zero byte of `src` at or after `i`, or `src.len()`.
#[inline]
fn run_end(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && src[i] == 0 {
        i += 1;
    }
    i
}

/// Zero-codes `src` onto `out`.
pub fn encode<B: BufMut + ?Sized>(src: &[u8], out: &mut B) {
    let mut i = 0;
    while i < src.len() {
        let zero = next_zero(src, i);
        out.put_slice(&src[i..zero]);
        let end = run_end(src, zero);
        let mut left = end - zero;
        while left > 0 {
            let n = left.min(255);
            // n is 1..=255 here.
            out.put_slice(&[0, n as u8]);
            left -= n;
        }
        i = end;
    }
}

/// The length `src` zero-codes to, without coding it.
pub fn encoded_len(src: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < src.len() {
        let zero = next_zero(src, i);
        let end = run_end(src, zero);
        n += (zero - i) + 2 * (end - zero).div_ceil(255);
        i = end;
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn enc(src: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(src, &mut v);
        v
    }

    #[test]
    fn long_runs_are_cut_at_255() {
        assert_eq!(enc(&[0; 300]), vec![0, 255, 0, 45]);
        assert_eq!(enc(&[0; 256]), vec![0, 255, 0, 1]);
        assert_eq!(enc(&[0; 510]), vec![0, 255, 0, 255]);
        assert_eq!(
            enc(&[1, 0]),
            vec![1, 0, 1],
            "a run at the very end is flushed"
        );
        assert_eq!(enc(&[0xFF, 0xFF, 0, 0x94]), vec![0xFF, 0xFF, 0, 1, 0x94]);
    }

    #[test]
    fn a_trailing_zero_without_count_is_malformed() {
        let mut out = [0u8; 16];
        assert_eq!(
            decode_into(&[5, 0], &mut out),
            Err(ZeroCodeError::MissingCount { at: 1 })
        );
        assert_eq!(
            decoded_len(&[5, 0]),
            Err(ZeroCodeError::MissingCount { at: 1 })
        );
    }

    #[test]
    fn expansion_is_bounded() {
        // 40 pairs of `00 FF` would expand to 10200 bytes.
        let bomb: Vec<u8> = std::iter::repeat_n([0u8, 255], 40).flatten().collect();
        assert!(matches!(
            decoded_len(&bomb),
            Err(ZeroCodeError::TooLarge { .. })
        ));
        let mut out = vec![0u8; MAX_DECODED_LEN];
        assert!(matches!(
            decode_into(&bomb, &mut out),
            Err(ZeroCodeError::TooLarge { .. })
        ));
    }

    /// A byte-at-a-time decoder to check the word-at-a-time one against.
    fn reference(src: &[u8], limit: usize) -> Result<Vec<u8>, ZeroCodeError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < src.len() {
            if src[i] != 0 {
                out.push(src[i]);
                i += 1;
            } else {
                let count = *src
                    .get(i + 1)
                    .ok_or(ZeroCodeError::MissingCount { at: i })?;
                out.resize(out.len() + usize::from(count), 0);
                i += 2;
            }
            if out.len() > limit {
                return Err(ZeroCodeError::TooLarge { limit });
            }
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn matches_a_byte_at_a_time_decoder(
            src in proptest::collection::vec(prop_oneof![Just(0u8), 1..40u8, any::<u8>()], 0..400),
            limit in prop_oneof![0..64usize, Just(MAX_DECODED_LEN)],
        ) {
            let mut out = vec![0u8; limit];
            let got = decode_into(&src, &mut out).map(|n| out[..n].to_vec());
            prop_assert_eq!(got, reference(&src, limit));
        }

        #[test]
        fn round_trip(src in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..2000)) {
            let coded = enc(&src);
            prop_assert_eq!(coded.len(), encoded_len(&src));
            prop_assert_eq!(decoded_len(&coded).unwrap(), src.len());
            let mut out = vec![0u8; MAX_DECODED_LEN];
            let n = decode_into(&coded, &mut out).unwrap();
            prop_assert_eq!(&out[..n], &src[..]);
        }

        #[test]
        fn decoding_garbage_never_panics(src in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = vec![0u8; MAX_DECODED_LEN];
            let a = decode_into(&src, &mut out).map(|_| ());
            let b = decoded_len(&src).map(|_| ());
            prop_assert_eq!(a, b);
        }
    }
}
