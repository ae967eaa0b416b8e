//! Region statistics (`SimStats`) and the agents present (`CoarseLocationUpdate`, merged with
//! the avatars of a [`Scene`]).

use std::collections::HashMap;

use glam::Vec3;
use opensim_messages::{Blocks, CoarseLocationUpdate, coarse_location_update, sim_stats};
use uuid::Uuid;

use crate::error::{Error, PeerFault};
use crate::scene::Scene;

/// `SimStats` stat ids, in the order OpenSimulator sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum StatId {
    TimeDilation = 0,
    SimFps = 1,
    PhysicsFps = 2,
    AgentUpdates = 3,
    FrameMs = 4,
    NetMs = 5,
    OtherMs = 6,
    PhysicsMs = 7,
    AgentMs = 8,
    ImageMs = 9,
    ScriptMs = 10,
    TotalPrims = 11,
    ActivePrims = 12,
    Agents = 13,
    ChildAgents = 14,
    ActiveScripts = 15,
    LslScriptLinesPerSecond = 16,
    InPacketsPerSecond = 17,
    OutPacketsPerSecond = 18,
    PendingDownloads = 19,
    PendingUploads = 20,
    VirtualSizeKb = 21,
    ResidentSizeKb = 22,
    PendingLocalUploads = 23,
    UnackedBytes = 24,
    PhysicsPinnedTasks = 25,
    PhysicsLodTasks = 26,
    SimPhysicsStepMs = 27,
    SimPhysicsShapeMs = 28,
    SimPhysicsOtherMs = 29,
    SimPhysicsMemory = 30,
    ScriptEps = 31,
    SimSpareMs = 32,
    SimSleepMs = 33,
    SimIoPumpTime = 34,
    SimPctScriptsRun = 35,
    SimRegionIdle = 36,
    SimRegionIdlePossible = 37,
    SimAiStepTimeMs = 38,
    SimSkippedSilhouettePs = 39,
    SimSkippedCharsPerC = 40,
}

impl StatId {
    /// The 41 ids OpenSimulator sends.
    pub const ALL: [StatId; 41] = {
        use StatId::*;
        [
            TimeDilation,
            SimFps,
            PhysicsFps,
            AgentUpdates,
            FrameMs,
            NetMs,
            OtherMs,
            PhysicsMs,
            AgentMs,
            ImageMs,
            ScriptMs,
            TotalPrims,
            ActivePrims,
            Agents,
            ChildAgents,
            ActiveScripts,
            LslScriptLinesPerSecond,
            InPacketsPerSecond,
            OutPacketsPerSecond,
            PendingDownloads,
            PendingUploads,
            VirtualSizeKb,
            ResidentSizeKb,
            PendingLocalUploads,
            UnackedBytes,
            PhysicsPinnedTasks,
            PhysicsLodTasks,
            SimPhysicsStepMs,
            SimPhysicsShapeMs,
            SimPhysicsOtherMs,
            SimPhysicsMemory,
            ScriptEps,
            SimSpareMs,
            SimSleepMs,
            SimIoPumpTime,
            SimPctScriptsRun,
            SimRegionIdle,
            SimRegionIdlePossible,
            SimAiStepTimeMs,
            SimSkippedSilhouettePs,
            SimSkippedCharsPerC,
        ]
    };

    /// The id for a wire number.
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
}

/// `SimStats`, typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimStats {
    /// Grid x in 256 m units.
    pub region_x: u32,
    /// Grid y in 256 m units.
    pub region_y: u32,
    /// Region flags.
    pub region_flags: u32,
    /// Prim capacity.
    pub object_capacity: u32,
    /// Simulator process id (OpenSim: 0).
    pub pid: i32,
    /// `(stat id, value)` pairs as sent.
    pub stats: Vec<(u32, f32)>,
    /// `RegionFlagsExtended`, when sent.
    pub region_flags_extended: Option<u64>,
}

impl From<&opensim_messages::SimStats> for SimStats {
    fn from(m: &opensim_messages::SimStats) -> Self {
        SimStats {
            region_x: m.region.region_x,
            region_y: m.region.region_y,
            region_flags: m.region.region_flags,
            object_capacity: m.region.object_capacity,
            pid: m.pid_stat.pid,
            stats: m.stat.iter().map(|s| (s.stat_id, s.stat_value)).collect(),
            region_flags_extended: m.region_info.first().map(|r| r.region_flags_extended),
        }
    }
}

impl SimStats {
    /// A stat's value.
    pub fn get(&self, id: StatId) -> Option<f32> {
        self.stats
            .iter()
            .find(|&&(i, _)| i == id as u32)
            .map(|&(_, v)| v)
    }

    /// Time dilation (1.0 = real time).
    pub fn time_dilation(&self) -> Option<f32> {
        self.get(StatId::TimeDilation)
    }

    /// Simulator frames per second.
    pub fn sim_fps(&self) -> Option<f32> {
        self.get(StatId::SimFps)
    }

    /// Physics frames per second.
    pub fn physics_fps(&self) -> Option<f32> {
        self.get(StatId::PhysicsFps)
    }

    /// Root agents in the region.
    pub fn agents(&self) -> Option<f32> {
        self.get(StatId::Agents)
    }

    /// Child agents in the region.
    pub fn child_agents(&self) -> Option<f32> {
        self.get(StatId::ChildAgents)
    }

    /// Prims in the region.
    pub fn total_prims(&self) -> Option<f32> {
        self.get(StatId::TotalPrims)
    }

    /// Running scripts.
    pub fn active_scripts(&self) -> Option<f32> {
        self.get(StatId::ActiveScripts)
    }

    /// The message (at most 255 stats are sent).
    ///
    /// # Errors
    /// [`Misuse::TooManyBlocks`](crate::error::Misuse::TooManyBlocks) for more than 255 stats.
    pub fn to_message(&self) -> Result<opensim_messages::SimStats, Error> {
        if self.stats.len() > 255 {
            return Err(crate::error::Misuse::TooManyBlocks {
                count: self.stats.len(),
            }
            .into());
        }
        Ok(opensim_messages::SimStats {
            region: sim_stats::Region {
                region_x: self.region_x,
                region_y: self.region_y,
                region_flags: self.region_flags,
                object_capacity: self.object_capacity,
            },
            stat: self
                .stats
                .iter()
                .map(|&(stat_id, stat_value)| sim_stats::Stat {
                    stat_id,
                    stat_value,
                })
                .collect(),
            pid_stat: sim_stats::PidStat { pid: self.pid },
            region_info: self
                .region_flags_extended
                .map(|f| {
                    Blocks::one(sim_stats::RegionInfo {
                        region_flags_extended: f,
                    })
                })
                .unwrap_or_default(),
        })
    }
}

/// One agent of a `CoarseLocationUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoarseAgent {
    /// The agent.
    pub agent_id: Uuid,
    /// X in metres.
    pub x: u8,
    /// Y in metres.
    pub y: u8,
    /// Height / 4 (0 also when above 1020 m).
    pub z: u8,
}

impl CoarseAgent {
    /// Region-local position (z = byte * 4).
    pub fn position(&self) -> Vec3 {
        Vec3::new(
            f32::from(self.x),
            f32::from(self.y),
            f32::from(self.z) * 4.0,
        )
    }
}

/// `CoarseLocationUpdate`, typed: the minimap's list of agents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoarseLocations {
    /// The agents, in wire order.
    pub agents: Vec<CoarseAgent>,
    /// Index of the receiving agent in `agents`.
    pub you: Option<usize>,
    /// Index of the agent being tracked, if any.
    pub prey: Option<usize>,
}

impl CoarseLocations {
    /// Reads the message.
    ///
    /// # Errors
    /// [`PeerFault::CoarseLocationMismatch`] when the location and agent lists differ in
    /// length.
    pub fn from_message(m: &CoarseLocationUpdate) -> Result<Self, Error> {
        if m.location.len() != m.agent_data.len() {
            return Err(PeerFault::CoarseLocationMismatch {
                locations: m.location.len(),
                agents: m.agent_data.len(),
            }
            .into());
        }
        let n = m.location.len();
        let index = |i: i16| usize::try_from(i).ok().filter(|&i| i < n);
        Ok(CoarseLocations {
            agents: m
                .location
                .iter()
                .zip(&m.agent_data)
                .map(|(l, a)| CoarseAgent {
                    agent_id: a.agent_id,
                    x: l.x,
                    y: l.y,
                    z: l.z,
                })
                .collect(),
            you: index(m.index.you),
            prey: index(m.index.prey),
        })
    }

    /// The message a simulator sends.
    ///
    /// # Errors
    /// [`Misuse::TooManyBlocks`](crate::error::Misuse::TooManyBlocks) for more than 255
    /// agents.
    pub fn to_message(&self) -> Result<CoarseLocationUpdate, Error> {
        if self.agents.len() > 255 {
            return Err(crate::error::Misuse::TooManyBlocks {
                count: self.agents.len(),
            }
            .into());
        }
        let index = |i: Option<usize>| i.map_or(-1, |i| i as i16);
        Ok(CoarseLocationUpdate {
            location: self
                .agents
                .iter()
                .map(|a| coarse_location_update::Location {
                    x: a.x,
                    y: a.y,
                    z: a.z,
                })
                .collect(),
            index: coarse_location_update::Index {
                you: index(self.you),
                prey: index(self.prey),
            },
            agent_data: self
                .agents
                .iter()
                .map(|a| coarse_location_update::AgentData {
                    agent_id: a.agent_id,
                })
                .collect(),
        })
    }

    /// The receiving agent's id.
    pub fn you(&self) -> Option<Uuid> {
        self.you.map(|i| self.agents[i].agent_id)
    }
}

/// An agent known to be in the region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentPresence {
    /// The agent.
    pub agent_id: Uuid,
    /// Region-local position (precise from the scene, else coarse).
    pub position: Vec3,
    /// Whether the position comes from an avatar update rather than the coarse list.
    pub precise: bool,
    /// The avatar's local id, when the scene has it.
    pub local_id: Option<u32>,
}

/// The agents present in a region, from its last `CoarseLocationUpdate` and the avatars of
/// its scene.
#[derive(Debug, Clone, Default)]
pub struct AgentsPresent {
    coarse: HashMap<Uuid, Vec3>,
    you: Option<Uuid>,
}

impl AgentsPresent {
    /// Nobody yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the coarse list with a new `CoarseLocationUpdate` (each one lists every agent).
    ///
    /// # Errors
    /// As [`CoarseLocations::from_message`].
    pub fn apply(&mut self, m: &CoarseLocationUpdate) -> Result<(), Error> {
        let c = CoarseLocations::from_message(m)?;
        self.coarse.clear();
        self.coarse
            .extend(c.agents.iter().map(|a| (a.agent_id, a.position())));
        self.you = c.you();
        Ok(())
    }

    /// Agents in the coarse list.
    pub fn len(&self) -> usize {
        self.coarse.len()
    }

    /// Whether the coarse list is empty.
    pub fn is_empty(&self) -> bool {
        self.coarse.is_empty()
    }

    /// The receiving agent, as the simulator marked it.
    pub fn you(&self) -> Option<Uuid> {
        self.you
    }

    /// The coarse position of an agent.
    pub fn coarse_position(&self, agent: &Uuid) -> Option<Vec3> {
        self.coarse.get(agent).copied()
    }

    /// Everyone in the coarse list or among the scene's avatars, with the best position known
    /// (avatar positions composed through what they sit on).
    pub fn merged(&self, scene: &Scene) -> Vec<AgentPresence> {
        let mut out: Vec<AgentPresence> = self
            .coarse
            .iter()
            .map(|(&agent_id, &position)| AgentPresence {
                agent_id,
                position,
                precise: false,
                local_id: None,
            })
            .collect();
        for av in scene.avatars() {
            let precise = scene.region_transform(av.local_id).map(|(p, _)| p);
            match out.iter_mut().find(|a| a.agent_id == av.full_id) {
                Some(a) => {
                    a.local_id = Some(av.local_id);
                    if let Some(p) = precise {
                        a.position = p;
                        a.precise = true;
                    }
                }
                None => out.push(AgentPresence {
                    agent_id: av.full_id,
                    position: precise.unwrap_or(av.motion.position),
                    precise: precise.is_some(),
                    local_id: Some(av.local_id),
                }),
            }
        }
        out
    }
}
