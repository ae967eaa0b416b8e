//! A loopback simulator that behaves towards clients like an OpenSimulator 0.9.2.2 region.
//!
//! [`Sim::start`] binds one port number on 127.0.0.1 for both UDP and HTTP, as OpenSimulator
//! does, and serves:
//!
//! * HTTP: the XML-RPC `login_to_simulator` call at `/` (users from [`SimConfig::users`];
//!   OpenSimulator's answer members on success, its `key` refusal for a wrong password), the
//!   seed capability (`/CAPS/<hex>0000/`, granting `EventQueueGet`, `GetTexture`,
//!   `ViewerAsset`, `SimulatorFeatures`), the `EventQueueGet` long poll (queued events at once,
//!   otherwise held up to [`SimConfig::eq_idle_timeout`] and then `502`, `404` after logout)
//!   and textures from [`Scene::textures`].
//! * UDP, on an [`opensim_circuit::Endpoint`]: `UseCircuitCode` with an issued circuit code
//!   opens the agent's circuit and gets a `RegionHandshake`; `CompleteAgentMovement` gets
//!   `AgentMovementComplete`; `RegionHandshakeReply` gets the scene (`SimulatorViewerTimeMessage`,
//!   `LayerData` from the terrain, `ObjectUpdate` for every prim, `SimStats`);
//!   `ChatFromViewer` is relayed as `ChatFromSimulator` to every agent in range (the speaker
//!   included); `LogoutRequest` gets `LogoutReply` and closes the circuit.
//!
//! ```no_run
//! use opensim_sim::{Scene, Sim, SimConfig, User};
//!
//! smol::block_on(async {
//!     let mut config = SimConfig::new(Scene::default_demo());
//!     config.users.push(User::new("Test", "User", "password"));
//!     let sim = Sim::start(config).await?;
//!     println!("log in at {}", sim.login_uri());
//!     sim.shutdown().await;
//!     Ok::<_, opensim_sim::SimError>(())
//! })
//! .unwrap();
//! ```

#![forbid(unsafe_code)]

pub mod http;
pub mod scene;
mod state;
mod udp;
mod web;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use opensim_circuit::{Endpoint, EndpointConfig};

pub use scene::{PLYWOOD, Prim, PrimKind, Scene};

/// An account that may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// First name.
    pub first: String,
    /// Last name.
    pub last: String,
    /// Plain-text password (clients send `$1$` + its MD5).
    pub password: String,
    /// The agent's UUID.
    pub agent_id: uuid::Uuid,
}

impl User {
    /// An account with an agent id derived from the name.
    pub fn new(first: &str, last: &str, password: &str) -> Self {
        let seed = format!("{first} {last}").to_ascii_lowercase();
        let digest = <md5::Md5 as md5::Digest>::digest(seed.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest);
        User {
            first: first.to_owned(),
            last: last.to_owned(),
            password: password.to_owned(),
            agent_id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
        }
    }
}

/// Settings of a [`Sim`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Port for both HTTP and UDP; 0 picks a free one.
    pub port: u16,
    /// The region.
    pub scene: Scene,
    /// Accounts that may log in.
    pub users: Vec<User>,
    /// How long an `EventQueueGet` poll is held before the `502` (OpenSim: 58 s).
    pub eq_idle_timeout: Duration,
    /// Settings of the UDP endpoint and its circuits.
    pub endpoint: EndpointConfig,
    /// How long an idle keep-alive HTTP connection stays open.
    pub http_idle_timeout: Duration,
    /// Simulator version string sent in `AgentMovementComplete`.
    pub channel_version: String,
    /// How long a login waits for its `UseCircuitCode` before it is dropped (OpenSim: 60 s).
    pub login_expiry: Duration,
}

impl SimConfig {
    /// Defaults around `scene`: any free port, no users, OpenSim's timeouts.
    pub fn new(scene: Scene) -> Self {
        SimConfig {
            port: 0,
            scene,
            users: Vec::new(),
            eq_idle_timeout: Duration::from_secs(58),
            endpoint: EndpointConfig::server(),
            http_idle_timeout: Duration::from_secs(60),
            channel_version: "OpenSim 0.9.2.2 Yeti Dev (opensim-sim)".to_owned(),
            login_expiry: Duration::from_secs(60),
        }
    }
}

/// Why [`Sim::start`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The port could not be bound for both UDP and TCP.
    #[error("cannot bind port {port}: {source}")]
    Bind {
        /// The port tried (0: any).
        port: u16,
        /// The last socket error.
        source: std::io::Error,
    },
    /// The scene cannot be sent (an object or terrain encoder refused it).
    #[error("scene: {0}")]
    Scene(String),
}

/// The simulator entry point.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Binds 127.0.0.1 (UDP first, then TCP on the same port number, retrying on a
    /// collision when the port is 0) and starts serving.
    ///
    /// # Errors
    /// [`SimError::Bind`] when no port could be bound, [`SimError::Scene`] when the scene
    /// cannot be encoded.
    pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
        let prepared = state::Prepared::new(&config.scene)?;
        let mut last_err = None;
        for _ in 0..16 {
            let udp_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
            let endpoint = match Endpoint::bind(udp_addr, config.endpoint.clone()) {
                Ok(e) => e,
                Err(e) => {
                    last_err = Some(e);
                    if config.port != 0 {
                        break;
                    }
                    continue;
                }
            };
            let bound = match endpoint.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    endpoint.shutdown().await;
                    last_err = Some(e);
                    continue;
                }
            };
            match async_net::TcpListener::bind(bound).await {
                Ok(listener) => {
                    let shared = Arc::new(state::Shared::new(config, prepared, bound.port()));
                    let http_task = smol::spawn(web::serve(shared.clone(), listener));
                    let udp_task = smol::spawn(udp::serve(shared.clone(), endpoint.clone()));
                    return Ok(RunningSim {
                        shared,
                        endpoint,
                        addr: bound,
                        tasks: vec![http_task, udp_task],
                    });
                }
                Err(e) => {
                    endpoint.shutdown().await;
                    last_err = Some(e);
                    if config.port != 0 {
                        break;
                    }
                }
            }
        }
        Err(SimError::Bind {
            port: config.port,
            source: last_err.unwrap_or_else(|| std::io::Error::other("no attempt")),
        })
    }
}

/// A started simulator; [`RunningSim::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningSim {
    shared: Arc<state::Shared>,
    endpoint: Endpoint,
    addr: SocketAddr,
    tasks: Vec<smol::Task<()>>,
}

impl RunningSim {
    /// The login URI (`http://127.0.0.1:<port>/`).
    pub fn login_uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The UDP address of the region (the same port as HTTP).
    pub fn udp_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accounts that may log in.
    pub fn users(&self) -> &[User] {
        &self.shared.config.users
    }

    /// The scene being served.
    pub fn scene(&self) -> &Scene {
        &self.shared.config.scene
    }

    /// Agents currently logged in (login done, not logged out).
    pub fn agents(&self) -> Vec<uuid::Uuid> {
        self.shared.agents()
    }

    /// Queues an event-queue message (`{message, body}`) for an agent; `false` when the agent
    /// is not logged in.
    pub fn push_event(
        &self,
        agent_id: uuid::Uuid,
        message: &str,
        body: opensim_llsd::Value,
    ) -> bool {
        self.shared.push_event(agent_id, message, body)
    }

    /// Stops serving: closes every circuit, ends held polls and the listener.
    pub async fn shutdown(self) {
        self.shared.stop();
        self.endpoint.shutdown().await;
        for t in self.tasks {
            t.cancel().await;
        }
    }
}
