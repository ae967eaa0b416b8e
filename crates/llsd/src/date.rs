//! The LLSD date type: seconds since the Unix epoch, as the binary format carries it.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the epoch to 0001-01-01T00:00:00Z, the earliest date we accept.
const MIN_SECS: i64 = -62_135_596_800;
/// Seconds from the epoch to 10000-01-01T00:00:00Z, the first date we no longer accept.
const MAX_SECS_EXCLUSIVE: i64 = 253_402_300_800;

/// An LLSD date: a point in time as (finite) seconds since 1970-01-01T00:00:00Z.
///
/// The binary format stores dates as an `f64`, so that is the canonical form; XML and notation
/// write ISO-8601 (`2006-02-01T14:29:53Z`, with as many fractional digits as needed to give
/// the very same `f64` back). Only years 0001 to 9999 are representable (the ISO text has
/// four-digit years), and `-0.0` is stored as `0.0`, so equality is plain bitwise equality.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub struct Date(f64);

impl Date {
    /// The Unix epoch, 1970-01-01T00:00:00Z (also what an empty `<date/>` means).
    pub const EPOCH: Date = Date(0.0);

    /// A date from seconds since the epoch; `None` when not finite or outside years 1..=9999.
    pub fn from_secs_f64(secs: f64) -> Option<Date> {
        if !secs.is_finite() || secs < MIN_SECS as f64 || secs >= MAX_SECS_EXCLUSIVE as f64 {
            return None;
        }
        // Adding 0.0 turns -0.0 into +0.0, which the text formats cannot tell apart.
        Some(Date(secs + 0.0))
    }

    /// A date from whole seconds since the epoch; `None` outside years 1..=9999.
    pub fn from_unix_secs(secs: i64) -> Option<Date> {
        if (MIN_SECS..MAX_SECS_EXCLUSIVE).contains(&secs) {
            Some(Date(secs as f64))
        } else {
            None
        }
    }

    /// A date from a calendar date and time of day (UTC); `None` for impossible fields.
    pub fn from_ymd_hms(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        min: u32,
        sec: u32,
    ) -> Option<Date> {
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return None;
        }
        let days = days_from_civil(year as i64, month, day);
        Date::from_unix_secs(days * 86_400 + i64::from(hour * 3600 + min * 60 + sec))
    }

    /// The date of a [`SystemTime`]; `None` outside years 1..=9999.
    pub fn from_system_time(t: SystemTime) -> Option<Date> {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Date::from_secs_f64(d.as_secs_f64()),
            Err(e) => Date::from_secs_f64(-e.duration().as_secs_f64()),
        }
    }

    /// This date as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        // Finite and within +-2^38 s by construction, so `from_secs_f64` cannot panic.
        let d = Duration::from_secs_f64(self.0.abs());
        if self.0 >= 0.0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    /// Seconds since the epoch.
    pub fn secs_f64(self) -> f64 {
        self.0
    }

    /// Parses ISO-8601 text as LLSD producers write it.
    ///
    /// Accepts `YYYY-MM-DDTHH:MM:SS`, an optional fraction of any length, then `Z`, an offset
    /// (`+HH:MM`, `+HHMM`, `+HH`) or nothing (taken as UTC). A lone `YYYY-MM-DD` is midnight.
    /// The empty string is the epoch, as in the XML format's `<date/>`.
    pub fn parse_iso8601(text: &str) -> Option<Date> {
        let s = text.trim().as_bytes();
        if s.is_empty() {
            return Some(Date::EPOCH);
        }
        let year = digits(s, 0, 4)? as i32;
        if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
            return None;
        }
        let month = digits(s, 5, 2)?;
        let day = digits(s, 8, 2)?;
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return None;
        }
        let mut secs = days_from_civil(year as i64, month, day) * 86_400;
        let mut i = 10;
        let mut frac: &[u8] = &[];
        if s.len() > i {
            if !matches!(s[i], b'T' | b't' | b' ') {
                return None;
            }
            let hour = digits(s, i + 1, 2)?;
            let min = if s.get(i + 3) == Some(&b':') {
                digits(s, i + 4, 2)?
            } else {
                return None;
            };
            i += 6;
            let mut sec = 0;
            if s.get(i) == Some(&b':') {
                sec = digits(s, i + 1, 2)?;
                i += 3;
            }
            // 60 admits a leap second; it simply runs into the next minute.
            if hour > 23 || min > 59 || sec > 60 {
                return None;
            }
            secs += i64::from(hour * 3600 + min * 60 + sec);
            if matches!(s.get(i), Some(b'.' | b',')) {
                let start = i + 1;
                i = start;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                frac = &s[start..i];
            }
            match s.get(i) {
                None => {}
                Some(b'Z' | b'z') if i + 1 == s.len() => {}
                Some(&sign @ (b'+' | b'-')) => {
                    let oh = digits(s, i + 1, 2)?;
                    let om = match s.len() - (i + 3) {
                        0 => 0,
                        2 => digits(s, i + 3, 2)?,
                        3 if s[i + 3] == b':' => digits(s, i + 4, 2)?,
                        _ => return None,
                    };
                    if oh > 23 || om > 59 {
                        return None;
                    }
                    let off = i64::from(oh * 3600 + om * 60);
                    // Local time = UTC + offset, so UTC = local - offset.
                    secs += if sign == b'+' { -off } else { off };
                }
                Some(_) => return None,
            }
        }
        while let [rest @ .., b'0'] = frac {
            frac = rest;
        }
        let value = if frac.is_empty() {
            secs as f64
        } else {
            compose_decimal(secs, frac)?
        };
        Date::from_secs_f64(value)
    }

    /// Writes the ISO-8601 form (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`) to `out`.
    pub(crate) fn write_iso8601(self, out: &mut Vec<u8>) {
        let (whole, frac) = split_decimal(self.0);
        let days = whole.div_euclid(86_400);
        let sod = whole.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        push_num(out, y as u32, 4);
        out.push(b'-');
        push_num(out, m, 2);
        out.push(b'-');
        push_num(out, d, 2);
        out.push(b'T');
        push_num(out, sod / 3600, 2);
        out.push(b':');
        push_num(out, sod / 60 % 60, 2);
        out.push(b':');
        push_num(out, sod % 60, 2);
        if !frac.is_empty() {
            out.push(b'.');
            out.extend_from_slice(frac.as_bytes());
        }
        out.push(b'Z');
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(24);
        self.write_iso8601(&mut buf);
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

/// The error of parsing a [`Date`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO-8601 date between years 1 and 9999")]
pub struct DateParseError;

impl FromStr for Date {
    type Err = DateParseError;
    fn from_str(s: &str) -> Result<Date, DateParseError> {
        Date::parse_iso8601(s).ok_or(DateParseError)
    }
}

/// Splits `secs` into whole seconds (rounded down) and the decimal digits of the exact
/// remainder, so that [`compose_decimal`] gives back the very same `f64`.
///
/// Float arithmetic (`secs - secs.floor()`) is not exact for small negative values, so this
/// works on the shortest decimal text of `secs` and does the arithmetic on digits.
fn split_decimal(secs: f64) -> (i64, String) {
    if secs == secs.trunc() {
        return (secs as i64, String::new());
    }
    let text = format!("{}", secs.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let int: i64 = int_part.parse().unwrap_or(0);
    let frac = frac_part.trim_end_matches('0');
    if secs >= 0.0 {
        (int, frac.to_owned())
    } else {
        // -(int + 0.frac) = -(int + 1) + (1 - 0.frac)
        (-(int + 1), complement(frac))
    }
}

/// `whole + 0.frac` as the nearest `f64`, computed with a single rounding.
fn compose_decimal(whole: i64, frac: &[u8]) -> Option<f64> {
    let mut text = String::with_capacity(frac.len() + 24);
    if whole >= 0 {
        text.push_str(&whole.to_string());
        text.push('.');
        text.push_str(std::str::from_utf8(frac).ok()?);
    } else {
        // whole + 0.frac = -((-whole - 1) + (1 - 0.frac))
        let frac = std::str::from_utf8(frac).ok()?;
        text.push('-');
        text.push_str(&(-whole - 1).to_string());
        text.push('.');
        text.push_str(&complement(frac));
    }
    text.parse().ok()
}

/// The digits of `1 - 0.frac` for a non-empty fraction without trailing zeros.
fn complement(frac: &str) -> String {
    let mut out: Vec<u8> = frac.bytes().map(|b| b'9' - (b - b'0')).collect();
    // 0.999..9 + 0.000..1; the last digit of `frac` is non-zero, so this never carries.
    if let Some(last) = out.last_mut() {
        *last += 1;
    }
    while out.last() == Some(&b'0') {
        out.pop();
    }
    String::from_utf8(out).unwrap_or_default()
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

fn push_num(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut n = v;
    let mut i = buf.len();
    while n > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for _ in (buf.len() - i)..width {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn iso(d: Date) -> String {
        d.to_string()
    }

    #[test]
    fn known_dates() {
        let d = Date::parse_iso8601("2006-02-01T14:29:53Z").unwrap();
        assert_eq!(d.secs_f64(), 1_138_804_193.0);
        assert_eq!(iso(d), "2006-02-01T14:29:53Z");
        assert_eq!(Date::from_ymd_hms(2006, 2, 1, 14, 29, 53), Some(d));
        assert_eq!(iso(Date::EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(Date::parse_iso8601(""), Some(Date::EPOCH));
        assert_eq!(
            iso(Date::from_unix_secs(MIN_SECS).unwrap()),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            iso(Date::from_unix_secs(MAX_SECS_EXCLUSIVE - 1).unwrap()),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(Date::from_unix_secs(MAX_SECS_EXCLUSIVE), None);
        assert_eq!(Date::from_secs_f64(f64::NAN), None);
        assert_eq!(Date::from_secs_f64(-0.0).unwrap().secs_f64().to_bits(), 0);
    }

    #[test]
    fn fractions_and_offsets() {
        let d = Date::parse_iso8601("2006-02-01T14:29:53.25Z").unwrap();
        assert_eq!(d.secs_f64(), 1_138_804_193.25);
        assert_eq!(iso(d), "2006-02-01T14:29:53.25Z");
        let d = Date::parse_iso8601("1969-12-31T23:59:59.5Z").unwrap();
        assert_eq!(d.secs_f64(), -0.5);
        assert_eq!(iso(d), "1969-12-31T23:59:59.5Z");
        let a = Date::parse_iso8601("2006-02-01T16:29:53+02:00").unwrap();
        let b = Date::parse_iso8601("2006-02-01T12:29:53-0200").unwrap();
        assert_eq!(a.secs_f64(), 1_138_804_193.0);
        assert_eq!(a, b);
        assert_eq!(
            Date::parse_iso8601("2006-02-01").unwrap().secs_f64(),
            1_138_752_000.0
        );
        assert_eq!(
            Date::parse_iso8601("2006-02-01T14:29:53.000Z")
                .unwrap()
                .secs_f64(),
            1_138_804_193.0
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "2006-02-30T00:00:00Z",
            "2006-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2006-02-01T24:00:00Z",
            "2006-02-01T14:29:53.Z",
            "2006-02-01T14:29:53Zjunk",
            "2006-02-01X14:29:53Z",
            "20060201",
            "2006-02-01T14:29:53+2",
        ] {
            assert_eq!(Date::parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn tiny_negative_round_trips() {
        for secs in [
            -1e-300,
            -5e-324,
            -0.3,
            -1.3,
            -86_400.000_001,
            1e-300,
            0.1,
            1_700_000_000.123_456_7,
        ] {
            let d = Date::from_secs_f64(secs).unwrap();
            let back = Date::parse_iso8601(&iso(d)).unwrap();
            assert_eq!(
                back.secs_f64().to_bits(),
                secs.to_bits(),
                "{secs} -> {}",
                iso(d)
            );
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-719_162i64..2_932_896).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
