//! Region state built from the messages a simulator sends over an LLUDP circuit.
//!
//! Everything here is sans-IO: the client decodes datagrams with `opensim-packet`, hands the
//! [`opensim_messages::Message`]s to the state below, and sends the messages it gets back. The
//! modules, from the circuit's first message on:
//!
//! * [`handshake`]: the typed `RegionHandshake`, its reply, region handles and sizes
//!   ([`handshake::RegionInfo`]).
//! * [`terrain`]: `LayerData` patches into a [`terrain::Heightmap`], and the encoder a simulator
//!   uses.
//! * [`objects`]: typed `ObjectUpdate`, `ObjectUpdateCompressed`, `ImprovedTerseObjectUpdate`
//!   and `KillObject` (decoders and encoders), with the TextureEntry, motion blob, shape,
//!   extra-parameter and NameValue formats inside them.
//! * [`scene`]: the objects of one region, updated in order, with change events and
//!   per-subsystem decoding depth ([`scene::DecodeOptions`]).
//! * [`stats`]: `SimStats` and the agents present (`CoarseLocationUpdate` plus avatars).
//! * [`neighbours`]: the set of connected regions, which one is main, and the teleport and
//!   region-crossing state machine, as [`neighbours::Action`]s for the client to carry out.
//!
//! A client's receive path for one circuit looks like this:
//!
//! ```
//! use opensim_messages::Message;
//! use opensim_regions::{handshake::{RegionInfo, reply_flags}, scene::{DecodeOptions, Scene}};
//! use opensim_regions::objects::{self, FullUpdate, pcode};
//!
//! let mut region = RegionInfo::from_login(256000, 256000, Some(256), Some(256))?;
//! let mut scene = Scene::new(DecodeOptions::FULL);
//! let mut events = Vec::new();
//!
//! // What a simulator would send (built with this crate's encoders).
//! let mut box_ = FullUpdate::new(7, uuid::Uuid::from_u128(7), pcode::PRIMITIVE);
//! box_.motion.position = glam::Vec3::new(10.0, 20.0, 30.0);
//! let incoming: Vec<Message> = vec![
//!     Message::from(opensim_messages::RegionHandshake::default()),
//!     Message::from(objects::object_update(region.handle.0, 65535, &[box_], 256.0)?),
//! ];
//!
//! let (agent, session) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
//! for msg in &incoming {
//!     if let Message::RegionHandshake(h) = msg {
//!         let reply = region.apply_handshake(h).reply(agent, session, reply_flags::SUPPORTS_SELF_APPEARANCE);
//!         let _ = reply; // send it reliably on this circuit
//!     }
//!     scene.apply(msg, &mut events)?;
//! }
//! assert_eq!(scene.get(7).unwrap().motion.position.z, 30.0);
//! # Ok::<(), opensim_regions::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod error;
pub mod handshake;
pub mod neighbours;
pub mod objects;
pub mod scene;
pub mod stats;
pub mod terrain;
mod wire;

pub use error::Error;
pub use handshake::{RegionHandle, RegionInfo};
