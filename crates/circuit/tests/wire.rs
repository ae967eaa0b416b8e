//! The endpoint's wire features on real 127.0.0.1 sockets: the datagram tap, injected
//! impairment (loss, duplication, delay), and SOCKS5 UDP ASSOCIATE through a small proxy
//! written here.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use opensim_circuit::socks5::{self, Socks5Error};
use opensim_circuit::{
    Config, Connection, Direction, Endpoint, EndpointConfig, EndpointStats, Event, Impairment,
    Reliability, Tap,
};
use opensim_messages::Message;
use opensim_packet::Packet;

mod common;

use common::{Expect, any_port, exchange, hello, numbered};

/// Short timers so that losses are repaired quickly; resend until acked.
fn local(mut c: Config) -> Config {
    c.min_rto = Duration::from_millis(30);
    c.initial_rto = Duration::from_millis(60);
    // A low ceiling keeps backoff after several losses in a row from stretching the test.
    c.max_rto = Duration::from_millis(250);
    c.max_resends = None;
    c.throttle = None;
    c
}

/// One tapped datagram.
type Tapped = (Direction, SocketAddr, SocketAddr, Vec<u8>);

/// A tap that keeps everything.
#[derive(Default)]
struct Recorder(Mutex<Vec<Tapped>>);

impl Tap for Recorder {
    fn datagram(&self, direction: Direction, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((direction, local, remote, bytes.to_vec()));
    }
}

impl Recorder {
    fn all(&self) -> Vec<Tapped> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, direction: Direction) -> u64 {
        self.all().iter().filter(|t| t.0 == direction).count() as u64
    }
}

struct Side {
    config: EndpointConfig,
    tap: Arc<Recorder>,
}

fn side(server: bool, impairment: Option<Impairment>) -> Side {
    let mut config = if server {
        let mut c = EndpointConfig::server();
        c.server = Some(local(Config::server()));
        c
    } else {
        EndpointConfig::client()
    };
    config.client = local(Config::client());
    config.impairment = impairment;
    let tap = Arc::new(Recorder::default());
    config.tap = Some(tap.clone() as Arc<dyn Tap>);
    Side { config, tap }
}

/// Opens a circuit from `client` to `server` (at `server_addr`) and returns both ends.
async fn open(
    client: &Endpoint,
    server: &Endpoint,
    server_addr: SocketAddr,
) -> (Connection, Connection) {
    let c = client.connect(server_addr).unwrap();
    c.send(hello(7), Reliability::Reliable).await.unwrap();
    let s = server.accept().await.unwrap();
    (c, s)
}

/// Waits until `f` holds of the endpoint's counters.
async fn until(endpoint: &Endpoint, f: impl Fn(&EndpointStats) -> bool) {
    while !f(&endpoint.stats()) {
        Timer::after(Duration::from_millis(5)).await;
    }
}

/// The numbers of the TestMessages in a set of datagrams.
fn numbers<'a>(datagrams: impl Iterator<Item = &'a [u8]>) -> HashSet<u32> {
    datagrams
        .filter_map(|d| match Packet::decode(d).ok()?.message {
            Message::TestMessage(m) => Some(m.test_block1.test1),
            _ => None,
        })
        .collect()
}

fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Every datagram of `part`, counted with multiplicity, is also in `whole`.
fn multiset_within(part: &[&[u8]], whole: &[&[u8]]) -> bool {
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for d in whole {
        *counts.entry(d).or_default() += 1;
    }
    part.iter().all(|d| {
        let c = counts.entry(d).or_default();
        *c -= 1;
        *c >= 0
    })
}

#[test]
fn the_tap_sees_the_exact_bytes_both_ways_garbage_included() {
    smol::block_on(async {
        let (ss, cs) = (side(true, None), side(false, None));
        let server = Endpoint::bind(any_port(), ss.config).unwrap();
        let client = Endpoint::bind(any_port(), cs.config).unwrap();
        let (server_addr, client_addr) =
            (server.local_addr().unwrap(), client.local_addr().unwrap());
        let (c, s) = open(&client, &server, server_addr).await;
        exchange(&c, &s, 50, Expect::Silences).await;

        // Garbage from a stranger: tapped as received, byte for byte, then dropped unrouted.
        let stranger = UdpSocket::bind(any_port()).unwrap();
        let garbage = b"\x00\x01 not an LLUDP packet \xff".to_vec();
        stranger.send_to(&garbage, server_addr).unwrap();
        until(&server, |st| st.unrouted >= 1).await;

        client.shutdown().await;
        server.shutdown().await;

        let (ct, st) = (cs.tap.all(), ss.tap.all());
        let pick = |taps: &[Tapped], dir: Direction, local: SocketAddr, remote: SocketAddr| {
            taps.iter()
                .filter(|t| t.0 == dir && t.1 == local && t.2 == remote)
                .map(|t| t.3.clone())
                .collect::<Vec<_>>()
        };
        // Every record names this endpoint as local and the other as remote (or the stranger).
        assert!(ct.iter().all(|t| t.1 == client_addr && t.2 == server_addr));
        let stranger_addr = stranger.local_addr().unwrap();
        assert!(
            st.iter()
                .all(|t| t.1 == server_addr && (t.2 == client_addr || t.2 == stranger_addr))
        );
        assert_eq!(
            pick(&st, Direction::Received, server_addr, stranger_addr),
            vec![garbage]
        );

        let c_sent = pick(&ct, Direction::Sent, client_addr, server_addr);
        let c_recv = pick(&ct, Direction::Received, client_addr, server_addr);
        let s_sent = pick(&st, Direction::Sent, server_addr, client_addr);
        let s_recv = pick(&st, Direction::Received, server_addr, client_addr);
        // What one side read is exactly what the other sent (loopback may only lose the tail
        // written while the reader was shutting down).
        assert!(multiset_within(&refs(&s_recv), &refs(&c_sent)));
        assert!(multiset_within(&refs(&c_recv), &refs(&s_sent)));
        // And the messages are all there, in the bytes on both sides.
        for taps in [&c_sent, &s_recv, &s_sent, &c_recv] {
            assert_eq!(numbers(taps.iter().map(Vec::as_slice)), (0..50).collect());
        }
        let first = Packet::decode(&c_sent[0]).unwrap();
        assert!(matches!(first.message, Message::UseCircuitCode(_)));

        // The counters agree with the tap.
        assert_eq!(client.stats().datagrams_sent, cs.tap.count(Direction::Sent));
        assert_eq!(
            client.stats().datagrams_received,
            cs.tap.count(Direction::Received)
        );
        assert_eq!(server.stats().datagrams_sent, ss.tap.count(Direction::Sent));
        assert_eq!(
            server.stats().datagrams_received,
            ss.tap.count(Direction::Received)
        );
    });
}

#[test]
fn thirty_percent_loss_on_both_endpoints_still_delivers_exactly_once() {
    const N: u32 = 300;
    smol::block_on(async {
        let ss = side(true, Some(Impairment::new(0.3, 11)));
        let cs = side(false, Some(Impairment::new(0.3, 12)));
        let server = Endpoint::bind(any_port(), ss.config).unwrap();
        let client = Endpoint::bind(any_port(), cs.config).unwrap();
        let (c, s) = open(&client, &server, server.local_addr().unwrap()).await;
        exchange(&c, &s, N, Expect::Silences).await;
        client.shutdown().await;
        server.shutdown().await;

        for (endpoint, conn, tap) in [(&client, &c, &cs.tap), (&server, &s, &ss.tap)] {
            let es = endpoint.stats();
            let cs = conn.stats();
            assert!(es.impaired_dropped > 0, "{es:?}");
            assert!(cs.resent > 0, "{cs:?}");
            assert_eq!(es.impaired_duplicated, 0);
            assert_eq!(es.send_errors, 0);
            // Every datagram the circuit produced was either dropped or tapped on its way out.
            assert_eq!(es.datagrams_sent, tap.count(Direction::Sent));
            assert_eq!(
                cs.sent,
                es.impaired_dropped + es.datagrams_sent,
                "{es:?} {cs:?}"
            );
            // Roughly the configured share was dropped (n is in the hundreds at least).
            let share = es.impaired_dropped as f64 / cs.sent as f64;
            assert!((0.15..0.45).contains(&share), "{share}");
        }
        assert_eq!(s.stats().delivered, u64::from(N) + 1);
        assert_eq!(c.stats().delivered, u64::from(N));
    });
}

#[test]
fn duplication_never_delivers_twice() {
    const N: u32 = 200;
    smol::block_on(async {
        let dup = |seed| Impairment::new(0.0, seed).with_duplicate(1.0);
        let ss = side(true, Some(dup(3)));
        let cs = side(false, Some(dup(4)));
        let server = Endpoint::bind(any_port(), ss.config).unwrap();
        let client = Endpoint::bind(any_port(), cs.config).unwrap();
        let (c, s) = open(&client, &server, server.local_addr().unwrap()).await;
        exchange(&c, &s, N, Expect::Silences).await;
        client.shutdown().await;
        server.shutdown().await;

        for (endpoint, conn, tap) in [(&client, &c, &cs.tap), (&server, &s, &ss.tap)] {
            let es = endpoint.stats();
            assert_eq!(es.impaired_dropped, 0);
            assert_eq!(es.datagrams_sent, 2 * es.impaired_duplicated, "{es:?}");
            assert_eq!(conn.stats().sent, es.impaired_duplicated);
            // Each datagram went out as two identical copies.
            let sent: Vec<_> = tap
                .all()
                .into_iter()
                .filter(|t| t.0 == Direction::Sent)
                .map(|t| t.3)
                .collect();
            assert!(sent.chunks(2).all(|p| p.len() == 2 && p[0] == p[1]));
        }
        // Every reliable message arrived twice; the second copy was recognised.
        assert!(s.stats().duplicates >= u64::from(N), "{:?}", s.stats());
        assert!(c.stats().duplicates >= u64::from(N), "{:?}", c.stats());
        assert_eq!(s.stats().delivered, u64::from(N) + 1);
        assert_eq!(c.stats().delivered, u64::from(N));
    });
}

#[test]
fn delay_and_jitter_preserve_delivery() {
    const N: u32 = 200;
    let delay = Duration::from_millis(15);
    smol::block_on(async {
        let slow = |seed| Impairment::new(0.0, seed).with_delay(delay, Duration::from_millis(25));
        let ss = side(true, Some(slow(5)));
        let cs = side(false, Some(slow(6)));
        let server = Endpoint::bind(any_port(), ss.config).unwrap();
        let client = Endpoint::bind(any_port(), cs.config).unwrap();
        let (c, s) = open(&client, &server, server.local_addr().unwrap()).await;
        exchange(&c, &s, N, Expect::Silences).await;
        // Every round trip crosses two delays, so no sample can be shorter.
        let srtt = c.stats().srtt.unwrap();
        assert!(srtt >= 2 * delay, "{srtt:?}");
        client.shutdown().await;
        server.shutdown().await;
        for endpoint in [&client, &server] {
            let es = endpoint.stats();
            assert_eq!(es.impaired_dropped, 0);
            assert_eq!(es.impaired_delayed, 0, "shutdown drains the delay queue");
        }
        assert_eq!(cs.tap.count(Direction::Sent), c.stats().sent);
    });
}

#[test]
fn bind_refuses_invalid_impairment() {
    for bad in [
        Impairment::new(1.5, 0),
        Impairment::new(-0.1, 0),
        Impairment::new(0.1, 0).with_duplicate(f64::NAN),
    ] {
        let mut config = EndpointConfig::client();
        config.impairment = Some(bad);
        let e = Endpoint::bind(any_port(), config).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
    // Debug still works with a tap set.
    let mut config = EndpointConfig::client();
    config.tap = Some(Arc::new(Recorder::default()) as Arc<dyn Tap>);
    assert!(format!("{config:?}").contains("tap"));
}

// --- SOCKS5 ---------------------------------------------------------------------------

/// What the test proxy saw.
#[derive(Default)]
struct ProxyLog {
    /// Payloads relayed from the client, with the destination named in their header.
    to_dst: Mutex<Vec<(SocketAddr, Vec<u8>)>>,
    /// Payloads relayed to the client, with their source.
    from_dst: Mutex<Vec<(SocketAddr, Vec<u8>)>>,
    /// The client's UDP address as learnt from its first datagram.
    client: Mutex<Option<SocketAddr>>,
    relay: Mutex<Option<Arc<Async<UdpSocket>>>>,
    associations: AtomicU64,
}

/// How the test proxy behaves.
#[derive(Clone, Default)]
struct ProxyRules {
    credentials: Option<(String, String)>,
    /// REP code to answer UDP ASSOCIATE with (0 = success).
    reply: u8,
    /// Answer with BND.ADDR 0.0.0.0 (meaning the proxy's own host).
    unspecified_bind: bool,
    /// Close the control connection right after a successful reply.
    hang_up: bool,
}

/// A minimal SOCKS5 server (RFC 1928 / 1929, UDP ASSOCIATE only) on 127.0.0.1.
fn start_proxy(rules: ProxyRules) -> (SocketAddr, Arc<ProxyLog>, smol::Task<()>) {
    let listener = Async::<TcpListener>::bind(any_port()).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let log = Arc::new(ProxyLog::default());
    let l = log.clone();
    let task = smol::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (rules, log) = (rules.clone(), l.clone());
            smol::spawn(async move {
                let _ = proxy_session(stream, rules, log).await;
            })
            .detach();
        }
    });
    (addr, log, task)
}

async fn proxy_session(
    mut tcp: Async<TcpStream>,
    rules: ProxyRules,
    log: Arc<ProxyLog>,
) -> io::Result<()> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await?;
    assert_eq!(head[0], 5);
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await?;
    let wanted = if rules.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        tcp.write_all(&[5, 0xFF]).await?;
        return Ok(());
    }
    tcp.write_all(&[5, wanted]).await?;
    if let Some((user, pass)) = &rules.credentials {
        let mut b = [0u8; 2];
        tcp.read_exact(&mut b).await?;
        assert_eq!(b[0], 1);
        let mut u = vec![0u8; usize::from(b[1])];
        tcp.read_exact(&mut u).await?;
        let mut pl = [0u8; 1];
        tcp.read_exact(&mut pl).await?;
        let mut p = vec![0u8; usize::from(pl[0])];
        tcp.read_exact(&mut p).await?;
        let ok = u == user.as_bytes() && p == pass.as_bytes();
        tcp.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Ok(());
        }
    }
    let mut req = [0u8; 4];
    tcp.read_exact(&mut req).await?;
    assert_eq!(req[..3], [5, 3, 0], "UDP ASSOCIATE");
    let len = match req[3] {
        1 => 4,
        4 => 16,
        other => panic!("address type {other}"),
    };
    let mut rest = vec![0u8; len + 2];
    tcp.read_exact(&mut rest).await?;
    if rules.reply != 0 {
        tcp.write_all(&[5, rules.reply, 0, 1, 0, 0, 0, 0, 0, 0])
            .await?;
        return Ok(());
    }
    let relay = Arc::new(Async::<UdpSocket>::bind(any_port())?);
    let raddr = relay.get_ref().local_addr()?;
    let mut reply = vec![5, 0, 0, 1];
    let ip = if rules.unspecified_bind {
        [0, 0, 0, 0]
    } else {
        [127, 0, 0, 1]
    };
    reply.extend_from_slice(&ip);
    reply.extend_from_slice(&raddr.port().to_be_bytes());
    // Recorded before the reply, so the client never sees an association not yet logged.
    *log.relay.lock().unwrap() = Some(relay.clone());
    log.associations.fetch_add(1, Ordering::Relaxed);
    tcp.write_all(&reply).await?;
    if rules.hang_up {
        return Ok(());
    }

    // Relay until the client closes the control connection.
    let control_closed = async {
        let mut b = [0u8; 16];
        while !matches!(tcp.read(&mut b).await, Ok(0) | Err(_)) {}
        Ok(())
    };
    future::or(relay_loop(relay, log), control_closed).await
}

async fn relay_loop(relay: Arc<Async<UdpSocket>>, log: Arc<ProxyLog>) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = relay.recv_from(&mut buf).await?;
        let d = &buf[..n];
        let client = *log.client.lock().unwrap().get_or_insert(from);
        if from == client {
            // Client -> destination: RSV RSV FRAG ATYP(1) A A A A P P payload.
            assert_eq!(d[..4], [0, 0, 0, 1], "IPv4 header without fragmentation");
            let dst =
                SocketAddr::from(([d[4], d[5], d[6], d[7]], u16::from_be_bytes([d[8], d[9]])));
            log.to_dst.lock().unwrap().push((dst, d[10..].to_vec()));
            relay.send_to(&d[10..], dst).await?;
        } else {
            log.from_dst.lock().unwrap().push((from, d.to_vec()));
            let SocketAddr::V4(v4) = from else {
                panic!("IPv4 only")
            };
            let mut framed = vec![0, 0, 0, 1];
            framed.extend_from_slice(&v4.ip().octets());
            framed.extend_from_slice(&v4.port().to_be_bytes());
            framed.extend_from_slice(d);
            relay.send_to(&framed, client).await?;
        }
    }
}

#[test]
fn messages_flow_both_ways_through_a_socks5_relay() {
    smol::block_on(async {
        let (proxy, log, _proxy_task) = start_proxy(ProxyRules::default());
        let association = socks5::associate(proxy, None).await.unwrap();
        let relay = association.relay_addr();
        assert_eq!(relay.ip(), proxy.ip());

        let ss = side(true, None);
        let mut cs = side(false, None);
        cs.config.socks5_relay = Some(relay);
        let server = Endpoint::bind(any_port(), ss.config).unwrap();
        let client = Endpoint::bind(any_port(), cs.config).unwrap();
        let server_addr = server.local_addr().unwrap();
        let (c, s) = open(&client, &server, server_addr).await;
        // The simulator sees the relay; the client circuit is keyed by the simulator.
        assert_eq!(s.remote_addr(), relay);
        assert_eq!(c.remote_addr(), server_addr);
        exchange(&c, &s, 100, Expect::Silences).await;

        // A stranger's datagram and broken relay headers are dropped and counted.
        let stranger = UdpSocket::bind(any_port()).unwrap();
        stranger
            .send_to(b"hello", client.local_addr().unwrap())
            .unwrap();
        let relay_socket = log.relay.lock().unwrap().clone().unwrap();
        let client_addr = client.local_addr().unwrap();
        let good = Packet::new(numbered(1000)).to_bytes().unwrap();
        let mut fragment = vec![0, 0, 1, 1, 127, 0, 0, 1];
        fragment.extend_from_slice(&server_addr.port().to_be_bytes());
        fragment.extend_from_slice(&good);
        relay_socket.send_to(&fragment, client_addr).await.unwrap();
        relay_socket
            .send_to(&[0, 0, 0, 1, 127, 0], client_addr)
            .await
            .unwrap();
        relay_socket
            .send_to(&[0, 0, 0, 3, 4, b'h'], client_addr)
            .await
            .unwrap();
        until(&client, |st| st.socks5_dropped >= 4).await;

        c.close().await;
        client.shutdown().await;
        server.shutdown().await;
        drop(association);

        // The relay carried the messages both ways.
        let to_dst = log.to_dst.lock().unwrap().clone();
        let from_dst = log.from_dst.lock().unwrap().clone();
        assert!(to_dst.iter().all(|(dst, _)| *dst == server_addr));
        assert!(from_dst.iter().all(|(src, _)| *src == server_addr));
        assert_eq!(
            numbers(to_dst.iter().map(|(_, d)| d.as_slice())),
            (0..100).collect()
        );
        assert_eq!(
            numbers(from_dst.iter().map(|(_, d)| d.as_slice())),
            (0..100).collect()
        );
        assert_eq!(*log.client.lock().unwrap(), Some(client_addr));

        // The client's tap shows the simulator as the remote and the bare LLUDP payloads.
        let taps = cs.tap.all();
        assert!(taps.iter().all(|t| t.2 == server_addr));
        let sent: Vec<_> = taps
            .iter()
            .filter(|t| t.0 == Direction::Sent)
            .map(|t| t.3.clone())
            .collect();
        let relayed: Vec<_> = to_dst.into_iter().map(|(_, d)| d).collect();
        // The relay forwarded exactly what the client sent, and the client read exactly what
        // the relay forwarded (loopback may only lose a tail written during shutdown).
        assert!(multiset_within(&refs(&relayed), &refs(&sent)));
        let received: Vec<_> = taps
            .iter()
            .filter(|t| t.0 == Direction::Received)
            .map(|t| t.3.clone())
            .collect();
        let came: Vec<_> = from_dst.into_iter().map(|(_, d)| d).collect();
        assert!(multiset_within(&refs(&received), &refs(&came)));
        assert_eq!(
            numbers(received.iter().map(Vec::as_slice)),
            (0..100).collect()
        );
        let stats = client.stats();
        assert_eq!(stats.socks5_dropped, 4);
        assert_eq!(stats.datagrams_received, received.len() as u64 + 4);
    });
}

#[test]
fn socks5_handshake_errors_are_typed() {
    smol::block_on(async {
        let creds = ProxyRules {
            credentials: Some(("avatar".into(), "secret".into())),
            unspecified_bind: true,
            ..ProxyRules::default()
        };
        let (proxy, log, _t1) = start_proxy(creds);
        let a = socks5::associate(proxy, Some(("avatar", "secret")))
            .await
            .unwrap();
        // BND.ADDR 0.0.0.0 means the proxy's host.
        assert_eq!(a.relay_addr().ip(), proxy.ip());
        assert_ne!(a.relay_addr().port(), 0);
        assert_eq!(log.associations.load(Ordering::Relaxed), 1);
        assert!(matches!(
            socks5::associate(proxy, Some(("avatar", "wrong"))).await,
            Err(Socks5Error::AuthRejected)
        ));
        assert!(matches!(
            socks5::associate(proxy, None).await,
            Err(Socks5Error::NoAcceptableMethod)
        ));
        let long = "x".repeat(256);
        assert!(matches!(
            socks5::associate(proxy, Some((&long, "p"))).await,
            Err(Socks5Error::CredentialsTooLong)
        ));

        let (refusing, _, _t2) = start_proxy(ProxyRules {
            reply: 7,
            ..ProxyRules::default()
        });
        assert!(matches!(
            socks5::associate(refusing, None).await,
            Err(Socks5Error::Refused(7))
        ));

        // Nothing listening: an I/O error.
        let closed = TcpListener::bind(any_port()).unwrap().local_addr().unwrap();
        assert!(matches!(
            socks5::associate(closed, None).await,
            Err(Socks5Error::Io(_))
        ));

        // Not a SOCKS5 server: it answers with something else and hangs up.
        let liar = Async::<TcpListener>::bind(any_port()).unwrap();
        let liar_addr = liar.get_ref().local_addr().unwrap();
        let _liar = smol::spawn(async move {
            let (mut s, _) = liar.accept().await.unwrap();
            let mut b = [0u8; 3];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 400").await.unwrap();
        });
        assert!(matches!(
            socks5::associate(liar_addr, None).await,
            Err(Socks5Error::MalformedReply(_))
        ));

        // The association notices when the proxy hangs up.
        let (proxy2, _, _t3) = start_proxy(ProxyRules {
            hang_up: true,
            ..ProxyRules::default()
        });
        let a2 = socks5::associate(proxy2, None).await.unwrap();
        a2.closed().await;
        drop(a);
    });
}

/// The soft limit on open descriptors (Linux `/proc`), if readable.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(target_os = "linux")]
#[test]
fn fd_floor_moves_the_socket_above_the_low_descriptors() {
    const FLOOR: u32 = 1500;
    if open_files_limit().is_none_or(|l| l <= u64::from(FLOOR) + 16) {
        eprintln!("skipped: the open-files limit is below {FLOOR}");
        return;
    }
    let high = || -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|fd| *fd >= FLOOR)
            .count()
    };
    let before = high();
    let mut config = EndpointConfig::client();
    config.fd_floor = Some(FLOOR);
    let a = Endpoint::bind(any_port(), config).unwrap();
    assert_eq!(high(), before + 1, "the socket was not moved above {FLOOR}");
    // And it still works: a round trip through it.
    let b = Endpoint::bind(any_port(), EndpointConfig::server()).unwrap();
    smol::block_on(async {
        let conn = a.connect(b.local_addr().unwrap()).unwrap();
        conn.send(hello(7), Reliability::Reliable).await.unwrap();
        conn.send(numbered(7), Reliability::Reliable).await.unwrap();
        let server = b.accept().await.unwrap();
        loop {
            if let Event::Message(Message::TestMessage(m)) = server.recv().await.unwrap() {
                assert_eq!(m.test_block1.test1, 7);
                break;
            }
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}
