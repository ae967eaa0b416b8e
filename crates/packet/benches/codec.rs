//! Codec benchmarks: `cargo bench -p opensim-packet`.
//!
//! Decodes and encodes the datagrams of the real OpenSimulator 0.9.2.2 session (one message
//! type at a time, and the whole mix), zero-decoding alone, and a plain copy of the same bytes
//! as the baseline. The allocation profiler reports heap allocations per iteration.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use opensim_packet::{Packet, zerocode};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    if MIX.is_empty() {
        eprintln!("skipped: no fixtures (set OPENSIM_FIXTURES)");
        return;
    }
    divan::main();
}

/// (message name, datagram) for every datagram of the session capture.
static MIX: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let root = std::env::var_os("OPENSIM_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let dir = root.join("opensim-0.9.2.2-session");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.splitn(3, '_').nth(2)?.to_string();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
});

fn total_bytes() -> usize {
    MIX.iter().map(|(_, d)| d.len()).sum()
}

fn first(name: &str) -> &'static [u8] {
    &MIX.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the session"))
        .1
}

/// Every message type of the session capture.
const TYPES: &[&str] = &[
    "AgentMovementComplete",
    "AgentThrottle",
    "AgentUpdate",
    "AvatarAnimation",
    "AvatarAppearance",
    "ChatFromSimulator",
    "ChatFromViewer",
    "CoarseLocationUpdate",
    "CompleteAgentMovement",
    "CompletePingCheck",
    "ImprovedTerseObjectUpdate",
    "LayerData",
    "LogoutReply",
    "LogoutRequest",
    "ObjectUpdate",
    "PacketAck",
    "ParcelOverlay",
    "ParcelPropertiesRequest",
    "RegionHandshake",
    "RegionHandshakeReply",
    "SimStats",
    "SimulatorViewerTimeMessage",
    "StartPingCheck",
    "UseCircuitCode",
];

#[divan::bench(args = TYPES)]
fn decode_type(bencher: Bencher, name: &str) {
    let d = first(name);
    bencher
        .counter(BytesCount::new(d.len()))
        .bench(|| Packet::decode(black_box(d)));
}

#[divan::bench(args = TYPES)]
fn encode_type(bencher: Bencher, name: &str) {
    let p = Packet::decode(first(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = BytesMut::with_capacity(8192);
    bencher.bench_local(|| {
        out.clear();
        black_box(&p).encode(&mut out)
    });
}

#[divan::bench]
fn decode_mix(bencher: Bencher) {
    bencher
        .counter(BytesCount::new(total_bytes()))
        .counter(ItemsCount::new(MIX.len()))
        .bench(|| {
            for (_, d) in MIX.iter() {
                // Observed by reference: a receiver matches on the result where it lies,
                // and a by-value `black_box` would add a copy of the packet of its own.
                black_box(&Packet::decode(black_box(d)));
            }
        });
}

#[divan::bench]
fn decode_bytes_mix(bencher: Bencher) {
    let shared: Vec<Bytes> = MIX.iter().map(|(_, d)| Bytes::from(d.clone())).collect();
    bencher
        .counter(BytesCount::new(total_bytes()))
        .counter(ItemsCount::new(MIX.len()))
        .bench(|| {
            for d in &shared {
                black_box(&Packet::decode_bytes(black_box(d)));
            }
        });
}

#[divan::bench]
fn encode_mix(bencher: Bencher) {
    let packets: Vec<Packet> = MIX
        .iter()
        .map(|(n, d)| Packet::decode(d).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect();
    let mut out = BytesMut::with_capacity(8192);
    bencher
        .counter(BytesCount::new(total_bytes()))
        .counter(ItemsCount::new(MIX.len()))
        .bench_local(|| {
            for p in &packets {
                out.clear();
                let _ = black_box(p.encode(&mut out));
            }
        });
}

/// The baseline: copying the same datagrams into a buffer.
#[divan::bench]
fn copy_mix(bencher: Bencher) {
    let mut out = vec![0u8; 8192];
    bencher
        .counter(BytesCount::new(total_bytes()))
        .counter(ItemsCount::new(MIX.len()))
        .bench_local(|| {
            for (_, d) in MIX.iter() {
                out[..d.len()].copy_from_slice(black_box(d));
                black_box(&out);
            }
        });
}

/// Zero-decoding alone, over the zero-coded datagrams of the session.
#[divan::bench]
fn zero_decode(bencher: Bencher) {
    let coded: Vec<&[u8]> = MIX
        .iter()
        .filter(|(_, d)| d[0] & 0x80 != 0)
        .map(|(_, d)| &d[6..])
        .collect();
    let bytes: usize = coded.iter().map(|d| d.len()).sum();
    let mut out = vec![0u8; zerocode::MAX_DECODED_LEN];
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        for d in &coded {
            let _ = black_box(zerocode::decode_into(black_box(d), &mut out));
        }
    });
}

/// A second baseline: copying each datagram into a buffer of its own (what owning it costs).
#[divan::bench]
fn copy_mix_owned(bencher: Bencher) {
    bencher
        .counter(BytesCount::new(total_bytes()))
        .counter(ItemsCount::new(MIX.len()))
        .bench(|| {
            for (_, d) in MIX.iter() {
                black_box(&black_box(d).to_vec());
            }
        });
}
