//! A viewer-side session for OpenSimulator grids: one entry point that composes login,
//! circuits, capabilities, the event queue, region state and textures.
//!
//! [`Client::login`] logs in over XML-RPC, opens the circuit to the login region
//! (`UseCircuitCode`, `CompleteAgentMovement`) and starts the session's tasks; the returned
//! [`Session`] then answers `RegionHandshake`, sends `AgentThrottle` and `AgentUpdate` (every
//! [`ClientConfig::agent_update_interval`]), fetches the seed capability and polls the event
//! queue, keeps the region's objects ([`Session::with_scene`]) and terrain
//! ([`Session::with_terrain`]) current for the [`Subsystems`] that are on, opens child
//! circuits to neighbours (`EnableSimulator`) and follows teleports and region crossings.
//! What happens is reported as [`SessionEvent`]s; the circuit layer answers pings and resends.
//!
//! ```no_run
//! use opensim_client::{ChatKind, Client, ClientConfig, SessionEvent, Subsystems};
//! use opensim_login::{LoginParams, Password};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let mut config = ClientConfig::new();
//!     config.subsystems = Subsystems { textures: false, ..Subsystems::ALL };
//!     let client = Client::new(config)?;
//!     let params = LoginParams::builder(
//!         "http://127.0.0.1:9000/", "Test", "User", Password::new("password"),
//!     )
//!     .build()?;
//!     let session = client.login(&params).await?;
//!     let region = session.wait_region_ready().await?;
//!     println!("in {} ({} x {} m)", region.name, region.size.0, region.size.1);
//!     session.say("hello", 0, ChatKind::Normal).await?;
//!     while let Some(event) = session.next_event().await {
//!         match event {
//!             SessionEvent::Chat { from_name, text, .. } => println!("{from_name}: {text}"),
//!             SessionEvent::TerrainPatch { .. } => {
//!                 let (have, total) = session.terrain_progress();
//!                 if have == total {
//!                     break;
//!                 }
//!             }
//!             _ => {}
//!         }
//!     }
//!     let objects = session.with_scene(|scene| scene.len()).unwrap_or(0);
//!     println!("{objects} objects, {:?}", session.stats());
//!     session.logout().await?;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
//!
//! Cost: a session is one UDP socket plus three tasks (receive loop, event-queue poll,
//! `AgentUpdate` timer) and one more receive loop per neighbour. With [`Subsystems::NONE`]
//! object and terrain messages are dropped undecoded; `examples/memory.rs` measures the
//! memory of many such sessions against the loopback simulator.
//!
//! Events are kept in a bounded queue ([`ClientConfig::event_capacity`]); when the reader
//! falls behind, the oldest are dropped rather than stalling the circuits
//! ([`SessionStats::events_dropped`] counts them). Dropping the last [`Session`] clone stops
//! its tasks; [`Session::logout`] also tells the simulator.

#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod session;
mod types;

pub use client::Client;
pub use config::{ClientConfig, Subsystems};
pub use error::{ClientError, TextureError};
pub use session::Session;
pub use types::{
    ChatKind, DisconnectReason, RegionSummary, SessionEvent, SessionStats, Texture, TextureVia,
};

pub use glam::Vec3;
pub use opensim_login::{LoginParams, Password};
