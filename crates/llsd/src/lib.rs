//! LLSD (Linden Lab Structured Data): the value tree that Second Life and OpenSimulator
//! exchange over HTTP capabilities, the event queue and the login service, with parsers and
//! serializers for its three encodings.
//!
//! - [`Value`] is the tree (undef, boolean, integer, real, string, uuid, [`Date`], uri,
//!   binary, [`Map`], array), with plain accessors (`as_i32`, `get`, `v["key"][0]`, ...) and
//!   lenient views for fields that producers encode differently (`as_u32_lenient`,
//!   `as_u64_lenient`, `as_ipv4_lenient`, ...: see caps.md, section 4).
//! - XML ([`from_xml`], [`to_xml`]), binary ([`from_binary`], [`to_binary`]) and notation
//!   ([`from_notation`], [`to_notation`]); [`detect_and_parse`] sniffs the format and
//!   [`from_content_type`] dispatches on an HTTP `Content-Type`.
//! - Parsing is safe on hostile input: every length is checked against the remaining input
//!   before use, nesting depth, element count and string/binary sizes are bounded by
//!   [`Limits`] (`from_*_with_limits`), and failures are typed [`Error`]s with a byte offset.
//!   Every value a parser returns serializes and parses back equal (see [`Value`]'s equality)
//!   in every format, except that XML cannot carry most control characters, U+FFFE and U+FFFF
//!   (they are left out of strings when writing XML).
//!
//! ```
//! use opensim_llsd::{Value, from_xml, to_notation};
//!
//! let body = br#"<llsd><map><key>events</key><array><map>
//!     <key>message</key><string>TeleportFinish</string>
//!     <key>body</key><map><key>Info</key><array><map>
//!       <key>SimIP</key><binary>fwAAAQ==</binary><key>SimPort</key><integer>9001</integer>
//!       <key>RegionHandle</key><binary>AAPqAAAD6AA=</binary>
//!     </map></array></map></map></array><key>id</key><integer>4616082</integer></map></llsd>"#;
//! let reply = from_xml(body)?;
//! let info = &reply["events"][0]["body"]["Info"][0];
//! assert_eq!(info["SimIP"].as_ipv4_lenient(), Some([127, 0, 0, 1].into()));
//! assert_eq!(info["SimPort"].as_port_lenient(), Some(9001));
//! assert_eq!(info["RegionHandle"].as_u64_lenient(), Some(1_101_710_651_287_552));
//!
//! let ack = Value::Map([("ack", Value::from(4616082)), ("done", false.into())].into_iter().collect());
//! assert_eq!(to_notation(&ack), b"{'ack':i4616082,'done':0}");
//! # Ok::<(), opensim_llsd::Error>(())
//! ```

#![forbid(unsafe_code)]

mod binary;
mod date;
mod error;
mod notation;
mod text;
mod value;
mod xml;

use std::io;

pub use binary::{
    BINARY_HEADER, from_binary, from_binary_with_limits, to_binary, to_binary_with_header,
    write_binary_into,
};
pub use date::{Date, DateParseError};
pub use error::{Error, LimitKind, Limits};
pub use notation::{from_notation, from_notation_with_limits, to_notation, write_notation_into};
pub use uuid::Uuid;
pub use value::{Map, Value};
pub use xml::{XML_DECLARATION, from_xml, from_xml_with_limits, to_xml, write_xml_into};

/// One of the three LLSD encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/llsd+xml`.
    Xml,
    /// `application/llsd+binary`.
    Binary,
    /// `application/llsd+notation`.
    Notation,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Xml, Format::Binary, Format::Notation];

    /// The MIME type to send this format under.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/llsd+xml",
            Format::Binary => "application/llsd+binary",
            Format::Notation => "application/llsd+notation",
        }
    }

    /// The format an HTTP `Content-Type` names (parameters such as `; charset=utf-8` and case
    /// are ignored): the three LLSD types plus `application/llsd`, `application/xml` and
    /// `text/xml` (OpenSimulator answers event-queue polls as `application/xml`). `None` for
    /// anything else.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        let is = |m: &str| mime.eq_ignore_ascii_case(m);
        if is("application/llsd+xml")
            || is("application/xml")
            || is("text/xml")
            || is("application/llsd")
        {
            Some(Format::Xml)
        } else if is("application/llsd+binary") {
            Some(Format::Binary)
        } else if is("application/llsd+notation") {
            Some(Format::Notation)
        } else {
            None
        }
    }

    /// Guesses the format of a document: a binary or notation header, then `<` for XML, a
    /// binary container (`[` or `{` followed by a NUL, the high byte of its count, which
    /// notation never has), else notation.
    pub fn detect(data: &[u8]) -> Format {
        if text::skip_header(data, b"llsd/binary").is_some() {
            return Format::Binary;
        }
        if text::skip_header(data, b"llsd/notation").is_some() {
            return Format::Notation;
        }
        let i = text::skip_ws(data, 0);
        match data.get(i..) {
            Some([b'<', ..]) => Format::Xml,
            Some([b'[' | b'{', 0, ..]) => Format::Binary,
            _ => Format::Notation,
        }
    }
}

/// Parses `data` in `format` with the default [`Limits`].
pub fn parse(format: Format, data: &[u8]) -> Result<Value, Error> {
    parse_with_limits(format, data, Limits::default())
}

/// Parses `data` in `format` within `limits`.
pub fn parse_with_limits(format: Format, data: &[u8], limits: Limits) -> Result<Value, Error> {
    match format {
        Format::Xml => from_xml_with_limits(data, limits),
        Format::Binary => from_binary_with_limits(data, limits),
        Format::Notation => from_notation_with_limits(data, limits),
    }
}

/// Serializes `value` in `format` (binary without header).
pub fn serialize(format: Format, value: &Value) -> Vec<u8> {
    match format {
        Format::Xml => to_xml(value),
        Format::Binary => to_binary(value),
        Format::Notation => to_notation(value),
    }
}

/// Writes `value` in `format` to `writer` (binary without header).
pub fn write(format: Format, value: &Value, mut writer: impl io::Write) -> io::Result<()> {
    writer.write_all(&serialize(format, value))
}

/// Parses a document of unknown format (see [`Format::detect`]) with the default [`Limits`].
pub fn detect_and_parse(data: &[u8]) -> Result<Value, Error> {
    detect_and_parse_with_limits(data, Limits::default())
}

/// Parses a document of unknown format (see [`Format::detect`]) within `limits`.
pub fn detect_and_parse_with_limits(data: &[u8], limits: Limits) -> Result<Value, Error> {
    parse_with_limits(Format::detect(data), data, limits)
}

/// Parses an HTTP body according to its `Content-Type`, with the default [`Limits`].
///
/// LLSD types dispatch directly ([`Format::from_content_type`]). A missing type, `text/*`
/// or `application/octet-stream` is sniffed instead, because real servers label LLSD
/// loosely (OpenSimulator answers the seed capability as `text/html`). Any other type is
/// [`Error::UnsupportedContentType`].
pub fn from_content_type(content_type: &str, data: &[u8]) -> Result<Value, Error> {
    from_content_type_with_limits(content_type, data, Limits::default())
}

/// [`from_content_type`] within `limits`.
pub fn from_content_type_with_limits(
    content_type: &str,
    data: &[u8],
    limits: Limits,
) -> Result<Value, Error> {
    if let Some(format) = Format::from_content_type(content_type) {
        return parse_with_limits(format, data, limits);
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() || mime.starts_with("text/") || mime == "application/octet-stream" {
        detect_and_parse_with_limits(data, limits)
    } else {
        Err(Error::UnsupportedContentType(content_type.to_owned()))
    }
}

impl std::fmt::Display for Value {
    /// The notation form of the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&to_notation(self)))
    }
}

/// Checks behind the fuzz targets, public so that unit tests run them too. Not an API.
#[doc(hidden)]
pub mod fuzz_support {
    use crate::{Format, Limits, Value, parse_with_limits, serialize};

    /// `value` as an XML round trip gives it back (characters XML cannot carry removed).
    pub fn xml_representable(value: &Value) -> Value {
        crate::xml::xml_representable(value)
    }

    /// Parses `data` as `format`; on success, serializes the value in every format, parses
    /// that back and asserts it is equal (and that serializing again is byte-identical).
    ///
    /// # Panics
    /// When a round trip does not give the same value: a bug.
    pub fn check(format: Format, data: &[u8]) {
        let Ok(value) = parse_with_limits(format, data, Limits::default()) else {
            return;
        };
        // Exercise the accessors on arbitrary trees; they must not panic.
        let _ = (
            value.as_u64_lenient(),
            value.as_region_handle_lenient(),
            value.as_vec3_lenient(),
        );
        let _ = value.to_string();
        for out_format in Format::ALL {
            let bytes = serialize(out_format, &value);
            let back = match parse_with_limits(out_format, &bytes, Limits::default()) {
                Ok(v) => v,
                Err(e) => panic!(
                    "{format:?} value does not parse back from {out_format:?}: {e}\n{value:?}"
                ),
            };
            let expected = if out_format == Format::Xml {
                xml_representable(&value)
            } else {
                value.clone()
            };
            assert_eq!(
                back, expected,
                "{format:?} -> {out_format:?} round trip changed the value"
            );
            assert_eq!(
                serialize(out_format, &back),
                bytes,
                "{out_format:?} serialization is not stable"
            );
        }
    }

    /// Fuzz body for the XML parser.
    pub fn xml(data: &[u8]) {
        check(Format::Xml, data);
    }

    /// Fuzz body for the binary parser.
    pub fn binary(data: &[u8]) {
        check(Format::Binary, data);
    }

    /// Fuzz body for the notation parser.
    pub fn notation(data: &[u8]) {
        check(Format::Notation, data);
    }
}

/// Fuzz targets (built only under `cfg(fuzzing)`, as cargo-fuzz sets it).
#[cfg(fuzzing)]
pub mod fuzz {
    pub use crate::fuzz_support::{binary, notation, xml};
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(Format::detect(b"<?xml version='1.0'?><llsd/>"), Format::Xml);
        assert_eq!(Format::detect(b"  <llsd/>"), Format::Xml);
        assert_eq!(Format::detect(b"<? llsd/binary ?>\n!"), Format::Binary);
        assert_eq!(Format::detect(b"<?llsd/notation?>!"), Format::Notation);
        assert_eq!(Format::detect(b"{\0\0\0\0}"), Format::Binary);
        assert_eq!(Format::detect(b"{'a':i1}"), Format::Notation);
        assert_eq!(Format::detect(b""), Format::Notation);
        let v = Value::Array(vec![Value::Integer(1), Value::from("x")]);
        for f in Format::ALL {
            assert_eq!(detect_and_parse(&serialize(f, &v)).unwrap(), v, "{f:?}");
        }
        assert_eq!(detect_and_parse(&to_binary_with_header(&v)).unwrap(), v);
    }

    #[test]
    fn content_types() {
        let v = Value::Map([("a", Value::Integer(1))].into_iter().collect());
        assert_eq!(
            from_content_type("application/llsd+xml", &to_xml(&v)).unwrap(),
            v
        );
        assert_eq!(
            from_content_type("Application/XML; charset=utf-8", &to_xml(&v)).unwrap(),
            v
        );
        assert_eq!(
            from_content_type("application/llsd+binary", &to_binary(&v)).unwrap(),
            v
        );
        assert_eq!(
            from_content_type("application/llsd+notation", &to_notation(&v)).unwrap(),
            v
        );
        assert_eq!(
            from_content_type("text/html;charset=UTF-8", &to_xml(&v)).unwrap(),
            v
        );
        assert_eq!(from_content_type("", &to_notation(&v)).unwrap(), v);
        assert!(matches!(
            from_content_type("image/x-j2c", b"x"),
            Err(Error::UnsupportedContentType(_))
        ));
        // The declared type wins over sniffing.
        assert!(from_content_type("application/llsd+binary", &to_xml(&v)).is_err());
        for f in Format::ALL {
            assert_eq!(Format::from_content_type(f.content_type()), Some(f));
        }
    }

    #[test]
    fn display_is_notation() {
        let v = Value::Array(vec![Value::Real(1.0), Value::Undef]);
        assert_eq!(v.to_string(), "[r1.0,!]");
        let mut out = Vec::new();
        write(Format::Notation, &v, &mut out).unwrap();
        assert_eq!(out, b"[r1.0,!]");
    }

    #[test]
    fn fuzz_bodies_on_tricky_inputs() {
        let xml: &[&[u8]] = &[
            b"<llsd><string>\r\n&#xD;&amp;</string></llsd>",
            b"<llsd><real>-0.0</real></llsd>",
            b"<llsd><real>nan</real></llsd>",
            b"<llsd><date>1969-12-31T23:59:59.999999999Z</date></llsd>",
            b"<llsd><map><key>a</key><undef/><key>a</key><integer>4294967295</integer></map></llsd>",
            b"<llsd><binary encoding=\"base16\">ff</binary></llsd>",
            b"<llsd><array><![CDATA[x]]></array></llsd>",
            b"<llsd><string>\xff</string></llsd>",
            b"<llsd>",
            b"",
        ];
        let binary: &[&[u8]] = &[
            b"s\0\0\0\x01\x01",
            b"r\x7f\xf8\0\0\0\0\0\x01",
            b"r\x80\0\0\0\0\0\0\0",
            b"d\0\0\0\0\0\0\xf0\x7f",
            b"[\0\0\0\x02'a\\x00'\"\xc3\xa9\"]",
            b"{\0\0\0\x01k\0\0\0\x01\x0bi\0\0\0\0}",
            b"{\xff\xff\xff\xff}",
            b"[\xff\xff\xff\xff",
            b"<? llsd/binary ?>\nl\0\0\0\x02\x1f\x7f",
        ];
        let notation: &[&[u8]] = &[
            b"'\\x00\\x01\\r\\n'",
            b"[r-0.0,rnan,r-inf,r1e308,r5e-324]",
            b"d\"0001-01-01T00:00:00Z\"",
            b"d\"9999-12-31T23:59:59.99999999999Z\"",
            b"{'a':!,'a':s(1)\"\x1f\"}",
            b"b(3)\"\0\0\0\"",
            b"[[[[[[[[",
            b"u00000000-0000-0000-0000-00000000000",
            b"i-2147483648",
        ];
        for d in xml {
            fuzz_support::xml(d);
        }
        for d in binary {
            fuzz_support::binary(d);
        }
        for d in notation {
            fuzz_support::notation(d);
        }
        // Cross-feed every input to every parser as well.
        for d in xml.iter().chain(binary).chain(notation) {
            fuzz_support::xml(d);
            fuzz_support::binary(d);
            fuzz_support::notation(d);
        }
    }
}
