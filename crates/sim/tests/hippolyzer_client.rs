//! An independent client against the simulator: Hippolyzer's headless `HippoClient` (Python)
//! logs in, completes the handshake, sees the prims, chats and logs out, while one of our own
//! viewers watches from inside the region.
//!
//! Skipped with a notice when `python3` (or `$OSN_PYTHON`) or the `hippolyzer` package is
//! missing, except under `CI=true`, where that fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Viewer, login, run, wait_for};
use futures_lite::FutureExt;
use opensim_sim::{DEMO_TEXTURES, Scene, Sim, SimConfig, User};

/// The interpreter: `$OSN_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("OSN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}
/// The script's own steps time out after 30 s; this bounds the whole process.
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

/// Whether Python with Hippolyzer can run here; `false` (after a notice) means skip.
fn hippolyzer_available() -> bool {
    let probe = Command::new(python())
        .args(["-B", "-c", "import hippolyzer.lib.client.hippo_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let why = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "cannot import hippolyzer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run {}: {e}", python()),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the Hippolyzer test cannot run: {why}");
    }
    eprintln!("note: skipping the Hippolyzer client test: {why}");
    false
}

/// What the script printed and how it ended.
struct ScriptOutcome {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the script to completion on this (blocking) thread, killing it after `SCRIPT_LIMIT`.
fn run_script(args: &[String]) -> ScriptOutcome {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hippo_client.py");
    let mut child = Command::new(python())
        .arg("-B")
        .arg(script)
        .args(args)
        // aiohttp honours proxy variables; the simulator is on loopback.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on their own threads so that a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ScriptOutcome {
        success: status.is_some_and(|s| s.success()),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

#[test]
fn hippolyzer_logs_in_sees_the_region_chats_and_logs_out() {
    if !hippolyzer_available() {
        return;
    }
    run(180, async {
        let scene = Scene::default_demo();
        let prims = scene.prims.len();
        let region_name = scene.name.clone();
        let mut config = SimConfig::new(scene);
        // Frequent CoarseLocationUpdates so that the watcher sees the visitor soon.
        config.status_interval = Duration::from_millis(200);
        let hippo = User::new("Hippo", "Tester", "hungry hungry");
        let hippo_id = hippo.agent_id;
        config.users.push(hippo.clone());
        config.users.push(User::new("Watch", "Er", "secret"));
        let sim = Sim::start(config).await.unwrap();

        // Our own viewer in the region first, to see the visitor arrive and hear it.
        let watcher_login = login(&sim, "Watch", "Er", "secret").await;
        let watcher_id = watcher_login.agent_id;
        let mut watcher = Viewer::connect(&sim, watcher_login).await;
        watcher.until(|v| v.in_world(prims)).await;

        let chat = "Hello from Hippolyzer";
        let args = vec![
            sim.login_uri(),
            hippo.first.clone(),
            hippo.last.clone(),
            hippo.password.clone(),
            chat.to_owned(),
            prims.to_string(),
            watcher_id.to_string(),
        ];
        let mut script = smol::spawn(smol::unblock(move || run_script(&args)));

        // Watch until the visitor's chat is relayed, noting whether the simulator (its agent
        // list) and the watcher (CoarseLocationUpdate) saw it arrive.
        let sim_saw_agent = Cell::new(false);
        let watcher_saw_agent = Cell::new(false);
        let heard = |v: &Viewer| {
            v.chat
                .iter()
                .any(|(from, m)| from == "Hippo Tester" && m == chat)
        };
        let mut watch = |v: &Viewer| {
            if sim.agents().contains(&hippo_id) && sim.agent_region(hippo_id) == Some(0) {
                sim_saw_agent.set(true);
            }
            let coarse = v.coarse.as_ref();
            if coarse.is_some_and(|c| c.agents.iter().any(|a| a.agent_id == hippo_id)) {
                watcher_saw_agent.set(true);
            }
            heard(v) && sim_saw_agent.get() && watcher_saw_agent.get()
        };
        let early = async {
            watcher.until(&mut watch).await;
            None
        }
        .or(async { Some((&mut script).await) })
        .await;
        let outcome = match early {
            Some(outcome) => outcome,
            None => script.await,
        };
        let report: serde_json::Value =
            serde_json::from_str(outcome.stdout.trim()).unwrap_or_else(|e| {
                panic!(
                    "script printed no JSON ({e}); stdout:\n{}\nstderr:\n{}",
                    outcome.stdout, outcome.stderr
                )
            });
        assert!(
            outcome.success,
            "script failed: {report}\nstderr:\n{}",
            outcome.stderr
        );

        eprintln!("hippolyzer saw: {report}");
        // What Hippolyzer saw.
        assert_eq!(report["logged_in"], true);
        assert_eq!(report["agent_id"], hippo_id.to_string());
        assert_eq!(report["handshake"], true);
        assert_eq!(report["region_name"], region_name.as_str());
        let pos = &report["movement_complete"]["position"];
        assert!(pos[2].as_f64().unwrap() > 0.0, "{pos}");
        assert_eq!(report["prims"], prims);
        let mut want_textures: Vec<String> =
            DEMO_TEXTURES.iter().map(|t| t.id.to_string()).collect();
        want_textures.sort();
        assert_eq!(report["prim_textures"], serde_json::json!(want_textures));
        let own = report["heard"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["message"] == chat)
            .unwrap();
        assert_eq!(own["from"], "Hippo Tester");
        assert_eq!(own["source_id"], hippo_id.to_string());
        assert_eq!(own["chat_type"], 1, "normal chat");
        assert_eq!(report["logout_reply"], true);
        let avatars = report["avatars"].as_array().unwrap();
        for id in [hippo_id, watcher_id] {
            assert!(avatars.contains(&id.to_string().into()), "{avatars:?}");
        }

        // What the simulator and the watcher saw: the visitor arrived, its chat was relayed
        // to the watcher, and it is gone after logging out while the watcher stays.
        // The chat left after the CoarseLocationUpdate listing the visitor (the script waits
        // for it), so once the chat is heard the watcher has had that update too.
        watcher
            .until(|v| {
                watch(v);
                heard(v)
            })
            .await;
        assert!(
            sim_saw_agent.get(),
            "the simulator never listed the visitor"
        );
        assert!(
            watcher_saw_agent.get(),
            "the watcher's CoarseLocationUpdates never listed the visitor"
        );
        wait_for(|| !sim.agents().contains(&hippo_id)).await;
        assert_eq!(sim.agents(), vec![watcher_id]);
        let watcher_heard: Vec<&(String, String)> =
            watcher.chat.iter().filter(|(_, m)| m == chat).collect();
        assert_eq!(watcher_heard.len(), 1, "{:?}", watcher.chat);

        watcher.logout().await;
        sim.shutdown().await;
    });
}
