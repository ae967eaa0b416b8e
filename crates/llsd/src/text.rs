//! Helpers shared by the formats: number text, base64/base16, headers, delimited strings.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Budget, Error};

/// Standard alphabet; writes padding, reads with or without it (producers differ).
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Appends the decimal form of `v`.
pub(crate) fn push_i32(out: &mut Vec<u8>, v: i32) {
    let mut buf = [0u8; 11];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a real as text that parses back to the same bits (NaN aside): the shortest
/// round-trip digits, and `nan`, `inf`, `-inf` as the LLSD spec and python `llsd` spell them.
pub(crate) fn push_real(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
    } else {
        // Debug gives the shortest round-trip digits with an exponent for very large or small
        // magnitudes, which every LLSD reader's float parser understands. Writing to a Vec
        // cannot fail.
        let _ = write!(out, "{v:?}");
    }
}

/// Parses integer text. Values up to `u32::MAX` are accepted and wrap to `i32`, because some
/// producers print unsigned template fields unsigned while LLSD integers are signed.
pub(crate) fn parse_i32(text: &[u8]) -> Option<i32> {
    let (neg, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    if neg {
        v = -v;
    }
    if v < i64::from(i32::MIN) || v > i64::from(u32::MAX) {
        return None;
    }
    Some(v as u32 as i32)
}

/// Parses real text (`1.5`, `-2e10`, `nan`, `inf`, `Infinity`, ...).
pub(crate) fn parse_f64(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Decodes base64, ignoring ASCII whitespace (line-wrapped producers) and missing padding.
pub(crate) fn decode_base64(text: &[u8], budget: &Budget, pos: usize) -> Result<Vec<u8>, Error> {
    budget.check_binary(text.len() / 4 * 3, pos)?;
    let res = if text.iter().any(u8::is_ascii_whitespace) {
        let compact: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        BASE64.decode(compact)
    } else {
        BASE64.decode(text)
    };
    res.map_err(|e| Error::InvalidValue {
        pos,
        kind: "binary",
        reason: format!("bad base64: {e}"),
    })
}

/// Decodes base16 (either case, whitespace ignored).
pub(crate) fn decode_base16(text: &[u8], budget: &Budget, pos: usize) -> Result<Vec<u8>, Error> {
    budget.check_binary(text.len() / 2, pos)?;
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for &b in text {
        if b.is_ascii_whitespace() {
            continue;
        }
        let nibble = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => {
                return Err(Error::InvalidValue {
                    pos,
                    kind: "binary",
                    reason: format!("bad base16 digit {}", describe_byte(b)),
                });
            }
        };
        match high.take() {
            Some(h) => out.push(h << 4 | nibble),
            None => high = Some(nibble),
        }
    }
    if high.is_some() {
        return Err(Error::InvalidValue {
            pos,
            kind: "binary",
            reason: "odd number of base16 digits".into(),
        });
    }
    Ok(out)
}

/// Skips an `<? llsd/NAME ?>` header line (any spacing, any case, surrounding whitespace),
/// returning the offset after it, or `None` when the data does not start with it.
pub(crate) fn skip_header(data: &[u8], name: &[u8]) -> Option<usize> {
    let mut i = skip_ws(data, 0);
    if !data[i..].starts_with(b"<?") {
        return None;
    }
    i = skip_ws(data, i + 2);
    let word = data.get(i..i + name.len())?;
    if !word.eq_ignore_ascii_case(name) {
        return None;
    }
    i = skip_ws(data, i + name.len());
    if !data[i..].starts_with(b"?>") {
        return None;
    }
    Some(skip_ws(data, i + 2))
}

pub(crate) fn skip_ws(data: &[u8], mut i: usize) -> usize {
    while data.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Checks that only whitespace or NUL terminators (C producers) follow the value.
pub(crate) fn check_trailing(data: &[u8], pos: usize) -> Result<(), Error> {
    match data[pos.min(data.len())..]
        .iter()
        .position(|b| !(b.is_ascii_whitespace() || *b == 0))
    {
        None => Ok(()),
        Some(off) => Err(Error::TrailingData { pos: pos + off }),
    }
}

/// A short human description of a byte for error messages.
pub(crate) fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Reads a backslash-escaped string from `data[pos..]` up to the unescaped `delim`, as the
/// notation format (and the binary format's quoted strings) write it. Returns the raw bytes
/// and the offset after the closing delimiter.
pub(crate) fn read_delimited(
    data: &[u8],
    start: usize,
    delim: u8,
) -> Result<(Vec<u8>, usize), Error> {
    let rest = &data[start.min(data.len())..];
    // Fast path: no escapes before the closing delimiter.
    let end = rest.iter().position(|&b| b == delim || b == b'\\');
    if let Some(n) = end
        && rest[n] == delim
    {
        return Ok((rest[..n].to_vec(), start + n + 1));
    }
    let mut out = Vec::with_capacity(end.unwrap_or(0) + 16);
    let mut i = start;
    loop {
        let Some(&b) = data.get(i) else {
            return Err(Error::UnexpectedEof {
                pos: data.len(),
                expected: "closing quote of a string",
            });
        };
        i += 1;
        if b == delim {
            return Ok((out, i));
        }
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = data.get(i) else {
            return Err(Error::UnexpectedEof {
                pos: data.len(),
                expected: "escaped character",
            });
        };
        i += 1;
        out.push(match e {
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'x' => {
                let hex = |j: usize| -> Option<u8> {
                    (data.get(j)?.is_ascii_hexdigit()).then(|| hex_val(data[j]))
                };
                match (hex(i), hex(i + 1)) {
                    (Some(h), Some(l)) => {
                        i += 2;
                        h << 4 | l
                    }
                    _ if i + 2 > data.len() => {
                        return Err(Error::UnexpectedEof {
                            pos: data.len(),
                            expected: "two hex digits after \\x",
                        });
                    }
                    _ => {
                        return Err(Error::Syntax {
                            pos: i,
                            expected: "two hex digits after \\x",
                            found: describe_byte(data[i]),
                        });
                    }
                }
            }
            other => other,
        });
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Turns bytes into a `String`, with a typed error for bad UTF-8 and the string limit applied.
pub(crate) fn into_string(
    bytes: Vec<u8>,
    budget: &Budget,
    pos: usize,
    kind: &'static str,
) -> Result<String, Error> {
    budget.check_string(bytes.len(), pos)?;
    String::from_utf8(bytes).map_err(|e| Error::InvalidValue {
        pos,
        kind,
        reason: format!("invalid UTF-8: {e}"),
    })
}

/// Bytes a quoted notation string must escape, for each quote character.
static ESCAPE_SQ: [bool; 256] = escape_table(b'\'');
static ESCAPE_DQ: [bool; 256] = escape_table(b'"');

const fn escape_table(quote: u8) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[0x7f] = true;
    t[b'\\' as usize] = true;
    t[quote as usize] = true;
    t
}

/// Appends `s` between `quote`s, escaping it so that notation readers (viewer, python `llsd`,
/// ours) give back the same bytes: backslash and the quote are escaped, control characters
/// become `\n`-style or `\xNN` escapes, everything else (UTF-8 included) is raw.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &[u8], quote: u8) {
    out.push(quote);
    let table = if quote == b'"' {
        &ESCAPE_DQ
    } else {
        &ESCAPE_SQ
    };
    let mut last = 0;
    for (i, &b) in s.iter().enumerate() {
        if !table[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&s[last..i]);
        last = i + 1;
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ if b == quote => out.extend_from_slice(&[b'\\', quote]),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            }
        }
    }
    out.extend_from_slice(&s[last..]);
    out.push(quote);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ints() {
        for v in [0, 1, -1, 42, i32::MIN, i32::MAX] {
            let mut out = Vec::new();
            push_i32(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
            assert_eq!(parse_i32(&out), Some(v));
        }
        assert_eq!(parse_i32(b"4294967295"), Some(-1));
        assert_eq!(parse_i32(b"4294967296"), None);
        assert_eq!(parse_i32(b"-2147483649"), None);
        assert_eq!(parse_i32(b"+7"), Some(7));
        assert_eq!(parse_i32(b""), None);
        assert_eq!(parse_i32(b"-"), None);
        assert_eq!(parse_i32(b"1x"), None);
    }

    #[test]
    fn reals() {
        for v in [0.0, -0.0, 1.5, 1e300, 5e-324, -1e-7, f64::MAX, 0.1, 24.009] {
            let mut out = Vec::new();
            push_real(&mut out, v);
            assert_eq!(
                parse_f64(&out).unwrap().to_bits(),
                v.to_bits(),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
        let mut out = Vec::new();
        push_real(&mut out, f64::NAN);
        push_real(&mut out, f64::NEG_INFINITY);
        assert_eq!(out, b"nan-inf");
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"Infinity"), Some(f64::INFINITY));
    }

    #[test]
    fn headers() {
        assert_eq!(skip_header(b"<?llsd/binary?>\n!", b"llsd/binary"), Some(16));
        assert_eq!(
            skip_header(b"  <? LLSD/Binary ?>\r\n!", b"llsd/binary"),
            Some(21)
        );
        assert_eq!(skip_header(b"<?xml version='1.0'?>", b"llsd/binary"), None);
        assert_eq!(skip_header(b"<?llsd/bin", b"llsd/binary"), None);
        assert_eq!(skip_header(b"", b"llsd/binary"), None);
    }

    #[test]
    fn quoting_round_trips() {
        let s = b"a'b\"c\\d\n\x01\x7f\xc3\xa9";
        let mut out = Vec::new();
        push_quoted(&mut out, s, b'\'');
        assert_eq!(out, b"'a\\'b\"c\\\\d\\n\\x01\\x7f\xc3\xa9'");
        let (back, end) = read_delimited(&out, 1, b'\'').unwrap();
        assert_eq!(back, s);
        assert_eq!(end, out.len());
        assert!(matches!(
            read_delimited(b"abc\\x4", 0, b'\''),
            Err(Error::UnexpectedEof { .. })
        ));
        assert!(matches!(
            read_delimited(b"abc\\xzz'", 0, b'\''),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            read_delimited(b"abc", 0, b'\''),
            Err(Error::UnexpectedEof { .. })
        ));
    }
}
