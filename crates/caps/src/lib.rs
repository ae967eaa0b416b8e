//! Capabilities ("caps") of OpenSimulator and Second Life regions: the per-agent secret HTTP
//! URLs a viewer uses next to the UDP circuit.
//!
//! - [`CapsClient::request_capabilities`] POSTs the wanted names (e.g. [`DEFAULT_CAPS`]) to a
//!   region's seed capability and returns the granted [`Capabilities`] (typed accessors such
//!   as [`Capabilities::event_queue_get`], [`Capabilities::get_texture`]).
//! - [`EventQueue`] long-polls a region's `EventQueueGet` cap and yields typed [`Event`]s
//!   (`EnableSimulator`, `TeleportFinish`, `ParcelProperties` ...; raw LLSD for the rest),
//!   treating OpenSimulator's idle 502 as normal, ending on 404, backing off on errors.
//! - [`HttpLimits`] bounds concurrent requests per [`HttpCategory`] (textures 8, mesh 8,
//!   inventory 4 by default), shared by every clone of the client and by other crates that
//!   fetch through caps ([`CapsClient::post_llsd`], [`CapsClient::get_llsd`] take permits).
//!
//! The client runs on `isahc` (curl) and works from any async executor; `smol::block_on`
//! does for a synchronous caller. Every failure is a typed [`CapsError`]; answers are size
//! capped, LLSD parsing is bounded, and only `http(s)` URLs are ever requested, so a hostile
//! region cannot point the client at local files.
//!
//! ```no_run
//! use opensim_caps::{CapsClient, DEFAULT_CAPS, EndReason, Event};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let seed = "http://127.0.0.1:9000/CAPS/00000000000000000000000000000000000/";
//! smol::block_on(async {
//!     let client = CapsClient::new()?;
//!     // `seed` comes from the login response (or a TeleportFinish / CrossedRegion event).
//!     let caps = client.request_capabilities(seed, DEFAULT_CAPS).await?;
//!     let eq_url = caps.event_queue_get().ok_or("no event queue")?;
//!     let mut queue = client.event_queue(eq_url)?;
//!     let stop = queue.shutdown_handle(); // call stop.shutdown() when leaving the region
//!     loop {
//!         match queue.next().await {
//!             Ok(Event::TeleportFinish(tp)) => println!("teleport to {}", tp.sim_addr),
//!             Ok(Event::ParcelProperties(p)) => println!("parcel {:?}", p.name),
//!             Ok(other) => println!("event {}", other.name()),
//!             Err(EndReason::RegionGone) => break,
//!             Err(end) => return Err(end.into()),
//!         }
//!     }
//!     drop(stop);
//!     Ok(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]

mod capabilities;
mod client;
mod error;
mod event_queue;
pub mod events;
mod limits;

pub use capabilities::{Capabilities, DEFAULT_CAPS, check_url, seed_request_body};
pub use client::{CapsClient, CapsClientBuilder, LLSD_XML};
pub use error::{CapsError, EventError};
pub use event_queue::{
    EndReason, EventQueue, EventQueueConfig, PollReply, ShutdownHandle, parse_poll_reply,
    poll_request_body,
};
pub use events::{Event, parse_event};
pub use limits::{HttpCategory, HttpLimits, HttpLimitsBuilder, HttpPermit};
pub use opensim_llsd::{Date, Value};
