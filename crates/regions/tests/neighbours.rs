//! The region set: neighbours, crossings, teleports (including a replay of a real OpenSim
//! teleport) and circuit closes.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};

use glam::Vec3;
use opensim_messages::{DisableSimulator, Message};
use opensim_packet::Packet;
use opensim_regions::Error;
use opensim_regions::error::Misuse;
use opensim_regions::handshake::{RegionHandle, region_size};
use opensim_regions::neighbours::{
    Action, AgentSession, CrossedRegion, EnableSimulator, EstablishAgentCommunication, RegionSet,
    TeleportFailed, TeleportFinish, TeleportLocal, TeleportStart, TeleportState,
};
use opensim_regions::scene::{DecodeOptions, Scene};
use opensim_regions::terrain::RegionSize;
use uuid::Uuid;

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

const HOME: RegionHandle = RegionHandle::from_grid(1000, 1000);
const EAST: RegionHandle = RegionHandle::from_grid(1001, 1000);
const FAR: RegionHandle = RegionHandle::from_grid(2000, 2000);

fn session() -> AgentSession {
    AgentSession {
        agent_id: Uuid::from_u128(1),
        session_id: Uuid::from_u128(2),
        circuit_code: 77,
    }
}

fn home() -> RegionSet<Scene> {
    RegionSet::with_data(HOME, addr(9000), RegionSize::LEGACY, None, |_| {
        Scene::new(DecodeOptions::POSITIONS)
    })
}

fn enable_east(set: &mut RegionSet<Scene>) {
    let a = set.enable_simulator(&EnableSimulator {
        handle: EAST,
        addr: addr(9001),
        size: RegionSize::LEGACY,
    });
    assert_eq!(
        a,
        [Action::OpenCircuit {
            handle: EAST,
            addr: addr(9001)
        }]
    );
}

#[test]
fn neighbours_open_once_and_learn_their_seed_in_either_order() {
    let mut set = home();
    // The seed arrives before the neighbour is known: kept until it is.
    let seed = EstablishAgentCommunication {
        addr: addr(9001),
        seed_capability: "http://east/seed".into(),
    };
    assert!(set.establish_agent_communication(&seed).is_empty());
    let a = set.enable_simulator(&EnableSimulator {
        handle: EAST,
        addr: addr(9001),
        size: RegionSize::LEGACY,
    });
    assert_eq!(
        a,
        [
            Action::OpenCircuit {
                handle: EAST,
                addr: addr(9001)
            },
            Action::FetchSeed {
                handle: EAST,
                url: "http://east/seed".into()
            }
        ]
    );
    // Repeats change nothing.
    assert!(
        set.enable_simulator(&EnableSimulator {
            handle: EAST,
            addr: addr(9001),
            size: RegionSize::LEGACY,
        })
        .is_empty()
    );
    assert!(set.establish_agent_communication(&seed).is_empty());
    // The main region announcing itself changes nothing either.
    assert!(
        set.enable_simulator(&EnableSimulator {
            handle: HOME,
            addr: addr(9000),
            size: RegionSize::LEGACY,
        })
        .is_empty()
    );
    assert_eq!(set.len(), 2);
    assert!(set.is_main(HOME));
    assert_eq!(set.by_addr(addr(9001)).unwrap().handle, EAST);
    let global = glam::DVec2::new(1001.0 * 256.0 + 10.0, 1000.0 * 256.0 + 10.0);
    assert_eq!(set.at(global).unwrap().handle, EAST);

    // The neighbour restarted elsewhere: the old circuit goes, a new one opens.
    let a = set.enable_simulator(&EnableSimulator {
        handle: EAST,
        addr: addr(9005),
        size: RegionSize::LEGACY,
    });
    assert_eq!(
        a,
        [
            Action::CloseCircuit {
                handle: EAST,
                addr: addr(9001)
            },
            Action::OpenCircuit {
                handle: EAST,
                addr: addr(9005)
            }
        ]
    );
    assert_eq!(set.get(EAST).unwrap().seed_capability, None);
}

#[test]
fn crossing_moves_the_main_region_onto_the_child_circuit() {
    let mut set = home();
    enable_east(&mut set);
    set.get_mut(HOME).unwrap().data.set_region_width(256.0);
    let a = set.crossed_region(&CrossedRegion {
        handle: EAST,
        addr: addr(9001),
        seed_capability: "http://east/seed".into(),
        size: RegionSize::LEGACY,
        position: Vec3::new(1.0, 128.0, 25.0),
        look_at: Vec3::X,
    });
    // No UseCircuitCode: the child circuit exists.
    assert_eq!(
        a,
        [
            Action::CompleteAgentMovement {
                handle: EAST,
                addr: addr(9001)
            },
            Action::MakeMain {
                handle: EAST,
                addr: addr(9001)
            },
            Action::FetchSeed {
                handle: EAST,
                url: "http://east/seed".into()
            }
        ]
    );
    assert!(set.is_main(EAST));
    assert_eq!(set.len(), 2);
    // The old region lets go later; that is not the end of the session.
    let a = set.disable_simulator(addr(9000));
    assert_eq!(
        a,
        [Action::CloseCircuit {
            handle: HOME,
            addr: addr(9000)
        }]
    );
    assert_eq!(set.len(), 1);
    assert!(set.is_main(EAST));
    // The main region closing with nothing under way ends it.
    let a = set.disable_simulator(addr(9001));
    assert_eq!(a.last(), Some(&Action::SessionEnded));
    // Unknown circuits are ignored.
    assert!(set.disable_simulator(addr(1)).is_empty());
}

#[test]
fn teleport_state_machine() {
    let s = session();
    let mut set = home();
    let msg = set
        .request_teleport(&s, FAR, Vec3::new(1.0, 2.0, 3.0), Vec3::X)
        .unwrap();
    assert_eq!(msg.info.region_handle, FAR.0);
    assert_eq!(msg.agent_data.session_id, s.session_id);
    assert_eq!(set.teleport(), &TeleportState::Requested { target: FAR });
    assert!(set.teleport().can_cancel());
    assert!(matches!(
        set.request_teleport(&s, FAR, Vec3::ZERO, Vec3::X),
        Err(Error::Misuse(Misuse::TeleportInProgress))
    ));
    set.teleport_start(&TeleportStart {
        teleport_flags: 1 << 11,
    });
    assert!(!set.teleport().can_cancel());
    assert!(set.cancel_teleport(&s).is_none());
    let a = set.teleport_failed(&TeleportFailed {
        reason: "The region you tried to teleport to was not found".into(),
    });
    assert_eq!(
        a,
        [Action::TeleportFailed {
            reason: "The region you tried to teleport to was not found".into()
        }]
    );
    assert_eq!(set.teleport(), &TeleportState::Idle);

    // Cancellable while only requested.
    set.request_teleport(&s, FAR, Vec3::ZERO, Vec3::X).unwrap();
    assert_eq!(set.cancel_teleport(&s).unwrap().info.agent_id, s.agent_id);
    assert!(!set.teleport().in_progress());

    // A local teleport stays in the main region.
    set.request_teleport(&s, HOME, Vec3::new(9.0, 9.0, 9.0), Vec3::X)
        .unwrap();
    let a = set.teleport_local(&TeleportLocal {
        position: Vec3::new(9.0, 9.0, 9.0),
        look_at: Vec3::X,
        teleport_flags: 0,
    });
    assert_eq!(
        a,
        [Action::TeleportFinished {
            handle: HOME,
            position: Some(Vec3::new(9.0, 9.0, 9.0))
        }]
    );
    assert_eq!(set.len(), 1);
}

#[test]
fn main_region_closed_mid_teleport_is_dropped_on_arrival() {
    let mut set = home();
    enable_east(&mut set);
    set.teleport_start(&TeleportStart { teleport_flags: 16 });
    // The source lets go early: no session end while the teleport runs.
    let a = set.disable_simulator(addr(9000));
    assert_eq!(
        a,
        [Action::CloseCircuit {
            handle: HOME,
            addr: addr(9000)
        }]
    );
    let a = set.teleport_finish(&TeleportFinish {
        handle: FAR,
        addr: addr(9100),
        seed_capability: "http://far/seed".into(),
        size: RegionSize::new(512, 512).unwrap(),
        sim_access: 13,
        teleport_flags: 16,
        location_id: 4,
    });
    assert_eq!(
        a[..3],
        [
            Action::OpenCircuit {
                handle: FAR,
                addr: addr(9100)
            },
            Action::CompleteAgentMovement {
                handle: FAR,
                addr: addr(9100)
            },
            Action::MakeMain {
                handle: FAR,
                addr: addr(9100)
            },
        ]
    );
    assert!(set.get(HOME).is_none());
    assert_eq!(set.len(), 2);
    assert_eq!(set.main().size.width(), 512);
    // Arrival completes on the destination's circuit only.
    assert!(
        set.agent_movement_complete(addr(9001), Vec3::ZERO)
            .is_empty()
    );
    let a = set.agent_movement_complete(addr(9100), Vec3::new(5.0, 5.0, 5.0));
    assert_eq!(
        a,
        [Action::TeleportFinished {
            handle: FAR,
            position: Some(Vec3::new(5.0, 5.0, 5.0))
        }]
    );

    // A failed teleport after the main circuit closed leaves no region: session over.
    let mut set = home();
    set.teleport_start(&TeleportStart { teleport_flags: 16 });
    set.disable_simulator(addr(9000));
    let a = set.teleport_failed(&TeleportFailed {
        reason: "no".into(),
    });
    assert_eq!(a.last(), Some(&Action::SessionEnded));
}

/// Replays the real teleport from Test Region (9000) to the 512 m Var Region (9001): UDP
/// messages from the capture, `TeleportFinish` from the old region's event-queue response.
#[test]
fn replay_of_an_opensim_teleport() {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http/teleport") else {
        return;
    };
    let datagram = |name: &str| -> Message {
        Packet::decode(&std::fs::read(dir.join(name)).unwrap())
            .unwrap()
            .message
    };
    let Message::UseCircuitCode(login) = datagram("0002_c2s_UseCircuitCode.bin") else {
        panic!()
    };
    let s = AgentSession {
        agent_id: login.circuit_code.id,
        session_id: login.circuit_code.session_id,
        circuit_code: login.circuit_code.code,
    };
    let (old, new) = (addr(9000), addr(9001));
    let mut set: RegionSet<Scene> = RegionSet::with_data(
        RegionHandle(1099511628032000),
        old,
        RegionSize::LEGACY,
        None,
        |r| {
            let mut scene = Scene::new(DecodeOptions::POSITIONS);
            scene.set_region_width(r.size.width() as f32);
            scene
        },
    );

    // The request we build is the one the client sent.
    let Message::TeleportLocationRequest(sent) = datagram("0106_c2s_TeleportLocationRequest.bin")
    else {
        panic!()
    };
    let ours = set
        .request_teleport(
            &s,
            RegionHandle(sent.info.region_handle),
            sent.info.position,
            sent.info.look_at,
        )
        .unwrap();
    assert_eq!(ours, sent);

    assert!(
        set.handle_message(old, &datagram("0107_s2c_TeleportStart.bin"))
            .is_empty()
    );
    assert_eq!(
        set.teleport(),
        &TeleportState::Started {
            flags: 16,
            message: None
        }
    );

    // TeleportFinish arrives on the old region's event queue.
    let http = std::fs::read_to_string(dir.join("0079_c2s_http.txt")).unwrap();
    let response = &http[http.find("=== RESPONSE ===").unwrap()..];
    let end = response.find("</llsd>").unwrap() + "</llsd>".len();
    let body = &response[response.find("<llsd>").unwrap()..end];
    let eq = opensim_llsd::from_xml(body.as_bytes()).unwrap();
    let ev = &eq["events"][0];
    assert_eq!(ev["message"].as_str(), Some("TeleportFinish"));
    let info = &ev["body"]["Info"][0];
    let finish = TeleportFinish {
        handle: RegionHandle(info["RegionHandle"].as_u64_lenient().unwrap()),
        addr: SocketAddrV4::new(
            info["SimIP"].as_ipv4_lenient().unwrap(),
            info["SimPort"].as_port_lenient().unwrap(),
        ),
        seed_capability: info["SeedCapability"].as_str().unwrap().to_owned(),
        size: region_size(
            info["RegionSizeX"].as_u32_lenient(),
            info["RegionSizeY"].as_u32_lenient(),
        )
        .unwrap(),
        sim_access: info["SimAccess"].as_u32_lenient().unwrap() as u8,
        teleport_flags: info["TeleportFlags"].as_u32_lenient().unwrap(),
        location_id: info["LocationID"].as_u32_lenient().unwrap(),
    };
    let var = RegionHandle(1101710651287552);
    assert_eq!((finish.handle, finish.addr), (var, new));
    let actions = set.teleport_finish(&finish);
    assert_eq!(
        actions,
        [
            Action::OpenCircuit {
                handle: var,
                addr: new
            },
            Action::CompleteAgentMovement {
                handle: var,
                addr: new
            },
            Action::MakeMain {
                handle: var,
                addr: new
            },
            Action::FetchSeed {
                handle: var,
                url: finish.seed_capability.clone()
            },
        ]
    );
    // What the client then sent to 9001 is what the session builds.
    assert_eq!(
        datagram("0110_c2s_UseCircuitCode.bin"),
        Message::from(s.use_circuit_code())
    );
    assert_eq!(
        datagram("0112_c2s_CompleteAgentMovement.bin"),
        Message::from(s.complete_agent_movement())
    );
    assert_eq!(set.main().size, RegionSize::new(512, 512).unwrap());
    assert_eq!(set.teleport(), &TeleportState::Arriving { handle: var });

    // The destination completes the move; objects land in its scene.
    let a = set.handle_message(new, &datagram("0115_s2c_AgentMovementComplete.bin"));
    assert_eq!(
        a,
        [Action::TeleportFinished {
            handle: var,
            position: Some(Vec3::new(256.0, 256.0, 30.0))
        }]
    );
    let mut events = Vec::new();
    let scene = &mut set.by_addr_mut(new).unwrap().data;
    scene
        .apply(
            &datagram("0250_s2c_ObjectUpdateCompressed.bin"),
            &mut events,
        )
        .unwrap();
    assert_eq!(scene.len(), 5);
    assert!(scene.iter().any(|o| o.motion.position.x > 256.0));

    // 2.5 s later the old region lets go.
    assert_eq!(
        datagram("0263_s2c_DisableSimulator.bin"),
        Message::DisableSimulator(DisableSimulator)
    );
    let a = set.handle_message(old, &datagram("0263_s2c_DisableSimulator.bin"));
    assert_eq!(
        a,
        [Action::CloseCircuit {
            handle: RegionHandle(1099511628032000),
            addr: old
        }]
    );
    assert_eq!(set.len(), 1);
    assert!(set.is_main(var));
    assert!(!set.teleport().in_progress());
}

#[derive(Debug, Clone)]
enum Op {
    Enable(u8, u8),
    Seed(u8),
    Cross(u8, u8),
    Finish(u8, u8),
    Start,
    Failed,
    Local,
    Request(u8),
    Cancel,
    Disable(u8),
    Arrived(u8),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..4, 0u8..4).prop_map(|(h, a)| Op::Enable(h, a)),
        (0u8..4).prop_map(Op::Seed),
        (0u8..4, 0u8..4).prop_map(|(h, a)| Op::Cross(h, a)),
        (0u8..4, 0u8..4).prop_map(|(h, a)| Op::Finish(h, a)),
        Just(Op::Start),
        Just(Op::Failed),
        Just(Op::Local),
        (0u8..4).prop_map(Op::Request),
        Just(Op::Cancel),
        (0u8..4).prop_map(Op::Disable),
        (0u8..4).prop_map(Op::Arrived),
    ]
}

proptest::proptest! {
    /// Whatever a peer sends, in any order, the set stays consistent: one entry per handle and
    /// per endpoint, a main region that exists, and a closed circuit is never reported twice
    /// for a region still listed.
    #[test]
    fn any_event_sequence_keeps_the_set_consistent(ops in proptest::collection::vec(op(), 0..60)) {
        let s = session();
        let h = |i: u8| RegionHandle::from_grid(1000 + u32::from(i), 1000);
        let a = |i: u8| addr(9000 + u16::from(i));
        let mut set: RegionSet = RegionSet::new(h(0), a(0), RegionSize::LEGACY, None);
        for op in ops {
            let actions = match op {
                Op::Enable(x, y) => set.enable_simulator(&EnableSimulator { handle: h(x), addr: a(y), size: RegionSize::LEGACY }),
                Op::Seed(y) => set.establish_agent_communication(&EstablishAgentCommunication { addr: a(y), seed_capability: format!("seed{y}") }),
                Op::Cross(x, y) => set.crossed_region(&CrossedRegion { handle: h(x), addr: a(y), seed_capability: String::new(), size: RegionSize::LEGACY, position: Vec3::ZERO, look_at: Vec3::X }),
                Op::Finish(x, y) => set.teleport_finish(&TeleportFinish { handle: h(x), addr: a(y), seed_capability: format!("s{x}"), size: RegionSize::LEGACY, sim_access: 13, teleport_flags: 16, location_id: 4 }),
                Op::Start => set.teleport_start(&TeleportStart { teleport_flags: 16 }),
                Op::Failed => set.teleport_failed(&TeleportFailed { reason: String::new() }),
                Op::Local => set.teleport_local(&TeleportLocal { position: Vec3::ZERO, look_at: Vec3::X, teleport_flags: 0 }),
                Op::Request(x) => { let _ = set.request_teleport(&s, h(x), Vec3::ZERO, Vec3::X); Vec::new() }
                Op::Cancel => { let _ = set.cancel_teleport(&s); Vec::new() }
                Op::Disable(y) => set.disable_simulator(a(y)),
                Op::Arrived(y) => set.agent_movement_complete(a(y), Vec3::ZERO),
            };
            let main = set.main().handle;
            proptest::prop_assert!(set.get(main).is_some());
            let mut handles: Vec<_> = set.iter().map(|r| r.handle).collect();
            handles.sort();
            handles.dedup();
            proptest::prop_assert_eq!(handles.len(), set.len());
            let mut addrs: Vec<_> = set.iter().map(|r| r.addr).collect();
            addrs.sort();
            addrs.dedup();
            proptest::prop_assert_eq!(addrs.len(), set.len());
            for act in &actions {
                if let Action::MakeMain { handle, .. } = act {
                    proptest::prop_assert!(set.get(*handle).is_some());
                }
            }
        }
    }
}
