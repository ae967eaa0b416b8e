//! LLUDP circuits: the reliable-UDP layer between a client and one simulator.
//!
//! A circuit numbers its packets, keeps reliable ones until they are acknowledged and
//! resends them (RESENT flag, resend timeout from the measured round trip in the manner of
//! RFC 6298, exponential backoff, a give-up limit reported as [`Event::GaveUp`]), acks what it
//! receives (appended to outgoing packets when they have room, otherwise in `PacketAck`
//! batches within [`Config::ack_delay`]), drops duplicates, answers and sends
//! `StartPingCheck`, detects a silent peer, and throttles outgoing traffic per `AgentThrottle`
//! category. It follows `../shared/protocol/circuit.md` and works for both sides ([`Role`]).
//!
//! Two layers:
//!
//! * [`Circuit`] is the sans-IO core, in the manner of quinn-proto: no sockets, no clock.
//!   Feed it [`handle_datagram`](Circuit::handle_datagram) and
//!   [`handle_timeout`](Circuit::handle_timeout), drain
//!   [`poll_transmit`](Circuit::poll_transmit) and [`poll_event`](Circuit::poll_event), and
//!   sleep until [`poll_timeout`](Circuit::poll_timeout). It is deterministic for a given
//!   sequence of inputs and times.
//! * [`Endpoint`] drives many circuits over one UDP socket from one task (smol / async-io):
//!   [`Endpoint::connect`] for client circuits, [`Endpoint::accept`] for circuits opened by
//!   peers, [`Connection`] to send, receive events and close. On Linux it reads and writes
//!   datagrams in batches (`recvmmsg`, `sendmmsg`) and sends runs of equal-size datagrams
//!   to one peer as one UDP segmentation offload send, reading coalesced batches back
//!   ([`EndpointConfig::udp_offload`]); peers see ordinary datagrams.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use opensim_circuit::{Circuit, Config, Event, Reliability};
//! use opensim_messages::{Message, UseCircuitCode, use_circuit_code};
//!
//! let t0 = Instant::now();
//! let mut client = Circuit::new(Config::client(), t0);
//! let mut server = Circuit::new(Config::server(), t0);
//! let hello = UseCircuitCode {
//!     circuit_code: use_circuit_code::CircuitCode { code: 42, ..Default::default() },
//! };
//! client.send(hello, Reliability::Reliable).unwrap();
//!
//! // Carry datagrams across by hand; a real program uses a socket (or `Endpoint`).
//! while let Some(d) = client.poll_transmit(t0) {
//!     server.handle_datagram(t0 + Duration::from_millis(20), d);
//! }
//! assert!(matches!(server.poll_event(), Some(Event::Message(Message::UseCircuitCode(_)))));
//!
//! // The server acks within its ack delay.
//! let later = t0 + Duration::from_millis(200);
//! while let Some(d) = server.poll_transmit(later) {
//!     client.handle_datagram(later, d);
//! }
//! assert_eq!(client.stats().acked, 1);
//! ```
//!
//! The driver, with a simulator side and a client side on 127.0.0.1:
//!
//! ```
//! use opensim_circuit::{Endpoint, EndpointConfig, Event, Reliability};
//! use opensim_messages::{Message, UseCircuitCode};
//!
//! smol::block_on(async {
//!     let sim = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
//!     let viewer = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::client())?;
//!     let circuit = viewer.connect(sim.local_addr()?)?;
//!     // A server endpoint opens a circuit for a peer's UseCircuitCode.
//!     circuit.send(UseCircuitCode::default(), Reliability::Reliable).await?;
//!     let accepted = sim.accept().await.expect("a circuit");
//!     let event = accepted.recv().await;
//!     assert!(matches!(event, Some(Event::Message(Message::UseCircuitCode(_)))));
//!     circuit.close().await;
//!     viewer.shutdown().await;
//!     sim.shutdown().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! .unwrap();
//! ```

//! Wire-level extras of an [`Endpoint`], all set in [`EndpointConfig`]:
//!
//! * [`EndpointConfig::tap`]: a [`Tap`] sees every datagram sent and received (for pcap
//!   captures).
//! * [`EndpointConfig::impairment`]: seeded loss, duplication and delay of outgoing datagrams
//!   ([`Impairment`]), for tests and simulators on real sockets.
//! * [`EndpointConfig::socks5_relay`]: everything goes through a SOCKS5 UDP relay opened with
//!   [`socks5::associate`] (a debugging proxy such as Hippolyzer).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use opensim_circuit::{Direction, Endpoint, EndpointConfig, Impairment, Tap};
//!
//! struct Count(AtomicUsize);
//! impl Tap for Count {
//!     fn datagram(&self, d: Direction, _: std::net::SocketAddr, _: std::net::SocketAddr, _: &[u8]) {
//!         if d == Direction::Sent {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let sent = Arc::new(Count(AtomicUsize::new(0)));
//! let mut config = EndpointConfig::client();
//! config.tap = Some(sent.clone());
//! // Drop a fifth of what leaves, duplicate a tenth, delay everything 20 to 50 ms.
//! config.impairment = Some(
//!     Impairment::new(0.2, 42)
//!         .with_duplicate(0.1)
//!         .with_delay(std::time::Duration::from_millis(20), std::time::Duration::from_millis(30)),
//! );
//! let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
//! # smol::block_on(endpoint.shutdown());
//! ```

#![forbid(unsafe_code)]

mod batch;
mod circuit;
mod config;
mod dedup;
mod driver;
mod impair;
mod rtt;
pub mod socks5;
mod tap;
mod throttle;

pub use circuit::{Circuit, CloseReason, Event, SendError, SendId, Stats};
pub use config::{Config, Reliability, Role};
pub use driver::{Connection, Endpoint, EndpointConfig, EndpointError, EndpointStats};
pub use impair::Impairment;
pub use tap::{Direction, Tap};
pub use throttle::{Category, ThrottleError, ThrottleRates};

/// Functions for fuzz targets and corpus replays.
#[doc(hidden)]
pub mod fuzz_support {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use crate::{Circuit, Config, Reliability, Role};

    /// Feeds arbitrary bytes, as one datagram and then split into several, into fresh client
    /// and server circuits with something in flight, and runs every poll; must never panic.
    pub fn handle_datagram(data: &[u8]) {
        let t0 = Instant::now();
        for role in [Role::Client, Role::Server] {
            let mut c = Circuit::new(Config::for_role(role), t0);
            let _ = c.send(opensim_messages::CloseCircuit, Reliability::Reliable);
            while c.poll_transmit(t0).is_some() {}
            let mut now = t0;
            c.handle_datagram(now, Bytes::copy_from_slice(data));
            // The same bytes cut at a length byte taken from the input, as several datagrams.
            let step = usize::from(data.first().copied().unwrap_or(1)).max(7);
            for chunk in data.chunks(step) {
                now += Duration::from_millis(7);
                c.handle_datagram(now, Bytes::copy_from_slice(chunk));
            }
            for _ in 0..3 {
                now += Duration::from_secs(2);
                c.handle_timeout(now);
                while c.poll_transmit(now).is_some() {}
                while c.poll_event().is_some() {}
                let _ = c.poll_timeout();
            }
            let _ = c.stats();
            c.close(now);
            while c.poll_transmit(now).is_some() {}
            while c.poll_event().is_some() {}
        }
    }
}

/// Fuzz entry points, compiled only under `cargo fuzz` (`cfg(fuzzing)`).
#[cfg(fuzzing)]
pub mod fuzz {
    pub use crate::fuzz_support::handle_datagram;
}

#[cfg(test)]
mod tests;
