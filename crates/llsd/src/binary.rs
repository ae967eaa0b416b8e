//! The binary format (`application/llsd+binary`).

use uuid::Uuid;

use crate::error::{Budget, Error, Limits, capacity_hint};
use crate::text::{check_trailing, describe_byte, into_string, read_delimited, skip_header};
use crate::{Date, Map, Value};

/// The header line some writers put before a binary document (the viewer's spelling).
pub const BINARY_HEADER: &[u8] = b"<? llsd/binary ?>\n";

/// Parses a binary LLSD document (header optional) with the default [`Limits`].
pub fn from_binary(data: &[u8]) -> Result<Value, Error> {
    from_binary_with_limits(data, Limits::default())
}

/// Parses a binary LLSD document (header optional) within `limits`.
///
/// Trailing whitespace or NUL bytes after the value are accepted; anything else is
/// [`Error::TrailingData`].
pub fn from_binary_with_limits(data: &[u8], limits: Limits) -> Result<Value, Error> {
    let pos = skip_header(data, b"llsd/binary").unwrap_or(0);
    let mut p = Parser {
        data,
        pos,
        budget: Budget::new(limits),
    };
    let v = p.value()?;
    check_trailing(data, p.pos)?;
    Ok(v)
}

/// Serializes `value` as binary LLSD, without a header (what HTTP bodies and assets use).
pub fn to_binary(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_binary_into(value, &mut out);
    out
}

/// Serializes `value` as binary LLSD preceded by [`BINARY_HEADER`].
pub fn to_binary_with_header(value: &Value) -> Vec<u8> {
    let mut out = BINARY_HEADER.to_vec();
    write_binary_into(value, &mut out);
    out
}

/// Appends the binary form of `value` (no header) to `out`.
///
/// Strings and binaries longer than `u32::MAX` bytes cannot be represented and are cut.
pub fn write_binary_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Undef => out.push(b'!'),
        Value::Boolean(b) => out.push(if *b { b'1' } else { b'0' }),
        Value::Integer(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Real(r) => {
            out.push(b'r');
            out.extend_from_slice(&r.to_be_bytes());
        }
        Value::Uuid(u) => {
            out.push(b'u');
            out.extend_from_slice(u.as_bytes());
        }
        Value::String(s) => sized(out, b's', s.as_bytes()),
        Value::Uri(s) => sized(out, b'l', s.as_bytes()),
        Value::Binary(b) => sized(out, b'b', b),
        // Viewer and libomv write the date unswapped (little-endian), unlike every other field.
        Value::Date(d) => {
            out.push(b'd');
            out.extend_from_slice(&d.secs_f64().to_le_bytes());
        }
        Value::Array(a) => {
            out.push(b'[');
            out.extend_from_slice(&len32(a.len()).to_be_bytes());
            for v in a {
                write_binary_into(v, out);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            out.extend_from_slice(&len32(m.len()).to_be_bytes());
            for (k, v) in m {
                sized(out, b'k', k.as_bytes());
                write_binary_into(v, out);
            }
            out.push(b'}');
        }
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn sized(out: &mut Vec<u8>, marker: u8, bytes: &[u8]) {
    let n = len32(bytes.len());
    out.push(marker);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&bytes[..n as usize]);
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    budget: Budget,
}

impl<'a> Parser<'a> {
    fn take(&mut self, n: usize, expected: &'static str) -> Result<&'a [u8], Error> {
        if self.data.len() - self.pos < n {
            return Err(Error::UnexpectedEof {
                pos: self.data.len(),
                expected,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self, expected: &'static str) -> Result<[u8; N], Error> {
        let s = self.take(N, expected)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn byte(&mut self, expected: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, expected)?[0])
    }

    fn len32(&mut self) -> Result<usize, Error> {
        Ok(u32::from_be_bytes(self.fixed::<4>("a 4-byte length")?) as usize)
    }

    /// A u32-length-prefixed byte run; the length is checked against the input before use.
    fn sized(&mut self, expected: &'static str) -> Result<(&'a [u8], usize), Error> {
        let at = self.pos;
        let n = self.len32()?;
        Ok((self.take(n, expected)?, at))
    }

    fn sized_string(&mut self, kind: &'static str) -> Result<String, Error> {
        let (bytes, at) = self.sized("string bytes")?;
        self.budget.check_string(bytes.len(), at)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| Error::InvalidValue {
                pos: at,
                kind,
                reason: format!("invalid UTF-8: {e}"),
            })
    }

    fn quoted_string(&mut self, delim: u8) -> Result<String, Error> {
        let at = self.pos;
        let (bytes, end) = read_delimited(self.data, self.pos, delim)?;
        self.pos = end;
        into_string(bytes, &self.budget, at, "string")
    }

    // Containers recurse through `value`, so it stays tiny; scalars are parsed out of line to
    // keep the per-level stack frame small (it matters in debug builds).
    fn value(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let marker = self.byte("a value")?;
        self.budget.element(start)?;
        match marker {
            b'[' => self.array(start),
            b'{' => self.map(start),
            _ => self.scalar(marker, start),
        }
    }

    #[inline(never)]
    fn scalar(&mut self, marker: u8, start: usize) -> Result<Value, Error> {
        Ok(match marker {
            b'!' => Value::Undef,
            b'1' => Value::Boolean(true),
            b'0' => Value::Boolean(false),
            b'i' => Value::Integer(i32::from_be_bytes(self.fixed("4 integer bytes")?)),
            b'r' => Value::Real(f64::from_be_bytes(self.fixed("8 real bytes")?)),
            b'u' => Value::Uuid(Uuid::from_bytes(self.fixed("16 uuid bytes")?)),
            b's' => Value::String(self.sized_string("string")?),
            b'l' => Value::Uri(self.sized_string("uri")?),
            // Quoted strings are a viewer extension of the binary format.
            b'\'' | b'"' => Value::String(self.quoted_string(marker)?),
            b'b' => {
                let (bytes, at) = self.sized("binary bytes")?;
                self.budget.check_binary(bytes.len(), at)?;
                Value::Binary(bytes.to_vec())
            }
            b'd' => {
                let secs = f64::from_le_bytes(self.fixed("8 date bytes")?);
                Value::Date(
                    Date::from_secs_f64(secs).ok_or_else(|| Error::InvalidValue {
                        pos: start,
                        kind: "date",
                        reason: format!("{secs} seconds is not a date between years 1 and 9999"),
                    })?,
                )
            }
            other => {
                return Err(Error::Syntax {
                    pos: start,
                    expected: "a value marker",
                    found: describe_byte(other),
                });
            }
        })
    }

    fn array(&mut self, start: usize) -> Result<Value, Error> {
        self.budget.enter(start)?;
        let count = self.len32()?;
        let mut items = Vec::with_capacity(capacity_hint(
            count,
            self.data.len() - self.pos,
            &self.budget,
        ));
        for _ in 0..count {
            items.push(self.value()?);
        }
        self.close(b']', "']' closing an array")?;
        self.budget.leave();
        Ok(Value::Array(items))
    }

    fn map(&mut self, start: usize) -> Result<Value, Error> {
        self.budget.enter(start)?;
        let count = self.len32()?;
        // Each entry takes at least 6 bytes: 'k', a length and a one-byte value.
        let hint = capacity_hint(count, (self.data.len() - self.pos) / 6, &self.budget);
        let mut map = Map::with_capacity(hint);
        while let Some(key) = self.key(map.len() == count)? {
            map.push(key, self.value()?);
        }
        self.budget.leave();
        Ok(Value::Map(map))
    }

    #[inline(never)]
    fn close(&mut self, byte: u8, expected: &'static str) -> Result<(), Error> {
        let at = self.pos;
        match self.byte(expected)? {
            b if b == byte => Ok(()),
            other => Err(Error::Syntax {
                pos: at,
                expected,
                found: describe_byte(other),
            }),
        }
    }

    /// The next map key, or `None` at the closing `}`.
    #[inline(never)]
    fn key(&mut self, all_read: bool) -> Result<Option<String>, Error> {
        let at = self.pos;
        let key = match self.byte("a map key or '}'")? {
            b'k' => self.sized_string("map key")?,
            q @ (b'\'' | b'"') => self.quoted_string(q)?,
            // python `llsd` and the viewer stop at '}' even before the announced count.
            b'}' => return Ok(None),
            other => {
                return Err(Error::Syntax {
                    pos: at,
                    expected: "a map key ('k')",
                    found: describe_byte(other),
                });
            }
        };
        if all_read {
            return Err(Error::Syntax {
                pos: at,
                expected: "'}' closing a map",
                found: "another key".into(),
            });
        }
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::LimitKind;

    #[test]
    fn scalars_and_header() {
        let mut doc = BINARY_HEADER.to_vec();
        doc.extend_from_slice(b"[\0\0\0\x03i\xff\xff\xff\xfe!1]");
        let v = from_binary(&doc).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![Value::Integer(-2), Value::Undef, Value::Boolean(true)])
        );
        assert_eq!(
            from_binary(b"<?llsd/binary?>\n0").unwrap(),
            Value::Boolean(false)
        );
        assert_eq!(to_binary(&v), doc[BINARY_HEADER.len()..]);
        assert_eq!(to_binary_with_header(&v), doc);
    }

    #[test]
    fn date_is_little_endian() {
        let d = Date::from_unix_secs(1_138_804_193).unwrap();
        let bytes = to_binary(&Value::Date(d));
        assert_eq!(bytes[0], b'd');
        assert_eq!(bytes[1..], 1_138_804_193f64.to_le_bytes());
        let mut bad = vec![b'd'];
        bad.extend_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(
            from_binary(&bad),
            Err(Error::InvalidValue { kind: "date", .. })
        ));
    }

    #[test]
    fn map_keys_and_early_close() {
        let doc = b"{\0\0\0\x02k\0\0\0\x01ai\0\0\0\x01'b'\"x\"}";
        let v = from_binary(doc).unwrap();
        assert_eq!(v["a"], Value::Integer(1));
        assert_eq!(v["b"].as_str(), Some("x"));
        // Announces 5 entries but closes after none.
        assert_eq!(
            from_binary(b"{\0\0\0\x05}").unwrap(),
            Value::Map(Map::new())
        );
        // Announces 0 entries but has one.
        assert!(matches!(
            from_binary(b"{\0\0\0\0k\0\0\0\x01a!}"),
            Err(Error::Syntax { .. })
        ));
    }

    #[test]
    fn hostile_lengths() {
        // A 4 GiB string announced in 9 bytes: rejected without allocating.
        assert!(matches!(
            from_binary(b"s\xff\xff\xff\xffabcd"),
            Err(Error::UnexpectedEof {
                expected: "string bytes",
                ..
            })
        ));
        // Four billion array elements announced.
        assert!(matches!(
            from_binary(b"[\xff\xff\xff\xff!!"),
            Err(Error::UnexpectedEof { .. })
        ));
        let limits = Limits::default().with_max_binary_len(3);
        assert!(matches!(
            from_binary_with_limits(b"b\0\0\0\x04abcd", limits),
            Err(Error::LimitExceeded {
                limit: LimitKind::BinaryLen,
                ..
            })
        ));
        let deep: Vec<u8> = std::iter::repeat_n(*b"[\0\0\0\x01", 65).flatten().collect();
        assert!(matches!(
            from_binary(&deep),
            Err(Error::LimitExceeded {
                limit: LimitKind::Depth,
                ..
            })
        ));
        assert!(matches!(
            from_binary(b"!x"),
            Err(Error::TrailingData { pos: 1 })
        ));
        assert_eq!(from_binary(b"!\0\n").unwrap(), Value::Undef);
        assert!(matches!(
            from_binary(b"s\0\0\0\x02\xc3\x28"),
            Err(Error::InvalidValue { kind: "string", .. })
        ));
        assert!(matches!(
            from_binary(b"Z"),
            Err(Error::Syntax { pos: 0, .. })
        ));
        assert!(matches!(
            from_binary(b""),
            Err(Error::UnexpectedEof { pos: 0, .. })
        ));
    }
}
