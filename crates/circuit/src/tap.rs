//! A hook that sees every datagram an [`Endpoint`](crate::Endpoint) puts on or takes off the
//! wire, for packet captures and debugging.

use std::net::SocketAddr;

/// Which way a tapped datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Handed to the socket by this endpoint.
    Sent,
    /// Read from the socket by this endpoint.
    Received,
}

/// Sees every datagram an endpoint puts on or takes off the wire.
///
/// Set it as [`EndpointConfig::tap`](crate::EndpointConfig::tap). The driver task calls it
/// inline for each datagram, so it must be quick (copy the bytes into a channel or a buffer
/// and return); it runs on the driver's task, never concurrently with itself for one endpoint.
///
/// * Sent datagrams are tapped once the socket has accepted them, after
///   [`Impairment`](crate::Impairment) has decided their fate: a datagram it drops is never
///   tapped, a duplicated one is tapped twice, a delayed one when it finally leaves.
/// * Received datagrams are tapped as they arrive, before any decoding, garbage included.
/// * Through a SOCKS5 relay ([`EndpointConfig::socks5_relay`](crate::EndpointConfig::socks5_relay))
///   the bytes are the LLUDP payload without the relay header and `remote` is the simulator's
///   address, not the relay's. Datagrams with a malformed relay header are not tapped (they
///   are counted in [`EndpointStats::socks5_dropped`](crate::EndpointStats::socks5_dropped)).
pub trait Tap: Send + Sync + 'static {
    /// Called with one datagram; `local` is the endpoint's bound address.
    fn datagram(&self, direction: Direction, local: SocketAddr, remote: SocketAddr, bytes: &[u8]);
}
