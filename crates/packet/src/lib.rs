//! LLUDP datagram framing: turns UDP payloads into typed [`Packet`]s and back.
//!
//! A datagram is a 6-byte header (flags, big-endian sequence number, extra-header length),
//! the extra header, the message number, the message body, and optionally a list of appended
//! acks. Everything from offset 6 up to the acks may be zero-coded. This crate implements that
//! framing exactly as OpenSimulator and the Second Life viewer do (see
//! `../shared/protocol/packets.md`), on top of the message types of `opensim-messages`.
//!
//! Decoding is lenient and lossless: an unknown message number is kept as
//! [`Message::Unknown`], bytes after the template's blocks are kept in [`Packet::trailing`],
//! and [`Packet::encode`] reproduces the original datagram byte for byte. Every length and
//! count is checked; hostile input gets a [`DecodeError`], never a panic, and no allocation is
//! larger than the datagram.
//!
//! ```
//! use bytes::BytesMut;
//! use opensim_messages::{start_ping_check, Message, StartPingCheck};
//! use opensim_packet::Packet;
//!
//! let ping = StartPingCheck { ping_id: start_ping_check::PingId { ping_id: 1, oldest_unacked: 0 } };
//! let mut packet = Packet::new(ping);
//! packet.sequence = 7;
//! packet.reliable = true;
//! let mut wire = BytesMut::new();
//! packet.encode(&mut wire).unwrap();
//!
//! // Routers can read the header alone.
//! let header = opensim_packet::Header::peek(&wire).unwrap();
//! assert_eq!((header.sequence, header.id.number()), (7, 1));
//!
//! let back = Packet::decode(&wire).unwrap();
//! assert!(matches!(back.message, Message::StartPingCheck(_)));
//! ```

#![forbid(unsafe_code)]

pub mod zerocode;

use bytes::{BufMut, Bytes, BytesMut};
pub use opensim_messages::Message;
use opensim_messages::{CloseCircuit, MessageId, Reader};

/// Flag bit: the region after the header is zero-coded.
pub const FLAG_ZEROCODED: u8 = 0x80;
/// Flag bit: the receiver must acknowledge this sequence number.
pub const FLAG_RELIABLE: u8 = 0x40;
/// Flag bit: this is a retransmission.
pub const FLAG_RESENT: u8 = 0x20;
/// Flag bit: acks are appended at the end.
pub const FLAG_ACKS: u8 = 0x10;

/// The smallest valid datagram: 6 header bytes and a one-byte message number.
pub const MIN_DATAGRAM_LEN: usize = 7;
/// The size senders keep datagrams under (viewer and libopenmetaverse MTU).
pub const MTU: usize = 1200;
/// The most acks one datagram can carry (the count is one byte).
pub const MAX_APPENDED_ACKS: usize = 255;

/// A datagram that cannot be decoded (malformed bytes from the peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the 7-byte minimum, or than its own header says.
    #[error("datagram of {len} bytes is too short")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The appended-ack count says more acks than the datagram holds.
    #[error("{count} appended acks do not fit in a {len}-byte datagram")]
    AckCountTooLarge {
        /// The count byte.
        count: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The extra header runs past the end.
    #[error("extra header of {len} bytes runs past the end")]
    ExtraHeaderTooLong {
        /// Its declared length.
        len: usize,
    },
    /// The message number is cut off.
    #[error("message number is truncated")]
    MissingMessageNumber,
    /// The zero-coded region is malformed.
    #[error("zero-coding: {0}")]
    ZeroCode(#[from] zerocode::ZeroCodeError),
    /// The body does not match the template of its message.
    #[error("{message} body: {source}")]
    Body {
        /// The message name.
        message: &'static str,
        /// What was wrong.
        source: opensim_messages::DecodeError,
    },
}

/// A packet that cannot be encoded as it stands (an API misuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field or block of the message is too long for the wire.
    #[error("{0}")]
    Body(#[from] opensim_messages::EncodeError),
    /// More than 255 appended acks.
    #[error("{count} appended acks exceed 255")]
    TooManyAcks {
        /// How many were given.
        count: usize,
    },
    /// An extra header longer than 255 bytes.
    #[error("extra header of {len} bytes exceeds 255")]
    ExtraHeaderTooLong {
        /// Its length.
        len: usize,
    },
}

/// Whether and when a packet's body is zero-coded on encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCoding {
    /// Sent plain.
    Never,
    /// Zero-coded only when that makes it shorter, as OpenSimulator and the viewer do.
    IfSmaller,
    /// Always zero-coded (what a decoded zero-coded packet keeps, to re-encode identically).
    Always,
}

/// The header fields of a datagram, read without decoding the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The flags byte.
    pub flags: u8,
    /// The sequence number.
    pub sequence: u32,
    /// The extra-header length.
    pub extra_len: u8,
    /// The message number.
    pub id: MessageId,
    /// How many acks are appended.
    pub ack_count: usize,
}

impl Header {
    /// Reads flags, sequence, message number and ack count, zero-decoding only the few bytes
    /// it needs: what routers and proxies look at.
    ///
    /// # Errors
    /// When the datagram is too short or its counts do not fit.
    pub fn peek(datagram: &[u8]) -> Result<Header, DecodeError> {
        let frame = Frame::split(datagram)?;
        let extra_len = datagram[5];
        let need = usize::from(extra_len) + 4;
        let mut head = [0u8; 4 + 255];
        let n = if frame.flags & FLAG_ZEROCODED != 0 {
            // Decode just enough of the region to see the message number.
            prefix_zero_decode(frame.region, &mut head[..need])
        } else {
            let n = frame.region.len().min(need);
            head[..n].copy_from_slice(&frame.region[..n]);
            n
        };
        let head = &head[..n];
        let Some(after_extra) = head.get(usize::from(extra_len)..) else {
            return Err(DecodeError::ExtraHeaderTooLong {
                len: usize::from(extra_len),
            });
        };
        let (id, _) = MessageId::read(after_extra).ok_or(DecodeError::MissingMessageNumber)?;
        Ok(Header {
            flags: frame.flags,
            sequence: frame.sequence,
            extra_len,
            id,
            ack_count: frame.acks.len() / 4,
        })
    }

    /// Whether the packet asks to be acknowledged.
    pub fn is_reliable(&self) -> bool {
        self.flags & FLAG_RELIABLE != 0
    }
}

/// Zero-decodes as much of `src` as fits in `out`, returning how many bytes were written.
fn prefix_zero_decode(src: &[u8], out: &mut [u8]) -> usize {
    let mut i = 0;
    let mut o = 0;
    while i < src.len() && o < out.len() {
        if src[i] != 0 {
            out[o] = src[i];
            o += 1;
            i += 1;
        } else {
            let Some(&count) = src.get(i + 1) else { break };
            let n = usize::from(count).min(out.len() - o);
            out[o..o + n].fill(0);
            o += n;
            i += 2;
        }
    }
    o
}

/// The raw parts of a datagram: header fields, the (possibly coded) region, and the acks.
struct Frame<'a> {
    flags: u8,
    sequence: u32,
    region: &'a [u8],
    acks: &'a [u8],
}

impl<'a> Frame<'a> {
    fn split(d: &'a [u8]) -> Result<Self, DecodeError> {
        if d.len() < MIN_DATAGRAM_LEN {
            return Err(DecodeError::TooShort { len: d.len() });
        }
        let flags = d[0];
        let sequence = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
        let mut end = d.len();
        let mut acks: &[u8] = &[];
        if flags & FLAG_ACKS != 0 {
            let count = usize::from(d[end - 1]);
            // The acks and their count come out of the bytes after the 6-byte header.
            if 4 * count + 1 > d.len() - 6 {
                return Err(DecodeError::AckCountTooLarge {
                    count,
                    len: d.len(),
                });
            }
            end -= 4 * count + 1;
            acks = &d[end..end + 4 * count];
        }
        Ok(Frame {
            flags,
            sequence,
            region: &d[6..end],
            acks,
        })
    }
}

thread_local! {
    /// A per-thread buffer that a zero-coded packet's plain region is written into on encode.
    static ENCODE_SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

thread_local! {
    /// A per-thread buffer of [`zerocode::MAX_DECODED_LEN`] bytes to zero-decode into: no
    /// allocation once it exists, and no pass to size it or clear it first.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// One of the thread's scratch buffers (the encoding one when `ENCODE`), taken out of its cell
/// for one packet and put back when dropped, on every path (an empty `Vec`, which does not
/// allocate, stays behind meanwhile).
// The cell is chosen by a constant rather than held as a `&LocalKey`: through a reference the
// thread-local access is a call, on a known static it is inlined.
struct Scratch<const ENCODE: bool> {
    buf: Vec<u8>,
}

impl<const ENCODE: bool> Scratch<ENCODE> {
    fn cell() -> &'static std::thread::LocalKey<std::cell::Cell<Vec<u8>>> {
        if ENCODE { &ENCODE_SCRATCH } else { &SCRATCH }
    }

    fn take() -> Self {
        Scratch {
            buf: Self::cell().take(),
        }
    }
}

impl Scratch<false> {
    /// Zero-decodes `region` into the buffer (grown once to the decoding limit).
    #[inline]
    fn zero_decode(&mut self, region: &[u8]) -> Result<&[u8], DecodeError> {
        if self.buf.len() < zerocode::MAX_DECODED_LEN {
            self.buf.resize(zerocode::MAX_DECODED_LEN, 0);
        }
        let n = zerocode::decode_into(region, &mut self.buf)?;
        Ok(&self.buf[..n])
    }
}

impl<const ENCODE: bool> Drop for Scratch<ENCODE> {
    #[inline]
    fn drop(&mut self) {
        // The decoding buffer never grows past the decoding limit; the encoding one is not
        // kept when an oversized region grew it past use.
        if !ENCODE || self.buf.capacity() <= 4 * zerocode::MAX_DECODED_LEN {
            Self::cell().set(std::mem::take(&mut self.buf));
        }
    }
}

/// Bytes kept as they were on the wire (an extra header, trailing bytes, acks): shared with
/// the datagram when it was decoded from [`Bytes`], and derefs to a slice.
// `None` when empty (never an empty `Some`): these are empty in nearly every packet, and
// dropping a `None` is a comparison where dropping a `Bytes` is a call through its vtable.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct RawBytes(Option<Bytes>);

impl RawBytes {
    /// No bytes.
    pub const fn new() -> Self {
        RawBytes(None)
    }

    /// The bytes as a [`Bytes`] (sharing them; empty when there are none).
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone().unwrap_or_default()
    }
}

impl std::ops::Deref for RawBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl From<Bytes> for RawBytes {
    fn from(b: Bytes) -> Self {
        RawBytes(if b.is_empty() { None } else { Some(b) })
    }
}

impl From<Vec<u8>> for RawBytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<&'static [u8]> for RawBytes {
    fn from(b: &'static [u8]) -> Self {
        Bytes::from_static(b).into()
    }
}

impl std::fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(b) => std::fmt::Debug::fmt(b, f),
            None => std::fmt::Debug::fmt(&Bytes::new(), f),
        }
    }
}

/// The acks appended to a datagram: big-endian u32 sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Acks(RawBytes);

impl Acks {
    /// No acks.
    pub const fn new() -> Self {
        Acks(RawBytes::new())
    }

    fn from_wire(ids: Bytes) -> Self {
        Acks(ids.into())
    }

    /// The ids as they are on the wire.
    fn wire(&self) -> &[u8] {
        &self.0
    }

    /// Acks for these sequence numbers.
    pub fn from_ids(ids: &[u32]) -> Self {
        let mut b = BytesMut::with_capacity(ids.len() * 4);
        for id in ids {
            b.put_u32(*id);
        }
        Acks::from_wire(b.freeze())
    }

    /// How many acks.
    pub fn len(&self) -> usize {
        self.wire().len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The acknowledged sequence numbers, in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.wire()
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

impl FromIterator<u32> for Acks {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        let mut b = BytesMut::new();
        for id in iter {
            b.put_u32(id);
        }
        Acks::from_wire(b.freeze())
    }
}

/// One decoded datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The receiver must acknowledge it.
    pub reliable: bool,
    /// It is a retransmission.
    pub resent: bool,
    /// The sequence number.
    pub sequence: u32,
    /// Extra header bytes (nobody sends any; kept if someone does).
    pub extra: RawBytes,
    /// How the body is zero-coded on encode.
    pub zero_coding: ZeroCoding,
    /// The message.
    pub message: Message,
    /// Bytes after the template's blocks (a newer sender's extra blocks), kept for forwarding.
    pub trailing: RawBytes,
    /// Appended acks.
    pub acks: Acks,
    /// The unused low flag bits and an ack flag with no acks, kept so encoding is lossless.
    spare_flags: u8,
    /// Trailing empty Variable blocks whose count bytes were absent on the wire.
    omitted_blocks: u8,
}

impl Packet {
    /// A packet carrying `message`: unreliable, sequence 0, zero-coded when the template allows
    /// it and it helps.
    pub fn new(message: impl Into<Message>) -> Self {
        let message = message.into();
        let zerocode = message.info().is_some_and(|i| i.zerocoded);
        Packet {
            reliable: false,
            resent: false,
            sequence: 0,
            extra: RawBytes::new(),
            zero_coding: if zerocode {
                ZeroCoding::IfSmaller
            } else {
                ZeroCoding::Never
            },
            message,
            trailing: RawBytes::new(),
            acks: Acks::new(),
            spare_flags: 0,
            omitted_blocks: 0,
        }
    }

    /// Decodes a datagram; Variable fields are copied out of it.
    ///
    /// A message made only of fixed-size fields decodes without heap allocation, zero-coded
    /// or not (except `ObjectAdd` and `ChildAgentPositionUpdate`, whose `Message` variants
    /// are boxed for their size).
    ///
    /// # Errors
    /// When the datagram is malformed (see [`DecodeError`]).
    pub fn decode(datagram: &[u8]) -> Result<Packet, DecodeError> {
        let frame = Frame::split(datagram)?;
        let acks = if frame.acks.is_empty() {
            Acks::new()
        } else {
            Acks::from_wire(Bytes::copy_from_slice(frame.acks))
        };
        // One call for both codings: a zero-decoding closure returning the packet added a
        // copy of it.
        let mut scratch;
        let region = if frame.flags & FLAG_ZEROCODED != 0 {
            scratch = Scratch::<false>::take();
            scratch.zero_decode(frame.region)?
        } else {
            frame.region
        };
        Self::decode_region(&frame, Reader::new(region), acks, datagram[5])
    }

    /// Decodes a datagram held in shared memory: Variable fields and acks are zero-copy
    /// slices of it (Variable fields of a zero-coded datagram are copied out, as by
    /// [`Packet::decode`]).
    ///
    /// # Errors
    /// When the datagram is malformed (see [`DecodeError`]).
    pub fn decode_bytes(datagram: &Bytes) -> Result<Packet, DecodeError> {
        let frame = Frame::split(datagram)?;
        let acks = if frame.acks.is_empty() {
            Acks::new()
        } else {
            Acks::from_wire(datagram.slice_ref(frame.acks))
        };
        let mut scratch;
        let r = if frame.flags & FLAG_ZEROCODED != 0 {
            // Variable fields are copied out of the decoded region, as `decode` does: sharing
            // a copy of the region would cost that copy's allocation, plus a second one for its
            // reference count on the first slice (a `Bytes` made from a `Vec` allocates one).
            scratch = Scratch::<false>::take();
            Reader::new(scratch.zero_decode(frame.region)?)
        } else {
            // The reader shares the datagram itself: no extra `Bytes` of the region.
            let end = 6 + frame.region.len();
            Reader::with_backing_range(datagram, 6..end).ok_or(DecodeError::TooShort {
                len: datagram.len(),
            })?
        };
        Self::decode_region(&frame, r, acks, datagram[5])
    }

    // Inlined into both decoders, so that nothing between them and the packet adds a call.
    #[inline(always)]
    fn decode_region(
        frame: &Frame<'_>,
        mut r: Reader<'_>,
        acks: Acks,
        extra_len: u8,
    ) -> Result<Packet, DecodeError> {
        let region = r.remaining();
        let extra_len_usize = usize::from(extra_len);
        if region.len() < extra_len_usize {
            return Err(DecodeError::ExtraHeaderTooLong {
                len: extra_len_usize,
            });
        }
        let (id, id_len) =
            MessageId::read(&region[extra_len_usize..]).ok_or(DecodeError::MissingMessageNumber)?;
        // The extra header goes through the reader so that it shares the buffer too.
        let short = |_| DecodeError::TooShort { len: region.len() };
        let extra = if extra_len == 0 {
            RawBytes::new()
        } else {
            r.raw(extra_len_usize).map_err(short)?.into()
        };
        r.skip(id_len).map_err(short)?;
        let flags = frame.flags;
        let ack_flag_alone = flags & FLAG_ACKS != 0 && acks.is_empty();
        // The packet is built once and the message decoded into it: `Message` is large, and
        // every move of it is a copy of its full size.
        let mut packet = Packet {
            reliable: flags & FLAG_RELIABLE != 0,
            resent: flags & FLAG_RESENT != 0,
            sequence: frame.sequence,
            extra,
            zero_coding: if flags & FLAG_ZEROCODED != 0 {
                ZeroCoding::Always
            } else {
                ZeroCoding::Never
            },
            // A placeholder that `decode_in_place` always replaces; a variant without drop
            // glue, so that replacing it costs no call into `Bytes`' drop.
            message: Message::CloseCircuit(CloseCircuit),
            trailing: RawBytes::new(),
            acks,
            spare_flags: (flags & 0x0F) | if ack_flag_alone { FLAG_ACKS } else { 0 },
            omitted_blocks: 0,
        };
        if let Err(source) = packet.message.decode_in_place(id, &mut r) {
            return Err(DecodeError::Body {
                message: opensim_messages::lookup(id).map_or("Unknown", |i| i.name),
                source,
            });
        }
        packet.omitted_blocks = r.omitted_blocks();
        if !r.remaining().is_empty() {
            packet.trailing = r.rest().into();
        }
        Ok(packet)
    }

    /// The flags byte this packet encodes with (the zero-coding bit as decided at encode).
    fn flags_without_zerocode(&self) -> u8 {
        let mut f = self.spare_flags;
        if self.reliable {
            f |= FLAG_RELIABLE;
        }
        if self.resent {
            f |= FLAG_RESENT;
        }
        if !self.acks.is_empty() {
            f |= FLAG_ACKS;
        }
        f
    }

    /// The number of bytes of the region after the header, before zero-coding.
    fn region_len(&self) -> usize {
        self.extra.len()
            + self.message.id().wire_len()
            + self.message.encoded_len()
            + self.trailing.len()
            - usize::from(self.omitted_blocks)
    }

    /// Writes the datagram onto `out`.
    ///
    /// # Errors
    /// When a field, block, the extra header or the ack list is too long for the wire.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let extra_len =
            u8::try_from(self.extra.len()).map_err(|_| EncodeError::ExtraHeaderTooLong {
                len: self.extra.len(),
            })?;
        if self.acks.len() > MAX_APPENDED_ACKS {
            return Err(EncodeError::TooManyAcks {
                count: self.acks.len(),
            });
        }
        let start = out.len();
        let region_len = self.region_len();
        out.reserve(6 + region_len + self.acks.wire().len() + 1);
        let mut flags = self.flags_without_zerocode();
        out.put_u8(flags);
        out.put_u32(self.sequence);
        out.put_u8(extra_len);
        match self.zero_coding {
            ZeroCoding::Never => {
                if let Err(e) = self.write_region(out) {
                    out.truncate(start);
                    return Err(e);
                }
            }
            ZeroCoding::IfSmaller | ZeroCoding::Always => {
                // The plain region goes into a per-thread buffer and is coded from there into
                // `out`: no allocation once the buffer has grown, and nothing to clear first
                // (a fixed 8 KiB stack buffer cost a memset of its whole size per packet).
                let mut scratch = Scratch::<true>::take();
                let plain = &mut scratch.buf;
                plain.clear();
                if let Err(e) = self.write_region(plain) {
                    out.truncate(start);
                    return Err(e);
                }
                let coded_len = zerocode::encoded_len(plain);
                if self.zero_coding == ZeroCoding::Always || coded_len < plain.len() {
                    flags |= FLAG_ZEROCODED;
                    out.reserve(coded_len);
                    zerocode::encode(plain, out);
                } else {
                    out.put_slice(plain);
                }
            }
        }
        if flags & FLAG_ACKS != 0 {
            out.put_slice(self.acks.wire());
            // At most 255 acks, checked above.
            out.put_u8(self.acks.len() as u8);
        }
        out[start] = flags;
        Ok(())
    }

    fn write_region<B: BufMut + ?Sized>(&self, w: &mut B) -> Result<(), EncodeError> {
        w.put_slice(&self.extra);
        self.message.id().write(w);
        if self.omitted_blocks == 0 {
            self.message.encode_body(w)?;
        } else {
            // The trailing count bytes of empty Variable blocks were absent: drop them again.
            let mut body = Vec::with_capacity(self.message.encoded_len());
            self.message.encode_body(&mut body)?;
            let keep = body.len() - usize::from(self.omitted_blocks);
            w.put_slice(&body[..keep]);
        }
        w.put_slice(&self.trailing);
        Ok(())
    }

    /// The encoded datagram as a new buffer.
    ///
    /// # Errors
    /// As [`Packet::encode`].
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

/// Writes appended acks (big-endian ids, then the count) after an encoded datagram and sets its
/// ack flag. What a circuit does when it piggy-backs acks on an outgoing packet.
///
/// # Errors
/// [`EncodeError::TooManyAcks`] for more than 255 ids.
pub fn append_acks(datagram: &mut BytesMut, ids: &[u32]) -> Result<(), EncodeError> {
    if ids.is_empty() {
        return Ok(());
    }
    let count =
        u8::try_from(ids.len()).map_err(|_| EncodeError::TooManyAcks { count: ids.len() })?;
    for id in ids {
        datagram.put_u32(*id);
    }
    datagram.put_u8(count);
    if let Some(f) = datagram.first_mut() {
        *f |= FLAG_ACKS;
    }
    Ok(())
}

/// Functions for fuzz targets and corpus replays.
#[doc(hidden)]
pub mod fuzz_support {
    use super::*;

    /// Decodes arbitrary bytes; whatever decodes must re-encode, and decoding that again must
    /// give the same datagram. (Packets are compared through their bytes: a NaN field is not
    /// equal to itself.)
    ///
    /// # Panics
    /// When that property is broken (that is what the fuzzer looks for).
    pub fn packet_decode(data: &[u8]) {
        let copied = Packet::decode(data);
        let shared = Packet::decode_bytes(&Bytes::copy_from_slice(data));
        let _ = Header::peek(data);
        match (copied, shared) {
            (Ok(a), Ok(b)) => {
                let wire = a.to_bytes().expect("a decoded packet re-encodes");
                assert_eq!(
                    wire,
                    b.to_bytes().expect("re-encodes"),
                    "decode and decode_bytes disagree"
                );
                let again = Packet::decode(&wire).expect("a re-encoded packet decodes");
                assert_eq!(
                    again.to_bytes().expect("re-encodes"),
                    wire,
                    "encoding is not stable"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "decode and decode_bytes disagree"),
            (a, b) => panic!("decode gave {a:?}, decode_bytes gave {b:?}"),
        }
    }
}

/// Fuzz entry points, compiled only under `cargo fuzz` (`cfg(fuzzing)`).
#[cfg(fuzzing)]
pub mod fuzz {
    pub use crate::fuzz_support::packet_decode;
}

#[cfg(test)]
mod tests;
