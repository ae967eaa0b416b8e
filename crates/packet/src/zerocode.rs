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
/// OpenSimulator's decoder does.
///
/// # Errors
/// When a run has no count or the output does not fit in `out`.
pub fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, ZeroCodeError> {
    let limit = out.len();
    let mut i = 0;
    let mut o = 0;
    while i < src.len() {
        // Copy the stretch of non-zero bytes in one go (found with a vectorised search: a
        // byte-at-a-time scan was most of the decoding time of a zero-coded packet).
        let run = memchr::memchr(0, &src[i..]).unwrap_or(src.len() - i);
        if run > 0 {
            let end = o + run;
            if end > limit {
                return Err(ZeroCodeError::TooLarge { limit });
            }
            out[o..end].copy_from_slice(&src[i..i + run]);
            o = end;
            i += run;
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

/// Zero-codes `src` onto `out`.
pub fn encode<B: BufMut + ?Sized>(src: &[u8], out: &mut B) {
    let mut i = 0;
    while i < src.len() {
        let run = memchr::memchr(0, &src[i..]).unwrap_or(src.len() - i);
        if run > 0 {
            out.put_slice(&src[i..i + run]);
            i += run;
            continue;
        }
        let zeros = src[i..].iter().take_while(|&&b| b == 0).count();
        let mut left = zeros;
        while left > 0 {
            let n = left.min(255);
            // n is 1..=255 here.
            out.put_slice(&[0, n as u8]);
            left -= n;
        }
        i += zeros;
    }
}

/// The length `src` zero-codes to, without coding it.
pub fn encoded_len(src: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < src.len() {
        if src[i] != 0 {
            n += 1;
            i += 1;
        } else {
            let zeros = src[i..].iter().take_while(|&&b| b == 0).count();
            n += 2 * zeros.div_ceil(255);
            i += zeros;
        }
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

    proptest! {
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
