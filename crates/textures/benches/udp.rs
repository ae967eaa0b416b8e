//! UDP image pipeline: reassembly of the 79 KB plywood texture (80 packets) from decoded
//! messages (in order and shuffled) and from raw datagrams, and the server-side split.
//!
//! Run with `cargo bench -p opensim-textures --bench udp`.

use std::sync::LazyLock;
use std::time::Instant;

use bytes::Bytes;
use divan::{Bencher, black_box};
use opensim_messages::Message;
use opensim_packet::Packet;
use opensim_textures::udp::{
    ImageRequest, ImageSender, Target, UdpConfig, UdpEvent, UdpImageClient, outgoing_packet,
    split_image,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use uuid::Uuid;

fn main() {
    divan::main();
}

const ID: Uuid = Uuid::from_u128(0x8955_6747_24cb_43ed_920b_47ca_ed15_465f);

static PLYWOOD: LazyLock<Option<Bytes>> = LazyLock::new(|| {
    let dir = opensim_testkit::protocol_dir()?;
    opensim_testkit::files_with_extension(&dir.join("testdata"), "j2c")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("plywood"))
        .and_then(|p| std::fs::read(p).ok())
        .map(Bytes::from)
});

static MESSAGES: LazyLock<Vec<Message>> = LazyLock::new(|| {
    PLYWOOD
        .as_ref()
        .and_then(|p| split_image(ID, p).ok())
        .unwrap_or_default()
});

/// Reassembles `msgs` and returns the completed size.
fn reassemble<'a>(msgs: impl IntoIterator<Item = &'a Message>) -> usize {
    let now = Instant::now();
    let mut client = UdpImageClient::new(Uuid::nil(), Uuid::nil(), UdpConfig::default());
    client.request(ImageRequest::new(ID, Target::Full, 1.0), now);
    for m in msgs {
        client.handle_message(m, now);
    }
    let mut size = 0;
    while let Some(e) = client.poll_event() {
        if let UdpEvent::Complete { data, .. } = e {
            size = data.len();
        }
    }
    size
}

fn bytes() -> usize {
    PLYWOOD.as_ref().map_or(0, Bytes::len)
}

#[divan::bench]
fn reassemble_in_order(bencher: Bencher) {
    let msgs = &*MESSAGES;
    bencher
        .counter(divan::counter::BytesCount::new(bytes()))
        .bench(|| reassemble(black_box(msgs)));
}

#[divan::bench]
fn reassemble_shuffled(bencher: Bencher) {
    let mut msgs = MESSAGES.clone();
    msgs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
    bencher
        .counter(divan::counter::BytesCount::new(bytes()))
        .bench(|| reassemble(black_box(&msgs)));
}

#[divan::bench]
fn reassemble_from_datagrams(bencher: Bencher) {
    let wire: Vec<Bytes> = MESSAGES
        .iter()
        .filter_map(|m| outgoing_packet(m.clone()).to_bytes().ok())
        .collect();
    bencher
        .counter(divan::counter::BytesCount::new(bytes()))
        .bench(|| {
            let msgs: Vec<Message> = black_box(&wire)
                .iter()
                .filter_map(|d| Packet::decode_bytes(d).ok().map(|p| p.message))
                .collect();
            reassemble(&msgs)
        });
}

#[divan::bench]
fn split(bencher: Bencher) {
    let Some(asset) = PLYWOOD.as_ref() else {
        return;
    };
    bencher
        .counter(divan::counter::BytesCount::new(asset.len()))
        .bench(|| split_image(ID, black_box(asset)).map(|v| v.len()));
}

#[divan::bench]
fn sender_queue(bencher: Bencher) {
    let Some(asset) = PLYWOOD.as_ref() else {
        return;
    };
    let mut client = UdpImageClient::new(Uuid::nil(), Uuid::nil(), UdpConfig::default());
    client.request(ImageRequest::new(ID, Target::Full, 1.0), Instant::now());
    let Some(request) = client.poll_transmit() else {
        return;
    };
    bencher
        .counter(divan::counter::BytesCount::new(asset.len()))
        .bench(|| {
            let mut sim = ImageSender::new(None);
            sim.handle_request(1, black_box(&request), |_| Some(asset.clone()));
            let mut out = Vec::new();
            while sim.poll(16, &mut out) {}
            out.len()
        });
}
