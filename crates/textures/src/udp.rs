//! The LLUDP image pipeline (`RequestImage` -> `ImageData` + `ImagePacket`s), without I/O.
//!
//! # Client: [`UdpImageClient`]
//!
//! A state machine the caller drives: [`request`](UdpImageClient::request) /
//! [`change`](UdpImageClient::change) / [`cancel`](UdpImageClient::cancel) queue
//! `RequestImage` entries, [`poll_transmit`](UdpImageClient::poll_transmit) hands them out
//! (up to 255 per message; send them reliable), [`handle_message`](UdpImageClient::handle_message)
//! takes decoded `ImageData`, `ImagePacket` and `ImageNotInDatabase` messages (in any order,
//! duplicates included), [`handle_timeout`](UdpImageClient::handle_timeout) takes the current
//! time, and [`poll_event`](UdpImageClient::poll_event) returns [`UdpEvent`]s.
//!
//! ## What the `DiscardLevel` of a request means to OpenSimulator
//!
//! The viewer means a *resolution* level; OpenSimulator instead drops that many *quality
//! layers* (of `L`, clamped to keep one) and stops after the packet holding the end of the
//! first `L - discard` layers (textures.md). With the usual LRCP textures this prefix decodes
//! at full resolution, with fewer layers. So the [`Target`] of a request says what is wanted
//! and what is sent:
//!
//! * [`Target::Full`]: `DiscardLevel = 0`; complete when every packet has arrived.
//! * [`Target::OpenSimLayers(d)`](Target::OpenSimLayers): `DiscardLevel = d`, what the viewer
//!   sends. OpenSim sends the first `L - d` layers; the client finds the same stop packet
//!   from the received prefix (layer ends from [`Codestream::budget`], OpenSim's 2/5/20/50/100 %
//!   guess when the packets cannot be walked) and completes when those packets are in,
//!   although `ImageData` still announces the whole file.
//! * [`Target::Resolution(d)`](Target::Resolution): an image that decodes at resolution level
//!   `d` exactly like the whole file. No OpenSim layer count guarantees that (in LRCP the
//!   last layer still refines the smallest resolutions), so it sends `DiscardLevel = 0` and,
//!   as soon as the contiguous prefix holds the exact budget of level `d`, completes and
//!   cancels the rest (`DiscardLevel = -1`, `DownloadPriority = 0`).
//!
//! `Packet` is the number of leading packets already held, as the viewer sends it. OpenSim
//! numbers internally from 1 (`StartPacket = max(1, Packet)`, internal `n` = wire packet
//! `n - 1`): a new transfer sends `ImageData` and then goes on from wire packet `Packet`
//! exactly, while an update of a running one restarts at wire packet `Packet - 1`, which the
//! client then holds twice. Duplicates are ignored.
//!
//! # Server: [`ImageSender`] and [`split_image`]
//!
//! [`ImageSender`] is OpenSimulator's per-agent image queue (`LLImageManager` + `J2KImage`):
//! the same sequence-number rule for updates, cancel rule, priority order (doubled for
//! `Type == 1`), layer-based stop packet, `StartPacket = max(1, Packet)` and 600/1000-byte
//! chunking, the missing-image substitute and `ImageNotInDatabase`. [`split_image`] is the
//! stateless whole-file split. [`outgoing_packet`] frames a message as OpenSim does
//! (reliable; `ImageData` zero-coded when that helps).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opensim_messages::{
    ImageData, ImageNotInDatabase, ImagePacket, Message, RequestImage, image_data,
    image_not_in_database, image_packet, request_image,
};
use opensim_packet::{Packet, ZeroCoding};
use uuid::Uuid;

use crate::codestream::{Codestream, Exactness, Limits};

/// Bytes of image data in `ImageData` (packet 0).
pub const FIRST_PACKET_SIZE: usize = 600;
/// Bytes of image data in each full `ImagePacket`.
pub const IMAGE_PACKET_SIZE: usize = 1000;
/// `Codec` value for J2C (libomv `ImageCodec.J2C`).
pub const CODEC_J2C: u8 = 2;
/// Most `RequestImage` blocks in one message.
pub const MAX_REQUESTS_PER_MESSAGE: usize = 255;

/// Number of packets OpenSim splits an asset of `size` bytes into (ImageData included), or
/// `None` when that does not fit the `u16` field.
pub fn packet_count(size: u64) -> Option<u16> {
    let n = if size <= FIRST_PACKET_SIZE as u64 {
        1
    } else {
        1 + (size - FIRST_PACKET_SIZE as u64).div_ceil(IMAGE_PACKET_SIZE as u64)
    };
    u16::try_from(n).ok()
}

/// Byte offset where wire packet `n` starts.
pub fn packet_offset(n: u16) -> u64 {
    if n == 0 {
        0
    } else {
        FIRST_PACKET_SIZE as u64 + (u64::from(n) - 1) * IMAGE_PACKET_SIZE as u64
    }
}

/// The bytes `[start, end)` wire packet `n` carries of an asset of `size` bytes.
pub fn packet_span(size: u64, n: u16) -> (u64, u64) {
    let start = packet_offset(n).min(size);
    let len = if n == 0 {
        FIRST_PACKET_SIZE
    } else {
        IMAGE_PACKET_SIZE
    };
    (start, (start + len as u64).min(size))
}

/// The kind of image asked for (`RequestImage.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageType {
    /// An ordinary texture.
    #[default]
    Normal,
    /// A baked avatar texture (OpenSim doubles its priority).
    Baked,
    /// A server-baked texture.
    ServerBaked,
}

impl ImageType {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            ImageType::Normal => 0,
            ImageType::Baked => 1,
            ImageType::ServerBaked => 2,
        }
    }
}

/// What a request wants (see the module documentation for how it maps to `DiscardLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The whole file.
    Full,
    /// What OpenSim sends for `DiscardLevel = d`: the first `L - d` quality layers.
    OpenSimLayers(u8),
    /// Enough to decode at resolution level `d` exactly like the whole file.
    Resolution(u8),
}

impl Target {
    /// The `DiscardLevel` sent for this target.
    pub fn wire_discard(self) -> i8 {
        match self {
            Target::OpenSimLayers(d) => i8::try_from(d).unwrap_or(i8::MAX),
            Target::Full | Target::Resolution(_) => 0,
        }
    }
}

/// One image to fetch over UDP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageRequest {
    /// The texture.
    pub id: Uuid,
    /// What is wanted.
    pub target: Target,
    /// `DownloadPriority`: larger is sooner.
    pub priority: f32,
    /// `Type`.
    pub kind: ImageType,
}

impl ImageRequest {
    /// A request for an ordinary texture.
    pub fn new(id: Uuid, target: Target, priority: f32) -> Self {
        ImageRequest {
            id,
            target,
            priority,
            kind: ImageType::Normal,
        }
    }
}

/// Settings of a [`UdpImageClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Give up on a transfer after this long without a useful packet.
    pub timeout: Duration,
    /// Send the request again after this long without a useful packet.
    pub resend_after: Duration,
    /// Largest `Size` accepted from `ImageData`.
    pub max_image_size: u32,
    /// Most `ImagePacket`s kept while their `ImageData` has not arrived (each at most 1000
    /// bytes).
    pub max_early_packets: usize,
    /// Header limits for parsing.
    pub limits: Limits,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            timeout: Duration::from_secs(30),
            resend_after: Duration::from_secs(5),
            max_image_size: 16 * 1024 * 1024,
            max_early_packets: 1024,
            limits: Limits::default(),
        }
    }
}

/// Why a transfer was abandoned because of what the server sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpTransferError {
    /// `ImageData` announced more bytes than [`UdpConfig::max_image_size`].
    #[error("image of {size} bytes is above the limit of {limit}")]
    TooLarge {
        /// The announced size.
        size: u32,
        /// The limit.
        limit: u32,
    },
    /// `ImageData`'s fields contradict each other.
    #[error("inconsistent ImageData: {0}")]
    BadHeader(&'static str),
}

/// Something that happened to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpEvent {
    /// A new packet was taken in.
    Progress {
        /// The texture.
        id: Uuid,
        /// Bytes of the contiguous prefix held.
        have: u64,
        /// Bytes held, counting those beyond gaps.
        received: u64,
        /// The size `ImageData` announced (the whole file, whatever the discard level).
        size: u32,
        /// Bytes this transfer is expected to end with, once known.
        expected: Option<u64>,
    },
    /// The transfer reached its target.
    Complete {
        /// The texture.
        id: Uuid,
        /// `Codec` from `ImageData` (2 = J2C).
        codec: u8,
        /// The whole file, or its prefix when the target is less than [`Target::Full`].
        data: Vec<u8>,
        /// The size of the whole file.
        size: u32,
    },
    /// The server answered `ImageNotInDatabase`. (OpenSim usually sends its 32x32
    /// "missing image" texture under the requested id instead: that one completes normally.)
    NotFound {
        /// The texture.
        id: Uuid,
    },
    /// Nothing useful arrived for [`UdpConfig::timeout`]; a cancel was queued.
    TimedOut {
        /// The texture.
        id: Uuid,
        /// The contiguous prefix held.
        data: Vec<u8>,
        /// The announced size, if `ImageData` arrived.
        size: Option<u32>,
    },
    /// The server sent something unusable for this transfer; a cancel was queued.
    Failed {
        /// The texture.
        id: Uuid,
        /// What was wrong.
        error: UdpTransferError,
    },
}

/// Reassembly state of one image.
#[derive(Debug)]
struct Transfer {
    id: Uuid,
    target: Target,
    priority: f32,
    kind: ImageType,
    /// Set once `ImageData` arrived.
    header: Option<(u8, u32, u16)>,
    buf: Vec<u8>,
    /// One bit per packet.
    present: Vec<u64>,
    /// Leading packets all present.
    contiguous: u16,
    received: u64,
    /// `ImagePacket`s that came before `ImageData`.
    early: Vec<(u16, Bytes)>,
    /// Last wire packet that completes the target, once known.
    last_needed: Option<u16>,
    /// Prefix length that completes a [`Target::Resolution`], once known.
    needed_bytes: Option<u64>,
    /// Skip walking the codestream again until the prefix reaches this length.
    next_check: u64,
    last_activity: Instant,
    last_request: Instant,
}

impl Transfer {
    fn has(&self, n: u16) -> bool {
        self.present
            .get(usize::from(n / 64))
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    fn contiguous_bytes(&self) -> u64 {
        match (self.header, self.contiguous) {
            (Some((_, size, _)), c) if c > 0 => packet_span(u64::from(size), c - 1).1,
            _ => 0,
        }
    }

    fn request_block(&self) -> request_image::RequestImage {
        request_image::RequestImage {
            image: self.id,
            discard_level: self.target.wire_discard(),
            download_priority: self.priority,
            packet: u32::from(self.contiguous),
            type_: self.kind.to_u8(),
        }
    }
}

/// Client side of the UDP image pipeline (see the module documentation).
#[derive(Debug)]
pub struct UdpImageClient {
    agent_id: Uuid,
    session_id: Uuid,
    config: UdpConfig,
    transfers: Vec<Transfer>,
    /// Ids whose current request must be (re)sent.
    to_send: Vec<Uuid>,
    /// Cancels to send.
    cancels: Vec<Uuid>,
    events: VecDeque<UdpEvent>,
    rejected: u64,
    duplicates: u64,
}

impl UdpImageClient {
    /// A client for the agent and session of the circuit.
    pub fn new(agent_id: Uuid, session_id: Uuid, config: UdpConfig) -> Self {
        UdpImageClient {
            agent_id,
            session_id,
            config,
            transfers: Vec::new(),
            to_send: Vec::new(),
            cancels: Vec::new(),
            events: VecDeque::new(),
            rejected: 0,
            duplicates: 0,
        }
    }

    /// Starts fetching an image (or changes the running transfer, as [`change`](Self::change)).
    pub fn request(&mut self, req: ImageRequest, now: Instant) {
        let ImageRequest {
            id,
            target,
            priority,
            kind,
        } = req;
        if self.find(id).is_some() {
            self.change(id, target, priority);
            return;
        }
        self.cancels.retain(|c| *c != id);
        self.transfers.push(Transfer {
            id,
            target,
            priority,
            kind,
            header: None,
            buf: Vec::new(),
            present: Vec::new(),
            contiguous: 0,
            received: 0,
            early: Vec::new(),
            last_needed: None,
            needed_bytes: None,
            next_check: 0,
            last_activity: now,
            last_request: now,
        });
        self.queue_send(id);
    }

    /// Starts fetching an image from a prefix already held (for example what an earlier
    /// transfer at a coarser level returned), so that only the missing packets are asked for.
    /// `size` is the whole file's size from the earlier `ImageData`.
    ///
    /// # Errors
    /// [`UdpTransferError`] when `size` is beyond the limit or the prefix is longer than it.
    pub fn resume(
        &mut self,
        req: ImageRequest,
        prefix: &[u8],
        size: u32,
        now: Instant,
    ) -> Result<(), UdpTransferError> {
        let id = req.id;
        if size > self.config.max_image_size {
            return Err(UdpTransferError::TooLarge {
                size,
                limit: self.config.max_image_size,
            });
        }
        let packets = packet_count(u64::from(size))
            .ok_or(UdpTransferError::BadHeader("Size needs too many packets"))?;
        if prefix.len() > size as usize {
            return Err(UdpTransferError::BadHeader("prefix longer than Size"));
        }
        self.cancel(id);
        self.cancels.retain(|c| *c != id);
        self.request(req, now);
        let i = self.transfers.len() - 1;
        let t = &mut self.transfers[i];
        t.header = Some((CODEC_J2C, size, packets));
        t.buf = vec![0; size as usize];
        t.present = vec![0; usize::from(packets).div_ceil(64)];
        for n in 0..packets {
            let (start, end) = packet_span(u64::from(size), n);
            if end as usize > prefix.len() {
                break;
            }
            t.buf[start as usize..end as usize]
                .copy_from_slice(&prefix[start as usize..end as usize]);
            t.present[usize::from(n / 64)] |= 1 << (n % 64);
            t.received += end - start;
            t.contiguous = n + 1;
        }
        self.check_done(i);
        Ok(())
    }

    /// Changes the target and priority of a running transfer; the update asks OpenSim to go
    /// on from the first packet missing. Returns whether `id` was running.
    pub fn change(&mut self, id: Uuid, target: Target, priority: f32) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        let t = &mut self.transfers[i];
        if t.target != target {
            t.target = target;
            t.last_needed = None;
            t.needed_bytes = None;
            t.next_check = 0;
        }
        t.priority = priority;
        self.queue_send(id);
        if self.transfers[i].header.is_some() {
            self.check_done(i);
        }
        true
    }

    /// Stops a transfer and queues the cancel (`DiscardLevel = -1`, priority 0). Returns
    /// whether `id` was running.
    pub fn cancel(&mut self, id: Uuid) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        self.transfers.swap_remove(i);
        self.queue_cancel(id);
        true
    }

    /// Number of transfers running.
    pub fn active(&self) -> usize {
        self.transfers.len()
    }

    /// Whether `id` is being fetched.
    pub fn is_active(&self, id: Uuid) -> bool {
        self.find(id).is_some()
    }

    /// Packets dropped because they contradicted their `ImageData` (wrong size or number).
    pub fn rejected_packets(&self) -> u64 {
        self.rejected
    }

    /// Packets received twice.
    pub fn duplicate_packets(&self) -> u64 {
        self.duplicates
    }

    /// The next `RequestImage` to send (reliable), if any entries are pending.
    pub fn poll_transmit(&mut self) -> Option<RequestImage> {
        if self.to_send.is_empty() && self.cancels.is_empty() {
            return None;
        }
        let mut blocks = Vec::new();
        while blocks.len() < MAX_REQUESTS_PER_MESSAGE {
            if let Some(id) = self.cancels.pop() {
                blocks.push(request_image::RequestImage {
                    image: id,
                    discard_level: -1,
                    download_priority: 0.0,
                    packet: 0,
                    type_: 0,
                });
            } else if let Some(id) = self.to_send.pop() {
                if let Some(i) = self.find(id) {
                    blocks.push(self.transfers[i].request_block());
                }
            } else {
                break;
            }
        }
        if blocks.is_empty() {
            return None;
        }
        Some(RequestImage {
            agent_data: request_image::AgentData {
                agent_id: self.agent_id,
                session_id: self.session_id,
            },
            request_image: blocks.into(),
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<UdpEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.transfers
            .iter()
            .map(|t| {
                (t.last_activity + self.config.timeout)
                    .min(t.last_request.max(t.last_activity) + self.config.resend_after)
            })
            .min()
    }

    /// Times transfers out and re-sends stalled requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.transfers.len() {
            let t = &self.transfers[i];
            if now.saturating_duration_since(t.last_activity) >= self.config.timeout {
                let mut t = self.transfers.swap_remove(i);
                let have = t.contiguous_bytes() as usize;
                t.buf.truncate(have);
                self.queue_cancel(t.id);
                self.events.push_back(UdpEvent::TimedOut {
                    id: t.id,
                    data: t.buf,
                    size: t.header.map(|h| h.1),
                });
                continue;
            }
            let since = t.last_request.max(t.last_activity);
            if now.saturating_duration_since(since) >= self.config.resend_after {
                let id = t.id;
                self.transfers[i].last_request = now;
                self.queue_send(id);
            }
            i += 1;
        }
    }

    /// Takes in a decoded message. Returns whether it belonged to the image pipeline and to a
    /// running transfer.
    pub fn handle_message(&mut self, msg: &Message, now: Instant) -> bool {
        match msg {
            Message::ImageData(m) => self.on_image_data(m, now),
            Message::ImagePacket(m) => {
                self.on_image_packet(m.image_id.id, m.image_id.packet, &m.image_data.data, now)
            }
            Message::ImageNotInDatabase(m) => {
                let id = m.image_id.id;
                let Some(i) = self.find(id) else {
                    return false;
                };
                self.transfers.swap_remove(i);
                self.events.push_back(UdpEvent::NotFound { id });
                true
            }
            _ => false,
        }
    }

    fn find(&self, id: Uuid) -> Option<usize> {
        self.transfers.iter().position(|t| t.id == id)
    }

    fn queue_send(&mut self, id: Uuid) {
        if !self.to_send.contains(&id) {
            self.to_send.push(id);
        }
    }

    fn queue_cancel(&mut self, id: Uuid) {
        self.to_send.retain(|x| *x != id);
        if !self.cancels.contains(&id) {
            self.cancels.push(id);
        }
    }

    fn fail(&mut self, i: usize, error: UdpTransferError) {
        let t = self.transfers.swap_remove(i);
        self.queue_cancel(t.id);
        self.events.push_back(UdpEvent::Failed { id: t.id, error });
    }

    fn on_image_data(&mut self, m: &ImageData, now: Instant) -> bool {
        let id = m.image_id.id;
        let Some(i) = self.find(id) else {
            return false;
        };
        let (codec, size, packets) = (m.image_id.codec, m.image_id.size, m.image_id.packets);
        let data = &m.image_data.data;
        if size > self.config.max_image_size {
            self.fail(
                i,
                UdpTransferError::TooLarge {
                    size,
                    limit: self.config.max_image_size,
                },
            );
            return true;
        }
        if packet_count(u64::from(size)) != Some(packets) {
            self.fail(
                i,
                UdpTransferError::BadHeader("Packets does not match Size"),
            );
            return true;
        }
        if data.len() != (size as usize).min(FIRST_PACKET_SIZE) {
            self.fail(
                i,
                UdpTransferError::BadHeader("first packet length does not match Size"),
            );
            return true;
        }
        let t = &mut self.transfers[i];
        match t.header {
            // The same image again (a restarted transfer): a duplicate header.
            Some(h) if h == (codec, size, packets) => {
                if t.has(0) {
                    self.duplicates += 1;
                    return true;
                }
            }
            _ => {
                // First header, or one that describes another file: start over.
                t.header = Some((codec, size, packets));
                t.buf.clear();
                t.buf.resize(size as usize, 0);
                t.present.clear();
                t.present.resize(usize::from(packets).div_ceil(64), 0);
                t.contiguous = 0;
                t.received = 0;
                t.last_needed = None;
                t.needed_bytes = None;
                t.next_check = 0;
            }
        }
        self.place(i, 0, data, now);
        let early = std::mem::take(&mut self.transfers[i].early);
        for (n, d) in &early {
            self.place(i, *n, d, now);
        }
        self.check_done(i);
        true
    }

    fn on_image_packet(&mut self, id: Uuid, n: u16, data: &Bytes, now: Instant) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        let t = &mut self.transfers[i];
        if t.header.is_none() {
            if n == 0 || t.early.len() >= self.config.max_early_packets {
                self.rejected += 1;
            } else if t.early.iter().any(|(k, _)| *k == n) {
                self.duplicates += 1;
            } else {
                t.early.push((n, data.clone()));
                t.last_activity = now;
            }
            return true;
        }
        if self.place(i, n, data, now) {
            self.check_done(i);
        }
        true
    }

    /// Stores packet `n`; returns whether it was new and valid.
    fn place(&mut self, i: usize, n: u16, data: &[u8], now: Instant) -> bool {
        let t = &mut self.transfers[i];
        let Some((_, size, packets)) = t.header else {
            return false;
        };
        let (start, end) = packet_span(u64::from(size), n);
        if n >= packets || (end - start) as usize != data.len() {
            self.rejected += 1;
            return false;
        }
        if t.has(n) {
            self.duplicates += 1;
            return false;
        }
        t.buf[start as usize..end as usize].copy_from_slice(data);
        t.present[usize::from(n / 64)] |= 1 << (n % 64);
        t.received += data.len() as u64;
        t.last_activity = now;
        while t.contiguous < packets && t.has(t.contiguous) {
            t.contiguous += 1;
        }
        let expected = t.last_needed.map(|l| packet_span(u64::from(size), l).1);
        let event = UdpEvent::Progress {
            id: t.id,
            have: t.contiguous_bytes(),
            received: t.received,
            size,
            expected: expected.or(t.needed_bytes),
        };
        self.events.push_back(event);
        true
    }

    /// Completes transfer `i` if its target is reached.
    fn check_done(&mut self, i: usize) {
        let limits = self.config.limits;
        let t = &mut self.transfers[i];
        let Some((codec, size, packets)) = t.header else {
            return;
        };
        let have = t.contiguous_bytes();
        let done = match t.target {
            Target::Full => t.contiguous == packets,
            Target::OpenSimLayers(d) => {
                if t.last_needed.is_none() && have >= t.next_check {
                    match opensim_stop_from_prefix(&t.buf[..have as usize], size, d, &limits) {
                        Ok(last) => t.last_needed = Some(last),
                        Err(next) => t.next_check = next.max(have + 1),
                    }
                }
                t.last_needed.is_some_and(|l| t.contiguous > l) || t.contiguous == packets
            }
            Target::Resolution(d) => {
                if t.needed_bytes.is_none() && have >= t.next_check {
                    match resolution_need(&t.buf[..have as usize], d, &limits) {
                        Ok(bytes) => t.needed_bytes = Some(bytes),
                        Err(next) => t.next_check = next.max(have + 1),
                    }
                }
                t.needed_bytes.is_some_and(|b| have >= b) || t.contiguous == packets
            }
        };
        if !done {
            return;
        }
        let mut t = self.transfers.swap_remove(i);
        let full = t.contiguous == packets;
        if !full {
            t.buf.truncate(have as usize);
            // OpenSim stops by itself at its stop packet; only a resolution target asked for
            // the whole file and must cancel the rest.
            if matches!(t.target, Target::Resolution(_)) {
                self.queue_cancel(t.id);
            }
        }
        self.to_send.retain(|x| *x != t.id);
        self.events.push_back(UdpEvent::Complete {
            id: t.id,
            codec,
            data: t.buf,
            size,
        });
    }
}

/// The last wire packet OpenSim sends for `DiscardLevel = discard`, found from a received
/// prefix; `Err(len)` when the prefix must reach `len` bytes first.
fn opensim_stop_from_prefix(
    prefix: &[u8],
    size: u32,
    discard: u8,
    limits: &Limits,
) -> Result<u16, u64> {
    let have = prefix.len() as u64;
    if discard == 0 {
        // The last layer ends at the file size: everything is sent.
        return Ok(opensim_last_packet(size, &[size], 0));
    }
    let cs = match Codestream::parse(prefix, limits) {
        Ok(cs) => cs,
        Err(crate::CodestreamError::Truncated { needed, .. }) => return Err(needed as u64),
        // OpenSim's own parser may do better; its fallback guess is all that can be matched.
        Err(_) => {
            return Ok(opensim_last_packet(
                size,
                &default_layer_ends(size),
                discard,
            ));
        }
    };
    let layers = cs.header().cod.layers;
    let keep = layers.saturating_sub(u16::from(discard).min(layers.saturating_sub(1)));
    let budget = cs.budget();
    let ends = if budget.estimate.is_some() {
        default_layer_ends(size)
    } else {
        match budget.layers.get(usize::from(keep) - 1) {
            Some(l) if l.exactness == Exactness::Exact => {
                // Only the end of layer `keep` matters (and the first one, which is no larger);
                // the others are filled in so that the indexing matches OpenSim's array.
                let mut ends = vec![0u32; usize::from(layers)];
                ends[usize::from(keep) - 1] = layer_end(l.bytes, keep, layers, size);
                if let Some(last) = ends.last_mut() {
                    *last = size;
                }
                ends
            }
            _ => return Err(budget.pending_packet_end.unwrap_or(have).max(have + 1)),
        }
    };
    Ok(opensim_last_packet(size, &ends, discard))
}

/// The prefix length that decodes at resolution level `discard` exactly, or `Err(len)` when
/// the prefix must reach `len` bytes to tell.
fn resolution_need(prefix: &[u8], discard: u8, limits: &Limits) -> Result<u64, u64> {
    let have = prefix.len() as u64;
    match Codestream::parse(prefix, limits) {
        Ok(cs) => {
            let budget = cs.budget();
            let d = discard.min(budget.max_discard());
            match budget.level(d) {
                Some(l) if l.exactness == Exactness::Exact => Ok(l.bytes),
                // The packets cannot be followed: only the whole file will do.
                Some(l) if matches!(l.exactness, Exactness::Estimated(_)) => Ok(u64::MAX),
                _ => Err(budget.pending_packet_end.unwrap_or(have).max(have + 1)),
            }
        }
        Err(crate::CodestreamError::Truncated { needed, .. }) => Err(needed as u64),
        Err(_) => Ok(u64::MAX),
    }
}

/// OpenSim's inclusive end offset of layer number `n` (1-based) of `layers`: the next layer
/// starts where the first `n` layers end; the last layer ends at `size` (sic).
fn layer_end(prefix: u64, n: u16, layers: u16, size: u32) -> u32 {
    if n >= layers {
        size
    } else {
        u32::try_from(prefix.saturating_sub(1)).unwrap_or(size)
    }
}

fn layer_ends_of(cs: &Codestream<'_>, size: u32) -> Vec<u32> {
    let budget = cs.budget();
    let layers = cs.header().cod.layers;
    if budget.estimate.is_some() || !budget.layers.iter().all(|l| l.exactness.is_exact()) {
        return default_layer_ends(size);
    }
    budget
        .layers
        .iter()
        .map(|l| layer_end(l.bytes, l.layers, layers, size))
        .collect()
}

/// The quality-layer ends OpenSim uses for an asset: from the packet walk, or its fallback
/// guess (2, 5, 20, 50 and 100 % of the size) when the codestream cannot be walked.
pub fn opensim_layer_ends(asset: &[u8], limits: &Limits) -> Vec<u32> {
    let size = u32::try_from(asset.len()).unwrap_or(u32::MAX);
    match Codestream::parse(asset, limits) {
        Ok(cs) => layer_ends_of(&cs, size),
        Err(_) => default_layer_ends(size),
    }
}

/// OpenSim's `CreateDefaultLayers`.
fn default_layer_ends(size: u32) -> Vec<u32> {
    // OpenSim multiplies in single precision and truncates; f32 keeps this exact for sizes
    // up to 2^24, beyond which a byte of difference is irrelevant.
    let start = |f: f32| (size as f32 * f) as u32;
    let starts = [0, start(0.02), start(0.05), start(0.20), start(0.50)];
    let mut ends: Vec<u32> = starts
        .windows(2)
        .map(|w| w[1].wrapping_sub(1).min(size))
        .collect();
    ends.push(size);
    ends
}

/// OpenSim's `GetPacketForBytePosition`: the internal packet number holding byte `pos`.
fn packet_for_byte(pos: u32) -> i64 {
    (i64::from(pos) - FIRST_PACKET_SIZE as i64 + IMAGE_PACKET_SIZE as i64 - 1)
        / IMAGE_PACKET_SIZE as i64
        + 1
}

/// OpenSim's internal stop packet for `discard` (already made non-negative) given the layer
/// ends. Internal packet `n >= 2` is wire packet `n - 1`; 0 and 1 both mean `ImageData`.
fn opensim_stop(size: u32, ends: &[u32], discard: u8) -> u32 {
    let count = packet_count(u64::from(size)).map_or(u32::MAX, u32::from);
    if ends.is_empty() {
        return count;
    }
    let max_discard = ends.len() - 1;
    let d = usize::from(discard).min(max_discard);
    let end = ends[max_discard - d];
    // Integer division truncates toward zero, as in C#.
    let mut stop = u32::try_from(packet_for_byte(end).max(0)).unwrap_or(u32::MAX);
    if count == stop.saturating_add(1) {
        stop = count;
    }
    if stop == 1 && ends[0] > FIRST_PACKET_SIZE as u32 {
        stop += 1;
    }
    stop
}

/// The last wire packet OpenSim sends for `discard` (0 = only `ImageData`).
pub fn opensim_last_packet(size: u32, layer_ends: &[u32], discard: u8) -> u16 {
    let count = packet_count(u64::from(size)).unwrap_or(u16::MAX);
    let stop = opensim_stop(size, layer_ends, discard);
    u16::try_from(stop.saturating_sub(1))
        .unwrap_or(u16::MAX)
        .min(count - 1)
}

/// Why an asset cannot be split into packets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// More than 65535 packets would be needed.
    #[error("asset of {0} bytes needs more packets than the 16-bit packet number allows")]
    TooLarge(usize),
}

fn first_message(id: Uuid, asset: &Bytes, count: u16) -> Message {
    let n = asset.len().min(FIRST_PACKET_SIZE);
    Message::ImageData(ImageData {
        image_id: image_data::ImageId {
            id,
            codec: CODEC_J2C,
            size: asset.len() as u32,
            packets: count,
        },
        image_data: image_data::ImageData {
            data: asset.slice(..n),
        },
    })
}

fn next_message(id: Uuid, asset: &Bytes, n: u16) -> Message {
    let (start, end) = packet_span(asset.len() as u64, n);
    Message::ImagePacket(ImagePacket {
        image_id: image_packet::ImageId { id, packet: n },
        image_data: image_packet::ImageData {
            data: asset.slice(start as usize..end as usize),
        },
    })
}

/// Splits a whole asset into `ImageData` and every `ImagePacket`, as OpenSim sends it for
/// `DiscardLevel = 0` (the data are zero-copy slices of `asset`).
///
/// # Errors
/// [`SplitError::TooLarge`] above 65535 packets (about 65 MB).
pub fn split_image(id: Uuid, asset: &Bytes) -> Result<Vec<Message>, SplitError> {
    let count = packet_count(asset.len() as u64).ok_or(SplitError::TooLarge(asset.len()))?;
    let mut out = Vec::with_capacity(usize::from(count));
    out.push(first_message(id, asset, count));
    out.extend((1..count).map(|n| next_message(id, asset, n)));
    Ok(out)
}

/// Frames an image message the way OpenSim sends it: reliable, and `ImageData` zero-coded
/// when that makes it shorter. The caller sets the sequence number.
pub fn outgoing_packet(message: Message) -> Packet {
    let zero = matches!(message, Message::ImageData(_));
    let mut p = Packet::new(message);
    p.reliable = true;
    p.zero_coding = if zero {
        ZeroCoding::IfSmaller
    } else {
        ZeroCoding::Never
    };
    p
}

/// One image in an [`ImageSender`] queue (OpenSim's `J2KImage`).
#[derive(Debug)]
struct Outgoing {
    id: Uuid,
    /// `None`: no asset and no missing-image substitute.
    asset: Option<Bytes>,
    layer_ends: Vec<u32>,
    discard: i8,
    priority: f32,
    start_packet: u32,
    last_sequence: u32,
    current: u32,
    stop: u32,
    sent_info: bool,
    /// Insertion order, to break priority ties deterministically.
    serial: u64,
}

impl Outgoing {
    fn count(&self) -> u32 {
        match &self.asset {
            None => 0,
            Some(a) => packet_count(a.len() as u64).map_or(u32::MAX, u32::from),
        }
    }

    /// `J2KImage.RunUpdate` once the asset is known and decoded.
    fn run_update(&mut self) {
        if self.asset.is_none() {
            self.current = self.stop;
            return;
        }
        if self.discard >= 0 || self.stop == 0 {
            let max_discard = self.layer_ends.len().saturating_sub(1);
            if self.discard < 0 && self.stop == 0 {
                self.discard = i8::try_from(max_discard).unwrap_or(i8::MAX);
            }
            let d = u8::try_from(self.discard.max(0)).unwrap_or(0);
            let size = self.asset.as_ref().map_or(0, |a| a.len() as u32);
            self.stop = opensim_stop(size, &self.layer_ends, d);
            self.discard = i8::try_from(usize::from(d).min(max_discard)).unwrap_or(i8::MAX);
            self.current = self.start_packet;
        }
    }

    /// `J2KImage.SendPackets`: returns whether the transfer is over.
    fn send(&mut self, budget: usize, out: &mut Vec<Message>) -> (bool, usize) {
        let mut sent = 0;
        if self.current <= self.stop {
            let mut more = true;
            if !self.sent_info || self.current == 0 {
                more = !self.send_first(out);
                self.sent_info = true;
                self.current += 1;
                sent += 1;
            }
            if self.current < 2 {
                self.current = 2;
            }
            while more && sent < budget && self.current <= self.stop {
                more = self.send_next(out);
                self.current += 1;
                sent += 1;
            }
        }
        (self.current > self.stop, sent)
    }

    /// `SendFirstPacket`: returns whether nothing more follows.
    fn send_first(&mut self, out: &mut Vec<Message>) -> bool {
        let Some(asset) = &self.asset else {
            out.push(Message::ImageNotInDatabase(ImageNotInDatabase {
                image_id: image_not_in_database::ImageId { id: self.id },
            }));
            return true;
        };
        let count = self.count();
        out.push(first_message(
            self.id,
            asset,
            u16::try_from(count).unwrap_or(u16::MAX),
        ));
        if asset.len() <= FIRST_PACKET_SIZE {
            self.stop = 0;
            return true;
        }
        false
    }

    /// `SendPacket`: returns whether more may follow.
    fn send_next(&mut self, out: &mut Vec<Message>) -> bool {
        let Some(asset) = &self.asset else {
            return false;
        };
        let len = asset.len() as i64;
        let last_size = {
            let r = (len - FIRST_PACKET_SIZE as i64) % IMAGE_PACKET_SIZE as i64;
            if r == 0 { IMAGE_PACKET_SIZE as i64 } else { r }
        };
        let pos =
            FIRST_PACKET_SIZE as i64 + (i64::from(self.current) - 2) * IMAGE_PACKET_SIZE as i64;
        let mut size = if self.current == self.count() {
            last_size
        } else {
            IMAGE_PACKET_SIZE as i64
        };
        let mut complete = false;
        if pos + IMAGE_PACKET_SIZE as i64 > len {
            size = last_size;
            complete = true;
            if pos + size > len {
                size = len - pos;
            }
        }
        if size > 0 && pos >= 0 {
            let wire = u16::try_from(self.current - 1).unwrap_or(u16::MAX);
            out.push(Message::ImagePacket(ImagePacket {
                image_id: image_packet::ImageId {
                    id: self.id,
                    packet: wire,
                },
                image_data: image_packet::ImageData {
                    data: asset.slice(pos as usize..(pos + size) as usize),
                },
            }));
        }
        !complete
    }
}

/// Server side of the UDP image pipeline for one agent: OpenSimulator's image queue (see the
/// module documentation).
#[derive(Debug, Default)]
pub struct ImageSender {
    queue: Vec<Outgoing>,
    missing_image: Option<(Bytes, Vec<u32>)>,
    limits: Limits,
    serial: u64,
}

impl ImageSender {
    /// A queue that serves `missing_image` (OpenSim: the blank texture
    /// `5748decc-f629-461c-9a36-a35a221fe21f`) under the requested id when an asset does not
    /// exist, or `ImageNotInDatabase` when `None`.
    pub fn new(missing_image: Option<Bytes>) -> Self {
        let limits = Limits::default();
        ImageSender {
            queue: Vec::new(),
            missing_image: missing_image.map(|a| {
                let ends = opensim_layer_ends(&a, &limits);
                (a, ends)
            }),
            limits,
            serial: 0,
        }
    }

    /// Number of images queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes in a `RequestImage` that came in the packet numbered `sequence`; `lookup`
    /// returns a texture asset's bytes (`None` when missing or not a texture).
    pub fn handle_request(
        &mut self,
        sequence: u32,
        msg: &RequestImage,
        mut lookup: impl FnMut(Uuid) -> Option<Bytes>,
    ) {
        for block in &msg.request_image {
            self.enqueue(sequence, block, &mut lookup);
        }
    }

    fn enqueue(
        &mut self,
        sequence: u32,
        b: &request_image::RequestImage,
        lookup: &mut impl FnMut(Uuid) -> Option<Bytes>,
    ) {
        let mut priority = b.download_priority;
        if b.type_ == 1 {
            priority *= 2.0;
        }
        let cancel = b.discard_level == -1 && b.download_priority == 0.0;
        if let Some(i) = self.queue.iter().position(|o| o.id == b.image) {
            if cancel {
                self.queue.remove(i);
                return;
            }
            let o = &mut self.queue[i];
            if sequence > o.last_sequence {
                o.last_sequence = sequence;
                o.discard = b.discard_level;
                o.start_packet = b.packet.max(1);
                o.priority = priority;
                o.run_update();
            }
            return;
        }
        if cancel {
            return;
        }
        let (asset, layer_ends) = match lookup(b.image) {
            Some(a) => {
                let ends = opensim_layer_ends(&a, &self.limits);
                (Some(a), ends)
            }
            None => match &self.missing_image {
                Some((a, ends)) => (Some(a.clone()), ends.clone()),
                None => (None, Vec::new()),
            },
        };
        self.serial += 1;
        let mut o = Outgoing {
            id: b.image,
            asset,
            layer_ends,
            discard: b.discard_level,
            priority,
            start_packet: b.packet.max(1),
            // OpenSim leaves it at 0 for a new request.
            last_sequence: 0,
            current: 0,
            stop: 0,
            sent_info: false,
            serial: self.serial,
        };
        o.run_update();
        self.queue.push(o);
    }

    /// Produces up to `max_packets` messages, highest priority first (OpenSim's
    /// `ProcessImageQueue`); frame them with [`outgoing_packet`]. Returns whether images are
    /// still queued.
    pub fn poll(&mut self, max_packets: usize, out: &mut Vec<Message>) -> bool {
        let mut sent = 0;
        while sent < max_packets {
            let Some(i) = self
                .queue
                .iter()
                .enumerate()
                .max_by(|(_, a), (_, b)| {
                    a.priority
                        .total_cmp(&b.priority)
                        .then(b.serial.cmp(&a.serial))
                })
                .map(|(i, _)| i)
            else {
                return false;
            };
            let (done, n) = self.queue[i].send(max_packets - sent, out);
            sent += n;
            if done {
                self.queue.remove(i);
            } else if n == 0 {
                break;
            }
        }
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn packet_arithmetic() {
        assert_eq!(packet_count(0), Some(1));
        assert_eq!(packet_count(600), Some(1));
        assert_eq!(packet_count(601), Some(2));
        assert_eq!(packet_count(1600), Some(2));
        assert_eq!(packet_count(1601), Some(3));
        assert_eq!(packet_count(79234), Some(80));
        assert_eq!(packet_count(600 + 65534 * 1000), Some(u16::MAX));
        assert_eq!(packet_count(600 + 65534 * 1000 + 1), None);
        assert_eq!(packet_span(79234, 0), (0, 600));
        assert_eq!(packet_span(79234, 1), (600, 1600));
        assert_eq!(packet_span(79234, 79), (78600, 79234));
        assert_eq!(packet_span(160, 0), (0, 160));
    }

    #[test]
    fn default_layers_match_opensim() {
        // CreateDefaultLayers for 10000 bytes: starts 0, 200, 500, 2000, 5000.
        assert_eq!(default_layer_ends(10000), [199, 499, 1999, 4999, 10000]);
    }

    #[test]
    fn stop_packet_rules() {
        // Discard 0 ends at the file size: everything.
        let ends = [556, 1968, 7966, 31815, 79234];
        assert_eq!(opensim_last_packet(79234, &ends, 0), 79);
        // The capture: discard 2 of plywood stops after wire packet 8.
        assert_eq!(opensim_last_packet(79234, &ends, 2), 8);
        // Clamped to the number of layers.
        assert_eq!(opensim_last_packet(79234, &ends, 9), 0);
        // One packet short of the end: all of it.
        assert_eq!(opensim_last_packet(2600, &[1599, 2600], 1), 2);
        // Tiny files: just ImageData.
        assert_eq!(opensim_last_packet(160, &[160], 0), 0);
    }
}
