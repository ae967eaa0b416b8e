//! The LLUDP side: one task per accepted circuit.

use std::sync::Arc;

use bytes::Bytes;
use futures_lite::FutureExt;
use opensim_circuit::{Connection, Endpoint, Event, Reliability};
use opensim_messages::{
    AgentMovementComplete, ChatFromSimulator, LayerData, LogoutReply, Message,
    SimulatorViewerTimeMessage, agent_movement_complete as amc, chat_from_simulator, layer_data,
    logout_reply, simulator_viewer_time_message as svt,
};
use uuid::Uuid;

use crate::state::Shared;
use crate::web::unix_now;

/// Whisper, say and shout ranges in metres (OpenSim's `[Chat]` defaults).
const CHAT_RANGES: [f32; 3] = [10.0, 20.0, 100.0];
/// Chat longer than this is cut to [`CHAT_CUT`] characters, as OpenSim does.
const CHAT_MAX: usize = 1100;
const CHAT_CUT: usize = 1000;

pub(crate) async fn serve(shared: Arc<Shared>, endpoint: Endpoint) {
    loop {
        let stop = async {
            loop {
                let l = shared.changed.listen();
                if shared.is_stopping() {
                    return None;
                }
                l.await;
            }
        };
        let Some(conn) = endpoint.accept().or(stop).await else {
            return;
        };
        smol::spawn(circuit(shared.clone(), conn)).detach();
    }
}

fn nul(s: &str) -> Bytes {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    Bytes::from(v)
}

/// Finds the session a `UseCircuitCode` belongs to and attaches the circuit to it.
fn attach(
    shared: &Shared,
    conn: &Connection,
    m: &opensim_messages::UseCircuitCode,
) -> Option<(Uuid, Uuid, u32)> {
    let c = &m.circuit_code;
    let mut sessions = shared.sessions();
    let s = sessions.get_mut(&c.id)?;
    if s.circuit_code != c.code || s.session_id != c.session_id {
        return None;
    }
    if s.connection.is_some() {
        // Already attached from elsewhere; OpenSim ignores the second circuit.
        return None;
    }
    s.connection = Some(conn.clone());
    Some((s.agent_id, s.session_id, s.circuit_code))
}

async fn circuit(shared: Arc<Shared>, conn: Connection) {
    let attached = loop {
        match conn.recv().await {
            Some(Event::Message(Message::UseCircuitCode(m))) => break attach(&shared, &conn, &m),
            Some(Event::Message(_)) => {}
            Some(Event::Closed(_)) | None => return,
            Some(_) => {}
        }
    };
    // Unknown circuit code or wrong session: OpenSim answers nothing.
    let Some((agent_id, session_id, circuit_code)) = attached else {
        conn.close().await;
        return;
    };
    let p = &shared.prepared;
    // A fresh login gets the handshake as soon as the circuit exists.
    if conn
        .send(p.handshake.clone(), Reliability::Reliable)
        .await
        .is_err()
    {
        shared.remove(agent_id);
        return;
    }
    while let Some(event) = conn.recv().await {
        let msg = match event {
            Event::Message(m) => m,
            Event::Closed(_) => break,
            _ => continue,
        };
        let ok = match msg {
            Message::CompleteAgentMovement(m)
                if m.agent_data.circuit_code == circuit_code
                    && m.agent_data.agent_id == agent_id
                    && m.agent_data.session_id == session_id =>
            {
                let position = {
                    let mut sessions = shared.sessions();
                    match sessions.get_mut(&agent_id) {
                        Some(s) => {
                            s.root = true;
                            s.position
                        }
                        None => break,
                    }
                };
                let reply = AgentMovementComplete {
                    agent_data: amc::AgentData {
                        agent_id,
                        session_id,
                    },
                    data: amc::Data {
                        position,
                        look_at: glam::Vec3::new(0.0, 1.0, 0.0),
                        region_handle: p.handle.0,
                        timestamp: u32::try_from(unix_now()).unwrap_or(u32::MAX),
                    },
                    sim_data: amc::SimData {
                        channel_version: nul(&shared.config.channel_version),
                    },
                };
                conn.send(reply, Reliability::Reliable).await.is_ok()
            }
            Message::RegionHandshakeReply(m) if m.agent_data.agent_id == agent_id => {
                send_scene(&shared, &conn).await
            }
            Message::ChatFromViewer(m) if m.agent_data.session_id == session_id => {
                relay_chat(&shared, agent_id, &m).await;
                true
            }
            Message::LogoutRequest(m)
                if m.agent_data.agent_id == agent_id && m.agent_data.session_id == session_id =>
            {
                let reply = LogoutReply {
                    agent_data: logout_reply::AgentData {
                        agent_id,
                        session_id,
                    },
                    inventory_data: vec![logout_reply::InventoryData {
                        item_id: Uuid::nil(),
                    }],
                };
                let _ = conn.send(reply, Reliability::Reliable).await;
                break;
            }
            _ => true,
        };
        if !ok {
            break;
        }
    }
    // Logout, timeout or a closed circuit all end the agent's session (its polls get 404).
    let is_ours = shared
        .sessions()
        .get(&agent_id)
        .and_then(|s| s.connection.as_ref())
        .is_some_and(|c| c.remote_addr() == conn.remote_addr());
    if is_ours {
        shared.remove(agent_id);
    }
    conn.close().await;
}

async fn send_scene(shared: &Shared, conn: &Connection) -> bool {
    let p = &shared.prepared;
    let time = SimulatorViewerTimeMessage {
        time_info: svt::TimeInfo {
            usec_since_start: unix_now().saturating_mul(1_000_000),
            sec_per_day: 14400,
            sec_per_year: 14400 * 365,
            sun_direction: glam::Vec3::new(
                0.0,
                std::f32::consts::FRAC_1_SQRT_2,
                std::f32::consts::FRAC_1_SQRT_2,
            ),
            sun_phase: 1.0,
            sun_ang_velocity: glam::Vec3::new(0.0, 0.0, 0.0),
        },
    };
    if conn.send(time, Reliability::Unreliable).await.is_err() {
        return false;
    }
    for data in &p.land {
        let m = LayerData {
            layer_id: layer_data::LayerId { type_: p.land_type },
            layer_data: layer_data::LayerData { data: data.clone() },
        };
        if conn.send(m, Reliability::Reliable).await.is_err() {
            return false;
        }
    }
    for m in &p.objects {
        if conn.send(m.clone(), Reliability::Reliable).await.is_err() {
            return false;
        }
    }
    conn.send(p.stats.clone(), Reliability::Unreliable)
        .await
        .is_ok()
}

async fn relay_chat(shared: &Shared, speaker: Uuid, m: &opensim_messages::ChatFromViewer) {
    let chat = &m.chat_data;
    // Other channels are heard by scripts only.
    if chat.channel != 0 {
        return;
    }
    let range = match chat.type_ {
        t @ 0..=2 => Some(CHAT_RANGES[usize::from(t)]),
        4 | 5 => None,
        _ => return,
    };
    let mut text = opensim_messages::codec::text(&chat.message);
    if text.chars().count() > CHAT_MAX {
        text = text.chars().take(CHAT_CUT).collect();
    }
    let (targets, from_name, position) = {
        let sessions = shared.sessions();
        let Some(me) = sessions.get(&speaker) else {
            return;
        };
        let targets: Vec<Connection> = sessions
            .values()
            .filter(|s| range.is_none_or(|r| s.position.distance(me.position) <= r))
            .filter_map(|s| s.connection.clone())
            .collect();
        (targets, format!("{} {}", me.first, me.last), me.position)
    };
    let out = ChatFromSimulator {
        chat_data: chat_from_simulator::ChatData {
            from_name: nul(&from_name),
            source_id: speaker,
            owner_id: speaker,
            source_type: 1,
            chat_type: chat.type_,
            audible: 1,
            position,
            message: nul(&text),
        },
    };
    for c in targets {
        let _ = c.send(out.clone(), Reliability::Reliable).await;
    }
}
