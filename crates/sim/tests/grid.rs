//! Several regions: neighbours over the event queue, child agents, teleports.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Viewer, login, run, wait_for};
use glam::Vec3;
use opensim_caps::{CapsClient, Event as EqEvent, EventQueue};
use opensim_circuit::Reliability;
use opensim_messages::{Message, TeleportLocationRequest, teleport_location_request};
use opensim_regions::terrain::RegionSize;
use opensim_sim::{Scene, Sim, SimConfig, User};
use uuid::Uuid;

fn region(name: &str, gx: u32, n: u128) -> Scene {
    let mut s = Scene::flat(name, RegionSize::LEGACY);
    s.grid = (gx, 1000);
    s.region_id = Uuid::from_u128(0xaaaa_0000 + n);
    s
}

async fn queue(seed: &str) -> EventQueue {
    let client = CapsClient::new().unwrap();
    let caps = client
        .request_capabilities(seed, &["EventQueueGet"])
        .await
        .unwrap();
    client.event_queue(caps.event_queue_get().unwrap()).unwrap()
}

async fn next_named(q: &mut EventQueue, name: &str) -> EqEvent {
    loop {
        let e = q.next().await.unwrap();
        if e.name() == name {
            return e;
        }
    }
}

async fn teleport(v: &Viewer, handle: u64, position: Vec3) {
    let m = TeleportLocationRequest {
        agent_data: teleport_location_request::AgentData {
            agent_id: v.login.agent_id,
            session_id: v.login.session_id,
        },
        info: teleport_location_request::Info {
            region_handle: handle,
            position,
            look_at: Vec3::X,
        },
    };
    v.conn.send(m, Reliability::Reliable).await.unwrap();
}

#[test]
fn overlapping_regions_are_refused() {
    run(30, async {
        let mut c = SimConfig::with_regions(vec![region("A", 1000, 1), region("B", 1000, 2)]);
        c.users.push(User::new("Test", "User", "secret"));
        assert!(Sim::start(c).await.is_err());
    });
}

#[test]
fn neighbours_child_agents_and_teleports() {
    run(180, async {
        let mut c = SimConfig::with_regions(vec![
            region("West", 1000, 1),
            region("East", 1001, 2),
            region("Far", 1005, 3),
        ]);
        c.users.push(User::new("Test", "User", "secret"));
        c.teleport_release_delay = Duration::from_millis(100);
        let sim = Sim::start(c).await.unwrap();
        let regions = sim.regions();
        assert_eq!(regions.len(), 3);
        assert_eq!(regions[0].udp_addr, sim.udp_addr());
        assert_eq!(regions[2].name, "Far");
        assert_eq!(regions[1].handle, ((1001u64 * 256) << 32) | (1000 * 256));
        let ports: std::collections::HashSet<u16> =
            regions.iter().map(|r| r.udp_addr.port()).collect();
        assert_eq!(ports.len(), 3);

        let login = login(&sim, "Test", "User", "secret").await;
        let me = login.agent_id;
        let mut west_q = queue(&login.seed_capability).await;
        let mut west = Viewer::connect(&sim, login.clone()).await;
        west.until(|v| v.in_world(0)).await;
        assert_eq!(sim.agent_region(me), Some(0));

        // Arrival announces the neighbour East (not Far).
        let EqEvent::EnableSimulator(en) = next_named(&mut west_q, "EnableSimulator").await else {
            unreachable!()
        };
        assert_eq!(en.region_handle, regions[1].handle);
        assert_eq!(std::net::SocketAddr::V4(en.sim_addr), regions[1].udp_addr);
        let EqEvent::EstablishAgentCommunication(est) =
            next_named(&mut west_q, "EstablishAgentCommunication").await
        else {
            unreachable!()
        };
        assert!(est.seed_capability.contains("/CAPS/"));

        // A child circuit: handshake and scene, no CompleteAgentMovement.
        let mut east = Viewer::open(
            regions[1].udp_addr,
            login.clone(),
            RegionSize::LEGACY,
            false,
        )
        .await;
        east.until(|v| v.handshake_name.is_some() && v.terrain.is_complete())
            .await;
        assert_eq!(east.handshake_name.as_deref(), Some("East"));
        assert!(east.movement_complete.is_none());
        assert_eq!(sim.agent_children(me), vec![1]);

        // An unknown region fails.
        teleport(&west, 0x0000_1234_0000_5678, Vec3::new(1.0, 1.0, 1.0)).await;
        let reason = west
            .wait_message(|m| match m {
                Message::TeleportFailed(f) => {
                    Some(opensim_messages::codec::text(&f.info.reason).into_owned())
                }
                _ => None,
            })
            .await;
        assert!(reason.contains("not found"), "{reason}");

        // To the neighbour over the existing child circuit.
        teleport(&west, regions[1].handle, Vec3::new(30.0, 40.0, 25.0)).await;
        let flags = west
            .wait_message(|m| match m {
                Message::TeleportStart(s) => Some(s.info.teleport_flags),
                _ => None,
            })
            .await;
        assert_eq!(flags, 16);
        let EqEvent::TeleportFinish(fin) = next_named(&mut west_q, "TeleportFinish").await else {
            unreachable!()
        };
        assert_eq!(fin.region_handle, regions[1].handle);
        assert_eq!(std::net::SocketAddr::V4(fin.sim_addr), regions[1].udp_addr);
        assert_eq!(
            (fin.location_id, fin.teleport_flags, fin.sim_access),
            (4, 16, 13)
        );
        east.complete_movement().await;
        east.until(|v| v.movement_complete.is_some()).await;
        let amc = east.movement_complete.clone().unwrap();
        assert_eq!(amc.data.region_handle, regions[1].handle);
        assert!((amc.data.position.x - 30.0).abs() < 1e-3);
        assert_eq!(sim.agent_region(me), Some(1));
        // West is a neighbour of East: it stays a child region.
        assert_eq!(sim.agent_children(me), vec![0]);

        // On to Far (not a neighbour of anything): a new circuit, and both old regions let go.
        let mut east_q = queue(&fin.seed_capability).await;
        teleport(&east, regions[2].handle, Vec3::new(200.0, 100.0, 30.0)).await;
        let EqEvent::TeleportFinish(fin) = next_named(&mut east_q, "TeleportFinish").await else {
            unreachable!()
        };
        assert_eq!(std::net::SocketAddr::V4(fin.sim_addr), regions[2].udp_addr);
        let mut far =
            Viewer::open(fin.sim_addr.into(), login.clone(), RegionSize::LEGACY, true).await;
        far.until(|v| v.movement_complete.is_some() && v.terrain.is_complete())
            .await;
        assert_eq!(far.handshake_name.as_deref(), Some("Far"));
        for old in [&mut west, &mut east] {
            old.wait_message(|m| matches!(m, Message::DisableSimulator(_)).then_some(()))
                .await;
        }
        wait_for(|| sim.agent_children(me).is_empty()).await;
        assert_eq!(sim.agent_region(me), Some(2));

        // Inside the region: TeleportLocal.
        teleport(&far, regions[2].handle, Vec3::new(10.0, 20.0, 30.0)).await;
        let pos = far
            .wait_message(|m| match m {
                Message::TeleportLocal(l) => Some(l.info.position),
                _ => None,
            })
            .await;
        assert!((pos - Vec3::new(10.0, 20.0, 30.0)).length() < 1e-3);
        assert!((sim.agent_position(me).unwrap().1.y - 20.0).abs() < 1e-3);

        far.logout().await;
        wait_for(|| sim.agents().is_empty()).await;
        sim.shutdown().await;
    });
}
