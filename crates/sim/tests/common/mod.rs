//! A small viewer built from our client crates, shared by the simulator's tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use opensim_circuit::{Connection, Endpoint, EndpointConfig, Event, Reliability};
use opensim_login::{LoginClient, LoginParams, LoginResponse, Password};
use opensim_messages::{
    ChatFromViewer, CompleteAgentMovement, LogoutRequest, Message, RegionHandshakeReply,
    UseCircuitCode, chat_from_viewer, complete_agent_movement, logout_request,
    region_handshake_reply, use_circuit_code,
};
use opensim_regions::objects::pcode::AVATAR;
use opensim_regions::scene::{DecodeOptions, Scene as ClientScene};
use opensim_regions::stats::CoarseLocations;
use opensim_regions::terrain::{Heightmap, LAYER_LAND, LAYER_LAND_EXTENDED, RegionSize};
use opensim_sim::RunningSim;
use opensim_textures::udp::{ImageRequest, UdpConfig, UdpEvent, UdpImageClient};

/// A guard against hangs only; nothing asserts on timing.
pub fn run<T>(secs: u64, f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async move {
        async_io::Timer::after(Duration::from_secs(secs)).await;
        panic!("test hung");
    }))
}

pub async fn login(sim: &RunningSim, first: &str, last: &str, pw: &str) -> LoginResponse {
    let params = LoginParams::builder(sim.login_uri(), first, last, Password::new(pw))
        .build()
        .unwrap();
    LoginClient::new().unwrap().login(&params).await.unwrap()
}

/// The `GetTexture` capability URL the login's seed grants.
pub async fn texture_cap(login: &LoginResponse) -> String {
    opensim_caps::CapsClient::new()
        .unwrap()
        .request_capabilities(&login.seed_capability, &["GetTexture"])
        .await
        .unwrap()
        .get_texture()
        .unwrap()
        .to_owned()
}

/// Polls `cond` until it holds (a readiness wait, bounded by the test's guard).
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    while !cond() {
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

/// One circuit of a viewer and what came over it.
pub struct Viewer {
    pub endpoint: Endpoint,
    pub conn: Connection,
    pub login: LoginResponse,
    pub terrain: Heightmap,
    pub scene: ClientScene,
    pub handshake_name: Option<String>,
    pub movement_complete: Option<opensim_messages::AgentMovementComplete>,
    pub got_stats: bool,
    pub chat: Vec<(String, String)>,
    pub counts: HashMap<&'static str, usize>,
    pub layers: HashMap<u8, usize>,
    pub coarse: Option<CoarseLocations>,
    pub kept: Vec<Message>,
    /// Names of messages to keep in `kept`.
    pub keep: Vec<&'static str>,
    /// Names of every message received, in order.
    pub order: Vec<&'static str>,
}

impl Viewer {
    /// Opens a circuit to `addr` with the login's code; `complete` sends
    /// `CompleteAgentMovement` too (a root agent), otherwise it is a child circuit.
    pub async fn open(
        addr: SocketAddr,
        login: LoginResponse,
        size: RegionSize,
        complete: bool,
    ) -> Viewer {
        Viewer::open_with(addr, login, size, complete, EndpointConfig::client()).await
    }

    /// [`Viewer::open`] with given endpoint settings.
    pub async fn open_with(
        addr: SocketAddr,
        login: LoginResponse,
        size: RegionSize,
        complete: bool,
        config: EndpointConfig,
    ) -> Viewer {
        let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let conn = endpoint.connect(addr).unwrap();
        let v = Viewer {
            endpoint,
            conn,
            terrain: Heightmap::new(size),
            scene: ClientScene::new(DecodeOptions::FULL),
            login,
            handshake_name: None,
            movement_complete: None,
            got_stats: false,
            chat: Vec::new(),
            counts: HashMap::new(),
            layers: HashMap::new(),
            coarse: None,
            kept: Vec::new(),
            keep: Vec::new(),
            order: Vec::new(),
        };
        v.use_circuit_code().await;
        if complete {
            v.complete_movement().await;
        }
        v
    }

    pub async fn connect(sim: &RunningSim, login: LoginResponse) -> Viewer {
        Viewer::open(login.sim_addr, login, sim.scene().size(), true).await
    }

    pub async fn use_circuit_code(&self) {
        let l = &self.login;
        let m = UseCircuitCode {
            circuit_code: use_circuit_code::CircuitCode {
                code: l.circuit_code,
                session_id: l.session_id,
                id: l.agent_id,
            },
        };
        self.conn.send(m, Reliability::Reliable).await.unwrap();
    }

    pub async fn complete_movement(&self) {
        let l = &self.login;
        let m = CompleteAgentMovement {
            agent_data: complete_agent_movement::AgentData {
                agent_id: l.agent_id,
                session_id: l.session_id,
                circuit_code: l.circuit_code,
            },
        };
        self.conn.send(m, Reliability::Reliable).await.unwrap();
    }

    pub fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Handles one event; `None` when the circuit has closed, `Some(None)` for a non-message.
    pub async fn step(&mut self) -> Option<Option<Message>> {
        let m = match self.conn.recv().await? {
            Event::Message(m) => m,
            Event::Closed(_) => return None,
            _ => return Some(None),
        };
        *self.counts.entry(m.name()).or_default() += 1;
        self.order.push(m.name());
        if self.keep.contains(&m.name()) {
            self.kept.push(m.clone());
        }
        match &m {
            Message::RegionHandshake(h) => {
                self.handshake_name =
                    Some(opensim_messages::codec::text(&h.region_info.sim_name).into_owned());
                let reply = RegionHandshakeReply {
                    agent_data: region_handshake_reply::AgentData {
                        agent_id: self.login.agent_id,
                        session_id: self.login.session_id,
                    },
                    region_info: region_handshake_reply::RegionInfo { flags: 0 },
                };
                self.conn.send(reply, Reliability::Reliable).await.unwrap();
            }
            Message::AgentMovementComplete(a) => self.movement_complete = Some(a.clone()),
            Message::LayerData(l) => {
                *self.layers.entry(l.layer_id.type_).or_default() += 1;
                if matches!(l.layer_id.type_, LAYER_LAND | LAYER_LAND_EXTENDED) {
                    self.terrain
                        .apply_layer_data(l.layer_id.type_, &l.layer_data.data)
                        .unwrap();
                }
            }
            Message::ObjectUpdate(_)
            | Message::ImprovedTerseObjectUpdate(_)
            | Message::KillObject(_) => {
                self.scene.apply(&m, &mut Vec::new()).unwrap();
            }
            Message::CoarseLocationUpdate(c) => {
                self.coarse = Some(CoarseLocations::from_message(c).unwrap());
            }
            Message::SimStats(_) => self.got_stats = true,
            Message::ChatFromSimulator(c) => self.chat.push((
                opensim_messages::codec::text(&c.chat_data.from_name).into_owned(),
                opensim_messages::codec::text(&c.chat_data.message).into_owned(),
            )),
            _ => {}
        }
        Some(Some(m))
    }

    pub async fn until(&mut self, mut done: impl FnMut(&Viewer) -> bool) {
        while !done(self) {
            assert!(self.step().await.is_some(), "circuit closed early");
        }
    }

    /// Reads until a message `pick` accepts, and returns what it made of it.
    pub async fn wait_message<T>(&mut self, mut pick: impl FnMut(&Message) -> Option<T>) -> T {
        loop {
            match self.step().await {
                Some(Some(m)) => {
                    if let Some(t) = pick(&m) {
                        return t;
                    }
                }
                Some(None) => {}
                None => panic!("circuit closed early"),
            }
        }
    }

    pub fn in_world(&self, prims: usize) -> bool {
        self.movement_complete.is_some()
            && self.terrain.is_complete()
            && self.prims() == prims
            && self.got_stats
    }

    /// Objects in view that are not avatars.
    pub fn prims(&self) -> usize {
        self.scene.iter().filter(|o| o.pcode != AVATAR).count()
    }

    pub async fn say(&self, text: &str) {
        let mut msg = text.as_bytes().to_vec();
        msg.push(0);
        let chat = ChatFromViewer {
            agent_data: chat_from_viewer::AgentData {
                agent_id: self.login.agent_id,
                session_id: self.login.session_id,
            },
            chat_data: chat_from_viewer::ChatData {
                message: msg.into(),
                type_: 1,
                channel: 0,
            },
        };
        self.conn.send(chat, Reliability::Reliable).await.unwrap();
    }

    pub async fn logout(&mut self) {
        let req = LogoutRequest {
            agent_data: logout_request::AgentData {
                agent_id: self.login.agent_id,
                session_id: self.login.session_id,
            },
        };
        self.conn.send(req, Reliability::Reliable).await.unwrap();
        loop {
            match self.step().await {
                Some(Some(Message::LogoutReply(r))) => {
                    assert_eq!(r.agent_data.agent_id, self.login.agent_id);
                    break;
                }
                Some(_) => {}
                None => panic!("closed before LogoutReply"),
            }
        }
        self.endpoint.shutdown().await;
    }
}

/// Drives a `UdpImageClient` over the viewer's circuit until every image has an outcome.
pub async fn fetch_udp(v: &mut Viewer, requests: &[ImageRequest]) -> Vec<UdpEvent> {
    let mut client =
        UdpImageClient::new(v.login.agent_id, v.login.session_id, UdpConfig::default());
    for r in requests {
        client.request(*r, Instant::now());
    }
    let mut done = Vec::new();
    while done.len() < requests.len() {
        while let Some(m) = client.poll_transmit() {
            v.conn.send(m, Reliability::Reliable).await.unwrap();
        }
        if let Some(Some(m)) = v.step().await {
            client.handle_message(&m, Instant::now());
        }
        client.handle_timeout(Instant::now());
        while let Some(e) = client.poll_event() {
            if !matches!(e, UdpEvent::Progress { .. }) {
                done.push(e);
            }
        }
    }
    done
}
