//! Avatars as objects: what viewers in a region see of its root agents.
//!
//! As in OpenSimulator, a root agent is an object of pcode 47 in its region: every circuit
//! that has the scene gets its full `ObjectUpdate` when the agent arrives (or, for a circuit
//! that arrives later, with the scene), an avatar `ImprovedTerseObjectUpdate` (with its
//! collision plane) while it moves, and `KillObject` when it leaves.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use glam::Vec3;
use opensim_circuit::{Connection, Reliability};
use opensim_regions::objects::{
    self, DEFAULT_COLLISION_PLANE, FullUpdate, Motion, TerseUpdate, pcode,
};
use uuid::Uuid;

use crate::state::{Session, Shared, World};

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

/// `ObjectUpdate`s of the region's root avatars for `viewer`, which has just been registered:
/// its own avatar and others up to [`SimConfig::max_avatars_in_view`](crate::SimConfig),
/// recorded as shown to it.
pub(crate) fn snapshot(
    shared: &Shared,
    region: usize,
    viewer: Uuid,
) -> Vec<opensim_messages::ObjectUpdate> {
    let Some(r) = shared.regions.get(region) else {
        return Vec::new();
    };
    let mut updates: Vec<FullUpdate> = r
        .sessions()
        .values()
        .filter(|s| s.root)
        .map(full_update)
        .collect();
    // Its own first, so that the limit never hides it.
    updates.sort_by_key(|u| u.full_id != viewer);
    let limit = shared.config.max_avatars_in_view;
    {
        let mut world = r.world();
        let shown = world.shown.entry(viewer).or_default();
        let mut others = 0;
        updates.retain(|u| {
            let own = u.full_id == viewer;
            let keep = own || others < limit;
            others += usize::from(keep && !own);
            if keep {
                shown.insert(u.local_id);
            }
            keep
        });
    }
    let width = r.scene.size().width() as f32;
    updates
        .chunks(crate::udp::OBJECTS_PER_UPDATE)
        .filter_map(|c| objects::object_update(r.prepared.handle.0, 65535, c, width).ok())
        .collect()
}

/// Whether `viewer`, having been shown `shown`, may see one more avatar besides its own.
fn has_room(shown: &HashSet<u32>, own: Option<u32>, limit: usize) -> bool {
    let others = shown.len() - usize::from(own.is_some_and(|id| shown.contains(&id)));
    others < limit
}

/// Shows `agent_id`'s avatar, which just became root in the region, to the circuits there
/// that have room for it (its own gets it with the scene, or now when it already has it).
pub(crate) fn appear(shared: &Shared, region: usize, agent_id: Uuid) {
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let (update, own_ids) = {
        let sessions = r.sessions();
        let Some(s) = sessions.get(&agent_id).filter(|s| s.root) else {
            return;
        };
        let own_ids: HashMap<Uuid, u32> = sessions
            .values()
            .map(|s| (s.agent_id, s.avatar_local_id))
            .collect();
        (full_update(s), own_ids)
    };
    let width = r.scene.size().width() as f32;
    let Ok(message) = objects::object_update(r.prepared.handle.0, 65535, &[update], width) else {
        return;
    };
    let limit = shared.config.max_avatars_in_view;
    let local_id = message.object_data[0].id;
    let targets: Vec<Connection> = {
        let mut world = r.world();
        let World { viewers, shown, .. } = &mut *world;
        viewers
            .iter()
            .filter_map(|(viewer, c)| {
                let set = shown.entry(*viewer).or_default();
                let own = own_ids.get(viewer).copied();
                let room = *viewer == agent_id || has_room(set, own, limit);
                (room && set.insert(local_id)).then(|| c.clone())
            })
            .collect()
    };
    for c in targets {
        // A full queue drops it, as OpenSim's does under load.
        let _ = c.try_send(message.clone(), Reliability::Reliable);
    }
}

/// Removes the avatar with `local_id` from the views of the region's circuits that were
/// shown it.
pub(crate) fn vanish(shared: &Shared, region: usize, agent_id: Uuid, local_id: u32) {
    let Ok(kill) = objects::kill_object(&[local_id]) else {
        return;
    };
    let Some(r) = shared.regions.get(region) else {
        return;
    };
    let targets: Vec<Connection> = {
        let mut world = r.world();
        let World { viewers, shown, .. } = &mut *world;
        viewers
            .iter()
            .filter(|(viewer, _)| {
                **viewer != agent_id && shown.get_mut(*viewer).is_some_and(|s| s.remove(&local_id))
            })
            .map(|(_, c)| c.clone())
            .collect()
    };
    for c in targets {
        let _ = c.try_send(kill.clone(), Reliability::Reliable);
    }
}
