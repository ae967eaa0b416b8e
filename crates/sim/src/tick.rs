//! A region's clock: moves agents and prims, and sends what OpenSimulator sends periodically.
//!
//! Every [`SimConfig::terse_interval`](crate::SimConfig::terse_interval) the agents walk or fly
//! as their `AgentUpdate` control flags say (or walk to their `autopilot` target), and every
//! moving prim and every avatar that moved or stopped gets an `ImprovedTerseObjectUpdate`
//! (unreliable, like OpenSim's). Every
//! [`SimConfig::status_interval`](crate::SimConfig::status_interval) each agent that has the
//! scene gets `SimulatorViewerTimeMessage`, `SimStats`, `CoarseLocationUpdate` and the wind
//! `LayerData` (the real session shows them every few seconds). Sends never wait: a circuit
//! whose queue is full misses a round rather than holding up the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use opensim_circuit::{Connection, Reliability};
use opensim_regions::objects::{Motion, TerseUpdate, improved_terse_object_update};
use opensim_regions::stats::{CoarseAgent, CoarseLocations, SimStats};
use uuid::Uuid;

use crate::state::Shared;
use crate::udp::{time_message, wind_message};

/// Terse updates per message: 15 blocks of at most 64 bytes (an avatar's, with its collision
/// plane) stay well under the MTU.
const TERSE_PER_MESSAGE: usize = 15;
/// Most agents in one `CoarseLocationUpdate` (its block count is a byte).
const MAX_COARSE: usize = 255;

/// `AGENT_CONTROL_*` bits that move an avatar (agent.md 3.1).
mod control {
    pub const AT_POS: u32 = 0x1;
    pub const AT_NEG: u32 = 0x2;
    pub const LEFT_POS: u32 = 0x4;
    pub const LEFT_NEG: u32 = 0x8;
    pub const UP_POS: u32 = 0x10;
    pub const UP_NEG: u32 = 0x20;
    pub const FAST_AT: u32 = 0x400;
    pub const FAST_LEFT: u32 = 0x800;
    pub const FLY: u32 = 0x2000;
    pub const STOP: u32 = 0x4000;
    pub const NUDGE_AT_POS: u32 = 0x8_0000;
    pub const NUDGE_AT_NEG: u32 = 0x10_0000;
    pub const NUDGE_LEFT_POS: u32 = 0x20_0000;
    pub const NUDGE_LEFT_NEG: u32 = 0x40_0000;
}

/// Walking, running and flying speeds in m/s (close to a viewer's defaults).
const WALK_SPEED: f32 = 3.2;
const RUN_SPEED: f32 = 5.1;
const FLY_SPEED: f32 = 10.0;

pub(crate) async fn run(shared: Arc<Shared>, region: usize) {
    let terse_every = shared.config.terse_interval.max(Duration::from_millis(10));
    let status_every = shared.config.status_interval.max(Duration::from_millis(10));
    let mut last = Instant::now();
    let mut next_status = last + status_every;
    let mut timer = async_io::Timer::interval(terse_every);
    loop {
        futures_lite::StreamExt::next(&mut timer).await;
        if shared.is_stopping() {
            return;
        }
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f32().min(1.0);
        last = now;
        let avatars = move_agents(&shared, region, dt);
        send_terse(&shared, region, avatars);
        if now >= next_status {
            next_status = now + status_every;
            send_status(&shared, region);
        }
    }
}

/// Where the control flags take an agent in `dt` seconds.
fn step(position: Vec3, flags: u32, rotation: Quat, dt: f32) -> Option<(Vec3, bool)> {
    use control::*;
    if flags & STOP != 0 {
        return None;
    }
    let axis = |pos: u32, neg: u32| {
        f32::from(u8::from(flags & pos != 0)) - f32::from(u8::from(flags & neg != 0))
    };
    let fwd = axis(AT_POS | NUDGE_AT_POS, AT_NEG | NUDGE_AT_NEG);
    let left = axis(LEFT_POS | NUDGE_LEFT_POS, LEFT_NEG | NUDGE_LEFT_NEG);
    let flying = flags & FLY != 0;
    let up = if flying { axis(UP_POS, UP_NEG) } else { 0.0 };
    if fwd == 0.0 && left == 0.0 && up == 0.0 {
        return None;
    }
    // Walking stays level whatever the body's pitch.
    let mut heading = rotation * Vec3::X;
    let mut side = rotation * Vec3::Y;
    if !flying {
        heading.z = 0.0;
        side.z = 0.0;
    }
    let dir = (heading.normalize_or_zero() * fwd + side.normalize_or_zero() * left + Vec3::Z * up)
        .normalize_or_zero();
    let speed = if flying {
        FLY_SPEED
    } else if flags & (FAST_AT | FAST_LEFT) != 0 {
        RUN_SPEED
    } else {
        WALK_SPEED
    };
    Some((position + dir * speed * dt, flying))
}

/// Closer than this to its autopilot target, an avatar has arrived (OpenSim stops walking
/// within about half a metre).
const AUTOPILOT_ARRIVAL: f32 = 0.5;

/// Moves the region's root agents by their controls or autopilot; returns the terse updates of
/// the avatars whose position or velocity changed since the last one sent.
fn move_agents(shared: &Shared, region: usize, dt: f32) -> Vec<TerseUpdate> {
    let Some(r) = shared.regions.get(region) else {
        return Vec::new();
    };
    let size = r.scene.size();
    let mut updates = Vec::new();
    let mut sessions = r.sessions();
    for s in sessions.values_mut().filter(|s| s.root) {
        let before = s.position;
        let moved = match step(s.position, s.control_flags, s.body_rotation, dt) {
            // The agent's own controls take over from the autopilot, as in OpenSim.
            Some(m) => {
                s.autopilot = None;
                Some(m)
            }
            None => s.autopilot.map(|target| {
                let (next, arrived) = walk_towards(s.position, target, WALK_SPEED * dt);
                if arrived {
                    s.autopilot = None;
                }
                (next, false)
            }),
        };
        if let Some((mut p, flying)) = moved {
            p.x = p.x.clamp(0.0, size.width() as f32 - 0.01);
            p.y = p.y.clamp(0.0, size.height() as f32 - 0.01);
            let ground = r.scene.ground_at(p.x, p.y);
            p.z = if flying {
                p.z.clamp(ground + 0.5, 4096.0)
            } else {
                ground + 1.0
            };
            s.position = p;
        }
        let velocity = if dt > 0.0 {
            (s.position - before) / dt
        } else {
            Vec3::ZERO
        };
        if s.reported != Some((s.position, velocity)) {
            s.reported = Some((s.position, velocity));
            updates.push(crate::avatars::terse_update(s, velocity));
        }
    }
    updates
}

/// One walking step of `stride` metres from `from` towards `target` (horizontally); whether
/// it arrives.
fn walk_towards(from: Vec3, target: Vec3, stride: f32) -> (Vec3, bool) {
    let to = (target - from).truncate();
    let distance = to.length();
    if distance <= stride.max(AUTOPILOT_ARRIVAL) {
        return (target.truncate().extend(from.z), true);
    }
    (
        (from.truncate() + to / distance * stride).extend(from.z),
        false,
    )
}

fn viewers(shared: &Shared, region: usize) -> Vec<(Uuid, Connection)> {
    shared.regions.get(region).map_or_else(Vec::new, |r| {
        r.world()
            .viewers
            .iter()
            .map(|(a, c)| (*a, c.clone()))
            .collect()
    })
}

/// Sends the moving prims' terse updates to every circuit with the scene, and each of
/// `avatars` to the circuits that were shown that avatar.
fn send_terse(shared: &Shared, region: usize, avatars: Vec<TerseUpdate>) {
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let t = shared.clock();
    let handle = r.prepared.handle.0;
    let messages = |updates: &[TerseUpdate]| -> Vec<_> {
        updates
            .chunks(TERSE_PER_MESSAGE)
            .filter_map(|c| improved_terse_object_update(handle, 65535, c).ok())
            .collect()
    };
    // Per circuit: the shared prim messages and its own avatar messages.
    let (prim_messages, per_viewer) = {
        let world = r.world();
        if (world.motions.is_empty() && avatars.is_empty()) || world.viewers.is_empty() {
            return;
        }
        let prims: Vec<TerseUpdate> = world
            .motions
            .iter()
            .filter_map(|(id, m)| {
                let p = world.prims.get(id)?;
                let pose = m.pose(p, t);
                Some(TerseUpdate {
                    local_id: p.local_id,
                    state: 0,
                    motion: Motion {
                        position: pose.position,
                        velocity: pose.velocity,
                        rotation: pose.rotation,
                        angular_velocity: pose.angular_velocity,
                        ..Motion::default()
                    },
                    texture_entry: bytes::Bytes::new(),
                })
            })
            .collect();
        let per_viewer: Vec<(Connection, Vec<TerseUpdate>)> = world
            .viewers
            .iter()
            .map(|(viewer, c)| {
                let seen: Vec<TerseUpdate> = match world.shown.get(viewer) {
                    Some(shown) if !avatars.is_empty() => avatars
                        .iter()
                        .filter(|a| shown.contains(&a.local_id))
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                (c.clone(), seen)
            })
            .collect();
        (messages(&prims), per_viewer)
    };
    for (c, seen) in per_viewer {
        for m in prim_messages.iter().cloned().chain(messages(&seen)) {
            let _ = c.try_send(m, Reliability::Unreliable);
        }
    }
}

/// The region's `SimStats` now: agent and prim counts are live.
pub(crate) fn stats_message(shared: &Shared, region: usize) -> Option<opensim_messages::SimStats> {
    let r = shared.regions.get(region)?;
    let (roots, children) = {
        let sessions = r.sessions();
        let roots = sessions.values().filter(|s| s.root).count();
        (roots, sessions.len() - roots)
    };
    let prims = r.world().prims.len();
    SimStats {
        region_x: r.scene.grid.0,
        region_y: r.scene.grid.1,
        region_flags: 0,
        object_capacity: 15000,
        pid: 0,
        stats: vec![
            (0, 1.0),
            (1, 55.0),
            (2, 55.0),
            (11, prims as f32),
            (13, roots as f32),
            (14, children as f32),
        ],
        region_flags_extended: Some(0),
    }
    .to_message()
    .ok()
}

/// The region's root agents, as the minimap sees them.
fn coarse_agents(shared: &Shared, region: usize) -> Vec<CoarseAgent> {
    let Some(r) = shared.regions.get(region) else {
        return Vec::new();
    };
    let sessions = r.sessions();
    let mut agents: Vec<CoarseAgent> = sessions
        .values()
        .filter(|s| s.root)
        .map(|s| {
            let z = s.position.z / 4.0;
            CoarseAgent {
                agent_id: s.agent_id,
                x: s.position.x.clamp(0.0, 255.0) as u8,
                y: s.position.y.clamp(0.0, 255.0) as u8,
                z: if (0.0..=255.0).contains(&z) {
                    z as u8
                } else {
                    0
                },
            }
        })
        .collect();
    agents.sort_by_key(|a| a.agent_id);
    agents.truncate(MAX_COARSE);
    agents
}

/// `CoarseLocationUpdate` for `you` (its index set when it is in the list).
pub(crate) fn coarse_message(
    agents: &[CoarseAgent],
    you: Uuid,
) -> Option<opensim_messages::CoarseLocationUpdate> {
    CoarseLocations {
        agents: agents.to_vec(),
        you: agents.iter().position(|a| a.agent_id == you),
        prey: None,
    }
    .to_message()
    .ok()
}

fn send_status(shared: &Shared, region: usize) {
    let viewers = viewers(shared, region);
    if viewers.is_empty() {
        return;
    }
    let time = time_message();
    let stats = stats_message(shared, region);
    let wind = wind_message(shared, region);
    let agents = coarse_agents(shared, region);
    for (agent, c) in &viewers {
        let _ = c.try_send(time.clone(), Reliability::Unreliable);
        if let Some(s) = &stats {
            let _ = c.try_send(s.clone(), Reliability::Unreliable);
        }
        if let Some(m) = coarse_message(&agents, *agent) {
            let _ = c.try_send(m, Reliability::Unreliable);
        }
        if let Some(w) = &wind {
            let _ = c.try_send(w.clone(), Reliability::Reliable);
        }
    }
}
