//! A bounds-checked little-endian cursor over the binary payloads nested inside messages.

use bytes::Bytes;
use glam::{Quat, Vec3, Vec4};
use uuid::Uuid;

use crate::error::{Error, Malformed};

/// Reads from a byte slice; sub-slices are returned as zero-copy [`Bytes`] when a backing
/// buffer was given.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    backing: Option<&'a Bytes>,
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor {
            buf,
            backing: None,
            pos: 0,
            what,
        }
    }

    pub(crate) fn with_backing(buf: &'a Bytes, what: &'static str) -> Self {
        Cursor {
            buf,
            backing: Some(buf),
            pos: 0,
            what,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, needed: usize) -> Error {
        Malformed::Truncated {
            what: self.what,
            at: self.pos,
            needed,
            available: self.remaining(),
        }
        .into()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.take(N)?;
        let mut a = [0; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// `n` bytes as shared [`Bytes`] (a slice of the backing buffer, or a copy).
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, Error> {
        let start = self.pos;
        let s = self.take(n)?;
        Ok(match self.backing {
            Some(b) => b.slice(start..start + n),
            None => Bytes::copy_from_slice(s),
        })
    }

    /// Every byte left.
    pub(crate) fn rest(&mut self) -> Bytes {
        let n = self.remaining();
        self.bytes(n).unwrap_or_default()
    }

    /// A NUL-terminated string's bytes (without the NUL); the NUL is consumed.
    pub(crate) fn cstr(&mut self) -> Result<Bytes, Error> {
        let rest = &self.buf[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == 0) else {
            return Err(self.truncated(rest.len() + 1));
        };
        let s = self.bytes(n)?;
        self.pos += 1;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i8(&mut self) -> Result<i8, Error> {
        Ok(self.array::<1>()?[0] as i8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, Error> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    pub(crate) fn vec3(&mut self) -> Result<Vec3, Error> {
        let a: [u8; 12] = self.array()?;
        Ok(vec3_from(&a))
    }

    pub(crate) fn vec4(&mut self) -> Result<Vec4, Error> {
        let x = self.f32()?;
        let y = self.f32()?;
        let z = self.f32()?;
        let w = self.f32()?;
        Ok(Vec4::new(x, y, z, w))
    }

    /// An LLQuaternion sent as X, Y, Z (W recovered).
    pub(crate) fn quat3(&mut self) -> Result<Quat, Error> {
        let v = self.vec3()?;
        Ok(quat_from_xyz(v))
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, Error> {
        Ok(Uuid::from_bytes(self.array()?))
    }
}

pub(crate) fn vec3_from(a: &[u8; 12]) -> Vec3 {
    let f = |i: usize| f32::from_le_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    Vec3::new(f(0), f(4), f(8))
}

/// The rotation whose X, Y, Z are `v`, with W >= 0 recovered as the viewer does.
pub(crate) fn quat_from_xyz(v: Vec3) -> Quat {
    let w = opensim_messages::codec::recover_w(v.x, v.y, v.z);
    Quat::from_xyzw(v.x, v.y, v.z, w)
}

/// X, Y, Z of the form of `q` with W >= 0 (q and -q are the same rotation).
pub(crate) fn quat_xyz(q: Quat) -> Vec3 {
    let q = if q.w < 0.0 { -q } else { q };
    Vec3::new(q.x, q.y, q.z)
}

pub(crate) fn put_vec3(out: &mut Vec<u8>, v: Vec3) {
    out.extend_from_slice(&v.x.to_le_bytes());
    out.extend_from_slice(&v.y.to_le_bytes());
    out.extend_from_slice(&v.z.to_le_bytes());
}

pub(crate) fn put_vec4(out: &mut Vec<u8>, v: Vec4) {
    put_vec3(out, v.truncate());
    out.extend_from_slice(&v.w.to_le_bytes());
}

/// Bytes of a string wire field: empty stays empty, anything else gets its NUL.
pub(crate) fn nul_terminated(s: &[u8]) -> Bytes {
    if s.is_empty() {
        return Bytes::new();
    }
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s);
    v.push(0);
    Bytes::from(v)
}

/// A received string field without its trailing NUL (zero-copy).
pub(crate) fn strip_nul(b: &Bytes) -> Bytes {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    b.slice(..end)
}

/// Checks a Variable field's length against its prefix.
pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        Err(crate::error::Misuse::FieldTooLong { what, len, max }.into())
    } else {
        Ok(())
    }
}
