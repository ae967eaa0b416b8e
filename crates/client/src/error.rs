//! Errors of the client.

use crate::types::DisconnectReason;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The login service refused or failed (wrong password, unreachable grid ...); the
    /// server's own message is kept inside.
    #[error(transparent)]
    Login(#[from] opensim_login::LoginError),
    /// Something did not happen in time (what, e.g. `"region handshake"`).
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The session is over.
    #[error("disconnected: {0}")]
    Disconnected(DisconnectReason),
    /// A capability request failed.
    #[error(transparent)]
    Caps(#[from] opensim_caps::CapsError),
    /// A texture could not be fetched or decoded.
    #[error(transparent)]
    Texture(#[from] TextureError),
    /// A socket could not be bound or used.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A circuit refused a message (closed, or the message cannot be encoded).
    #[error("circuit: {0}")]
    Circuit(#[from] opensim_circuit::SendError),
    /// The SOCKS5 proxy refused or failed the UDP association.
    #[error("SOCKS5 proxy: {0}")]
    Socks5(#[from] opensim_circuit::socks5::Socks5Error),
    /// A circuit could not be opened.
    #[error("circuit: {0}")]
    Endpoint(#[from] opensim_circuit::EndpointError),
    /// The simulator refused or abandoned a teleport (its reason).
    #[error("teleport failed: {0}")]
    TeleportFailed(String),
    /// No region of that name is known to the grid.
    #[error("no region named {0:?}")]
    RegionNotFound(String),
    /// The call cannot be made in this state or with these arguments.
    #[error("misuse: {0}")]
    Misuse(&'static str),
}

/// Why a texture could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextureError {
    /// The region grants no `GetTexture` capability (use [`TextureVia::Udp`](crate::TextureVia)).
    #[error("the region has no GetTexture capability")]
    NoCapability,
    /// The HTTP fetch failed.
    #[error(transparent)]
    Http(#[from] opensim_textures::HttpFetchError),
    /// The server does not have it (`ImageNotInDatabase` or 404).
    #[error("texture {0} not found")]
    NotFound(uuid::Uuid),
    /// The UDP transfer stalled or the server sent something unusable.
    #[error("UDP transfer of {0} failed: {1}")]
    Udp(uuid::Uuid, String),
    /// The bytes are not a decodable JPEG 2000 codestream.
    #[error(transparent)]
    Decode(#[from] opensim_textures::DecodeError),
}
