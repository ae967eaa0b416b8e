//! `osn sim` as a separate process, driven by `osn login`, `osn say` and `osn texture`, then
//! stopped with Ctrl-C (SIGINT).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct SimProcess {
    child: Child,
    uri: String,
    regions: Vec<String>,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `osn sim` and reads its banner (waits on its output, not on time).
fn start_sim(regions: &str) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osn"))
        .args(["sim", "--port", "0", "--regions", regions])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut uri = None;
    let mut names = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("login URI: ") {
            uri = Some(u.to_owned());
        }
        if let Some(r) = line.strip_prefix("region: ") {
            names.push(r.split(" at grid").next().unwrap().to_owned());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    SimProcess {
        child,
        uri: uri.expect("osn sim printed no login URI"),
        regions: names,
    }
}

fn osn(sim: &SimProcess, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_osn"))
        .args(args)
        .args(["--grid", &sim.uri, "--user", "Demo Resident"])
        .args(["--password-env", "OSN_TEST_PW"])
        .env("OSN_TEST_PW", "opensim")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn sim_serves_login_say_and_texture_and_stops_on_ctrl_c() {
    let mut sim = start_sim("2");
    assert_eq!(sim.regions, ["Demo Region", "Demo Region 2"]);

    let login = osn(&sim, &["login"]);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let v: Value = serde_json::from_slice(&login.stdout).unwrap();
    assert_eq!(v["first_name"], "Demo");
    assert_eq!(v["session_id"], "<redacted>");
    assert_eq!(v["seed_capability"], "<redacted>");
    assert_eq!(v["region_size_x"], 256);

    let say = osn(&sim, &["say", "hello from osn"]);
    assert!(
        say.status.success(),
        "{}",
        String::from_utf8_lossy(&say.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&say.stdout).trim(),
        "said: hello from osn"
    );

    let scene = opensim_sim::Scene::default_demo();
    let id = scene.prims[0].texture;
    let want = opensim_textures::decode::decode_rgba8(&scene.textures[&id], 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for via in ["http", "udp"] {
        let out = dir.path().join(format!("{via}.png"));
        let tex = osn(
            &sim,
            &[
                "texture",
                "--level",
                "1",
                "--via",
                via,
                "--out",
                out.to_str().unwrap(),
                &id.to_string(),
            ],
        );
        assert!(
            tex.status.success(),
            "{via}: {}",
            String::from_utf8_lossy(&tex.stderr)
        );
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height),
            (want.width, want.height),
            "{via}"
        );
        // A discard-level fetch may stop before the last quality layers: close, not equal.
        let got = &buf[..info.buffer_size()];
        let diff: u64 = got
            .iter()
            .zip(&want.pixels)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / got.len() as f64;
        assert!(mean < 8.0, "{via}: mean difference {mean}");
    }

    let status = Command::new("kill")
        .args(["-INT", &sim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = sim.child.wait().unwrap();
    assert!(exit.success(), "osn sim exited with {exit:?} on SIGINT");
}
