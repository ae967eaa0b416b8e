//! Shared state: sessions issued at login, their event queues and circuits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use glam::Vec3;
use opensim_circuit::Connection;
use opensim_llsd::{Map, Value};
use opensim_regions::RegionHandle;
use opensim_regions::handshake::RegionHandshake;
use opensim_regions::objects::{self, FullUpdate};
use opensim_regions::stats::SimStats;
use opensim_regions::terrain::{LayerType, patches_by_distance};
use uuid::Uuid;

use crate::{Scene, SimConfig, SimError};

/// Objects per `ObjectUpdate`: keeps each well under the MTU.
const OBJECTS_PER_UPDATE: usize = 3;

/// Messages built once from the scene and sent to every agent.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub handle: RegionHandle,
    pub handshake: opensim_messages::RegionHandshake,
    pub land_type: u8,
    pub land: Vec<bytes::Bytes>,
    pub objects: Vec<opensim_messages::ObjectUpdate>,
    pub stats: opensim_messages::SimStats,
    pub start: Vec3,
}

impl Prepared {
    pub fn new(scene: &Scene) -> Result<Self, SimError> {
        let err = |e: &dyn std::fmt::Display| SimError::Scene(e.to_string());
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
        let updates: Vec<FullUpdate> = scene
            .prims
            .iter()
            .map(|p| p.to_full_update())
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?;
        let objects = updates
            .chunks(OBJECTS_PER_UPDATE)
            .map(|c| objects::object_update(handle.0, 65535, c, size.width() as f32))
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?;
        let stats = SimStats {
            region_x: scene.grid.0,
            region_y: scene.grid.1,
            region_flags: 0,
            object_capacity: 15000,
            pid: 0,
            stats: vec![
                (0, 1.0),
                (1, 55.0),
                (2, 55.0),
                (11, scene.prims.len() as f32),
                (13, 1.0),
            ],
            region_flags_extended: Some(0),
        }
        .to_message()
        .map_err(|e| err(&e))?;
        Ok(Prepared {
            handle,
            handshake,
            land_type: LayerType::land_for(size).code(),
            land,
            objects,
            stats,
            start,
        })
    }
}

/// An agent's event queue.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    pub pending: VecDeque<Value>,
    /// The last batch answered and not yet acked: resent on the next poll.
    pub unacked: Option<(i32, Vec<Value>)>,
    pub next_id: i32,
}

/// One login.
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
    pub root: bool,
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub prepared: Prepared,
    pub port: u16,
    sessions: Mutex<HashMap<Uuid, Session>>,
    stopping: AtomicBool,
    /// Fires on every event-queue change and on stop.
    pub changed: event_listener::Event,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(config: SimConfig, prepared: Prepared, port: u16) -> Self {
        Shared {
            config,
            prepared,
            port,
            sessions: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            changed: event_listener::Event::new(),
        }
    }

    pub fn sessions(&self) -> MutexGuard<'_, HashMap<Uuid, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.changed.notify(usize::MAX);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn agents(&self) -> Vec<Uuid> {
        self.sessions().keys().copied().collect()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push_event(&self, agent_id: Uuid, message: &str, body: Value) -> bool {
        let mut sessions = self.sessions();
        let Some(s) = sessions.get_mut(&agent_id) else {
            return false;
        };
        let mut m = Map::new();
        m.insert("message", Value::String(message.to_owned()));
        m.insert("body", body);
        s.eq.pending.push_back(Value::Map(m));
        drop(sessions);
        self.changed.notify(usize::MAX);
        true
    }

    /// Ends a session (logout): its circuit is closed by the caller, its polls get 404.
    pub fn remove(&self, agent_id: Uuid) -> Option<Session> {
        let s = self.sessions().remove(&agent_id);
        self.changed.notify(usize::MAX);
        s
    }
}
