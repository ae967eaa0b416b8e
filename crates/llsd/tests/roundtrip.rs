//! Property tests: every value survives every format, and no input makes a parser panic.

#![allow(clippy::unwrap_used)]

mod common;

use common::any_value;
use opensim_llsd::fuzz_support::{check, xml_representable};
use opensim_llsd::{
    Error, Format, LimitKind, Limits, Value, detect_and_parse, from_binary, from_notation,
    from_xml, parse, parse_with_limits, serialize, to_binary, to_binary_with_header, to_notation,
    to_xml,
};
use proptest::prelude::*;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Map(m) => m.iter().map(|(_, v)| count(v)).sum(),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn binary_round_trip(v in any_value()) {
        prop_assert_eq!(from_binary(&to_binary(&v)).unwrap(), v.clone());
        prop_assert_eq!(from_binary(&to_binary_with_header(&v)).unwrap(), v);
    }

    #[test]
    fn notation_round_trip(v in any_value()) {
        let text = to_notation(&v);
        prop_assert!(std::str::from_utf8(&text).is_ok());
        prop_assert_eq!(from_notation(&text).unwrap(), v);
    }

    #[test]
    fn xml_round_trip(v in any_value()) {
        let back = from_xml(&to_xml(&v)).unwrap();
        prop_assert_eq!(back, xml_representable(&v));
    }

    #[test]
    fn xml_keeps_representable_values_exactly(v in any_value()) {
        let clean = xml_representable(&v);
        prop_assert_eq!(from_xml(&to_xml(&clean)).unwrap(), clean);
    }

    #[test]
    fn detection_finds_every_format(v in any_value()) {
        prop_assert_eq!(detect_and_parse(&to_xml(&v)).unwrap(), xml_representable(&v));
        prop_assert_eq!(detect_and_parse(&to_notation(&v)).unwrap(), v.clone());
        prop_assert_eq!(detect_and_parse(&to_binary_with_header(&v)).unwrap(), v.clone());
        if matches!(v, Value::Array(_) | Value::Map(_)) {
            prop_assert_eq!(detect_and_parse(&to_binary(&v)).unwrap(), v);
        }
    }

    #[test]
    fn limits_are_exact(v in any_value()) {
        let d = depth(&v);
        let n = count(&v);
        for f in Format::ALL {
            let bytes = serialize(f, &v);
            let at_limit = Limits::default().with_max_depth(d).with_max_elements(n);
            prop_assert!(parse_with_limits(f, &bytes, at_limit).is_ok());
            if d > 0 {
                let e = parse_with_limits(f, &bytes, at_limit.with_max_depth(d - 1)).unwrap_err();
                prop_assert!(matches!(e, Error::LimitExceeded { limit: LimitKind::Depth, .. }), "{:?}", e);
            }
            let e = parse_with_limits(f, &bytes, at_limit.with_max_elements(n - 1)).unwrap_err();
            prop_assert!(matches!(e, Error::LimitExceeded { limit: LimitKind::Elements, .. }), "{:?}", e);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        for f in Format::ALL {
            check(f, &data);
        }
        let _ = detect_and_parse(&data);
    }

    /// Damaged documents (a byte changed, a cut, a byte inserted) still get an answer,
    /// not a panic, and anything accepted round-trips.
    #[test]
    fn damaged_documents_never_panic(
        v in any_value(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0..3u8,
    ) {
        for f in Format::ALL {
            let mut bytes = serialize(f, &v);
            if bytes.is_empty() {
                continue;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
            for g in Format::ALL {
                check(g, &bytes);
            }
        }
    }
}

#[test]
fn nan_survives_every_format() {
    let payload = f64::from_bits(0x7ff8_dead_beef_0001);
    let v = Value::Array(vec![
        Value::Real(f64::NAN),
        Value::Real(-f64::NAN),
        Value::Real(payload),
    ]);
    for f in Format::ALL {
        let back = parse(f, &serialize(f, &v)).unwrap();
        for r in back.as_array().unwrap() {
            assert!(r.as_f64().unwrap().is_nan(), "{f:?}");
        }
    }
    // The binary format keeps the exact bits, payload and sign included.
    let back = from_binary(&to_binary(&v)).unwrap();
    let bits: Vec<u64> = back
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_f64().unwrap().to_bits())
        .collect();
    assert_eq!(
        bits,
        [f64::NAN.to_bits(), (-f64::NAN).to_bits(), payload.to_bits()]
    );
    // The text formats write every NaN as `nan`.
    assert_eq!(to_notation(&v), b"[rnan,rnan,rnan]");
}

#[test]
fn signed_zero_survives_every_format() {
    let v = Value::Array(vec![Value::Real(0.0), Value::Real(-0.0)]);
    for f in Format::ALL {
        let back = parse(f, &serialize(f, &v)).unwrap();
        let bits: Vec<u64> = back
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap().to_bits())
            .collect();
        assert_eq!(bits, [0, (-0.0f64).to_bits()], "{f:?}");
    }
}

#[test]
fn maximum_depth_does_not_overflow_the_stack() {
    let mut v = Value::Undef;
    for _ in 0..Limits::MAX_DEPTH_CEILING {
        v = Value::Array(vec![v]);
    }
    let limits = Limits::default().with_max_depth(usize::MAX);
    for f in Format::ALL {
        let bytes = serialize(f, &v);
        assert_eq!(parse_with_limits(f, &bytes, limits).unwrap(), v, "{f:?}");
        // One more level is refused by the ceiling even though the caller asked for more.
        let deeper = serialize(f, &Value::Array(vec![v.clone()]));
        let e = parse_with_limits(f, &deeper, limits).unwrap_err();
        assert!(matches!(
            e,
            Error::LimitExceeded {
                limit: LimitKind::Depth,
                max: Limits::MAX_DEPTH_CEILING,
                ..
            }
        ));
    }
}

#[test]
fn huge_declared_sizes_fail_fast() {
    // Each of these announces gigabytes in a few bytes; none may allocate it.
    let cases: [&[u8]; 4] = [
        b"b\x7f\xff\xff\xff",
        b"[\x7f\xff\xff\xff",
        b"{\x7f\xff\xff\xff",
        b"k\x7f\xff\xff\xff",
    ];
    for c in cases {
        assert!(from_binary(c).is_err());
    }
    assert!(matches!(
        from_notation(b"b(4000000000)\"ab\""),
        Err(Error::UnexpectedEof { .. })
    ));
    assert!(matches!(
        from_notation(b"s(18446744073709551616)\"\""),
        Err(Error::InvalidValue { .. })
    ));
    // A million-element array of undef fits in the input, so only the element limit stops it.
    let mut doc = b"[\x00\x0f\x42\x40".to_vec();
    doc.extend(std::iter::repeat_n(b'!', 1_000_000));
    doc.push(b']');
    let e = opensim_llsd::from_binary_with_limits(&doc, Limits::default().with_max_elements(1000))
        .unwrap_err();
    assert!(matches!(
        e,
        Error::LimitExceeded {
            limit: LimitKind::Elements,
            max: 1000,
            ..
        }
    ));
    assert_eq!(
        from_binary(&doc).unwrap_err(),
        Error::LimitExceeded {
            pos: 1_000_004,
            limit: LimitKind::Elements,
            max: 1_000_000
        }
    );
}
