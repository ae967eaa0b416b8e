//! An encoding-neutral value, so that the XML-RPC and LLSD login forms share one parser.

use std::collections::BTreeMap;
use uuid::Uuid;

/// A member value of a login request or answer, whichever encoding carried it.
///
/// XML-RPC has no UUID, so UUIDs arrive as [`LoginValue::String`]; LLSD gives
/// [`LoginValue::Uuid`]. The accessors accept both, and integers written as strings (the
/// LLSD answers of OpenSimulator write every member of the nested structs as a string).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LoginValue {
    /// XML-RPC `<nil/>` / LLSD `undef`.
    Nil,
    /// `<boolean>`.
    Bool(bool),
    /// `<i4>`, `<int>` or `<i8>`.
    Int(i64),
    /// `<double>`.
    Real(f64),
    /// `<string>` (or an untyped `<value>`).
    String(String),
    /// LLSD `uuid` (never produced by the XML-RPC decoder).
    Uuid(Uuid),
    /// `<dateTime.iso8601>`, kept as its text.
    Date(String),
    /// `<base64>`, decoded.
    Binary(Vec<u8>),
    /// `<array>`.
    Array(Vec<LoginValue>),
    /// `<struct>`.
    Map(BTreeMap<String, LoginValue>),
}

impl LoginValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, also from a decimal string (some grids quote numbers).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The boolean, also from `0`/`1` integers and the strings `true`/`false`/`Y`/`N`/`1`/`0`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::Int(0) => Some(false),
            Self::Int(1) => Some(true),
            Self::String(s) => match s.trim() {
                "true" | "True" | "Y" | "y" | "1" => Some(true),
                "false" | "False" | "N" | "n" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The UUID, from an LLSD uuid or an 8-4-4-4-12 (or 32-digit) string.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Self::Uuid(u) => Some(*u),
            Self::String(s) => Uuid::try_parse(s.trim()).ok(),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[LoginValue]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members, if this is a map.
    pub fn as_map(&self) -> Option<&BTreeMap<String, LoginValue>> {
        match self {
            Self::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The member `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&LoginValue> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A short name of the kind of value, for error messages (never the value itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Real(_) => "a real",
            Self::String(_) => "a string",
            Self::Uuid(_) => "a uuid",
            Self::Date(_) => "a date",
            Self::Binary(_) => "binary",
            Self::Array(_) => "an array",
            Self::Map(_) => "a struct",
        }
    }
}

impl From<&str> for LoginValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for LoginValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for LoginValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for LoginValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for LoginValue {
    fn from(i: i32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<LoginValue> for opensim_llsd::Value {
    /// The LLSD form. LLSD integers are 32-bit: a wider [`LoginValue::Int`] becomes its
    /// decimal string (which [`LoginValue::as_i64`] reads back); a [`LoginValue::Date`] that
    /// is not ISO 8601 stays a string.
    fn from(v: LoginValue) -> Self {
        use opensim_llsd::Value as L;
        match v {
            LoginValue::Nil => L::Undef,
            LoginValue::Bool(b) => L::Boolean(b),
            LoginValue::Int(i) => match i32::try_from(i) {
                Ok(small) => L::Integer(small),
                Err(_) => L::String(i.to_string()),
            },
            LoginValue::Real(r) => L::Real(r),
            LoginValue::String(s) => L::String(s),
            LoginValue::Uuid(u) => L::Uuid(u),
            LoginValue::Date(d) => match opensim_llsd::Date::parse_iso8601(&d) {
                Some(date) => L::Date(date),
                None => L::String(d),
            },
            LoginValue::Binary(b) => L::Binary(b),
            LoginValue::Array(a) => L::Array(a.into_iter().map(Into::into).collect()),
            LoginValue::Map(m) => L::Map(
                m.into_iter()
                    .map(|(k, v)| (k, opensim_llsd::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<opensim_llsd::Value> for LoginValue {
    /// The encoding-neutral form: `uri` becomes a string, a `date` its ISO 8601 text, and of
    /// duplicate map keys the last one wins (as OpenSimulator's readers do).
    fn from(v: opensim_llsd::Value) -> Self {
        use opensim_llsd::Value as L;
        match v {
            L::Undef => Self::Nil,
            L::Boolean(b) => Self::Bool(b),
            L::Integer(i) => Self::Int(i64::from(i)),
            L::Real(r) => Self::Real(r),
            L::String(s) | L::Uri(s) => Self::String(s),
            L::Uuid(u) => Self::Uuid(u),
            L::Date(d) => Self::Date(d.to_string()),
            L::Binary(b) => Self::Binary(b),
            L::Array(a) => Self::Array(a.into_iter().map(Into::into).collect()),
            L::Map(m) => Self::Map(
                m.into_entries()
                    .into_iter()
                    .map(|(k, v)| (k, Self::from(v)))
                    .collect(),
            ),
        }
    }
}
