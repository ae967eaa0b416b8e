//! Standalone asset server speaking the HTTP API of OpenSimulator's ROBUST asset service.
//!
//! Regions and grid services talk to it exactly as to ROBUST's `AssetServiceConnector`:
//! `GET /assets/{id}` (`<AssetBase>` XML), `GET /assets/{id}/data`, `GET /assets/{id}/metadata`,
//! `POST /assets` (store, never overwrite), `POST /assets/{id}` (update: always false),
//! `DELETE /assets/{id}` (per [`DeletePolicy`]) and `POST /get_assets_exist`.
//! The XML is byte-for-byte what OpenSimulator 0.9.2.2 writes ([`xml`]).
//!
//! Storage sits behind the [`Store`] trait, chosen by the location string
//! ([`store::open`], [`ServerConfig::database`]): embedded SQLite by default
//! ([`store::SqliteStore`]: WAL, `synchronous=FULL`, content de-duplicated by SHA-256), or
//! PostgreSQL ([`pg::PgStore`], feature `postgres`, on by default) given a
//! `postgres://user:pass@host:port/db` URL or an OpenSimulator connection string
//! `Server=host;Database=db;User Id=u;Password=p;`, using OpenSimulator's own `assets` table.
//! All database work runs on blocking threads. The HTTP/1.1 server ([`http`]) is hand-written on `async-net`, with
//! keep-alive, chunked bodies, bounded heads and bodies, and timeouts.
//!
//! ```no_run
//! use opensim_assets::{AssetServer, ServerConfig};
//! smol::block_on(async {
//!     let server = AssetServer::bind(ServerConfig::new("/tmp/assets.db")).await?;
//!     println!("listening on {}", server.local_addr()?);
//!     let stop = server.shutdown_handle();
//!     // ... later: stop.shutdown();
//! #   stop.shutdown();
//!     server.run().await
//! })?;
//! # Ok::<(), opensim_assets::ServerError>(())
//! ```
#![forbid(unsafe_code)]

pub mod http;
pub mod import;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod server;
pub mod store;
pub mod xml;

pub use import::{ImportError, ImportReport, export_dir, import_dir};
#[cfg(feature = "postgres")]
pub use pg::{PgOptions, PgStore};
pub use server::{
    AssetServer, Credentials, DeletePolicy, ServerConfig, ServerError, ShutdownHandle,
};
pub use store::{Backend, SqliteStore, Store, StoreError};
pub use xml::{AssetBase, AssetMeta, XmlError};
