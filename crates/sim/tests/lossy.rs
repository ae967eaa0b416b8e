//! The whole viewer flow with 20 % of the datagrams lost in both directions.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Viewer, fetch_udp, login, run};
use opensim_circuit::{EndpointConfig, Impairment};
use opensim_sim::{Scene, Sim, SimConfig, User};
use opensim_textures::udp::{ImageRequest, Target, UdpEvent};
use uuid::Uuid;

#[test]
fn full_flow_under_twenty_percent_loss() {
    run(300, async {
        let mut scene = Scene::default_demo();
        let texture: Bytes = (0..12_345u32)
            .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
            .collect::<Vec<u8>>()
            .into();
        let tex_id = Uuid::from_u128(0x7e87);
        scene.textures.insert(tex_id, texture.clone());
        let prims = scene.prims.len();
        let mut config = SimConfig::new(scene);
        config.users.push(User::new("Test", "User", "secret"));
        config.impairment = Some(Impairment::new(0.2, 0x5eed));
        // Stats are unreliable: repeat them often enough to get through.
        config.status_interval = Duration::from_millis(250);
        let sim = Sim::start(config).await.unwrap();
        let login = login(&sim, "Test", "User", "secret").await;
        let mut client = EndpointConfig::client();
        client.impairment = Some(Impairment::new(0.2, 0xc11e));
        let mut v =
            Viewer::open_with(login.sim_addr, login, sim.scene().size(), true, client).await;
        v.until(|v| v.in_world(prims)).await;
        assert_eq!(v.handshake_name.as_deref(), Some("Demo Region"));
        for p in &sim.scene().prims {
            let o = v.scene.get(p.local_id).unwrap();
            assert_eq!(o.full_id, p.id);
        }
        let events = fetch_udp(&mut v, &[ImageRequest::new(tex_id, Target::Full, 1.0)]).await;
        match &events[..] {
            [UdpEvent::Complete { data, .. }] => assert_eq!(data, &texture),
            other => panic!("unexpected {other:?}"),
        }
        v.say("through the noise").await;
        v.until(|v| !v.chat.is_empty()).await;
        assert_eq!(v.chat[0].1, "through the noise");
        v.logout().await;
        common::wait_for(|| sim.agents().is_empty()).await;
        sim.shutdown().await;
    });
}
