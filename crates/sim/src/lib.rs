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
//!   and textures from [`Scene::textures`] ([`Scene::default_demo`] serves the project's own
//!   generated [`DEMO_TEXTURES`]), or else from [`SimConfig::asset_server`].
//! * UDP, one [`opensim_circuit::Endpoint`] per region: `UseCircuitCode` with an issued
//!   circuit code opens the agent's circuit (a child agent's then gets its
//!   `RegionHandshake`); `CompleteAgentMovement` makes the agent root and gets
//!   `RegionHandshake` (for a login or teleport arrival, as OpenSim) and
//!   `AgentMovementComplete`;
//!   `RegionHandshakeReply` gets the scene (`SimulatorViewerTimeMessage`, `LayerData` for the
//!   land, wind and clouds, `ObjectUpdate` for every prim and every root agent's avatar,
//!   `SimStats`). Then, periodically: `ImprovedTerseObjectUpdate` for moving prims
//!   ([`Scene::motions`]) and for avatars that moved, and
//!   `SimulatorViewerTimeMessage`, `SimStats`, `CoarseLocationUpdate` and wind.
//!   [`RunningSim::add_prim`] / [`RunningSim::remove_prim`] send `ObjectUpdate` / `KillObject`.
//!   `RequestImage` is served by OpenSim's image queue (discard levels and `Packet` as
//!   OpenSim reads them; `ImageNotInDatabase` or [`SimConfig::missing_texture`] for unknown
//!   ids); `AgentUpdate` control flags walk or fly the avatar, and the `autopilot`
//!   `GenericMessage` walks it to a point; an avatar appears to the region's other agents
//!   (`ObjectUpdate`, pcode 47) when it arrives and leaves (`KillObject`); `AgentThrottle` sets the
//!   circuit's rates; `ChatFromViewer` is relayed as `ChatFromSimulator` to every agent in
//!   range (the speaker included); `ImprovedInstantMessage` goes to the recipient's root
//!   agent (or the sender gets OpenSim's "not logged in" note); `TeleportLocationRequest`
//!   (and `TeleportLandmarkRequest` home) gets `TeleportStart` and then `TeleportLocal`,
//!   `TeleportFinish` on the event queue, or `TeleportFailed`; `LogoutRequest` gets
//!   `LogoutReply` and ends the agent in every region.
//! * Several regions side by side ([`SimConfig::with_regions`]; see [`SimConfig`]), with
//!   neighbours announced by `EnableSimulator` and child agents, and
//!   [`SimConfig::impairment`] to lose, duplicate or delay what the simulator sends.
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

mod avatars;
pub mod http;
pub mod scene;
mod state;
mod tick;
mod udp;
mod web;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opensim_circuit::{Endpoint, EndpointConfig, Impairment, Reliability, ThrottleRates};
use opensim_regions::terrain::RegionSize;

pub use scene::{DEMO_TEXTURES, DemoTexture, PLYWOOD, Pose, Prim, PrimKind, PrimMotion, Scene};

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
///
/// # Several regions
///
/// [`SimConfig::scene`] is the login region; [`SimConfig::more_regions`] adds others, each
/// placed where its [`Scene::grid`] says (they must not overlap; [`Scene::demo_row`] makes a
/// row). Every region has its own UDP port, as in OpenSimulator (the login region's is the HTTP
/// port, the others any free port, or `port + i` when `port` is set), and its own seed
/// capability and event queue per agent; HTTP is shared. Regions that touch (edges or corners)
/// are neighbours: on arrival in a region the agent gets `EnableSimulator` and
/// `EstablishAgentCommunication` on that region's event queue for each neighbour, whose child
/// circuit (`UseCircuitCode` without `CompleteAgentMovement`) gets the handshake and the scene.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Port for both HTTP and UDP; 0 picks a free one.
    pub port: u16,
    /// The region (the login region when there are several).
    pub scene: Scene,
    /// Further regions of the grid (see "Several regions" above).
    pub more_regions: Vec<Scene>,
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
    /// Period of `ImprovedTerseObjectUpdate`s for moving prims and of agent movement.
    pub terse_interval: Duration,
    /// Period of `SimulatorViewerTimeMessage`, `SimStats`, `CoarseLocationUpdate` and wind.
    pub status_interval: Duration,
    /// How long after a teleport the region left behind (when not a neighbour of the
    /// destination) sends `DisableSimulator` and forgets the agent (OpenSim: about 2.5 s).
    pub teleport_release_delay: Duration,
    /// What `RequestImage` for an unknown texture gets: `None` sends `ImageNotInDatabase`;
    /// `Some(j2c)` sends these bytes under the requested id, as OpenSim does with its
    /// missing-image asset.
    pub missing_texture: Option<Bytes>,
    /// Loss, duplication and delay applied to every datagram the simulator sends (each
    /// region's endpoint gets the seed plus its index); `None` sends cleanly. Overrides
    /// [`EndpointConfig::impairment`].
    pub impairment: Option<Impairment>,
    /// Base URL of an asset server speaking OpenSimulator's asset API (such as
    /// `opensim-assets`): textures the scenes do not hold are fetched from
    /// `{asset_server}/assets/{id}/data`, once, and kept.
    pub asset_server: Option<String>,
    /// Most root agents a region takes (OpenSim's estate `AgentLimit`); past it a login
    /// there is refused and a teleport there fails with OpenSim's "The region is full".
    /// `None`: no limit.
    pub agent_limit: Option<usize>,
    /// Most other avatars one agent is shown (full update, then terse updates and its
    /// removal): the first that arrive while it is there. Keeps a crowded region, such as a
    /// bot swarm's, from sending every avatar to every agent (O(n²)); viewers set similar
    /// limits on what they render. Default 64.
    pub max_avatars_in_view: usize,
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
            more_regions: Vec::new(),
            terse_interval: Duration::from_millis(200),
            status_interval: Duration::from_secs(3),
            teleport_release_delay: Duration::from_millis(2500),
            missing_texture: None,
            asset_server: None,
            impairment: None,
            agent_limit: None,
            max_avatars_in_view: 64,
        }
    }

    /// Defaults around several regions: the first is the login region (an empty list gives
    /// [`Scene::default_demo`]).
    pub fn with_regions(scenes: Vec<Scene>) -> Self {
        let mut it = scenes.into_iter();
        let mut config = SimConfig::new(it.next().unwrap_or_else(Scene::default_demo));
        config.more_regions = it.collect();
        config
    }

    /// The endpoint settings of region `index`, with the impairment applied.
    fn endpoint_for(&self, index: usize) -> EndpointConfig {
        let mut e = self.endpoint.clone();
        if let Some(imp) = &self.impairment {
            let mut imp = imp.clone();
            imp.seed = imp.seed.wrapping_add(index as u64);
            e.impairment = Some(imp);
        }
        e
    }

    /// Every region's scene, the login region first.
    pub fn scenes(&self) -> impl Iterator<Item = &Scene> {
        std::iter::once(&self.scene).chain(&self.more_regions)
    }
}

/// One region of a running simulator, as a test or a client needs to know it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimRegion {
    /// Position in [`RunningSim::regions`] (0: the login region).
    pub index: usize,
    /// Region name.
    pub name: String,
    /// Region handle (global metres of the south-west corner, x in the high half).
    pub handle: u64,
    /// Grid position in 256 m units.
    pub grid: (u32, u32),
    /// Size.
    pub size: RegionSize,
    /// Its UDP address.
    pub udp_addr: SocketAddr,
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
    /// The scene cannot be sent (an object or terrain encoder refused it), or regions
    /// overlap.
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
        let scenes: Vec<&Scene> = config.scenes().collect();
        for (i, a) in scenes.iter().enumerate() {
            for b in &scenes[i + 1..] {
                if state::overlaps(a, b) {
                    return Err(SimError::Scene(format!(
                        "regions {:?} and {:?} overlap",
                        a.name, b.name
                    )));
                }
            }
        }
        let prepared = scenes
            .iter()
            .map(|s| state::Prepared::new(s))
            .collect::<Result<Vec<_>, _>>()?;
        let (first, listener) = Self::bind_first(&config).await?;
        let bound = first.local_addr().map_err(|source| SimError::Bind {
            port: config.port,
            source,
        })?;
        let mut endpoints = vec![first];
        for i in 1..scenes.len() {
            let port = if config.port == 0 {
                0
            } else {
                config.port.saturating_add(i as u16)
            };
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match Endpoint::bind(addr, config.endpoint_for(i)) {
                Ok(e) => endpoints.push(e),
                Err(source) => {
                    for e in &endpoints {
                        e.shutdown().await;
                    }
                    return Err(SimError::Bind { port, source });
                }
            }
        }
        let mut regions = Vec::with_capacity(scenes.len());
        for (i, ((scene, prepared), e)) in scenes.iter().zip(prepared).zip(&endpoints).enumerate() {
            let addr = e.local_addr().map_err(|source| SimError::Bind {
                port: config.port,
                source,
            })?;
            regions.push(state::Region::new(i, (*scene).clone(), prepared, addr));
        }
        let shared = Arc::new(state::Shared::new(config, regions, bound.port()));
        let mut tasks = vec![smol::spawn(web::serve(shared.clone(), listener))];
        for (i, e) in endpoints.iter().enumerate() {
            tasks.push(smol::spawn(udp::serve(shared.clone(), i, e.clone())));
            tasks.push(smol::spawn(tick::run(shared.clone(), i)));
        }
        Ok(RunningSim {
            shared,
            endpoints,
            addr: bound,
            tasks,
        })
    }

    /// Binds the login region's UDP endpoint and the HTTP listener on one port number.
    async fn bind_first(
        config: &SimConfig,
    ) -> Result<(Endpoint, async_net::TcpListener), SimError> {
        let mut last_err = None;
        for _ in 0..16 {
            let udp_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
            let endpoint = match Endpoint::bind(udp_addr, config.endpoint_for(0)) {
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
            match tcp_listener(bound) {
                Ok(listener) => return Ok((endpoint, listener)),
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
    endpoints: Vec<Endpoint>,
    addr: SocketAddr,
    tasks: Vec<smol::Task<()>>,
}

impl RunningSim {
    /// The login URI (`http://127.0.0.1:<port>/`).
    pub fn login_uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The UDP address of the (login) region (the same port as HTTP).
    pub fn udp_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every region, the login region first.
    pub fn regions(&self) -> Vec<SimRegion> {
        self.shared
            .regions
            .iter()
            .map(|r| SimRegion {
                index: r.index,
                name: r.scene.name.clone(),
                handle: r.prepared.handle.0,
                grid: r.scene.grid,
                size: r.scene.size(),
                udp_addr: r.udp_addr,
            })
            .collect()
    }

    /// The UDP address of region `index`.
    pub fn region_udp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.shared.regions.get(index).map(|r| r.udp_addr)
    }

    /// The region where `agent_id` is a root agent (the avatar is there).
    pub fn agent_region(&self, agent_id: uuid::Uuid) -> Option<usize> {
        self.shared.regions.iter().find_map(|r| {
            r.sessions()
                .get(&agent_id)
                .filter(|s| s.root)
                .map(|_| r.index)
        })
    }

    /// Where `agent_id`'s avatar is: its root region and region-local position.
    pub fn agent_position(&self, agent_id: uuid::Uuid) -> Option<(usize, glam::Vec3)> {
        self.shared.regions.iter().find_map(|r| {
            r.sessions()
                .get(&agent_id)
                .filter(|s| s.root)
                .map(|s| (r.index, s.position))
        })
    }

    /// The regions where `agent_id` is a child agent.
    pub fn agent_children(&self, agent_id: uuid::Uuid) -> Vec<usize> {
        self.shared
            .regions
            .iter()
            .filter(|r| r.sessions().get(&agent_id).is_some_and(|s| !s.root))
            .map(|r| r.index)
            .collect()
    }

    /// The rates of the agent's last `AgentThrottle` in its root region, as applied to its
    /// circuit.
    pub fn agent_throttle(&self, agent_id: uuid::Uuid) -> Option<ThrottleRates> {
        let r = self.shared.regions.get(self.agent_region(agent_id)?)?;
        r.sessions().get(&agent_id).and_then(|s| s.throttle)
    }

    /// The login region's prims now (after [`RunningSim::add_prim`] and
    /// [`RunningSim::remove_prim`]).
    pub fn prims(&self) -> Vec<Prim> {
        self.prims_in(0)
    }

    /// Region `index`'s prims now.
    pub fn prims_in(&self, index: usize) -> Vec<Prim> {
        self.shared
            .regions
            .get(index)
            .map_or_else(Vec::new, |r| r.world().prims.values().cloned().collect())
    }

    /// Adds (or replaces, by local id) a prim in the login region and sends its
    /// `ObjectUpdate` to every agent there; `false` for local id 0 or a prim that cannot be
    /// encoded.
    pub async fn add_prim(&self, prim: Prim) -> bool {
        self.add_prim_in(0, prim).await
    }

    /// [`RunningSim::add_prim`] in region `index`.
    pub async fn add_prim_in(&self, index: usize, prim: Prim) -> bool {
        let Some(r) = self.shared.regions.get(index) else {
            return false;
        };
        if prim.local_id == 0 || prim.to_full_update().is_err() {
            return false;
        }
        let (messages, viewers) = {
            let mut world = r.world();
            world.motions.remove(&prim.local_id);
            let messages = udp::object_updates(
                &self.shared,
                index,
                std::iter::once((&prim, None)),
                self.shared.clock(),
            );
            world.prims.insert(prim.local_id, prim);
            let viewers: Vec<_> = world.viewers.values().cloned().collect();
            (messages, viewers)
        };
        for c in viewers {
            for m in &messages {
                let _ = c.send(m.clone(), Reliability::Reliable).await;
            }
        }
        true
    }

    /// Removes a prim from the login region and sends `KillObject` to every agent there;
    /// `false` when there is no such prim.
    pub async fn remove_prim(&self, local_id: u32) -> bool {
        self.remove_prim_in(0, local_id).await
    }

    /// [`RunningSim::remove_prim`] in region `index`.
    pub async fn remove_prim_in(&self, index: usize, local_id: u32) -> bool {
        let Some(r) = self.shared.regions.get(index) else {
            return false;
        };
        let viewers: Vec<_> = {
            let mut world = r.world();
            if world.prims.remove(&local_id).is_none() {
                return false;
            }
            world.motions.remove(&local_id);
            world.viewers.values().cloned().collect()
        };
        let Ok(kill) = opensim_regions::objects::kill_object(&[local_id]) else {
            return false;
        };
        for c in viewers {
            let _ = c.send(kill.clone(), Reliability::Reliable).await;
        }
        true
    }

    /// The accounts that may log in.
    pub fn users(&self) -> &[User] {
        &self.shared.config.users
    }

    /// The scene being served (the login region's, as configured).
    pub fn scene(&self) -> &Scene {
        &self.shared.config.scene
    }

    /// Region `index`'s scene as configured.
    pub fn scene_of(&self, index: usize) -> Option<&Scene> {
        self.shared.regions.get(index).map(|r| &r.scene)
    }

    /// Agents currently logged in (login done, not logged out).
    pub fn agents(&self) -> Vec<uuid::Uuid> {
        self.shared.agents()
    }

    /// Queues an event-queue message (`{message, body}`) for an agent, on the queue of its
    /// root region (else of a region where it has a child agent); `false` when the agent is
    /// not logged in.
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
        for e in &self.endpoints {
            e.shutdown().await;
        }
        for t in self.tasks {
            t.cancel().await;
        }
    }
}

/// A listening socket with a deep accept queue: a swarm of bots logging in at once opens
/// connections faster than a busy executor accepts them, and std's backlog of 128 then
/// loses connection attempts.
fn tcp_listener(addr: SocketAddr) -> std::io::Result<async_net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted simulator can take its port back at once.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    async_net::TcpListener::try_from(std::net::TcpListener::from(socket))
}
