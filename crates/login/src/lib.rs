//! Logging in to an OpenSimulator (or Second Life style) grid.
//!
//! A viewer's session starts with an HTTP POST of an XML-RPC `login_to_simulator` call (or
//! its LLSD equivalent) to the grid's login URI. The answer names the region to connect to (`sim_ip`/`sim_port`), the
//! ids that go into every UDP message (`agent_id`, `session_id`, `circuit_code`), the seed
//! capability, the inventory skeleton and more. This crate builds the request
//! ([`LoginParams`]), sends it over HTTP or HTTPS ([`LoginClient`], on `isahc`/curl, usable
//! from any async executor), and turns the answer into a [`LoginResponse`] or a typed
//! [`LoginError`].
//!
//! ```no_run
//! use std::time::Duration;
//! use opensim_login::{InstallationId, LoginClient, LoginParams, Password, RetryPolicy, StartLocation};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Generate once per installation, store `install.to_string()`, reuse it on later runs:
//! // the grid derives its "same machine" checks from the mac/id0 derived from it.
//! let install = InstallationId::generate();
//! let params = LoginParams::builder("http://127.0.0.1:9000/", "Test", "User", Password::new("password"))
//!     .start(StartLocation::Uri { region: "Test Region".into(), x: 128.0, y: 128.0, z: 30.0 })
//!     .channel("MyViewer")
//!     .version("1.0.0")
//!     .installation_id(install)
//!     .build()?;
//! let client = LoginClient::builder()
//!     .timeout(Duration::from_secs(30))
//!     .retry(RetryPolicy::already_logged_in(1, Duration::from_secs(5)))
//!     .build()?;
//! let session = smol::block_on(client.login(&params))?;
//! println!(
//!     "circuit {} at {}, region handle {}, seed {}",
//!     session.circuit_code,
//!     session.sim_addr,
//!     session.region_handle(),
//!     session.seed_capability
//! );
//! # Ok(()) }
//! ```
//!
//! Security: the password is hashed at once into its wire form (`$1$` + MD5, which is what
//! OpenSimulator expects) and never shows in `Debug`, errors or logs. TLS certificates are
//! verified unless [`LoginClientBuilder::danger_accept_invalid_certs`] says otherwise.
//! Hostile answers give typed errors: the body size is capped, XML nesting is limited before
//! the recursive XML-RPC parser runs, and every number is range-checked.
//!
//! The classic XML-RPC encoding is the default; [`LoginEncoding::Llsd`] (set with
//! [`LoginParamsBuilder::encoding`]) sends the same members as an LLSD map
//! (`application/llsd+xml`) and reads the LLSD answer into the same [`LoginResponse`]
//! (see [`codec`]).

#![forbid(unsafe_code)]

mod client;
pub mod codec;
mod error;
mod params;
mod password;
mod response;
mod value;

pub use client::{LoginClient, LoginClientBuilder, RetryPolicy};
pub use codec::LoginEncoding;
pub use error::{LoginError, Refusal};
pub use params::{
    DEFAULT_OPTIONS, InstallationId, LOGIN_METHOD, LoginParams, LoginParamsBuilder, StartLocation,
};
pub use password::{Credential, Password};
pub use response::{
    Buddy, Category, Gesture, GlobalTextures, Home, InitialOutfit, InventoryFolder, LoginFlags,
    LoginReply, LoginResponse, Redirect, parse_home, parse_vec3, region_handle,
};
pub use value::LoginValue;

/// Logs in with a default [`LoginClient`] (no retries, default timeouts).
///
/// # Errors
/// See [`LoginClient::login`].
pub async fn login(params: &LoginParams) -> Result<LoginResponse, LoginError> {
    LoginClient::new()?.login(params).await
}
