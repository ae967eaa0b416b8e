//! Field codecs shared by every generated message: a bounds-checked [`Reader`], the writers,
//! and the [`Visitor`] that walks decoded fields for dumps and JSON.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes};

use crate::Blocks;
use glam::{DVec3, Quat, Vec3, Vec4};
use uuid::Uuid;

/// A message body that does not match the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body ended before a field the template requires.
    #[error("body truncated at byte {at}: {needed} more bytes needed, {available} left")]
    Truncated {
        /// Offset in the body where the read started.
        at: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A Variable block count promises more instances than the remaining bytes can hold.
    #[error(
        "block count {count} at byte {at} needs at least {needed} bytes, only {available} left"
    )]
    CountTooLarge {
        /// Offset of the count byte.
        at: usize,
        /// The count that was read.
        count: usize,
        /// The least number of bytes that many instances take.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
}

/// A message that cannot be written as the template requires (an API misuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A Variable field is longer than its length prefix can say.
    #[error("variable field of {len} bytes exceeds its {max}-byte limit")]
    FieldTooLong {
        /// The field's length.
        len: usize,
        /// The most its prefix allows.
        max: usize,
    },
    /// A Variable block has more than 255 instances.
    #[error("variable block with {count} instances exceeds 255")]
    TooManyBlocks {
        /// The number of instances.
        count: usize,
    },
}

/// A bounds-checked cursor over a message body.
///
/// Variable fields are returned as [`Bytes`]: sliced without copying when the reader was made
/// with [`Reader::with_backing`], copied otherwise.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    backing: Option<&'a Bytes>,
    omitted_blocks: u8,
}

impl<'a> Reader<'a> {
    /// A reader over a borrowed body; Variable fields are copied out.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            backing: None,
            omitted_blocks: 0,
        }
    }

    /// A reader over a shared buffer; Variable fields are zero-copy slices of it.
    #[inline]
    pub fn with_backing(bytes: &'a Bytes) -> Self {
        Reader {
            buf: bytes,
            pos: 0,
            backing: Some(bytes),
            omitted_blocks: 0,
        }
    }

    /// A reader over `range` of a shared buffer (offsets count from the range's start);
    /// `None` when the range is not inside the buffer.
    ///
    /// Spares the caller a `Bytes::slice` (a reference-count round trip) of the body.
    #[inline]
    pub fn with_backing_range(bytes: &'a Bytes, range: std::ops::Range<usize>) -> Option<Self> {
        Some(Reader {
            buf: bytes.get(range)?,
            pos: 0,
            backing: Some(bytes),
            omitted_blocks: 0,
        })
    }

    /// The offset of the next byte to read.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// How many trailing Variable blocks were absent from the wire (read as empty).
    #[inline]
    pub fn omitted_blocks(&self) -> u8 {
        self.omitted_blocks
    }

    /// Takes every remaining byte.
    #[inline]
    pub fn rest(&mut self) -> Bytes {
        let n = self.buf.len() - self.pos;
        if n == 0 {
            // The usual case: no trailing bytes, and nothing to copy or share.
            return Bytes::new();
        }
        // Cannot fail: exactly the remaining length is taken.
        self.raw(n).unwrap_or_default()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                at: self.pos,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes the `N` bytes of a run of fixed-size fields with one bounds check.
    ///
    /// `sizes` are the sizes of the run's fields in order (they add up to `N`): when the body
    /// is too short, the error names the field that does not fit, exactly as reading the
    /// fields one by one would.
    #[inline]
    pub fn fixed_run<const N: usize>(
        &mut self,
        sizes: &[usize],
    ) -> Result<&'a [u8; N], DecodeError> {
        let buf: &'a [u8] = self.buf;
        match buf.get(self.pos..).and_then(<[u8]>::first_chunk::<N>) {
            Some(run) => {
                self.pos += N;
                Ok(run)
            }
            None => Err(self.run_truncated(sizes)),
        }
    }

    #[cold]
    #[inline(never)]
    fn run_truncated(&self, sizes: &[usize]) -> DecodeError {
        let mut at = self.pos;
        let end = self.buf.len();
        for &needed in sizes {
            if at + needed > end {
                return DecodeError::Truncated {
                    at,
                    needed,
                    available: end - at,
                };
            }
            at += needed;
        }
        // Unreachable when `sizes` add up to the run's length; say so through the run.
        DecodeError::Truncated {
            at: self.pos,
            needed: sizes.iter().sum(),
            available: end - self.pos,
        }
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// Reads `n` raw bytes (sliced from the backing buffer when there is one).
    #[inline]
    pub fn raw(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let s = self.take(n)?;
        Ok(match self.backing {
            Some(b) => b.slice_ref(s),
            None => Bytes::copy_from_slice(s),
        })
    }

    /// Reads a U8.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// Reads a little-endian U16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take_array().map(u16::from_le_bytes)
    }
    /// Reads a little-endian U32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take_array().map(u32::from_le_bytes)
    }
    /// Reads a little-endian U64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take_array().map(u64::from_le_bytes)
    }
    /// Reads an S8.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        self.take_array().map(i8::from_le_bytes)
    }
    /// Reads a little-endian S16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.take_array().map(i16::from_le_bytes)
    }
    /// Reads a little-endian S32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.take_array().map(i32::from_le_bytes)
    }
    /// Reads a little-endian S64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.take_array().map(i64::from_le_bytes)
    }
    /// Reads a little-endian F32.
    pub fn f32(&mut self) -> Result<f32, DecodeError> {
        self.take_array().map(f32::from_le_bytes)
    }
    /// Reads a little-endian F64.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.take_array().map(f64::from_le_bytes)
    }
    /// Reads an LLVector3.
    pub fn vec3(&mut self) -> Result<Vec3, DecodeError> {
        Ok(Vec3::new(self.f32()?, self.f32()?, self.f32()?))
    }
    /// Reads an LLVector3d.
    pub fn dvec3(&mut self) -> Result<DVec3, DecodeError> {
        Ok(DVec3::new(self.f64()?, self.f64()?, self.f64()?))
    }
    /// Reads an LLVector4.
    pub fn vec4(&mut self) -> Result<Vec4, DecodeError> {
        Ok(Vec4::new(
            self.f32()?,
            self.f32()?,
            self.f32()?,
            self.f32()?,
        ))
    }
    /// Reads an LLQuaternion (three floats) and recovers W.
    pub fn quat(&mut self) -> Result<Quat, DecodeError> {
        let (x, y, z) = (self.f32()?, self.f32()?, self.f32()?);
        Ok(Quat::from_xyzw(x, y, z, recover_w(x, y, z)))
    }
    /// Reads an LLUUID.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.take_array().map(Uuid::from_bytes)
    }
    /// Reads a BOOL (non-zero is true).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }
    /// Reads an IPADDR (network order).
    pub fn ipaddr(&mut self) -> Result<Ipv4Addr, DecodeError> {
        self.take_array::<4>().map(Ipv4Addr::from)
    }
    /// Reads an IPPORT (big-endian, the one big-endian integer in bodies).
    pub fn ipport(&mut self) -> Result<u16, DecodeError> {
        self.take_array().map(u16::from_be_bytes)
    }
    /// Reads a `Fixed N` field.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take_array()
    }
    /// Reads a `Variable 1` field (u8 length, then bytes).
    pub fn var1(&mut self) -> Result<Bytes, DecodeError> {
        let n = usize::from(self.u8()?);
        self.raw(n)
    }
    /// Reads a `Variable 2` field (little-endian u16 length, then bytes).
    pub fn var2(&mut self) -> Result<Bytes, DecodeError> {
        let n = usize::from(self.u16()?);
        self.raw(n)
    }

    /// Reads `N` instances of a Multiple block.
    pub fn array<T: Default, const N: usize>(
        &mut self,
        mut decode: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<[T; N], DecodeError> {
        let mut out: [T; N] = std::array::from_fn(|_| T::default());
        for slot in &mut out {
            *slot = decode(self)?;
        }
        Ok(out)
    }

    /// Reads a Variable block whose instances are all `N` bytes, with one bounds check for
    /// them all; errors and an absent trailing count are as for [`Reader::blocks`].
    // Inlined for the usual zero or one instance; more go through `collect_runs`.
    #[inline]
    pub fn fixed_blocks<const N: usize, T>(
        &mut self,
        decode: impl Fn(&[u8; N]) -> T,
    ) -> Result<Blocks<T>, DecodeError> {
        let Some(count) = self.block_count(N)? else {
            return Ok(Blocks::new());
        };
        // Cannot fail: `block_count` checked that `count` instances of `N` bytes are left.
        let bytes = self.take(count * N)?;
        let (runs, _) = bytes.as_chunks::<N>();
        Ok(match runs {
            [] => Blocks::new(),
            [one] => Blocks::one(decode(one)),
            _ => collect_runs(runs, decode),
        })
    }

    /// Reads a Variable block: a count, then that many instances of at least `min_size` bytes.
    ///
    /// A count missing at the very end of the body reads as zero (senders drop empty trailing
    /// blocks); the reader remembers it so that re-encoding can drop it again.
    pub fn blocks<T>(
        &mut self,
        min_size: usize,
        mut decode: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Blocks<T>, DecodeError> {
        let Some(count) = self.block_count(min_size)? else {
            return Ok(Blocks::new());
        };
        match count {
            0 => Ok(Blocks::new()),
            // The usual case, held inline: no allocation.
            1 => Ok(Blocks::one(decode(self)?)),
            _ => {
                let mut out = Vec::with_capacity(count);
                for _ in 0..count {
                    out.push(decode(self)?);
                }
                Ok(out.into())
            }
        }
    }

    /// Reads a Variable block's count, checked against the bytes left for instances of at
    /// least `min_size` bytes; `None` when the count is absent at the very end of the body.
    #[inline]
    fn block_count(&mut self, min_size: usize) -> Result<Option<usize>, DecodeError> {
        if self.pos == self.buf.len() {
            self.omitted_blocks = self.omitted_blocks.saturating_add(1);
            return Ok(None);
        }
        let at = self.pos;
        let count = usize::from(self.u8()?);
        let available = self.buf.len() - self.pos;
        let needed = count * min_size;
        if needed > available {
            return Err(DecodeError::CountTooLarge {
                at,
                count,
                needed,
                available,
            });
        }
        Ok(Some(count))
    }
}

/// Decodes two or more fixed-size instances into a `Vec`.
#[inline(never)]
fn collect_runs<const N: usize, T>(runs: &[[u8; N]], decode: impl Fn(&[u8; N]) -> T) -> Blocks<T> {
    runs.iter().map(decode).collect::<Vec<T>>().into()
}

/// `K` bytes at offset `at` of a fixed-size run (offsets come from the template, so they are
/// always inside the run).
#[inline(always)]
pub fn at<const N: usize, const K: usize>(run: &[u8; N], at: usize) -> [u8; K] {
    let mut a = [0u8; K];
    a.copy_from_slice(&run[at..at + K]);
    a
}

/// An F32 at offset `at` of a fixed-size run.
#[inline(always)]
pub fn f32_at<const N: usize>(run: &[u8; N], at: usize) -> f32 {
    f32::from_le_bytes(self::at(run, at))
}

/// An LLVector3 at offset `at` of a fixed-size run.
#[inline(always)]
pub fn vec3_at<const N: usize>(run: &[u8; N], at: usize) -> Vec3 {
    Vec3::new(f32_at(run, at), f32_at(run, at + 4), f32_at(run, at + 8))
}

/// An LLVector3d at offset `at` of a fixed-size run.
#[inline(always)]
pub fn dvec3_at<const N: usize>(run: &[u8; N], at: usize) -> DVec3 {
    let f = |i: usize| f64::from_le_bytes(self::at(run, at + i));
    DVec3::new(f(0), f(8), f(16))
}

/// An LLVector4 at offset `at` of a fixed-size run.
#[inline(always)]
pub fn vec4_at<const N: usize>(run: &[u8; N], at: usize) -> Vec4 {
    Vec4::new(
        f32_at(run, at),
        f32_at(run, at + 4),
        f32_at(run, at + 8),
        f32_at(run, at + 12),
    )
}

/// An LLQuaternion at offset `at` of a fixed-size run, W recovered.
#[inline(always)]
pub fn quat_at<const N: usize>(run: &[u8; N], at: usize) -> Quat {
    let (x, y, z) = (f32_at(run, at), f32_at(run, at + 4), f32_at(run, at + 8));
    Quat::from_xyzw(x, y, z, recover_w(x, y, z))
}

/// An IPADDR at offset `at` of a fixed-size run.
#[inline(always)]
pub fn ipaddr_at<const N: usize>(run: &[u8; N], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(self::at::<N, 4>(run, at))
}

/// W of a unit quaternion from X, Y, Z, as the viewer and OpenSimulator recover it.
pub fn recover_w(x: f32, y: f32, z: f32) -> f32 {
    let t = 1.0 - x * x - y * y - z * z;
    if t > 0.0 { t.sqrt() } else { 0.0 }
}

/// Writes an LLVector3.
pub fn put_vec3<B: BufMut + ?Sized>(w: &mut B, v: Vec3) {
    w.put_f32_le(v.x);
    w.put_f32_le(v.y);
    w.put_f32_le(v.z);
}

/// Writes an LLVector3d.
pub fn put_dvec3<B: BufMut + ?Sized>(w: &mut B, v: DVec3) {
    w.put_f64_le(v.x);
    w.put_f64_le(v.y);
    w.put_f64_le(v.z);
}

/// Writes an LLVector4.
pub fn put_vec4<B: BufMut + ?Sized>(w: &mut B, v: Vec4) {
    w.put_f32_le(v.x);
    w.put_f32_le(v.y);
    w.put_f32_le(v.z);
    w.put_f32_le(v.w);
}

/// Writes an LLQuaternion: X, Y, Z of the form with W >= 0 (q and -q are the same rotation).
///
/// The quaternion is not renormalised, so a decoded value re-encodes to the same bytes.
pub fn put_quat<B: BufMut + ?Sized>(w: &mut B, q: Quat) {
    let q = if q.w < 0.0 { -q } else { q };
    w.put_f32_le(q.x);
    w.put_f32_le(q.y);
    w.put_f32_le(q.z);
}

/// Writes a `Variable 1` field.
///
/// # Errors
/// When the field is longer than 255 bytes.
pub fn put_var1<B: BufMut + ?Sized>(w: &mut B, b: &[u8]) -> Result<(), EncodeError> {
    let len = u8::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong {
        len: b.len(),
        max: 255,
    })?;
    w.put_u8(len);
    w.put_slice(b);
    Ok(())
}

/// Writes a `Variable 2` field.
///
/// # Errors
/// When the field is longer than 65535 bytes.
pub fn put_var2<B: BufMut + ?Sized>(w: &mut B, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong {
        len: b.len(),
        max: 65535,
    })?;
    w.put_u16_le(len);
    w.put_slice(b);
    Ok(())
}

/// Writes the count byte of a Variable block.
///
/// # Errors
/// When there are more than 255 instances.
pub fn put_count<B: BufMut + ?Sized>(w: &mut B, count: usize) -> Result<(), EncodeError> {
    let c = u8::try_from(count).map_err(|_| EncodeError::TooManyBlocks { count })?;
    w.put_u8(c);
    Ok(())
}

/// A decoded field value, borrowed from its message, for dumps and JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FieldValue<'a> {
    /// U8.
    U8(u8),
    /// U16.
    U16(u16),
    /// U32.
    U32(u32),
    /// U64.
    U64(u64),
    /// S8.
    S8(i8),
    /// S16.
    S16(i16),
    /// S32.
    S32(i32),
    /// S64.
    S64(i64),
    /// F32.
    F32(f32),
    /// F64.
    F64(f64),
    /// LLVector3.
    Vector3(Vec3),
    /// LLVector3d.
    Vector3d(DVec3),
    /// LLVector4.
    Vector4(Vec4),
    /// LLQuaternion, with W recovered.
    Quaternion(Quat),
    /// LLUUID.
    Uuid(Uuid),
    /// BOOL.
    Bool(bool),
    /// IPADDR.
    IpAddr(Ipv4Addr),
    /// IPPORT.
    IpPort(u16),
    /// `Fixed N` bytes.
    Fixed(&'a [u8]),
    /// `Variable 1` or `Variable 2` bytes.
    Variable(&'a [u8]),
}

/// Receives a message's blocks and fields in wire order (see `Message::visit`).
pub trait Visitor {
    /// A block begins, with the number of instances that follow.
    fn block(&mut self, name: &'static str, count: usize);
    /// Instance `index` of the current block begins.
    fn instance(&mut self, index: usize);
    /// One field of the current instance.
    fn field(&mut self, name: &'static str, value: FieldValue<'_>);
}

/// The text of a Variable field that holds a string: UTF-8, one trailing NUL dropped.
pub fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let b = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    String::from_utf8_lossy(b)
}

/// Bytes for a string Variable field, NUL-terminated as OpenSimulator and the viewer send it.
pub fn string_field(s: &str) -> Bytes {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn truncated_reads_are_errors() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert_eq!(
            r.u32(),
            Err(DecodeError::Truncated {
                at: 2,
                needed: 4,
                available: 1
            })
        );
    }

    #[test]
    fn block_count_bounded_by_remaining_bytes() {
        // 200 instances of 16 bytes cannot fit in 3 bytes: refused before allocating.
        let mut r = Reader::new(&[200, 0, 0, 0]);
        let e = r.blocks(16, |r| r.uuid()).unwrap_err();
        assert!(matches!(e, DecodeError::CountTooLarge { count: 200, .. }));
    }

    #[test]
    fn fixed_blocks_read_exactly_as_blocks_do() {
        let from_run = |b: &[u8; 4]| u32::from_le_bytes(*b);
        let inputs: [&[u8]; 7] = [
            &[],
            &[0],
            &[0, 9],
            &[1, 1, 2, 3, 4, 5],
            &[3, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
            &[3, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0],
            &[255, 1, 2, 3],
        ];
        for input in inputs {
            let (mut a, mut b) = (Reader::new(input), Reader::new(input));
            let fixed = a.fixed_blocks::<4, _>(from_run);
            let general = b.blocks(4, |r| r.u32());
            assert_eq!(fixed, general, "{input:?}");
            assert_eq!(a.position(), b.position(), "{input:?}");
            assert_eq!(a.omitted_blocks(), b.omitted_blocks(), "{input:?}");
        }
        let mut r = Reader::new(&[2, 7, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(r.fixed_blocks::<4, _>(from_run).unwrap(), [7, 8]);
    }

    #[test]
    fn missing_trailing_count_is_an_omitted_empty_block() {
        let mut r = Reader::new(&[]);
        assert!(r.blocks(4, |r| r.u32()).unwrap().is_empty());
        assert_eq!(r.omitted_blocks(), 1);
    }

    #[test]
    fn ipport_is_big_endian_and_var2_length_little_endian() {
        let mut r = Reader::new(&[0x1F, 0x90, 2, 0, b'h', b'i']);
        assert_eq!(r.ipport().unwrap(), 8080);
        assert_eq!(&r.var2().unwrap()[..], b"hi");
    }

    #[test]
    fn quaternion_w_recovered_and_sign_normalised() {
        let q = Quat::from_xyzw(0.0, 0.6, 0.0, -0.8);
        let mut out = Vec::new();
        put_quat(&mut out, q);
        let back = Reader::new(&out).quat().unwrap();
        assert!((back.y + 0.6).abs() < 1e-6 && (back.w - 0.8).abs() < 1e-6);
    }

    #[test]
    fn zero_copy_slices_share_the_backing_buffer() {
        let buf = Bytes::from_static(&[3, b'a', b'b', b'c']);
        let mut r = Reader::with_backing(&buf);
        let v = r.var1().unwrap();
        assert_eq!(v.as_ptr(), buf[1..].as_ptr());
    }

    #[test]
    fn var_fields_refuse_overlong_input() {
        let long = vec![0u8; 256];
        assert!(put_var1(&mut Vec::new(), &long).is_err());
        assert!(put_var2(&mut Vec::new(), &long).is_ok());
        assert_eq!(text(b"hello\0"), "hello");
    }
}
