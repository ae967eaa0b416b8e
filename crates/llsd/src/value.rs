//! The LLSD value tree.

use std::net::{Ipv4Addr, SocketAddrV4};

use uuid::Uuid;

use crate::Date;

/// One LLSD value.
///
/// # Equality
///
/// `==` is structural and exact, so that a value survives every format round trip equal to
/// itself:
/// - reals compare by bit pattern, except that every NaN equals every other NaN (the text
///   formats write all NaNs as `nan`); in particular `0.0 != -0.0`;
/// - maps compare entry by entry **in order** (duplicates included), arrays element by
///   element; an `Integer(1)` never equals a `Real(1.0)` or a `Boolean(true)`.
///
/// This makes `Value` [`Eq`].
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// No value (`<undef/>`, `!`).
    #[default]
    Undef,
    /// A boolean.
    Boolean(bool),
    /// A 32-bit signed integer.
    Integer(i32),
    /// A 64-bit IEEE double.
    Real(f64),
    /// A UTF-8 string.
    String(String),
    /// A UUID.
    Uuid(Uuid),
    /// A point in time.
    Date(Date),
    /// A URI (kept as text, not validated).
    Uri(String),
    /// Raw bytes.
    Binary(Vec<u8>),
    /// String keys to values, in document order.
    Map(Map),
    /// A list of values.
    Array(Vec<Value>),
}

/// An LLSD map: string keys to values, keeping insertion (document) order.
///
/// Lookups are linear, which is fastest for the small maps LLSD is made of. Parsers keep every
/// entry, duplicate keys included; [`Map::get`] then answers with the **last** one (as python
/// `llsd` and OpenSimulator's readers do), and [`Map::insert`] replaces it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Map {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// The value of `key` (the last one if the key is duplicated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing (in place) and returning an existing value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Appends an entry without looking for an existing key (what the parsers do).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Removes every entry of `key`, returning the last value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let mut found = None;
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].0 == key {
                found = Some(self.entries.remove(i).1);
            } else {
                i += 1;
            }
        }
        found
    }

    /// Number of entries (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The entries as a slice.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// The entries as a vector.
    pub fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }
}

impl From<Vec<(String, Value)>> for Map {
    fn from(entries: Vec<(String, Value)>) -> Map {
        Map { entries }
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Map {
        Map {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    /// The value of `key`, or [`Value::Undef`] when absent.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&UNDEF)
    }
}

static UNDEF: Value = Value::Undef;

fn real_eq(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Undef, Undef) => true,
            (Boolean(a), Boolean(b)) => a == b,
            (Integer(a), Integer(b)) => a == b,
            (Real(a), Real(b)) => real_eq(*a, *b),
            (String(a), String(b)) | (Uri(a), Uri(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (Date(a), Date(b)) => a.secs_f64().to_bits() == b.secs_f64().to_bits(),
            (Binary(a), Binary(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Value {
    /// The name of this value's type as LLSD calls it (`"undef"`, `"integer"`, `"map"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undef => "undef",
            Value::Boolean(_) => "boolean",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::String(_) => "string",
            Value::Uuid(_) => "uuid",
            Value::Date(_) => "date",
            Value::Uri(_) => "uri",
            Value::Binary(_) => "binary",
            Value::Map(_) => "map",
            Value::Array(_) => "array",
        }
    }

    /// Whether this is [`Value::Undef`].
    pub fn is_undef(&self) -> bool {
        matches!(self, Value::Undef)
    }

    /// The boolean, if this is a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an `Integer`.
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The real, if this is a `Real`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(r) => Some(*r),
            _ => None,
        }
    }

    /// The text, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The text, if this is a `Uri`.
    pub fn as_uri(&self) -> Option<&str> {
        match self {
            Value::Uri(s) => Some(s),
            _ => None,
        }
    }

    /// The UUID, if this is a `Uuid`.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Value::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The date, if this is a `Date`.
    pub fn as_date(&self) -> Option<Date> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// The bytes, if this is a `Binary`.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is a `Map`.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The map, mutably, if this is a `Map`.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an `Array`.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value of `key` if this is a map holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.get(key)
    }

    /// Element `i` if this is an array that long.
    pub fn index(&self, i: usize) -> Option<&Value> {
        self.as_array()?.get(i)
    }

    /// Number of elements of an array or entries of a map; 0 for anything else.
    pub fn len(&self) -> usize {
        match self {
            Value::Array(a) => a.len(),
            Value::Map(m) => m.len(),
            _ => 0,
        }
    }

    /// Whether [`Value::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // Lenient views: producers disagree on how to encode the template's unsigned and address
    // types (caps.md section 4), so these accept every encoding seen in the wild.

    /// A `U32` field: an `Integer` (OpenSimulator writes `U32` as an LLSD integer, so negative
    /// values are reinterpreted: `-1` is `u32::MAX`) or a 4-byte big-endian `Binary` (Second
    /// Life style, and OpenSimulator's event queue). `Undef` (which is also what indexing a
    /// missing key gives) is `None`, like every other type.
    pub fn as_u32_lenient(&self) -> Option<u32> {
        match self {
            Value::Integer(i) => Some(*i as u32),
            Value::Binary(b) => Some(u32::from_be_bytes(b.as_slice().try_into().ok()?)),
            _ => None,
        }
    }

    /// A `U64` field: an 8-byte big-endian `Binary` (region handles), a 4-byte one, an
    /// `Integer` (reinterpreted as `u32`), or a `String` of decimal digits.
    pub fn as_u64_lenient(&self) -> Option<u64> {
        match self {
            Value::Binary(b) if b.len() == 8 => {
                Some(u64::from_be_bytes(b.as_slice().try_into().ok()?))
            }
            Value::Binary(b) if b.len() == 4 => {
                Some(u64::from(u32::from_be_bytes(b.as_slice().try_into().ok()?)))
            }
            Value::Integer(i) => Some(u64::from(*i as u32)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A region handle: anything [`Value::as_u64_lenient`] takes, or an array of the two
    /// region-corner coordinates in metres (`[r256000, r256000]`, as in the login `home`
    /// string), combined as `x << 32 | y`.
    pub fn as_region_handle_lenient(&self) -> Option<u64> {
        if let Value::Array(a) = self {
            let [x, y] = a.as_slice() else { return None };
            let coord = |v: &Value| {
                let f = v.as_f64_lenient()?;
                (f >= 0.0 && f <= f64::from(u32::MAX) && f.fract() == 0.0).then_some(f as u64)
            };
            return Some(coord(x)? << 32 | coord(y)?);
        }
        self.as_u64_lenient()
    }

    /// An IPv4 address: a 4-byte `Binary` in network order (`IPADDR` fields such as
    /// `SimIP`), or a dotted-quad `String`.
    pub fn as_ipv4_lenient(&self) -> Option<Ipv4Addr> {
        match self {
            Value::Binary(b) => {
                let octets: [u8; 4] = b.as_slice().try_into().ok()?;
                Some(Ipv4Addr::from(octets))
            }
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A port (`IPPORT` fields): an `Integer` in 0..=65535, or a 2-byte big-endian `Binary`.
    pub fn as_port_lenient(&self) -> Option<u16> {
        match self {
            Value::Integer(i) => u16::try_from(*i).ok(),
            Value::Binary(b) => Some(u16::from_be_bytes(b.as_slice().try_into().ok()?)),
            _ => None,
        }
    }

    /// An `"a.b.c.d:port"` string, as in `EstablishAgentCommunication`'s `sim-ip-and-port`.
    pub fn as_socket_addr_lenient(&self) -> Option<SocketAddrV4> {
        self.as_str()?.trim().parse().ok()
    }

    /// A UUID given as a `Uuid` or as a `String` (hyphenated or not).
    pub fn as_uuid_lenient(&self) -> Option<Uuid> {
        match self {
            Value::Uuid(u) => Some(*u),
            Value::String(s) => Uuid::try_parse(s.trim()).ok(),
            _ => None,
        }
    }

    /// A number given as a `Real` or an `Integer` (some producers write whole reals as
    /// integers).
    pub fn as_f64_lenient(&self) -> Option<f64> {
        match self {
            Value::Real(r) => Some(*r),
            Value::Integer(i) => Some(f64::from(*i)),
            _ => None,
        }
    }

    /// An `S32` given as an `Integer` or a 4-byte big-endian `Binary`.
    pub fn as_i32_lenient(&self) -> Option<i32> {
        self.as_u32_lenient().map(|u| u as i32)
    }

    /// A boolean given as a `Boolean` or an `Integer` (non-zero is true).
    pub fn as_bool_lenient(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            Value::Integer(i) => Some(*i != 0),
            _ => None,
        }
    }

    /// A vector (`LLVector3`): an array of three numbers (reals or integers).
    pub fn as_vec3_lenient(&self) -> Option<[f64; 3]> {
        let [x, y, z] = self.as_array()? else {
            return None;
        };
        Some([
            x.as_f64_lenient()?,
            y.as_f64_lenient()?,
            z.as_f64_lenient()?,
        ])
    }

    /// A quaternion or colour: an array of four numbers.
    pub fn as_vec4_lenient(&self) -> Option<[f64; 4]> {
        let [x, y, z, w] = self.as_array()? else {
            return None;
        };
        Some([
            x.as_f64_lenient()?,
            y.as_f64_lenient()?,
            z.as_f64_lenient()?,
            w.as_f64_lenient()?,
        ])
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;
    /// The value of `key`, or [`Value::Undef`] when this is not a map holding it.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&UNDEF)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;
    /// Element `i`, or [`Value::Undef`] when this is not an array that long.
    fn index(&self, i: usize) -> &Value {
        Value::index(self, i).unwrap_or(&UNDEF)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Boolean(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Integer(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Value {
        Value::Uuid(v)
    }
}
impl From<Date> for Value {
    fn from(v: Date) -> Value {
        Value::Date(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Binary(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Binary(v.to_vec())
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value::Map(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes [`Value::Undef`].
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Undef, Into::into)
    }
}
impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Value {
        Value::Array(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn equality_rules() {
        assert_eq!(Value::Real(f64::NAN), Value::Real(-f64::NAN));
        assert_eq!(
            Value::Real(f64::NAN),
            Value::Real(f64::from_bits(0x7ff0_0000_0000_0001))
        );
        assert_ne!(Value::Real(0.0), Value::Real(-0.0));
        assert_ne!(Value::Integer(1), Value::Real(1.0));
        assert_ne!(Value::String("a".into()), Value::Uri("a".into()));
        let a: Map = [("a", 1), ("b", 2)].into_iter().collect();
        let b: Map = [("b", 2), ("a", 1)].into_iter().collect();
        assert_ne!(Value::Map(a), Value::Map(b));
    }

    #[test]
    fn map_duplicates_and_index() {
        let mut m = Map::new();
        m.push("k", 1);
        m.push("k", 2);
        assert_eq!(m.get("k"), Some(&Value::Integer(2)));
        assert_eq!(m.insert("k", 3), Some(Value::Integer(2)));
        assert_eq!(m.entries()[0].1, Value::Integer(1));
        assert_eq!(m.remove("k"), Some(Value::Integer(3)));
        assert!(m.is_empty());
        let v = Value::Array(vec![Value::Map(
            [("x", Value::from("y"))].into_iter().collect(),
        )]);
        assert_eq!(v[0]["x"].as_str(), Some("y"));
        assert!(v[1]["x"].is_undef());
        assert!(v["nope"][7].is_undef());
    }

    #[test]
    fn lenient_views() {
        assert_eq!(Value::Integer(-1).as_u32_lenient(), Some(u32::MAX));
        assert_eq!(Value::Binary(vec![0, 0, 1, 2]).as_u32_lenient(), Some(258));
        assert_eq!(Value::Binary(vec![0, 1, 2]).as_u32_lenient(), None);
        assert_eq!(Value::Undef.as_u32_lenient(), None);
        assert_eq!(Value::Integer(-2).as_i32_lenient(), Some(-2));
        assert_eq!(Value::Integer(2).as_bool_lenient(), Some(true));
        let handle = 1_099_511_628_032_000u64;
        assert_eq!(
            Value::Binary(handle.to_be_bytes().to_vec()).as_u64_lenient(),
            Some(handle)
        );
        assert_eq!(
            Value::String(handle.to_string()).as_u64_lenient(),
            Some(handle)
        );
        let arr = Value::Array(vec![Value::Real(256_000.0), Value::Real(256_000.0)]);
        assert_eq!(arr.as_region_handle_lenient(), Some(handle));
        assert_eq!(
            Value::Binary(vec![127, 0, 0, 1]).as_ipv4_lenient(),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            Value::from("10.1.2.3").as_ipv4_lenient(),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(Value::Integer(9001).as_port_lenient(), Some(9001));
        assert_eq!(Value::Integer(70_000).as_port_lenient(), None);
        assert_eq!(
            Value::from("127.0.0.1:9000").as_socket_addr_lenient(),
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000))
        );
        let id = Uuid::from_u128(0xaaaaaaaa_bbbb_4ccc_8ddd_000000000001);
        assert_eq!(
            Value::from("aaaaaaaa-bbbb-4ccc-8ddd-000000000001").as_uuid_lenient(),
            Some(id)
        );
        assert_eq!(Value::Integer(3).as_f64_lenient(), Some(3.0));
        let v3 = Value::Array(vec![Value::Real(1.0), Value::Integer(0), Value::Real(0.5)]);
        assert_eq!(v3.as_vec3_lenient(), Some([1.0, 0.0, 0.5]));
        assert_eq!(Value::Array(vec![]).as_vec3_lenient(), None);
    }
}
