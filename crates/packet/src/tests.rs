//! Unit tests of the framing rules.
#![allow(clippy::unwrap_used)]

use super::*;
use opensim_messages::{Blocks, PacketAck, StartPingCheck, packet_ack, start_ping_check};

fn ping() -> Message {
    StartPingCheck {
        ping_id: start_ping_check::PingId {
            ping_id: 5,
            oldest_unacked: 0,
        },
    }
    .into()
}

#[test]
fn header_layout_and_flags() {
    let mut p = Packet::new(ping());
    p.sequence = 0x0102_0304;
    p.reliable = true;
    p.resent = true;
    let wire = p.to_bytes().unwrap();
    assert_eq!(&wire[..7], &[0x60, 1, 2, 3, 4, 0, 1]);
    assert_eq!(&wire[7..], &[5, 0, 0, 0, 0]);
}

#[test]
fn appended_acks_are_big_endian_and_packet_ack_ids_little_endian() {
    let ack = PacketAck {
        packets: Blocks::one(packet_ack::Packets { id: 0x0A0B_0C0D }),
    };
    let mut p = Packet::new(ack);
    p.acks = Acks::from_ids(&[0x0102_0304]);
    let wire = p.to_bytes().unwrap();
    // FF FF FF FB, count 1, id little-endian, then the appended ack big-endian and its count.
    assert_eq!(
        &wire[6..],
        &[
            0xFF, 0xFF, 0xFF, 0xFB, 1, 0x0D, 0x0C, 0x0B, 0x0A, 1, 2, 3, 4, 1
        ]
    );
    assert_eq!(wire[0], FLAG_ACKS);
    let back = Packet::decode(&wire).unwrap();
    assert_eq!(back.acks.iter().collect::<Vec<_>>(), vec![0x0102_0304]);
    let Message::PacketAck(a) = back.message else {
        panic!()
    };
    assert_eq!(a.packets[0].id, 0x0A0B_0C0D);
}

#[test]
fn zero_coding_covers_the_message_number_but_not_the_acks() {
    // Low 148 has a zero high byte, which is coded.
    let region = [0xFF, 0xFF, 0x00, 0x94];
    let mut d = vec![0x80 | FLAG_ACKS, 0, 0, 0, 9, 0];
    zerocode::encode(&region, &mut d);
    d.extend_from_slice(&[0, 0, 0, 7, 1]);
    let h = Header::peek(&d).unwrap();
    assert_eq!(h.id.number(), 148);
    assert_eq!(h.ack_count, 1);
    // The body is empty, which RegionHandshake does not allow: a typed error, not a panic.
    assert!(matches!(
        Packet::decode(&d),
        Err(DecodeError::Body {
            message: "RegionHandshake",
            ..
        })
    ));
}

#[test]
fn if_smaller_only_codes_when_it_helps() {
    let mut p = Packet::new(ping());
    p.zero_coding = ZeroCoding::IfSmaller;
    // `05 00 00 00 00` codes to `05 00 04`: shorter, so coded.
    let wire = p.to_bytes().unwrap();
    assert_eq!(wire[0] & FLAG_ZEROCODED, FLAG_ZEROCODED);
    p.message = StartPingCheck {
        ping_id: start_ping_check::PingId {
            ping_id: 5,
            oldest_unacked: 0x0101_0101,
        },
    }
    .into();
    let wire = p.to_bytes().unwrap();
    assert_eq!(wire[0] & FLAG_ZEROCODED, 0);
}

#[test]
fn malformed_datagrams_get_typed_errors() {
    assert_eq!(
        Packet::decode(&[0, 0, 0, 0, 1, 0]),
        Err(DecodeError::TooShort { len: 6 })
    );
    // Ack flag with a count larger than the datagram.
    assert!(matches!(
        Packet::decode(&[FLAG_ACKS, 0, 0, 0, 1, 0, 1, 0, 0, 9]),
        Err(DecodeError::AckCountTooLarge { count: 9, .. })
    ));
    // Extra header longer than the datagram.
    assert!(matches!(
        Packet::decode(&[0, 0, 0, 0, 1, 200, 1]),
        Err(DecodeError::ExtraHeaderTooLong { len: 200 })
    ));
    // A zero with no count byte in the coded region.
    assert!(matches!(
        Packet::decode(&[0x80, 0, 0, 0, 1, 0, 1, 0]),
        Err(DecodeError::ZeroCode(_))
    ));
    // Medium number cut off.
    assert_eq!(
        Packet::decode(&[0, 0, 0, 0, 1, 0, 0xFF]),
        Err(DecodeError::MissingMessageNumber)
    );
}

#[test]
fn unknown_messages_and_trailing_bytes_are_kept() {
    let d = [0x40, 0, 0, 0, 3, 0, 0xFF, 0xFF, 0xFE, 0x00, 1, 2, 3];
    let p = Packet::decode(&d).unwrap();
    let Message::Unknown(u) = &p.message else {
        panic!("expected unknown")
    };
    assert_eq!(&u.body[..], &[1, 2, 3]);
    assert_eq!(&p.to_bytes().unwrap()[..], &d[..]);

    let mut d = vec![0, 0, 0, 0, 3, 0, 1, 9, 0, 0, 0, 0];
    d.extend_from_slice(b"extra");
    let p = Packet::decode(&d).unwrap();
    assert_eq!(&p.trailing[..], b"extra");
    assert_eq!(&p.to_bytes().unwrap()[..], &d[..]);
}

#[test]
fn extra_header_and_spare_flag_bits_survive() {
    let d = [0x03, 0, 0, 0, 3, 2, 0xAA, 0xBB, 2, 7];
    let p = Packet::decode(&d).unwrap();
    assert_eq!(&p.extra[..], &[0xAA, 0xBB]);
    assert_eq!(&p.to_bytes().unwrap()[..], &d[..]);
    // An ack flag with a zero count round-trips too.
    let d = [FLAG_ACKS, 0, 0, 0, 3, 0, 2, 7, 0];
    let p = Packet::decode(&d).unwrap();
    assert!(p.acks.is_empty());
    assert_eq!(&p.to_bytes().unwrap()[..], &d[..]);
}

#[test]
fn appending_acks_to_an_encoded_datagram() {
    let mut buf = BytesMut::new();
    Packet::new(ping()).encode(&mut buf).unwrap();
    append_acks(&mut buf, &[1, 2]).unwrap();
    let p = Packet::decode(&buf).unwrap();
    assert_eq!(p.acks.iter().collect::<Vec<_>>(), vec![1, 2]);
    assert!(append_acks(&mut buf, &[0; 256]).is_err());
}

#[test]
fn raw_bytes_have_one_empty_form() {
    // An empty `Bytes`, an empty `Vec` and nothing at all are the same value, so that a packet
    // given empty trailing bytes equals one decoded without any, and encodes the same.
    assert_eq!(RawBytes::from(Bytes::new()), RawBytes::new());
    assert_eq!(RawBytes::from(Vec::new()), RawBytes::new());
    let mut p = Packet::new(ping());
    let plain = p.clone();
    p.trailing = Bytes::new().into();
    p.extra = Vec::new().into();
    assert_eq!(p, plain);
    assert_eq!(p.to_bytes().unwrap(), plain.to_bytes().unwrap());

    let kept = RawBytes::from(&b"kept"[..]);
    assert_eq!(&kept[..], b"kept");
    assert_eq!(kept.to_bytes(), Bytes::from_static(b"kept"));
    assert_eq!(format!("{kept:?}"), "b\"kept\"");
    p.trailing = kept;
    let wire = p.to_bytes().unwrap();
    assert!(wire.ends_with(b"kept"));
    assert_eq!(&Packet::decode(&wire).unwrap().trailing[..], b"kept");
}
