//! Every LLUDP message of the OpenSimulator / Second Life template, as Rust types.
//!
//! The types under [`generated`](crate#reexports) are written by `cargo xtask codegen` from
//! `message_template.msg`: one struct per message (for example [`StartPingCheck`]), one struct
//! per block in a module named after the message (`start_ping_check::PingId`), and the
//! [`Message`] enum over all of them. Field types follow the template: integers as their Rust
//! types, `glam` vectors and quaternions, [`uuid::Uuid`], [`std::net::Ipv4Addr`], `[u8; N]` for
//! Fixed fields and [`bytes::Bytes`] for Variable ones. Multiple blocks are arrays and Variable
//! blocks [`Blocks`], a slice that holds a single instance inline, so decoding a message made
//! only of fixed-size fields, or one whose Variable blocks hold one instance each, does not
//! allocate.
//!
//! The [`Message`] enum holds the messages larger than 128 bytes in a `Box` (its variant
//! binds `Box<RegionHandshake>`, for example; `From` and field access work as for the others),
//! so that it stays 144 bytes: every packet moves it. Of the fixed-size messages only
//! `ObjectAdd` and `ChildAgentPositionUpdate` are that large, so theirs is the one allocation
//! of decoding them as a `Message`.
//!
//! This crate codes message *bodies*. Framing (flags, sequence numbers, zero-coding, acks) is
//! the job of `opensim-packet`.
//!
//! ```
//! use opensim_messages::{codec::Reader, start_ping_check, Message, MessageType, StartPingCheck};
//!
//! let ping = StartPingCheck { ping_id: start_ping_check::PingId { ping_id: 7, oldest_unacked: 42 } };
//! let mut body = Vec::new();
//! ping.encode_body(&mut body).unwrap();
//! let back = Message::decode(StartPingCheck::ID, &mut Reader::new(&body)).unwrap();
//! assert_eq!(back, Message::StartPingCheck(ping));
//! ```

#![forbid(unsafe_code)]

mod blocks;
pub mod codec;
#[allow(missing_docs)]
mod generated;
#[cfg(feature = "arbitrary")]
pub mod strategy;

use bytes::{BufMut, Bytes};

pub use blocks::{Blocks, IntoIter as BlocksIntoIter};
pub use codec::{DecodeError, EncodeError, FieldValue, Reader, Visitor};
pub use generated::*;

/// The frequency class of a message, which decides how its number is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    /// One byte.
    High,
    /// `FF` then one byte.
    Medium,
    /// `FF FF` then a big-endian u16.
    Low,
    /// `FF FF FF` then one byte; the number is written in full as `0xFFFFFFxx`.
    Fixed,
}

impl Frequency {
    /// The template keyword.
    pub fn name(self) -> &'static str {
        match self {
            Frequency::High => "High",
            Frequency::Medium => "Medium",
            Frequency::Low => "Low",
            Frequency::Fixed => "Fixed",
        }
    }
}

/// Whether a message is only accepted from trusted circuits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Sent by simulators; a client never sends it.
    Trusted,
    /// Anyone may send it.
    NotTrusted,
}

/// The template's deprecation keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deprecation {
    /// Still works; the viewer only warns.
    Deprecated,
    /// Normally carried over HTTP, still accepted over UDP.
    UdpDeprecated,
    /// Must not arrive over UDP.
    UdpBlackListed,
}

/// A message's frequency and number: what identifies it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    frequency: Frequency,
    number: u32,
}

impl MessageId {
    /// A message id; Fixed numbers are given in full (`0xFFFFFFFB`).
    pub const fn new(frequency: Frequency, number: u32) -> Self {
        MessageId { frequency, number }
    }

    /// The frequency class.
    pub const fn frequency(self) -> Frequency {
        self.frequency
    }

    /// The number within the class.
    pub const fn number(self) -> u32 {
        self.number
    }

    /// How many bytes the number takes on the wire.
    pub const fn wire_len(self) -> usize {
        match self.frequency {
            Frequency::High => 1,
            Frequency::Medium => 2,
            Frequency::Low | Frequency::Fixed => 4,
        }
    }

    /// Reads a message number from the start of `buf`; `None` when `buf` is too short.
    ///
    /// Returns the id and the number of bytes it took. `FF FF FF xx` reads as the Fixed
    /// number `0xFFFFFFxx`.
    pub fn read(buf: &[u8]) -> Option<(MessageId, usize)> {
        match *buf {
            [0xFF, 0xFF, 0xFF, low, ..] => Some((
                MessageId::new(Frequency::Fixed, 0xFFFF_FF00 | u32::from(low)),
                4,
            )),
            [0xFF, 0xFF, hi, lo, ..] => Some((
                MessageId::new(Frequency::Low, u32::from(u16::from_be_bytes([hi, lo]))),
                4,
            )),
            [0xFF, 0xFF, ..] => None,
            [0xFF, n, ..] => Some((MessageId::new(Frequency::Medium, u32::from(n)), 2)),
            [0xFF] => None,
            [n, ..] => Some((MessageId::new(Frequency::High, u32::from(n)), 1)),
            [] => None,
        }
    }

    /// Writes the number as it goes on the wire (only its low bytes count).
    pub fn write<B: BufMut + ?Sized>(self, w: &mut B) {
        // Truncation is the wire format: each class keeps the low bytes of its number.
        let n = self.number;
        match self.frequency {
            Frequency::High => w.put_u8(n as u8),
            Frequency::Medium => w.put_slice(&[0xFF, n as u8]),
            Frequency::Low => {
                w.put_slice(&[0xFF, 0xFF]);
                w.put_u16(n as u16);
            }
            Frequency::Fixed => w.put_slice(&[0xFF, 0xFF, 0xFF, n as u8]),
        }
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.frequency {
            Frequency::Fixed => write!(f, "Fixed 0x{:08X}", self.number),
            other => write!(f, "{} {}", other.name(), self.number),
        }
    }
}

/// What the template says about one message type; implemented by every generated message.
pub trait MessageType: Sized {
    /// The template name.
    const NAME: &'static str;
    /// The frequency and number.
    const ID: MessageId;
    /// Trusted or not.
    const TRUST: Trust;
    /// Whether the template lets senders zero-code it.
    const ZEROCODED: bool;
    /// The deprecation keyword, if any.
    const DEPRECATION: Option<Deprecation>;
    /// Whether every field and block has a fixed size (decoding it does not allocate).
    const FIXED_SIZE: bool;

    /// Decodes the body.
    ///
    /// # Errors
    /// When the body does not hold what the template requires.
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Encodes the body.
    ///
    /// # Errors
    /// When a Variable field or block is too long for its length prefix.
    fn encode_body<B: BufMut + ?Sized>(&self, w: &mut B) -> Result<(), EncodeError>;
    /// The number of bytes [`MessageType::encode_body`] writes.
    fn encoded_len(&self) -> usize;
    /// Walks the blocks and fields in wire order.
    fn visit<V: Visitor + ?Sized>(&self, v: &mut V);
}

/// The template facts about one message, as a value (see [`MESSAGES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// The template name.
    pub name: &'static str,
    /// Frequency and number.
    pub id: MessageId,
    /// Trusted or not.
    pub trust: Trust,
    /// Whether the template lets senders zero-code it.
    pub zerocoded: bool,
    /// The deprecation keyword, if any.
    pub deprecation: Option<Deprecation>,
    /// Whether decoding its body needs no allocation (as a [`Message`], a boxed variant
    /// still costs its `Box`).
    pub fixed_size: bool,
}

impl MessageInfo {
    /// The facts of message type `T`.
    pub const fn of<T: MessageType>() -> Self {
        MessageInfo {
            name: T::NAME,
            id: T::ID,
            trust: T::TRUST,
            zerocoded: T::ZEROCODED,
            deprecation: T::DEPRECATION,
            fixed_size: T::FIXED_SIZE,
        }
    }
}

/// A message whose number the template does not define, kept so that it can be forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMessage {
    /// The number it arrived with.
    pub id: MessageId,
    /// Its body, untouched.
    pub body: Bytes,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_message_enum_stays_small() {
        // The generator boxes the variants over 128 bytes by its own estimate of their size;
        // if that estimate falls behind the real layout, the enum grows silently and every
        // move of a decoded packet copies the difference.
        assert!(
            size_of::<Message>() <= 144,
            "Message is {} bytes",
            size_of::<Message>()
        );
    }

    #[test]
    fn message_numbers_round_trip_in_every_class() {
        for id in [
            MessageId::new(Frequency::High, 1),
            MessageId::new(Frequency::High, 254),
            MessageId::new(Frequency::Medium, 3),
            MessageId::new(Frequency::Low, 148),
            MessageId::new(Frequency::Low, 0xFEFF),
            MessageId::new(Frequency::Fixed, 0xFFFF_FFFB),
        ] {
            let mut buf = Vec::new();
            id.write(&mut buf);
            assert_eq!(buf.len(), id.wire_len());
            assert_eq!(MessageId::read(&buf), Some((id, buf.len())));
        }
        assert_eq!(MessageId::read(&[0xFF, 0xFF, 0x00]), None);
        assert_eq!(MessageId::read(&[0xFF]), None);
        assert_eq!(MessageId::read(&[]), None);
    }

    #[test]
    fn every_number_dispatches_to_its_template_message() {
        // Every number of every class, known or not, around the dispatch tables' ends too:
        // each known one decodes as the message `lookup` names, each other one as Unknown.
        // (`Message::decode` itself decodes in place into a placeholder, so the comparison
        // that matters below is decoding over a message that owns heap data.)
        let numbers = |f: Frequency| -> Vec<u32> {
            match f {
                Frequency::High | Frequency::Medium => (0..=255).collect(),
                Frequency::Low => (0..=600).chain([0xFEFF, 0xFFFF]).collect(),
                Frequency::Fixed => (0xFFFF_FF00..=0xFFFF_FFFF).collect(),
            }
        };
        // A body that every template message reads something from: all blocks empty, all
        // fixed fields zero.
        let body = [0u8; 600];
        let mut known = 0;
        for f in [
            Frequency::High,
            Frequency::Medium,
            Frequency::Low,
            Frequency::Fixed,
        ] {
            for n in numbers(f) {
                let id = MessageId::new(f, n);
                let mut a = Reader::new(&body);
                let by_value = Message::decode(id, &mut a);
                // Over the fieldless placeholder and over a message with heap data alike.
                for start in [
                    Message::CloseCircuit(CloseCircuit),
                    Message::Unknown(UnknownMessage {
                        id,
                        body: Bytes::from(vec![1, 2, 3]),
                    }),
                ] {
                    let mut in_place = start;
                    let mut b = Reader::new(&body);
                    let result = in_place.decode_in_place(id, &mut b).map(|()| in_place);
                    assert_eq!(result, by_value, "{f:?} {n}");
                    assert_eq!(a.position(), b.position(), "{f:?} {n}");
                }
                match (&by_value, lookup(id)) {
                    (Ok(Message::Unknown(u)), None) => assert_eq!(u.id, id),
                    (Ok(m), Some(info)) => {
                        assert_eq!((m.id(), m.name()), (id, info.name));
                        known += 1;
                    }
                    (other, info) => panic!("{f:?} {n}: {other:?} for {info:?}"),
                }
            }
        }
        assert_eq!(known, MESSAGES.len());
    }

    #[test]
    fn template_table_is_sorted_and_complete() {
        assert_eq!(MESSAGES.len(), 478);
        assert!(MESSAGES.windows(2).all(|w| w[0].id < w[1].id));
        let ack = lookup(MessageId::new(Frequency::Fixed, 0xFFFF_FFFB)).unwrap();
        assert_eq!(ack.name, "PacketAck");
        assert_eq!(lookup_name("RegionHandshake").unwrap().id.number(), 148);
    }
}
