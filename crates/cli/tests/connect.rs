//! `osn connect` end to end: the real binary against the built-in loopback simulator, and
//! every output file checked against the scene the simulator serves.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use opensim_sim::Scene;
use serde_json::Value;

fn osn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_osn"));
    // No terminal: progress bars draw nothing; logs stay on stderr.
    c.env("RUST_LOG", "warn");
    c
}

fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn connect_writes_the_region_of_the_builtin_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("region");
    let result = osn()
        .args(["connect", "--max-textures", "16", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "osn connect failed: {stderr}");
    let scene = Scene::default_demo();
    let size = scene.size();

    // terrain.r32: the simulator's heightmap, to the precision of the patch codec.
    let r32 = std::fs::read(out.join("terrain.r32")).unwrap();
    assert_eq!(r32.len(), (size.width() * size.height() * 4) as usize);
    let want = scene.terrain.as_slice();
    let mut worst = 0f32;
    for (i, c) in r32.chunks_exact(4).enumerate() {
        let h = f32::from_le_bytes(c.try_into().unwrap());
        worst = worst.max((h - want[i]).abs());
    }
    assert!(
        worst < 0.5,
        "terrain differs from the simulator's by {worst} m"
    );

    // terrain.png: the same size, not a flat colour.
    let (w, h, rgba) = read_png(&out.join("terrain.png"));
    assert_eq!((w, h), (size.width(), size.height()));
    let distinct: HashSet<&[u8]> = rgba.chunks_exact(4).collect();
    assert!(
        distinct.len() > 100,
        "terrain.png has {} colours",
        distinct.len()
    );

    // objects.jsonl: every prim of the scene, with its id, scale and texture.
    let text = std::fs::read_to_string(out.join("objects.jsonl")).unwrap();
    let objects: BTreeMap<u64, Value> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["local_id"].as_u64().unwrap(), v)
        })
        .collect();
    for prim in &scene.prims {
        let o = objects
            .get(&u64::from(prim.local_id))
            .unwrap_or_else(|| panic!("prim {} missing", prim.local_id));
        assert_eq!(o["full_id"], prim.id.to_string());
        assert_eq!(o["pcode"], 9);
        let scale: Vec<f64> = serde_json::from_value(o["scale"].clone()).unwrap();
        for (a, b) in scale.iter().zip(prim.scale.to_array()) {
            assert!(
                (a - f64::from(b)).abs() < 1e-3,
                "scale of {}",
                prim.local_id
            );
        }
        if !scene.motions.contains_key(&prim.local_id) {
            let pos: Vec<f64> = serde_json::from_value(o["position"].clone()).unwrap();
            for (a, b) in pos.iter().zip(prim.position.to_array()) {
                assert!(
                    (a - f64::from(b)).abs() < 1e-2,
                    "position of {}",
                    prim.local_id
                );
            }
        }
        assert_eq!(o["textures"], serde_json::json!([prim.texture.to_string()]));
    }

    // textures/: every texture the prims use (up to the limit), decoded at full size.
    let mut used = Vec::new();
    let mut prims = scene.prims.clone();
    prims.sort_by_key(|p| p.local_id);
    for p in &prims {
        if !used.contains(&p.texture) {
            used.push(p.texture);
        }
    }
    used.truncate(16);
    for id in &used {
        let path = out.join("textures").join(format!("{id}.png"));
        let (w, h, _) = read_png(&path);
        let j2k = &scene.textures[id];
        let img = opensim_textures::decode::decode_rgba8(j2k, 0).unwrap();
        assert_eq!((w, h), (img.width, img.height), "{id}");
    }
    assert_eq!(
        std::fs::read_dir(out.join("textures")).unwrap().count(),
        used.len()
    );

    // summary.json agrees with the files.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["region"]["name"], scene.name);
    assert_eq!(summary["region"]["width"], size.width());
    let patches = u64::from(size.width() / 16 * (size.height() / 16));
    assert_eq!(summary["terrain"]["patches"], patches);
    assert_eq!(summary["terrain"]["patches_expected"], patches);
    assert_eq!(summary["objects"], objects.len());
    assert_eq!(summary["textures"]["fetched"], used.len());
    // Not a timing assertion: null means the wait for objects ran into --timeout.
    assert!(summary["timings_ms"]["objects"].is_u64(), "{summary:#}");
    let c = &summary["circuit"];
    // How many datagrams carry the terrain and objects depends on how the simulator packs
    // them; that both directions carried traffic, and the exact count below, do not.
    assert!(c["packets_in"].as_u64().unwrap() > 0 && c["packets_out"].as_u64().unwrap() > 0);
    // Every datagram of the circuit is counted once, and captured once.
    assert_eq!(
        c["packets_in"].as_u64().unwrap() + c["packets_out"].as_u64().unwrap(),
        c["captured_datagrams"].as_u64().unwrap(),
        "{c:#}"
    );

    // session.pcap: every datagram decodes, both directions, the whole session is there.
    let decoded = osn()
        .args(["decode", "--json", "--pcap"])
        .arg(out.join("session.pcap"))
        .output()
        .unwrap();
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stdout)
    );
    let names: Vec<String> = String::from_utf8(decoded.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        names.len() as u64,
        summary["circuit"]["captured_datagrams"].as_u64().unwrap()
    );
    for want in [
        "UseCircuitCode",
        "CompleteAgentMovement",
        "RegionHandshake",
        "RegionHandshakeReply",
        "AgentMovementComplete",
        "LayerData",
        "ObjectUpdate",
        "LogoutRequest",
        "LogoutReply",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in the capture");
    }
}

#[test]
fn unreachable_grid_is_one_clear_line_and_a_failure() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    connect_fails(&format!("http://127.0.0.1:{port}/"), "x", &[]);
}

#[test]
fn wrong_password_is_refused_with_the_grids_reason() {
    let sim = smol::block_on(async {
        let mut config = opensim_sim::SimConfig::new(Scene::default_demo());
        config
            .users
            .push(opensim_sim::User::new("Some", "One", "right"));
        opensim_sim::Sim::start(config).await.unwrap()
    });
    let line = connect_fails(&sim.login_uri(), "wrong", &[]);
    smol::block_on(sim.shutdown());
    assert!(
        line.contains("osn: error: login refused: wrong name or password"),
        "{line}"
    );
}

/// `osn connect` against `grid`; asserts one `osn: error:` line and a failure, and returns it.
fn connect_fails(grid: &str, password: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let result = osn()
        .args([
            "connect",
            "--user",
            "Some One",
            "--password-env",
            "OSN_TEST_PW",
        ])
        .args(extra)
        .arg("--grid")
        .arg(grid)
        .arg("--out")
        .arg(dir.path())
        .env("OSN_TEST_PW", password)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("osn: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

#[test]
fn a_full_region_is_one_clear_line_and_a_failure() {
    let sim = smol::block_on(async {
        let mut config = opensim_sim::SimConfig::new(Scene::default_demo());
        config
            .users
            .push(opensim_sim::User::new("Some", "One", "right"));
        config.agent_limit = Some(0);
        opensim_sim::Sim::start(config).await.unwrap()
    });
    let line = connect_fails(&sim.login_uri(), "right", &[]);
    smol::block_on(sim.shutdown());
    assert!(line.contains("the region is full"), "{line}");
}

#[test]
fn a_grid_that_never_answers_times_out_with_one_clear_line() {
    // Accepts connections and reads nothing back: the login hangs until osn gives up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let grid = format!("http://{}/", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            open.push(stream);
            if open.len() > 16 {
                break;
            }
        }
    });
    let line = connect_fails(&grid, "x", &["--timeout", "2"]);
    assert!(line.contains("timed out"), "{line}");
    drop(held);
}
