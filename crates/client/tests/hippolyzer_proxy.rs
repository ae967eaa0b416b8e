//! A whole session through Hippolyzer, the SL/OpenSimulator debugging proxy: login, caps and the
//! event queue over its HTTP proxy, the circuit over its SOCKS5 UDP relay.
//!
//! Needs `python3` with the `hippolyzer` package; skipped with a notice when absent (and failed
//! under `CI=true`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use opensim_circuit::{Direction, Tap};
use opensim_client::{ChatKind, Client, ClientConfig, DisconnectReason, SessionEvent};
use opensim_login::{LoginParams, Password};
use opensim_sim::{Scene, Sim, SimConfig, User};

/// A guard against hangs only; nothing asserts on timing.
fn run<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(120)).await;
        panic!("test hung");
    }))
}

/// Whether `python3` can import Hippolyzer.
fn hippolyzer_available() -> bool {
    Command::new("python3")
        .args(["-c", "import hippolyzer.apps.proxy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port that was free a moment ago (the proxy binds it by number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Hippolyzer's proxy; its process group dies when `stdin` closes (see the helper script).
struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    socks: SocketAddr,
    http: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Proxy {
    fn start() -> Proxy {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hippolyzer_proxy.py");
        let (socks, http, leap) = (free_port(), free_port(), free_port());
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script)
            .args([socks, http, leap].map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for mut out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = out.read(&mut buf) {
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let proxy = Proxy {
            stdin: child.stdin.take(),
            child,
            socks: SocketAddr::from(([127, 0, 0, 1], socks)),
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            log,
        };
        proxy.wait_ready();
        proxy
    }

    /// Polls both listeners (the HTTP one lives in a process of its own).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for addr in [self.socks, self.http] {
            while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "Hippolyzer did not listen on {addr}:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records the local socket and the senders of received datagrams.
#[derive(Default)]
struct Peers {
    received_from: Mutex<BTreeSet<SocketAddr>>,
    local: Mutex<BTreeSet<SocketAddr>>,
}

impl Tap for Peers {
    fn datagram(&self, direction: Direction, local: SocketAddr, remote: SocketAddr, _: &[u8]) {
        self.local.lock().unwrap().insert(local);
        if direction == Direction::Received {
            self.received_from.lock().unwrap().insert(remote);
        }
    }
}

fn set(m: &Mutex<BTreeSet<SocketAddr>>) -> BTreeSet<SocketAddr> {
    m.lock().unwrap().clone()
}

#[test]
fn session_through_hippolyzer() {
    if !hippolyzer_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with hippolyzer is required under CI"
        );
        eprintln!("skipping: python3 with the hippolyzer package is not installed");
        return;
    }
    let proxy = Proxy::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session(&proxy)));
    if let Err(e) = result {
        eprintln!("Hippolyzer's output:\n{}", proxy.log());
        std::panic::resume_unwind(e);
    }
}

fn session(proxy: &Proxy) {
    run(async {
        let sim_peers = Arc::new(Peers::default());
        let mut config = SimConfig::new(Scene::default_demo());
        config.users.push(User::new("Test", "User", "secret"));
        config.endpoint.tap = Some(sim_peers.clone());
        let sim = Sim::start(config).await.unwrap();
        let want = sim.scene().clone();

        let client_peers = Arc::new(Peers::default());
        let mut config = ClientConfig::new();
        config.socks5_proxy = Some(proxy.socks);
        config.http_proxy = Some(format!("http://{}", proxy.http));
        config.tap = Some(client_peers.clone());
        let client = Client::new(config).unwrap();
        // Hippolyzer spots a login by a `/login.cgi` URL or by the viewer's exact first line
        // (`<?xml version="1.0"?><methodCall>...`): this URL is `/`, so the body must match.
        let params = LoginParams::builder(sim.login_uri(), "Test", "User", Password::new("secret"))
            .build()
            .unwrap();
        let s = client.login(&params).await.unwrap();
        assert_eq!(s.agent_id(), sim.users()[0].agent_id);
        let region = s.wait_region_ready().await.unwrap();
        assert_eq!(region.name, want.name);
        assert_eq!(region.sim_addr, sim.udp_addr());

        // Every terrain patch and every prim arrives through the relay.
        let prims = want.prims.len();
        while !(s.terrain_progress().0 == s.terrain_progress().1
            && s.with_scene(|sc| sc.len()).unwrap() >= prims)
        {
            s.next_event().await.expect("session ended early");
        }
        assert_eq!(s.terrain_progress(), (256, 256));
        s.with_scene(|sc| {
            for p in &want.prims {
                assert_eq!(sc.get(p.local_id).unwrap().full_id, p.id);
            }
        })
        .unwrap();

        // Chat round trip: the simulator echoes our own chat.
        s.say("through the proxy", 0, ChatKind::Normal)
            .await
            .unwrap();
        loop {
            let e = s.next_event().await.expect("session ended early");
            if let SessionEvent::Chat { text, from_id, .. } = e
                && text == "through the proxy"
            {
                assert_eq!(from_id, s.agent_id());
                break;
            }
        }

        s.logout().await.unwrap();
        let mut last = None;
        while let Some(e) = s.next_event().await {
            last = Some(e);
        }
        assert_eq!(
            last,
            Some(SessionEvent::Disconnected {
                reason: DisconnectReason::LoggedOut
            })
        );
        assert!(sim.agents().is_empty());

        // The simulator heard the circuit only from the UDP socket Hippolyzer bound for the
        // association, never from the client's own socket.
        let log = proxy.log();
        let relay_port: u16 = log
            .lines()
            .find_map(|l| l.strip_prefix("Bound to 0.0.0.0:"))
            .expect("Hippolyzer reported no UDP association")
            .trim()
            .parse()
            .unwrap();
        let client_local = set(&client_peers.local);
        let sim_from = set(&sim_peers.received_from);
        assert_eq!(
            sim_from,
            BTreeSet::from([SocketAddr::from(([127, 0, 0, 1], relay_port))]),
            "client socket {client_local:?}"
        );
        assert!(client_local.is_disjoint(&sim_from), "{client_local:?}");
        // Login and the seed capability went through its HTTP proxy: it made a session of the
        // login reply, matched the circuit to it and learnt the region from the caps.
        assert!(
            log.contains(&format!("Created <Session {}>", s.session_id())),
            "{log}"
        );
        assert!(
            log.contains(&format!("Claimed <Session {}>", s.session_id())),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "Setting main region to <ProxiedRegion {}",
                want.name
            )),
            "{log}"
        );
        sim.shutdown().await;
    });
}
