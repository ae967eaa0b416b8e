//! Durability: SIGKILL during a burst of stores loses no acknowledged asset.
//!
//! The test re-runs its own binary as the server process (`child_server`, active only when
//! `OPENSIM_ASSETS_CHILD_DB` is set), reads the port it prints, stores assets from several
//! connections, kills it with SIGKILL mid-burst, restarts it on the same database and checks
//! every acknowledged id.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{Client, asset_xml, uuid_n};

/// Acknowledged (id, bytes) pairs.
type Acked = Vec<(String, Vec<u8>)>;

const DB_ENV: &str = "OPENSIM_ASSETS_CHILD_DB";

#[test]
fn child_server() {
    let Ok(db) = std::env::var(DB_ENV) else {
        return;
    };
    let server = smol::block_on(opensim_assets::AssetServer::bind(
        opensim_assets::ServerConfig::new(db),
    ))
    .unwrap();
    println!("PORT {}", server.local_addr().unwrap().port());
    smol::block_on(server.run()).unwrap();
}

/// The caller kills and waits for the child.
#[allow(clippy::zombie_processes)]
fn spawn(db: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
        .env(DB_ENV, db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let _ = child.wait();
            panic!("child exited before printing its port");
        }
        if let Some((_, p)) = line.trim().split_once("PORT ") {
            let port: u16 = p.parse().unwrap();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return (child, SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_asset() {
    let dir = tempfile::tempdir().unwrap();
    kill_9_during_burst(&format!(
        "sqlite:{}",
        dir.path().join("assets.db").display()
    ));
}

/// The asset server (not PostgreSQL) is killed: what it acknowledged must be committed.
#[test]
fn kill_9_loses_no_acknowledged_asset_postgres() {
    let Some(b) = common::Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    kill_9_during_burst(&b.fresh_location(dir.path()));
}

fn kill_9_during_burst(db: &str) {
    let (mut child, addr) = spawn(db);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(addr) else {
                    return;
                };
                for i in 0..100_000u64 {
                    let id = uuid_n(t << 32 | i);
                    let data = format!("payload {t}/{i}").into_bytes();
                    let Ok(r) = c.request("POST", "/assets/", &[], &asset_xml(&id, 7, "", &data))
                    else {
                        // The server may die between any two of these steps.
                        match Client::try_connect(addr) {
                            Ok(fresh) => {
                                c = fresh;
                                continue;
                            }
                            Err(_) => return, // server is gone
                        }
                    };
                    if r.status == 200
                        && r.body
                            .ends_with(format!("<string>{id}</string>").as_bytes())
                    {
                        acked.lock().unwrap().push((id, data));
                    }
                }
            })
        })
        .collect();
    // Kill once a good number of stores have been acknowledged (readiness, not a sleep).
    while acked.lock().unwrap().len() < 300 {
        std::thread::yield_now();
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    eprintln!("{} stores acknowledged before SIGKILL", acked.len());

    let (mut child, addr) = spawn(db);
    let mut c = Client::connect(addr);
    for (n, (id, data)) in acked.iter().enumerate() {
        if n % 19 == 18 {
            c = Client::connect(addr);
        }
        let r = c
            .request("GET", &format!("/assets/{id}/data"), &[], b"")
            .unwrap();
        assert_eq!((r.status, &r.body), (200, data), "{id} lost after kill -9");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
