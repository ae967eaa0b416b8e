//! End to end against small HTTP servers started by each test on 127.0.0.1, port 0.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Reply, Server};
use futures_lite::StreamExt;
use opensim_caps::events::{EnableSimulator, EstablishAgentCommunication, TeleportFinish};
use opensim_caps::{
    CapsClient, CapsError, DEFAULT_CAPS, EndReason, Event, EventQueue, EventQueueConfig,
    HttpCategory, HttpLimits, Value,
};
use opensim_llsd::Map;
use uuid::uuid;

const AGENT: uuid::Uuid = uuid!("aaaaaaaa-bbbb-4ccc-8ddd-000000000001");

fn client() -> CapsClient {
    CapsClient::builder()
        .timeout(Duration::from_secs(20))
        .user_agent("opensim-caps-test/1")
        .seed_retry(2, Duration::from_millis(1))
        .build()
        .unwrap()
}

fn fast_queue() -> EventQueueConfig {
    EventQueueConfig::default()
        .with_poll_timeout(Duration::from_secs(20))
        .with_backoff(Duration::from_millis(1), Duration::from_millis(4))
        .with_done_timeout(Duration::from_secs(5))
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().collect::<Map>())
}

fn be32(n: u32) -> Value {
    Value::Binary(n.to_be_bytes().to_vec())
}

fn events(list: Vec<(&str, Value)>, id: i32) -> Value {
    let list = list
        .into_iter()
        .map(|(m, b)| map(vec![("message", m.into()), ("body", b)]))
        .collect();
    map(vec![("events", Value::Array(list)), ("id", id.into())])
}

/// The OpenSimulator forms of three events (EventQueueGetHandlers.cs: U32/U64 as big-endian
/// binary, IP as 4 bytes, ports as integers).
fn enable_simulator_body() -> Value {
    map(vec![(
        "SimulatorInfo",
        Value::Array(vec![map(vec![
            (
                "Handle",
                Value::Binary(1_099_511_628_032_256u64.to_be_bytes().to_vec()),
            ),
            ("IP", Value::Binary(vec![10, 0, 0, 7])),
            ("Port", 9002.into()),
            ("RegionSizeX", be32(256)),
            ("RegionSizeY", be32(256)),
        ])]),
    )])
}

fn establish_body(seed: &str) -> Value {
    map(vec![
        ("agent-id", AGENT.into()),
        ("sim-ip-and-port", "10.0.0.7:9002".into()),
        ("seed-capability", seed.into()),
    ])
}

fn teleport_finish_body(seed: &str) -> Value {
    map(vec![(
        "Info",
        Value::Array(vec![map(vec![
            ("AgentID", AGENT.into()),
            ("LocationID", be32(4)),
            ("SimIP", Value::Binary(vec![127, 0, 0, 1])),
            ("SimPort", 9001.into()),
            (
                "RegionHandle",
                Value::Binary(1_101_710_651_287_552u64.to_be_bytes().to_vec()),
            ),
            ("SeedCapability", seed.into()),
            ("SimAccess", 13.into()),
            ("TeleportFlags", be32(16)),
            ("RegionSizeX", be32(512)),
            ("RegionSizeY", be32(512)),
        ])]),
    )])
}

/// Drains a queue: its events and why it ended.
fn drain(mut q: EventQueue) -> (Vec<Event>, EndReason) {
    smol::block_on(async {
        let mut got = Vec::new();
        loop {
            match q.next().await {
                Ok(e) => got.push(e),
                Err(end) => return (got, end),
            }
        }
    })
}

fn ack_of(r: &common::Request) -> Value {
    r.llsd()["ack"].clone()
}

// --- seed capability ---

fn seed_reply(server_addr: &str) -> Vec<u8> {
    // OpenSimulator's form: no XML declaration, labelled text/html.
    format!(
        "<llsd><map><key>EventQueueGet</key><string>http://{server_addr}/CE/8871ac4c-c7ef-4fe9-bc21-74b55887679c</string>\
         <key>GetTexture</key><string>http://{server_addr}/275cdf56-89cf-459c-9203-2cb1439f9a08</string>\
         <key>GetMesh2</key><string>http://{server_addr}/a3035160-b59b-4c7e-b3aa-155e32f0a70b</string>\
         <key>SimulatorFeatures</key><string>http://{server_addr}/965788ce-b255-41b5-a9d0-f5f766a646ad</string>\
         <key>FetchInventoryDescendents2</key><string>http://{server_addr}/f37f7ee9-a4b9-4fc4-9edd-6dacc0fbc5ec</string>\
         </map></llsd>"
    )
    .into_bytes()
}

#[test]
fn seed_request_posts_an_llsd_array_of_names_and_parses_the_map() {
    let addr = Arc::new(Mutex::new(String::new()));
    let a = Arc::clone(&addr);
    let server = Server::start(move |_, _| {
        Reply::new(
            200,
            "OK",
            "text/html;charset=UTF-8",
            &seed_reply(&a.lock().unwrap()),
        )
    });
    *addr.lock().unwrap() = server.addr.to_string();
    let seed = server.url("/CAPS/8a6f0dd6-ecd1-4c17-9ee3-91c0a89579d00000/");
    let caps = smol::block_on(client().request_capabilities(&seed, DEFAULT_CAPS)).unwrap();

    assert_eq!(caps.len(), 5);
    let base = format!("http://{}", server.addr);
    assert_eq!(
        caps.event_queue_get().unwrap(),
        format!("{base}/CE/8871ac4c-c7ef-4fe9-bc21-74b55887679c")
    );
    assert_eq!(
        caps.get_texture().unwrap(),
        format!("{base}/275cdf56-89cf-459c-9203-2cb1439f9a08")
    );
    assert_eq!(caps.mesh_url(), caps.get_mesh2());
    assert!(caps.simulator_features().is_some());
    assert!(caps.fetch_inventory_descendents2().is_some());
    assert_eq!(caps.viewer_asset(), None);
    assert_eq!(caps.get("GetTexture"), caps.get_texture());

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/CAPS/8a6f0dd6-ecd1-4c17-9ee3-91c0a89579d00000/");
    assert_eq!(r.headers["content-type"], "application/llsd+xml");
    assert_eq!(r.headers["accept"], "application/llsd+xml");
    assert_eq!(r.headers["user-agent"], "opensim-caps-test/1");
    let names: Vec<Value> = DEFAULT_CAPS.iter().map(|n| Value::from(*n)).collect();
    assert_eq!(r.llsd(), Value::Array(names));
}

#[test]
fn seed_503_is_retried_until_ready() {
    let server = Server::start(|_, n| {
        if n < 2 {
            Reply::status(503)
        } else {
            Reply::new(
                200,
                "OK",
                "application/llsd+xml",
                b"<llsd><map><key>GetTexture</key><string>http://h/t</string></map></llsd>",
            )
        }
    });
    let caps =
        smol::block_on(client().request_capabilities(&server.url("/CAPS/x/"), &["GetTexture"]))
            .unwrap();
    assert_eq!(caps.get_texture(), Some("http://h/t"));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn seed_failures_are_typed() {
    let server = Server::start(|r, _| match r.path.as_str() {
        "/busy/" => Reply::status(503),
        "/gone/" => Reply::status(404),
        "/forbidden/" => Reply::new(403, "Forbidden", "text/plain", b"wrong ip"),
        "/garbage/" => Reply::new(200, "OK", "text/html", b"<llsd><map><key>x</key>"),
        "/array/" => Reply::new(200, "OK", "text/html", b"<llsd><array/></llsd>"),
        _ => Reply::status(500),
    });
    let c = client();
    let ask = |path: &str| smol::block_on(c.request_capabilities(&server.url(path), DEFAULT_CAPS));
    match ask("/busy/") {
        Err(CapsError::NotReady { attempts: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(ask("/gone/"), Err(CapsError::RegionGone)));
    match ask("/forbidden/") {
        Err(CapsError::HttpStatus { status: 403, body }) => assert_eq!(body, "wrong ip"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ask("/garbage/"), Err(CapsError::MalformedLlsd(_))));
    assert!(matches!(ask("/array/"), Err(CapsError::UnexpectedReply(_))));
    let before = server.requests().len();
    assert!(matches!(
        smol::block_on(c.request_capabilities("file:///etc/passwd", DEFAULT_CAPS)),
        Err(CapsError::InvalidUrl(_))
    ));
    assert_eq!(server.requests().len(), before);
}

#[test]
fn oversized_answers_are_refused() {
    let server = Server::start(|_, _| Reply::new(200, "OK", "text/html", &[b' '; 4096]));
    let c = CapsClient::builder()
        .max_response_bytes(1024)
        .build()
        .unwrap();
    assert!(matches!(
        smol::block_on(c.get_llsd(&server.url("/f"), HttpCategory::Other)),
        Err(CapsError::ResponseTooLarge { limit: 1024 })
    ));
}

// --- event queue ---

#[test]
fn event_queue_delivers_acks_idles_and_ends_on_404() {
    let server = Server::start(|_, n| match n {
        0 => Reply::llsd(&events(
            vec![
                ("EnableSimulator", enable_simulator_body()),
                (
                    "EstablishAgentCommunication",
                    establish_body("http://10.0.0.7:9000/CAPS/b0000/"),
                ),
            ],
            18_632_324,
        )),
        1 => Reply::status(502),
        2 => Reply::status(504),
        3 => Reply::llsd(&events(
            vec![
                (
                    "TeleportFinish",
                    teleport_finish_body("http://127.0.0.1:9000/CAPS/c0000/"),
                ),
                ("SimConsoleResponse", "hello".into()),
            ],
            18_632_325,
        )),
        4 => Reply::status(499),
        _ => Reply::status(404),
    });
    let c = client();
    let q = c
        .event_queue_with(&server.url("/CE/q"), fast_queue())
        .unwrap();
    let (got, end) = drain(q);

    assert!(matches!(end, EndReason::RegionGone), "{end:?}");
    assert_eq!(
        got,
        vec![
            Event::EnableSimulator(EnableSimulator {
                region_handle: 1_099_511_628_032_256,
                sim_addr: "10.0.0.7:9002".parse().unwrap(),
                region_size_x: 256,
                region_size_y: 256,
            }),
            Event::EstablishAgentCommunication(EstablishAgentCommunication {
                agent_id: AGENT,
                sim_addr: "10.0.0.7:9002".parse().unwrap(),
                seed_capability: "http://10.0.0.7:9000/CAPS/b0000/".into(),
            }),
            Event::TeleportFinish(TeleportFinish {
                agent_id: AGENT,
                location_id: 4,
                sim_addr: SocketAddrV4::new([127, 0, 0, 1].into(), 9001),
                region_handle: 1_101_710_651_287_552,
                seed_capability: "http://127.0.0.1:9000/CAPS/c0000/".into(),
                sim_access: 13,
                teleport_flags: 16,
                region_size_x: 512,
                region_size_y: 512,
            }),
            Event::Other {
                message: "SimConsoleResponse".into(),
                body: "hello".into(),
            },
        ]
    );

    let seen = server.requests();
    assert_eq!(
        seen.len(),
        6,
        "one poll per answer, idle answers re-polled at once"
    );
    let acks: Vec<Value> = seen.iter().map(ack_of).collect();
    let (a, b) = (Value::Integer(18_632_324), Value::Integer(18_632_325));
    assert_eq!(
        acks,
        vec![Value::Undef, a.clone(), a.clone(), a, b.clone(), b]
    );
    for r in &seen {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/CE/q"));
        assert_eq!(r.headers["content-type"], "application/llsd+xml");
        assert_eq!(r.llsd()["done"], Value::Boolean(false));
    }
}

#[test]
fn an_ended_queue_stays_ended_without_polling() {
    let server = Server::start(|_, _| Reply::status(404));
    let c = client();
    let mut q = c
        .event_queue_with(&server.url("/CE/q"), fast_queue())
        .unwrap();
    smol::block_on(async {
        assert!(matches!(q.next().await, Err(EndReason::RegionGone)));
        assert!(matches!(q.next().await, Err(EndReason::RegionGone)));
    });
    assert!(matches!(q.end_reason(), Some(EndReason::RegionGone)));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn failed_polls_back_off_then_recover() {
    let server = Server::start(|_, n| match n {
        0 => Reply::status(500),
        1 => Reply::new(
            200,
            "OK",
            "application/xml",
            b"<llsd><map><key>events</key>",
        ),
        2 => Reply::new(200, "OK", "application/xml", b"<llsd><array/></llsd>"),
        3 => Reply::llsd(&events(
            vec![("WindLightRefresh", map(vec![("Interpolate", 1.into())]))],
            77,
        )),
        _ => Reply::status(404),
    });
    let c = client();
    let q = c
        .event_queue_with(
            &server.url("/CE/q"),
            fast_queue().with_max_consecutive_errors(Some(4)),
        )
        .unwrap();
    let (got, end) = drain(q);
    assert_eq!(got, vec![Event::WindLightRefresh { interpolate: true }]);
    assert!(matches!(end, EndReason::RegionGone), "{end:?}");
    let acks: Vec<Value> = server.requests().iter().map(ack_of).collect();
    assert_eq!(
        acks,
        vec![
            Value::Undef,
            Value::Undef,
            Value::Undef,
            Value::Undef,
            Value::Integer(77)
        ]
    );
}

#[test]
fn too_many_failures_in_a_row_end_the_queue() {
    let server =
        Server::start(|_, _| Reply::new(500, "InternalServerError", "text/plain", b"boom"));
    let c = client();
    let q = c
        .event_queue_with(
            &server.url("/CE/q"),
            fast_queue().with_max_consecutive_errors(Some(3)),
        )
        .unwrap();
    let (got, end) = drain(q);
    assert!(got.is_empty());
    match end {
        EndReason::Failed {
            failures: 3,
            error: CapsError::HttpStatus { status: 500, body },
        } => assert_eq!(body, "boom"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn transport_failures_back_off_too() {
    // Nothing listens on this port any more: every poll is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client();
    let q = c
        .event_queue_with(
            &format!("http://127.0.0.1:{port}/CE/q"),
            fast_queue().with_max_consecutive_errors(Some(2)),
        )
        .unwrap();
    let (_, end) = drain(q);
    assert!(
        matches!(
            end,
            EndReason::Failed {
                failures: 2,
                error: CapsError::Transport(_)
            }
        ),
        "{end:?}"
    );
}

#[test]
fn a_poll_that_times_out_counts_as_idle() {
    let server = Server::start(|_, n| match n {
        0 => Reply::Hold,
        1 => Reply::llsd(&events(vec![("DisableSimulator", map(vec![]))], 9)),
        _ => Reply::status(404),
    });
    let c = client();
    let cfg = fast_queue()
        .with_poll_timeout(Duration::from_millis(300))
        .with_max_consecutive_errors(Some(1));
    let (got, end) = drain(c.event_queue_with(&server.url("/CE/q"), cfg).unwrap());
    assert_eq!(got, vec![Event::DisableSimulator]);
    assert!(matches!(end, EndReason::RegionGone), "{end:?}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn shutdown_abandons_the_poll_and_sends_done() {
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
    let arrived_tx = Mutex::new(arrived_tx);
    let server = Server::start(move |_, n| match n {
        0 => Reply::llsd(&events(vec![("Custom", 1.into())], 41)),
        1 => {
            arrived_tx.lock().unwrap().send(()).unwrap();
            Reply::Hold
        }
        _ => Reply::llsd(&events(vec![], 42)),
    });
    let c = client();
    let mut q = c
        .event_queue_with(&server.url("/CE/q"), fast_queue())
        .unwrap();
    let stop = q.shutdown_handle();
    // Shut down once the second poll is held by the server.
    let stopper = std::thread::spawn(move || {
        arrived_rx.recv().unwrap();
        stop.shutdown();
        assert!(stop.is_shutdown());
    });
    smol::block_on(async {
        assert_eq!(q.next().await.unwrap().name(), "Custom");
        assert!(matches!(q.next().await, Err(EndReason::Shutdown)));
    });
    stopper.join().unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].llsd()["done"], Value::Boolean(false));
    let done = seen[2].llsd();
    assert_eq!(done["done"], Value::Boolean(true));
    assert_eq!(done["ack"], Value::Integer(41));
}

#[test]
fn the_stream_yields_events_then_the_end() {
    let server = Server::start(|_, n| match n {
        0 => Reply::llsd(&events(
            vec![
                (
                    "ScriptRunningReply",
                    map(vec![(
                        "Script",
                        Value::Array(vec![map(vec![
                            ("ObjectID", AGENT.into()),
                            ("ItemID", AGENT.into()),
                            ("Running", true.into()),
                            ("Mono", true.into()),
                        ])]),
                    )]),
                ),
                (
                    "TeleportFinish",
                    map(vec![("Info", Value::Array(vec![map(vec![])]))]),
                ),
            ],
            3,
        )),
        _ => Reply::status(404),
    });
    let c = client();
    let q = c
        .event_queue_with(&server.url("/CE/q"), fast_queue())
        .unwrap();
    let items: Vec<_> = smol::block_on(q.into_stream().collect());
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[0], Ok(Event::ScriptRunningReply(s)) if s.running && s.mono));
    // A known event with an unreadable body is handed over with its reason.
    assert!(matches!(
        &items[1],
        Ok(Event::Malformed { message, error: opensim_caps::EventError::Missing("SimIP"), .. })
            if message == "TeleportFinish"
    ));
    assert!(matches!(items[2], Err(EndReason::RegionGone)));
}

// --- concurrency limits ---

/// Holds every request until the test hands out tickets, counting requests in flight.
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    in_flight: usize,
    max: usize,
    tickets: usize,
    served: usize,
}

/// The timeouts below only keep a broken test from hanging; they assert nothing.
const SAFETY: Duration = Duration::from_secs(20);

impl Gate {
    fn hold(&self) {
        let mut s = self.state.lock().unwrap();
        s.in_flight += 1;
        s.max = s.max.max(s.in_flight);
        self.cv.notify_all();
        s = self
            .cv
            .wait_timeout_while(s, SAFETY, |s| s.tickets == 0)
            .unwrap()
            .0;
        s.tickets = s.tickets.saturating_sub(1);
        // Leave before answering, so that a request sent after this answer is never
        // counted together with this one.
        s.in_flight -= 1;
        s.served += 1;
        self.cv.notify_all();
    }

    /// Waits until `n` requests are held; returns how many are.
    fn wait_in_flight(&self, n: usize) -> usize {
        let s = self.state.lock().unwrap();
        self.cv
            .wait_timeout_while(s, SAFETY, |s| s.in_flight < n)
            .unwrap()
            .0
            .in_flight
    }

    /// Lets `n` held requests be answered and waits until they are.
    fn release(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        let target = s.served + n;
        s.tickets += n;
        self.cv.notify_all();
        drop(
            self.cv
                .wait_timeout_while(s, SAFETY, |s| s.served < target)
                .unwrap(),
        );
    }
}

#[test]
fn the_limit_bounds_concurrent_requests_of_a_category() {
    let gate = Arc::new(Gate {
        state: Mutex::new(GateState::default()),
        cv: Condvar::new(),
    });
    let g = Arc::clone(&gate);
    let server = Server::start(move |r, _| {
        if r.path == "/inv" {
            g.hold();
        }
        Reply::new(
            200,
            "OK",
            "text/html",
            b"<llsd><map><key>ok</key><boolean>1</boolean></map></llsd>",
        )
    });
    let limits = HttpLimits::builder().inventory(3).build();
    let c = CapsClient::builder()
        .limits(limits.clone())
        .build()
        .unwrap();
    let url = server.url("/inv");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            smol::spawn(async move {
                c.post_llsd(&url, &Value::Map(Map::new()), HttpCategory::Inventory)
                    .await
            })
        })
        .collect();
    for batch in 0..4 {
        // Three requests reach the server, each holding one of the three permits; the
        // other tasks wait for a permit instead of opening more connections.
        assert_eq!(gate.wait_in_flight(3), 3, "batch {batch}");
        assert_eq!(limits.in_use(HttpCategory::Inventory), 3, "batch {batch}");
        if batch == 0 {
            // Other categories are not held up by a full one.
            let other = smol::block_on(c.get_llsd(&server.url("/free"), HttpCategory::Texture));
            assert_eq!(other.unwrap()["ok"], Value::Boolean(true));
        }
        gate.release(3);
    }
    smol::block_on(async {
        for t in tasks {
            assert_eq!(t.await.unwrap()["ok"], Value::Boolean(true));
        }
    });
    assert_eq!(gate.state.lock().unwrap().max, 3);
    assert_eq!(gate.state.lock().unwrap().served, 12);
    assert_eq!(limits.in_use(HttpCategory::Inventory), 0);
}

#[test]
fn clones_of_the_client_share_the_limits() {
    let counter = Arc::new(AtomicUsize::new(0));
    let limits = HttpLimits::builder().texture(1).build();
    let a = CapsClient::builder()
        .limits(limits.clone())
        .build()
        .unwrap();
    let b = a.clone();
    let held = limits.try_acquire(HttpCategory::Texture).unwrap();
    // With the only texture slot held elsewhere, neither client can start a texture request.
    let k = Arc::clone(&counter);
    let server = Server::start(move |_, _| {
        k.fetch_add(1, Ordering::SeqCst);
        Reply::new(200, "OK", "text/html", b"<llsd><map/></llsd>")
    });
    let url = server.url("/t");
    let mut pending = Box::pin(b.get_llsd(&url, HttpCategory::Texture));
    assert!(smol::block_on(futures_lite::future::poll_once(&mut pending)).is_none());
    assert_eq!(a.limits().in_use(HttpCategory::Texture), 1);
    drop(held);
    smol::block_on(pending).unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 1);
}
