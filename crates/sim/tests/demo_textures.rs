//! The demo scene's generated textures: well-formed Second Life style codestreams, worn by its
//! prims, and served whole and in part over HTTP and UDP.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};

use common::{Viewer, fetch_udp, login, run, texture_cap};
use opensim_sim::{DEMO_TEXTURES, PLYWOOD, Scene, Sim, SimConfig, User};
use opensim_textures::decode::{DecodeOptions, decode_rgba8, decode_rgba8_with};
use opensim_textures::udp::{ImageRequest, Target, UdpEvent};
use opensim_textures::{
    Codestream, HttpConfig, Limits, ProgressiveConfig, ProgressiveFetcher, TextureHttp,
};
use uuid::Uuid;

#[test]
fn every_demo_prim_wears_a_served_texture_that_decodes_at_every_level() {
    let scene = Scene::default_demo();
    let mut uses: HashMap<Uuid, usize> = HashMap::new();
    for p in &scene.prims {
        assert!(
            scene.textures.contains_key(&p.texture),
            "prim {} wears {} which the scene does not serve",
            p.local_id,
            p.texture
        );
        *uses.entry(p.texture).or_default() += 1;
    }
    assert!(!uses.contains_key(&PLYWOOD));
    assert_eq!(
        uses.len(),
        DEMO_TEXTURES.len(),
        "every demo texture is worn"
    );
    assert!(uses.values().all(|&n| n >= 3), "{uses:?}");
    let ids: HashSet<Uuid> = DEMO_TEXTURES.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), DEMO_TEXTURES.len());
    assert_eq!(scene.textures.len(), DEMO_TEXTURES.len());

    let mut total = 0;
    for t in &DEMO_TEXTURES {
        let served = &scene.textures[&t.id];
        assert_eq!(served.as_ref(), t.j2c, "{}", t.name);
        total += t.j2c.len();
        let cs = Codestream::parse(t.j2c, &Limits::default()).unwrap();
        let h = cs.header();
        let (w, hgt) = (h.siz.width(), h.siz.height());
        assert!(
            w.is_power_of_two() && w == hgt && w >= 256,
            "{}: {w}x{hgt}",
            t.name
        );
        assert!(
            h.max_discard() >= 5,
            "{}: {} levels",
            t.name,
            h.max_discard()
        );
        assert!(h.cod.layers > 1, "{}: {} layers", t.name, h.cod.layers);
        assert!(!h.default_style.reversible, "{}: 9/7 expected", t.name);
        let comps = h.siz.components.len();
        assert_eq!(comps, if t.name == "glow" { 4 } else { 3 }, "{}", t.name);
        // The packet walk accounts for the whole file: exact per-level and per-layer budgets.
        let budget = cs.budget();
        assert_eq!(budget.max_discard(), h.max_discard());
        assert_eq!(budget.stream_end, Some(t.j2c.len() as u64), "{}", t.name);
        let whole = budget.bytes_for_discard(0).unwrap();
        assert!(whole <= t.j2c.len() as u64 - 2, "{}: {whole}", t.name);
        let smallest = budget.bytes_for_discard(5).unwrap();
        assert!(smallest < t.j2c.len() as u64, "{}: {smallest}", t.name);
        // Every quality layer carries data, and the first is a small preview.
        let layers: Vec<u64> = (1..=h.cod.layers)
            .map(|l| budget.bytes_for_layers(l).unwrap())
            .collect();
        assert!(
            layers.windows(2).all(|w| w[0] < w[1]),
            "{}: {layers:?}",
            t.name
        );
        assert!(layers[0] < t.j2c.len() as u64 / 4, "{}: {layers:?}", t.name);
        eprintln!(
            "{}: {} bytes, discard 5..0 need {:?}, layers 1..5 need {:?}",
            t.name,
            t.j2c.len(),
            (0..=5)
                .rev()
                .map(|d| budget.bytes_for_discard(d).unwrap())
                .collect::<Vec<_>>(),
            layers,
        );

        let full = decode_rgba8(t.j2c, 0).unwrap();
        assert_eq!((full.width, full.height), (w, hgt));
        assert!(!is_flat(&full.pixels), "{} decodes to one colour", t.name);
        let top = h.max_discard();
        let small = decode_rgba8(t.j2c, top).unwrap();
        assert_eq!(small.width, w >> top);
        assert_eq!(small.height, hgt >> top);
        // The prefix the budget names for the highest discard level decodes on its own.
        let prefix = &t.j2c[..usize::try_from(smallest).unwrap()];
        let options = DecodeOptions {
            allow_partial: true,
            ..DecodeOptions::at_discard(top)
        };
        let from_prefix = decode_rgba8_with(prefix, &options).unwrap();
        assert_eq!(from_prefix.pixels, small.pixels, "{}", t.name);
    }
    assert!(total < 300_000, "demo textures take {total} bytes");

    // The glow really is translucent: clear corners, an opaque middle.
    let glow = DEMO_TEXTURES.iter().find(|t| t.name == "glow").unwrap();
    let img = decode_rgba8(glow.j2c, 0).unwrap();
    let alpha = |x: u32, y: u32| img.pixels[((y * img.width + x) * 4 + 3) as usize];
    assert!(alpha(0, 0) < 16 && alpha(img.width / 2, img.height / 2) > 230);
}

fn is_flat(pixels: &[u8]) -> bool {
    pixels.chunks(4).all(|p| p == &pixels[..4])
}

#[test]
fn a_viewer_fetches_the_textures_it_sees_over_http_and_udp() {
    run(180, async {
        let mut config = SimConfig::new(Scene::default_demo());
        config.users.push(User::new("Test", "User", "secret"));
        let want = config.scene.clone();
        let sim = Sim::start(config).await.unwrap();
        let login = login(&sim, "Test", "User", "secret").await;
        let cap = texture_cap(&login).await;
        let mut v = Viewer::connect(&sim, login).await;
        v.until(|v| v.in_world(want.prims.len())).await;

        // The texture ids as they came over the wire in the objects' TextureEntry.
        let mut seen: Vec<Uuid> = v
            .scene
            .iter()
            .filter(|o| o.pcode != opensim_regions::objects::pcode::AVATAR)
            .map(|o| o.texture_entry.as_ref().unwrap().default.texture_id)
            .collect();
        seen.sort();
        seen.dedup();
        let mut expected: Vec<Uuid> = DEMO_TEXTURES.iter().map(|t| t.id).collect();
        expected.sort();
        assert_eq!(seen, expected);
        let bytes_of = |id: Uuid| DEMO_TEXTURES.iter().find(|t| t.id == id).unwrap().j2c;

        // HTTP: progressively (a small level through Range requests, then the rest).
        let http = TextureHttp::new(HttpConfig::default()).unwrap();
        let fetcher = ProgressiveFetcher::new(http, &cap).with_config(ProgressiveConfig::tight());
        for &id in &seen {
            let want = bytes_of(id);
            let mut dl = fetcher.fetch(id, 4, &mut |_| {}).await.unwrap();
            let need = Codestream::parse(want, &Limits::default())
                .unwrap()
                .budget()
                .bytes_for_discard(4)
                .unwrap();
            let got = dl.data().len() as u64;
            assert!(got >= need, "{got} for {need}");
            // The small glow is within one lookahead of its end; the big ones are not.
            if want.len() > 20_000 {
                assert!(got < want.len() as u64, "{got} of {}", want.len());
            }
            assert_eq!(dl.data(), &want[..dl.data().len()]);
            let small = opensim_textures::decode_rgba8(dl.data(), 4).unwrap();
            assert_eq!(small, decode_rgba8(want, 4).unwrap());
            fetcher.fetch_complete(&mut dl, &mut |_| {}).await.unwrap();
            assert_eq!(dl.data(), want);
        }

        // UDP: every texture whole in one batch.
        let requests: Vec<ImageRequest> = seen
            .iter()
            .map(|&id| ImageRequest::new(id, Target::Full, 1_013_000.0))
            .collect();
        let events = fetch_udp(&mut v, &requests).await;
        assert_eq!(events.len(), seen.len());
        for e in events {
            match e {
                UdpEvent::Complete { id, data, .. } => {
                    assert_eq!(data, bytes_of(id), "{id}");
                    decode_rgba8(&data, 0).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // UDP, as OpenSim reads DiscardLevel: the first quality layer only of a 512 texture
        // stops early and still decodes at full size.
        let bricks = DEMO_TEXTURES.iter().find(|t| t.name == "bricks").unwrap();
        let before = v.count("ImagePacket");
        let events = fetch_udp(
            &mut v,
            &[ImageRequest::new(
                bricks.id,
                Target::OpenSimLayers(4),
                1_013_000.0,
            )],
        )
        .await;
        match &events[..] {
            [UdpEvent::Complete { data, size, .. }] => {
                assert_eq!(*size as usize, bricks.j2c.len());
                assert!(data.len() < bricks.j2c.len() / 2, "{}", data.len());
                assert_eq!(&data[..], &bricks.j2c[..data.len()]);
                let options = DecodeOptions {
                    allow_partial: true,
                    ..DecodeOptions::at_discard(0)
                };
                let img = decode_rgba8_with(data, &options).unwrap();
                assert_eq!((img.width, img.height), (512, 512));
            }
            other => panic!("unexpected {other:?}"),
        }
        let packets = v.count("ImagePacket") - before;
        assert!(packets * 1000 < bricks.j2c.len(), "{packets} packets");
        v.logout().await;
        sim.shutdown().await;
    });
}
