#![allow(clippy::unwrap_used)]
//! `osn decode` end to end: the JSON contract, error handling, pcap input, and agreement with
//! Hippolyzer, an independent Python decoder, on every real capture.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn osn(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_osn"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn session_files() -> Option<Vec<PathBuf>> {
    let dir = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session")?;
    Some(opensim_testkit::files_with_extension(&dir, "bin"))
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn json_lines_follow_the_contract() {
    let Some(files) = session_files() else { return };
    let args: Vec<&str> = std::iter::once("decode")
        .chain(std::iter::once("--json"))
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let (ok, stdout, _) = osn(&args);
    assert!(ok);
    let objs = lines(&stdout);
    assert_eq!(objs.len(), files.len());
    for (o, f) in objs.iter().zip(&files) {
        let keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "file",
                "flags",
                "sequence",
                "message",
                "number",
                "frequency",
                "blocks",
                "acks",
                "trailing"
            ]
        );
        assert_eq!(o["file"], f.to_str().unwrap());
        let name = f
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .splitn(3, '_')
            .nth(2)
            .unwrap();
        assert_eq!(o["message"], name);
        for block in o["blocks"].as_object().unwrap().values() {
            assert!(block.is_array(), "every block is an array of instances");
        }
    }
    let chat = objs
        .iter()
        .find(|o| o["message"] == "ChatFromSimulator")
        .unwrap();
    let data = &chat["blocks"]["ChatData"][0];
    assert_eq!(data["Message"], hex(b"hello from hippolyzer\0"));
    assert_eq!(data["SourceID"], "aaaaaaaa-bbbb-4ccc-8ddd-000000000001");
    assert!(data["Position"].as_array().unwrap().len() == 3);
    assert_eq!(chat["frequency"], "Low");
    assert_eq!(chat["number"], 139);
    let ack = objs.iter().find(|o| o["message"] == "PacketAck").unwrap();
    assert_eq!(ack["number"], 0xFFFF_FFFBu32);
    assert_eq!(ack["frequency"], "Fixed");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_bad_file_prints_an_error_object_and_fails_after_the_rest() {
    let Some(files) = session_files() else { return };
    let tmp = std::env::temp_dir().join(format!("osn-bad-{}.bin", std::process::id()));
    std::fs::write(&tmp, [0x40, 0, 0, 0, 1]).unwrap();
    let (ok, stdout, _) = osn(&[
        "decode",
        "--json",
        tmp.to_str().unwrap(),
        files[0].to_str().unwrap(),
    ]);
    std::fs::remove_file(&tmp).unwrap();
    assert!(!ok);
    let objs = lines(&stdout);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["file"], tmp.to_str().unwrap());
    assert!(objs[0]["error"].as_str().unwrap().contains("too short"));
    assert!(objs[1].get("message").is_some(), "the rest still decodes");
}

#[test]
fn the_readable_dump_shows_text_fields_as_text() {
    let Some(files) = session_files() else { return };
    let chat = files
        .iter()
        .find(|f| f.to_str().unwrap().ends_with("ChatFromSimulator.bin"))
        .unwrap();
    let (ok, stdout, _) = osn(&["decode", chat.to_str().unwrap()]);
    assert!(ok);
    assert!(
        stdout.contains("Message: \"hello from hippolyzer\""),
        "{stdout}"
    );
    assert!(stdout.contains("ChatFromSimulator (Low 139)"));
}

#[test]
fn pcap_payloads_decode_like_the_datagram_files() {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http/login-caps") else {
        return;
    };
    let (ok, stdout, stderr) = osn(&[
        "decode",
        "--json",
        "--pcap",
        dir.join("capture.pcap").to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let from_pcap: Vec<String> = lines(&stdout)
        .iter()
        .map(|o| o["message"].as_str().unwrap().to_string())
        .collect();
    let from_files: Vec<String> = opensim_testkit::files_with_extension(&dir, "bin")
        .iter()
        .filter(|f| !f.to_str().unwrap().contains("http_resp_body"))
        .map(|f| {
            f.file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .splitn(3, '_')
                .nth(2)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(from_pcap, from_files);
}

/// Compares one of our field values with Hippolyzer's tagged value.
fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::String(h), Value::Object(t)) if t.contains_key("s") => {
            // Hippolyzer strips NULs and decodes text; compare our bytes the same way.
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            text.trim_end_matches('\0') == t["s"].as_str().unwrap().trim_end_matches('\0')
        }
        (Value::String(h), Value::Object(t)) if t.contains_key("b") => h == &t["b"],
        (Value::String(u), Value::Object(t)) if t.contains_key("u") => u == &t["u"],
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64().map(|v| v as f32) == b.as_f64().map(|v| v as f32),
        },
        (Value::Number(a), Value::Bool(b)) | (Value::Bool(b), Value::Number(a)) => {
            a.as_u64() == Some(u64::from(*b))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        // Hippolyzer renders IPADDR as a dotted string.
        (Value::String(a), Value::Object(t)) => t.get("s").is_some_and(|s| s == a),
        _ => ours == theirs,
    }
}

fn hippolyzer_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import hippolyzer"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !opensim_testkit::in_ci(),
            "CI=true but Hippolyzer is not installed (pip install hippolyzer)"
        );
        eprintln!("skipped: Hippolyzer is not installed (pip install hippolyzer)");
    }
    ok
}

#[test]
fn every_capture_decodes_as_hippolyzer_decodes_it() {
    let Some(root) = opensim_testkit::fixtures_dir() else {
        return;
    };
    if !hippolyzer_available() {
        return;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root.join("opensim-0.9.2.2-session")];
    for sub in ["login-caps", "texture-http", "texture-udp", "teleport"] {
        dirs.push(root.join("opensim-0.9.2.2-http").join(sub));
    }
    for d in dirs.iter().filter(|d| d.is_dir()) {
        files.extend(
            opensim_testkit::files_with_extension(d, "bin")
                .into_iter()
                .filter(|f| !f.to_str().unwrap().contains("http_resp_body")),
        );
    }
    for f in [
        "captured/region_handshake.bin",
        "captured/appended_acks.bin",
    ] {
        files.push(root.join(f));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hippolyzer_decode.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = lines(&String::from_utf8(out.stdout).unwrap());
    let mut args = vec!["decode".to_string(), "--json".to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let (ok, stdout, _) = osn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok);
    let ours = lines(&stdout);
    assert_eq!(ours.len(), theirs.len());
    let mut fields = 0;
    for (o, t) in ours.iter().zip(&theirs) {
        let ctx = o["file"].as_str().unwrap();
        assert!(
            t.get("error").is_none(),
            "{ctx}: Hippolyzer failed: {}",
            t["error"]
        );
        assert_eq!(o["message"], t["message"], "{ctx}");
        assert_eq!(o["sequence"], t["sequence"], "{ctx}");
        assert_eq!(o["flags"]["reliable"], t["reliable"], "{ctx}");
        let mut acks: Vec<u64> = o["acks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        acks.sort_unstable();
        let their_acks: Vec<u64> = t["acks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(acks, their_acks, "{ctx}");
        for (block, instances) in t["blocks"].as_object().unwrap() {
            let our_instances = o["blocks"][block]
                .as_array()
                .unwrap_or_else(|| panic!("{ctx}: no block {block}"));
            let their_instances = instances.as_array().unwrap();
            assert_eq!(our_instances.len(), their_instances.len(), "{ctx}: {block}");
            for (oi, ti) in our_instances.iter().zip(their_instances) {
                for (field, tv) in ti.as_object().unwrap() {
                    let ov = &oi[field.as_str()];
                    assert!(
                        same(ov, tv),
                        "{ctx}: {block}.{field}: ours {ov}, Hippolyzer {tv}"
                    );
                    fields += 1;
                }
            }
        }
    }
    assert!(fields > 1000, "compared only {fields} fields");
}
