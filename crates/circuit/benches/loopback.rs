//! Reliable messages per second between two circuits over 127.0.0.1 in one process, CPU time
//! per message, the core alone (no sockets), and the memory an idle circuit holds.
//!
//! `cargo bench -p opensim-circuit --bench loopback`
//!
//! Before divan's table it prints a summary measured by hand: wall time and process CPU time
//! (user + system, all threads, from `/proc/self/stat`) for 200 000 reliable messages, and the
//! heap retained by an idle circuit as counted by the global allocator.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use divan::Bencher;
use divan::counter::ItemsCount;
use futures_lite::future;
use opensim_circuit::{Circuit, Config, Connection, Endpoint, EndpointConfig, Event, Reliability};
use opensim_messages::{Message, TestMessage, UseCircuitCode};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    summary();
    divan::main();
}

fn numbered(n: u32) -> TestMessage {
    let mut m = TestMessage::default();
    m.test_block1.test1 = n;
    m
}

fn fast(mut c: Config) -> Config {
    c.throttle = None;
    c.min_rto = Duration::from_millis(100);
    c
}

/// A client endpoint with a circuit to a server endpoint, and the server's side of it.
fn pair() -> (Endpoint, Endpoint, Connection, Connection) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut sc = EndpointConfig::server();
    sc.server = Some(fast(Config::server()));
    let server = Endpoint::bind(any, sc).unwrap();
    let mut cc = EndpointConfig::client();
    cc.client = fast(Config::client());
    let client = Endpoint::bind(any, cc).unwrap();
    let c = client.connect(server.local_addr().unwrap()).unwrap();
    let s = smol::block_on(async {
        c.send(UseCircuitCode::default(), Reliability::Reliable)
            .await
            .unwrap();
        let s = server.accept().await.unwrap();
        s.recv().await.unwrap();
        s
    });
    (server, client, c, s)
}

/// Sends `n` reliable messages from `c` and waits until `s` has received them all.
fn transfer(c: &Connection, s: &Connection, n: u32) {
    smol::block_on(async {
        let send = async {
            for i in 0..n {
                c.send(numbered(i), Reliability::Reliable).await.unwrap();
            }
        };
        let recv = async {
            let mut got = 0;
            while got < n {
                if let Some(Event::Message(Message::TestMessage(_))) = s.recv().await {
                    got += 1;
                }
            }
        };
        future::zip(send, recv).await;
    });
}

/// Process CPU time (user + system, every thread) from `/proc/self/stat`, if readable.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration in use.
    Some(Duration::from_millis(ticks * 10))
}

/// Two idle cores after some traffic both ways; returns one, drops the other.
fn idle_circuit() -> Box<Circuit> {
    let t0 = Instant::now();
    let mut a = Box::new(Circuit::new(fast(Config::client()), t0));
    let mut b = Circuit::new(fast(Config::server()), t0);
    let mut now = t0;
    for round in 0..50u32 {
        for i in 0..20 {
            a.send(numbered(round * 20 + i), Reliability::Reliable)
                .unwrap();
            b.send(numbered(i), Reliability::Reliable).unwrap();
        }
        for _ in 0..3 {
            now += Duration::from_millis(50);
            a.handle_timeout(now);
            b.handle_timeout(now);
            while let Some(d) = a.poll_transmit(now) {
                b.handle_datagram(now, d);
            }
            while let Some(d) = b.poll_transmit(now) {
                a.handle_datagram(now, d);
            }
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
        }
    }
    // Then a minute of keepalives only.
    for _ in 0..60 {
        now += Duration::from_secs(1);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(d) = a.poll_transmit(now) {
            b.handle_datagram(now, d);
        }
        while let Some(d) = b.poll_transmit(now) {
            a.handle_datagram(now, d);
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    }
    assert_eq!(a.stats().in_flight, 0);
    a
}

fn summary() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (server, client, c, s) = pair();
    transfer(&c, &s, 20_000); // warm-up
    let n = 200_000;
    let (client0, server0) = (client.stats(), server.stats());
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    transfer(&c, &s, n);
    let wall = t0.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(b, a)| b - a);
    eprintln!(
        "loopback: {n} reliable messages in {wall:?}: {:.0} msg/s",
        f64::from(n) / wall.as_secs_f64()
    );
    if let Some(cpu) = cpu {
        eprintln!(
            "  process CPU {cpu:?} (both circuits, both drivers, the sender): {:.2} us/message, {:.0} msg per CPU-second",
            cpu.as_secs_f64() * 1e6 / f64::from(n),
            f64::from(n) / cpu.as_secs_f64()
        );
    }
    let (client1, server1) = (client.stats(), server.stats());
    eprintln!(
        "  datagrams: sender sent {} received {}, receiver sent {} received {}; {:.3} datagrams per message",
        client1.datagrams_sent - client0.datagrams_sent,
        client1.datagrams_received - client0.datagrams_received,
        server1.datagrams_sent - server0.datagrams_sent,
        server1.datagrams_received - server0.datagrams_received,
        (client1.datagrams_sent - client0.datagrams_sent + server1.datagrams_sent
            - server0.datagrams_sent) as f64
            / f64::from(n)
    );
    let stats = c.stats();
    eprintln!(
        "  sender: resent {} given up {} srtt {:?}; receiver dropped {} (events full); send errors {}; offloaded {} coalesced {}",
        stats.resent,
        stats.given_up,
        stats.srtt,
        s.stats().dropped,
        client1.send_errors + server1.send_errors,
        client1.datagrams_sent_offloaded - client0.datagrams_sent_offloaded,
        server1.datagrams_received_coalesced - server0.datagrams_received_coalesced,
    );
    let idle = idle_circuit();
    eprintln!(
        "idle circuit: size_of {} B + heap {} B (estimate from capacities)",
        std::mem::size_of::<Circuit>(),
        idle.heap_bytes()
    );
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn loopback_reliable(bencher: Bencher) {
    let (_server, _client, c, s) = pair();
    const N: u32 = 20_000;
    bencher
        .counter(ItemsCount::new(N))
        .bench_local(|| transfer(&c, &s, N));
}

/// The two cores alone, datagrams handed across in memory: the protocol cost without
/// syscalls.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn core_only_reliable(bencher: Bencher) {
    const N: u32 = 10_000;
    let t0 = Instant::now();
    let mut a = Circuit::new(fast(Config::client()), t0);
    let mut b = Circuit::new(fast(Config::server()), t0);
    let mut now = t0;
    bencher.counter(ItemsCount::new(N)).bench_local(|| {
        let mut sent = 0;
        let mut got = 0;
        while got < N {
            while sent < N && a.can_send() {
                a.send(numbered(sent), Reliability::Reliable).unwrap();
                sent += 1;
            }
            now += Duration::from_micros(50);
            while let Some(d) = a.poll_transmit(now) {
                b.handle_datagram(now, d);
            }
            while let Some(e) = b.poll_event() {
                if matches!(e, Event::Message(_)) {
                    got += 1;
                }
            }
            while let Some(d) = b.poll_transmit(now) {
                a.handle_datagram(now, d);
            }
            // The ack delay runs out now and then.
            now += Duration::from_micros(50);
            b.handle_timeout(now);
            a.handle_timeout(now);
        }
    });
}

/// An idle circuit after traffic both ways and a minute of keepalives: the allocation
/// profile's `alloc - dealloc` is the heap it keeps (the peer core is dropped inside).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn idle_circuit_memory() -> Box<Circuit> {
    idle_circuit()
}
