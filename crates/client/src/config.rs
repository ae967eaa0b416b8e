//! Settings of a [`Client`](crate::Client).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Which parts of the world a session keeps: each costs decoding time and memory.
///
/// With a part off its messages are still received (the simulator sends them anyway) but
/// dropped unread: a bot with [`Subsystems::NONE`] decodes neither terrain nor objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsystems {
    /// Keep a [`Scene`](opensim_regions::scene::Scene) of the current region's objects.
    pub objects: bool,
    /// Keep the current region's [`Heightmap`](opensim_regions::terrain::Heightmap).
    pub terrain: bool,
    /// Feed `ImageData`/`ImagePacket` to the UDP texture pipeline (HTTP textures work either way).
    pub textures: bool,
}

impl Subsystems {
    /// Everything on (a viewer).
    pub const ALL: Self = Subsystems {
        objects: true,
        terrain: true,
        textures: true,
    };
    /// Everything off (a bot that only chats or walks).
    pub const NONE: Self = Subsystems {
        objects: false,
        terrain: false,
        textures: false,
    };
}

impl Default for Subsystems {
    fn default() -> Self {
        Subsystems::ALL
    }
}

/// Settings shared by every session of a [`Client`](crate::Client).
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Which parts run.
    pub subsystems: Subsystems,
    /// Sees every datagram of every circuit (e.g. a pcap writer); passed to
    /// [`EndpointConfig::tap`](opensim_circuit::EndpointConfig).
    pub tap: Option<Arc<dyn opensim_circuit::Tap>>,
    /// A SOCKS5 proxy: each session opens a UDP association there and sends its circuits
    /// through the relay (e.g. Hippolyzer).
    pub socks5_proxy: Option<SocketAddr>,
    /// User name and password for [`socks5_proxy`](Self::socks5_proxy), if it asks for them.
    pub socks5_credentials: Option<(String, String)>,
    /// An HTTP proxy URL (`http://host:port`) for login, caps, event queue and textures.
    pub http_proxy: Option<String>,
    /// How often an `AgentUpdate` is sent while nothing changes (viewers: at least once a
    /// second; OpenSimulator accepts anything down to that).
    pub agent_update_interval: Duration,
    /// Deadline of the login call and of the region handshake.
    pub timeout: Duration,
    /// Small socket buffers (many sessions in one process, e.g. a bot swarm).
    pub small_buffers: bool,
    /// Session events held for a reader that is behind; beyond it the oldest are dropped
    /// (counted in [`SessionStats::events_dropped`](crate::SessionStats)).
    pub event_capacity: usize,
    /// Draw distance sent in `AgentUpdate` (OpenSimulator sends objects within it).
    pub draw_distance: f32,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("subsystems", &self.subsystems)
            .field("tap", &self.tap.as_ref().map(|_| "Tap"))
            .field("socks5_proxy", &self.socks5_proxy)
            .field(
                "socks5_credentials",
                &self.socks5_credentials.as_ref().map(|_| "***"),
            )
            .field("http_proxy", &self.http_proxy)
            .field("agent_update_interval", &self.agent_update_interval)
            .field("timeout", &self.timeout)
            .field("small_buffers", &self.small_buffers)
            .field("event_capacity", &self.event_capacity)
            .field("draw_distance", &self.draw_distance)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults: every subsystem, no proxy, `AgentUpdate` every second, 30 s deadline.
    pub fn new() -> Self {
        ClientConfig {
            subsystems: Subsystems::ALL,
            tap: None,
            socks5_proxy: None,
            socks5_credentials: None,
            http_proxy: None,
            agent_update_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            small_buffers: false,
            event_capacity: 1024,
            draw_distance: 128.0,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new()
    }
}
