//! The sans-IO circuit: all protocol state of one client–simulator circuit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use opensim_messages::{
    CloseCircuit, CompletePingCheck, Message, MessageId, MessageType, PacketAck, StartPingCheck,
    complete_ping_check, packet_ack, start_ping_check,
};
use opensim_packet::{FLAG_ACKS, FLAG_RELIABLE, FLAG_RESENT, MAX_APPENDED_ACKS, Packet};

use crate::config::{Config, Reliability, Role};
use crate::dedup::DuplicateWindow;
use crate::rtt::RttEstimator;
use crate::throttle::{Buckets, Category, ThrottleRates};

/// Outgoing sequence numbers wrap at 2^24 like the viewer's (`LL_MAX_OUT_PACKET_ID`).
const SEQ_MASK: u32 = 0x00FF_FFFF;
/// Size of each chunk outgoing packets are encoded into; amortizes allocations.
const ARENA_CHUNK: usize = 8 * 1024;
/// Most acks waiting to go out; past it a reliable packet is not acked (the peer resends it).
const MAX_PENDING_ACKS: usize = 16 * MAX_APPENDED_ACKS;
/// Most control replies (pongs) waiting; a flood of pings beyond it gets no answers.
const MAX_CONTROL: usize = 64;
/// Most of our own pings remembered while waiting for their answer.
const MAX_PINGS: usize = 8;

/// Identifies one [`Circuit::send`] in later events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SendId(pub u64);

/// Why a circuit closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Circuit::close`] was called (reliable sends drained or the close timeout passed).
    Local,
    /// The peer sent `CloseCircuit`.
    PeerClosed,
    /// Nothing was received for [`Config::idle_timeout`].
    TimedOut,
}

/// Something the circuit reports to its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per message
pub enum Event {
    /// A message from the peer (never a duplicate; acks and pings are handled inside).
    Message(Message),
    /// A reliable send was acknowledged (only with [`Config::report_acks`]).
    Acked(SendId),
    /// A reliable send was abandoned: resent [`Config::max_resends`] times without an ack,
    /// or still pending when the circuit closed.
    GaveUp {
        /// Which send.
        id: SendId,
        /// Its message number.
        message: MessageId,
    },
    /// Nothing has been received for [`Config::silence_warning`].
    PeerSilent {
        /// How long it has been quiet.
        silent_for: Duration,
    },
    /// Traffic arrived again after [`Event::PeerSilent`].
    PeerResumed,
    /// The peer's `AgentThrottle` was applied to our outgoing rates (server side).
    ThrottleChanged(ThrottleRates),
    /// The circuit is closed; always the last event.
    Closed(CloseReason),
}

/// A misuse of [`Circuit::send`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The circuit is closing or closed.
    #[error("circuit is closed")]
    Closed,
    /// [`Config::max_queued`] packets are waiting; poll transmits (or await) first.
    #[error("send queue is full")]
    QueueFull,
    /// The message cannot be encoded.
    #[error("encode: {0}")]
    Encode(#[from] opensim_packet::EncodeError),
    /// The encoded packet is bigger than [`Config::max_datagram`].
    #[error("packet of {len} bytes exceeds the {max}-byte datagram limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Counters and gauges of one circuit.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams sent, of every kind.
    pub sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Reliable packets sent (first transmissions).
    pub reliable_sent: u64,
    /// Retransmissions.
    pub resent: u64,
    /// Reliable packets acknowledged.
    pub acked: u64,
    /// Reliable sends given up.
    pub given_up: u64,
    /// Datagrams received.
    pub received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Messages delivered as [`Event::Message`].
    pub delivered: u64,
    /// Duplicate reliable packets (re-acked, not delivered).
    pub duplicates: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Datagrams dropped unacked because [`Config::max_events`] events were waiting.
    pub dropped: u64,
    /// Acks for sequence numbers we were not waiting for.
    pub stray_acks: u64,
    /// `StartPingCheck`s sent.
    pub pings_sent: u64,
    /// Of those, answered.
    pub pings_answered: u64,
    /// Acks waiting to go out.
    pub acks_pending: usize,
    /// Reliable packets sent and not yet acked.
    pub in_flight: usize,
    /// Packets waiting in each throttle category, by [`Category::index`].
    pub queued: [usize; 7],
    /// Retransmissions due but not yet sent.
    pub resends_queued: usize,
    /// Smoothed round-trip time, once measured.
    pub srtt: Option<Duration>,
    /// Round-trip variation.
    pub rttvar: Duration,
    /// The latest round-trip sample.
    pub latest_rtt: Option<Duration>,
    /// Current resend timeout.
    pub rto: Duration,
}

impl Stats {
    /// Share of reliable transmissions that had to be repeated: an estimate of round-trip loss.
    pub fn loss(&self) -> f64 {
        let total = self.reliable_sent + self.resent;
        if total == 0 {
            0.0
        } else {
            self.resent as f64 / total as f64
        }
    }
}

#[derive(Debug)]
struct Queued {
    bytes: BytesMut,
    reliable: bool,
    id: SendId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SentState {
    InFlight,
    ResendQueued,
    Done,
}

/// A reliable packet sent and not yet acked.
#[derive(Debug)]
struct Sent {
    seq: u32,
    state: SentState,
    resends: u32,
    id: SendId,
    /// Header and body without appended acks (its flags byte may still carry `FLAG_ACKS`).
    bytes: Bytes,
    sent_at: Instant,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Control {
    Ping(u8, u32),
    Pong(u8),
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closing { deadline: Instant },
    Closed,
}

/// One circuit, without sockets or clocks: the caller feeds datagrams and time in and takes
/// datagrams and events out.
///
/// After anything that can change the state ([`handle_datagram`](Circuit::handle_datagram),
/// [`handle_timeout`](Circuit::handle_timeout), [`send`](Circuit::send),
/// [`close`](Circuit::close)) the caller drains [`poll_transmit`](Circuit::poll_transmit) and
/// [`poll_event`](Circuit::poll_event), then sleeps until [`poll_timeout`](Circuit::poll_timeout).
#[derive(Debug)]
pub struct Circuit {
    config: Config,
    state: State,
    pub(crate) next_seq: u32,
    next_send_id: u64,
    arena: BytesMut,
    queues: [VecDeque<Queued>; 7],
    queued_total: usize,
    round_robin: usize,
    control: VecDeque<Control>,
    unacked: VecDeque<Sent>,
    in_flight: usize,
    resend_queue: VecDeque<u32>,
    /// Earliest deadline of an in-flight packet; may be early (then a scan just finds nothing).
    resend_at: Option<Instant>,
    pending_acks: VecDeque<u32>,
    ack_deadline: Option<Instant>,
    dedup: DuplicateWindow,
    rtt: RttEstimator,
    pings: VecDeque<(u8, Instant)>,
    next_ping_id: u8,
    next_ping_at: Instant,
    last_recv: Instant,
    silent: bool,
    buckets: Buckets,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Circuit {
    /// A new open circuit; `now` starts its keepalive and silence timers.
    pub fn new(config: Config, now: Instant) -> Self {
        let rtt = RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto);
        let buckets = Buckets::new(config.throttle.as_ref(), config.throttle_burst, config.mtu);
        Circuit {
            state: State::Open,
            next_seq: 1,
            next_send_id: 0,
            arena: BytesMut::new(),
            queues: Default::default(),
            queued_total: 0,
            round_robin: 0,
            control: VecDeque::new(),
            unacked: VecDeque::new(),
            in_flight: 0,
            resend_queue: VecDeque::new(),
            resend_at: None,
            pending_acks: VecDeque::new(),
            ack_deadline: None,
            dedup: DuplicateWindow::new(config.duplicate_window),
            rtt,
            pings: VecDeque::new(),
            next_ping_id: 0,
            next_ping_at: now + config.keepalive_interval,
            last_recv: now,
            silent: false,
            buckets,
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Queues a message in its default throttle category ([`Category::of`]).
    ///
    /// # Errors
    /// See [`SendError`]; nothing is queued then.
    pub fn send(
        &mut self,
        message: impl Into<Message>,
        reliability: Reliability,
    ) -> Result<SendId, SendError> {
        let message = message.into();
        let category = Category::of(&message);
        self.send_with(message, reliability, category)
    }

    /// Queues a message in a given throttle category. It is encoded now; its sequence number is
    /// given when it leaves.
    ///
    /// # Errors
    /// See [`SendError`]; nothing is queued then.
    pub fn send_with(
        &mut self,
        message: impl Into<Message>,
        reliability: Reliability,
        category: Category,
    ) -> Result<SendId, SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if !self.can_send() {
            return Err(SendError::QueueFull);
        }
        let mut packet = Packet::new(message);
        packet.reliable = reliability == Reliability::Reliable;
        self.reserve_arena(64);
        packet.encode(&mut self.arena)?;
        let len = self.arena.len();
        if len > self.config.max_datagram {
            self.arena.clear();
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_datagram,
            });
        }
        let id = SendId(self.next_send_id);
        self.next_send_id += 1;
        self.queues[category.index()].push_back(Queued {
            bytes: self.arena.split(),
            reliable: packet.reliable,
            id,
        });
        self.queued_total += 1;
        Ok(id)
    }

    /// Whether [`send`](Circuit::send) would accept a message now.
    pub fn can_send(&self) -> bool {
        self.state == State::Open && self.queued_total < self.config.max_queued
    }

    /// Sets our outgoing rates (`None`: unthrottled). A client calls this with the rates it
    /// announces in `AgentThrottle`.
    pub fn set_throttle(&mut self, rates: Option<ThrottleRates>) {
        self.buckets
            .set(rates.as_ref(), self.config.throttle_burst, self.config.mtu);
        self.config.throttle = rates;
    }

    /// Our current outgoing rates.
    pub fn throttle(&self) -> Option<ThrottleRates> {
        self.buckets.rates()
    }

    /// Starts a clean close: no more sends are accepted, queued and unacked reliable packets
    /// get up to [`Config::close_timeout`] to be acked, then `CloseCircuit` goes out and
    /// [`Event::Closed`] is reported.
    pub fn close(&mut self, now: Instant) {
        if self.state == State::Open {
            self.state = State::Closing {
                deadline: now + self.config.close_timeout,
            };
            self.check_drained();
        }
    }

    /// Whether the circuit has closed (after [`Event::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether it is draining after [`close`](Circuit::close).
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing { .. })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether events are waiting.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Counters, gauges and the round-trip estimate.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.acks_pending = self.pending_acks.len();
        s.in_flight = self.in_flight;
        s.queued = std::array::from_fn(|i| self.queues[i].len());
        s.resends_queued = self.resend_queue.len();
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.latest_rtt = self.rtt.latest();
        s.rto = self.rtt.rto();
        s
    }

    /// The current resend timeout.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// An estimate of the heap this circuit holds, in bytes (excluding `size_of::<Circuit>()`).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.arena.capacity()
            + self
                .queues
                .iter()
                .map(|q| {
                    q.capacity() * size_of::<Queued>()
                        + q.iter().map(|e| e.bytes.capacity()).sum::<usize>()
                })
                .sum::<usize>()
            + self.control.capacity() * size_of::<Control>()
            + self.unacked.capacity() * size_of::<Sent>()
            + self.unacked.iter().map(|e| e.bytes.len()).sum::<usize>()
            + self.resend_queue.capacity() * 4
            + self.pending_acks.capacity() * 4
            + self.dedup.heap_bytes()
            + self.pings.capacity() * size_of::<(u8, Instant)>()
            + self.events.capacity() * size_of::<Event>()
    }

    /// Processes one datagram from the peer.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        if self.state == State::Closed {
            return;
        }
        self.stats.received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        self.last_recv = now;
        if self.silent {
            self.silent = false;
            self.events.push_back(Event::PeerResumed);
        }
        let packet = match Packet::decode_bytes(&datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                self.salvage_header(now, &datagram);
                return;
            }
        };
        for seq in packet.acks.iter() {
            self.on_ack(seq, now);
        }
        let control = matches!(
            packet.message,
            Message::PacketAck(_)
                | Message::StartPingCheck(_)
                | Message::CompletePingCheck(_)
                | Message::CloseCircuit(_)
        );
        if !control && self.events.len() >= self.config.max_events {
            // Not acked: the peer will resend it when we have room again.
            self.stats.dropped += 1;
            return;
        }
        if packet.reliable {
            self.queue_ack(packet.sequence, now);
            if !self.dedup.insert(packet.sequence) {
                self.stats.duplicates += 1;
                return;
            }
        }
        match packet.message {
            Message::PacketAck(m) => {
                for p in m.packets {
                    self.on_ack(p.id, now);
                }
            }
            Message::StartPingCheck(m) => {
                if self.control.len() < MAX_CONTROL {
                    self.control.push_back(Control::Pong(m.ping_id.ping_id));
                }
            }
            Message::CompletePingCheck(m) => self.on_pong(m.ping_id.ping_id, now),
            Message::CloseCircuit(_) => self.finish(CloseReason::PeerClosed),
            Message::AgentThrottle(m) => {
                if self.config.role == Role::Server
                    && let Ok(rates) = ThrottleRates::from_agent_throttle(
                        &m.throttle.throttles,
                        self.config.max_client_rate,
                    )
                {
                    self.set_throttle(Some(rates));
                    self.events.push_back(Event::ThrottleChanged(rates));
                }
                self.deliver(Message::AgentThrottle(m));
            }
            other => self.deliver(other),
        }
    }

    fn deliver(&mut self, message: Message) {
        self.stats.delivered += 1;
        self.events.push_back(Event::Message(message));
    }

    /// A datagram whose body did not decode: still ack it and take its appended acks, so a
    /// message we cannot read does not make the peer resend it forever.
    fn salvage_header(&mut self, now: Instant, d: &[u8]) {
        if d.len() < opensim_packet::MIN_DATAGRAM_LEN {
            return;
        }
        let flags = d[0];
        if flags & FLAG_ACKS != 0 {
            let count = usize::from(d[d.len() - 1]);
            if 4 * count < d.len() - 6 {
                let end = d.len() - 1;
                for c in d[end - 4 * count..end].chunks_exact(4) {
                    self.on_ack(u32::from_be_bytes([c[0], c[1], c[2], c[3]]), now);
                }
            }
        }
        if flags & FLAG_RELIABLE != 0 {
            let seq = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
            self.queue_ack(seq, now);
            self.dedup.insert(seq);
        }
    }

    fn queue_ack(&mut self, seq: u32, now: Instant) {
        if self.pending_acks.len() < MAX_PENDING_ACKS {
            self.pending_acks.push_back(seq);
            if self.ack_deadline.is_none() {
                self.ack_deadline = Some(now + self.config.ack_delay);
            }
        }
    }

    fn find(&self, seq: u32) -> Option<usize> {
        let front = self.unacked.front()?.seq;
        let key = |s: u32| s.wrapping_sub(front) & SEQ_MASK;
        let i = self
            .unacked
            .binary_search_by_key(&key(seq), |e| key(e.seq))
            .ok()?;
        (self.unacked[i].seq == seq).then_some(i)
    }

    fn on_ack(&mut self, seq: u32, now: Instant) {
        let Some(i) = self.find(seq) else {
            self.stats.stray_acks += 1;
            return;
        };
        let e = &mut self.unacked[i];
        if e.state == SentState::Done {
            return;
        }
        // Karn: a resent packet's ack may answer any of its copies, so it gives no sample.
        if e.resends == 0 {
            self.rtt.sample(now.saturating_duration_since(e.sent_at));
        }
        e.state = SentState::Done;
        e.bytes = Bytes::new();
        let id = e.id;
        self.in_flight -= 1;
        self.stats.acked += 1;
        if self.config.report_acks {
            self.events.push_back(Event::Acked(id));
        }
        self.pop_done();
        self.check_drained();
    }

    fn pop_done(&mut self) {
        while self
            .unacked
            .front()
            .is_some_and(|e| e.state == SentState::Done)
        {
            self.unacked.pop_front();
        }
    }

    fn on_pong(&mut self, id: u8, now: Instant) {
        if let Some(pos) = self.pings.iter().position(|(p, _)| *p == id) {
            let (_, sent) = self.pings[pos];
            // Older pings still waiting were lost; forget them too.
            self.pings.drain(..=pos);
            self.stats.pings_answered += 1;
            self.rtt.sample(now.saturating_duration_since(sent));
        }
    }

    /// Runs the timers that are due: resends, keepalive pings, silence detection, close timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.resend_at.is_some_and(|t| now >= t) {
            self.scan_resends(now);
        }
        if now >= self.next_ping_at {
            let oldest = self.unacked.front().map_or(0, |e| e.seq);
            let id = self.next_ping_id;
            self.next_ping_id = id.wrapping_add(1);
            if self.pings.len() == MAX_PINGS {
                self.pings.pop_front();
            }
            self.pings.push_back((id, now));
            self.control.push_back(Control::Ping(id, oldest));
            self.stats.pings_sent += 1;
            self.next_ping_at = now + self.config.keepalive_interval;
            if self.unacked.is_empty() && self.queued_total == 0 {
                self.shrink_idle();
            }
        }
        let quiet = now.saturating_duration_since(self.last_recv);
        if quiet >= self.config.idle_timeout {
            self.finish(CloseReason::TimedOut);
            return;
        }
        if !self.silent && quiet >= self.config.silence_warning {
            self.silent = true;
            self.events
                .push_back(Event::PeerSilent { silent_for: quiet });
        }
        if let State::Closing { deadline } = self.state
            && now >= deadline
        {
            self.finish(CloseReason::Local);
        }
    }

    /// Gives back memory grown by a burst, so that idle circuits stay small. Runs on the
    /// keepalive tick only, so that busy circuits do not churn allocations.
    fn shrink_idle(&mut self) {
        self.unacked.shrink_to(0);
        for q in &mut self.queues {
            q.shrink_to(0);
        }
        if self.events.is_empty() {
            self.events.shrink_to(0);
        }
        if self.pending_acks.is_empty() {
            self.pending_acks.shrink_to(0);
        }
        self.resend_queue.shrink_to(0);
        // The rest of the current encode chunk.
        self.arena = BytesMut::new();
    }

    fn scan_resends(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let limit = self.config.max_resends;
        for i in 0..self.unacked.len() {
            let e = &mut self.unacked[i];
            if e.state != SentState::InFlight {
                continue;
            }
            if e.deadline > now {
                next = Some(next.map_or(e.deadline, |n| n.min(e.deadline)));
                continue;
            }
            if limit.is_some_and(|m| e.resends >= m) {
                e.state = SentState::Done;
                let bytes = std::mem::take(&mut e.bytes);
                let id = e.id;
                self.in_flight -= 1;
                self.stats.given_up += 1;
                self.events.push_back(Event::GaveUp {
                    id,
                    message: message_id(&bytes),
                });
            } else {
                e.state = SentState::ResendQueued;
                self.resend_queue.push_back(e.seq);
            }
        }
        self.resend_at = next;
        self.pop_done();
        self.check_drained();
    }

    /// When [`handle_timeout`](Circuit::handle_timeout) should next run, or when a throttled
    /// or delayed transmit becomes possible.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let mut t = self
            .next_ping_at
            .min(self.last_recv + self.config.idle_timeout);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(self.resend_at);
        if !self.pending_acks.is_empty() {
            consider(self.ack_deadline);
        }
        if !self.silent {
            consider(Some(self.last_recv + self.config.silence_warning));
        }
        if let State::Closing { deadline } = self.state {
            consider(Some(deadline));
        }
        if !self.resend_queue.is_empty() && !self.buckets.ready(Category::Resend) {
            consider(self.buckets.ready_at(Category::Resend));
        }
        for c in Category::ALL {
            if !self.queues[c.index()].is_empty() && !self.buckets.ready(c) {
                consider(self.buckets.ready_at(c));
            }
        }
        Some(t)
    }

    /// The next datagram to send to the peer, if any is allowed now.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if let Some(c) = self.control.pop_front() {
            return Some(self.transmit_control(c));
        }
        if self.state == State::Closed {
            return None;
        }
        self.buckets.refill(now);
        while let Some(&seq) = self.resend_queue.front() {
            if !self.buckets.ready(Category::Resend) {
                break;
            }
            self.resend_queue.pop_front();
            if let Some(i) = self.find(seq)
                && self.unacked[i].state == SentState::ResendQueued
            {
                return Some(self.transmit_resend(i, now));
            }
        }
        if self.queued_total > 0 {
            let window_open = self.unacked.len() < self.config.max_in_flight;
            for k in 0..7 {
                let c = (self.round_robin + k) % 7;
                let Some(front) = self.queues[c].front() else {
                    continue;
                };
                if (front.reliable && !window_open) || !self.buckets.ready(Category::ALL[c]) {
                    continue;
                }
                if let Some(q) = self.queues[c].pop_front() {
                    self.round_robin = (c + 1) % 7;
                    self.queued_total -= 1;
                    return Some(self.transmit_new(q, Category::ALL[c], now));
                }
            }
        }
        if !self.pending_acks.is_empty()
            && (self.pending_acks.len() >= self.config.ack_flush_threshold
                || self.ack_deadline.is_some_and(|d| now >= d)
                || self.state != State::Open)
        {
            return Some(self.transmit_packet_ack(now));
        }
        None
    }

    fn reserve_arena(&mut self, len: usize) {
        if self.arena.capacity() - self.arena.len() < len {
            self.arena.reserve(len.max(ARENA_CHUNK));
        }
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = (seq + 1) & SEQ_MASK;
        if self.next_seq == 0 {
            self.next_seq = 1;
        }
        seq
    }

    /// How many pending acks fit after a packet of `len` bytes.
    fn piggyback_count(&self, len: usize) -> usize {
        let room = self.config.mtu.saturating_sub(len + 1) / 4;
        self.pending_acks.len().min(room).min(MAX_APPENDED_ACKS)
    }

    /// Appends `n` pending acks to the arena's current datagram.
    fn append_pending_acks(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let ids = &self.pending_acks.make_contiguous()[..n];
        // n <= 255 by construction, so this cannot fail.
        let _ = opensim_packet::append_acks(&mut self.arena, ids);
        self.pending_acks.drain(..n);
        if self.pending_acks.is_empty() {
            self.ack_deadline = None;
        }
    }

    fn finish_datagram(&mut self) -> Bytes {
        let wire = self.arena.split().freeze();
        self.stats.sent += 1;
        self.stats.bytes_sent += wire.len() as u64;
        wire
    }

    fn transmit_new(&mut self, q: Queued, category: Category, now: Instant) -> Bytes {
        let seq = self.take_seq();
        let mut bytes = q.bytes;
        bytes[1..5].copy_from_slice(&seq.to_be_bytes());
        let len = bytes.len();
        let n = self.piggyback_count(len);
        let wire = if n == 0 {
            self.stats.sent += 1;
            self.stats.bytes_sent += len as u64;
            bytes.freeze()
        } else {
            self.reserve_arena(len + 4 * n + 1);
            self.arena.extend_from_slice(&bytes);
            self.append_pending_acks(n);
            self.finish_datagram()
        };
        self.buckets.spend(category, wire.len());
        if q.reliable {
            let deadline = now + self.rtt.rto();
            self.unacked.push_back(Sent {
                seq,
                state: SentState::InFlight,
                resends: 0,
                id: q.id,
                bytes: wire.slice(..len),
                sent_at: now,
                deadline,
            });
            self.in_flight += 1;
            self.stats.reliable_sent += 1;
            if self.resend_at.is_none_or(|t| deadline < t) {
                self.resend_at = Some(deadline);
            }
        }
        wire
    }

    fn transmit_resend(&mut self, i: usize, now: Instant) -> Bytes {
        let len = self.unacked[i].bytes.len();
        let n = self.piggyback_count(len);
        self.reserve_arena(len + 4 * n + 1);
        self.arena.extend_from_slice(&self.unacked[i].bytes);
        self.arena[0] = (self.arena[0] & !FLAG_ACKS) | FLAG_RESENT;
        self.append_pending_acks(n);
        let wire = self.finish_datagram();
        self.buckets.spend(Category::Resend, wire.len());
        self.stats.resent += 1;
        let e = &mut self.unacked[i];
        e.resends += 1;
        e.state = SentState::InFlight;
        e.sent_at = now;
        e.deadline = now + self.rtt.backed_off(e.resends);
        let deadline = e.deadline;
        if self.resend_at.is_none_or(|t| deadline < t) {
            self.resend_at = Some(deadline);
        }
        wire
    }

    fn encode_unreliable(&mut self, message: Message) {
        let mut packet = Packet::new(message);
        packet.sequence = self.take_seq();
        self.reserve_arena(64);
        // Pings, pongs, acks and CloseCircuit always encode.
        let _ = packet.encode(&mut self.arena);
    }

    fn transmit_control(&mut self, c: Control) -> Bytes {
        let message: Message = match c {
            Control::Ping(ping_id, oldest_unacked) => StartPingCheck {
                ping_id: start_ping_check::PingId {
                    ping_id,
                    oldest_unacked,
                },
            }
            .into(),
            Control::Pong(ping_id) => CompletePingCheck {
                ping_id: complete_ping_check::PingId { ping_id },
            }
            .into(),
            Control::Close => CloseCircuit.into(),
        };
        self.encode_unreliable(message);
        let n = self.piggyback_count(self.arena.len());
        self.append_pending_acks(n);
        self.finish_datagram()
    }

    fn transmit_packet_ack(&mut self, now: Instant) -> Bytes {
        let n = self.pending_acks.len().min(MAX_APPENDED_ACKS);
        let packets = self
            .pending_acks
            .drain(..n)
            .map(|id| packet_ack::Packets { id })
            .collect();
        // What is left has waited as long as what went: send it next.
        self.ack_deadline = if self.pending_acks.is_empty() {
            None
        } else {
            Some(now)
        };
        self.encode_unreliable(PacketAck { packets }.into());
        self.finish_datagram()
    }

    fn check_drained(&mut self) {
        if matches!(self.state, State::Closing { .. })
            && self.queued_total == 0
            && self.in_flight == 0
            && self.resend_queue.is_empty()
        {
            self.finish(CloseReason::Local);
        }
    }

    /// Closes now: every reliable send not yet acked is reported as given up.
    fn finish(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        for e in self.unacked.drain(..) {
            if e.state != SentState::Done {
                self.stats.given_up += 1;
                self.events.push_back(Event::GaveUp {
                    id: e.id,
                    message: message_id(&e.bytes),
                });
            }
        }
        for q in self.queues.iter_mut().flat_map(|q| q.drain(..)) {
            if q.reliable {
                self.stats.given_up += 1;
                self.events.push_back(Event::GaveUp {
                    id: q.id,
                    message: message_id(&q.bytes),
                });
            }
        }
        self.queued_total = 0;
        self.in_flight = 0;
        self.resend_queue.clear();
        self.resend_at = None;
        self.control.retain(|c| matches!(c, Control::Pong(_)));
        if reason != CloseReason::PeerClosed {
            self.control.push_back(Control::Close);
        }
        self.state = State::Closed;
        self.events.push_back(Event::Closed(reason));
    }
}

/// The message number of an encoded packet (for reports); `PacketAck`'s if unreadable.
fn message_id(bytes: &[u8]) -> MessageId {
    opensim_packet::Header::peek(bytes).map_or(PacketAck::ID, |h| h.id)
}
