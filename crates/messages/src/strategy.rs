//! proptest strategies for field types and blocks (feature `arbitrary`).
//!
//! Values are chosen so that decode(encode(v)) == v exactly: floats are never NaN, and
//! quaternions carry the W the decoder recovers from X, Y, Z.

use std::net::Ipv4Addr;

use bytes::Bytes;
use glam::{DVec3, Quat, Vec3, Vec4};
use proptest::prelude::*;
use uuid::Uuid;

pub use crate::generated::arbitrary::message_strategy;

/// Any f32 but NaN (NaN != NaN would make equality checks meaningless).
pub fn f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("not NaN", |f| !f.is_nan())
}

/// Any f64 but NaN.
pub fn f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("not NaN", |f| !f.is_nan())
}

/// An LLVector3.
pub fn vec3() -> impl Strategy<Value = Vec3> {
    (f32(), f32(), f32()).prop_map(|(x, y, z)| Vec3::new(x, y, z))
}

/// An LLVector3d.
pub fn dvec3() -> impl Strategy<Value = DVec3> {
    (f64(), f64(), f64()).prop_map(|(x, y, z)| DVec3::new(x, y, z))
}

/// An LLVector4.
pub fn vec4() -> impl Strategy<Value = Vec4> {
    (f32(), f32(), f32(), f32()).prop_map(|(x, y, z, w)| Vec4::new(x, y, z, w))
}

/// A quaternion as it comes off the wire: X, Y, Z in [-1, 1] and W recovered from them.
pub fn quat() -> impl Strategy<Value = Quat> {
    (-1.0f32..=1.0, -1.0f32..=1.0, -1.0f32..=1.0)
        .prop_map(|(x, y, z)| Quat::from_xyzw(x, y, z, crate::codec::recover_w(x, y, z)))
}

/// An LLUUID.
pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(Uuid::from_bytes)
}

/// An IPADDR.
pub fn ipaddr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

/// A `Variable 1` field: 0 to 255 bytes.
pub fn var1() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=255).prop_map(Bytes::from)
}

/// A `Variable 2` field: up to 1500 bytes (more than a datagram, less than the 65535 limit).
pub fn var2() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=1500).prop_map(Bytes::from)
}

/// A `Fixed N` field.
pub fn fixed<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        a
    })
}

/// The N instances of a Multiple block.
pub fn array<T: Arbitrary + Default + 'static, const N: usize>() -> impl Strategy<Value = [T; N]> {
    proptest::collection::vec(any::<T>(), N).prop_map(|v| {
        let mut out: [T; N] = std::array::from_fn(|_| T::default());
        for (slot, x) in out.iter_mut().zip(v) {
            *slot = x;
        }
        out
    })
}

/// The instances of a Variable block: up to 4, which keeps random packets small.
pub fn blocks<T: Arbitrary + 'static>() -> impl Strategy<Value = crate::Blocks<T>> {
    proptest::collection::vec(any::<T>(), 0..=4).prop_map(|v| v.into_iter().collect())
}
