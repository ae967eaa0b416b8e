//! The regions an agent is connected to, and moving between them (sans-IO).
//!
//! A [`RegionSet`] starts with the login region as the agent's *main* region. It is fed the
//! events that change the set, each as a typed struct the client fills from a UDP message
//! (`From` impls below) or from the event queue's LLSD:
//!
//! * [`EnableSimulator`] adds a neighbour (a *child* region),
//!   [`EstablishAgentCommunication`] gives it its seed capability,
//! * [`CrossedRegion`] makes a neighbour the main region (the agent walked or flew over),
//! * the teleport messages ([`TeleportStart`], [`TeleportProgress`], [`TeleportFinish`],
//!   [`TeleportFailed`], [`TeleportLocal`]) drive the [`TeleportState`] machine and move the
//!   main region,
//! * `DisableSimulator` on a circuit ([`RegionSet::disable_simulator`]) closes that region.
//!
//! Every call returns the [`Action`]s the client must perform: open or close a circuit, send
//! `CompleteAgentMovement`, switch the main region, fetch a seed capability. Each region also
//! carries caller data `T` (typically a [`Scene`](crate::scene::Scene) and a
//! [`Heightmap`](crate::terrain::Heightmap)), made when the region is added and dropped when it
//! is closed. [`AgentSession`] builds the messages those actions need.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use opensim_regions::handshake::RegionHandle;
//! use opensim_regions::neighbours::{Action, EnableSimulator, RegionSet};
//! use opensim_regions::terrain::RegionSize;
//!
//! let home = RegionHandle::from_grid(1000, 1000);
//! let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000);
//! let mut regions: RegionSet<Vec<u32>> = RegionSet::new(home, addr, RegionSize::LEGACY, None);
//! let east = RegionHandle::from_grid(1001, 1000);
//! let east_addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9001);
//! let actions = regions.enable_simulator(&EnableSimulator {
//!     handle: east,
//!     addr: east_addr,
//!     size: RegionSize::LEGACY,
//! });
//! assert_eq!(actions, [Action::OpenCircuit { handle: east, addr: east_addr }]);
//! assert_eq!(regions.len(), 2);
//! assert_eq!(regions.main().handle, home);
//! ```

use std::net::SocketAddrV4;

use glam::{DVec2, Vec3};
use opensim_messages::{
    CompleteAgentMovement, TeleportCancel, TeleportLocationRequest, UseCircuitCode,
    complete_agent_movement, teleport_cancel, teleport_location_request, use_circuit_code,
};
use uuid::Uuid;

use crate::error::{Error, Misuse};
use crate::handshake::RegionHandle;
use crate::terrain::RegionSize;

/// A neighbour to connect to (`EnableSimulator`, UDP or event queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnableSimulator {
    /// The region.
    pub handle: RegionHandle,
    /// Its UDP endpoint.
    pub addr: SocketAddrV4,
    /// Its size (the UDP form has none: 256 m).
    pub size: RegionSize,
}

impl From<&opensim_messages::EnableSimulator> for EnableSimulator {
    fn from(m: &opensim_messages::EnableSimulator) -> Self {
        let s = &m.simulator_info;
        EnableSimulator {
            handle: RegionHandle(s.handle),
            addr: SocketAddrV4::new(s.ip, s.port),
            size: RegionSize::LEGACY,
        }
    }
}

/// A region's seed capability (`EstablishAgentCommunication`, event queue only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishAgentCommunication {
    /// The region's UDP endpoint (`sim-ip-and-port`).
    pub addr: SocketAddrV4,
    /// The seed capability URL.
    pub seed_capability: String,
}

/// The agent crossed into a neighbour (`CrossedRegion`, event queue or UDP).
#[derive(Debug, Clone, PartialEq)]
pub struct CrossedRegion {
    /// The new region.
    pub handle: RegionHandle,
    /// Its UDP endpoint.
    pub addr: SocketAddrV4,
    /// Its seed capability.
    pub seed_capability: String,
    /// Its size (UDP form: 256 m).
    pub size: RegionSize,
    /// Region-local position in the new region.
    pub position: Vec3,
    /// `LookAt` (OpenSim puts the horizontal velocity here).
    pub look_at: Vec3,
}

impl From<&opensim_messages::CrossedRegion> for CrossedRegion {
    fn from(m: &opensim_messages::CrossedRegion) -> Self {
        let r = &m.region_data;
        CrossedRegion {
            handle: RegionHandle(r.region_handle),
            addr: SocketAddrV4::new(r.sim_ip, r.sim_port),
            seed_capability: opensim_messages::codec::text(&r.seed_capability).into_owned(),
            size: RegionSize::LEGACY,
            position: m.info.position,
            look_at: m.info.look_at,
        }
    }
}

/// An inter-region teleport reached the destination (`TeleportFinish`, event queue or UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeleportFinish {
    /// The destination.
    pub handle: RegionHandle,
    /// Its UDP endpoint.
    pub addr: SocketAddrV4,
    /// Its seed capability.
    pub seed_capability: String,
    /// Its size (UDP form: 256 m).
    pub size: RegionSize,
    /// Maturity of the destination.
    pub sim_access: u8,
    /// Teleport flags.
    pub teleport_flags: u32,
    /// `LocationID` (OpenSim: 4).
    pub location_id: u32,
}

impl From<&opensim_messages::TeleportFinish> for TeleportFinish {
    fn from(m: &opensim_messages::TeleportFinish) -> Self {
        let i = &m.info;
        TeleportFinish {
            handle: RegionHandle(i.region_handle),
            addr: SocketAddrV4::new(i.sim_ip, i.sim_port),
            seed_capability: opensim_messages::codec::text(&i.seed_capability).into_owned(),
            size: RegionSize::LEGACY,
            sim_access: i.sim_access,
            teleport_flags: i.teleport_flags,
            location_id: i.location_id,
        }
    }
}

/// The simulator accepted a teleport (`TeleportStart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeleportStart {
    /// Teleport flags (bit 11: cancel disabled).
    pub teleport_flags: u32,
}

impl From<&opensim_messages::TeleportStart> for TeleportStart {
    fn from(m: &opensim_messages::TeleportStart) -> Self {
        TeleportStart {
            teleport_flags: m.info.teleport_flags,
        }
    }
}

/// Teleport status text (`TeleportProgress`; OpenSim never sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeleportProgress {
    /// Teleport flags.
    pub teleport_flags: u32,
    /// Status text.
    pub message: String,
}

impl From<&opensim_messages::TeleportProgress> for TeleportProgress {
    fn from(m: &opensim_messages::TeleportProgress) -> Self {
        TeleportProgress {
            teleport_flags: m.info.teleport_flags,
            message: opensim_messages::codec::text(&m.info.message).into_owned(),
        }
    }
}

/// The teleport failed (`TeleportFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeleportFailed {
    /// Why.
    pub reason: String,
}

impl From<&opensim_messages::TeleportFailed> for TeleportFailed {
    fn from(m: &opensim_messages::TeleportFailed) -> Self {
        TeleportFailed {
            reason: opensim_messages::codec::text(&m.info.reason).into_owned(),
        }
    }
}

/// A teleport within the main region (`TeleportLocal`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TeleportLocal {
    /// New region-local position.
    pub position: Vec3,
    /// Look-at direction.
    pub look_at: Vec3,
    /// Teleport flags.
    pub teleport_flags: u32,
}

impl From<&opensim_messages::TeleportLocal> for TeleportLocal {
    fn from(m: &opensim_messages::TeleportLocal) -> Self {
        TeleportLocal {
            position: m.info.position,
            look_at: m.info.look_at,
            teleport_flags: m.info.teleport_flags,
        }
    }
}

/// The most regions a set holds; further neighbours are ignored.
pub const MAX_REGIONS: usize = 64;

/// Teleport flag: the cancel button must be hidden.
pub const TELEPORT_FLAG_DISABLE_CANCEL: u32 = 1 << 11;
/// Teleport flag: via a location request.
pub const TELEPORT_FLAG_VIA_LOCATION: u32 = 1 << 4;

/// Where a teleport stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TeleportState {
    /// No teleport under way.
    #[default]
    Idle,
    /// The client asked; the simulator has not answered yet.
    Requested {
        /// The requested destination.
        target: RegionHandle,
    },
    /// The simulator accepted (`TeleportStart`, maybe `TeleportProgress`).
    Started {
        /// Teleport flags.
        flags: u32,
        /// The last progress text.
        message: Option<String>,
    },
    /// `TeleportFinish` arrived; waiting for `AgentMovementComplete` from the destination.
    Arriving {
        /// The destination.
        handle: RegionHandle,
    },
}

impl TeleportState {
    /// Whether a teleport is under way.
    pub fn in_progress(&self) -> bool {
        !matches!(self, TeleportState::Idle)
    }

    /// Whether the user may still cancel it.
    pub fn can_cancel(&self) -> bool {
        match self {
            TeleportState::Requested { .. } => true,
            TeleportState::Started { flags, .. } => flags & TELEPORT_FLAG_DISABLE_CANCEL == 0,
            _ => false,
        }
    }
}

/// Something the client must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Create a circuit to `addr` (if there is none) and send `UseCircuitCode` on it
    /// ([`AgentSession::use_circuit_code`]).
    OpenCircuit {
        /// The region.
        handle: RegionHandle,
        /// Its UDP endpoint.
        addr: SocketAddrV4,
    },
    /// Send `CompleteAgentMovement` on that circuit
    /// ([`AgentSession::complete_agent_movement`]): the agent becomes root there.
    CompleteAgentMovement {
        /// The region.
        handle: RegionHandle,
        /// Its UDP endpoint.
        addr: SocketAddrV4,
    },
    /// The agent's main region is now this one (route agent messages to it).
    MakeMain {
        /// The region.
        handle: RegionHandle,
        /// Its UDP endpoint.
        addr: SocketAddrV4,
    },
    /// POST the region's seed capability and start its event-queue poll.
    FetchSeed {
        /// The region.
        handle: RegionHandle,
        /// The seed URL.
        url: String,
    },
    /// Close the circuit and event queue of a region and drop its state.
    CloseCircuit {
        /// The region.
        handle: RegionHandle,
        /// Its UDP endpoint.
        addr: SocketAddrV4,
    },
    /// A teleport ended in `handle` (local: same region, `position` known).
    TeleportFinished {
        /// The region the agent is in now.
        handle: RegionHandle,
        /// New position, when known (`TeleportLocal`, `AgentMovementComplete`).
        position: Option<Vec3>,
    },
    /// A teleport failed; the agent stays where it was.
    TeleportFailed {
        /// The simulator's reason.
        reason: String,
    },
    /// The main region closed the agent's circuit with no move under way: the session is over.
    SessionEnded,
}

/// One connected region.
#[derive(Debug, Clone, PartialEq)]
pub struct Region<T> {
    /// Its handle.
    pub handle: RegionHandle,
    /// Its UDP endpoint.
    pub addr: SocketAddrV4,
    /// Its size.
    pub size: RegionSize,
    /// Its seed capability, once known.
    pub seed_capability: Option<String>,
    /// Caller data (scene, terrain, ...).
    pub data: T,
}

impl<T> Region<T> {
    /// Whether a global position lies in this region.
    pub fn contains(&self, global: DVec2) -> bool {
        self.handle.contains(self.size, global)
    }
}

/// A circuit-opening description handed to the data factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionDesc {
    /// The region.
    pub handle: RegionHandle,
    /// Its UDP endpoint.
    pub addr: SocketAddrV4,
    /// Its size.
    pub size: RegionSize,
}

type Factory<T> = Box<dyn FnMut(&RegionDesc) -> T + Send>;

/// The regions an agent is connected to: the main one and its children.
pub struct RegionSet<T = ()> {
    regions: Vec<Region<T>>,
    main: usize,
    teleport: TeleportState,
    /// The main region's circuit was closed while a teleport was under way.
    main_closed: bool,
    pending_seeds: Vec<(SocketAddrV4, String)>,
    make: Factory<T>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for RegionSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionSet")
            .field("regions", &self.regions)
            .field("main", &self.main)
            .field("teleport", &self.teleport)
            .finish_non_exhaustive()
    }
}

impl<T: Default> RegionSet<T> {
    /// The set after login: the login region is main; region data starts as `T::default()`.
    pub fn new(
        handle: RegionHandle,
        addr: SocketAddrV4,
        size: RegionSize,
        seed_capability: Option<String>,
    ) -> Self {
        Self::with_data(handle, addr, size, seed_capability, |_| T::default())
    }
}

impl<T> RegionSet<T> {
    /// The set after login, making each region's data with `make`.
    pub fn with_data(
        handle: RegionHandle,
        addr: SocketAddrV4,
        size: RegionSize,
        seed_capability: Option<String>,
        make: impl FnMut(&RegionDesc) -> T + Send + 'static,
    ) -> Self {
        let mut make: Factory<T> = Box::new(make);
        let data = make(&RegionDesc { handle, addr, size });
        RegionSet {
            regions: vec![Region {
                handle,
                addr,
                size,
                seed_capability,
                data,
            }],
            main: 0,
            teleport: TeleportState::Idle,
            main_closed: false,
            pending_seeds: Vec::new(),
            make,
        }
    }

    /// The main region.
    pub fn main(&self) -> &Region<T> {
        &self.regions[self.main]
    }

    /// The main region, mutably.
    pub fn main_mut(&mut self) -> &mut Region<T> {
        &mut self.regions[self.main]
    }

    /// Whether `handle` is the main region.
    pub fn is_main(&self, handle: RegionHandle) -> bool {
        self.main().handle == handle
    }

    /// Number of regions (main and children).
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Always false: the main region is always there.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Every region, the main one included.
    pub fn iter(&self) -> impl Iterator<Item = &Region<T>> {
        self.regions.iter()
    }

    /// Every region, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Region<T>> {
        self.regions.iter_mut()
    }

    /// The region with this handle.
    pub fn get(&self, handle: RegionHandle) -> Option<&Region<T>> {
        self.regions.iter().find(|r| r.handle == handle)
    }

    /// The region with this handle, mutably.
    pub fn get_mut(&mut self, handle: RegionHandle) -> Option<&mut Region<T>> {
        self.regions.iter_mut().find(|r| r.handle == handle)
    }

    /// The region whose circuit is `addr` (to route an incoming datagram).
    pub fn by_addr(&self, addr: SocketAddrV4) -> Option<&Region<T>> {
        self.regions.iter().find(|r| r.addr == addr)
    }

    /// The region whose circuit is `addr`, mutably.
    pub fn by_addr_mut(&mut self, addr: SocketAddrV4) -> Option<&mut Region<T>> {
        self.regions.iter_mut().find(|r| r.addr == addr)
    }

    /// The region containing a global position.
    pub fn at(&self, global: DVec2) -> Option<&Region<T>> {
        self.regions.iter().find(|r| r.contains(global))
    }

    /// The teleport state.
    pub fn teleport(&self) -> &TeleportState {
        &self.teleport
    }

    fn index(&self, handle: RegionHandle) -> Option<usize> {
        self.regions.iter().position(|r| r.handle == handle)
    }

    fn take_pending_seed(&mut self, addr: SocketAddrV4) -> Option<String> {
        let i = self.pending_seeds.iter().position(|(a, _)| *a == addr)?;
        Some(self.pending_seeds.swap_remove(i).1)
    }

    fn remove_at(&mut self, i: usize) {
        self.regions.remove(i);
        if self.main > i {
            self.main -= 1;
        }
    }

    /// Adds (or replaces) a region and returns its index; `None` when the endpoint belongs to
    /// the main region under another handle, or the set is full (a confused or hostile peer:
    /// ignored).
    fn ensure(
        &mut self,
        handle: RegionHandle,
        addr: SocketAddrV4,
        size: RegionSize,
        actions: &mut Vec<Action>,
    ) -> Option<usize> {
        // One circuit per endpoint: another region there is gone.
        if let Some(j) = self
            .regions
            .iter()
            .position(|r| r.addr == addr && r.handle != handle)
        {
            if j == self.main {
                return None;
            }
            let old = self.regions[j].handle;
            actions.push(Action::CloseCircuit { handle: old, addr });
            self.remove_at(j);
        }
        if let Some(i) = self.index(handle) {
            if self.regions[i].addr == addr {
                self.regions[i].size = size;
                return Some(i);
            }
            if i == self.main {
                // The main region cannot move under the agent; only a teleport or crossing
                // (to another handle) changes it.
                return None;
            }
            // The region moved to another endpoint: the old circuit is dead.
            let old = self.regions[i].addr;
            actions.push(Action::CloseCircuit { handle, addr: old });
            let data = (self.make)(&RegionDesc { handle, addr, size });
            let r = &mut self.regions[i];
            r.addr = addr;
            r.size = size;
            r.seed_capability = None;
            r.data = data;
            actions.push(Action::OpenCircuit { handle, addr });
            return Some(i);
        }
        if self.regions.len() >= MAX_REGIONS {
            // Far more than any view distance needs: a peer flooding us with neighbours.
            return None;
        }
        let data = (self.make)(&RegionDesc { handle, addr, size });
        self.regions.push(Region {
            handle,
            addr,
            size,
            seed_capability: None,
            data,
        });
        actions.push(Action::OpenCircuit { handle, addr });
        Some(self.regions.len() - 1)
    }

    fn set_seed(&mut self, i: usize, url: String, actions: &mut Vec<Action>) {
        let r = &mut self.regions[i];
        if url.is_empty() || r.seed_capability.as_deref() == Some(url.as_str()) {
            return;
        }
        r.seed_capability = Some(url.clone());
        actions.push(Action::FetchSeed {
            handle: r.handle,
            url,
        });
    }

    /// A neighbour appeared: open a child circuit to it (nothing if it is known already at the
    /// same address, or is the main region).
    pub fn enable_simulator(&mut self, ev: &EnableSimulator) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.is_main(ev.handle) && self.main().addr == ev.addr {
            return actions;
        }
        let Some(i) = self.ensure(ev.handle, ev.addr, ev.size, &mut actions) else {
            return actions;
        };
        if let Some(seed) = self.take_pending_seed(ev.addr) {
            self.set_seed(i, seed, &mut actions);
        }
        actions
    }

    /// A region's seed capability arrived: fetch it (kept for later if the region is unknown).
    pub fn establish_agent_communication(
        &mut self,
        ev: &EstablishAgentCommunication,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.regions.iter().position(|r| r.addr == ev.addr) {
            Some(i) => self.set_seed(i, ev.seed_capability.clone(), &mut actions),
            None => {
                self.pending_seeds.retain(|(a, _)| *a != ev.addr);
                // A hostile queue cannot grow this without bound: one entry per endpoint, few kept.
                if self.pending_seeds.len() >= 64 {
                    self.pending_seeds.remove(0);
                }
                self.pending_seeds
                    .push((ev.addr, ev.seed_capability.clone()));
            }
        }
        actions
    }

    /// Makes region `i` main and records the actions for it; returns its index afterwards (a
    /// closed old main region is dropped, which may shift it).
    fn switch_main(&mut self, mut i: usize, actions: &mut Vec<Action>) -> usize {
        if self.main_closed && self.main != i {
            let old = self.main;
            self.remove_at(old);
            if i > old {
                i -= 1;
            }
        }
        self.main_closed = false;
        self.main = i;
        let r = &self.regions[i];
        actions.push(Action::MakeMain {
            handle: r.handle,
            addr: r.addr,
        });
        i
    }

    /// The agent crossed into a neighbour: it becomes main (`CompleteAgentMovement` on its
    /// existing child circuit); the old main region stays as a child until the simulator
    /// disables it.
    pub fn crossed_region(&mut self, ev: &CrossedRegion) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(i) = self.ensure(ev.handle, ev.addr, ev.size, &mut actions) else {
            return actions;
        };
        actions.push(Action::CompleteAgentMovement {
            handle: ev.handle,
            addr: ev.addr,
        });
        let i = self.switch_main(i, &mut actions);
        self.set_seed(i, ev.seed_capability.clone(), &mut actions);
        actions
    }

    /// Builds `TeleportLocationRequest` and enters [`TeleportState::Requested`].
    ///
    /// # Errors
    /// [`Misuse::TeleportInProgress`] while another teleport is under way.
    pub fn request_teleport(
        &mut self,
        session: &AgentSession,
        target: RegionHandle,
        position: Vec3,
        look_at: Vec3,
    ) -> Result<TeleportLocationRequest, Error> {
        if self.teleport.in_progress() {
            return Err(Misuse::TeleportInProgress.into());
        }
        self.teleport = TeleportState::Requested { target };
        Ok(session.teleport_location_request(target, position, look_at))
    }

    /// Cancels the teleport under way (if it can still be cancelled) and returns the message to
    /// send.
    pub fn cancel_teleport(&mut self, session: &AgentSession) -> Option<TeleportCancel> {
        if !self.teleport.can_cancel() {
            return None;
        }
        self.teleport = TeleportState::Idle;
        Some(session.teleport_cancel())
    }

    /// `TeleportStart`.
    pub fn teleport_start(&mut self, ev: &TeleportStart) -> Vec<Action> {
        self.teleport = TeleportState::Started {
            flags: ev.teleport_flags,
            message: None,
        };
        Vec::new()
    }

    /// `TeleportProgress`.
    pub fn teleport_progress(&mut self, ev: &TeleportProgress) -> Vec<Action> {
        self.teleport = TeleportState::Started {
            flags: ev.teleport_flags,
            message: Some(ev.message.clone()),
        };
        Vec::new()
    }

    /// `TeleportFailed`: back to idle, the agent stays.
    pub fn teleport_failed(&mut self, ev: &TeleportFailed) -> Vec<Action> {
        self.teleport = TeleportState::Idle;
        let mut actions = vec![Action::TeleportFailed {
            reason: ev.reason.clone(),
        }];
        if self.main_closed {
            actions.push(Action::SessionEnded);
        }
        actions
    }

    /// `TeleportLocal`: the agent moved within the main region.
    pub fn teleport_local(&mut self, ev: &TeleportLocal) -> Vec<Action> {
        self.teleport = TeleportState::Idle;
        vec![Action::TeleportFinished {
            handle: self.main().handle,
            position: Some(ev.position),
        }]
    }

    /// `TeleportFinish`: connect to the destination (`UseCircuitCode` even when a child circuit
    /// exists, then `CompleteAgentMovement`), make it main and fetch its seed. The old main
    /// region stays as a child until the simulator disables it.
    pub fn teleport_finish(&mut self, ev: &TeleportFinish) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(i) = self.ensure(ev.handle, ev.addr, ev.size, &mut actions) else {
            return actions;
        };
        if !actions
            .iter()
            .any(|a| matches!(a, Action::OpenCircuit { .. }))
        {
            actions.push(Action::OpenCircuit {
                handle: ev.handle,
                addr: ev.addr,
            });
        }
        actions.push(Action::CompleteAgentMovement {
            handle: ev.handle,
            addr: ev.addr,
        });
        let i = self.switch_main(i, &mut actions);
        self.set_seed(i, ev.seed_capability.clone(), &mut actions);
        self.teleport = TeleportState::Arriving { handle: ev.handle };
        actions
    }

    /// `AgentMovementComplete` from the region at `addr`: ends a teleport arriving there.
    pub fn agent_movement_complete(&mut self, addr: SocketAddrV4, position: Vec3) -> Vec<Action> {
        match self.teleport {
            TeleportState::Arriving { handle }
                if self.get(handle).is_some_and(|r| r.addr == addr) =>
            {
                self.teleport = TeleportState::Idle;
                vec![Action::TeleportFinished {
                    handle,
                    position: Some(position),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// `DisableSimulator` on the circuit to `addr`: that region is closed. For the main region
    /// with no teleport under way, the session is over.
    pub fn disable_simulator(&mut self, addr: SocketAddrV4) -> Vec<Action> {
        let Some(i) = self.regions.iter().position(|r| r.addr == addr) else {
            return Vec::new();
        };
        let handle = self.regions[i].handle;
        let mut actions = vec![Action::CloseCircuit { handle, addr }];
        if i == self.main {
            if self.teleport.in_progress() {
                // Dropped once the teleport moves the agent elsewhere.
                self.main_closed = true;
            } else {
                actions.push(Action::SessionEnded);
            }
            // Keep the main entry: the set is never empty.
            return actions;
        }
        self.remove_at(i);
        actions
    }

    /// Dispatches a UDP message received on the circuit to `addr`: `EnableSimulator`,
    /// `DisableSimulator`, `CrossedRegion`, `TeleportStart`, `TeleportProgress`,
    /// `TeleportFinish`, `TeleportFailed`, `TeleportLocal` and `AgentMovementComplete`. Other
    /// messages give no action.
    pub fn handle_message(
        &mut self,
        addr: SocketAddrV4,
        msg: &opensim_messages::Message,
    ) -> Vec<Action> {
        use opensim_messages::Message as M;
        match msg {
            M::EnableSimulator(m) => self.enable_simulator(&m.into()),
            M::DisableSimulator(_) => self.disable_simulator(addr),
            M::CrossedRegion(m) => self.crossed_region(&m.into()),
            M::TeleportStart(m) => self.teleport_start(&m.into()),
            M::TeleportProgress(m) => self.teleport_progress(&m.into()),
            M::TeleportFinish(m) => self.teleport_finish(&m.into()),
            M::TeleportFailed(m) => self.teleport_failed(&m.into()),
            M::TeleportLocal(m) => self.teleport_local(&m.into()),
            M::AgentMovementComplete(m) => self.agent_movement_complete(addr, m.data.position),
            _ => Vec::new(),
        }
    }
}

/// The agent's identity on every circuit, and the messages the [`Action`]s call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSession {
    /// Agent id.
    pub agent_id: Uuid,
    /// Session id.
    pub session_id: Uuid,
    /// The login's circuit code (the same for every region).
    pub circuit_code: u32,
}

impl AgentSession {
    /// `UseCircuitCode` for [`Action::OpenCircuit`].
    pub fn use_circuit_code(&self) -> UseCircuitCode {
        UseCircuitCode {
            circuit_code: use_circuit_code::CircuitCode {
                code: self.circuit_code,
                session_id: self.session_id,
                id: self.agent_id,
            },
        }
    }

    /// `CompleteAgentMovement` for [`Action::CompleteAgentMovement`].
    pub fn complete_agent_movement(&self) -> CompleteAgentMovement {
        CompleteAgentMovement {
            agent_data: complete_agent_movement::AgentData {
                agent_id: self.agent_id,
                session_id: self.session_id,
                circuit_code: self.circuit_code,
            },
        }
    }

    /// `TeleportLocationRequest` to a region-local position of `target`.
    pub fn teleport_location_request(
        &self,
        target: RegionHandle,
        position: Vec3,
        look_at: Vec3,
    ) -> TeleportLocationRequest {
        TeleportLocationRequest {
            agent_data: teleport_location_request::AgentData {
                agent_id: self.agent_id,
                session_id: self.session_id,
            },
            info: teleport_location_request::Info {
                region_handle: target.0,
                position,
                look_at,
            },
        }
    }

    /// `TeleportCancel`.
    pub fn teleport_cancel(&self) -> TeleportCancel {
        TeleportCancel {
            info: teleport_cancel::Info {
                agent_id: self.agent_id,
                session_id: self.session_id,
            },
        }
    }
}
