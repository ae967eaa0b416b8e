//! The LLUDP side: one task per accepted circuit, per region.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::FutureExt;
use glam::Vec3;
use opensim_circuit::{Category, Connection, Endpoint, Event, Reliability};
use opensim_llsd::{Map, Value};
use opensim_messages::codec;
use opensim_messages::{
    AgentMovementComplete, Blocks, ChatFromSimulator, DisableSimulator, ImprovedInstantMessage,
    LayerData, LogoutReply, Message, SimulatorViewerTimeMessage, TeleportFailed, TeleportLocal,
    TeleportStart, agent_movement_complete as amc, chat_from_simulator, improved_instant_message,
    layer_data, logout_reply, simulator_viewer_time_message as svt, teleport_failed,
    teleport_local, teleport_start,
};
use opensim_regions::objects;
use opensim_textures::udp::ImageSender;
use uuid::Uuid;

use crate::state::{Identity, Session, Shared};
use crate::web::unix_now;

/// Whisper, say and shout ranges in metres (OpenSim's `[Chat]` defaults).
const CHAT_RANGES: [f32; 3] = [10.0, 20.0, 100.0];
/// Chat longer than this is cut to [`CHAT_CUT`] characters, as OpenSim does.
const CHAT_MAX: usize = 1100;
const CHAT_CUT: usize = 1000;
/// Objects per `ObjectUpdate`: keeps each well under the MTU.
pub(crate) const OBJECTS_PER_UPDATE: usize = 3;
/// Image packets handed to the circuit per turn of the image pump.
const IMAGE_BATCH: usize = 8;
/// The pump waits while more texture packets than this are queued in the circuit, so that
/// the image queue's priorities (not the circuit's FIFO) decide what goes next.
const IMAGE_QUEUE_LOW: usize = 4;
/// Most images one agent may have queued (OpenSim has no limit; a bound keeps memory finite).
const MAX_IMAGES: usize = 1024;
/// `TeleportFlags` OpenSim puts in TeleportStart and TeleportFinish: ViaLocation.
const TELEPORT_VIA_LOCATION: u32 = 16;
/// OpenSim's text for a teleport to a region it does not know.
const NO_SUCH_REGION: &str = "The region you tried to teleport to was not found";
/// IM dialogs the basic message module forwards (agent.md 2.4).
const FORWARDED_DIALOGS: [u8; 5] = [0, 19, 20, 41, 42];

pub(crate) async fn serve(shared: Arc<Shared>, region: usize, endpoint: Endpoint) {
    loop {
        let stop = async {
            loop {
                let l = shared.changed.listen();
                if shared.is_stopping() {
                    return None;
                }
                l.await;
            }
        };
        let Some(conn) = endpoint.accept().or(stop).await else {
            return;
        };
        smol::spawn(circuit(shared.clone(), region, conn)).detach();
    }
}

pub(crate) fn nul(s: &str) -> Bytes {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    Bytes::from(v)
}

/// Finds the session a `UseCircuitCode` belongs to and attaches the circuit to it.
fn attach(
    shared: &Shared,
    region: usize,
    conn: &Connection,
    m: &opensim_messages::UseCircuitCode,
) -> Option<(Identity, bool)> {
    let c = &m.circuit_code;
    let mut sessions = shared.regions.get(region)?.sessions();
    let s = sessions.get_mut(&c.id)?;
    if s.circuit_code != c.code || s.session_id != c.session_id {
        return None;
    }
    if s.connection.as_ref().is_some_and(|c| !c.is_closed()) {
        // Already attached from elsewhere; OpenSim ignores the second circuit.
        return None;
    }
    s.connection = Some(conn.clone());
    Some((s.identity(), s.arriving_root))
}

/// The per-circuit image queue and its pump's wake-up.
struct Images {
    sender: Mutex<ImageSender>,
    wake: event_listener::Event,
    closed: AtomicBool,
}

impl Images {
    fn lock(&self) -> std::sync::MutexGuard<'_, ImageSender> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feeds the circuit from the image queue, a few packets at a time (OpenSim pulls from its
/// image queue when the texture throttle has room).
async fn image_pump(conn: Connection, images: Arc<Images>) {
    let mut out = Vec::with_capacity(IMAGE_BATCH);
    loop {
        let listener = images.wake.listen();
        if images.closed.load(Ordering::Acquire) || conn.is_closed() {
            return;
        }
        out.clear();
        images.lock().poll(IMAGE_BATCH, &mut out);
        if out.is_empty() {
            listener.await;
            continue;
        }
        for m in out.drain(..) {
            if conn
                .send_with(m, Reliability::Reliable, Category::Texture)
                .await
                .is_err()
            {
                return;
            }
        }
        while conn.stats().queued[Category::Texture.index()] > IMAGE_QUEUE_LOW {
            if conn.is_closed() || images.closed.load(Ordering::Acquire) {
                return;
            }
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    }
}

async fn circuit(shared: Arc<Shared>, region: usize, conn: Connection) {
    let attached = loop {
        match conn.recv().await {
            Some(Event::Message(Message::UseCircuitCode(m))) => {
                break attach(&shared, region, &conn, &m);
            }
            Some(Event::Message(_)) => {}
            Some(Event::Closed(_)) | None => return,
            Some(_) => {}
        }
    };
    // Unknown circuit code or wrong session: OpenSim answers nothing.
    let Some((who, arriving_root)) = attached else {
        conn.close().await;
        return;
    };
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let (agent_id, session_id, circuit_code) = (who.agent_id, who.session_id, who.circuit_code);
    // A child agent's circuit gets the handshake as soon as it exists; a root arrival (login,
    // teleport) only after its CompleteAgentMovement, as in OpenSim 0.9.2.2's session capture
    // (clients such as Hippolyzer wait for the UseCircuitCode ack before listening for it).
    let mut handshake_sent = false;
    if !arriving_root {
        if conn
            .send(r.prepared.handshake.clone(), Reliability::Reliable)
            .await
            .is_err()
        {
            shared.remove(region, agent_id);
            return;
        }
        handshake_sent = true;
    }
    let images = Arc::new(Images {
        sender: Mutex::new(ImageSender::new(shared.config.missing_texture.clone())),
        wake: event_listener::Event::new(),
        closed: AtomicBool::new(false),
    });
    let pump = smol::spawn(image_pump(conn.clone(), images.clone()));
    let mut image_requests: u32 = 0;
    let mut logged_out = false;
    while let Some(event) = conn.recv().await {
        let msg = match event {
            Event::Message(m) => m,
            Event::ThrottleChanged(rates) => {
                if let Some(s) = r.sessions().get_mut(&agent_id) {
                    s.throttle = Some(rates);
                }
                continue;
            }
            Event::Closed(_) => break,
            _ => continue,
        };
        let ok = match msg {
            Message::CompleteAgentMovement(m)
                if m.agent_data.circuit_code == circuit_code
                    && m.agent_data.agent_id == agent_id
                    && m.agent_data.session_id == session_id =>
            {
                let handshake = if handshake_sent {
                    true
                } else {
                    handshake_sent = true;
                    conn.send(r.prepared.handshake.clone(), Reliability::Reliable)
                        .await
                        .is_ok()
                };
                handshake && arrive(&shared, region, &conn, &who).await
            }
            Message::RegionHandshakeReply(m) if m.agent_data.agent_id == agent_id => {
                send_scene(&shared, region, agent_id, &conn).await
            }
            Message::ChatFromViewer(m) if m.agent_data.session_id == session_id => {
                relay_chat(&shared, region, agent_id, &m).await;
                true
            }
            Message::RequestImage(m)
                if m.agent_data.agent_id == agent_id && m.agent_data.session_id == session_id =>
            {
                image_requests = image_requests.wrapping_add(1);
                // Textures only the asset server has are fetched before the request is
                // handled (this agent's messages wait meanwhile, bounded by its timeout).
                if shared.config.asset_server.is_some() {
                    for block in m.request_image.iter().take(MAX_IMAGES) {
                        let _ = shared.fetch_texture(region, block.image).await;
                    }
                }
                let mut sender = images.lock();
                if sender.len() < MAX_IMAGES {
                    sender.handle_request(image_requests, &m, |id| shared.texture(region, id));
                }
                drop(sender);
                images.wake.notify(usize::MAX);
                true
            }
            Message::AgentUpdate(m)
                if m.agent_data.agent_id == agent_id && m.agent_data.session_id == session_id =>
            {
                if let Some(s) = r.sessions().get_mut(&agent_id)
                    && s.root
                {
                    s.control_flags = m.agent_data.control_flags;
                    if m.agent_data.body_rotation.is_finite() {
                        s.body_rotation = m.agent_data.body_rotation.normalize();
                    }
                }
                true
            }
            Message::GenericMessage(m)
                if m.agent_data.agent_id == agent_id
                    && m.agent_data.session_id == session_id
                    && codec::text(&m.method_data.method) == "autopilot" =>
            {
                autopilot(&shared, region, agent_id, &m);
                true
            }
            Message::ImprovedInstantMessage(m) if m.agent_data.agent_id == agent_id => {
                relay_im(&shared, region, &who, &m).await;
                true
            }
            Message::TeleportLocationRequest(m)
                if m.agent_data.agent_id == agent_id && m.agent_data.session_id == session_id =>
            {
                let pos = m.info.position;
                let look = m.info.look_at;
                teleport(
                    &shared,
                    region,
                    &conn,
                    &who,
                    m.info.region_handle,
                    pos,
                    look,
                )
                .await
            }
            Message::TeleportLandmarkRequest(m)
                if m.info.agent_id == agent_id && m.info.session_id == session_id =>
            {
                // Only the zero landmark (home: the login region's start) is known here.
                if m.info.landmark_id.is_nil() {
                    let home = &shared.regions[0];
                    let start = home.prepared.start;
                    let handle = home.prepared.handle.0;
                    teleport(&shared, region, &conn, &who, handle, start, Vec3::Y).await
                } else {
                    fail_teleport(&conn, agent_id, "Could not find the landmark asset data").await
                }
            }
            Message::LogoutRequest(m)
                if m.agent_data.agent_id == agent_id && m.agent_data.session_id == session_id =>
            {
                let reply = LogoutReply {
                    agent_data: logout_reply::AgentData {
                        agent_id,
                        session_id,
                    },
                    inventory_data: Blocks::one(logout_reply::InventoryData {
                        item_id: Uuid::nil(),
                    }),
                };
                let _ = conn.send(reply, Reliability::Reliable).await;
                logged_out = true;
                break;
            }
            _ => true,
        };
        if !ok {
            break;
        }
    }
    images.closed.store(true, Ordering::Release);
    images.wake.notify(usize::MAX);
    pump.cancel().await;
    // Logout, timeout or a closed circuit all end the agent here (its polls get 404); the
    // end of a root agent, or a logout, ends it everywhere.
    let (is_ours, was_root) = r
        .sessions()
        .get(&agent_id)
        .filter(|s| s.session_id == session_id)
        .map_or((false, false), |s| {
            let ours = s
                .connection
                .as_ref()
                .is_some_and(|c| c.remote_addr() == conn.remote_addr());
            (ours, s.root)
        });
    if is_ours {
        shared.remove(region, agent_id);
        if was_root || logged_out {
            end_everywhere(&shared, agent_id, session_id);
        }
    }
    conn.close().await;
}

/// Drops the agent's child agents in every region (a logout or a lost root agent).
fn end_everywhere(shared: &Arc<Shared>, agent_id: Uuid, session_id: Uuid) {
    for other in &shared.regions {
        let mine = other
            .sessions()
            .get(&agent_id)
            .is_some_and(|s| s.session_id == session_id);
        if mine
            && let Some(c) = shared
                .remove(other.index, agent_id)
                .and_then(|s| s.connection)
        {
            smol::spawn(async move { c.close().await }).detach();
        }
    }
}

fn be_u32(v: u32) -> Value {
    Value::Binary(v.to_be_bytes().to_vec())
}

fn be_u64(v: u64) -> Value {
    Value::Binary(v.to_be_bytes().to_vec())
}

fn ip_bytes(addr: std::net::SocketAddr) -> Value {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => Value::Binary(ip.octets().to_vec()),
        std::net::IpAddr::V6(_) => Value::Binary(vec![127, 0, 0, 1]),
    }
}

/// `CompleteAgentMovement`: the agent becomes root here, `AgentMovementComplete` answers, the
/// regions it came from become children or are let go, and the neighbours are announced.
async fn arrive(shared: &Arc<Shared>, region: usize, conn: &Connection, who: &Identity) -> bool {
    let r = &shared.regions[region];
    let agent_id = who.agent_id;
    let (position, look_at) = {
        let mut sessions = r.sessions();
        match sessions.get_mut(&agent_id) {
            Some(s) => {
                s.root = true;
                // Arrived: from now on it counts as root, not as on its way in.
                s.arriving_root = false;
                (s.position, s.look_at)
            }
            None => return false,
        }
    };
    crate::avatars::appear(shared, region, agent_id);
    let reply = AgentMovementComplete {
        agent_data: amc::AgentData {
            agent_id,
            session_id: who.session_id,
        },
        data: amc::Data {
            position,
            look_at,
            region_handle: r.prepared.handle.0,
            timestamp: u32::try_from(unix_now()).unwrap_or(u32::MAX),
        },
        sim_data: amc::SimData {
            channel_version: nul(&shared.config.channel_version),
        },
    };
    if conn.send(reply, Reliability::Reliable).await.is_err() {
        return false;
    }
    // The region the agent left, and any child agent it had, stays a child when it is a
    // neighbour of this one; otherwise it sends DisableSimulator a little later and forgets
    // the agent (teleport capture: ~2.5 s).
    for other in &shared.regions {
        if other.index == region {
            continue;
        }
        let (present, left_root) = {
            let mut sessions = other.sessions();
            match sessions.get_mut(&agent_id) {
                Some(s) if s.session_id == who.session_id => {
                    let was_root = std::mem::replace(&mut s.root, false);
                    s.control_flags = 0;
                    s.autopilot = None;
                    s.reported = None;
                    (true, was_root.then_some(s.avatar_local_id))
                }
                _ => (false, None),
            }
        };
        if let Some(local_id) = left_root {
            crate::avatars::vanish(shared, other.index, agent_id, local_id);
        }
        if present && !other.is_neighbour(r) {
            let weak = Arc::downgrade(shared);
            let delay = shared.config.teleport_release_delay;
            let (index, session_id) = (other.index, who.session_id);
            smol::spawn(async move {
                async_io::Timer::after(delay).await;
                if let Some(shared) = weak.upgrade() {
                    release_child(&shared, index, agent_id, session_id).await;
                }
            })
            .detach();
        }
    }
    // Neighbours: a child agent in each, then EnableSimulator and
    // EstablishAgentCommunication on this region's queue.
    let base = shared.base_url();
    for n in shared.regions.iter().filter(|n| n.is_neighbour(r)) {
        let seed = {
            let mut sessions = n.sessions();
            let s = sessions
                .entry(agent_id)
                .or_insert_with(|| Session::new(who, n.prepared.start));
            format!("{base}/CAPS/{}/", s.seed_token)
        };
        let size = n.scene.size();
        let mut info = Map::new();
        info.insert("Handle", be_u64(n.prepared.handle.0));
        info.insert("IP", ip_bytes(n.udp_addr));
        info.insert("Port", Value::Integer(i32::from(n.udp_addr.port())));
        info.insert("RegionSizeX", be_u32(size.width()));
        info.insert("RegionSizeY", be_u32(size.height()));
        let mut body = Map::new();
        body.insert("SimulatorInfo", Value::Array(vec![Value::Map(info)]));
        shared.push_event_in(region, agent_id, "EnableSimulator", Value::Map(body));
        let mut body = Map::new();
        body.insert("agent-id", Value::Uuid(agent_id));
        body.insert("sim-ip-and-port", Value::String(n.udp_addr.to_string()));
        body.insert("seed-capability", Value::String(seed));
        shared.push_event_in(
            region,
            agent_id,
            "EstablishAgentCommunication",
            Value::Map(body),
        );
    }
    true
}

/// Lets go of a child agent left behind by a teleport: `DisableSimulator`, then its circuit
/// and event queue close.
async fn release_child(shared: &Shared, region: usize, agent_id: Uuid, session_id: Uuid) {
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let still_child = r
        .sessions()
        .get(&agent_id)
        .is_some_and(|s| !s.root && s.session_id == session_id);
    if !still_child {
        return;
    }
    if let Some(s) = shared.remove(region, agent_id)
        && let Some(c) = s.connection
    {
        let _ = c.send(DisableSimulator, Reliability::Reliable).await;
        c.close().await;
    }
}

async fn fail_teleport(conn: &Connection, agent_id: Uuid, reason: &str) -> bool {
    let m = TeleportFailed {
        info: teleport_failed::Info {
            agent_id,
            reason: nul(reason),
        },
        alert_info: Blocks::new(),
    };
    conn.send(m, Reliability::Reliable).await.is_ok()
}

/// `TeleportLocationRequest` (and home): `TeleportStart`, then `TeleportLocal` inside this
/// region, `TeleportFinish` on this region's event queue for another, or `TeleportFailed`.
async fn teleport(
    shared: &Arc<Shared>,
    region: usize,
    conn: &Connection,
    who: &Identity,
    handle: u64,
    position: Vec3,
    look_at: Vec3,
) -> bool {
    let agent_id = who.agent_id;
    let is_root = shared.regions[region]
        .sessions()
        .get(&agent_id)
        .is_some_and(|s| s.root);
    if !is_root {
        // Child agents do not teleport.
        return true;
    }
    let (gx, gy) = (handle >> 32, handle & 0xFFFF_FFFF);
    let Some(target) = shared.regions.iter().find(|t| t.contains_global(gx, gy)) else {
        return fail_teleport(conn, agent_id, NO_SUCH_REGION).await;
    };
    if target.index != region && target.is_full(shared.config.agent_limit, agent_id) {
        return fail_teleport(conn, agent_id, crate::state::REGION_FULL).await;
    }
    let start = TeleportStart {
        info: teleport_start::Info {
            teleport_flags: TELEPORT_VIA_LOCATION,
        },
    };
    if conn.send(start, Reliability::Reliable).await.is_err() {
        return false;
    }
    let size = target.scene.size();
    // A handle inside a var-region is a point in it, as OpenSim converts it.
    let offset = Vec3::new(
        (gx - u64::from(target.scene.grid.0) * 256) as f32,
        (gy - u64::from(target.scene.grid.1) * 256) as f32,
        0.0,
    );
    let mut pos = position + offset;
    if !pos.is_finite() {
        pos = target.prepared.start;
    }
    pos.x = pos.x.clamp(0.0, size.width() as f32 - 0.01);
    pos.y = pos.y.clamp(0.0, size.height() as f32 - 0.01);
    pos.z = pos.z.max(target.scene.ground_at(pos.x, pos.y));
    let look_at = if look_at.is_finite() && look_at.length_squared() > 0.0 {
        look_at
    } else {
        Vec3::Y
    };
    if target.index == region {
        if let Some(s) = target.sessions().get_mut(&agent_id) {
            s.position = pos;
            s.look_at = look_at;
        }
        let m = TeleportLocal {
            info: teleport_local::Info {
                agent_id,
                location_id: 2,
                position: pos,
                look_at,
                teleport_flags: TELEPORT_VIA_LOCATION,
            },
        };
        return conn.send(m, Reliability::Reliable).await.is_ok();
    }
    let seed = {
        let mut sessions = target.sessions();
        let s = sessions.entry(agent_id).or_insert_with(|| {
            let mut s = Session::new(who, pos);
            s.arriving_root = true;
            s
        });
        s.position = pos;
        s.look_at = look_at;
        format!("{}/CAPS/{}/", shared.base_url(), s.seed_token)
    };
    shared.changed.notify(usize::MAX);
    let mut info = Map::new();
    info.insert("AgentID", Value::Uuid(agent_id));
    info.insert("LocationID", be_u32(4));
    info.insert("SimIP", ip_bytes(target.udp_addr));
    info.insert("SimPort", Value::Integer(i32::from(target.udp_addr.port())));
    info.insert("RegionHandle", be_u64(target.prepared.handle.0));
    info.insert("SeedCapability", Value::String(seed));
    info.insert("SimAccess", Value::Integer(13));
    info.insert("TeleportFlags", be_u32(TELEPORT_VIA_LOCATION));
    info.insert("RegionSizeX", be_u32(size.width()));
    info.insert("RegionSizeY", be_u32(size.height()));
    let mut body = Map::new();
    body.insert("Info", Value::Array(vec![Value::Map(info)]));
    shared.push_event_in(region, agent_id, "TeleportFinish", Value::Map(body));
    true
}

pub(crate) fn time_message() -> SimulatorViewerTimeMessage {
    // A fixed sun high in the sky: the demo is always at midday.
    SimulatorViewerTimeMessage {
        time_info: svt::TimeInfo {
            usec_since_start: unix_now().saturating_mul(1_000_000),
            sec_per_day: 14400,
            sec_per_year: 14400 * 365,
            sun_direction: Vec3::new(
                0.0,
                std::f32::consts::FRAC_1_SQRT_2,
                std::f32::consts::FRAC_1_SQRT_2,
            ),
            sun_phase: 1.0,
            sun_ang_velocity: Vec3::new(0.0, 0.0, 0.0),
        },
    }
}

pub(crate) fn wind_message(shared: &Shared, region: usize) -> Option<LayerData> {
    let r = shared.regions.get(region)?;
    Some(LayerData {
        layer_id: layer_data::LayerId {
            type_: opensim_regions::terrain::LAYER_WIND,
        },
        layer_data: layer_data::LayerData {
            data: r.prepared.wind.clone(),
        },
    })
}

/// Full `ObjectUpdate`s for `prims`, at their poses at `t`.
pub(crate) fn object_updates<'a>(
    shared: &Shared,
    region: usize,
    prims: impl Iterator<Item = (&'a crate::Prim, Option<&'a crate::PrimMotion>)>,
    t: f32,
) -> Vec<opensim_messages::ObjectUpdate> {
    let Some(r) = shared.regions.get(region) else {
        return Vec::new();
    };
    let width = r.scene.size().width() as f32;
    let mut updates = Vec::new();
    for (p, motion) in prims {
        let Ok(mut u) = p.to_full_update() else {
            continue;
        };
        if let Some(m) = motion {
            let pose = m.pose(p, t);
            u.motion.position = pose.position;
            u.motion.rotation = pose.rotation;
            u.motion.velocity = pose.velocity;
            u.motion.angular_velocity = pose.angular_velocity;
        }
        updates.push(u);
    }
    updates
        .chunks(OBJECTS_PER_UPDATE)
        .filter_map(|c| objects::object_update(r.prepared.handle.0, 65535, c, width).ok())
        .collect()
}

/// OpenSimulator's `autopilot` generic message: walk to the global position in its three
/// parameters (decimal text), given in metres from the grid's origin.
fn autopilot(shared: &Shared, region: usize, agent_id: Uuid, m: &opensim_messages::GenericMessage) {
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let params: Vec<f64> = m
        .param_list
        .iter()
        .filter_map(|p| codec::text(&p.parameter).trim().parse::<f64>().ok())
        .collect();
    let [gx, gy, z] = params[..] else {
        return;
    };
    let handle = r.prepared.handle.0;
    let (x, y) = (
        gx - (handle >> 32) as f64,
        gy - (handle & 0xFFFF_FFFF) as f64,
    );
    let size = r.scene.size();
    let target = Vec3::new(x as f32, y as f32, z as f32);
    if !target.is_finite() {
        return;
    }
    let target = Vec3::new(
        target.x.clamp(0.0, size.width() as f32 - 0.01),
        target.y.clamp(0.0, size.height() as f32 - 0.01),
        target.z,
    );
    if let Some(s) = r.sessions().get_mut(&agent_id).filter(|s| s.root) {
        s.autopilot = Some(target);
    }
}

async fn send_scene(shared: &Shared, region: usize, agent_id: Uuid, conn: &Connection) -> bool {
    let Some(r) = shared.regions.get(region) else {
        return false;
    };
    let p = &r.prepared;
    if conn
        .send(time_message(), Reliability::Unreliable)
        .await
        .is_err()
    {
        return false;
    }
    for data in &p.land {
        let m = LayerData {
            layer_id: layer_data::LayerId { type_: p.land_type },
            layer_data: layer_data::LayerData { data: data.clone() },
        };
        if conn.send(m, Reliability::Reliable).await.is_err() {
            return false;
        }
    }
    let cloud = LayerData {
        layer_id: layer_data::LayerId {
            type_: opensim_regions::terrain::LAYER_CLOUD,
        },
        layer_data: layer_data::LayerData {
            data: p.cloud.clone(),
        },
    };
    for m in wind_message(shared, region)
        .into_iter()
        .chain(std::iter::once(cloud))
    {
        if conn.send(m, Reliability::Reliable).await.is_err() {
            return false;
        }
    }
    // The snapshot and the viewer registration happen together, so that a prim added or
    // removed meanwhile reaches this agent through the broadcast.
    let messages = {
        let mut world = r.world();
        world.viewers.insert(agent_id, conn.clone());
        world.shown.insert(agent_id, HashSet::new());
        let t = shared.clock();
        object_updates(
            shared,
            region,
            world
                .prims
                .values()
                .map(|p| (p, world.motions.get(&p.local_id))),
            t,
        )
    };
    // After the registration above: an agent becoming root from here on reaches this circuit
    // through `avatars::appear`, one already root is in this snapshot.
    let avatars = crate::avatars::snapshot(shared, region, agent_id);
    for m in messages.into_iter().chain(avatars) {
        if conn.send(m, Reliability::Reliable).await.is_err() {
            return false;
        }
    }
    match crate::tick::stats_message(shared, region) {
        Some(stats) => conn.send(stats, Reliability::Unreliable).await.is_ok(),
        None => true,
    }
}

async fn relay_chat(
    shared: &Shared,
    region: usize,
    speaker: Uuid,
    m: &opensim_messages::ChatFromViewer,
) {
    let chat = &m.chat_data;
    // Other channels are heard by scripts only.
    if chat.channel != 0 {
        return;
    }
    let range = match chat.type_ {
        t @ 0..=2 => Some(CHAT_RANGES[usize::from(t)]),
        4 | 5 => None,
        _ => return,
    };
    let mut text = opensim_messages::codec::text(&chat.message);
    if text.chars().count() > CHAT_MAX {
        text = text.chars().take(CHAT_CUT).collect();
    }
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let (targets, from_name, position) = {
        let sessions = r.sessions();
        let Some(me) = sessions.get(&speaker) else {
            return;
        };
        if !me.root {
            return;
        }
        let targets: Vec<Connection> = sessions
            .values()
            .filter(|s| s.root)
            .filter(|s| range.is_none_or(|r| s.position.distance(me.position) <= r))
            .filter_map(|s| s.connection.clone())
            .collect();
        (targets, me.name(), me.position)
    };
    let out = ChatFromSimulator {
        chat_data: chat_from_simulator::ChatData {
            from_name: nul(&from_name),
            source_id: speaker,
            owner_id: speaker,
            source_type: 1,
            chat_type: chat.type_,
            audible: 1,
            position,
            message: nul(&text),
        },
    };
    for c in targets {
        let _ = c.send(out.clone(), Reliability::Reliable).await;
    }
}

/// OpenSim's local instant messages: to the recipient's root agent in any region, stamped
/// by the simulator; a dialog-0 IM to someone offline gets the "not logged in" note back.
async fn relay_im(shared: &Shared, region: usize, from: &Identity, m: &ImprovedInstantMessage) {
    let b = &m.message_block;
    if !FORWARDED_DIALOGS.contains(&b.dialog) {
        return;
    }
    let (position, region_id) = {
        let Some(r) = shared.regions.get(region) else {
            return;
        };
        let position = r
            .sessions()
            .get(&from.agent_id)
            .map_or(Vec3::ZERO, |s| s.position);
        (position, r.scene.region_id)
    };
    let target = shared.regions.iter().find_map(|r| {
        r.sessions()
            .get(&b.to_agent_id)
            .filter(|s| s.root)
            .and_then(|s| s.connection.clone())
    });
    let id = if b.id.is_nil() {
        Uuid::from_u128(from.agent_id.as_u128() ^ b.to_agent_id.as_u128())
    } else {
        b.id
    };
    let mut text = b.message.clone();
    if text.len() > 1024 {
        // Cut at 1023 bytes and keep the terminator.
        let mut v = text[..1023].to_vec();
        v.push(0);
        text = Bytes::from(v);
    }
    let timestamp = u32::try_from(unix_now()).unwrap_or(u32::MAX);
    match target {
        Some(conn) => {
            let out = ImprovedInstantMessage {
                agent_data: improved_instant_message::AgentData {
                    agent_id: from.agent_id,
                    session_id: Uuid::nil(),
                },
                message_block: improved_instant_message::MessageBlock {
                    from_group: b.from_group,
                    to_agent_id: b.to_agent_id,
                    parent_estate_id: 1,
                    region_id,
                    position,
                    offline: 0,
                    dialog: b.dialog,
                    id,
                    timestamp,
                    from_agent_name: nul(&format!("{} {}", from.first, from.last)),
                    message: text,
                    binary_bucket: b.binary_bucket.clone(),
                },
            };
            let _ = conn.send(out, Reliability::Reliable).await;
        }
        None if b.dialog == 0 => {
            let Some(back) = shared.regions.get(region).and_then(|r| {
                r.sessions()
                    .get(&from.agent_id)
                    .and_then(|s| s.connection.clone())
            }) else {
                return;
            };
            let out = ImprovedInstantMessage {
                agent_data: improved_instant_message::AgentData {
                    agent_id: b.to_agent_id,
                    session_id: Uuid::nil(),
                },
                message_block: improved_instant_message::MessageBlock {
                    from_group: false,
                    to_agent_id: from.agent_id,
                    parent_estate_id: 1,
                    region_id,
                    position: Vec3::ZERO,
                    offline: 0,
                    dialog: 20,
                    id,
                    timestamp,
                    from_agent_name: nul("System"),
                    message: nul("Unable to send instant message. User is not logged in."),
                    binary_bucket: Bytes::from_static(&[0]),
                },
            };
            let _ = back.send(out, Reliability::Reliable).await;
        }
        None => {}
    }
}
