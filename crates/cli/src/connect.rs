//! `osn connect`: log in, join the region, and write what it holds into a folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use opensim_client::{Client, ClientConfig, Session, SessionEvent, Subsystems, TextureVia};
use serde_json::json;
use uuid::Uuid;

use crate::grid::{CliError, Target, fail};
use crate::output;
use crate::tap::PcapTap;

/// Arguments of `osn connect`.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Grid and account.
    #[command(flatten)]
    pub account: crate::misc::Account,
    /// Seconds to stay in the region after everything is fetched.
    #[arg(long, default_value_t = 0)]
    pub stay: u64,
    /// Output folder.
    #[arg(long, default_value = "region")]
    pub out: PathBuf,
    /// Most textures to fetch.
    #[arg(long, default_value_t = 64)]
    pub max_textures: usize,
    /// How to fetch textures.
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
    /// Give up after this many seconds: on the login, and on waiting for the region's contents.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// Texture transport, as typed on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The GetTexture capability when granted, otherwise UDP.
    Auto,
    /// HTTP only.
    Http,
    /// UDP (RequestImage) only.
    Udp,
}

impl From<Via> for TextureVia {
    fn from(v: Via) -> Self {
        match v {
            Via::Auto => TextureVia::Auto,
            Via::Http => TextureVia::Http,
            Via::Udp => TextureVia::Udp,
        }
    }
}

fn bar(mp: &MultiProgress, label: &str, len: Option<u64>) -> ProgressBar {
    let pb = match len {
        Some(n) => mp.add(ProgressBar::new(n)),
        None => mp.add(ProgressBar::new_spinner()),
    };
    let template = if len.is_some() {
        "{prefix:>9} [{bar:30}] {pos}/{len} {msg}"
    } else {
        "{prefix:>9} {spinner} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(label.to_owned());
    pb
}

/// Runs `osn connect`.
///
/// # Errors
/// Login refused, grid unreachable, timeouts, output not writable.
pub async fn run(args: ConnectArgs, mp: MultiProgress) -> Result<(), CliError> {
    let started = Instant::now();
    std::fs::create_dir_all(args.out.join("textures"))
        .map_err(|e| fail(format!("cannot create {}: {e}", args.out.display())))?;
    let (target, params) = args.account.resolve().await?;
    let result = connect(&args, &target, &params, &mp, started).await;
    target.shutdown().await;
    result
}

async fn connect(
    args: &ConnectArgs,
    target: &Target,
    params: &opensim_login::LoginParams,
    mp: &MultiProgress,
    started: Instant,
) -> Result<(), CliError> {
    let builtin = target.sim.is_some();
    let user = format!("{} {}", params.first(), params.last());

    let tap = Arc::new(
        PcapTap::create(&args.out.join("session.pcap"))
            .map_err(|e| fail(format!("cannot create session.pcap: {e}")))?,
    );
    let mut config = ClientConfig::new();
    config.subsystems = Subsystems::ALL;
    config.tap = Some(tap.clone());
    config.timeout = Duration::from_secs(args.timeout.max(1));
    let client = Client::new(config)?;

    let status = bar(mp, "login", None);
    status.enable_steady_tick(Duration::from_millis(120));
    status.set_message(format!("{user} at {}", target.login_uri));
    let session = client.login(params).await?;
    let login_ms = started.elapsed().as_millis();
    status.set_prefix("circuit");
    status.set_message("handshake");
    let region = session.wait_region_ready().await?;
    let ready_ms = started.elapsed().as_millis();
    status.set_prefix("region");
    status.set_message(format!(
        "{} ({} x {} m)",
        region.name, region.size.0, region.size.1
    ));
    status.finish();

    let (_, total) = session.terrain_progress();
    let terrain_bar = bar(mp, "terrain", Some(total as u64));
    let objects_bar = bar(mp, "objects", None);
    let deadline = Instant::now() + Duration::from_secs(args.timeout.max(1));
    let (terrain_ms, objects_ms) =
        wait_contents(&session, &terrain_bar, &objects_bar, deadline, started).await;
    terrain_bar.finish();
    objects_bar.finish();

    // Textures the region's objects use.
    let ids: Vec<Uuid> = session
        .with_scene(output::scene_textures)
        .unwrap_or_default()
        .into_iter()
        .take(args.max_textures)
        .collect();
    let tex_bar = bar(mp, "textures", Some(ids.len() as u64));
    let tex_started = Instant::now();
    let mut fetched = 0usize;
    let mut failed = Vec::new();
    let mut texture_bytes = 0u64;
    for id in &ids {
        match fetch_texture(&session, *id, args.via, &args.out).await {
            Ok(n) => {
                fetched += 1;
                texture_bytes += n;
            }
            Err(e) => {
                tracing::warn!(%id, "texture: {e}");
                failed.push(json!({"id": id.to_string(), "error": e.0}));
            }
        }
        tex_bar.inc(1);
    }
    tex_bar.finish();
    let textures_ms = tex_started.elapsed().as_millis();

    if args.stay > 0 {
        let stay_bar = bar(mp, "stay", Some(args.stay));
        let until = Instant::now() + Duration::from_secs(args.stay);
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            match next_event_within(&session, left.min(Duration::from_secs(1))).await {
                Ok(Some(SessionEvent::Disconnected { reason })) => {
                    return Err(fail(format!("disconnected: {reason:?}")));
                }
                Ok(None) => return Err(fail("disconnected")),
                _ => {}
            }
            stay_bar.set_position(
                args.stay - until.saturating_duration_since(Instant::now()).as_secs(),
            );
        }
        stay_bar.finish();
    }

    // Files.
    let (patches, patches_total) = session.terrain_progress();
    if let Some(Err(e)) = session.with_terrain(|map| {
        std::fs::write(args.out.join("terrain.r32"), map.to_r32_bytes())?;
        let rgba = output::shade_terrain(map, region.water_height);
        output::write_png(
            &args.out.join("terrain.png"),
            map.width(),
            map.height(),
            &rgba,
        )
    }) {
        return Err(fail(format!("cannot write the terrain: {e}")));
    }
    let (objects, avatars) = match session.with_scene(|scene| {
        let avatars = scene.avatars().count();
        output::write_objects(&args.out.join("objects.jsonl"), scene).map(|n| (n, avatars))
    }) {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(fail(format!("cannot write objects.jsonl: {e}"))),
        None => (0, 0),
    };

    let logout_started = Instant::now();
    session.logout().await?;
    let logout_ms = logout_started.elapsed().as_millis();
    let stats = session.stats();
    tap.finish()
        .map_err(|e| fail(format!("cannot write session.pcap: {e}")))?;

    let summary = json!({
        "grid": target.login_uri,
        "builtin_simulator": builtin,
        "user": user,
        "region": {
            "name": region.name,
            "handle": region.handle,
            "width": region.size.0,
            "height": region.size.1,
            "water_height": region.water_height,
        },
        "terrain": {"patches": patches, "patches_expected": patches_total},
        "objects": objects,
        "avatars": avatars,
        "textures": {
            "wanted": ids.len(),
            "fetched": fetched,
            "failed": failed,
            "bytes": texture_bytes,
        },
        "circuit": {
            "packets_in": stats.packets_in,
            "packets_out": stats.packets_out,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "resends": stats.resends,
            "gave_up": stats.gave_up,
            "duplicates": stats.duplicates,
            "srtt_ms": stats.srtt.map(|d| d.as_secs_f64() * 1000.0),
            "captured_datagrams": tap.datagrams.load(std::sync::atomic::Ordering::Relaxed),
        },
        "timings_ms": {
            "login": login_ms,
            "region_ready": ready_ms,
            "terrain": terrain_ms,
            "objects": objects_ms,
            "textures": textures_ms,
            "logout": logout_ms,
            "total": started.elapsed().as_millis(),
        },
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| fail(e.to_string()))?;
    std::fs::write(args.out.join("summary.json"), text + "\n")
        .map_err(|e| fail(format!("cannot write summary.json: {e}")))?;
    println!(
        "{}: {patches}/{patches_total} terrain patches, {objects} objects, {fetched}/{} textures -> {}",
        region.name,
        ids.len(),
        args.out.display()
    );
    Ok(())
}

/// Waits until the terrain is complete and objects have stopped arriving for a moment (there
/// is no end marker for objects), or the deadline. Returns when each finished (ms from start).
async fn wait_contents(
    session: &Session,
    terrain_bar: &ProgressBar,
    objects_bar: &ProgressBar,
    deadline: Instant,
    started: Instant,
) -> (Option<u128>, Option<u128>) {
    const QUIET: Duration = Duration::from_millis(1500);
    let mut terrain_ms = None;
    let mut last_object = Instant::now();
    loop {
        let (have, total) = session.terrain_progress();
        terrain_bar.set_position(have as u64);
        if terrain_ms.is_none() && have >= total && total > 0 {
            terrain_ms = Some(started.elapsed().as_millis());
        }
        let objects = session.with_scene(|s| s.len()).unwrap_or(0);
        objects_bar.set_message(format!("{objects} received"));
        let now = Instant::now();
        if terrain_ms.is_some() && now.duration_since(last_object) >= QUIET {
            let objects_ms = last_object.duration_since(started).as_millis();
            return (terrain_ms, Some(objects_ms));
        }
        if now >= deadline {
            tracing::warn!("timed out waiting for the region's contents");
            return (terrain_ms, None);
        }
        let wait = QUIET.min(deadline - now);
        match next_event_within(session, wait).await {
            // Updates never stop (moving prims); only new objects mean the scene is still arriving.
            Ok(Some(SessionEvent::ObjectAdded { .. })) => {
                last_object = Instant::now();
            }
            Ok(Some(SessionEvent::Disconnected { reason })) => {
                tracing::warn!("disconnected: {reason:?}");
                return (terrain_ms, None);
            }
            Ok(None) => return (terrain_ms, None),
            _ => {}
        }
    }
}

/// The next event, or `Err(())` when none came within `wait`.
async fn next_event_within(session: &Session, wait: Duration) -> Result<Option<SessionEvent>, ()> {
    async { Ok(session.next_event().await) }
        .or(async {
            async_io::Timer::after(wait).await;
            Err(())
        })
        .await
}

/// Fetches one texture, decodes it and writes `textures/UUID.png`; the J2K size.
async fn fetch_texture(session: &Session, id: Uuid, via: Via, out: &Path) -> Result<u64, CliError> {
    let tex = session.texture(id, 0, via.into()).await?;
    let bytes = tex.j2k.len() as u64;
    output::write_png(
        &out.join("textures").join(format!("{id}.png")),
        tex.width,
        tex.height,
        &tex.rgba,
    )?;
    Ok(bytes)
}
