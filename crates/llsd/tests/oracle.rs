//! Cross-checks against the python `llsd` package (the reference implementation), through
//! `tests/oracle.py`: python must read what we write as the same value, and we must read
//! what python writes as the value python itself reads back.
//!
//! Skipped (with a notice) when `python3` or its `llsd` module is missing, except under
//! `CI=true`, where that is a failure. Install with `pip install llsd`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{leaf, tree};
use opensim_llsd::fuzz_support::xml_representable;
use opensim_llsd::{Date, Format, Map, Uuid, Value, parse, serialize};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The canonical JSON text of a value, byte-identical to what `oracle.py` prints for the
/// same value (`json.dumps(..., ensure_ascii=False, separators=(",", ":"))`).
fn canon(v: &Value, out: &mut String) {
    match v {
        Value::Undef => out.push_str("[\"undef\"]"),
        Value::Boolean(b) => write!(out, "[\"bool\",{b}]").unwrap(),
        Value::Integer(i) => write!(out, "[\"int\",{i}]").unwrap(),
        Value::Real(r) if r.is_nan() => out.push_str("[\"real\",\"nan\"]"),
        Value::Real(r) => write!(out, "[\"real\",\"{:016x}\"]", r.to_bits()).unwrap(),
        Value::String(s) => {
            out.push_str("[\"str\",");
            json_str(s, out);
            out.push(']');
        }
        Value::Uri(s) => {
            out.push_str("[\"uri\",");
            json_str(s, out);
            out.push(']');
        }
        Value::Uuid(u) => write!(out, "[\"uuid\",\"{}\"]", u.hyphenated()).unwrap(),
        Value::Date(d) => {
            let secs = d.secs_f64();
            let whole = secs.floor();
            let micros = whole as i64 * 1_000_000 + ((secs - whole) * 1e6).round() as i64;
            write!(out, "[\"date\",{micros}]").unwrap();
        }
        Value::Binary(b) => {
            out.push_str("[\"bin\",\"");
            for byte in b {
                write!(out, "{byte:02x}").unwrap();
            }
            out.push_str("\"]");
        }
        Value::Array(a) => {
            out.push_str("[\"array\",[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canon(x, out);
            }
            out.push_str("]]");
        }
        Value::Map(m) => {
            out.push_str("[\"map\",[");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                json_str(k, out);
                out.push(',');
                canon(x, out);
                out.push(']');
            }
            out.push_str("]]");
        }
    }
}

/// A JSON string escaped the way python's `json` module does with `ensure_ascii=False`.
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn canon_text(v: &Value) -> String {
    let mut s = String::new();
    canon(v, &mut s);
    s
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().collect())
}

fn date(secs: f64) -> Value {
    Value::Date(Date::from_secs_f64(secs).unwrap())
}

/// Hand-picked values: real message shapes and the corners of every type.
fn fixed_cases() -> Vec<Value> {
    let handle = 1_101_710_651_287_552u64;
    vec![
        Value::Array(
            ["EventQueueGet", "GetTexture", "SimulatorFeatures"]
                .map(Value::from)
                .to_vec(),
        ),
        map(vec![("ack", Value::Undef), ("done", false.into())]),
        map(vec![
            ("message", "TeleportFinish".into()),
            (
                "body",
                map(vec![(
                    "Info",
                    Value::Array(vec![map(vec![
                        (
                            "AgentID",
                            Value::Uuid(Uuid::from_u128(0xaaaaaaaa_bbbb_4ccc_8ddd_000000000001)),
                        ),
                        ("SimIP", Value::Binary(vec![127, 0, 0, 1])),
                        ("SimPort", 9001.into()),
                        ("RegionHandle", Value::Binary(handle.to_be_bytes().to_vec())),
                        (
                            "SeedCapability",
                            "http://127.0.0.1:9000/CAPS/2ebf0000/".into(),
                        ),
                        ("TeleportFlags", Value::Binary(vec![0, 0, 0, 16])),
                    ])]),
                )]),
            ),
        ]),
        Value::Array(
            [
                0.0,
                -0.0,
                1.5,
                24.009,
                1e300,
                -1e-7,
                5e-324,
                f64::MAX,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
            ]
            .map(Value::Real)
            .to_vec(),
        ),
        Value::Array(
            [
                "",
                "  lead and trail  ",
                "a'b\"c\\d",
                "tab\tnl\ncr\rcrlf\r\n",
                "é ☃ 𝄞",
                "\u{1}\u{7f}\u{1f}",
                "<&>]]>",
                "\u{fffe}x\u{ffff}",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        Value::Array([i32::MIN, -1, 0, 1, i32::MAX].map(Value::Integer).to_vec()),
        Value::Array(vec![
            date(0.0),
            date(1_138_804_193.0),
            date(-62_135_596_800.0),
            date(253_402_300_799.0),
            date(-0.5),
            date(1_795_000_000.25),
        ]),
        Value::Array(vec![Value::Uuid(Uuid::nil()), Value::Uuid(Uuid::max())]),
        Value::Array(vec![
            Value::Binary(vec![]),
            Value::Binary((0..=255).collect()),
        ]),
        Value::Uri("http://h/a'b\"c\\".into()),
        map(vec![
            ("", Value::Array(vec![])),
            ("m", Value::Map(Map::new())),
            (
                "k'ey\"",
                Value::Array(vec![Value::Array(vec![Value::Array(vec![])])]),
            ),
        ]),
        Value::Array(vec![true.into(), false.into(), Value::Undef]),
        Value::Undef,
        Value::Integer(42),
        Value::from("top-level string"),
    ]
}

/// Random values python can represent faithfully: unique map keys (python dicts), dates in
/// whole, half or quarter seconds (python keeps microseconds and its binary writer drops
/// fractions, so the reference is python's own reading of its output anyway).
fn random_cases(n: usize) -> Vec<Value> {
    let date = (
        -62_135_596_800i64..253_402_300_799,
        prop::sample::select(vec![0.0, 0.25, 0.5]),
    )
        .prop_map(|(s, f)| Date::from_secs_f64(s as f64 + f).unwrap());
    let strategy = tree(
        leaf(any::<String>(), common::any_real(), date),
        any::<String>(),
    );
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| unique_keys(strategy.new_tree(&mut runner).unwrap().current()))
        .collect()
}

fn unique_keys(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(unique_keys).collect()),
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, x) in m.into_entries() {
                out.insert(k, unique_keys(x));
            }
            Value::Map(out)
        }
        other => other,
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Xml => "xml",
        Format::Binary => "binary",
        Format::Notation => "notation",
    }
}

#[test]
fn python_llsd_agrees() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle.py");
    let child = Command::new("python3")
        .arg(&script)
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONUTF8", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !opensim_testkit::in_ci(),
                "python3 is required under CI=true: {e}"
            );
            eprintln!("skipped: cannot run python3 ({e})");
            return;
        }
    };

    let cases: Vec<Value> = fixed_cases().into_iter().chain(random_cases(300)).collect();
    let mut input = String::new();
    for (i, v) in cases.iter().enumerate() {
        let docs = Format::ALL.map(|f| B64.encode(serialize(f, v)));
        writeln!(
            input,
            "{i}\t{}\t{}\t{}\t{}\t{}",
            canon_text(v),
            canon_text(&xml_representable(v)),
            docs[0],
            docs[1],
            docs[2]
        )
        .unwrap();
    }
    // Feed stdin from another thread so that a full stdout pipe cannot deadlock us.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    // Checked after the exit status: a script that exits early closes the pipe on us.
    let written = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        assert!(
            !opensim_testkit::in_ci(),
            "python llsd is required under CI=true (pip install llsd): {stderr}"
        );
        eprintln!("skipped: {stderr}");
        return;
    }
    assert!(output.status.success(), "oracle.py failed: {stderr}");
    written.unwrap();

    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut failures = Vec::new();
    let (mut ok, mut checked) = (0, 0);
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "OK" => ok += 1,
            "FAIL" => failures.push(format!("case {} {}: {}", fields[1], fields[2], fields[3])),
            "PY" => {
                let (case, fmt, data, want) = (fields[1], fields[2], fields[3], fields[4]);
                let format = Format::ALL
                    .into_iter()
                    .find(|f| format_name(*f) == fmt)
                    .unwrap();
                let bytes = B64.decode(data).unwrap();
                match parse(format, &bytes) {
                    Ok(v) if canon_text(&v) == want => checked += 1,
                    Ok(v) => failures.push(format!(
                        "case {case}: python's {fmt} {:?}\n  we read  {}\n  python reads {want}",
                        String::from_utf8_lossy(&bytes),
                        canon_text(&v)
                    )),
                    Err(e) => failures.push(format!(
                        "case {case}: cannot parse python's {fmt} {:?}: {e}",
                        String::from_utf8_lossy(&bytes)
                    )),
                }
            }
            other => failures.push(format!("unexpected oracle output {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ok, cases.len() * 3, "python did not check every document");
    assert_eq!(checked, cases.len() * 3, "python did not answer every case");
    eprintln!(
        "python llsd agrees on {} values in 3 formats, both directions",
        cases.len()
    );
}
