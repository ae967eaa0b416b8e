//! Our RGBA output against OpenJPEG's own command-line decoder, `opj_decompress`, at every
//! reduce level of the OpenSim test textures. It writes raw planar components (`.raw`: one
//! byte per sample for 8-bit images), which needs no image library to read.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{decode_at, testdata, tool};
use opensim_textures::{Codestream, Limits};

#[test]
fn same_pixels_as_opj_decompress_at_every_reduce_level() {
    let Some(opj) = tool("opj_decompress") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for (name, data) in testdata() {
        let cs = Codestream::parse(&data, &Limits::default()).unwrap();
        let comps = cs.header().siz.components.len();
        assert!(
            cs.header()
                .siz
                .components
                .iter()
                .all(|c| c.precision == 8 && !c.signed)
        );
        let input = dir.path().join(format!("{name}.j2k"));
        std::fs::write(&input, &data).unwrap();
        for reduce in 0..=cs.header().max_discard() {
            let out = dir.path().join(format!("{name}-{reduce}.raw"));
            let run = Command::new(&opj)
                .arg("-i")
                .arg(&input)
                .arg("-o")
                .arg(&out)
                .arg("-r")
                .arg(reduce.to_string())
                .arg("-quiet")
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{name} -r {reduce}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            let planes = std::fs::read(&out).unwrap();
            let ours = decode_at(&name, &data, reduce);
            let n = ours.width as usize * ours.height as usize;
            assert_eq!(planes.len(), n * comps, "{name} -r {reduce}: plane size");
            let expected: Vec<u8> = (0..n)
                .flat_map(|i| {
                    let s = |c: usize| planes[c * n + i];
                    match comps {
                        1 => [s(0), s(0), s(0), 255],
                        2 => [s(0), s(0), s(0), s(1)],
                        3 => [s(0), s(1), s(2), 255],
                        _ => [s(0), s(1), s(2), s(3)],
                    }
                })
                .collect();
            let diff = ours
                .pixels
                .iter()
                .zip(&expected)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                diff, 0,
                "{name} -r {reduce}: {diff} samples differ from opj_decompress"
            );
            compared += 1;
        }
    }
    if !testdata().is_empty() {
        assert_eq!(compared, 24, "four textures, six reduce levels each");
    }
}
