//! Avatars as objects: what viewers in a region see of its root agents.
//!
//! As in OpenSimulator, a root agent is an object of pcode 47 in its region: every circuit
//! that has the scene gets its full `ObjectUpdate` when the agent arrives (or, for a circuit
//! that arrives later, with the scene), an avatar `ImprovedTerseObjectUpdate` (with its
//! collision plane) while it moves, and `KillObject` when it leaves.

use bytes::Bytes;
use glam::Vec3;
use opensim_circuit::{Connection, Reliability};
use opensim_regions::objects::{
    self, DEFAULT_COLLISION_PLANE, FullUpdate, Motion, TerseUpdate, pcode,
};
use uuid::Uuid;

use crate::state::{Session, Shared};

/// Size of OpenSimulator's default avatar box.
const AVATAR_SCALE: Vec3 = Vec3::new(0.45, 0.6, 1.9);
/// The avatar's material ("flesh").
const FLESH: u8 = 4;

/// The full update of `s`'s avatar, shaped as OpenSimulator 0.9.2.2 sends it (the session
/// capture's `ObjectUpdate` of pcode 47): no shape, no TextureEntry (appearance travels
/// apart), no flags, no owner, and the name in three NameValues.
pub(crate) fn full_update(s: &Session) -> FullUpdate {
    let mut u = FullUpdate::new(s.avatar_local_id, s.agent_id, pcode::AVATAR);
    u.scale = AVATAR_SCALE;
    u.material = FLESH;
    u.motion = motion(s, Vec3::ZERO);
    let mut names = format!(
        "FirstName STRING RW SV {}\nLastName STRING RW SV {}\nTitle STRING RW SV ",
        s.first, s.last
    )
    .into_bytes();
    names.push(0);
    u.name_values = Bytes::from(names);
    u
}

/// The terse update of `s`'s avatar moving at `velocity`.
pub(crate) fn terse_update(s: &Session, velocity: Vec3) -> TerseUpdate {
    TerseUpdate {
        local_id: s.avatar_local_id,
        state: 0,
        motion: motion(s, velocity),
        texture_entry: Bytes::new(),
    }
}

fn motion(s: &Session, velocity: Vec3) -> Motion {
    Motion {
        collision_plane: Some(DEFAULT_COLLISION_PLANE),
        position: s.position,
        velocity,
        rotation: s.body_rotation,
        ..Motion::default()
    }
}

/// `ObjectUpdate`s for every root avatar of the region.
pub(crate) fn snapshot(shared: &Shared, region: usize) -> Vec<opensim_messages::ObjectUpdate> {
    let Some(r) = shared.regions.get(region) else {
        return Vec::new();
    };
    let updates: Vec<FullUpdate> = r
        .sessions()
        .values()
        .filter(|s| s.root)
        .map(full_update)
        .collect();
    let width = r.scene.size().width() as f32;
    updates
        .chunks(crate::udp::OBJECTS_PER_UPDATE)
        .filter_map(|c| objects::object_update(r.prepared.handle.0, 65535, c, width).ok())
        .collect()
}

/// The circuits that have the region's scene, but `except`'s.
fn viewers_but(shared: &Shared, region: usize, except: Option<Uuid>) -> Vec<Connection> {
    shared.regions.get(region).map_or_else(Vec::new, |r| {
        r.world()
            .viewers
            .iter()
            .filter(|(a, _)| Some(**a) != except)
            .map(|(_, c)| c.clone())
            .collect()
    })
}

/// Shows `agent_id`'s avatar, which just became root in the region, to the circuits there
/// (its own gets it with the scene, or now when it already has the scene).
pub(crate) fn appear(shared: &Shared, region: usize, agent_id: Uuid) {
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let update = {
        let sessions = r.sessions();
        let Some(s) = sessions.get(&agent_id).filter(|s| s.root) else {
            return;
        };
        full_update(s)
    };
    let width = r.scene.size().width() as f32;
    let Ok(message) = objects::object_update(r.prepared.handle.0, 65535, &[update], width) else {
        return;
    };
    for c in viewers_but(shared, region, None) {
        // A full queue drops it, as OpenSim's does under load; the next scene send repairs.
        let _ = c.try_send(message.clone(), Reliability::Reliable);
    }
}

/// Removes the avatar with `local_id` from the views of the region's other circuits.
pub(crate) fn vanish(shared: &Shared, region: usize, agent_id: Uuid, local_id: u32) {
    let Ok(kill) = objects::kill_object(&[local_id]) else {
        return;
    };
    for c in viewers_but(shared, region, Some(agent_id)) {
        let _ = c.try_send(kill.clone(), Reliability::Reliable);
    }
}
