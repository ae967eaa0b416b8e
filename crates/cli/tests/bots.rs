//! `osn bots` end to end: the real binary, a swarm against the built-in loopback simulator.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn bots(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let result = Command::new(env!("CARGO_BIN_EXE_osn"))
        .arg("bots")
        .args(args)
        .arg("--report")
        .arg(&report)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "osn bots failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    // The report printed on stdout is the same document.
    let printed: Value = serde_json::from_slice(&result.stdout).unwrap();
    let written: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(printed, written);
    written
}

#[test]
fn fifty_bots_log_in_connect_and_log_out() {
    let r = bots(&["--count", "50", "--duration", "2", "--login-rate", "200"]);
    assert_eq!(r["count"], 50);
    assert_eq!(r["builtin_simulator"], true);
    assert_eq!(r["logged_in"], 50, "{r:#}");
    assert_eq!(r["connected"], 50, "{r:#}");
    assert_eq!(r["logged_out"], 50, "{r:#}");
    assert_eq!(r["failed"], 0, "{r:#}");
    assert_eq!(r["disconnected"], 0, "{r:#}");
    assert_eq!(r["errors"], serde_json::json!({}), "{r:#}");
    assert_eq!(r["gave_up"], 0, "{r:#}");
    assert!(r["packets_in"].as_u64().unwrap() >= 50 * 2, "{r:#}");
    assert!(r["login_ms"]["p50"].as_u64().is_some());
    if cfg!(target_os = "linux") {
        assert!(
            r["rss_bytes"]["per_connected_bot"].as_u64().is_some(),
            "{r:#}"
        );
    }
}

#[test]
fn chatting_bots_hear_each_other() {
    let r = bots(&[
        "--count",
        "4",
        "--duration",
        "5",
        "--behaviour",
        "chat",
        "--login-rate",
        "100",
    ]);
    assert_eq!(r["connected"], 4, "{r:#}");
    assert!(r["actions"].as_u64().unwrap() >= 4, "{r:#}");
    // Every bot is in range of every other: each line is heard by all four.
    assert!(r["chat_heard"].as_u64().unwrap() >= 4, "{r:#}");
}
