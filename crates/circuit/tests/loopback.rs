//! Real UDP on 127.0.0.1: endpoints, their driver tasks, and circuits end to end.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_lite::future;
use opensim_circuit::{CloseReason, Config, Endpoint, EndpointConfig, Event, Reliability};
use opensim_messages::Message;

mod common;

use common::{Expect, acked, any_port, exchange, hello, numbered, receive, send_all};

/// Settings for fast local tests: short resend timeout, no throttle.
fn local(mut c: Config) -> Config {
    c.min_rto = Duration::from_millis(100);
    c.initial_rto = Duration::from_millis(200);
    c.throttle = None;
    c
}

fn endpoints() -> (Endpoint, Endpoint) {
    let mut sc = EndpointConfig::server();
    sc.server = Some(local(Config::server()));
    let server = Endpoint::bind(any_port(), sc).unwrap();
    let mut cc = EndpointConfig::client();
    cc.client = local(Config::client());
    let client = Endpoint::bind(any_port(), cc).unwrap();
    (server, client)
}

#[test]
fn two_circuits_exchange_100_000_reliable_messages() {
    const EACH_WAY: u32 = 50_000;
    smol::block_on(async {
        let (server, client) = endpoints();
        let c = client.connect(server.local_addr().unwrap()).unwrap();
        c.send(hello(7), Reliability::Reliable).await.unwrap();
        let s = server.accept().await.unwrap();
        assert_eq!(s.remote_addr(), client.local_addr().unwrap());
        assert!(matches!(
            s.recv().await,
            Some(Event::Message(Message::UseCircuitCode(m))) if m.circuit_code.code == 7
        ));

        exchange(&c, &s, EACH_WAY, Expect::Clean).await;
        let cs = c.stats();
        assert_eq!(cs.delivered, u64::from(EACH_WAY));
        assert_eq!(s.stats().delivered, u64::from(EACH_WAY) + 1);

        // Clean close: the server hears CloseCircuit.
        c.close().await;
        assert!(c.is_closed());
        loop {
            match s.recv().await {
                Some(Event::Closed(reason)) => {
                    assert_eq!(reason, CloseReason::PeerClosed);
                    break;
                }
                Some(_) => {}
                None => panic!("closed without an event"),
            }
        }
        assert_eq!(s.recv().await, None);
        assert_eq!(c.recv().await, Some(Event::Closed(CloseReason::Local)));
        client.shutdown().await;
        server.shutdown().await;
        assert!(matches!(
            c.send(numbered(1), Reliability::Reliable).await,
            Err(opensim_circuit::SendError::Closed)
        ));
    });
}

#[test]
fn one_socket_serves_many_circuits() {
    const CLIENTS: u32 = 24;
    const EACH: u32 = 300;
    smol::block_on(async {
        let mut sc = EndpointConfig::server();
        sc.server = Some(local(Config::server()));
        let server = Endpoint::bind(any_port(), sc).unwrap();
        let addr = server.local_addr().unwrap();
        // One client socket, many circuits too: each client endpoint talks to the server, and
        // a single extra endpoint opens circuits to several servers.
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let mut cc = EndpointConfig::client();
            cc.client = local(Config::client());
            let ep = Endpoint::bind(any_port(), cc).unwrap();
            let conn = ep.connect(addr).unwrap();
            conn.send(hello(i), Reliability::Reliable).await.unwrap();
            clients.push((ep, conn));
        }
        let mut accepted = Vec::new();
        for _ in 0..CLIENTS {
            accepted.push(server.accept().await.unwrap());
        }
        assert_eq!(server.stats().circuits, CLIENTS as usize);

        let sends = clients.iter().map(|(_, c)| send_all(c, 0..EACH));
        let recvs = accepted
            .iter()
            .map(|s| receive(s, EACH as usize, Expect::Clean));
        let (_, got) = future::zip(join_all(sends.collect()), join_all(recvs.collect())).await;
        for g in got {
            assert_eq!(g, (0..EACH).collect());
        }
        for (ep, c) in &clients {
            acked(c, u64::from(EACH) + 1).await;
            c.close().await;
            ep.shutdown().await;
        }
        server.shutdown().await;
        assert_eq!(server.stats().circuits, 0);
    });
}

/// Polls many futures at once (the receivers must all run while the senders do).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut tasks: Vec<_> = futures.into_iter().map(|f| Box::pin(f)).collect();
    let mut out: Vec<Option<F::Output>> = tasks.iter().map(|_| None).collect();
    future::poll_fn(|cx| {
        let mut pending = false;
        for (t, o) in tasks.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match t.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

use futures_lite::StreamExt;

#[test]
fn a_vanished_peer_is_reported_and_times_out() {
    smol::block_on(async {
        let (server, client) = endpoints();
        let mut config = local(Config::client());
        config.keepalive_interval = Duration::from_millis(100);
        config.silence_warning = Duration::from_millis(300);
        config.idle_timeout = Duration::from_millis(900);
        let c = client
            .connect_with(server.local_addr().unwrap(), config)
            .unwrap();
        c.send(hello(1), Reliability::Reliable).await.unwrap();
        let s = server.accept().await.unwrap();
        assert!(matches!(s.recv().await, Some(Event::Message(_))));
        acked(&c, 1).await;
        // The server vanishes without a word.
        drop(s);
        drop(server);
        let mut events = Box::pin(c.events());
        let mut seen = Vec::new();
        while let Some(e) = events.next().await {
            seen.push(e);
        }
        assert!(matches!(seen[0], Event::PeerSilent { .. }), "{seen:?}");
        assert_eq!(seen.last(), Some(&Event::Closed(CloseReason::TimedOut)));
        client.shutdown().await;
    });
}

#[test]
fn unknown_senders_need_use_circuit_code() {
    smol::block_on(async {
        let (server, client) = endpoints();
        let c = client.connect(server.local_addr().unwrap()).unwrap();
        c.send(numbered(1), Reliability::Reliable).await.unwrap();
        // Wait until the server has seen it and its resend: it must ignore both.
        while server.stats().unrouted < 2 {
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
        assert!(c.stats().resent >= 1);
        assert_eq!(server.stats().circuits, 0);
        c.send(hello(3), Reliability::Reliable).await.unwrap();
        let s = server.accept().await.unwrap();
        let first = s.recv().await.unwrap();
        assert!(
            matches!(first, Event::Message(Message::UseCircuitCode(_))),
            "{first:?}"
        );
        // The earlier message is still resent and now delivered.
        assert!(matches!(
            s.recv().await.unwrap(),
            Event::Message(Message::TestMessage(_))
        ));
        server.shutdown().await;
        client.shutdown().await;
    });
}

#[test]
fn an_offloading_endpoint_and_a_plain_one_interoperate() {
    const EACH_WAY: u32 = 20_000;
    smol::block_on(async {
        let mut sc = EndpointConfig::server();
        sc.server = Some(local(Config::server()));
        sc.udp_offload = false;
        let server = Endpoint::bind(any_port(), sc).unwrap();
        let mut cc = EndpointConfig::client();
        cc.client = local(Config::client());
        let client = Endpoint::bind(any_port(), cc).unwrap();
        let c = client.connect(server.local_addr().unwrap()).unwrap();
        c.send(hello(9), Reliability::Reliable).await.unwrap();
        let s = server.accept().await.unwrap();
        assert!(matches!(
            s.recv().await,
            Some(Event::Message(Message::UseCircuitCode(_)))
        ));
        exchange(&c, &s, EACH_WAY, Expect::Clean).await;
        let (cs, ss) = (client.stats(), server.stats());
        // The plain side neither sends offloaded nor reads coalesced.
        assert_eq!(ss.datagrams_sent_offloaded, 0);
        assert_eq!(ss.datagrams_received_coalesced, 0);
        assert!(ss.datagrams_received >= u64::from(EACH_WAY));
        if cfg!(target_os = "linux") {
            // Equal-size TestMessages back to back form runs.
            assert!(cs.datagrams_sent_offloaded > 0, "{cs:?}");
        } else {
            assert_eq!(cs.datagrams_sent_offloaded, 0);
        }
        assert!(cs.datagrams_sent_offloaded <= cs.datagrams_sent);
        client.shutdown().await;
        server.shutdown().await;
    });
}
