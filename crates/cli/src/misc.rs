//! The small subcommands: `login`, `say`, `texture`, `sim`.

use std::path::PathBuf;
use std::time::Duration;

use futures_lite::FutureExt;
use opensim_client::{ChatKind, Client, ClientConfig, Session, SessionEvent, Subsystems};
use opensim_login::LoginClient;
use serde_json::json;
use uuid::Uuid;

use crate::connect::Via;
use crate::grid::{self, CliError, Target, fail};

/// Where to log in and as whom (shared by the small subcommands).
#[derive(clap::Args, Debug)]
pub struct Account {
    /// Login URI of the grid; without it the built-in loopback simulator is started.
    #[arg(long)]
    pub grid: Option<String>,
    /// Account name, "First Last" (default on the built-in simulator: "Demo Resident").
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password from this environment variable (otherwise: prompt).
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Start region name.
    #[arg(long)]
    pub region: Option<String>,
}

impl Account {
    /// Resolves the grid and the credentials into login parameters.
    pub async fn resolve(&self) -> Result<(Target, opensim_login::LoginParams), CliError> {
        let target = Target::resolve(self.grid.as_deref(), 1, Vec::new()).await?;
        let builtin = target.sim.is_some();
        let user = match (&self.user, builtin) {
            (Some(u), _) => u.clone(),
            (None, true) => format!("{} {}", grid::DEMO_FIRST, grid::DEMO_LAST),
            (None, false) => return Err(fail("--user \"First Last\" is needed with --grid")),
        };
        let (first, last) = grid::split_name(&user)?;
        let password = grid::password(self.password_env.as_deref(), builtin, &user)?;
        let params = grid::login_params(
            &target.login_uri,
            &first,
            &last,
            &password,
            self.region.as_deref(),
        )?;
        Ok((target, params))
    }
}

/// Arguments of `osn login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    account: Account,
}

/// Runs `osn login`.
///
/// # Errors
/// Login refused or grid unreachable.
pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    let (target, params) = args.account.resolve().await?;
    let result = LoginClient::new()?.login(&params).await;
    target.shutdown().await;
    let r = result?;
    const HIDDEN: &str = "<redacted>";
    let out = json!({
        "first_name": r.first_name,
        "last_name": r.last_name,
        "agent_id": r.agent_id.to_string(),
        "session_id": HIDDEN,
        "secure_session_id": HIDDEN,
        "circuit_code": HIDDEN,
        "seed_capability": HIDDEN,
        "sim_addr": r.sim_addr.to_string(),
        "region_x": r.region_x,
        "region_y": r.region_y,
        "region_size_x": r.region_size_x,
        "region_size_y": r.region_size_y,
        "region_handle": r.region_handle(),
        "start_location": r.start_location,
        "look_at": r.look_at,
        "message": r.message,
        "agent_access": r.agent_access,
        "agent_access_max": r.agent_access_max,
        "seconds_since_epoch": r.seconds_since_epoch,
        "inventory_root": r.inventory_root.map(|u| u.to_string()),
        "inventory_folders": r.inventory_skeleton.len(),
        "library_folders": r.library_skeleton.len(),
        "buddies": r.buddy_list.len(),
        "map_server_url": r.map_server_url,
        "other_members": r.extra.keys().collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| fail(e.to_string()))?
    );
    Ok(())
}

/// Arguments of `osn say`.
#[derive(clap::Args, Debug)]
pub struct SayArgs {
    #[command(flatten)]
    account: Account,
    /// Chat channel (0: public).
    #[arg(long, default_value_t = 0)]
    channel: i32,
    /// Shout (100 m) instead of saying (20 m).
    #[arg(long)]
    shout: bool,
    /// What to say.
    text: String,
}

/// Logs in with `subsystems`, waits for the region, runs `f` on the session, logs out, and
/// stops the built-in simulator when one was started; `f`'s error, or the first one met.
async fn with_session(
    account: &Account,
    subsystems: Subsystems,
    f: impl AsyncFnOnce(&Session) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let (target, params) = account.resolve().await?;
    let mut config = ClientConfig::new();
    config.subsystems = subsystems;
    let result = async {
        let session = Client::new(config)?.login(&params).await?;
        session.wait_region_ready().await?;
        f(&session).await?;
        session.logout().await?;
        Ok::<_, CliError>(())
    }
    .await;
    target.shutdown().await;
    result
}

/// Runs `osn say`: the text is said, and the simulator's echo of it awaited (a few seconds).
///
/// # Errors
/// Login refused, grid unreachable, disconnected.
pub async fn say(args: SayArgs) -> Result<(), CliError> {
    let kind = if args.shout {
        ChatKind::Shout
    } else {
        ChatKind::Normal
    };
    with_session(&args.account, Subsystems::NONE, async |session| {
        session.say(&args.text, args.channel, kind).await?;
        if args.channel == 0 {
            let me = session.agent_id();
            let heard = async {
                while let Some(ev) = session.next_event().await {
                    if let SessionEvent::Chat { from_id, text, .. } = ev
                        && from_id == me
                        && text == args.text
                    {
                        return true;
                    }
                }
                false
            }
            .or(async {
                async_io::Timer::after(Duration::from_secs(5)).await;
                false
            })
            .await;
            if heard {
                println!("said: {}", args.text);
            } else {
                tracing::warn!("the simulator did not echo the chat back");
            }
        }
        Ok(())
    })
    .await
}

/// Arguments of `osn texture`.
#[derive(clap::Args, Debug)]
pub struct TextureArgs {
    #[command(flatten)]
    account: Account,
    /// Discard level (0: full size; each level halves it).
    #[arg(long, default_value_t = 0)]
    level: u8,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    via: Via,
    /// Output PNG file.
    #[arg(long)]
    out: PathBuf,
    /// The texture's asset id.
    id: Uuid,
}

/// Runs `osn texture`.
///
/// # Errors
/// Login refused, texture missing or undecodable, output not writable.
pub async fn texture(args: TextureArgs) -> Result<(), CliError> {
    with_session(&args.account, Subsystems::NONE, async |session| {
        let img = session
            .texture(args.id, args.level, args.via.into())
            .await?;
        crate::output::write_png(&args.out, img.width, img.height, &img.rgba)
            .map_err(|e| fail(format!("cannot write {}: {e}", args.out.display())))?;
        println!(
            "{}: {} x {} from {} bytes of JPEG 2000 -> {}",
            args.id,
            img.width,
            img.height,
            img.j2k.len(),
            args.out.display()
        );
        Ok(())
    })
    .await
}

/// Arguments of `osn sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Port for HTTP and UDP (0: any free port).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The scene to serve.
    #[arg(long, value_enum, default_value_t = SceneName::Default)]
    scene: SceneName,
    /// Regions side by side.
    #[arg(long, default_value_t = 1)]
    regions: usize,
    /// Also create this many accounts named by `--account-names` (password "opensim"), for
    /// `osn bots`.
    #[arg(long, default_value_t = 0)]
    accounts: usize,
    /// Names of the extra accounts; `{n}` becomes the number (0-based).
    #[arg(long, default_value = "Bot {n}")]
    account_names: String,
    /// An asset server (e.g. `osn assets serve`) for textures the scene does not hold.
    #[arg(long, value_name = "URL")]
    assets: Option<String>,
    /// Most agents a region takes; logins and teleports past it are refused with "The
    /// region is full" (default: no limit).
    #[arg(long, value_name = "N")]
    agent_limit: Option<usize>,
}

/// Scenes `osn sim` can serve.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SceneName {
    /// The demo: hills, a few dozen prims of varied shapes, some moving, textured.
    Default,
}

/// Runs `osn sim` until Ctrl-C.
///
/// # Errors
/// When the port cannot be bound.
pub async fn sim(args: SimArgs) -> Result<(), CliError> {
    let SceneName::Default = args.scene;
    let mut extra = Vec::with_capacity(args.accounts);
    for n in 0..args.accounts {
        let (first, last) = grid::split_name(&args.account_names.replace("{n}", &n.to_string()))?;
        extra.push(opensim_sim::User::new(&first, &last, grid::DEMO_PASSWORD));
    }
    let sim = grid::start_builtin(
        args.port,
        args.regions,
        extra,
        args.assets.clone(),
        args.agent_limit,
    )
    .await?;
    println!("login URI: {}", sim.login_uri());
    for r in sim.regions() {
        println!(
            "region: {} at grid {},{} (UDP {})",
            r.name, r.grid.0, r.grid.1, r.udp_addr
        );
    }
    for u in sim.users().iter().take(1) {
        println!("user: {} {}  password: {}", u.first, u.last, u.password);
    }
    if args.accounts > 0 {
        println!(
            "users: {} accounts named {:?}  password: {}",
            args.accounts,
            args.account_names,
            grid::DEMO_PASSWORD
        );
    }
    println!("Ctrl-C stops it.");
    let (tx, rx) = async_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .map_err(|e| fail(format!("cannot install the Ctrl-C handler: {e}")))?;
    let _ = rx.recv().await;
    eprintln!("stopping");
    sim.shutdown().await;
    Ok(())
}
