//! Shared state: the regions, the sessions issued at login, their event queues and circuits.
//!
//! A login is grid-wide (one agent id, session id and circuit code) but OpenSimulator keeps an
//! agent per region: a root agent where the avatar is and child agents in the neighbours, each
//! with its own seed capability, event queue and circuit. So every [`Region`] has its own map
//! of [`Session`]s, all sharing the login's identity.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use glam::{Quat, Vec3};
use opensim_circuit::{Connection, ThrottleRates};
use opensim_llsd::{Map, Value};
use opensim_regions::RegionHandle;
use opensim_regions::handshake::RegionHandshake;
use opensim_regions::terrain::{
    LayerType, PATCH_AREA, encode_cloud, encode_wind, patches_by_distance,
};
use uuid::Uuid;

use crate::scene::PrimMotion;
use crate::{Prim, Scene, SimConfig, SimError};

/// Avatars' local ids come from a range the scenes' prims do not use (OpenSim draws both from
/// one counter; any unique number will do for a viewer).
const AVATAR_LOCAL_IDS: u32 = 0x7000_0000;

/// A local id for a new avatar, unique in the process.
fn next_avatar_local_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(AVATAR_LOCAL_IDS);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// OpenSim's reason for refusing an agent where the region is at its agent limit.
pub(crate) const REGION_FULL: &str = "The region is full";

/// Most events waiting in one event queue; older ones are dropped beyond it.
pub(crate) const MAX_PENDING_EVENTS: usize = 1024;

/// Messages built once from a region's scene and sent to every agent.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub handle: RegionHandle,
    pub handshake: opensim_messages::RegionHandshake,
    pub land_type: u8,
    pub land: Vec<bytes::Bytes>,
    pub wind: bytes::Bytes,
    pub cloud: bytes::Bytes,
    pub start: Vec3,
}

impl Prepared {
    pub fn new(scene: &Scene) -> Result<Self, SimError> {
        let err = |e: &dyn std::fmt::Display| SimError::Scene(format!("{}: {e}", scene.name));
        let size = scene.size();
        let handle = RegionHandle::from_grid(scene.grid.0, scene.grid.1);
        let hs = RegionHandshake {
            region_flags: 0,
            sim_access: 13,
            sim_name: scene.name.clone(),
            water_height: scene.water_height,
            cache_id: Uuid::from_u128(scene.region_id.as_u128() ^ 0xcace),
            terrain_start_height: [10.0; 4],
            terrain_height_range: [60.0; 4],
            region_id: scene.region_id,
            cpu_class_id: 9,
            cpu_ratio: 1,
            product_sku: String::new(),
            product_name: "Mainland".to_owned(),
            region_flags_extended: Some(0),
            region_protocols: Some(0),
            ..RegionHandshake::default()
        };
        let handshake = hs.to_message().map_err(|e| err(&e))?;
        let start = Vec3::new(
            size.width() as f32 / 2.0,
            size.height() as f32 / 2.0,
            scene.ground_at(size.width() as f32 / 2.0, size.height() as f32 / 2.0) + 1.0,
        );
        let order = patches_by_distance(size, size.patches_x() / 2, size.patches_y() / 2);
        let land = scene
            .terrain
            .encode_land(order)
            .map_err(|e| err(&e))?
            .into_iter()
            .map(bytes::Bytes::from)
            .collect();
        // Every prim must encode, so that sending the scene later cannot fail.
        for p in &scene.prims {
            p.to_full_update().map_err(|e| err(&e))?;
        }
        // A steady westerly breeze with some texture, and scattered clouds.
        let mut east = [0f32; PATCH_AREA];
        let mut north = [0f32; PATCH_AREA];
        let mut density = [0f32; PATCH_AREA];
        for i in 0..PATCH_AREA {
            let (x, y) = ((i % 16) as f32, (i / 16) as f32);
            east[i] = 3.0 + (x * 0.4).sin() + 0.5 * (y * 0.3).cos();
            north[i] = 0.8 * (x * 0.2 + y * 0.25).sin();
            density[i] = 0.5 + 0.4 * (x * 0.5).sin() * (y * 0.45).cos();
        }
        let wind = encode_wind(&east, &north).map_err(|e| err(&e))?.into();
        let cloud = encode_cloud(&density).map_err(|e| err(&e))?.into();
        Ok(Prepared {
            handle,
            handshake,
            land_type: LayerType::land_for(size).code(),
            land,
            wind,
            cloud,
            start,
        })
    }
}

/// An agent's event queue in one region.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    pub pending: VecDeque<Value>,
    /// The last batch answered and not yet acked: resent on the next poll.
    pub unacked: Option<(i32, Vec<Value>)>,
    pub next_id: i32,
}

/// Who logged in: the same in every region the agent reaches.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub agent_id: Uuid,
    pub session_id: Uuid,
    pub first: String,
    pub last: String,
    pub circuit_code: u32,
}

/// One agent (root or child) in one region.
#[derive(Debug)]
pub(crate) struct Session {
    pub agent_id: Uuid,
    pub session_id: Uuid,
    pub first: String,
    pub last: String,
    pub circuit_code: u32,
    pub seed_token: String,
    pub eq_token: String,
    pub cap_tokens: Vec<(&'static str, String)>,
    pub eq: EventQueue,
    pub connection: Option<Connection>,
    pub position: Vec3,
    pub look_at: Vec3,
    pub root: bool,
    /// Whether the agent arrives here as root (login, teleport destination): OpenSim then
    /// sends the `RegionHandshake` on `CompleteAgentMovement`, and a child agent's circuit
    /// gets it as soon as it exists.
    pub arriving_root: bool,
    /// `AgentUpdate.ControlFlags` last received.
    pub control_flags: u32,
    /// `AgentUpdate.BodyRotation` last received.
    pub body_rotation: Quat,
    /// The rates of the client's last `AgentThrottle`.
    pub throttle: Option<ThrottleRates>,
    /// The avatar's local id in this region's object updates.
    pub avatar_local_id: u32,
    /// Where the `autopilot` generic message sends the avatar (region-local), until it
    /// arrives or the agent moves by its own controls.
    pub autopilot: Option<Vec3>,
    /// Position and velocity in the last update sent to viewers.
    pub reported: Option<(Vec3, Vec3)>,
}

impl Session {
    /// A fresh agent of `who` at `position`, with new capability tokens.
    pub fn new(who: &Identity, position: Vec3) -> Self {
        Session {
            agent_id: who.agent_id,
            session_id: who.session_id,
            first: who.first.clone(),
            last: who.last.clone(),
            circuit_code: who.circuit_code,
            seed_token: format!("{}0000", Uuid::new_v4().simple()),
            eq_token: Uuid::new_v4().to_string(),
            cap_tokens: vec![
                ("GetTexture", Uuid::new_v4().to_string()),
                ("ViewerAsset", Uuid::new_v4().to_string()),
                ("SimulatorFeatures", Uuid::new_v4().to_string()),
            ],
            eq: EventQueue {
                next_id: 18_632_324,
                ..EventQueue::default()
            },
            connection: None,
            position,
            look_at: Vec3::new(0.0, 1.0, 0.0),
            root: false,
            arriving_root: false,
            control_flags: 0,
            body_rotation: Quat::IDENTITY,
            throttle: None,
            avatar_local_id: next_avatar_local_id(),
            autopilot: None,
            reported: None,
        }
    }

    pub fn identity(&self) -> Identity {
        Identity {
            agent_id: self.agent_id,
            session_id: self.session_id,
            first: self.first.clone(),
            last: self.last.clone(),
            circuit_code: self.circuit_code,
        }
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// What changes in a region while it runs: its prims and who has been sent them.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub prims: BTreeMap<u32, Prim>,
    pub motions: HashMap<u32, PrimMotion>,
    /// Circuits that have been sent the scene (they get object changes and periodic traffic).
    pub viewers: HashMap<Uuid, Connection>,
    /// The avatars (local ids) each viewer has been shown, at most
    /// [`SimConfig::max_avatars_in_view`] besides its own.
    pub shown: HashMap<Uuid, HashSet<u32>>,
}

/// One region: its scene, UDP address and agents.
#[derive(Debug)]
pub(crate) struct Region {
    pub index: usize,
    pub scene: Scene,
    pub prepared: Prepared,
    pub udp_addr: SocketAddr,
    sessions: Mutex<HashMap<Uuid, Session>>,
    world: Mutex<World>,
}

impl Region {
    /// Whether the region holds `limit` root agents (or agents on their way in) other than
    /// `agent_id`.
    pub fn is_full(&self, limit: Option<usize>, agent_id: Uuid) -> bool {
        limit.is_some_and(|limit| {
            self.sessions()
                .values()
                .filter(|s| s.agent_id != agent_id && (s.root || s.arriving_root))
                .count()
                >= limit
        })
    }

    pub fn new(index: usize, scene: Scene, prepared: Prepared, udp_addr: SocketAddr) -> Self {
        let world = World {
            prims: scene
                .prims
                .iter()
                .map(|p| (p.local_id, p.clone()))
                .collect(),
            motions: scene.motions.clone(),
            viewers: HashMap::new(),
            shown: HashMap::new(),
        };
        Region {
            index,
            scene,
            prepared,
            udp_addr,
            sessions: Mutex::new(HashMap::new()),
            world: Mutex::new(world),
        }
    }

    pub fn sessions(&self) -> MutexGuard<'_, HashMap<Uuid, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `global` (metres) lies inside this region.
    pub fn contains_global(&self, x: u64, y: u64) -> bool {
        let size = self.scene.size();
        let (x0, y0) = (
            u64::from(self.scene.grid.0) * 256,
            u64::from(self.scene.grid.1) * 256,
        );
        x >= x0 && y >= y0 && x < x0 + u64::from(size.width()) && y < y0 + u64::from(size.height())
    }

    /// Whether `other` shares an edge or a corner with this region.
    pub fn is_neighbour(&self, other: &Region) -> bool {
        if self.index == other.index {
            return false;
        }
        let (a, b) = (&self.scene, &other.scene);
        let ((ax, ay), (aw, ah)) = (a.grid, a.grid_extent());
        let ((bx, by), (bw, bh)) = (b.grid, b.grid_extent());
        let (ax, ay, aw, ah) = (u64::from(ax), u64::from(ay), u64::from(aw), u64::from(ah));
        let (bx, by, bw, bh) = (u64::from(bx), u64::from(by), u64::from(bw), u64::from(bh));
        ax <= bx + bw && bx <= ax + aw && ay <= by + bh && by <= ay + ah
    }
}

/// Whether two scenes' grid rectangles overlap (a configuration error).
pub(crate) fn overlaps(a: &Scene, b: &Scene) -> bool {
    let ((ax, ay), (aw, ah)) = (a.grid, a.grid_extent());
    let ((bx, by), (bw, bh)) = (b.grid, b.grid_extent());
    let (ax, ay, aw, ah) = (u64::from(ax), u64::from(ay), u64::from(aw), u64::from(ah));
    let (bx, by, bw, bh) = (u64::from(bx), u64::from(by), u64::from(bw), u64::from(bh));
    ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub regions: Vec<Region>,
    /// The HTTP port (also the first region's UDP port).
    pub port: u16,
    /// Time zero of prim motions.
    pub started: Instant,
    stopping: AtomicBool,
    /// Fires on every event-queue change and on stop.
    pub changed: event_listener::Event,
    /// Textures fetched from [`SimConfig::asset_server`] (`None`: it has none by that id).
    fetched: std::sync::Mutex<HashMap<Uuid, Option<bytes::Bytes>>>,
    /// The HTTP client for the asset server, made on first use.
    assets_http: std::sync::OnceLock<Option<isahc::HttpClient>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("port", &self.port)
            .field("regions", &self.regions.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(config: SimConfig, regions: Vec<Region>, port: u16) -> Self {
        Shared {
            fetched: std::sync::Mutex::new(HashMap::new()),
            assets_http: std::sync::OnceLock::new(),
            config,
            regions,
            port,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            changed: event_listener::Event::new(),
        }
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.changed.notify(usize::MAX);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Seconds since start, the clock of prim motions.
    pub fn clock(&self) -> f32 {
        self.started.elapsed().as_secs_f32()
    }

    /// Every agent with a session in some region, each once.
    pub fn agents(&self) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = Vec::new();
        for r in &self.regions {
            for id in r.sessions().keys() {
                if !out.contains(id) {
                    out.push(*id);
                }
            }
        }
        out
    }

    /// The region where `agent_id` is root, else the first where it has a session.
    pub fn home_of(&self, agent_id: Uuid) -> Option<usize> {
        let mut any = None;
        for r in &self.regions {
            if let Some(s) = r.sessions().get(&agent_id) {
                if s.root {
                    return Some(r.index);
                }
                any = any.or(Some(r.index));
            }
        }
        any
    }

    /// A texture of `region`'s scene, else of any region's, else one already fetched from
    /// the asset server.
    pub fn texture(&self, region: usize, id: Uuid) -> Option<bytes::Bytes> {
        self.regions
            .get(region)
            .and_then(|r| r.scene.textures.get(&id))
            .or_else(|| self.regions.iter().find_map(|r| r.scene.textures.get(&id)))
            .cloned()
            .or_else(|| {
                self.fetched
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&id)
                    .cloned()
                    .flatten()
            })
    }

    /// [`texture`](Self::texture), asking the asset server (once per id) when nothing here
    /// has it.
    pub async fn fetch_texture(&self, region: usize, id: Uuid) -> Option<bytes::Bytes> {
        if let Some(t) = self.texture(region, id) {
            return Some(t);
        }
        let base = self.config.asset_server.as_deref()?;
        let known = self
            .fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&id);
        if known {
            return None;
        }
        let got = self.get_asset(base, id).await;
        self.fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, got.clone());
        got
    }

    /// `GET {base}/assets/{id}/data`, bounded in time and size; `None` on any failure.
    async fn get_asset(&self, base: &str, id: Uuid) -> Option<bytes::Bytes> {
        use futures_lite::AsyncReadExt;
        use isahc::config::Configurable;
        /// Larger than any texture a viewer would take.
        const MAX_TEXTURE: u64 = 16 << 20;
        let http = self
            .assets_http
            .get_or_init(|| {
                isahc::HttpClient::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .ok()
            })
            .as_ref()?;
        let url = format!("{}/assets/{id}/data", base.trim_end_matches('/'));
        let resp = http.get_async(url).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let mut body = Vec::new();
        resp.into_body()
            .take(MAX_TEXTURE + 1)
            .read_to_end(&mut body)
            .await
            .ok()?;
        (body.len() as u64 <= MAX_TEXTURE && !body.is_empty()).then(|| bytes::Bytes::from(body))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push_event(&self, agent_id: Uuid, message: &str, body: Value) -> bool {
        match self.home_of(agent_id) {
            Some(r) => self.push_event_in(r, agent_id, message, body),
            None => false,
        }
    }

    pub fn push_event_in(&self, region: usize, agent_id: Uuid, message: &str, body: Value) -> bool {
        let Some(r) = self.regions.get(region) else {
            return false;
        };
        let mut sessions = r.sessions();
        let Some(s) = sessions.get_mut(&agent_id) else {
            return false;
        };
        let mut m = Map::new();
        m.insert("message", Value::String(message.to_owned()));
        m.insert("body", body);
        if s.eq.pending.len() >= MAX_PENDING_EVENTS {
            s.eq.pending.pop_front();
        }
        s.eq.pending.push_back(Value::Map(m));
        drop(sessions);
        self.changed.notify(usize::MAX);
        true
    }

    /// Ends an agent in one region: its polls get 404; the caller closes its circuit.
    pub fn remove(&self, region: usize, agent_id: Uuid) -> Option<Session> {
        let r = self.regions.get(region)?;
        let s = r.sessions().remove(&agent_id);
        {
            let mut world = r.world();
            world.viewers.remove(&agent_id);
            world.shown.remove(&agent_id);
        }
        if let Some(s) = s.as_ref().filter(|s| s.root) {
            crate::avatars::vanish(self, region, agent_id, s.avatar_local_id);
        }
        self.changed.notify(usize::MAX);
        s
    }

    /// Runs `f` on the first session (of any region) that `pick` selects.
    pub fn with_session<T>(
        &self,
        pick: impl Fn(&Session) -> bool,
        f: impl FnOnce(usize, &mut Session) -> T,
    ) -> Option<T> {
        for r in &self.regions {
            let mut sessions = r.sessions();
            if let Some(s) = sessions.values_mut().find(|s| pick(s)) {
                return Some(f(r.index, s));
            }
        }
        None
    }
}
