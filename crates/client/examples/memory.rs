//! Memory per idle session: logs `N` bots (default 200) with [`Subsystems::NONE`] into the
//! loopback simulator and prints the growth of the process's resident set per session.
//!
//! `cargo run --release -p opensim-client --example memory -- 500`
//! (Linux only: reads `/proc/self/status`.)

use std::time::Instant;

use opensim_client::{Client, ClientConfig, LoginParams, Password, Subsystems};
use opensim_sim::{Scene, Sim, SimConfig, User};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    smol::block_on(async {
        let mut config = SimConfig::new(Scene::default_demo());
        for i in 0..n {
            config.users.push(User::new("Bot", &format!("N{i}"), "pw"));
        }
        let sim = Sim::start(config).await?;
        let mut cc = ClientConfig::new();
        cc.subsystems = Subsystems::NONE;
        cc.small_buffers = true;
        cc.event_capacity = 64;
        let client = Client::new(cc)?;
        // Warm up one session so that one-time allocations are not counted per bot.
        let warm = client
            .login(
                &LoginParams::builder(sim.login_uri(), "Bot", "N0", Password::new("pw")).build()?,
            )
            .await?;
        warm.wait_region_ready().await?;
        let before = rss_kib().unwrap_or(0);
        let started = Instant::now();
        let mut sessions = vec![warm];
        for i in 1..n {
            let params =
                LoginParams::builder(sim.login_uri(), "Bot", format!("N{i}"), Password::new("pw"))
                    .build()?;
            let s = client.login(&params).await?;
            s.wait_region_ready().await?;
            // Nobody reads the events of these bots: the bounded queue drops the oldest.
            sessions.push(s);
        }
        let after = rss_kib().unwrap_or(0);
        let per = (after.saturating_sub(before)) as f64 / (n.max(2) - 1) as f64;
        println!(
            "{n} sessions in {:.1?}; RSS {before} KiB -> {after} KiB: {per:.0} KiB per session",
            started.elapsed()
        );
        for s in &sessions {
            s.logout().await.ok();
        }
        sim.shutdown().await;
        Ok(())
    })
}
