//! The key property of the byte budgets: a prefix of exactly the budgeted length decodes to the
//! same pixels as the whole file at that level, and one byte less does not (wherever the last
//! packet's contribution is visible at all).
#![allow(clippy::unwrap_used)]

mod common;

use common::{check_prefix, testdata};
use opensim_textures::{Codestream, Exactness, Limits};

#[test]
fn discard_level_prefixes_decode_like_the_whole_file() {
    let mut meaningful = 0;
    for (name, data) in testdata() {
        let cs = Codestream::parse(&data, &Limits::default()).unwrap();
        let budget = cs.budget();
        let layers = cs.header().cod.layers;
        assert_eq!(budget.estimate, None, "{name}");
        assert_eq!(budget.stream_end, Some(data.len() as u64), "{name}");
        assert_eq!(budget.levels.len(), 6, "{name}: five decomposition levels");
        let mut last = u64::MAX;
        for level in &budget.levels {
            assert_eq!(level.exactness, Exactness::Exact, "{name}");
            assert!(
                level.bytes <= last,
                "{name}: budgets shrink with the discard level"
            );
            last = level.bytes;
            let (w, h) = (level.width, level.height);
            assert_eq!((w, h), cs.header().siz.size_at_discard(level.discard));
            meaningful += usize::from(check_prefix(
                &name,
                &data,
                level.bytes as usize,
                level.discard,
                0,
                layers,
            ));
        }
    }
    // The halo's last layer is invisible below full size (5 cases); the rest must be tight.
    if meaningful > 0 {
        assert!(
            meaningful >= 19,
            "only {meaningful} tightness checks were meaningful"
        );
    }
}

#[test]
fn layer_prefixes_decode_like_the_whole_file() {
    for (name, data) in testdata() {
        let cs = Codestream::parse(&data, &Limits::default()).unwrap();
        let budget = cs.budget();
        let total = cs.header().cod.layers;
        assert_eq!(budget.layers.len(), usize::from(total));
        for layer in &budget.layers {
            assert_eq!(layer.exactness, Exactness::Exact, "{name}");
            assert!(check_prefix(
                &name,
                &data,
                layer.bytes as usize,
                0,
                layer.layers,
                total
            ));
        }
    }
}

#[test]
fn prefixes_report_what_they_can_decode() {
    let mut exact_from_prefix = 0;
    for (name, data) in testdata() {
        let cs = Codestream::parse(&data, &Limits::default()).unwrap();
        let whole = cs.budget();
        let header_len = cs.header().header_len;
        // A prefix reports a figure as exact only when it saw every packet the figure depends
        // on; then it must agree with the whole file. Figures beyond the cut are incomplete.
        let step = (data.len() / 97).max(1);
        for cut in (header_len + 2..data.len()).step_by(step) {
            let part = Codestream::parse(&data[..cut], &Limits::default())
                .unwrap()
                .budget();
            assert_eq!(part.levels.len(), whole.levels.len());
            assert!(part.stream_end.is_none_or(|e| e <= cut as u64));
            let pairs = part
                .levels
                .iter()
                .map(|l| (l.bytes, l.exactness))
                .zip(whole.levels.iter().map(|l| l.bytes));
            let layer_pairs = part
                .layers
                .iter()
                .map(|l| (l.bytes, l.exactness))
                .zip(whole.layers.iter().map(|l| l.bytes));
            for ((bytes, exactness), whole_bytes) in pairs.chain(layer_pairs) {
                match exactness {
                    Exactness::Exact => {
                        assert_eq!(bytes, whole_bytes, "{name}: cut {cut}");
                        exact_from_prefix += 1;
                    }
                    Exactness::Incomplete => assert!(bytes >= cut as u64, "{name}: cut {cut}"),
                    other => panic!("{name}: cut {cut}: {other:?}"),
                }
                if whole_bytes > cut as u64 {
                    assert_eq!(exactness, Exactness::Incomplete, "{name}: cut {cut}");
                }
            }
            let (p, w) = (
                part.best_discard_within(cut as u64),
                whole.best_discard_within(cut as u64),
            );
            assert!(
                p.is_none() || p >= w,
                "{name}: cut {cut}: prefix claims {p:?}, truth {w:?}"
            );
        }
    }
    if !testdata().is_empty() {
        assert!(
            exact_from_prefix > 100,
            "prefixes rarely gave exact figures ({exact_from_prefix})"
        );
    }
}

#[test]
fn opensim_udp_layer_mapping() {
    for (name, data) in testdata() {
        let budget = Codestream::parse(&data, &Limits::default())
            .unwrap()
            .budget();
        let l = budget.layers.len() as u16;
        assert_eq!(budget.opensim_layers_for_discard(0), l, "{name}");
        assert_eq!(budget.opensim_layers_for_discard(200), 1, "{name}");
        if l > 2 {
            assert_eq!(budget.opensim_layers_for_discard(2), l - 2, "{name}");
        }
    }
}
