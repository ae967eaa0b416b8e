//! `osn bots`: many agents in one process, on a few async tasks, with a live table and a
//! JSON report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use opensim_client::{ChatKind, Client, ClientConfig, Session, SessionEvent, Subsystems};
use serde_json::json;

use crate::grid::{self, CliError, Target, fail};

/// Arguments of `osn bots`.
#[derive(clap::Args, Debug)]
pub struct BotsArgs {
    /// How many bots.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Login URI of the grid; without it the built-in loopback simulator is started, with
    /// an account for every bot.
    #[arg(long)]
    pub grid: Option<String>,
    /// Account names; `{n}` becomes the bot's number (0-based).
    #[arg(long, default_value = "Bot {n}")]
    pub users: String,
    /// Read the (shared) password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Seconds the swarm stays after the last login.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// What each bot does while connected.
    #[arg(long, value_enum, default_value_t = Behaviour::Idle)]
    pub behaviour: Behaviour,
    /// Logins started per second.
    #[arg(long, default_value_t = 50.0)]
    pub login_rate: f64,
    /// Also write the final JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// What a bot does once it is in the region.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Stands still (AgentUpdate only).
    Idle,
    /// Walks to a new spot every few seconds.
    Walk,
    /// Says something every few seconds.
    Chat,
    /// Teleports within the region every few seconds.
    Teleport,
}

#[derive(Default)]
struct Counters {
    logging_in: AtomicU64,
    logged_in: AtomicU64,
    connected: AtomicU64,
    finished: AtomicU64,
    failed: AtomicU64,
    disconnected: AtomicU64,
    actions: AtomicU64,
    chat_heard: AtomicU64,
    login_retries: AtomicU64,
}

#[derive(Default)]
struct Outcomes {
    login_ms: Vec<u64>,
    ready_ms: Vec<u64>,
    errors: BTreeMap<String, u64>,
    sessions: Vec<Session>,
    resends: u64,
    gave_up: u64,
    packets_in: u64,
    packets_out: u64,
    srtt_ms: Vec<f64>,
}

fn name_for(pattern: &str, n: usize) -> String {
    pattern.replace("{n}", &n.to_string())
}

/// Resident memory of this process in bytes (Linux `/proc`; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

/// Runs `osn bots`.
///
/// # Errors
/// Bad arguments, or the simulator cannot start. Individual bot failures are counted in the
/// report; the command fails when no bot connected.
pub async fn run(args: BotsArgs, mp: MultiProgress) -> Result<(), CliError> {
    if args.count == 0 {
        return Err(fail("--count must be at least 1"));
    }
    if !(args.login_rate > 0.0 && args.login_rate.is_finite()) {
        return Err(fail("--login-rate must be a positive number"));
    }
    let mut names = Vec::with_capacity(args.count);
    for n in 0..args.count {
        names.push(grid::split_name(&name_for(&args.users, n))?);
    }
    raise_open_files_limit();
    let builtin = args.grid.is_none();
    let target = match &args.grid {
        Some(g) => Swarmed {
            login_uri: Target::resolve(Some(g), 1, Vec::new()).await?.login_uri,
            regions: Vec::new(),
            child: None,
        },
        None => {
            // Teleporting bots on the built-in simulator hop between two regions.
            let regions = if args.behaviour == Behaviour::Teleport {
                2
            } else {
                1
            };
            spawn_sim(regions, args.count, &args.users)?
        }
    };
    let password = grid::password(args.password_env.as_deref(), builtin, "the bots")?;
    swarm(&args, &target, &names, &password, &mp).await
}

/// The grid the swarm logs into; the built-in simulator runs as a child process, so that
/// its sockets and memory are not counted as the bots'.
struct Swarmed {
    login_uri: String,
    regions: Vec<String>,
    child: Option<std::process::Child>,
}

impl Drop for Swarmed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `osn sim` (this same executable) with an account per bot, and reads its banner.
fn spawn_sim(regions: usize, accounts: usize, names: &str) -> Result<Swarmed, CliError> {
    use std::io::BufRead;
    let exe = std::env::current_exe().map_err(|e| {
        fail(format!(
            "cannot find this executable to start the simulator: {e}"
        ))
    })?;
    let mut child = std::process::Command::new(exe)
        .args(["sim", "--port", "0", "--regions", &regions.to_string()])
        .args([
            "--accounts",
            &accounts.to_string(),
            "--account-names",
            names,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start the built-in simulator: {e}")))?;
    let mut swarmed = Swarmed {
        login_uri: String::new(),
        regions: Vec::new(),
        child: None,
    };
    let stdout = child.stdout.take();
    swarmed.child = Some(child);
    let Some(stdout) = stdout else {
        return Err(fail("the built-in simulator has no output"));
    };
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| fail(format!("reading the simulator's output: {e}")))?;
        if let Some(u) = line.strip_prefix("login URI: ") {
            swarmed.login_uri = u.to_owned();
        }
        if let Some(r) = line.strip_prefix("region: ") {
            swarmed
                .regions
                .push(r.split(" at grid").next().unwrap_or(r).to_owned());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    if swarmed.login_uri.is_empty() {
        return Err(fail("the built-in simulator did not start"));
    }
    tracing::info!(uri = %swarmed.login_uri, "no --grid: started the built-in simulator");
    Ok(swarmed)
}

/// Raises the soft limit on open files to the hard one: every bot holds a UDP socket and
/// an event-queue connection.
fn raise_open_files_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!("cannot raise the open-files limit: {e}");
            }
        }
    }
}

async fn swarm(
    args: &BotsArgs,
    target: &Swarmed,
    names: &[(String, String)],
    password: &str,
    mp: &MultiProgress,
) -> Result<(), CliError> {
    let rss_before = rss_bytes();
    let mut config = ClientConfig::new();
    config.subsystems = Subsystems::NONE;
    config.small_buffers = true;
    let client = Client::new(config)?;
    let counters = Arc::new(Counters::default());
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let started = Instant::now();

    let table = mp.add(ProgressBar::new(names.len() as u64));
    if let Ok(style) = ProgressStyle::with_template("bots [{bar:25}] {pos}/{len} {msg}") {
        table.set_style(style.progress_chars("=> "));
    }
    let stop = async_channel::bounded::<()>(1);
    let region_names: Arc<Vec<String>> = Arc::new(target.regions.clone());

    // Bots' lifetimes: log in, act until told to stop, log out.
    let mut tasks = Vec::with_capacity(names.len());
    let interval = Duration::from_secs_f64(1.0 / args.login_rate);
    let mut next_login = Instant::now();
    for (n, (first, last)) in names.iter().enumerate() {
        let now = Instant::now();
        if next_login > now {
            async_io::Timer::after(next_login - now).await;
        }
        next_login += interval;
        refresh(&table, &counters, &outcomes);
        let params = grid::login_params(&target.login_uri, first, last, password, None)?;
        let client = client.clone();
        let counters = counters.clone();
        let outcomes = outcomes.clone();
        let stop = stop.1.clone();
        let behaviour = args.behaviour;
        let regions = region_names.clone();
        tasks.push(smol::spawn(async move {
            let plan = Plan {
                n,
                behaviour,
                regions,
            };
            bot(plan, client, params, counters, outcomes, stop).await;
        }));
    }
    let all_started = Instant::now();
    // Let the swarm live, refreshing the table.
    let until = Instant::now() + Duration::from_secs(args.duration);
    while Instant::now() < until {
        refresh(&table, &counters, &outcomes);
        async_io::Timer::after(Duration::from_millis(250).min(until - Instant::now())).await;
    }
    let rss_peak = rss_bytes();
    // Collect circuit figures while the sessions are still up.
    {
        let mut o = outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sessions = std::mem::take(&mut o.sessions);
        for s in &sessions {
            let st = s.stats();
            o.resends += st.resends;
            o.gave_up += st.gave_up;
            o.packets_in += st.packets_in;
            o.packets_out += st.packets_out;
            if let Some(d) = st.srtt {
                o.srtt_ms.push(d.as_secs_f64() * 1000.0);
            }
        }
    }
    stop.0.close();
    for t in tasks {
        t.await;
    }
    refresh(&table, &counters, &outcomes);
    table.finish();

    let o = outcomes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut login_ms = o.login_ms.clone();
    login_ms.sort_unstable();
    let mut ready_ms = o.ready_ms.clone();
    ready_ms.sort_unstable();
    let mut srtt = o.srtt_ms.clone();
    srtt.sort_by(f64::total_cmp);
    let connected = counters.connected.load(Ordering::Relaxed);
    let per_bot = match (rss_before, rss_peak) {
        (Some(a), Some(b)) if connected > 0 => Some(b.saturating_sub(a) / connected),
        _ => None,
    };
    let report = json!({
        "count": names.len(),
        "grid": target.login_uri,
        "builtin_simulator": target.child.is_some(),
        "behaviour": format!("{:?}", args.behaviour).to_lowercase(),
        "logged_in": counters.logged_in.load(Ordering::Relaxed),
        "connected": connected,
        "logged_out": counters.finished.load(Ordering::Relaxed),
        "failed": counters.failed.load(Ordering::Relaxed),
        "disconnected": counters.disconnected.load(Ordering::Relaxed),
        "errors": o.errors,
        "login_retries": counters.login_retries.load(Ordering::Relaxed),
        "actions": counters.actions.load(Ordering::Relaxed),
        "chat_heard": counters.chat_heard.load(Ordering::Relaxed),
        "login_ms": {"p50": percentile(&login_ms, 0.5), "p95": percentile(&login_ms, 0.95), "max": login_ms.last()},
        "region_ready_ms": {"p50": percentile(&ready_ms, 0.5), "p95": percentile(&ready_ms, 0.95), "max": ready_ms.last()},
        "srtt_ms": {"p50": srtt.get(srtt.len() / 2), "max": srtt.last()},
        "resends": o.resends,
        "gave_up": o.gave_up,
        "packets_in": o.packets_in,
        "packets_out": o.packets_out,
        "rss_bytes": {"before": rss_before, "peak": rss_peak, "per_connected_bot": per_bot},
        "ramp_seconds": all_started.duration_since(started).as_secs_f64(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| fail(e.to_string()))?;
    if let Some(path) = &args.report {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
    }
    println!("{text}");
    if connected == 0 {
        return Err(fail("no bot connected"));
    }
    Ok(())
}

fn refresh(table: &ProgressBar, c: &Counters, o: &Mutex<Outcomes>) {
    let (p50, errors) = {
        let o = o.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v = o.ready_ms.clone();
        v.sort_unstable();
        (percentile(&v, 0.5), o.errors.values().sum::<u64>())
    };
    table.set_position(c.connected.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed));
    table.set_message(format!(
        "logging in {} | logged in {} | connected {} | failed {} | dropped {} | ready p50 {} ms | errors {}",
        c.logging_in.load(Ordering::Relaxed),
        c.logged_in.load(Ordering::Relaxed),
        c.connected.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.disconnected.load(Ordering::Relaxed),
        p50.map_or_else(|| "-".to_owned(), |v| v.to_string()),
        errors,
    ));
}

fn record_error(o: &Mutex<Outcomes>, e: &dyn std::fmt::Display) {
    let key = e.to_string();
    // Errors differing only in details (ids, addresses) still group by their first words.
    let key: String = key
        .split(':')
        .next()
        .unwrap_or(&key)
        .chars()
        .take(80)
        .collect();
    *o.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .errors
        .entry(key)
        .or_default() += 1;
}

/// What one bot does.
struct Plan {
    n: usize,
    behaviour: Behaviour,
    /// Regions to teleport between (empty: teleport within the current one).
    regions: Arc<Vec<String>>,
}

async fn bot(
    plan: Plan,
    client: Client,
    params: opensim_login::LoginParams,
    counters: Arc<Counters>,
    outcomes: Arc<Mutex<Outcomes>>,
    stop: async_channel::Receiver<()>,
) {
    let t0 = Instant::now();
    counters.logging_in.fetch_add(1, Ordering::Relaxed);
    // A connection that fails outright is tried again (twice, backing off), as a viewer's
    // user would; the retries are counted in the report.
    let mut attempt = 0u32;
    let session = loop {
        match client.login(&params).await {
            Err(opensim_client::ClientError::Login(opensim_login::LoginError::Transport(_)))
                if attempt < 2 =>
            {
                attempt += 1;
                counters.login_retries.fetch_add(1, Ordering::Relaxed);
                async_io::Timer::after(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            other => break other,
        }
    };
    counters.logging_in.fetch_sub(1, Ordering::Relaxed);
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            record_error(&outcomes, &e);
            return;
        }
    };
    let login_ms = t0.elapsed().as_millis() as u64;
    counters.logged_in.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = session.wait_region_ready().await {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        record_error(&outcomes, &e);
        let _ = session.logout().await;
        return;
    }
    let ready_ms = t0.elapsed().as_millis() as u64;
    counters.connected.fetch_add(1, Ordering::Relaxed);
    {
        let mut o = outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        o.login_ms.push(login_ms);
        o.ready_ms.push(ready_ms);
        o.sessions.push(session.clone());
    }
    // Act until told to stop; events are drained so the session's queue never fills.
    let mut tick = 0u64;
    let period = Duration::from_secs(3);
    let n = plan.n;
    let mut next_action = Instant::now() + period + Duration::from_millis((n as u64 * 37) % 3000);
    let dropped = loop {
        let wait = next_action.saturating_duration_since(Instant::now());
        let stopped = async {
            let _ = stop.recv().await;
            None
        };
        let ev = async { Some(session.next_event().await) }
            .or(stopped)
            .or(async {
                async_io::Timer::after(wait).await;
                Some(Some(SessionEvent::TeleportProgress {
                    message: String::new(),
                }))
            })
            .await;
        match ev {
            None => break false,
            Some(None) | Some(Some(SessionEvent::Disconnected { .. })) => break true,
            Some(Some(SessionEvent::Chat { .. })) => {
                counters.chat_heard.fetch_add(1, Ordering::Relaxed);
            }
            Some(Some(_)) => {}
        }
        if Instant::now() >= next_action {
            next_action = Instant::now() + period;
            tick += 1;
            let r = act(&session, &plan, tick).await;
            match r {
                Ok(true) => {
                    counters.actions.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => record_error(&outcomes, &e),
            }
        }
    };
    if dropped {
        counters.disconnected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match session.logout().await {
        Ok(()) => {
            counters.finished.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => record_error(&outcomes, &e),
    }
}

/// One action of a behaviour; whether something was done.
async fn act(
    session: &Session,
    plan: &Plan,
    tick: u64,
) -> Result<bool, opensim_client::ClientError> {
    let n = plan.n;
    // A cheap deterministic spread of spots over the middle of the region.
    let spot = |salt: u64| {
        let h = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tick.wrapping_mul(salt);
        let x = 32.0 + (h % 192) as f32;
        let y = 32.0 + ((h >> 16) % 192) as f32;
        glam::Vec3::new(x, y, 25.0)
    };
    match plan.behaviour {
        Behaviour::Idle => Ok(false),
        Behaviour::Walk => {
            session.move_to(spot(0xA5A5)).await?;
            Ok(true)
        }
        Behaviour::Chat => {
            session
                .say(&format!("bot {n} says hello #{tick}"), 0, ChatKind::Normal)
                .await?;
            Ok(true)
        }
        Behaviour::Teleport => {
            let here = session.region().map(|r| r.name).unwrap_or_default();
            let there = plan
                .regions
                .iter()
                .find(|r| **r != here)
                .cloned()
                .unwrap_or(here);
            session.teleport_to(&there, spot(0x5A5A)).await?;
            Ok(true)
        }
    }
}
