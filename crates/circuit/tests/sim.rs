//! Deterministic simulation: two circuit cores, a fake clock, and a seeded network that drops,
//! duplicates, delays and reorders datagrams.

#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opensim_circuit::{Circuit, CloseReason, Config, Event, Reliability, SendId};
use opensim_messages::{Message, TestMessage};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// xorshift64*: small, seedable, good enough to drive a network.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// One direction's behaviour.
#[derive(Clone, Copy)]
struct Link {
    loss: f64,
    duplicate: f64,
    delay: Duration,
    jitter: Duration,
    /// Drop everything (a dead peer).
    down: bool,
}

impl Link {
    fn lossy(loss: f64) -> Self {
        Link {
            loss,
            duplicate: 0.05,
            delay: ms(30),
            jitter: ms(80),
            down: false,
        }
    }
}

/// A datagram on its way: arrival time, tie-breaking order, destination side, bytes.
type InFlight = Reverse<(Instant, u64, usize, Vec<u8>)>;

struct Net {
    rng: Rng,
    links: [Link; 2],
    queue: BinaryHeap<InFlight>,
    order: u64,
}

impl Net {
    fn new(seed: u64, a_to_b: Link, b_to_a: Link) -> Self {
        Net {
            rng: Rng::new(seed),
            links: [a_to_b, b_to_a],
            queue: BinaryHeap::new(),
            order: 0,
        }
    }

    /// Sends `d` from side `from` (0 = A, 1 = B).
    fn send(&mut self, now: Instant, from: usize, d: Bytes) {
        let link = self.links[from];
        if link.down {
            return;
        }
        let copies = if self.rng.chance(link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rng.chance(link.loss) {
                continue;
            }
            // Jitter larger than the gap between packets reorders them.
            let jitter = self.rng.below(link.jitter.as_micros() as u64 + 1);
            let at = now + link.delay + Duration::from_micros(jitter);
            self.order += 1;
            self.queue
                .push(Reverse((at, self.order, 1 - from, d.to_vec())));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, ..))| *t)
    }

    fn pop_due(&mut self, now: Instant) -> Option<(usize, Bytes)> {
        if self.next_at()? > now {
            return None;
        }
        let Reverse((_, _, to, d)) = self.queue.pop()?;
        Some((to, Bytes::from(d)))
    }
}

fn numbered(n: u32) -> TestMessage {
    let mut m = TestMessage::default();
    m.test_block1.test1 = n;
    m
}

/// What one side saw.
#[derive(Default)]
struct Side {
    /// Delivery count per message number.
    delivered: BTreeMap<u32, u32>,
    acked: HashMap<SendId, u32>,
    gave_up: HashMap<SendId, u32>,
    silent: u32,
    closed: Option<CloseReason>,
}

struct Sim {
    t0: Instant,
    now: Instant,
    cores: [Circuit; 2],
    sides: [Side; 2],
    net: Net,
    /// Reliable sends of each side: id -> message number.
    sent: [HashMap<SendId, u32>; 2],
    unreliable_sent: [Vec<u32>; 2],
    /// When each side last received a datagram.
    last_rx: [Instant; 2],
}

impl Sim {
    fn new(seed: u64, config: Config, a_to_b: Link, b_to_a: Link) -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            cores: [Circuit::new(config.clone(), t0), Circuit::new(config, t0)],
            sides: [Side::default(), Side::default()],
            net: Net::new(seed, a_to_b, b_to_a),
            sent: [HashMap::new(), HashMap::new()],
            unreliable_sent: [Vec::new(), Vec::new()],
            last_rx: [t0; 2],
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Sends as much of `todo` as the queue takes; numbers >= 1_000_000 go unreliable.
    fn feed(&mut self, side: usize, todo: &mut std::ops::Range<u32>) {
        while self.cores[side].can_send() {
            let Some(n) = todo.next() else { break };
            let reliability = if n % 5 == 4 {
                Reliability::Unreliable
            } else {
                Reliability::Reliable
            };
            let id = self.cores[side].send(numbered(n), reliability).unwrap();
            match reliability {
                Reliability::Reliable => {
                    self.sent[side].insert(id, n);
                }
                Reliability::Unreliable => self.unreliable_sent[side].push(n),
            }
        }
    }

    /// Runs one step: transmits, deliveries, timers, events; then advances the clock to the
    /// next thing that happens (at most `max_step`).
    fn step(&mut self, max_step: Duration) {
        let now = self.now;
        for side in 0..2 {
            while let Some(d) = self.cores[side].poll_transmit(now) {
                self.net.send(now, side, d);
            }
        }
        while let Some((to, d)) = self.net.pop_due(now) {
            self.last_rx[to] = now;
            self.cores[to].handle_datagram(now, d);
        }
        for side in 0..2 {
            if self.cores[side].poll_timeout().is_some_and(|t| t <= now) {
                self.cores[side].handle_timeout(now);
            }
            while let Some(e) = self.cores[side].poll_event() {
                let s = &mut self.sides[side];
                assert!(s.closed.is_none(), "event after Closed: {e:?}");
                match e {
                    Event::Message(Message::TestMessage(m)) => {
                        *s.delivered.entry(m.test_block1.test1).or_default() += 1;
                    }
                    Event::Acked(id) => *s.acked.entry(id).or_default() += 1,
                    Event::GaveUp { id, .. } => *s.gave_up.entry(id).or_default() += 1,
                    Event::PeerSilent { .. } => s.silent += 1,
                    Event::Closed(r) => s.closed = Some(r),
                    _ => {}
                }
            }
        }
        // Anything still to transmit right now goes before the clock moves.
        for side in 0..2 {
            while let Some(d) = self.cores[side].poll_transmit(now) {
                self.net.send(now, side, d);
            }
        }
        let mut next = now + max_step;
        for t in [
            self.net.next_at(),
            self.cores[0].poll_timeout(),
            self.cores[1].poll_timeout(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        self.now = next.max(now + Duration::from_micros(1));
    }

    fn settled(&self) -> bool {
        self.cores.iter().all(|c| {
            let s = c.stats();
            s.in_flight == 0 && s.queued.iter().sum::<usize>() == 0 && s.resends_queued == 0
        })
    }
}

/// Both sides send `n` messages (a fifth unreliable) over lossy links and run until settled.
fn exchange(seed: u64, n: u32, config: Config, link: Link) -> Sim {
    let mut sim = Sim::new(seed, config, link, link);
    let mut todo = [0..n, 0..n];
    loop {
        for side in 0..2 {
            sim.feed(side, &mut todo[side]);
        }
        sim.step(ms(50));
        if todo.iter().all(|t| t.is_empty()) && sim.settled() {
            break;
        }
        assert!(sim.elapsed() < Duration::from_secs(3600), "no progress");
    }
    // Let the last acks and duplicates land.
    let end = sim.now + Duration::from_secs(5);
    while sim.now < end {
        sim.step(ms(50));
    }
    sim
}

fn check_reliable_accounting(sim: &Sim, side: usize, expect_all_acked: bool) {
    let peer = &sim.sides[1 - side];
    let me = &sim.sides[side];
    for (id, n) in &sim.sent[side] {
        let acked = me.acked.get(id).copied().unwrap_or(0);
        let gave_up = me.gave_up.get(id).copied().unwrap_or(0);
        assert_eq!(
            acked + gave_up,
            1,
            "send {id:?} (message {n}) acked {acked} times and given up {gave_up} times"
        );
        if acked == 1 {
            assert_eq!(
                peer.delivered.get(n),
                Some(&1),
                "acked message {n} delivered once"
            );
        }
        if expect_all_acked {
            assert_eq!(acked, 1, "message {n} acked");
        }
    }
    for n in sim.sent[side].values() {
        let count = peer.delivered.get(n).copied().unwrap_or(0);
        assert!(count <= 1, "reliable message {n} delivered {count} times");
    }
    // Unreliable messages carry no promise; a duplicating network may deliver them twice.
    for n in &sim.unreliable_sent[side] {
        assert!(peer.delivered.get(n).copied().unwrap_or(0) <= 2);
    }
}

fn lossy_config() -> Config {
    let mut c = Config::client();
    c.report_acks = true;
    c.max_resends = None;
    c.min_rto = ms(200);
    c.max_queued = 256;
    c
}

#[test]
fn thirty_percent_loss_both_ways_delivers_every_reliable_message_exactly_once() {
    let n = 3000;
    let sim = exchange(7, n, lossy_config(), Link::lossy(0.30));
    for side in 0..2 {
        check_reliable_accounting(&sim, side, true);
        let delivered = &sim.sides[1 - side].delivered;
        for (id, m) in &sim.sent[side] {
            assert_eq!(delivered.get(m), Some(&1), "{id:?}");
        }
        let s = sim.cores[side].stats();
        assert!(s.resent > 0 && s.duplicates > 0);
        // Round-trip loss at 30% each way is about 51%.
        assert!(s.loss() > 0.35 && s.loss() < 0.65, "loss {}", s.loss());
        assert!(sim.sides[side].closed.is_none());
        assert_eq!(sim.cores[side].stats().given_up, 0);
    }
}

#[test]
fn with_a_give_up_limit_every_send_is_acked_or_reported() {
    let mut config = lossy_config();
    config.max_resends = Some(2);
    let sim = exchange(11, 2000, config, Link::lossy(0.30));
    let mut given_up = 0;
    for side in 0..2 {
        check_reliable_accounting(&sim, side, false);
        given_up += sim.sides[side].gave_up.len();
    }
    // (1 - 0.7^2)^3 of 3200 sends: about 13% should give up.
    assert!(given_up > 100, "{given_up}");
}

#[test]
fn resend_timeout_follows_the_round_trip() {
    let mut config = lossy_config();
    config.min_rto = ms(50);
    config.max_rto = Duration::from_secs(20);
    config.ack_delay = ms(10);
    let fast = Link {
        loss: 0.0,
        duplicate: 0.0,
        delay: ms(40),
        jitter: ms(5),
        down: false,
    };
    let mut sim = Sim::new(3, config, fast, fast);
    let mut next = 0;
    let mut feed_at = sim.now;
    let mut run_for = |sim: &mut Sim, d: Duration| {
        let end = sim.now + d;
        while sim.now < end {
            // A steady 250 messages per second of simulated time.
            if sim.now >= feed_at {
                sim.feed(0, &mut (next..next + 5));
                next += 5;
                feed_at += ms(20);
            }
            sim.step(ms(20));
        }
    };
    run_for(&mut sim, Duration::from_secs(20));
    let rto_fast = sim.cores[0].rto();
    let srtt_fast = sim.cores[0].stats().srtt.unwrap();
    assert!(srtt_fast >= ms(80) && srtt_fast < ms(110), "{srtt_fast:?}");
    assert!(rto_fast < ms(300), "{rto_fast:?}");

    sim.net.links = [Link {
        delay: ms(600),
        ..fast
    }; 2];
    run_for(&mut sim, Duration::from_secs(30));
    let rto_slow = sim.cores[0].rto();
    let srtt_slow = sim.cores[0].stats().srtt.unwrap();
    assert!(
        srtt_slow >= ms(1150) && srtt_slow < ms(1300),
        "{srtt_slow:?}"
    );
    assert!(rto_slow > srtt_slow && rto_slow < ms(2500), "{rto_slow:?}");

    sim.net.links = [fast; 2];
    run_for(&mut sim, Duration::from_secs(30));
    assert!(sim.cores[0].rto() < ms(300), "{:?}", sim.cores[0].rto());
    // Let the last sends be acked; nothing was given up.
    while !sim.settled() {
        sim.step(ms(20));
    }
    assert!(sim.sides[0].gave_up.is_empty());
    check_reliable_accounting(&sim, 0, false);
}

#[test]
fn a_peer_that_stops_answering_is_detected() {
    let mut config = lossy_config();
    config.max_resends = Some(3);
    let link = Link::lossy(0.1);
    let mut sim = Sim::new(5, config, link, link);
    let mut next = 0;
    while sim.elapsed() < Duration::from_secs(20) {
        // A steady trickle both ways, so the peer is heard from until it dies.
        for side in 0..2 {
            sim.feed(side, &mut (next..next + 1));
        }
        next += 1;
        sim.step(ms(50));
    }
    assert!(
        sim.sides
            .iter()
            .all(|s| s.silent == 0 && s.closed.is_none())
    );
    // B goes dead; A keeps sending.
    sim.net.links[1].down = true;
    let died = sim.now;
    let mut more = 1_000_000..1_000_100;
    let mut silent_at = None;
    let mut closed_at = None;
    while closed_at.is_none() {
        sim.feed(0, &mut more);
        let at = sim.now;
        sim.step(ms(50));
        if silent_at.is_none() && sim.sides[0].silent > 0 {
            silent_at = Some(at - sim.last_rx[0]);
        }
        if sim.sides[0].closed.is_some() {
            closed_at = Some(at - sim.last_rx[0]);
        }
        assert!(sim.now - died < Duration::from_secs(60));
    }
    let silent_at = silent_at.unwrap();
    // Reported exactly when due: the clock stops at every timer the circuit asks for.
    assert_eq!(silent_at, Duration::from_secs(10));
    assert_eq!(closed_at, Some(Duration::from_secs(30)));
    assert!(sim.last_rx[0] - died < ms(200));
    assert_eq!(sim.sides[0].closed, Some(CloseReason::TimedOut));
    // Every reliable send of A is accounted for, none silently dropped.
    check_reliable_accounting(&sim, 0, false);
}

#[test]
fn idle_circuits_keep_each_other_alive_through_loss() {
    let mut server = Config::server();
    server.throttle = None;
    let mut sim = Sim::new(9, server, Link::lossy(0.3), Link::lossy(0.3));
    // Ten minutes with no application traffic at all.
    while sim.elapsed() < Duration::from_secs(600) {
        sim.step(Duration::from_secs(1));
    }
    for side in 0..2 {
        assert!(sim.sides[side].closed.is_none());
        let s = sim.cores[side].stats();
        assert!(s.pings_sent >= 100 && s.pings_answered > 30, "{s:?}");
        assert!(s.srtt.is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn any_seed_and_loss_keeps_exactly_once(
        seed in any::<u64>(),
        loss in 0.0f64..0.5,
        duplicate in 0.0f64..0.3,
        jitter in 0u64..300,
        limit in prop::option::of(0u32..4),
    ) {
        let mut config = lossy_config();
        config.max_resends = limit;
        config.max_in_flight = 64;
        let link = Link { loss, duplicate, delay: ms(10), jitter: ms(jitter), down: false };
        let sim = exchange(seed, 300, config, link);
        for side in 0..2 {
            check_reliable_accounting(&sim, side, limit.is_none());
        }
    }
}
