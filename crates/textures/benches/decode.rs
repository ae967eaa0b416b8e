//! Decode time per OpenSim test texture at reduce levels 0 to 2, plus the header parse and the
//! packet walk that computes byte budgets.
//!
//! Run with `cargo bench -p opensim-textures --bench decode`. Compare with OpenJPEG's own tool
//! through `crates/textures/benches/opj_decompress.sh` (hyperfine).

use std::sync::LazyLock;

use divan::{Bencher, black_box};
use opensim_textures::{Codestream, Limits, decode_rgba8};

fn main() {
    divan::main();
}

const NAMES: [&str; 4] = ["blank", "terrain_dirt", "halo", "plywood"];

static FILES: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let Some(dir) = opensim_testkit::protocol_dir() else {
        return Vec::new();
    };
    opensim_testkit::files_with_extension(&dir.join("testdata"), "j2c")
        .into_iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
});

fn file(name: &str) -> Option<&'static [u8]> {
    FILES
        .iter()
        .find(|(n, _)| n.ends_with(name))
        .map(|(_, d)| d.as_slice())
}

#[divan::bench(args = NAMES, consts = [0, 1, 2])]
fn decode<const REDUCE: u8>(bencher: Bencher, name: &str) {
    let Some(data) = file(name) else {
        return;
    };
    bencher
        .counter(divan::counter::BytesCount::new(data.len()))
        .bench(|| decode_rgba8(black_box(data), REDUCE).map(|i| i.pixels.len()));
}

#[divan::bench(args = NAMES)]
fn parse_header(bencher: Bencher, name: &str) {
    let Some(data) = file(name) else {
        return;
    };
    bencher.bench(|| {
        Codestream::parse(black_box(data), &Limits::default()).map(|c| c.header().header_len)
    });
}

#[divan::bench(args = NAMES)]
fn byte_budget(bencher: Bencher, name: &str) {
    let Some(data) = file(name) else {
        return;
    };
    let Ok(cs) = Codestream::parse(data, &Limits::default()) else {
        return;
    };
    bencher
        .counter(divan::counter::BytesCount::new(data.len()))
        .bench(|| black_box(&cs).budget().packets);
}
