#![allow(clippy::unwrap_used)]
//! Replays the fuzz corpus (`fuzz/corpus/packet_decode`, seeded from the fixtures by
//! `.ci/run`), any crash artifacts, and every fixture datagram through the fuzz target's
//! function under plain `cargo test`.

use std::path::Path;

use opensim_packet::fuzz_support::packet_decode;

fn replay_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.is_file() {
            packet_decode(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn corpus_and_artifacts_replay() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let n = replay_dir(&fuzz.join("corpus/packet_decode"))
        + replay_dir(&fuzz.join("artifacts/packet_decode"));
    eprintln!("replayed {n} corpus files");
}

#[test]
fn fixtures_replay() {
    let Some(root) = opensim_testkit::fixtures_dir() else {
        return;
    };
    let n = replay_dir(&root.join("opensim-0.9.2.2-session"))
        + replay_dir(&root.join("captured"))
        + replay_dir(&root.join("captured/layer_land"))
        + replay_dir(&root.join("captured/layer_varland"))
        + replay_dir(&root.join("peer-packets"));
    assert!(n > 150);
}

/// Found by the fuzzer: a message with NaN floats, which is not equal to itself.
#[test]
fn regression_nan_fields_compare_by_bytes() {
    let mut d = vec![
        64, 0, 0, 8, 81, 0, 255, 255, 0, 150, 0, 5, 96, 7, 211, 199, 156, 16, 64, 56, 0, 0, 192,
        106, 2, 0, 206, 113, 10, 179, 64, 125, 5, 191, 251, 112, 90, 63, 219, 15, 201, 63, 0, 0, 0,
    ];
    d.extend(std::iter::repeat_n(255u8, 107));
    d.extend([0, 7, 147, 110, 57, 5, 147, 110, 57]);
    packet_decode(&d);
}
