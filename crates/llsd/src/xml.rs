//! The XML format (`application/llsd+xml`), read with quick-xml.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use uuid::Uuid;

use crate::error::{Budget, Error, Limits};
use crate::text::{
    BASE64, decode_base16, decode_base64, parse_f64, parse_i32, push_i32, push_real, skip_header,
};
use crate::{Date, Map, Value};

/// The XML declaration [`to_xml`] starts with.
pub const XML_DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Parses an LLSD XML document with the default [`Limits`].
pub fn from_xml(data: &[u8]) -> Result<Value, Error> {
    from_xml_with_limits(data, Limits::default())
}

/// Parses an LLSD XML document within `limits`.
///
/// The document is `<llsd>` holding one value element (or nothing: undef), optionally after
/// an `<?xml ...?>` declaration, comments, a doctype or python `llsd`'s `<? llsd/xml ?>`
/// line. Whitespace between elements is ignored; `<string>`, `<uri>` and `<key>` text is kept
/// as is (line ends normalised to `\n` as XML requires). Empty elements mean the type's
/// default (`<integer/>` is 0, `<uuid/>` the nil UUID, `<date/>` the epoch). Characters XML
/// cannot carry (most control characters, U+FFFE, U+FFFF) are rejected, as are entities
/// other than the five predefined ones, so there is no entity expansion.
pub fn from_xml_with_limits(data: &[u8], limits: Limits) -> Result<Value, Error> {
    let base = skip_header(data, b"llsd/xml").unwrap_or(0);
    let mut reader = Reader::from_reader(&data[base..]);
    let config = reader.config_mut();
    config.trim_text(false);
    config.expand_empty_elements = false;
    config.check_end_names = true;
    let mut p = Parser {
        reader,
        base,
        budget: Budget::new(limits),
    };
    p.document()
}

/// Serializes `value` as an LLSD XML document (with an XML declaration).
///
/// Characters that XML 1.0 cannot carry (control characters other than tab, line feed and
/// carriage return; U+FFFE; U+FFFF) are left out of strings, URIs and keys, as python
/// `llsd` does; use the binary or notation format for arbitrary text.
pub fn to_xml(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_xml_into(value, &mut out);
    out
}

/// Appends the XML document for `value` to `out` (see [`to_xml`]).
pub fn write_xml_into(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(XML_DECLARATION);
    out.extend_from_slice(b"<llsd>");
    write_value(value, out);
    out.extend_from_slice(b"</llsd>");
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Undef => out.extend_from_slice(b"<undef/>"),
        Value::Boolean(b) => out.extend_from_slice(if *b {
            b"<boolean>true</boolean>"
        } else {
            b"<boolean>false</boolean>"
        }),
        Value::Integer(i) => {
            out.extend_from_slice(b"<integer>");
            push_i32(out, *i);
            out.extend_from_slice(b"</integer>");
        }
        Value::Real(r) => {
            out.extend_from_slice(b"<real>");
            push_real(out, *r);
            out.extend_from_slice(b"</real>");
        }
        Value::Uuid(u) => {
            out.extend_from_slice(b"<uuid>");
            let mut buf = Uuid::encode_buffer();
            out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
            out.extend_from_slice(b"</uuid>");
        }
        Value::String(s) => {
            out.extend_from_slice(b"<string>");
            push_escaped(out, s.as_bytes());
            out.extend_from_slice(b"</string>");
        }
        Value::Uri(s) => {
            out.extend_from_slice(b"<uri>");
            push_escaped(out, s.as_bytes());
            out.extend_from_slice(b"</uri>");
        }
        Value::Date(d) => {
            out.extend_from_slice(b"<date>");
            d.write_iso8601(out);
            out.extend_from_slice(b"</date>");
        }
        Value::Binary(b) => {
            use base64::Engine as _;
            out.extend_from_slice(b"<binary>");
            let start = out.len();
            out.resize(start + b.len().div_ceil(3) * 4, 0);
            let n = BASE64.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + n);
            out.extend_from_slice(b"</binary>");
        }
        Value::Array(a) => {
            out.extend_from_slice(b"<array>");
            for v in a {
                write_value(v, out);
            }
            out.extend_from_slice(b"</array>");
        }
        Value::Map(m) => {
            out.extend_from_slice(b"<map>");
            for (k, v) in m {
                out.extend_from_slice(b"<key>");
                push_escaped(out, k.as_bytes());
                out.extend_from_slice(b"</key>");
                write_value(v, out);
            }
            out.extend_from_slice(b"</map>");
        }
    }
}

/// Whether the UTF-8 sequence starting at `s[i]` is a character XML 1.0 cannot carry.
#[inline]
fn invalid_xml_at(s: &[u8], i: usize) -> bool {
    match s[i] {
        b'\t' | b'\n' | b'\r' => false,
        0..0x20 => true,
        // U+FFFE and U+FFFF are EF BF BE / EF BF BF.
        0xef => s.get(i + 1) == Some(&0xbf) && matches!(s.get(i + 2), Some(0xbe | 0xbf)),
        _ => false,
    }
}

/// Bytes that may need escaping or dropping in XML text (a cheap first test).
static XML_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = i != b'\t' as usize && i != b'\n' as usize;
        i += 1;
    }
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xef] = true;
    t
};

fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut last = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let special = XML_SPECIAL[usize::from(b)]
            && (matches!(b, b'<' | b'>' | b'&' | b'\r') || invalid_xml_at(s, i));
        if !special {
            i += 1;
            continue;
        }
        out.extend_from_slice(&s[last..i]);
        let skip = match b {
            b'<' => {
                out.extend_from_slice(b"&lt;");
                1
            }
            b'>' => {
                out.extend_from_slice(b"&gt;");
                1
            }
            b'&' => {
                out.extend_from_slice(b"&amp;");
                1
            }
            // A raw CR would come back as LF (XML end-of-line handling); a reference survives.
            b'\r' => {
                out.extend_from_slice(b"&#xD;");
                1
            }
            0xef => 3,
            _ => 1,
        };
        i += skip;
        last = i;
    }
    out.extend_from_slice(&s[last..]);
}

/// `value` with the characters XML cannot carry removed from strings, URIs and keys: what
/// an XML round trip gives back.
pub(crate) fn xml_representable(value: &Value) -> Value {
    fn clean(s: &str) -> String {
        let b = s.as_bytes();
        if !(0..b.len()).any(|i| invalid_xml_at(b, i)) {
            return s.to_owned();
        }
        s.chars()
            .filter(|&c| {
                !(c < ' ' && !matches!(c, '\t' | '\n' | '\r') || c == '\u{fffe}' || c == '\u{ffff}')
            })
            .collect()
    }
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Uri(s) => Value::Uri(clean(s)),
        Value::Array(a) => Value::Array(a.iter().map(xml_representable).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (clean(k), xml_representable(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    /// Length of a skipped `<? llsd/xml ?>` line, added to the reader's offsets.
    base: usize,
    budget: Budget,
}

fn describe(ev: &Event<'_>) -> String {
    let name = |s: &BytesStart<'_>| String::from_utf8_lossy(s.name().as_ref()).into_owned();
    match ev {
        Event::Start(s) => format!("<{}>", name(s)),
        Event::Empty(s) => format!("<{}/>", name(s)),
        Event::End(e) => format!("</{}>", String::from_utf8_lossy(e.name().as_ref())),
        Event::Text(_) => "text".into(),
        Event::CData(_) => "CDATA".into(),
        Event::Eof => "end of input".into(),
        _ => "markup".into(),
    }
}

fn normalize_eol(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

impl<'a> Parser<'a> {
    fn pos(&self) -> usize {
        self.base
            .saturating_add(usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX))
    }

    fn xml_error(&self, message: String) -> Error {
        let at = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
        Error::Xml {
            pos: self.base.saturating_add(at),
            message,
        }
    }

    /// The next event that matters: no comments, processing instructions or declarations.
    fn raw_event(&mut self) -> Result<Event<'a>, Error> {
        loop {
            match self.reader.read_event() {
                Ok(Event::Comment(_) | Event::PI(_) | Event::DocType(_) | Event::Decl(_)) => {}
                Ok(e) => return Ok(e),
                Err(e) => return Err(self.xml_error(e.to_string())),
            }
        }
    }

    /// The next element boundary, skipping whitespace between elements.
    fn element_event(&mut self, expected: &'static str) -> Result<Event<'a>, Error> {
        loop {
            let at = self.pos();
            let ev = self.raw_event()?;
            match &ev {
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                Event::Eof => {
                    return Err(Error::UnexpectedEof {
                        pos: self.pos(),
                        expected,
                    });
                }
                Event::Text(_) | Event::CData(_) => {
                    return Err(Error::Syntax {
                        pos: at,
                        expected,
                        found: describe(&ev),
                    });
                }
                _ => return Ok(ev),
            }
        }
    }

    fn document(&mut self) -> Result<Value, Error> {
        let at = self.pos();
        let value = match self.element_event("<llsd>")? {
            Event::Start(s) if s.name().as_ref() == b"llsd" => {
                let value = match self.element_event("a value or </llsd>")? {
                    Event::End(_) => return self.finish(Value::Undef),
                    Event::Start(s) => self.value(s, false)?,
                    Event::Empty(s) => self.value(s, true)?,
                    ev => {
                        return Err(Error::Syntax {
                            pos: at,
                            expected: "a value",
                            found: describe(&ev),
                        });
                    }
                };
                let at = self.pos();
                match self.element_event("</llsd>")? {
                    Event::End(_) => {}
                    ev => {
                        return Err(Error::Syntax {
                            pos: at,
                            expected: "</llsd> after the value",
                            found: describe(&ev),
                        });
                    }
                }
                value
            }
            Event::Empty(s) if s.name().as_ref() == b"llsd" => Value::Undef,
            ev => {
                return Err(Error::Syntax {
                    pos: at,
                    expected: "<llsd>",
                    found: describe(&ev),
                });
            }
        };
        self.finish(value)
    }

    /// Accepts only whitespace and comments after `</llsd>`.
    fn finish(&mut self, value: Value) -> Result<Value, Error> {
        loop {
            let at = self.pos();
            match self.raw_event()? {
                Event::Eof => return Ok(value),
                Event::Text(t) if t.iter().all(|b| b.is_ascii_whitespace() || *b == 0) => {}
                _ => return Err(Error::TrailingData { pos: at }),
            }
        }
    }

    /// Decodes one text piece: UTF-8, XML end-of-line handling, entity references.
    fn text_piece(
        &self,
        raw: Cow<'a, [u8]>,
        unescape: bool,
        at: usize,
    ) -> Result<Cow<'a, str>, Error> {
        let bad_utf8 = |e: std::str::Utf8Error| Error::InvalidValue {
            pos: at,
            kind: "text",
            reason: e.to_string(),
        };
        let s: Cow<'a, str> = match raw {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).map_err(bad_utf8)?),
            Cow::Owned(v) => {
                Cow::Owned(String::from_utf8(v).map_err(|e| bad_utf8(e.utf8_error()))?)
            }
        };
        let s = if s.contains('\r') {
            Cow::Owned(normalize_eol(&s))
        } else {
            s
        };
        if !unescape {
            return Ok(s);
        }
        let esc = |e: quick_xml::escape::EscapeError| Error::Xml {
            pos: at,
            message: e.to_string(),
        };
        Ok(match s {
            Cow::Borrowed(b) => quick_xml::escape::unescape(b).map_err(esc)?,
            Cow::Owned(o) => Cow::Owned(quick_xml::escape::unescape(&o).map_err(esc)?.into_owned()),
        })
    }

    /// The text content of an element whose start tag was just read, up to its end tag.
    fn text(&mut self, empty: bool, kind: &'static str) -> Result<Cow<'a, str>, Error> {
        if empty {
            return Ok(Cow::Borrowed(""));
        }
        let start = self.pos();
        let mut acc: Option<Cow<'a, str>> = None;
        loop {
            let at = self.pos();
            let piece = match self.raw_event()? {
                Event::Text(t) => self.text_piece(t.into_inner(), true, at)?,
                Event::CData(c) => self.text_piece(c.into_inner(), false, at)?,
                Event::End(_) => break,
                Event::Eof => {
                    return Err(Error::UnexpectedEof {
                        pos: self.pos(),
                        expected: "an end tag",
                    });
                }
                ev => {
                    return Err(Error::Syntax {
                        pos: at,
                        expected: "text",
                        found: describe(&ev),
                    });
                }
            };
            acc = Some(match acc {
                None => piece,
                Some(prev) => {
                    let mut s = prev.into_owned();
                    s.push_str(&piece);
                    Cow::Owned(s)
                }
            });
        }
        let text = acc.unwrap_or(Cow::Borrowed(""));
        let b = text.as_bytes();
        if let Some(i) =
            (0..b.len()).find(|&i| (b[i] < 0x20 || b[i] == 0xef) && invalid_xml_at(b, i))
        {
            return Err(Error::InvalidValue {
                pos: start,
                kind,
                reason: format!(
                    "character {:?} at offset {i} is not allowed in XML",
                    text[i..].chars().next()
                ),
            });
        }
        Ok(text)
    }

    // Containers recurse through `value`, so it stays tiny; scalars are parsed out of line to
    // keep the per-level stack frame small (it matters in debug builds).
    fn value(&mut self, start: BytesStart<'a>, empty: bool) -> Result<Value, Error> {
        let pos = self.pos();
        self.budget.element(pos)?;
        match start.name().as_ref() {
            b"map" => self.map(empty, pos),
            b"array" => self.array(empty, pos),
            _ => self.scalar(start, empty, pos),
        }
    }

    #[inline(never)]
    fn scalar(&mut self, start: BytesStart<'a>, empty: bool, pos: usize) -> Result<Value, Error> {
        let invalid = |kind: &'static str, text: &str| Error::InvalidValue {
            pos,
            kind,
            reason: format!("{text:?} is not a valid {kind}"),
        };
        Ok(match start.name().as_ref() {
            b"undef" => {
                self.text(empty, "undef")?;
                Value::Undef
            }
            b"boolean" => {
                let t = self.text(empty, "boolean")?;
                let s = t.trim();
                if s.is_empty() || s == "0" || s == "0.0" || s.eq_ignore_ascii_case("false") {
                    Value::Boolean(false)
                } else if s == "1" || s == "1.0" || s.eq_ignore_ascii_case("true") {
                    Value::Boolean(true)
                } else {
                    return Err(invalid("boolean", s));
                }
            }
            b"integer" => {
                let t = self.text(empty, "integer")?;
                let s = t.trim();
                if s.is_empty() {
                    Value::Integer(0)
                } else {
                    Value::Integer(parse_i32(s.as_bytes()).ok_or_else(|| invalid("integer", s))?)
                }
            }
            b"real" => {
                let t = self.text(empty, "real")?;
                let s = t.trim();
                if s.is_empty() {
                    Value::Real(0.0)
                } else {
                    Value::Real(parse_f64(s.as_bytes()).ok_or_else(|| invalid("real", s))?)
                }
            }
            b"uuid" => {
                let t = self.text(empty, "uuid")?;
                let s = t.trim();
                if s.is_empty() {
                    Value::Uuid(Uuid::nil())
                } else {
                    Value::Uuid(Uuid::try_parse(s).map_err(|_| invalid("uuid", s))?)
                }
            }
            b"date" => {
                let t = self.text(empty, "date")?;
                Value::Date(Date::parse_iso8601(&t).ok_or_else(|| invalid("date", &t))?)
            }
            b"string" => {
                let t = self.text(empty, "string")?;
                self.budget.check_string(t.len(), pos)?;
                Value::String(t.into_owned())
            }
            b"uri" => {
                let t = self.text(empty, "uri")?;
                self.budget.check_string(t.len(), pos)?;
                Value::Uri(t.into_owned())
            }
            b"binary" => {
                let encoding = match start.try_get_attribute("encoding") {
                    Ok(a) => a.map(|a| a.value),
                    Err(e) => return Err(self.xml_error(e.to_string())),
                };
                let t = self.text(empty, "binary")?;
                match encoding.as_deref() {
                    None => decode_base64(t.as_bytes(), &self.budget, pos)?,
                    Some(e) if e.eq_ignore_ascii_case(b"base64") => {
                        decode_base64(t.as_bytes(), &self.budget, pos)?
                    }
                    Some(e) if e.eq_ignore_ascii_case(b"base16") => {
                        decode_base16(t.as_bytes(), &self.budget, pos)?
                    }
                    Some(e) => {
                        return Err(Error::InvalidValue {
                            pos,
                            kind: "binary",
                            reason: format!(
                                "unsupported encoding {:?}",
                                String::from_utf8_lossy(e)
                            ),
                        });
                    }
                }
                .into()
            }
            _ => {
                return Err(Error::Syntax {
                    pos,
                    expected: "an LLSD value element",
                    found: describe(&Event::Start(start)),
                });
            }
        })
    }

    fn map(&mut self, empty: bool, pos: usize) -> Result<Value, Error> {
        let mut map = Map::new();
        if empty {
            return Ok(Value::Map(map));
        }
        self.budget.enter(pos)?;
        while let Some(key) = self.map_key()? {
            // With `end_ok` false an end tag is already an error, so `None` cannot happen.
            let (start, empty) =
                self.child("a value after <key>", false)?
                    .ok_or(Error::UnexpectedEof {
                        pos,
                        expected: "a value after <key>",
                    })?;
            map.push(key, self.value(start, empty)?);
        }
        self.budget.leave();
        Ok(Value::Map(map))
    }

    fn array(&mut self, empty: bool, pos: usize) -> Result<Value, Error> {
        let mut items = Vec::new();
        if empty {
            return Ok(Value::Array(items));
        }
        self.budget.enter(pos)?;
        while let Some((start, empty)) = self.child("a value or </array>", true)? {
            items.push(self.value(start, empty)?);
        }
        self.budget.leave();
        Ok(Value::Array(items))
    }

    /// The next child element's start tag (and whether it is empty), or `None` at the
    /// parent's end tag when `end_ok`.
    #[inline(never)]
    fn child(
        &mut self,
        expected: &'static str,
        end_ok: bool,
    ) -> Result<Option<(BytesStart<'a>, bool)>, Error> {
        let at = self.pos();
        match self.element_event(expected)? {
            Event::Start(s) => Ok(Some((s, false))),
            Event::Empty(s) => Ok(Some((s, true))),
            Event::End(_) if end_ok => Ok(None),
            ev => Err(Error::Syntax {
                pos: at,
                expected,
                found: describe(&ev),
            }),
        }
    }

    /// The next `<key>` of a map, or `None` at `</map>`.
    #[inline(never)]
    fn map_key(&mut self) -> Result<Option<String>, Error> {
        let at = self.pos();
        let key = match self.element_event("<key> or </map>")? {
            Event::End(_) => return Ok(None),
            Event::Start(s) if s.name().as_ref() == b"key" => self.text(false, "key")?.into_owned(),
            Event::Empty(s) if s.name().as_ref() == b"key" => String::new(),
            ev => {
                return Err(Error::Syntax {
                    pos: at,
                    expected: "<key>",
                    found: describe(&ev),
                });
            }
        };
        self.budget.check_string(key.len(), at)?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::LimitKind;

    fn p(s: &str) -> Value {
        from_xml(s.as_bytes()).unwrap()
    }

    #[test]
    fn event_queue_request_and_empties() {
        let v = p(concat!(
            "<?xml version=\"1.0\" ?><llsd><map><key>ack</key><undef /><key>done</key>",
            "<boolean>false</boolean></map></llsd>"
        ));
        assert!(v["ack"].is_undef());
        assert_eq!(v["done"].as_bool(), Some(false));
        let v = p(
            "<llsd><array><integer /><uuid/><string/><real/><date/><binary/><boolean/><map/><array/></array></llsd>",
        );
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Integer(0),
                Value::Uuid(Uuid::nil()),
                Value::String(String::new()),
                Value::Real(0.0),
                Value::Date(Date::EPOCH),
                Value::Binary(vec![]),
                Value::Boolean(false),
                Value::Map(Map::new()),
                Value::Array(vec![]),
            ])
        );
        assert_eq!(p("<llsd/>"), Value::Undef);
        assert_eq!(p("<llsd>\n</llsd>"), Value::Undef);
    }

    #[test]
    fn text_handling() {
        let v = p(
            "<llsd><string> a &amp; b &lt;&#x41;&#66;<![CDATA[<raw>&amp;]]>\r\nz\r</string></llsd>",
        );
        assert_eq!(v.as_str(), Some(" a & b <AB<raw>&amp;\nz\n"));
        let v = p("<llsd><binary encoding=\"base64\">\n  AAEC\n  AwQ=\n</binary></llsd>");
        assert_eq!(v.as_binary(), Some(&[0u8, 1, 2, 3, 4][..]));
        let v = p("<llsd><binary encoding='base16'>0A0b</binary></llsd>");
        assert_eq!(v.as_binary(), Some(&[10u8, 11][..]));
        assert_eq!(
            p("<llsd><boolean> 1 </boolean></llsd>"),
            Value::Boolean(true)
        );
        assert_eq!(
            p("<llsd><integer>4294967295</integer></llsd>"),
            Value::Integer(-1)
        );
        assert_eq!(
            p("<? llsd/xml ?>\n<!-- c --><llsd><real>nan</real></llsd>\n")
                .as_f64()
                .map(f64::is_nan),
            Some(true)
        );
    }

    #[test]
    fn writer_escapes() {
        let mut m = Map::new();
        m.push("a<b", Value::String("x&y>\r\n\u{1}\u{fffe}é\t".into()));
        let xml = to_xml(&Value::Map(m));
        let body = &xml[XML_DECLARATION.len()..];
        assert_eq!(
            std::str::from_utf8(body).unwrap(),
            "<llsd><map><key>a&lt;b</key><string>x&amp;y&gt;&#xD;\né\t</string></map></llsd>"
        );
        assert_eq!(from_xml(&xml).unwrap()["a<b"].as_str(), Some("x&y>\r\né\t"));
    }

    #[test]
    fn errors() {
        let e = |s: &str| from_xml(s.as_bytes()).unwrap_err();
        assert!(matches!(e(""), Error::UnexpectedEof { .. }));
        assert!(matches!(
            e("<map></map>"),
            Error::Syntax {
                expected: "<llsd>",
                ..
            }
        ));
        assert!(matches!(e("<llsd><foo/></llsd>"), Error::Syntax { .. }));
        assert!(matches!(
            e("<llsd><integer>x</integer></llsd>"),
            Error::InvalidValue {
                kind: "integer",
                ..
            }
        ));
        assert!(matches!(
            e("<llsd><boolean>yes</boolean></llsd>"),
            Error::InvalidValue {
                kind: "boolean",
                ..
            }
        ));
        assert!(matches!(
            e("<llsd><uuid>nope</uuid></llsd>"),
            Error::InvalidValue { kind: "uuid", .. }
        ));
        assert!(matches!(
            e("<llsd><binary>!!</binary></llsd>"),
            Error::InvalidValue { kind: "binary", .. }
        ));
        assert!(matches!(
            e("<llsd><binary encoding=\"base85\"></binary></llsd>"),
            Error::InvalidValue { .. }
        ));
        assert!(matches!(
            e("<llsd><string>&foo;</string></llsd>"),
            Error::Xml { .. }
        ));
        assert!(matches!(
            e("<llsd><string>&#1;</string></llsd>"),
            Error::InvalidValue { kind: "string", .. }
        ));
        assert!(matches!(
            e("<llsd><string>\u{1}</string></llsd>"),
            Error::InvalidValue { kind: "string", .. }
        ));
        assert!(matches!(
            e("<llsd><string>a</uri></llsd>"),
            Error::Xml { .. }
        ));
        assert!(matches!(
            e("<llsd><map><string/></map></llsd>"),
            Error::Syntax {
                expected: "<key>",
                ..
            }
        ));
        assert!(matches!(
            e("<llsd><map><key>a</key></map></llsd>"),
            Error::Syntax { .. }
        ));
        assert!(matches!(
            e("<llsd><integer>1<b/></integer></llsd>"),
            Error::Syntax {
                expected: "text",
                ..
            }
        ));
        assert!(matches!(
            e("<llsd><undef/><undef/></llsd>"),
            Error::Syntax { .. }
        ));
        assert!(matches!(
            e("<llsd><undef/></llsd><llsd/>"),
            Error::TrailingData { .. }
        ));
        assert!(matches!(
            e("<llsd><array>"),
            Error::UnexpectedEof { .. } | Error::Xml { .. }
        ));
        assert!(matches!(e("<llsd>junk</llsd>"), Error::Syntax { .. }));
        let deep = format!("<llsd>{}", "<array>".repeat(65));
        assert!(matches!(
            e(&deep),
            Error::LimitExceeded {
                limit: LimitKind::Depth,
                ..
            }
        ));
        let limits = Limits::default().with_max_string_len(2);
        assert!(matches!(
            from_xml_with_limits(b"<llsd><string>abc</string></llsd>", limits),
            Err(Error::LimitExceeded {
                limit: LimitKind::StringLen,
                ..
            })
        ));
    }
}
