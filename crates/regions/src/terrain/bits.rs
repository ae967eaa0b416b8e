//! The `BitPack` bit order of `LayerData` (regions.md section 2).
//!
//! Bits are consumed most-significant first from each byte. An `n`-bit field is cut into 8-bit
//! chunks starting with its *least* significant byte; each full chunk goes out MSB-first and the
//! last partial chunk (`n % 8` bits) carries the remaining high bits, also MSB-first. So a 16-bit
//! field reads as two little-endian bytes, while a 10-bit field is its low byte followed by its
//! top two bits.

use super::error::MalformedError;

/// Reads `BitPack`-ordered fields from a byte slice; running out of bits is an error.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next bit to read, counted from the first byte's MSB.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits consumed so far.
    pub fn bit_position(&self) -> usize {
        self.pos
    }

    /// Bits still unread.
    pub fn remaining_bits(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// Bytes touched so far (a partly read byte counts).
    pub fn bytes_touched(&self) -> usize {
        self.pos.div_ceil(8)
    }

    #[inline]
    fn check(&self, needed: u32) -> Result<(), MalformedError> {
        let available = self.remaining_bits();
        if (needed as usize) > available {
            return Err(MalformedError::OutOfBits {
                bit_offset: self.pos,
                needed,
                available,
            });
        }
        Ok(())
    }

    /// The next 32 bits MSB-first (zeros past the end), without consuming them.
    #[inline]
    fn peek32(&self) -> u32 {
        let byte = self.pos >> 3;
        let off = (self.pos & 7) as u32;
        let window = match self.data.get(byte..byte + 8) {
            Some(chunk) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                u64::from_be_bytes(b)
            }
            None => {
                let mut b = [0u8; 8];
                let tail = self.data.get(byte..).unwrap_or_default();
                let n = tail.len().min(8);
                b[..n].copy_from_slice(&tail[..n]);
                u64::from_be_bytes(b)
            }
        };
        ((window << off) >> 32) as u32
    }

    /// Skips `n` bits (at most the remaining ones).
    #[inline]
    pub fn skip(&mut self, n: u32) -> Result<(), MalformedError> {
        self.check(n)?;
        self.pos += n as usize;
        Ok(())
    }

    /// The next `n` (0..=32) bits MSB-first, zero-padded past the end, not consumed.
    #[inline]
    pub fn peek_msb(&self, n: u32) -> u32 {
        if n == 0 { 0 } else { self.peek32() >> (32 - n) }
    }

    /// One bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, MalformedError> {
        self.check(1)?;
        let byte = self.data[self.pos >> 3];
        let bit = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Ok(bit != 0)
    }

    /// An `n`-bit field (`n` in 0..=32) in `BitPack` order.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Result<u32, MalformedError> {
        debug_assert!(n <= 32);
        self.check(n)?;
        let w = self.peek32();
        self.pos += n as usize;
        // Full bytes come least significant first, each MSB-first; the partial rest is the top.
        let full = n / 8;
        let rest = n % 8;
        let mut value = 0u32;
        for k in 0..full {
            value |= ((w >> (24 - 8 * k)) & 0xFF) << (8 * k);
        }
        if rest > 0 {
            value |= ((w >> (32 - 8 * full - rest)) & ((1 << rest) - 1)) << (8 * full);
        }
        Ok(value)
    }

    /// An IEEE `f32`: 32 bits in `BitPack` order, i.e. its little-endian bytes.
    pub fn read_f32(&mut self) -> Result<f32, MalformedError> {
        self.read_bits(32).map(f32::from_bits)
    }
}

/// Writes `BitPack`-ordered fields into a growing byte vector (padding bits are zero).
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            bits: 0,
        }
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bits
    }

    /// Bytes written so far (a partly filled byte counts).
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The `k` (1..=8) low bits of `v`, most significant first.
    #[inline]
    fn put_msb(&mut self, v: u32, k: u32) {
        debug_assert!((1..=8).contains(&k));
        let off = (self.bits & 7) as u32;
        if off == 0 {
            self.buf.push(0);
        }
        let v = v & ((1u32 << k) - 1);
        // Place the k bits at the top of a 16-bit window starting at the current bit.
        let window = (v << (16 - k)) >> off;
        if let Some(last) = self.buf.last_mut() {
            *last |= (window >> 8) as u8;
        }
        if off + k > 8 {
            self.buf.push(window as u8);
        }
        self.bits += k as usize;
    }

    /// One bit.
    pub fn write_bit(&mut self, bit: bool) {
        self.put_msb(u32::from(bit), 1);
    }

    /// The `n` (0..=32) low bits of `value` in `BitPack` order.
    pub fn write_bits(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32);
        let mut v = value;
        let mut left = n;
        while left >= 8 {
            self.put_msb(v & 0xFF, 8);
            v = v.checked_shr(8).unwrap_or(0);
            left -= 8;
        }
        if left > 0 {
            self.put_msb(v, left);
        }
    }

    /// An IEEE `f32` as 32 bits in `BitPack` order.
    pub fn write_f32(&mut self, value: f32) {
        self.write_bits(value.to_bits(), 32);
    }

    /// The bytes written; the last one is zero-padded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes out and leaves the writer empty.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        self.bits = 0;
        std::mem::take(&mut self.buf)
    }

    /// The bytes written; the last one is zero-padded.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ten_bit_field_is_low_byte_then_top_bits() {
        // 0x2AB = 10_1010_1011: low byte 0xAB first, then the two high bits "10".
        let mut w = BitWriter::new();
        w.write_bits(0x2AB, 10);
        assert_eq!(w.as_bytes(), &[0xAB, 0b1000_0000]);
        let mut r = BitReader::new(w.as_bytes());
        assert_eq!(r.read_bits(10).unwrap(), 0x2AB);
    }

    #[test]
    fn sixteen_bit_field_is_little_endian() {
        let mut w = BitWriter::new();
        w.write_bits(264, 16);
        w.write_bits(16, 8);
        w.write_bits(u32::from(b'L'), 8);
        assert_eq!(w.as_bytes(), &[0x08, 0x01, 0x10, 0x4C]);
    }

    #[test]
    fn fields_straddle_bytes_msb_first() {
        let mut w = BitWriter::new();
        w.write_bits(0b10, 2); // EOB code
        w.write_bits(0xFF, 8);
        w.write_bit(true);
        assert_eq!(w.as_bytes(), &[0b1011_1111, 0b1110_0000]);
        assert_eq!(w.bit_len(), 11);
        let mut r = BitReader::new(w.as_bytes());
        assert_eq!(r.read_bits(2).unwrap(), 2);
        assert_eq!(r.read_bits(8).unwrap(), 0xFF);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.remaining_bits(), 5);
    }

    #[test]
    fn running_out_is_an_error() {
        let mut r = BitReader::new(&[0xFF]);
        assert_eq!(r.read_bits(5).unwrap(), 0x1F);
        assert_eq!(
            r.read_bits(4),
            Err(MalformedError::OutOfBits {
                bit_offset: 5,
                needed: 4,
                available: 3
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.read_bits(3).unwrap(), 7);
        assert!(r.read_bit().is_err());
        assert!(BitReader::new(&[]).read_f32().is_err());
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in prop::collection::vec((any::<u32>(), 0u32..=32), 0..64)) {
            let mut w = BitWriter::new();
            for &(v, n) in &fields {
                w.write_bits(v, n);
            }
            let total: u32 = fields.iter().map(|&(_, n)| n).sum();
            prop_assert_eq!(w.bit_len(), total as usize);
            prop_assert_eq!(w.byte_len(), (total as usize).div_ceil(8));
            let mut r = BitReader::new(w.as_bytes());
            for &(v, n) in &fields {
                let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
                prop_assert_eq!(r.read_bits(n).unwrap(), v & mask);
            }
            prop_assert!(r.remaining_bits() < 8);
        }

        #[test]
        fn reader_matches_the_reference_algorithm(bytes in prop::collection::vec(any::<u8>(), 0..16), n in 0u32..=32, skip in 0usize..8) {
            // regions.md: out[byte_i] = out[byte_i] << 1 | next_bit(), byte_i advancing every 8 bits.
            let total = bytes.len() * 8;
            let mut r = BitReader::new(&bytes);
            if skip > total { return Ok(()); }
            for _ in 0..skip { r.read_bit().unwrap(); }
            let got = r.read_bits(n);
            if skip + n as usize > total {
                prop_assert!(got.is_err());
            } else {
                let mut out = [0u8; 4];
                for k in 0..n as usize {
                    let p = skip + k;
                    let bit = (bytes[p / 8] >> (7 - p % 8)) & 1;
                    out[k / 8] = (out[k / 8] << 1) | bit;
                }
                prop_assert_eq!(got.unwrap(), u32::from_le_bytes(out));
            }
        }
    }
}
