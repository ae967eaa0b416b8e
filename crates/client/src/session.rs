//! A logged-in [`Session`]: its circuits, tasks and state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event as Notify;
use glam::{Quat, Vec3};
use opensim_caps::{Capabilities, Event as EqEvent, ShutdownHandle};
use opensim_circuit::{CloseReason, Connection, Endpoint, EndpointConfig, Event, Reliability};
use opensim_login::LoginResponse;
use opensim_messages::{
    AgentThrottle, AgentUpdate, ChatFromViewer, CompleteAgentMovement, GenericMessage,
    ImprovedInstantMessage, LogoutRequest, MapNameRequest, Message, TeleportLocationRequest,
    UseCircuitCode, agent_throttle, agent_update, chat_from_viewer, complete_agent_movement,
    generic_message, improved_instant_message, logout_request, map_name_request,
    teleport_location_request, use_circuit_code,
};
use opensim_regions::handshake::{RegionHandle, RegionHandshake};
use opensim_regions::scene::{self, DecodeOptions, Scene, SceneEvent};
use opensim_regions::terrain::{self, Heightmap, RegionSize};
use opensim_textures::{ByteRange, ImageRequest, Target, UdpConfig, UdpEvent, UdpImageClient};
use smol::Task;
use uuid::Uuid;

use crate::client::{ClientInner, deadline};
use crate::error::{ClientError, TextureError};
use crate::types::{
    ChatKind, DisconnectReason, RegionSummary, SessionEvent, SessionStats, Texture, TextureVia,
};

/// Capabilities asked of every region's seed.
const WANTED_CAPS: &[&str] = &[
    "EventQueueGet",
    "GetTexture",
    "ViewerAsset",
    "SimulatorFeatures",
];
/// How long [`Session::logout`] waits for `LogoutReply` at most (libomv: 5 s).
const LOGOUT_WAIT: Duration = Duration::from_secs(5);
/// Socket buffers of a session with [`ClientConfig::small_buffers`](crate::ClientConfig).
const SMALL_RECV_BUFFER: usize = 256 * 1024;
const SMALL_SEND_BUFFER: usize = 64 * 1024;

/// Where the capabilities of a region stand.
#[derive(Debug, Clone)]
enum CapsState {
    Pending,
    Ready(Arc<Capabilities>),
    Failed(String),
}

/// One region the agent has a circuit to.
struct Region {
    conn: Connection,
    handle: u64,
    size: RegionSize,
    name: Option<String>,
    water_height: f32,
    region_id: Uuid,
    handshake: bool,
    movement_complete: bool,
    ready_reported: bool,
    caps: CapsState,
    eq_stop: Option<ShutdownHandle>,
    scene: Option<Scene>,
    terrain: Option<Heightmap>,
}

impl Region {
    fn new(conn: Connection, handle: u64, size: RegionSize) -> Self {
        Region {
            conn,
            handle,
            size,
            name: None,
            water_height: 0.0,
            region_id: Uuid::nil(),
            handshake: false,
            movement_complete: false,
            ready_reported: false,
            caps: CapsState::Pending,
            eq_stop: None,
            scene: None,
            terrain: None,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.conn.remote_addr()
    }

    fn is_ready(&self) -> bool {
        self.handshake && self.movement_complete
    }

    fn summary(&self) -> RegionSummary {
        RegionSummary {
            name: self.name.clone().unwrap_or_default(),
            handle: self.handle,
            size: (self.size.width(), self.size.height()),
            water_height: self.water_height,
            sim_addr: self.addr(),
            region_id: self.region_id,
        }
    }

    fn stop_event_queue(&mut self) {
        if let Some(stop) = self.eq_stop.take() {
            stop.shutdown();
        }
    }
}

/// Where a teleport stands.
#[derive(Debug, Clone, PartialEq)]
enum Teleport {
    Idle,
    Requested,
    Arriving,
    Failed(String),
    Done(RegionSummary),
}

/// The outcome of a UDP image transfer, kept until its waiters read it.
#[derive(Debug, Clone)]
enum UdpOutcome {
    Complete(Bytes),
    NotFound,
    Failed(String),
}

/// Everything that changes, under one lock (never held across an await).
struct State {
    main: Region,
    children: Vec<Region>,
    position: Vec3,
    look_at: Vec3,
    target: Option<Vec3>,
    teleport: Teleport,
    map_blocks: Vec<(String, u64)>,
    logging_out: bool,
    logout_replied: bool,
    main_closed: bool,
    ended: Option<DisconnectReason>,
    udp: Option<UdpImageClient>,
    udp_waiters: HashMap<Uuid, usize>,
    udp_results: HashMap<Uuid, UdpOutcome>,
    closed_stats: SessionStats,
}

impl State {
    fn region_mut(&mut self, addr: SocketAddr) -> Option<&mut Region> {
        if self.main.addr() == addr {
            Some(&mut self.main)
        } else {
            self.children.iter_mut().find(|r| r.addr() == addr)
        }
    }
}

/// What the tasks of a session share.
pub(crate) struct Shared {
    client: Arc<ClientInner>,
    login: LoginResponse,
    endpoint: Endpoint,
    state: Mutex<State>,
    /// Woken on every state change callers may wait for.
    changed: Notify,
    /// Woken when the `AgentUpdate` task should send at once.
    update_now: Notify,
    events_tx: async_channel::Sender<SessionEvent>,
    events_rx: async_channel::Receiver<SessionEvent>,
    events_dropped: AtomicU64,
    tasks: Mutex<Vec<Task<()>>>,
    /// Keeps the SOCKS5 UDP association (and so its relay) alive.
    _socks5: Option<opensim_circuit::socks5::Association>,
}

/// The last [`Session`] handle stops the session's tasks when dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop_tasks();
    }
}

/// A logged-in agent: cheap to clone, every method takes `&self`.
///
/// Its tasks (one receive loop per circuit, the event-queue poll, the `AgentUpdate` timer)
/// run on smol's global executor and stop when [`logout`](Session::logout) returns or the
/// last clone is dropped (dropping without logout leaves the agent in the region until the
/// simulator times it out).
///
/// Events go to a bounded queue of [`ClientConfig::event_capacity`](crate::ClientConfig)
/// entries; when the reader falls behind, the oldest events are dropped (counted in
/// [`SessionStats::events_dropped`]) so that the circuits never wait for the reader. The
/// state (`region`, `with_scene`, `with_terrain`) is always complete whatever was dropped.
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("agent_id", &self.agent_id())
            .field("sim", &self.shared().login.sim_addr)
            .finish_non_exhaustive()
    }
}

fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

fn text(b: &Bytes) -> String {
    opensim_messages::codec::text(b).into_owned()
}

fn nul_terminated(s: &str, max: usize) -> Bytes {
    // Cut on a character boundary so the bytes stay UTF-8.
    let mut end = s.len().min(max.saturating_sub(1));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = Vec::with_capacity(end + 1);
    v.extend_from_slice(&s.as_bytes()[..end]);
    v.push(0);
    v.into()
}

fn xor_uuid(a: Uuid, b: Uuid) -> Uuid {
    Uuid::from_u128(a.as_u128() ^ b.as_u128())
}

impl Session {
    pub(crate) async fn start(
        client: Arc<ClientInner>,
        login: LoginResponse,
    ) -> Result<Session, ClientError> {
        let config = &client.config;
        let mut ep = EndpointConfig::client();
        if config.small_buffers {
            ep.recv_buffer = Some(SMALL_RECV_BUFFER);
            ep.send_buffer = Some(SMALL_SEND_BUFFER);
            ep.max_circuits = 16;
        }
        ep.tap = config.tap.clone();
        // A libcurl built without poll() (curl-sys's bundled one, unless built as this
        // workspace builds it) fails on descriptors numbered 1024 or more: a program linking
        // us elsewhere may have one, so UDP sockets leave the low numbers to HTTP.
        ep.fd_floor = Some(1024);
        let mut bind = unspecified_for(login.sim_addr);
        let socks5 = match config.socks5_proxy {
            Some(proxy) => {
                let creds = config
                    .socks5_credentials
                    .as_ref()
                    .map(|(u, p)| (u.as_str(), p.as_str()));
                let assoc = opensim_circuit::socks5::associate(proxy, creds).await?;
                ep.socks5_relay = Some(assoc.relay_addr());
                bind = unspecified_for(assoc.relay_addr());
                Some(assoc)
            }
            None => None,
        };
        let endpoint = Endpoint::bind(bind, ep)?;
        let conn = endpoint.connect(login.sim_addr)?;
        let size =
            RegionSize::new(login.region_size_x, login.region_size_y).unwrap_or(RegionSize::LEGACY);
        let mut main = Region::new(conn.clone(), login.region_handle(), size);
        Self::attach_world(&mut main, config.subsystems);
        let look_at = login
            .look_at
            .map(Vec3::from_array)
            .filter(|v| v.is_finite() && v.length_squared() > 1e-6)
            .unwrap_or(Vec3::X);
        let (events_tx, events_rx) = async_channel::bounded(config.event_capacity.max(1));
        let shared = Arc::new(Shared {
            client: client.clone(),
            endpoint,
            state: Mutex::new(State {
                main,
                children: Vec::new(),
                position: Vec3::new(128.0, 128.0, 25.0),
                look_at,
                target: None,
                teleport: Teleport::Idle,
                map_blocks: Vec::new(),
                logging_out: false,
                logout_replied: false,
                main_closed: false,
                ended: None,
                udp: None,
                udp_waiters: HashMap::new(),
                udp_results: HashMap::new(),
                closed_stats: SessionStats::default(),
            }),
            changed: Notify::new(),
            update_now: Notify::new(),
            events_tx,
            events_rx,
            events_dropped: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
            _socks5: socks5,
            login,
        });
        let session = Session {
            handle: Arc::new(Handle {
                shared: shared.clone(),
            }),
        };
        shared.spawn(recv_loop(shared.clone(), conn.clone()));
        conn.send(shared.use_circuit_code(), Reliability::Reliable)
            .await?;
        conn.send(shared.complete_agent_movement(), Reliability::Reliable)
            .await?;
        let seed = shared.login.seed_capability.clone();
        shared.spawn(event_queue_loop(shared.clone(), conn.remote_addr(), seed));
        shared.spawn(agent_update_loop(shared.clone()));
        Ok(session)
    }

    fn attach_world(region: &mut Region, subsystems: crate::Subsystems) {
        if subsystems.objects {
            let mut scene = Scene::new(DecodeOptions::FULL);
            scene.set_region_width(region.size.width() as f32);
            region.scene = Some(scene);
        }
        if subsystems.terrain {
            region.terrain = Some(Heightmap::new(region.size));
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The agent's id.
    pub fn agent_id(&self) -> Uuid {
        self.shared().login.agent_id
    }

    /// The session id.
    pub fn session_id(&self) -> Uuid {
        self.shared().login.session_id
    }

    /// The grid's login answer.
    pub fn login_response(&self) -> &LoginResponse {
        &self.shared().login
    }

    /// The next event; `None` once [`SessionEvent::Disconnected`] has been delivered.
    pub async fn next_event(&self) -> Option<SessionEvent> {
        self.shared().events_rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&self) -> Option<SessionEvent> {
        self.shared().events_rx.try_recv().ok()
    }

    /// Waits until the current region's handshake is done and the agent stands in it
    /// (`RegionHandshake` answered and `AgentMovementComplete` received).
    ///
    /// # Errors
    /// [`ClientError::Timeout`] past [`ClientConfig::timeout`](crate::ClientConfig), or
    /// [`ClientError::Disconnected`].
    pub async fn wait_region_ready(&self) -> Result<RegionSummary, ClientError> {
        let shared = self.shared();
        deadline(
            shared.client.config.timeout,
            "region handshake",
            shared.wait_for(|s| {
                if let Some(r) = &s.ended {
                    return Some(Err(ClientError::Disconnected(r.clone())));
                }
                s.main.is_ready().then(|| Ok(s.main.summary()))
            }),
        )
        .await?
    }

    /// The current region, once its handshake has arrived.
    pub fn region(&self) -> Option<RegionSummary> {
        let s = self.shared().lock();
        s.main.handshake.then(|| s.main.summary())
    }

    /// The other regions the agent has circuits to (neighbours, and regions left behind
    /// until they let go), once their handshake named them.
    pub fn neighbours(&self) -> Vec<RegionSummary> {
        let s = self.shared().lock();
        s.children
            .iter()
            .filter(|r| r.handshake)
            .map(Region::summary)
            .collect()
    }

    /// The agent's last known region-local position (login, `AgentMovementComplete`, local
    /// teleports, and its own avatar's updates when objects are on).
    pub fn position(&self) -> Vec3 {
        let s = self.shared().lock();
        let own = s.main.scene.as_ref().and_then(|sc| {
            sc.local_id(&self.agent_id())
                .and_then(|id| sc.region_transform(id))
        });
        own.map_or(s.position, |(p, _)| p)
    }

    /// Runs `f` on the current region's heightmap (`None` with the terrain subsystem off).
    pub fn with_terrain<R>(&self, f: impl FnOnce(&Heightmap) -> R) -> Option<R> {
        let s = self.shared().lock();
        s.main.terrain.as_ref().map(f)
    }

    /// Terrain patches of the current region received so far, and how many it has.
    pub fn terrain_progress(&self) -> (usize, usize) {
        let s = self.shared().lock();
        match &s.main.terrain {
            Some(t) => (t.patches_received(), t.patches_total()),
            None => (0, s.main.size.patch_count()),
        }
    }

    /// Runs `f` on the current region's objects (`None` with the objects subsystem off).
    pub fn with_scene<R>(&self, f: impl FnOnce(&Scene) -> R) -> Option<R> {
        let s = self.shared().lock();
        s.main.scene.as_ref().map(f)
    }

    /// The capabilities granted by the current region, once its seed has answered.
    pub fn capabilities(&self) -> Option<Arc<Capabilities>> {
        match &self.shared().lock().main.caps {
            CapsState::Ready(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Says `text` on `channel` (0 = public; other channels are heard by scripts only).
    ///
    /// # Errors
    /// [`ClientError::Disconnected`] after the session ended, [`ClientError::Circuit`].
    pub async fn say(&self, text: &str, channel: i32, kind: ChatKind) -> Result<(), ClientError> {
        let shared = self.shared();
        let conn = shared.main_conn()?;
        let msg = ChatFromViewer {
            agent_data: chat_from_viewer::AgentData {
                agent_id: self.agent_id(),
                session_id: self.session_id(),
            },
            chat_data: chat_from_viewer::ChatData {
                // Variable 2: at most 65535 bytes; OpenSim cuts above 1100 characters anyway.
                message: nul_terminated(text, 1100 * 4),
                type_: kind.to_u8(),
                channel,
            },
        };
        conn.send(msg, Reliability::Reliable).await?;
        Ok(())
    }

    /// Sends an ordinary instant message (dialog 0) to an agent.
    ///
    /// # Errors
    /// As [`say`](Session::say).
    pub async fn instant_message(&self, to: Uuid, text: &str) -> Result<(), ClientError> {
        let shared = self.shared();
        let conn = shared.main_conn()?;
        let (position, region_id) = {
            let s = shared.lock();
            (s.position, s.main.region_id)
        };
        let login = &shared.login;
        let name = format!("{} {}", login.first_name, login.last_name);
        let id = if to == login.agent_id {
            to
        } else {
            xor_uuid(login.agent_id, to)
        };
        let msg = ImprovedInstantMessage {
            agent_data: improved_instant_message::AgentData {
                agent_id: login.agent_id,
                session_id: login.session_id,
            },
            message_block: improved_instant_message::MessageBlock {
                from_group: false,
                to_agent_id: to,
                parent_estate_id: 0,
                region_id,
                position,
                offline: 0,
                dialog: 0,
                id,
                timestamp: 0,
                from_agent_name: nul_terminated(&name, 255),
                message: nul_terminated(text, 1024),
                binary_bucket: Bytes::from_static(&[0]),
            },
        };
        conn.send(msg, Reliability::Reliable).await?;
        Ok(())
    }

    /// Asks the simulator to walk the agent to a region-local position (OpenSimulator's
    /// `autopilot` generic message, as libopenmetaverse sends it) and turns the avatar
    /// towards it. Returns once the request is sent, not on arrival.
    ///
    /// # Errors
    /// [`ClientError::Misuse`] for a non-finite position, and as [`say`](Session::say).
    pub async fn move_to(&self, position: Vec3) -> Result<(), ClientError> {
        if !position.is_finite() {
            return Err(ClientError::Misuse("move_to: position must be finite"));
        }
        let shared = self.shared();
        let conn = shared.main_conn()?;
        let handle = {
            let mut s = shared.lock();
            let here = s.position;
            let dir = (position - here).truncate();
            if dir.length_squared() > 1e-4 {
                s.look_at = dir.normalize().extend(0.0);
            }
            s.target = Some(position);
            s.main.handle
        };
        let (gx, gy) = ((handle >> 32) as f64, (handle & 0xFFFF_FFFF) as f64);
        let params = [
            gx + f64::from(position.x),
            gy + f64::from(position.y),
            f64::from(position.z),
        ];
        let msg = GenericMessage {
            agent_data: generic_message::AgentData {
                agent_id: self.agent_id(),
                session_id: self.session_id(),
                transaction_id: Uuid::nil(),
            },
            method_data: generic_message::MethodData {
                method: nul_terminated("autopilot", 64),
                invoice: Uuid::nil(),
            },
            param_list: params
                .iter()
                .map(|v| generic_message::ParamList {
                    parameter: nul_terminated(&v.to_string(), 64),
                })
                .collect(),
        };
        conn.send(msg, Reliability::Reliable).await?;
        shared.update_now.notify(usize::MAX);
        Ok(())
    }

    /// Teleports to a region by name (the current region, a neighbour, or one the grid finds
    /// with `MapNameRequest`) and waits until the agent stands there.
    ///
    /// # Errors
    /// [`ClientError::RegionNotFound`], [`ClientError::TeleportFailed`] with the simulator's
    /// reason, [`ClientError::Timeout`], [`ClientError::Misuse`] while another teleport runs.
    pub async fn teleport_to(
        &self,
        region: &str,
        position: Vec3,
    ) -> Result<RegionSummary, ClientError> {
        let handle = self.find_region(region).await?;
        self.teleport_to_handle(handle, position).await
    }

    /// Teleports to a region handle (global corner in metres, x in the high 32 bits).
    ///
    /// # Errors
    /// As [`teleport_to`](Session::teleport_to).
    pub async fn teleport_to_handle(
        &self,
        handle: u64,
        position: Vec3,
    ) -> Result<RegionSummary, ClientError> {
        if !position.is_finite() {
            return Err(ClientError::Misuse("teleport: position must be finite"));
        }
        let shared = self.shared();
        let conn = {
            let mut s = shared.lock();
            if let Some(r) = &s.ended {
                return Err(ClientError::Disconnected(r.clone()));
            }
            if matches!(s.teleport, Teleport::Requested | Teleport::Arriving) {
                return Err(ClientError::Misuse("a teleport is already under way"));
            }
            s.teleport = Teleport::Requested;
            s.main.conn.clone()
        };
        let look_at = shared.lock().look_at;
        let msg = TeleportLocationRequest {
            agent_data: teleport_location_request::AgentData {
                agent_id: self.agent_id(),
                session_id: self.session_id(),
            },
            info: teleport_location_request::Info {
                region_handle: handle,
                position,
                look_at,
            },
        };
        if let Err(e) = conn.send(msg, Reliability::Reliable).await {
            shared.lock().teleport = Teleport::Idle;
            return Err(e.into());
        }
        // Inter-region teleports take OpenSimulator several seconds: allow twice the deadline.
        let result = deadline(
            shared.client.config.timeout * 2,
            "teleport",
            shared.wait_for(|s| match &s.teleport {
                Teleport::Done(r) => Some(Ok(r.clone())),
                Teleport::Failed(reason) => Some(Err(ClientError::TeleportFailed(reason.clone()))),
                _ => s
                    .ended
                    .as_ref()
                    .map(|r| Err(ClientError::Disconnected(r.clone()))),
            }),
        )
        .await;
        shared.lock().teleport = Teleport::Idle;
        result?
    }

    async fn find_region(&self, name: &str) -> Result<u64, ClientError> {
        let shared = self.shared();
        let wanted = name.trim().to_lowercase();
        // A region we are connected to (its handshake named it), or one a map search found.
        let lookup = |s: &State| {
            std::iter::once(&s.main)
                .chain(s.children.iter())
                .find(|r| {
                    r.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase() == wanted)
                })
                .map(|r| r.handle)
                .or_else(|| {
                    s.map_blocks
                        .iter()
                        .find(|(n, _)| *n == wanted)
                        .map(|(_, h)| *h)
                })
        };
        let conn = {
            let s = shared.lock();
            if let Some(h) = lookup(&s) {
                return Ok(h);
            }
            s.main.conn.clone()
        };
        let msg = MapNameRequest {
            agent_data: map_name_request::AgentData {
                agent_id: self.agent_id(),
                session_id: self.session_id(),
                flags: 0,
                estate_id: 0,
                godlike: false,
            },
            name_data: map_name_request::NameData {
                name: nul_terminated(name.trim(), 255),
            },
        };
        conn.send(msg, Reliability::Reliable).await?;
        let found = deadline(
            shared.client.config.timeout,
            "map search",
            shared.wait_for(lookup),
        )
        .await;
        match found {
            Ok(h) => Ok(h),
            Err(ClientError::Timeout(_)) => Err(ClientError::RegionNotFound(name.to_owned())),
            Err(e) => Err(e),
        }
    }

    /// Fetches a texture and decodes it at `discard` (0 = full size, each level halves it).
    ///
    /// # Errors
    /// [`ClientError::Texture`] (not found, no capability, transfer or decode failure),
    /// [`ClientError::Timeout`].
    pub async fn texture(
        &self,
        id: Uuid,
        discard: u8,
        via: TextureVia,
    ) -> Result<Texture, ClientError> {
        let shared = self.shared();
        let timeout = shared.client.config.timeout;
        let used = match via {
            TextureVia::Auto => {
                let caps = deadline(timeout, "capabilities", shared.main_caps()).await?;
                if caps.ok().is_some_and(|c| c.get_texture().is_some()) {
                    TextureVia::Http
                } else {
                    TextureVia::Udp
                }
            }
            v => v,
        };
        let j2k = match used {
            TextureVia::Udp => self.texture_udp(id, discard).await?,
            _ => {
                let caps = deadline(timeout, "capabilities", shared.main_caps())
                    .await?
                    .map_err(|_| TextureError::NoCapability)?;
                let cap = caps.get_texture().ok_or(TextureError::NoCapability)?;
                let body = match shared.client.http.fetch(cap, id, ByteRange::Whole).await {
                    Ok(b) => b,
                    Err(opensim_textures::HttpFetchError::NotFound { id }) => {
                        return Err(TextureError::NotFound(id).into());
                    }
                    Err(e) => return Err(TextureError::Http(e).into()),
                };
                Bytes::from(body.data)
            }
        };
        let image = opensim_textures::decode_rgba8_async(
            j2k.clone(),
            opensim_textures::DecodeOptions::at_discard(discard),
        )
        .await
        .map_err(TextureError::from)?;
        Ok(Texture {
            id,
            j2k,
            width: image.width,
            height: image.height,
            rgba: image.pixels,
            via: used,
        })
    }

    async fn texture_udp(&self, id: Uuid, discard: u8) -> Result<Bytes, ClientError> {
        let shared = self.shared();
        let target = if discard == 0 {
            Target::Full
        } else {
            Target::Resolution(discard)
        };
        {
            let mut s = shared.lock();
            if let Some(r) = &s.ended {
                return Err(ClientError::Disconnected(r.clone()));
            }
            let login = &shared.login;
            let udp = s.udp.get_or_insert_with(|| {
                UdpImageClient::new(login.agent_id, login.session_id, UdpConfig::default())
            });
            udp.request(ImageRequest::new(id, target, 1_000_000.0), Instant::now());
            *s.udp_waiters.entry(id).or_insert(0) += 1;
        }
        let result = deadline(
            shared.client.config.timeout * 2,
            "UDP texture",
            self.pump_udp(id),
        )
        .await;
        {
            let mut s = shared.lock();
            if let Some(n) = s.udp_waiters.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    s.udp_waiters.remove(&id);
                    s.udp_results.remove(&id);
                }
            }
        }
        match result?? {
            UdpOutcome::Complete(b) => Ok(b),
            UdpOutcome::NotFound => Err(TextureError::NotFound(id).into()),
            UdpOutcome::Failed(why) => Err(TextureError::Udp(id, why).into()),
        }
    }

    /// Drives the UDP image client until `id` has an outcome.
    async fn pump_udp(&self, id: Uuid) -> Result<UdpOutcome, ClientError> {
        let shared = self.shared();
        loop {
            let listener = shared.changed.listen();
            let (conn, requests, outcome, next) = {
                let mut s = shared.lock();
                if let Some(r) = &s.ended {
                    return Err(ClientError::Disconnected(r.clone()));
                }
                let conn = s.main.conn.clone();
                let mut requests = Vec::new();
                let mut next = None;
                if let Some(udp) = s.udp.as_mut() {
                    udp.handle_timeout(Instant::now());
                    while let Some(m) = udp.poll_transmit() {
                        requests.push(m);
                    }
                    next = udp.next_deadline();
                }
                shared.collect_udp_events(&mut s);
                (conn, requests, s.udp_results.get(&id).cloned(), next)
            };
            for m in requests {
                conn.send(m, Reliability::Reliable).await?;
            }
            if let Some(o) = outcome {
                return Ok(o);
            }
            let wait = next.map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(5))
            });
            futures_lite::future::or(listener, async {
                async_io::Timer::after(wait).await;
            })
            .await;
        }
    }

    /// Counters summed over the session's circuits.
    pub fn stats(&self) -> SessionStats {
        let shared = self.shared();
        let s = shared.lock();
        // Closed children's counters, then the listed circuits'.
        let mut out = s.closed_stats.clone();
        let mut open = 0;
        for r in std::iter::once(&s.main).chain(s.children.iter()) {
            out.add_circuit(&r.conn.stats());
            if !r.conn.is_closed() {
                open += 1;
            }
        }
        out.srtt = s.main.conn.stats().srtt;
        out.circuits_open = open;
        out.events_dropped = shared.events_dropped.load(Ordering::Relaxed);
        out
    }

    /// Logs out: `LogoutRequest`, waits (at most 5 s and the configured timeout) for
    /// `LogoutReply`, closes every circuit and stops the session's tasks. Ends the event
    /// stream with [`DisconnectReason::LoggedOut`].
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when no `LogoutReply` came (the session is closed anyway);
    /// [`ClientError::Disconnected`] when the session had already ended otherwise.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let shared = self.shared();
        let prior = {
            let mut s = shared.lock();
            if s.ended.is_none() {
                s.logging_out = true;
            }
            s.ended.clone()
        };
        match prior {
            Some(DisconnectReason::LoggedOut) => return Ok(()),
            Some(r) => {
                shared.shutdown().await;
                return Err(ClientError::Disconnected(r));
            }
            None => {}
        }
        let conn = shared.lock().main.conn.clone();
        let msg = LogoutRequest {
            agent_data: logout_request::AgentData {
                agent_id: self.agent_id(),
                session_id: self.session_id(),
            },
        };
        let sent = conn.send(msg, Reliability::Reliable).await.is_ok();
        let replied = sent
            && deadline(
                LOGOUT_WAIT.min(shared.client.config.timeout),
                "LogoutReply",
                shared.wait_for(|s| (s.logout_replied || s.main_closed).then_some(())),
            )
            .await
            .is_ok();
        let replied = replied && shared.lock().logout_replied;
        shared.end(DisconnectReason::LoggedOut);
        shared.shutdown().await;
        if replied {
            Ok(())
        } else {
            Err(ClientError::Timeout("LogoutReply"))
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let task = smol::spawn(fut);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Drop handles of finished tasks so the list does not grow with every teleport.
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn stop_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut s = self.lock();
            s.main.stop_event_queue();
            for c in &mut s.children {
                c.stop_event_queue();
            }
        }
        // Dropping a task handle cancels the task.
        drop(tasks);
    }

    /// Closes circuits and stops tasks (after the session ended).
    async fn shutdown(&self) {
        {
            let mut s = self.lock();
            s.main.stop_event_queue();
            for c in &mut s.children {
                c.stop_event_queue();
            }
        }
        self.endpoint.shutdown().await;
        self.stop_tasks();
    }

    /// Resolves when `f` returns `Some`, re-checking on every state change.
    async fn wait_for<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        loop {
            let listener = self.changed.listen();
            if let Some(v) = f(&self.lock()) {
                return v;
            }
            listener.await;
        }
    }

    async fn main_caps(&self) -> Result<Arc<Capabilities>, String> {
        self.wait_for(|s| match &s.main.caps {
            CapsState::Ready(c) => Some(Ok(c.clone())),
            CapsState::Failed(e) => Some(Err(e.clone())),
            CapsState::Pending => s.ended.as_ref().map(|r| Err(r.to_string())),
        })
        .await
    }

    fn main_conn(&self) -> Result<Connection, ClientError> {
        let s = self.lock();
        match &s.ended {
            Some(r) => Err(ClientError::Disconnected(r.clone())),
            None => Ok(s.main.conn.clone()),
        }
    }

    fn emit(&self, event: SessionEvent) {
        if let Ok(Some(_)) = self.events_tx.force_send(event) {
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends the session once: the last event, then the stream closes.
    fn end(&self, reason: DisconnectReason) {
        {
            let mut s = self.lock();
            if s.ended.is_some() {
                return;
            }
            s.ended = Some(reason.clone());
            s.main.stop_event_queue();
            for c in &mut s.children {
                c.stop_event_queue();
            }
        }
        self.emit(SessionEvent::Disconnected { reason });
        self.events_tx.close();
        self.changed.notify(usize::MAX);
        self.update_now.notify(usize::MAX);
    }

    fn use_circuit_code(&self) -> UseCircuitCode {
        UseCircuitCode {
            circuit_code: use_circuit_code::CircuitCode {
                code: self.login.circuit_code,
                session_id: self.login.session_id,
                id: self.login.agent_id,
            },
        }
    }

    fn complete_agent_movement(&self) -> CompleteAgentMovement {
        CompleteAgentMovement {
            agent_data: complete_agent_movement::AgentData {
                agent_id: self.login.agent_id,
                session_id: self.login.session_id,
                circuit_code: self.login.circuit_code,
            },
        }
    }

    fn agent_throttle(&self, conn: &Connection) -> AgentThrottle {
        // The viewer's defaults for a 1.5 Mbit/s link, in bits per second: resend, land,
        // wind, cloud, task, texture, asset.
        let rates = opensim_circuit::ThrottleRates::from_bits_per_sec([
            150_000.0, 170_000.0, 34_000.0, 34_000.0, 446_000.0, 446_000.0, 220_000.0,
        ]);
        let _ = conn;
        AgentThrottle {
            agent_data: agent_throttle::AgentData {
                agent_id: self.login.agent_id,
                session_id: self.login.session_id,
                circuit_code: self.login.circuit_code,
            },
            throttle: agent_throttle::Throttle {
                gen_counter: 0,
                throttles: Bytes::copy_from_slice(&rates.to_agent_throttle()),
            },
        }
    }

    fn agent_update(&self, s: &State) -> AgentUpdate {
        let facing = s.look_at.truncate();
        let yaw = if facing.length_squared() > 1e-6 {
            facing.y.atan2(facing.x)
        } else {
            0.0
        };
        let rotation = Quat::from_rotation_z(yaw);
        let at = rotation * Vec3::X;
        let left = rotation * Vec3::Y;
        AgentUpdate {
            agent_data: agent_update::AgentData {
                agent_id: self.login.agent_id,
                session_id: self.login.session_id,
                body_rotation: rotation,
                head_rotation: Quat::IDENTITY,
                state: 0,
                camera_center: s.position - at * 3.0 + Vec3::Z * 2.0,
                camera_at_axis: at,
                camera_left_axis: left,
                camera_up_axis: Vec3::Z,
                far: self.client.config.draw_distance,
                control_flags: 0,
                flags: 0,
            },
        }
    }

    /// Moves terminal UDP image events into the results waiters look at.
    fn collect_udp_events(&self, s: &mut State) {
        let Some(udp) = s.udp.as_mut() else { return };
        let mut done = Vec::new();
        while let Some(ev) = udp.poll_event() {
            match ev {
                UdpEvent::Complete { id, data, .. } => {
                    done.push((id, UdpOutcome::Complete(Bytes::from(data))));
                }
                UdpEvent::NotFound { id } => done.push((id, UdpOutcome::NotFound)),
                UdpEvent::TimedOut { id, .. } => {
                    done.push((id, UdpOutcome::Failed("timed out".into())));
                }
                UdpEvent::Failed { id, error } => {
                    done.push((id, UdpOutcome::Failed(error.to_string())));
                }
                _ => {}
            }
        }
        for (id, o) in done {
            if s.udp_waiters.contains_key(&id) {
                s.udp_results.insert(id, o);
            }
        }
    }

    /// Opens a child circuit to a neighbour (`UseCircuitCode` only).
    fn open_child(self: &Arc<Self>, addr: SocketAddr, handle: u64, size: RegionSize) {
        let conn = {
            let mut s = self.lock();
            if s.ended.is_some()
                || s.main.addr() == addr
                || s.children.iter().any(|c| c.addr() == addr)
            {
                return;
            }
            let conn = match self.endpoint.connect(addr) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "cannot open a child circuit");
                    return;
                }
            };
            let mut region = Region::new(conn.clone(), handle, size);
            Session::attach_world(&mut region, self.client.config.subsystems);
            s.children.push(region);
            conn
        };
        self.spawn(recv_loop(self.clone(), conn.clone()));
        let ucc = self.use_circuit_code();
        self.spawn(async move {
            let _ = conn.send(ucc, Reliability::Reliable).await;
        });
    }

    /// Makes the region at `addr` the main one: after `TeleportFinish` (`UseCircuitCode` and
    /// `CompleteAgentMovement`) or `CrossedRegion` (`CompleteAgentMovement` only).
    async fn switch_main(
        self: &Arc<Self>,
        addr: SocketAddr,
        handle: u64,
        size: RegionSize,
        seed: String,
        teleport: bool,
    ) {
        let subsystems = self.client.config.subsystems;
        let (conn, fresh) = {
            let mut s = self.lock();
            if s.ended.is_some() {
                return;
            }
            if teleport {
                s.teleport = Teleport::Arriving;
            }
            let existing = s.children.iter().position(|c| c.addr() == addr);
            let (mut region, fresh) = match existing {
                Some(i) => (s.children.swap_remove(i), false),
                None if s.main.addr() == addr => return,
                None => match self.endpoint.connect(addr) {
                    Ok(c) => (Region::new(c, handle, size), true),
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "cannot open the destination circuit");
                        if teleport {
                            s.teleport = Teleport::Failed(format!("cannot open a circuit: {e}"));
                        }
                        drop(s);
                        self.changed.notify(usize::MAX);
                        return;
                    }
                },
            };
            region.handle = handle;
            region.movement_complete = false;
            region.ready_reported = false;
            if region.size != size || fresh {
                region.size = size;
                Session::attach_world(&mut region, subsystems);
            }
            let conn = region.conn.clone();
            let mut old = std::mem::replace(&mut s.main, region);
            old.stop_event_queue();
            // The old region stays a child (world included) until it sends DisableSimulator.
            old.caps = CapsState::Pending;
            s.children.push(old);
            (conn, fresh)
        };
        self.changed.notify(usize::MAX);
        if fresh {
            self.spawn(recv_loop(self.clone(), conn.clone()));
        }
        if teleport {
            let _ = conn
                .send(self.use_circuit_code(), Reliability::Reliable)
                .await;
        }
        let _ = conn
            .send(self.complete_agent_movement(), Reliability::Reliable)
            .await;
        self.spawn(event_queue_loop(self.clone(), addr, seed));
    }

    /// A message from the region at `addr`.
    async fn on_message(self: &Arc<Self>, conn: &Connection, msg: Message) {
        let addr = conn.remote_addr();
        let mut replies: Vec<(Message, Reliability)> = Vec::new();
        let mut events: Vec<SessionEvent> = Vec::new();
        let mut notify = false;
        {
            let mut guard = self.lock();
            let s = &mut *guard;
            let is_main = s.main.addr() == addr;
            match &msg {
                Message::RegionHandshake(h) => {
                    let hs = RegionHandshake::from(&**h);
                    if let Some(region) = s.region_mut(addr) {
                        region.name = Some(hs.sim_name.clone());
                        region.water_height = hs.water_height;
                        region.region_id = hs.region_id;
                        let first = !region.handshake;
                        region.handshake = true;
                        replies.push((
                            hs.reply(self.login.agent_id, self.login.session_id, 0)
                                .into(),
                            Reliability::Reliable,
                        ));
                        if is_main && first {
                            replies.push((self.agent_throttle(conn).into(), Reliability::Reliable));
                        }
                        notify = true;
                    }
                }
                Message::AgentMovementComplete(m) if is_main => {
                    if m.data.position.is_finite() {
                        s.position = m.data.position;
                    }
                    if m.data.look_at.is_finite() && m.data.look_at.length_squared() > 1e-6 {
                        s.look_at = m.data.look_at;
                    }
                    if m.data.region_handle != 0 {
                        s.main.handle = m.data.region_handle;
                    }
                    s.main.movement_complete = true;
                    replies.push((self.agent_update(s).into(), Reliability::Unreliable));
                    notify = true;
                }
                // Neighbours keep their world too: a region that becomes main by a teleport
                // or a crossing does not send it again.
                Message::LayerData(l) => {
                    let kind = l.layer_id.type_;
                    if let Some(hm) = s.region_mut(addr).and_then(|r| r.terrain.as_mut())
                        && (kind == terrain::LAYER_LAND || kind == terrain::LAYER_LAND_EXTENDED)
                    {
                        match terrain::decode_layer(kind, &l.layer_data.data, hm.region()) {
                            Ok(mut decoder) => {
                                let result = decoder.for_each_patch(|p| {
                                    if hm.apply(p).is_ok() && is_main {
                                        events.push(SessionEvent::TerrainPatch { x: p.x, y: p.y });
                                    }
                                });
                                if let Err(e) = result {
                                    tracing::debug!(error = %e, "bad LayerData");
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "bad LayerData"),
                        }
                    }
                }
                Message::ObjectUpdate(_)
                | Message::ObjectUpdateCompressed(_)
                | Message::ImprovedTerseObjectUpdate(_)
                | Message::KillObject(_) => {
                    if let Some(scene) = s.region_mut(addr).and_then(|r| r.scene.as_mut()) {
                        let mut changes = Vec::new();
                        if let Err(e) = scene.apply(&msg, &mut changes) {
                            tracing::debug!(error = %e, "bad object update");
                        }
                        let mut unknown = Vec::new();
                        for c in changes {
                            if !is_main && !matches!(c, SceneEvent::Unknown { .. }) {
                                continue;
                            }
                            events.push(match c {
                                SceneEvent::Added { local_id, .. } => {
                                    SessionEvent::ObjectAdded { local_id }
                                }
                                SceneEvent::Updated { local_id }
                                | SceneEvent::Moved { local_id } => {
                                    SessionEvent::ObjectUpdated { local_id }
                                }
                                SceneEvent::Removed { local_id, .. } => {
                                    SessionEvent::ObjectRemoved { local_id }
                                }
                                SceneEvent::Unknown { local_id } => {
                                    unknown.push(local_id);
                                    continue;
                                }
                                _ => continue,
                            });
                        }
                        for m in scene::request_objects(
                            self.login.agent_id,
                            self.login.session_id,
                            unknown,
                        ) {
                            replies.push((m.into(), Reliability::Reliable));
                        }
                    }
                }
                Message::ObjectUpdateCached(m) => {
                    if let Some(scene) = s.region_mut(addr).and_then(|r| r.scene.as_ref())
                        && let Some(req) = scene.handle_cached(
                            m,
                            self.login.agent_id,
                            self.login.session_id,
                            |_| scene::CacheLookup::Miss,
                        )
                    {
                        replies.push((req.into(), Reliability::Reliable));
                    }
                }
                Message::ChatFromSimulator(c) if is_main => {
                    let d = &c.chat_data;
                    events.push(SessionEvent::Chat {
                        from_name: text(&d.from_name),
                        from_id: d.source_id,
                        text: text(&d.message),
                        channel: if d.chat_type == 6 { i32::MAX } else { 0 },
                        kind: ChatKind::from_u8(d.chat_type),
                    });
                }
                Message::ImprovedInstantMessage(m) => {
                    let b = &m.message_block;
                    // Ordinary, from an object, busy/system notices, message boxes.
                    if matches!(b.dialog, 0 | 1 | 19 | 20) {
                        events.push(SessionEvent::InstantMessage {
                            from_id: m.agent_data.agent_id,
                            from_name: text(&b.from_agent_name),
                            text: text(&b.message),
                        });
                    }
                }
                Message::EnableSimulator(m) => {
                    let info = &m.simulator_info;
                    let target = SocketAddr::new(IpAddr::V4(info.ip), info.port);
                    let (handle, size) = (info.handle, RegionSize::LEGACY);
                    drop(guard);
                    self.open_child(target, handle, size);
                    guard = self.lock();
                }
                Message::DisableSimulator(_) => {
                    if is_main {
                        if !s.logging_out && !matches!(s.teleport, Teleport::Arriving) {
                            drop(guard);
                            self.end(DisconnectReason::RegionClosed);
                            guard = self.lock();
                        }
                    } else if let Some(i) = s.children.iter().position(|c| c.addr() == addr) {
                        let mut child = s.children.swap_remove(i);
                        child.stop_event_queue();
                        let c = child.conn.clone();
                        self.spawn(async move { c.close().await });
                    }
                }
                Message::KickUser(k) => {
                    let reason = text(&k.user_info.reason);
                    drop(guard);
                    self.end(DisconnectReason::Kicked(reason));
                    guard = self.lock();
                }
                Message::LogoutReply(_) if is_main => {
                    s.logout_replied = true;
                    notify = true;
                }
                Message::TeleportStart(_) if is_main => {
                    events.push(SessionEvent::TeleportProgress {
                        message: "teleport started".into(),
                    });
                }
                Message::TeleportProgress(p) if is_main => {
                    events.push(SessionEvent::TeleportProgress {
                        message: text(&p.info.message),
                    });
                }
                Message::TeleportFailed(f) if is_main => {
                    let reason = text(&f.info.reason);
                    if matches!(s.teleport, Teleport::Requested | Teleport::Arriving) {
                        s.teleport = Teleport::Failed(reason);
                        notify = true;
                    }
                }
                Message::TeleportLocal(t) if is_main => {
                    if t.info.position.is_finite() {
                        s.position = t.info.position;
                    }
                    let summary = s.main.summary();
                    if matches!(s.teleport, Teleport::Requested) {
                        s.teleport = Teleport::Done(summary.clone());
                    }
                    events.push(SessionEvent::TeleportFinished(summary));
                    notify = true;
                }
                Message::TeleportFinish(t) if is_main => {
                    let i = &t.info;
                    let dest = SocketAddr::new(IpAddr::V4(i.sim_ip), i.sim_port);
                    let seed = text(&i.seed_capability);
                    let handle = i.region_handle;
                    events.push(SessionEvent::TeleportProgress {
                        message: "arriving".into(),
                    });
                    let me = self.clone();
                    self.spawn(async move {
                        me.switch_main(dest, handle, RegionSize::LEGACY, seed, true)
                            .await;
                    });
                }
                Message::MapBlockReply(r) => {
                    for b in &r.data {
                        let name = text(&b.name).to_lowercase();
                        let handle = RegionHandle::from_grid(u32::from(b.x), u32::from(b.y)).0;
                        if !name.is_empty() && s.map_blocks.len() < 256 {
                            s.map_blocks.retain(|(n, _)| *n != name);
                            s.map_blocks.push((name, handle));
                        }
                    }
                    notify = true;
                }
                Message::ImageData(_)
                | Message::ImagePacket(_)
                | Message::ImageNotInDatabase(_)
                    if is_main =>
                {
                    if let Some(udp) = s.udp.as_mut()
                        && udp.handle_message(&msg, Instant::now())
                    {
                        self.collect_udp_events(s);
                        notify = true;
                    }
                }
                _ => {}
            }
            let s = &mut *guard;
            // Readiness, once per arrival in a region.
            if s.main.addr() == addr && s.main.is_ready() && !s.main.ready_reported {
                s.main.ready_reported = true;
                let summary = s.main.summary();
                if matches!(s.teleport, Teleport::Arriving) {
                    s.teleport = Teleport::Done(summary.clone());
                    events.push(SessionEvent::TeleportFinished(summary.clone()));
                }
                events.push(SessionEvent::RegionReady(summary));
                notify = true;
            }
            // Under the lock, so that a reader who sees the state also finds its events queued.
            for e in events {
                self.emit(e);
            }
        }
        if notify {
            self.changed.notify(usize::MAX);
        }
        for (m, r) in replies {
            if conn.send(m, r).await.is_err() {
                break;
            }
        }
    }

    /// An event from the event queue of the region at `addr`.
    async fn on_event_queue(self: &Arc<Self>, addr: SocketAddr, event: EqEvent) {
        let is_main = self.lock().main.addr() == addr;
        match event {
            EqEvent::EnableSimulator(e) => {
                let size =
                    RegionSize::new(e.region_size_x, e.region_size_y).unwrap_or(RegionSize::LEGACY);
                self.open_child(SocketAddr::V4(e.sim_addr), e.region_handle, size);
            }
            EqEvent::TeleportFinish(t) if is_main => {
                self.emit(SessionEvent::TeleportProgress {
                    message: "arriving".into(),
                });
                let size =
                    RegionSize::new(t.region_size_x, t.region_size_y).unwrap_or(RegionSize::LEGACY);
                self.switch_main(
                    SocketAddr::V4(t.sim_addr),
                    t.region_handle,
                    size,
                    t.seed_capability,
                    true,
                )
                .await;
            }
            EqEvent::CrossedRegion(c) if is_main => {
                let size =
                    RegionSize::new(c.region_size_x, c.region_size_y).unwrap_or(RegionSize::LEGACY);
                {
                    let position = Vec3::from_array(c.position);
                    let mut s = self.lock();
                    if position.is_finite() {
                        s.position = position;
                    }
                }
                self.switch_main(
                    SocketAddr::V4(c.sim_addr),
                    c.region_handle,
                    size,
                    c.seed_capability,
                    false,
                )
                .await;
            }
            EqEvent::DisableSimulator if is_main => {
                let end = {
                    let s = self.lock();
                    !s.logging_out && !matches!(s.teleport, Teleport::Arriving)
                };
                if end {
                    self.end(DisconnectReason::RegionClosed);
                }
            }
            other => tracing::trace!(event = other.name(), "event queue"),
        }
    }

    fn on_closed(&self, conn: &Connection, reason: CloseReason) {
        let addr = conn.remote_addr();
        let end = {
            let mut s = self.lock();
            if s.main.addr() == addr {
                s.main_closed = true;
                // The main region stays listed, and a closed circuit keeps its counters, so
                // `stats` still reads them from it.
                if s.logging_out {
                    None
                } else {
                    Some(match reason {
                        CloseReason::TimedOut => DisconnectReason::TimedOut,
                        _ => DisconnectReason::CircuitClosed,
                    })
                }
            } else {
                // A child leaves the list: keep its counters.
                s.closed_stats.add_circuit(&conn.stats());
                s.children.retain(|c| c.addr() != addr);
                None
            }
        };
        if let Some(r) = end {
            self.end(r);
        }
        self.changed.notify(usize::MAX);
    }
}

/// A boxed task body: the loops below spawn each other, which needs a named type.
type BoxedTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// Receives from one circuit until it closes.
fn recv_loop(shared: Arc<Shared>, conn: Connection) -> BoxedTask {
    Box::pin(async move {
        while let Some(event) = conn.recv().await {
            match event {
                Event::Message(m) => shared.on_message(&conn, m).await,
                Event::Closed(reason) => {
                    shared.on_closed(&conn, reason);
                    break;
                }
                _ => {}
            }
        }
    })
}

/// Fetches a region's seed capability, then polls its event queue until told to stop.
fn event_queue_loop(shared: Arc<Shared>, addr: SocketAddr, seed: String) -> BoxedTask {
    Box::pin(event_queue_body(shared, addr, seed))
}

async fn event_queue_body(shared: Arc<Shared>, addr: SocketAddr, seed: String) {
    let caps = shared
        .client
        .caps
        .request_capabilities(&seed, WANTED_CAPS)
        .await;
    let queue = {
        let mut s = shared.lock();
        let Some(region) = s.region_mut(addr) else {
            return;
        };
        match caps {
            Ok(caps) => {
                let caps = Arc::new(caps);
                region.caps = CapsState::Ready(caps.clone());
                match caps.event_queue_get() {
                    Some(url) => match shared.client.caps.event_queue(url) {
                        Ok(q) => {
                            region.eq_stop = Some(q.shutdown_handle());
                            Some(q)
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot poll the event queue");
                            None
                        }
                    },
                    None => None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "seed capability failed");
                region.caps = CapsState::Failed(e.to_string());
                None
            }
        }
    };
    shared.changed.notify(usize::MAX);
    let Some(mut queue) = queue else { return };
    loop {
        match queue.next().await {
            Ok(event) => shared.on_event_queue(addr, event).await,
            Err(end) => {
                tracing::debug!(%addr, reason = %end, "event queue ended");
                break;
            }
        }
    }
}

/// Sends `AgentUpdate` on the main circuit every interval, and at once when asked.
async fn agent_update_loop(shared: Arc<Shared>) {
    let interval = shared.client.config.agent_update_interval;
    loop {
        let listener = shared.update_now.listen();
        let (conn, msg) = {
            let s = shared.lock();
            if s.ended.is_some() {
                return;
            }
            let msg = s.main.movement_complete.then(|| shared.agent_update(&s));
            (s.main.conn.clone(), msg)
        };
        if let Some(m) = msg {
            let _ = conn.send(m, Reliability::Unreliable).await;
        }
        futures_lite::future::or(listener, async {
            async_io::Timer::after(interval).await;
        })
        .await;
    }
}
