//! Helpers shared by the circuit's socket tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use opensim_messages::{TestMessage, UseCircuitCode, use_circuit_code};

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
