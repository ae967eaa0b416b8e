//! Where a command logs in: a grid given by `--grid`, or the built-in loopback simulator.

use std::fmt;

use opensim_login::{LoginParams, Password, StartLocation};
use opensim_sim::{RunningSim, Scene, Sim, SimConfig, User};

/// The account the built-in simulator accepts when no `--user` is given.
pub const DEMO_FIRST: &str = "Demo";
/// Last name of the built-in account.
pub const DEMO_LAST: &str = "Resident";
/// Password of the built-in accounts (a local toy server; nothing to protect).
pub const DEMO_PASSWORD: &str = "opensim";

/// A failure a user can meet, printed as one line.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(inner) = src {
            let t = inner.to_string();
            if !s.contains(&t) {
                s.push_str(": ");
                s.push_str(&t);
            }
            src = inner.source();
        }
        CliError(s)
    }
}

/// Builds a [`CliError`] from text.
pub fn fail(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// The grid a command talks to.
pub struct Target {
    /// The login URI.
    pub login_uri: String,
    /// The built-in simulator, when no grid was given (kept running until dropped/shut down).
    pub sim: Option<RunningSim>,
}

impl Target {
    /// `--grid` if given; otherwise starts the built-in simulator with the demo scene, with
    /// `extra_users` accounts besides the demo one.
    ///
    /// # Errors
    /// When the simulator cannot start.
    pub async fn resolve(
        grid: Option<&str>,
        regions: usize,
        extra_users: Vec<User>,
    ) -> Result<Target, CliError> {
        if let Some(g) = grid {
            let uri = if g.contains("://") {
                g.to_owned()
            } else {
                format!("http://{g}/")
            };
            return Ok(Target {
                login_uri: uri,
                sim: None,
            });
        }
        let sim = start_builtin(0, regions, extra_users, None, None).await?;
        tracing::info!(uri = %sim.login_uri(), "no --grid: started the built-in simulator");
        Ok(Target {
            login_uri: sim.login_uri(),
            sim: Some(sim),
        })
    }

    /// Stops the built-in simulator, if any.
    pub async fn shutdown(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

/// Starts the built-in simulator on `port` (0: any) with `regions` demo regions in a row.
///
/// # Errors
/// When it cannot bind.
pub async fn start_builtin(
    port: u16,
    regions: usize,
    extra_users: Vec<User>,
    asset_server: Option<String>,
    agent_limit: Option<usize>,
) -> Result<RunningSim, CliError> {
    let mut config = SimConfig::with_regions(Scene::demo_row(regions.max(1)));
    config.asset_server = asset_server;
    config.agent_limit = agent_limit;
    config.port = port;
    config
        .users
        .push(User::new(DEMO_FIRST, DEMO_LAST, DEMO_PASSWORD));
    config.users.extend(extra_users);
    Ok(Sim::start(config).await?)
}

/// Splits "First Last".
///
/// # Errors
/// When the name is not two words.
pub fn split_name(name: &str) -> Result<(String, String), CliError> {
    let mut parts = name.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(f), Some(l), None) => Ok((f.to_owned(), l.to_owned())),
        _ => Err(fail(format!("--user must be \"First Last\", got {name:?}"))),
    }
}

/// The password: from the named environment variable, the built-in default, or a prompt.
///
/// # Errors
/// When the variable is unset or the prompt fails.
pub fn password(env: Option<&str>, builtin: bool, who: &str) -> Result<String, CliError> {
    if let Some(var) = env {
        return std::env::var(var)
            .map_err(|_| fail(format!("environment variable {var} is not set")));
    }
    if builtin {
        return Ok(DEMO_PASSWORD.to_owned());
    }
    rpassword::prompt_password(format!("Password for {who}: "))
        .map_err(|e| fail(format!("cannot read the password: {e}")))
}

/// Login parameters for a user at a target.
///
/// # Errors
/// When the parameters are invalid (empty names).
pub fn login_params(
    uri: &str,
    first: &str,
    last: &str,
    password: &str,
    region: Option<&str>,
) -> Result<LoginParams, CliError> {
    let mut b = LoginParams::builder(uri, first, last, Password::new(password))
        .channel("osn")
        .version(env!("CARGO_PKG_VERSION"));
    if let Some(r) = region {
        b = b.start(StartLocation::Uri {
            region: r.to_owned(),
            x: 128.0,
            y: 128.0,
            z: 25.0,
        });
    }
    Ok(b.build()?)
}
