//! Helpers shared by the circuit's socket tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::future;
use opensim_circuit::{Connection, Event, Reliability};
use opensim_messages::{Message, TestMessage, UseCircuitCode, use_circuit_code};

/// 127.0.0.1, any free port.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A TestMessage carrying `n`, to check order and exactly-once delivery.
pub fn numbered(n: u32) -> TestMessage {
    let mut m = TestMessage::default();
    m.test_block1.test1 = n;
    m
}

/// The datagram that opens a server circuit.
pub fn hello(code: u32) -> UseCircuitCode {
    UseCircuitCode {
        circuit_code: use_circuit_code::CircuitCode {
            code,
            ..Default::default()
        },
    }
}

/// Which events besides numbered messages a receiving side may see.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Only the client's `UseCircuitCode`: anything else fails the test.
    Clean,
    /// Also silence reports, which an impaired network may cause.
    Silences,
}

/// Sends the numbered messages of `range`, reliably.
pub async fn send_all(conn: &Connection, range: std::ops::Range<u32>) {
    for n in range {
        conn.send(numbered(n), Reliability::Reliable).await.unwrap();
    }
}

/// Receives until `count` numbered messages arrived, failing on any second delivery.
pub async fn receive(conn: &Connection, count: usize, expect: Expect) -> HashSet<u32> {
    let mut seen = HashSet::with_capacity(count);
    while seen.len() < count {
        match conn.recv().await.unwrap() {
            Event::Message(Message::TestMessage(m)) => {
                assert!(seen.insert(m.test_block1.test1), "duplicate delivery");
            }
            Event::Message(Message::UseCircuitCode(_)) => {}
            Event::PeerSilent { .. } if expect == Expect::Silences => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    seen
}

/// Waits until every reliable send of `conn` is acked.
pub async fn acked(conn: &Connection, total: u64) {
    loop {
        let s = conn.stats();
        assert_eq!(s.given_up, 0);
        if s.acked >= total && s.in_flight == 0 {
            return;
        }
        async_io::Timer::after(Duration::from_millis(5)).await;
    }
}

/// `n` numbered reliable messages each way at once between the client side `c` (which
/// already sent one `UseCircuitCode`) and the server side `s`; each arrives exactly once and
/// every one is acknowledged.
pub async fn exchange(c: &Connection, s: &Connection, n: u32, expect: Expect) {
    let ((by_server, by_client), _) = future::zip(
        future::zip(
            receive(s, n as usize, expect),
            receive(c, n as usize, expect),
        ),
        future::zip(send_all(c, 0..n), send_all(s, 0..n)),
    )
    .await;
    assert_eq!(by_server, (0..n).collect());
    assert_eq!(by_client, (0..n).collect());
    future::zip(acked(c, u64::from(n) + 1), acked(s, u64::from(n))).await;
}
