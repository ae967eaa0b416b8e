//! Circuit settings: timers, limits, and which side of the circuit this is.

use std::time::Duration;

use crate::throttle::ThrottleRates;

/// Which side of a circuit a [`Circuit`](crate::Circuit) plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A viewer or bot talking to a simulator: sets its own outgoing throttle.
    Client,
    /// A simulator: applies the `AgentThrottle` the client sends to its outgoing traffic.
    Server,
}

/// Whether a message must be acknowledged and resent until it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// Sent once; may be lost.
    Unreliable,
    /// Kept and resent until acked or given up (reported by [`Event::GaveUp`](crate::Event::GaveUp)).
    Reliable,
}

/// Every timer and limit of a circuit.
///
/// [`Config::client`] and [`Config::server`] give the values recommended in
/// `circuit.md` (viewer / libopenmetaverse for clients, OpenSimulator for servers).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Client or server.
    pub role: Role,
    /// Resend timeout before any round trip has been measured.
    pub initial_rto: Duration,
    /// Floor of the resend timeout.
    pub min_rto: Duration,
    /// Ceiling of the resend timeout, also of its exponential backoff.
    pub max_rto: Duration,
    /// How many times a reliable packet is resent before [`Event::GaveUp`](crate::Event::GaveUp);
    /// `None` resends until acked or the circuit closes.
    pub max_resends: Option<u32>,
    /// Longest time a received reliable packet waits for its ack to go out.
    pub ack_delay: Duration,
    /// Pending acks that make a `PacketAck` go out at once rather than after `ack_delay`.
    pub ack_flush_threshold: usize,
    /// Most reliable packets sent since the oldest unacked one (a window, which also keeps
    /// resends inside the peer's duplicate window).
    pub max_in_flight: usize,
    /// Interval of `StartPingCheck`: measures the round trip and keeps the circuit alive.
    pub keepalive_interval: Duration,
    /// Silence after which [`Event::PeerSilent`](crate::Event::PeerSilent) is reported.
    pub silence_warning: Duration,
    /// Silence after which the circuit closes with [`CloseReason::TimedOut`](crate::CloseReason::TimedOut).
    pub idle_timeout: Duration,
    /// How many received reliable sequence numbers are remembered to drop duplicates.
    pub duplicate_window: usize,
    /// Datagram size that appended acks must keep the packet under.
    pub mtu: usize,
    /// Largest datagram [`Circuit::send`](crate::Circuit::send) accepts.
    pub max_datagram: usize,
    /// Most packets queued and not yet sent (past it, `send` reports [`SendError::QueueFull`](crate::SendError::QueueFull)).
    pub max_queued: usize,
    /// Most undelivered events; past it incoming messages are dropped unacked so the peer
    /// resends them later.
    pub max_events: usize,
    /// Outgoing rates per category; `None` sends as fast as the caller polls.
    pub throttle: Option<ThrottleRates>,
    /// Burst allowed by each token bucket, as time at its rate (at least one MTU).
    pub throttle_burst: Duration,
    /// Server side: the most bytes per second the seven categories of an `AgentThrottle` may
    /// add up to (OpenSimulator's `client_throttle_max_bps`).
    pub max_client_rate: f32,
    /// Report [`Event::Acked`](crate::Event::Acked) for every acknowledged reliable send.
    pub report_acks: bool,
    /// How long [`Circuit::close`](crate::Circuit::close) waits for reliable sends to be acked.
    pub close_timeout: Duration,
}

impl Config {
    /// A client's settings: RTO 1 s to 5 s, 5 resends, 30 s silence timeout, no throttle.
    pub fn client() -> Self {
        Config {
            role: Role::Client,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(5),
            max_resends: Some(5),
            ack_delay: Duration::from_millis(100),
            ack_flush_threshold: 32,
            max_in_flight: 512,
            keepalive_interval: Duration::from_secs(5),
            silence_warning: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            duplicate_window: 1024,
            mtu: opensim_packet::MTU,
            max_datagram: 4096,
            max_queued: 4096,
            max_events: 8192,
            throttle: None,
            throttle_burst: Duration::from_millis(10),
            max_client_rate: 640_000.0,
            report_acks: false,
            close_timeout: Duration::from_secs(3),
        }
    }

    /// A simulator's settings: OpenSimulator's RTO 250 ms to 3 s, 60 s silence timeout, its
    /// default throttle until the client sends `AgentThrottle`.
    pub fn server() -> Self {
        Config {
            role: Role::Server,
            min_rto: Duration::from_millis(250),
            max_rto: Duration::from_secs(3),
            max_resends: Some(10),
            idle_timeout: Duration::from_secs(60),
            silence_warning: Duration::from_secs(15),
            throttle: Some(ThrottleRates::OPENSIM_DEFAULT),
            ..Config::client()
        }
    }

    /// The settings of `role`.
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Client => Config::client(),
            Role::Server => Config::server(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::client()
    }
}
