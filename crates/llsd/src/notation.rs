//! The notation format (`application/llsd+notation`): LLSD's compact text form.

use uuid::Uuid;

use crate::error::{Budget, Error, Limits, capacity_hint};
use crate::text::{
    BASE64, check_trailing, decode_base16, decode_base64, describe_byte, into_string, parse_f64,
    parse_i32, push_i32, push_quoted, push_real, read_delimited, skip_header,
};
use crate::{Date, Map, Value};

/// Parses a notation document (an optional `<? llsd/notation ?>` header, then one value)
/// with the default [`Limits`].
pub fn from_notation(data: &[u8]) -> Result<Value, Error> {
    from_notation_with_limits(data, Limits::default())
}

/// Parses a notation document within `limits`.
///
/// Accepts everything the viewer and python `llsd` write: `!`, `1`/`0`/`t`/`f`/`true`/`false`
/// (either case), `i-5`, `r1.5` (also `nan`, `inf`), `u<uuid>`, `'..'`/`".."` strings with
/// backslash escapes, `s(len)"raw"`, `l"uri"`, `d"ISO-8601"`, `b64".."`, `b16".."`,
/// `b(len)"raw"`, `[..]` and `{'key':..}` with optional whitespace and commas. Trailing
/// whitespace or NUL bytes are accepted; anything else after the value is
/// [`Error::TrailingData`].
pub fn from_notation_with_limits(data: &[u8], limits: Limits) -> Result<Value, Error> {
    let pos = skip_header(data, b"llsd/notation").unwrap_or(0);
    let mut p = Parser {
        data,
        pos,
        budget: Budget::new(limits),
    };
    let v = p.value()?;
    check_trailing(data, p.pos)?;
    Ok(v)
}

/// Serializes `value` as notation text.
pub fn to_notation(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_notation_into(value, &mut out);
    out
}

/// Appends the notation form of `value` to `out`. The text is always valid UTF-8.
pub fn write_notation_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Undef => out.push(b'!'),
        // The viewer's formatter writes 1/0 unless asked for words; every reader takes both.
        Value::Boolean(b) => out.push(if *b { b'1' } else { b'0' }),
        Value::Integer(i) => {
            out.push(b'i');
            push_i32(out, *i);
        }
        Value::Real(r) => {
            out.push(b'r');
            push_real(out, *r);
        }
        Value::Uuid(u) => {
            out.push(b'u');
            let mut buf = Uuid::encode_buffer();
            out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
        }
        Value::String(s) => push_quoted(out, s.as_bytes(), b'\''),
        Value::Uri(s) => {
            out.push(b'l');
            push_quoted(out, s.as_bytes(), b'"');
        }
        Value::Date(d) => {
            out.extend_from_slice(b"d\"");
            d.write_iso8601(out);
            out.push(b'"');
        }
        Value::Binary(b) => {
            use base64::Engine as _;
            out.extend_from_slice(b"b64\"");
            let start = out.len();
            out.resize(start + b.len().div_ceil(3) * 4, 0);
            let n = BASE64.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + n);
            out.push(b'"');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_notation_into(v, out);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_quoted(out, k.as_bytes(), b'\'');
                out.push(b':');
                write_notation_into(v, out);
            }
            out.push(b'}');
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    budget: Budget,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eof(&self, expected: &'static str) -> Error {
        Error::UnexpectedEof {
            pos: self.data.len(),
            expected,
        }
    }

    fn syntax(&self, at: usize, expected: &'static str) -> Error {
        match self.data.get(at) {
            Some(&b) => Error::Syntax {
                pos: at,
                expected,
                found: describe_byte(b),
            },
            None => self.eof(expected),
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), Error> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(self.pos, expected))
        }
    }

    /// The opening quote of a quoted token (`'` or `"`).
    fn quote(&mut self, expected: &'static str) -> Result<u8, Error> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                Ok(q)
            }
            _ => Err(self.syntax(self.pos, expected)),
        }
    }

    fn delimited(&mut self, delim: u8) -> Result<Vec<u8>, Error> {
        let (bytes, end) = read_delimited(self.data, self.pos, delim)?;
        self.pos = end;
        Ok(bytes)
    }

    /// `(len)` followed by a quote, `len` raw bytes and the same quote.
    fn sized_raw(&mut self, what: &'static str) -> Result<&'a [u8], Error> {
        self.expect(b'(', "'(' starting a length")?;
        let at = self.pos;
        let mut len: usize = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(b - b'0')))
                .ok_or_else(|| Error::InvalidValue {
                    pos: at,
                    kind: what,
                    reason: "length overflows".into(),
                })?;
            self.pos += 1;
        }
        if self.pos == at {
            return Err(self.syntax(at, "a decimal length"));
        }
        self.expect(b')', "')' ending a length")?;
        let q = self.quote("a quote after the length")?;
        if self.data.len() - self.pos < len {
            return Err(self.eof("as many raw bytes as the length says"));
        }
        let raw = &self.data[self.pos..self.pos + len];
        self.pos += len;
        self.expect(q, "the closing quote after the raw bytes")?;
        Ok(raw)
    }

    fn string_token(&mut self, first: u8, at: usize) -> Result<String, Error> {
        let bytes = match first {
            b'\'' | b'"' => self.delimited(first)?,
            _ => {
                let raw = self.sized_raw("string")?;
                self.budget.check_string(raw.len(), at)?;
                raw.to_vec()
            }
        };
        into_string(bytes, &self.budget, at, "string")
    }

    /// After `t`/`f`: the optional rest of `true`/`false`, in any case.
    fn bool_word(&mut self, rest: &[u8]) {
        if let Some(s) = self.data.get(self.pos..self.pos + rest.len())
            && s.eq_ignore_ascii_case(rest)
        {
            self.pos += rest.len();
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.eof("a value"));
        };
        self.pos += 1;
        self.budget.element(start)?;
        // Containers recurse through here, so scalars are parsed out of line to keep the
        // per-level stack frame small (it matters in debug builds).
        match c {
            b'[' => self.array(start),
            b'{' => self.map(start),
            _ => self.scalar(c, start),
        }
    }

    #[inline(never)]
    fn scalar(&mut self, c: u8, start: usize) -> Result<Value, Error> {
        Ok(match c {
            b'!' => Value::Undef,
            b'1' => Value::Boolean(true),
            b'0' => Value::Boolean(false),
            b't' | b'T' => {
                self.bool_word(b"rue");
                Value::Boolean(true)
            }
            b'f' | b'F' => {
                self.bool_word(b"alse");
                Value::Boolean(false)
            }
            b'i' => {
                let from = self.pos;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text = &self.data[from..self.pos];
                Value::Integer(parse_i32(text).ok_or_else(|| Error::InvalidValue {
                    pos: start,
                    kind: "integer",
                    reason: format!(
                        "{:?} is not a 32-bit integer",
                        String::from_utf8_lossy(text)
                    ),
                })?)
            }
            b'r' => {
                let from = self.pos;
                self.real_token();
                let text = &self.data[from..self.pos];
                Value::Real(parse_f64(text).ok_or_else(|| Error::InvalidValue {
                    pos: start,
                    kind: "real",
                    reason: format!("{:?} is not a number", String::from_utf8_lossy(text)),
                })?)
            }
            b'u' => {
                let Some(text) = self.data.get(self.pos..self.pos + 36) else {
                    return Err(self.eof("36 characters of a uuid"));
                };
                self.pos += 36;
                Value::Uuid(
                    Uuid::try_parse_ascii(text).map_err(|e| Error::InvalidValue {
                        pos: start,
                        kind: "uuid",
                        reason: e.to_string(),
                    })?,
                )
            }
            b'\'' | b'"' | b's' => Value::String(self.string_token(c, start)?),
            b'l' => {
                let q = self.quote("a quote after 'l'")?;
                let bytes = self.delimited(q)?;
                Value::Uri(into_string(bytes, &self.budget, start, "uri")?)
            }
            b'd' => {
                let q = self.quote("a quote after 'd'")?;
                let bytes = self.delimited(q)?;
                let date = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(Date::parse_iso8601);
                Value::Date(date.ok_or_else(|| Error::InvalidValue {
                    pos: start,
                    kind: "date",
                    reason: format!(
                        "{:?} is not an ISO-8601 date",
                        String::from_utf8_lossy(&bytes)
                    ),
                })?)
            }
            b'b' => self.binary(start)?,
            other => {
                return Err(Error::Syntax {
                    pos: start,
                    expected: "a value",
                    found: describe_byte(other),
                });
            }
        })
    }

    /// Skips the text of a real: a sign, then `nan`/`inf`-like letters or digits with an
    /// optional fraction and exponent (so that `[r1i2]` still reads as two values).
    fn real_token(&mut self) {
        let digit = |b: u8| b.is_ascii_digit();
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        if self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                self.pos += 1;
            }
            return;
        }
        while self.peek().is_some_and(|b| digit(b) || b == b'.') {
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            while self.peek().is_some_and(digit) {
                self.pos += 1;
            }
        }
    }

    fn binary(&mut self, start: usize) -> Result<Value, Error> {
        if self.peek() == Some(b'(') {
            let raw = self.sized_raw("binary")?;
            self.budget.check_binary(raw.len(), start)?;
            return Ok(Value::Binary(raw.to_vec()));
        }
        let base = self.data.get(self.pos..self.pos + 2);
        let decode = match base {
            Some(b"64") => decode_base64,
            Some(b"16") => decode_base16,
            Some(b"85") => {
                return Err(Error::InvalidValue {
                    pos: start,
                    kind: "binary",
                    reason: "base85 is not supported".into(),
                });
            }
            _ => return Err(self.syntax(self.pos, "'64', '16' or '(' after 'b'")),
        };
        self.pos += 2;
        let q = self.quote("a quote starting encoded binary")?;
        let Some(len) = self.data[self.pos..].iter().position(|&b| b == q) else {
            return Err(self.eof("the closing quote of encoded binary"));
        };
        let encoded = &self.data[self.pos..self.pos + len];
        self.pos += len + 1;
        Ok(Value::Binary(decode(encoded, &self.budget, start)?))
    }

    /// Skips whitespace and commas; returns whether `close` came next (and consumed it).
    fn separator_or(&mut self, close: u8) -> bool {
        while let Some(b) = self.peek() {
            if b == close {
                self.pos += 1;
                return true;
            }
            if b != b',' && !b.is_ascii_whitespace() {
                break;
            }
            self.pos += 1;
        }
        false
    }

    fn array(&mut self, start: usize) -> Result<Value, Error> {
        self.budget.enter(start)?;
        // Every element takes at least two bytes (the value and a separator).
        let mut items = Vec::with_capacity(capacity_hint(
            16,
            (self.data.len() - self.pos) / 2,
            &self.budget,
        ));
        loop {
            if self.separator_or(b']') {
                break;
            }
            if self.pos == self.data.len() {
                return Err(self.eof("']' closing an array"));
            }
            items.push(self.value()?);
        }
        self.budget.leave();
        Ok(Value::Array(items))
    }

    fn map(&mut self, start: usize) -> Result<Value, Error> {
        self.budget.enter(start)?;
        let mut map = Map::new();
        loop {
            if self.separator_or(b'}') {
                break;
            }
            let at = self.pos;
            let key = match self.peek() {
                Some(c @ (b'\'' | b'"' | b's')) => {
                    self.pos += 1;
                    self.string_token(c, at)?
                }
                _ => return Err(self.syntax(at, "a quoted map key or '}'")),
            };
            self.skip_ws();
            self.expect(b':', "':' after a map key")?;
            map.push(key, self.value()?);
        }
        self.budget.leave();
        Ok(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::LimitKind;

    fn p(s: &str) -> Value {
        from_notation(s.as_bytes()).unwrap()
    }

    #[test]
    fn login_home_string() {
        // The shape OpenSimulator's login answer gives `home` (login.md section 2).
        let v = p(
            "{'region_handle':[r256000,r256000], 'position':[r128.5,r128,r30], 'look_at':[r1,r0,r0]}",
        );
        assert_eq!(
            v["region_handle"].as_region_handle_lenient(),
            Some(256_000u64 << 32 | 256_000)
        );
        assert_eq!(v["position"].as_vec3_lenient(), Some([128.5, 128.0, 30.0]));
        assert_eq!(p("[r1,r0,r0]").as_vec3_lenient(), Some([1.0, 0.0, 0.0]));
    }

    #[test]
    fn every_token() {
        let v = p(concat!(
            "<? llsd/notation ?>\n[!,1,0,t,f,T,F,true,false,TRUE,FALSE,i-5,i+7,r1.5,r-inf,rnan,",
            "u6b3f1b62-2f6a-4d5e-8a8a-0c1d0e1d0000,'it\\'s',\"q\\\"\\x41\\n\",s(3)\"a\"b\",",
            "l\"http://x/\",d\"2006-02-01T14:29:53Z\",b64\"AAEC\",b16\"0a0B\",b(2)\"\"\"\",{}]"
        ));
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 26);
        assert_eq!(a[0], Value::Undef);
        assert_eq!(
            a[1..11]
                .iter()
                .filter_map(Value::as_bool)
                .collect::<Vec<_>>(),
            [
                true, false, true, false, true, false, true, false, true, false
            ]
        );
        assert_eq!(a[11], Value::Integer(-5));
        assert_eq!(a[12], Value::Integer(7));
        assert_eq!(a[13], Value::Real(1.5));
        assert_eq!(a[14], Value::Real(f64::NEG_INFINITY));
        assert!(a[15].as_f64().unwrap().is_nan());
        assert_eq!(
            a[16].as_uuid().unwrap().to_string(),
            "6b3f1b62-2f6a-4d5e-8a8a-0c1d0e1d0000"
        );
        assert_eq!(a[17].as_str(), Some("it's"));
        assert_eq!(a[18].as_str(), Some("q\"A\n"));
        assert_eq!(a[19].as_str(), Some("a\"b"));
        assert_eq!(a[20].as_uri(), Some("http://x/"));
        assert_eq!(a[21].as_date().unwrap().secs_f64(), 1_138_804_193.0);
        assert_eq!(a[22].as_binary(), Some(&[0u8, 1, 2][..]));
        assert_eq!(a[23].as_binary(), Some(&[10u8, 11][..]));
        assert_eq!(a[24].as_binary(), Some(&b"\"\""[..]));
        assert_eq!(a[25], Value::Map(Map::new()));
        assert_eq!(from_notation(&to_notation(&v)).unwrap(), v);
    }

    #[test]
    fn writer_output() {
        let mut m = Map::new();
        m.push(
            "a'b",
            Value::Array(vec![
                Value::Integer(1),
                Value::Real(0.5),
                Value::Boolean(true),
            ]),
        );
        m.push("u", Value::Uri("http://h/\"".into()));
        assert_eq!(
            to_notation(&Value::Map(m)),
            b"{'a\\'b':[i1,r0.5,1],'u':l\"http://h/\\\"\"}"
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            from_notation(b""),
            Err(Error::UnexpectedEof { .. })
        ));
        assert!(matches!(
            from_notation(b"[i1,"),
            Err(Error::UnexpectedEof { .. })
        ));
        assert!(matches!(
            from_notation(b"i99999999999"),
            Err(Error::InvalidValue {
                kind: "integer",
                ..
            })
        ));
        assert!(matches!(
            from_notation(b"i"),
            Err(Error::InvalidValue {
                kind: "integer",
                ..
            })
        ));
        assert!(matches!(
            from_notation(b"rx"),
            Err(Error::InvalidValue { kind: "real", .. })
        ));
        assert!(matches!(
            from_notation(b"uxyz"),
            Err(Error::UnexpectedEof { .. })
        ));
        assert!(matches!(
            from_notation(b"s(99999999999999999999999)\"\""),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            from_notation(b"s(100)\"abc\""),
            Err(Error::UnexpectedEof { .. })
        ));
        assert!(matches!(
            from_notation(b"{a:1}"),
            Err(Error::Syntax { pos: 1, .. })
        ));
        assert!(matches!(
            from_notation(b"{'a' 1}"),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            from_notation(b"b85\"\""),
            Err(Error::InvalidValue { kind: "binary", .. })
        ));
        assert!(matches!(
            from_notation(b"b64\"!!\""),
            Err(Error::InvalidValue { kind: "binary", .. })
        ));
        assert!(matches!(
            from_notation(b"d\"yesterday\""),
            Err(Error::InvalidValue { kind: "date", .. })
        ));
        assert!(matches!(
            from_notation(b"'\xff'"),
            Err(Error::InvalidValue { kind: "string", .. })
        ));
        assert!(matches!(
            from_notation(b"! !"),
            Err(Error::TrailingData { pos: 2 })
        ));
        let deep = "[".repeat(65);
        assert!(matches!(
            from_notation(deep.as_bytes()),
            Err(Error::LimitExceeded {
                limit: LimitKind::Depth,
                ..
            })
        ));
        let limits = Limits::default().with_max_elements(3);
        assert!(matches!(
            from_notation_with_limits(b"[1,1,1]", limits),
            Err(Error::LimitExceeded {
                limit: LimitKind::Elements,
                ..
            })
        ));
        assert!(from_notation_with_limits(b"[1,1]", limits).is_ok());
    }
}
