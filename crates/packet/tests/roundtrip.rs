#![allow(clippy::unwrap_used)]
//! Every message of the template: random values encode then decode to equal values, with and
//! without zero-coding and appended acks, and the re-encoding is byte-identical.

use opensim_messages::{MESSAGES, strategy::message_strategy};
use opensim_packet::{Acks, Packet, ZeroCoding};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn every_message_round_trips_through_the_codec() {
    let cases = std::cell::Cell::new(0usize);
    for info in MESSAGES {
        // A runner per message: a runner's case budget is shared by all its runs.
        let mut runner = TestRunner::new(Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            message_strategy(info.id).unwrap(),
            any::<u32>(),
            any::<bool>(),
            prop_oneof![
                Just(ZeroCoding::Never),
                Just(ZeroCoding::IfSmaller),
                Just(ZeroCoding::Always)
            ],
            proptest::collection::vec(any::<u32>(), 0..20),
        );
        runner
            .run(
                &strategy,
                |(message, sequence, reliable, zero_coding, acks)| {
                    cases.set(cases.get() + 1);
                    let mut p = Packet::new(message);
                    p.sequence = sequence;
                    p.reliable = reliable;
                    p.zero_coding = zero_coding;
                    p.acks = Acks::from_ids(&acks);
                    let wire = p.to_bytes().unwrap();
                    let plain = p.message.id().wire_len() + p.message.encoded_len();
                    if wire[0] & 0x80 != 0 && plain > opensim_packet::zerocode::MAX_DECODED_LEN {
                        // Receivers bound zero-decoding to 8 KiB; a random message can be
                        // larger, and then the refusal is the expected outcome.
                        let refused = matches!(
                            Packet::decode(&wire),
                            Err(opensim_packet::DecodeError::ZeroCode(
                                opensim_packet::zerocode::ZeroCodeError::TooLarge { .. }
                            ))
                        );
                        prop_assert!(refused, "an oversized zero-coded packet must be refused");
                        return Ok(());
                    }
                    let back = Packet::decode(&wire)
                        .map_err(|e| TestCaseError::fail(format!("{}: {e}", info.name)))?;
                    prop_assert_eq!(&back.message, &p.message, "{}", info.name);
                    prop_assert_eq!(back.sequence, sequence);
                    prop_assert_eq!(back.reliable, reliable);
                    prop_assert_eq!(back.acks.iter().collect::<Vec<_>>(), acks);
                    prop_assert!(back.trailing.is_empty());
                    match zero_coding {
                        ZeroCoding::Always => prop_assert_eq!(wire[0] & 0x80, 0x80),
                        ZeroCoding::Never => prop_assert_eq!(wire[0] & 0x80, 0),
                        ZeroCoding::IfSmaller => {}
                    }
                    // What was decoded re-encodes to the same datagram.
                    prop_assert_eq!(back.to_bytes().unwrap(), wire);
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
    }
    assert!(
        cases.get() >= MESSAGES.len() * 12,
        "ran {} cases",
        cases.get()
    );
}

#[test]
fn hostile_datagrams_never_panic() {
    let mut runner = TestRunner::default();
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..1500), |bytes| {
            opensim_packet::fuzz_support::packet_decode(&bytes);
            Ok(())
        })
        .unwrap();
    // Flags with every bit, message numbers of every class, truncated bodies.
    let mut runner = TestRunner::default();
    runner
        .run(
            &(
                any::<u8>(),
                prop_oneof![
                    Just(vec![1u8]),
                    Just(vec![0xFF, 2]),
                    Just(vec![0xFF, 0xFF, 0, 148]),
                    Just(vec![0xFF, 0xFF, 0xFF, 0xFB])
                ],
                proptest::collection::vec(any::<u8>(), 0..64),
            ),
            |(flags, id, body)| {
                let mut d = vec![flags, 0, 0, 0, 1, 0];
                d.extend(id);
                d.extend(body);
                opensim_packet::fuzz_support::packet_decode(&d);
                Ok(())
            },
        )
        .unwrap();
}
