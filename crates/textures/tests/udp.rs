//! The UDP image pipeline against the `texture-udp` capture of OpenSimulator 0.9.2.2, and the
//! server-side queue against the same capture.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use opensim_messages::{
    ImageData, ImagePacket, Message, RequestImage, image_data, image_packet, request_image,
};
use opensim_packet::Packet;
use opensim_textures::udp::{
    ImageRequest, ImageSender, ImageType, Target, UdpConfig, UdpEvent, UdpImageClient,
    UdpTransferError, outgoing_packet, split_image,
};
use opensim_textures::{Codestream, Limits, decode_rgba8};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use uuid::Uuid;

const PLYWOOD: &str = "89556747-24cb-43ed-920b-47caed15465f";
const MISSING: &str = "deadbeef-0000-4000-8000-00000000feed";

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The three requests of the capture, each with its sequence number and the image messages
/// the server sent after it.
struct Capture {
    requests: Vec<(u32, RequestImage)>,
    replies: Vec<Vec<Message>>,
}

fn capture() -> Option<Capture> {
    let dir = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http/texture-udp")?;
    let mut requests = Vec::new();
    let mut replies: Vec<Vec<Message>> = Vec::new();
    for path in opensim_testkit::files_with_extension(&dir, "bin") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.contains("_c2s_RequestImage") || name.contains("_s2c_Image")) {
            continue;
        }
        let packet = Packet::decode(&std::fs::read(&path).unwrap()).unwrap();
        match packet.message {
            Message::RequestImage(r) => {
                assert!(packet.reliable, "{name}: RequestImage is sent reliable");
                requests.push((packet.sequence, r));
                replies.push(Vec::new());
            }
            m => {
                assert!(packet.reliable, "{name}");
                replies.last_mut().unwrap().push(m);
            }
        }
    }
    assert_eq!(requests.len(), 3);
    Some(Capture { requests, replies })
}

fn testfile(tag: &str) -> Option<Vec<u8>> {
    common::testdata()
        .into_iter()
        .find(|(n, _)| n.contains(tag))
        .map(|(_, d)| d)
}

fn client_for(c: &Capture) -> UdpImageClient {
    let a = &c.requests[0].1.agent_data;
    UdpImageClient::new(a.agent_id, a.session_id, UdpConfig::default())
}

fn events(client: &mut UdpImageClient) -> Vec<UdpEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// A completed transfer: id and data, printed as id, length and a hash.
#[derive(PartialEq, Eq)]
struct Done(Uuid, Vec<u8>);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hash = self.1.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        write!(f, "Done({}, {} bytes, {hash:016x})", self.0, self.1.len())
    }
}

fn completions(evs: &[UdpEvent]) -> Vec<Done> {
    evs.iter()
        .filter_map(|e| match e {
            UdpEvent::Complete { id, data, .. } => Some(Done(*id, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn capture_reassembles_to_what_opensim_served() {
    let Some(c) = capture() else { return };
    let plywood = testfile("plywood").unwrap();
    let blank = testfile("blank").unwrap();
    let http_body = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http/texture-http")
        .map(|d| std::fs::read(d.join("0103_c2s_http_resp_body.bin")).unwrap());
    let mut client = client_for(&c);
    let now = Instant::now();

    // 1. Plywood, whole file: the request is the one the capture sent.
    client.request(
        ImageRequest::new(id(PLYWOOD), Target::Full, 1_013_000.0),
        now,
    );
    assert_eq!(client.poll_transmit().unwrap(), c.requests[0].1);
    assert!(client.poll_transmit().is_none());
    for m in &c.replies[0] {
        assert!(client.handle_message(m, now));
    }
    let done = completions(&events(&mut client));
    assert_eq!(done, [Done(id(PLYWOOD), plywood.clone())]);
    if let Some(body) = http_body {
        assert_eq!(done[0].1, body, "UDP and HTTP bodies are the same bytes");
    }

    // 2. The missing texture: OpenSim sent its 160-byte blank texture under the asked id.
    client.request(
        ImageRequest::new(id(MISSING), Target::Full, 1_013_000.0),
        now,
    );
    assert_eq!(client.poll_transmit().unwrap(), c.requests[1].1);
    for m in &c.replies[1] {
        assert!(client.handle_message(m, now));
    }
    assert_eq!(
        completions(&events(&mut client)),
        [Done(id(MISSING), blank.clone())]
    );

    // 3. Plywood at discard 2: ImageData still says 79234 bytes / 80 packets, but only 9
    // packets come; the client works out OpenSim's stop packet and completes on the last.
    client.request(
        ImageRequest::new(id(PLYWOOD), Target::OpenSimLayers(2), 1_013_000.0),
        now,
    );
    assert_eq!(client.poll_transmit().unwrap(), c.requests[2].1);
    let (last, rest) = c.replies[2].split_last().unwrap();
    for m in rest {
        client.handle_message(m, now);
    }
    assert!(completions(&events(&mut client)).is_empty());
    client.handle_message(last, now);
    let done = completions(&events(&mut client));
    assert_eq!(done, [Done(id(PLYWOOD), plywood[..8600].to_vec())]);
    assert_eq!(client.active(), 0);
    // OpenSim stopped by itself: nothing to cancel.
    assert!(client.poll_transmit().is_none());
    // Three layers of five: full size, lower quality.
    let img = decode_rgba8(&done[0].1, 0).unwrap();
    assert_eq!((img.width, img.height), (512, 512));
}

#[test]
fn out_of_order_and_duplicate_packets() {
    let Some(c) = capture() else { return };
    let plywood = testfile("plywood").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..20 {
        let mut msgs = c.replies[0].clone();
        let dups: Vec<Message> = msgs.choose_multiple(&mut rng, 10).cloned().collect();
        msgs.extend(dups);
        msgs.shuffle(&mut rng);
        let mut client = client_for(&c);
        let now = Instant::now();
        client.request(ImageRequest::new(id(PLYWOOD), Target::Full, 1.0), now);
        for m in &msgs {
            client.handle_message(m, now);
        }
        let done = completions(&events(&mut client));
        assert_eq!(done, [Done(id(PLYWOOD), plywood.clone())], "round {round}");
        // Duplicates that came after completion belong to no transfer any more.
        assert!(client.duplicate_packets() <= 10);
        assert_eq!(client.rejected_packets(), 0);
    }
}

#[test]
fn image_not_in_database() {
    let Some(c) = capture() else { return };
    // A simulator without a "missing image" texture answers ImageNotInDatabase.
    let mut sim = ImageSender::new(None);
    let (seq, req) = &c.requests[1];
    sim.handle_request(*seq, req, |_| None);
    let mut out = Vec::new();
    assert!(!sim.poll(100, &mut out));
    assert_eq!(out.len(), 1);
    assert!(matches!(&out[0], Message::ImageNotInDatabase(m) if m.image_id.id == id(MISSING)));
    // Through the wire format and into the client.
    let wire = outgoing_packet(out.remove(0)).to_bytes().unwrap();
    let msg = Packet::decode(&wire).unwrap().message;
    let mut client = client_for(&c);
    let now = Instant::now();
    client.request(ImageRequest::new(id(MISSING), Target::Full, 1.0), now);
    assert!(client.handle_message(&msg, now));
    assert_eq!(
        events(&mut client),
        [UdpEvent::NotFound { id: id(MISSING) }]
    );
    assert!(!client.is_active(id(MISSING)));
}

#[test]
fn cancel_and_reprioritise() {
    let Some(c) = capture() else { return };
    let mut client = client_for(&c);
    let now = Instant::now();
    client.request(
        ImageRequest {
            id: id(PLYWOOD),
            target: Target::Full,
            priority: 10.0,
            kind: ImageType::Baked,
        },
        now,
    );
    client.poll_transmit().unwrap();
    for m in &c.replies[0][..5] {
        client.handle_message(m, now);
    }
    // A new priority and discard level: the update resumes after the 5 packets held.
    assert!(client.change(id(PLYWOOD), Target::OpenSimLayers(1), 99.0));
    let update = client.poll_transmit().unwrap();
    assert_eq!(
        update.request_image,
        [request_image::RequestImage {
            image: id(PLYWOOD),
            discard_level: 1,
            download_priority: 99.0,
            packet: 5,
            type_: 1,
        }]
    );
    assert!(client.cancel(id(PLYWOOD)));
    let cancel = client.poll_transmit().unwrap();
    assert_eq!(
        cancel.request_image,
        [request_image::RequestImage {
            image: id(PLYWOOD),
            discard_level: -1,
            download_priority: 0.0,
            packet: 0,
            type_: 0,
        }]
    );
    // Packets still in flight are not ours any more.
    assert!(!client.handle_message(&c.replies[0][6], now));
    assert!(
        events(&mut client)
            .iter()
            .all(|e| matches!(e, UdpEvent::Progress { .. }))
    );
    assert!(!client.cancel(id(PLYWOOD)));

    // The simulator side drops a cancelled transfer, keeping what it already sent.
    let plywood = Bytes::from(testfile("plywood").unwrap());
    let mut sim = ImageSender::new(None);
    let (seq, req) = &c.requests[0];
    sim.handle_request(*seq, req, |_| Some(plywood.clone()));
    let mut out = Vec::new();
    assert!(sim.poll(3, &mut out));
    sim.handle_request(seq + 1, &cancel, |_| None);
    assert!(!sim.poll(100, &mut out));
    assert_eq!(out.len(), 3);
}

#[test]
fn resend_and_timeout_with_a_fake_clock() {
    let Some(c) = capture() else { return };
    let plywood = testfile("plywood").unwrap();
    let config = UdpConfig::default();
    let mut client = client_for(&c);
    let t0 = Instant::now();
    client.request(ImageRequest::new(id(PLYWOOD), Target::Full, 1.0), t0);
    client.poll_transmit().unwrap();
    assert_eq!(client.next_deadline(), Some(t0 + config.resend_after));
    client.handle_timeout(t0 + config.resend_after - Duration::from_millis(1));
    assert!(client.poll_transmit().is_none());
    client.handle_timeout(t0 + config.resend_after);
    assert_eq!(client.poll_transmit().unwrap().request_image[0].packet, 0);

    let t1 = t0 + Duration::from_secs(7);
    for m in &c.replies[0][..3] {
        client.handle_message(m, t1);
    }
    client.handle_timeout(t1 + config.timeout - Duration::from_millis(1));
    let resend = client.poll_transmit().unwrap();
    assert_eq!(
        resend.request_image[0].packet, 3,
        "resumes after what is held"
    );
    assert!(
        events(&mut client)
            .iter()
            .all(|e| !matches!(e, UdpEvent::TimedOut { .. }))
    );
    client.handle_timeout(t1 + config.timeout);
    let evs = events(&mut client);
    assert_eq!(
        evs,
        [UdpEvent::TimedOut {
            id: id(PLYWOOD),
            data: plywood[..2600].to_vec(),
            size: Some(79234),
        }]
    );
    assert_eq!(
        client.poll_transmit().unwrap().request_image[0].discard_level,
        -1
    );
    assert_eq!(client.next_deadline(), None);
}

#[test]
fn resolution_target_stops_at_the_budget() {
    let Some(c) = capture() else { return };
    let plywood = testfile("plywood").unwrap();
    let need = Codestream::parse(&plywood, &Limits::default())
        .unwrap()
        .budget()
        .bytes_for_discard(2)
        .unwrap();
    let mut client = client_for(&c);
    let now = Instant::now();
    client.request(
        ImageRequest::new(id(PLYWOOD), Target::Resolution(2), 1.0),
        now,
    );
    assert_eq!(
        client.poll_transmit().unwrap().request_image[0].discard_level,
        0
    );
    for m in &c.replies[0] {
        client.handle_message(m, now);
    }
    let done = completions(&events(&mut client));
    assert_eq!(done.len(), 1);
    let data = &done[0].1;
    assert!(data.len() as u64 >= need && (data.len() as u64) < need + 1000);
    assert_eq!(data[..], plywood[..data.len()]);
    assert_eq!(
        decode_rgba8(data, 2).unwrap(),
        decode_rgba8(&plywood, 2).unwrap()
    );
    // The rest is cancelled.
    assert_eq!(
        client.poll_transmit().unwrap().request_image[0].discard_level,
        -1
    );
}

#[test]
fn splitter_matches_the_capture() {
    let Some(c) = capture() else { return };
    let plywood = Bytes::from(testfile("plywood").unwrap());
    let split = split_image(id(PLYWOOD), &plywood).unwrap();
    assert_eq!(split.len(), 80);
    assert_eq!(split, c.replies[0], "same messages as OpenSim sent");
    // ImageData zero-coded, as OpenSim did (625 bytes on the wire for 600 of data).
    let wire = outgoing_packet(split[0].clone()).to_bytes().unwrap();
    assert_eq!(wire[0] & 0xC0, 0xC0, "reliable and zero-coded");
    assert_eq!(wire.len(), 625);
}

#[test]
fn sender_replays_the_capture() {
    let Some(c) = capture() else { return };
    let plywood = Bytes::from(testfile("plywood").unwrap());
    let blank = Bytes::from(testfile("blank").unwrap());
    let mut sim = ImageSender::new(Some(blank));
    for (k, (seq, req)) in c.requests.iter().enumerate() {
        sim.handle_request(*seq, req, |i| (i == id(PLYWOOD)).then(|| plywood.clone()));
        let mut out = Vec::new();
        // Throttled in slices, as the simulator would.
        while sim.poll(7, &mut out) {}
        assert_eq!(out, c.replies[k], "request {k}");
    }
}

#[test]
fn resume_fetches_only_the_missing_packets() {
    let plywood = match testfile("plywood") {
        Some(p) => Bytes::from(p),
        None => return,
    };
    let agent = Uuid::from_u128(1);
    let mut client = UdpImageClient::new(agent, Uuid::from_u128(2), UdpConfig::default());
    let mut sim = ImageSender::new(None);
    let now = Instant::now();
    let mut seq = 0u32;
    let mut wire_bytes = 0usize;
    let mut run = |client: &mut UdpImageClient, sim: &mut ImageSender| {
        while let Some(req) = client.poll_transmit() {
            seq += 1;
            sim.handle_request(seq, &req, |_| Some(plywood.clone()));
        }
        let mut out = Vec::new();
        while sim.poll(10, &mut out) {}
        for m in &out {
            wire_bytes += match m {
                Message::ImageData(d) => d.image_data.data.len(),
                Message::ImagePacket(p) => p.image_data.data.len(),
                _ => 0,
            };
            client.handle_message(m, now);
        }
        completions(&events(client))
    };
    client.request(
        ImageRequest::new(id(PLYWOOD), Target::OpenSimLayers(2), 5.0),
        now,
    );
    let first = run(&mut client, &mut sim);
    assert_eq!(first[0].1.len(), 8600);
    client
        .resume(
            ImageRequest::new(id(PLYWOOD), Target::Full, 5.0),
            &first[0].1,
            79234,
            now,
        )
        .unwrap();
    let second = run(&mut client, &mut sim);
    assert_eq!(second, [Done(id(PLYWOOD), plywood.to_vec())]);
    // A fresh transfer always starts with ImageData, then goes on from `Packet` exactly:
    // only those 600 bytes come twice.
    assert_eq!(wire_bytes, 8600 + 600 + (79234 - 8600));
    assert_eq!(client.duplicate_packets(), 1);
}

#[test]
fn hostile_headers_and_packets() {
    let now = Instant::now();
    let tid = Uuid::from_u128(9);
    let header = |size: u32, packets: u16, len: usize| {
        Message::ImageData(ImageData {
            image_id: image_data::ImageId {
                id: tid,
                codec: 2,
                size,
                packets,
            },
            image_data: image_data::ImageData {
                data: Bytes::from(vec![0; len]),
            },
        })
    };
    let run = |m: Message| {
        let mut client = UdpImageClient::new(Uuid::nil(), Uuid::nil(), UdpConfig::default());
        client.request(ImageRequest::new(tid, Target::Full, 1.0), now);
        client.poll_transmit();
        client.handle_message(&m, now);
        let evs = events(&mut client);
        (evs, client)
    };
    let (evs, _) = run(header(u32::MAX, 1, 600));
    assert!(matches!(
        &evs[..],
        [UdpEvent::Failed {
            error: UdpTransferError::TooLarge { .. },
            ..
        }]
    ));
    let (evs, mut client) = run(header(5000, 2, 600));
    assert!(matches!(
        &evs[..],
        [UdpEvent::Failed {
            error: UdpTransferError::BadHeader(_),
            ..
        }]
    ));
    assert_eq!(
        client.poll_transmit().unwrap().request_image[0].discard_level,
        -1
    );
    let (evs, _) = run(header(5000, 6, 599));
    assert!(matches!(&evs[..], [UdpEvent::Failed { .. }]));

    // Packets of the wrong length or number are dropped, not stored.
    let (_, mut client) = run(header(2000, 3, 600));
    let packet = |n: u16, len: usize| {
        Message::ImagePacket(ImagePacket {
            image_id: image_packet::ImageId { id: tid, packet: n },
            image_data: image_packet::ImageData {
                data: Bytes::from(vec![1; len]),
            },
        })
    };
    for m in [
        packet(1, 999),
        packet(2, 1000),
        packet(3, 400),
        packet(60000, 1000),
    ] {
        client.handle_message(&m, now);
    }
    assert_eq!(client.rejected_packets(), 4);
    client.handle_message(&packet(1, 1000), now);
    client.handle_message(&packet(2, 400), now);
    assert!(matches!(
        events(&mut client).last(),
        Some(UdpEvent::Complete { data, .. }) if data.len() == 2000
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every test texture, split as OpenSim does and delivered in any order with repeats,
    /// comes back byte for byte.
    #[test]
    fn split_then_shuffled_reassembly(
        file in 0usize..4,
        seed in any::<u64>(),
        dups in 0usize..20,
    ) {
        let files = common::testdata();
        if files.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(files[file].1.clone());
        let tid = Uuid::from_u128(seed.into());
        let mut msgs = split_image(tid, &data).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let extra: Vec<Message> = msgs.choose_multiple(&mut rng, dups).cloned().collect();
        msgs.extend(extra);
        msgs.shuffle(&mut rng);
        let mut client = UdpImageClient::new(Uuid::nil(), Uuid::nil(), UdpConfig::default());
        let now = Instant::now();
        client.request(ImageRequest::new(tid, Target::Full, 1.0), now);
        for m in &msgs {
            // Through the wire format, as a real datagram would come.
            let wire = outgoing_packet(m.clone()).to_bytes().unwrap();
            client.handle_message(&Packet::decode(&wire).unwrap().message, now);
        }
        let done = completions(&events(&mut client));
        prop_assert_eq!(done, vec![Done(tid, data.to_vec())]);
    }
}
