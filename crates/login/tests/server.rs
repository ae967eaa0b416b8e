//! End to end against a small login server started by each test on 127.0.0.1, port 0.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opensim_llsd::Value as Llsd;
use opensim_login::codec::{
    decode_llsd_call, decode_xmlrpc_call, encode_xmlrpc_fault, encode_xmlrpc_response,
};
use opensim_login::{
    InstallationId, LoginClient, LoginError, LoginParams, LoginResponse, LoginValue, Password,
    RetryPolicy, StartLocation,
};

const PLAINTEXT: &str = "hunter2-Sup3r-Secret";
const AGENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-000000000001";

/// OpenSimulator's texts (LLLoginResponse.cs, 0.9.2.2).
const USER_PROBLEM: &str = "Could not authenticate your avatar. Please check your username and password, and check the grid if problems persist.";
const GRID_PROBLEM: &str =
    "Error connecting to the desired location. Try connecting to another region.";
const ALREADY: &str = "You appear to be already logged in. Please wait a a minute or two and retry. If this takes longer than a few minutes please contact the grid owner. ";
const BLOCKED: &str = "Logins are currently restricted. Please try again later.";

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    method: String,
    members: BTreeMap<String, LoginValue>,
    headers: BTreeMap<String, String>,
}

struct Grid {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Grid {
    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn start_grid() -> Grid {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let presence_attempts = Arc::new(AtomicUsize::new(0));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A test's failure to talk HTTP shows up on the client side; keep serving.
            let _ = serve(stream, port, &log, &presence_attempts);
        }
    });
    Grid { port, seen }
}

fn serve(
    stream: TcpStream,
    port: u16,
    log: &Mutex<Vec<Seen>>,
    presence_attempts: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut out = stream;
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;

    let llsd = headers
        .get("content-type")
        .is_some_and(|t| t == "application/llsd+xml");
    if llsd {
        let (status, reply) = match decode_llsd_call(&body) {
            Ok(members) => {
                let answer = route_llsd(&members);
                log.lock().unwrap().push(Seen {
                    path,
                    method: String::new(),
                    members,
                    headers,
                });
                answer
            }
            Err(_) => (400, b"bad request".to_vec()),
        };
        write!(
            out,
            "HTTP/1.1 {status} OK\r\nContent-Type: application/llsd+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            reply.len()
        )?;
        out.write_all(&reply)?;
        return out.flush();
    }
    let (status, reply) = match decode_xmlrpc_call(&body) {
        Ok((method, members)) => {
            let answer = route(&path, &method, &members, port, presence_attempts);
            log.lock().unwrap().push(Seen {
                path,
                method,
                members,
                headers,
            });
            answer
        }
        Err(_) => (400, b"bad request".to_vec()),
    };
    let phrase = match status {
        200 => "OK",
        400 => "BadRequest",
        _ => "InternalServerError",
    };
    write!(
        out,
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\nServer: OSWebServer\r\n\r\n",
        reply.len()
    )?;
    out.write_all(&reply)?;
    out.flush()
}

fn map(pairs: &[(&str, LoginValue)]) -> BTreeMap<String, LoginValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn refusal(reason: &str, message: &str) -> (u16, Vec<u8>) {
    (
        200,
        encode_xmlrpc_response(map(&[
            ("login", "false".into()),
            ("reason", reason.into()),
            ("message", message.into()),
        ])),
    )
}

fn success(circuit_code: i32) -> (u16, Vec<u8>) {
    let folder = |id: &str, parent: &str, name: &str, ty: i32| {
        LoginValue::Map(map(&[
            ("folder_id", id.into()),
            ("parent_id", parent.into()),
            ("name", name.into()),
            ("type_default", ty.into()),
            ("version", 1.into()),
        ]))
    };
    let root = "3c87c6d8-3462-4218-977a-beee07344df5";
    let zero = "00000000-0000-0000-0000-000000000000";
    (
        200,
        encode_xmlrpc_response(map(&[
            ("login", "true".into()),
            ("agent_id", AGENT.into()),
            ("session_id", "9eab4ebe-ee55-412b-8425-632922b9bf60".into()),
            ("secure_session_id", "fad22ce8-4a82-4f77-abb2-e778adab6073".into()),
            ("circuit_code", circuit_code.into()),
            ("sim_ip", "127.0.0.1".into()),
            ("sim_port", 9000.into()),
            ("region_x", 256_512.into()),
            ("region_y", 256_000.into()),
            ("region_size_x", 512.into()),
            ("region_size_y", 512.into()),
            (
                "seed_capability",
                "http://127.0.0.1:9000/CAPS/43842463-bbd6-470d-bcb7-c5801e708bec0000/".into(),
            ),
            ("first_name", "Test".into()),
            ("last_name", "User".into()),
            ("look_at", "[r1,r0,r0]".into()),
            ("start_location", "url".into()),
            (
                "home",
                "{'region_handle':[r256512,r256000], 'position':[r128,r128,r30], 'look_at':[r1,r0,r0]}"
                    .into(),
            ),
            ("message", "Welcome, Avatar!".into()),
            (
                "inventory-root",
                LoginValue::Array(vec![LoginValue::Map(map(&[("folder_id", root.into())]))]),
            ),
            (
                "inventory-skeleton",
                LoginValue::Array(vec![
                    folder(root, zero, "My Inventory", 8),
                    folder("e7bd1ca6-5fb8-4716-942c-4e34fb6043b9", root, "Animations", 20),
                ]),
            ),
            (
                "buddy-list",
                LoginValue::Array(vec![LoginValue::Map(map(&[
                    ("buddy_id", "11111111-2222-4333-8444-555555555555".into()),
                    ("buddy_rights_given", 1.into()),
                    ("buddy_rights_has", 3.into()),
                ]))]),
            ),
            ("currency", "OS$".into()),
        ])),
    )
}

fn route(
    path: &str,
    method: &str,
    m: &BTreeMap<String, LoginValue>,
    port: u16,
    presence_attempts: &AtomicUsize,
) -> (u16, Vec<u8>) {
    let good = Password::from_plaintext(PLAINTEXT);
    let passwd = m.get("passwd").and_then(LoginValue::as_str).unwrap_or("");
    if path == "/second" {
        return if method == "login_to_simulator_v2" {
            success(2)
        } else {
            (200, encode_xmlrpc_fault(1, "wrong method after redirect"))
        };
    }
    if passwd != good.expose_hash() {
        return refusal("key", USER_PROBLEM);
    }
    let flag = |k: &str| m.get(k).and_then(LoginValue::as_bool) == Some(true);
    let redirect = |to: &str| {
        (
            200,
            encode_xmlrpc_response(map(&[
                ("login", "indeterminate".into()),
                ("next_url", format!("http://127.0.0.1:{port}{to}").into()),
                ("next_method", "login_to_simulator_v2".into()),
                ("next_duration", 0.into()),
                (
                    "next_options",
                    LoginValue::Array(vec!["inventory-root".into()]),
                ),
                ("message", "Redirecting you".into()),
            ])),
        )
    };
    match m.get("last").and_then(LoginValue::as_str).unwrap_or("") {
        "User" => success(1),
        "Presence" => {
            if presence_attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                refusal("presence", ALREADY)
            } else {
                success(1)
            }
        }
        "Blocked" => refusal("presence", BLOCKED),
        "Region" => refusal("key", GRID_PROBLEM),
        "Update" => refusal("update", "A newer viewer is required."),
        "Tos" if flag("agree_to_tos") => success(1),
        "Tos" => refusal("tos", "Please read and accept the terms of service."),
        "Critical" if flag("read_critical") => success(1),
        "Critical" => refusal("critical", "Important notice from the grid."),
        "Internal" => refusal("Internal Error", "Error generating Login Response"),
        "Odd" => refusal("ban", "You are banned."),
        "Fault" => (200, encode_xmlrpc_fault(3, "Requested method not found")),
        "Status" => (500, b"boom".to_vec()),
        "Garbage" => (200, b"<<<this is not XML-RPC at all".to_vec()),
        "Redirect" => redirect("/second"),
        "Loop" => redirect("/"),
        "Huge" => (200, vec![b' '; 64 * 1024]),
        // A careless server that repeats what it got: the client must not pass it on.
        "Echo" => refusal("key", &format!("bad login for passwd {passwd}")),
        "EchoStatus" => (500, format!("error handling passwd={passwd}").into_bytes()),
        _ => refusal("key", USER_PROBLEM),
    }
}

fn params(grid_uri: &str, last: &str) -> LoginParams {
    LoginParams::builder(grid_uri, "Test", last, Password::new(PLAINTEXT))
        .start(StartLocation::Uri {
            region: "Test Region".into(),
            x: 128.0,
            y: 128.0,
            z: 30.0,
        })
        .installation_id(InstallationId::generate())
        .build()
        .unwrap()
}

fn client() -> LoginClient {
    LoginClient::builder()
        .timeout(Duration::from_secs(20))
        .user_agent("opensim-login-test/1")
        .build()
        .unwrap()
}

fn login_with(client: &LoginClient, p: &LoginParams) -> Result<LoginResponse, LoginError> {
    let result = smol::block_on(client.login(p));
    if let Err(e) = &result {
        assert_no_secret(e);
    }
    result
}

fn login(grid: &Grid, last: &str) -> Result<LoginResponse, LoginError> {
    login_with(&client(), &params(&grid.uri(), last))
}

/// Neither the plain text nor any form of its hash may show in an error.
fn assert_no_secret(e: &LoginError) {
    let hash = Password::from_plaintext(PLAINTEXT);
    let hex = hash.expose_hash().trim_start_matches("$1$").to_owned();
    for shown in [format!("{e:?}"), e.to_string()] {
        for secret in [PLAINTEXT, hash.expose_hash(), hex.as_str()] {
            assert!(!shown.contains(secret), "secret in {shown}");
        }
    }
}

#[test]
fn successful_login_sends_a_viewer_request_and_parses_the_answer() {
    let grid = start_grid();
    let p = params(&grid.uri(), "User");
    let r = login_with(&client(), &p).unwrap();
    assert_eq!(r.agent_id.to_string(), AGENT);
    assert_eq!(r.circuit_code, 1);
    assert_eq!(r.sim_addr.to_string(), "127.0.0.1:9000");
    assert_eq!(r.region_handle(), (256_512u64 << 32) | 256_000);
    assert_eq!((r.region_size_x, r.region_size_y), (512, 512));
    assert_eq!(r.home.unwrap().position, [128.0, 128.0, 30.0]);
    assert_eq!(r.inventory_skeleton.len(), 2);
    assert_eq!(r.buddy_list.len(), 1);
    assert_eq!(
        (r.buddy_list[0].rights_given, r.buddy_list[0].rights_has),
        (1, 3)
    );
    assert_eq!(r.extra["currency"], LoginValue::from("OS$"));

    let seen = grid.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(
        (s.path.as_str(), s.method.as_str()),
        ("/", "login_to_simulator")
    );
    assert_eq!(s.headers["content-type"], "text/xml");
    assert_eq!(s.headers["user-agent"], "opensim-login-test/1");
    assert_eq!(
        s.members["start"].as_str(),
        Some("uri:Test Region&128&128&30")
    );
    assert_eq!(s.members["mac"].as_str(), Some(p.mac()));
    assert_eq!(s.members["id0"].as_str(), Some(p.id0()));
    assert_eq!(s.members["agree_to_tos"], LoginValue::Bool(false));
    // The plain text never travels.
    assert!(!format!("{:?}", s.members).contains(PLAINTEXT));
}

#[test]
fn wrong_password_is_invalid_credentials_with_the_server_text() {
    let grid = start_grid();
    let p = LoginParams::builder(grid.uri(), "Test", "User", Password::new("wrong"))
        .build()
        .unwrap();
    match login_with(&client(), &p) {
        Err(LoginError::InvalidCredentials(r)) => {
            assert_eq!(
                (r.reason.as_str(), r.message.as_str()),
                ("key", USER_PROBLEM)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn already_logged_in_fails_without_retry_policy() {
    let grid = start_grid();
    match login(&grid, "Presence") {
        Err(LoginError::AlreadyLoggedIn(r)) => {
            assert_eq!(
                (r.reason.as_str(), r.message.as_str()),
                ("presence", ALREADY)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(grid.seen().len(), 1);
}

#[test]
fn already_logged_in_then_success_with_retry_policy() {
    let grid = start_grid();
    let client = LoginClient::builder()
        .retry(RetryPolicy::already_logged_in(2, Duration::from_millis(10)))
        .build()
        .unwrap();
    let r = login_with(&client, &params(&grid.uri(), "Presence")).unwrap();
    assert_eq!(r.circuit_code, 1);
    // Refused once, accepted on the first retry; the second retry was not needed.
    assert_eq!(grid.seen().len(), 2);
}

#[test]
fn server_refusals_map_to_typed_errors_keeping_reason_and_message() {
    let grid = start_grid();
    let check = |last: &str, reason: &str, message: &str, ok: fn(&LoginError) -> bool| {
        let e = login(&grid, last).unwrap_err();
        assert!(ok(&e), "{last}: {e:?}");
        let r = e.refusal().unwrap();
        assert_eq!(
            (r.reason.as_str(), r.message.as_str()),
            (reason, message),
            "{last}"
        );
    };
    check("Region", "key", GRID_PROBLEM, |e| {
        matches!(e, LoginError::RegionUnavailable(_))
    });
    check("Blocked", "presence", BLOCKED, |e| {
        matches!(e, LoginError::LoginBlocked(_))
    });
    check("Update", "update", "A newer viewer is required.", |e| {
        matches!(e, LoginError::UpdateRequired(_))
    });
    check(
        "Internal",
        "Internal Error",
        "Error generating Login Response",
        |e| matches!(e, LoginError::ServerError(_)),
    );
    check("Odd", "ban", "You are banned.", |e| {
        matches!(e, LoginError::Refused(_))
    });
}

#[test]
fn tos_and_critical_succeed_once_acknowledged() {
    let grid = start_grid();
    let c = client();

    let p = params(&grid.uri(), "Tos");
    match login_with(&c, &p) {
        Err(LoginError::TosRequired(r)) => {
            assert_eq!(r.message, "Please read and accept the terms of service.");
        }
        other => panic!("{other:?}"),
    }
    login_with(&c, &p.with_agree_to_tos(true)).unwrap();

    let p = params(&grid.uri(), "Critical");
    match login_with(&c, &p) {
        Err(LoginError::CriticalMessage(r)) => {
            assert_eq!(r.message, "Important notice from the grid.");
        }
        other => panic!("{other:?}"),
    }
    login_with(&c, &p.with_read_critical(true)).unwrap();
}

#[test]
fn xmlrpc_fault_http_error_and_garbage() {
    let grid = start_grid();
    match login(&grid, "Fault") {
        Err(LoginError::Fault { code, message }) => {
            assert_eq!((code, message.as_str()), (3, "Requested method not found"));
        }
        other => panic!("{other:?}"),
    }
    match login(&grid, "Status") {
        Err(LoginError::HttpStatus { status, body }) => {
            assert_eq!((status, body.as_str()), (500, "boom"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        login(&grid, "Garbage"),
        Err(LoginError::MalformedResponse(_))
    ));
}

#[test]
fn oversized_answer_is_refused() {
    let grid = start_grid();
    let c = LoginClient::builder()
        .max_response_bytes(1024)
        .build()
        .unwrap();
    assert!(matches!(
        login_with(&c, &params(&grid.uri(), "Huge")),
        Err(LoginError::ResponseTooLarge { limit: 1024 })
    ));
}

#[test]
fn indeterminate_redirect_is_followed_with_next_method_and_options() {
    let grid = start_grid();
    let r = login(&grid, "Redirect").unwrap();
    assert_eq!(
        r.circuit_code, 2,
        "the answer must come from the second path"
    );
    let seen = grid.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/second");
    assert_eq!(seen[1].method, "login_to_simulator_v2");
    assert_eq!(
        seen[1].members["options"],
        LoginValue::Array(vec!["inventory-root".into()])
    );
    // Everything else of the request is resent unchanged.
    let mut first = seen[0].members.clone();
    let mut second = seen[1].members.clone();
    first.remove("options");
    second.remove("options");
    assert_eq!(first, second);
}

#[test]
fn redirect_loops_stop_at_the_limit() {
    let grid = start_grid();
    let c = LoginClient::builder().max_redirects(3).build().unwrap();
    match login_with(&c, &params(&grid.uri(), "Loop")) {
        Err(LoginError::TooManyRedirects { limit: 3, message }) => {
            assert_eq!(message, "Redirecting you");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(grid.seen().len(), 4);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Connections complete in the kernel's backlog, but nobody ever reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}/", silent.local_addr().unwrap());
    let c = LoginClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = login_with(&c, &params(&uri, "User")).unwrap_err();
    assert!(matches!(e, LoginError::Timeout), "{e:?}");
    drop(silent);
}

#[test]
fn connection_refused_is_a_transport_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = login_with(
        &client(),
        &params(&format!("http://127.0.0.1:{port}/"), "User"),
    )
    .unwrap_err();
    assert!(matches!(e, LoginError::Transport(_)), "{e:?}");
}

/// An LLSD map with keys in the given order.
fn llsd_map(pairs: Vec<(&str, Llsd)>) -> Llsd {
    Llsd::Map(pairs.into_iter().collect())
}

/// A one-element array of a map whose members are all strings, as OpenSimulator's
/// `LLLoginResponse.ToOSDMap` writes the nested structs (`OSDString.FromObject`).
fn llsd_strings(rows: &[&[(&str, &str)]]) -> Llsd {
    Llsd::Array(
        rows.iter()
            .map(|row| llsd_map(row.iter().map(|(k, v)| (*k, Llsd::from(*v))).collect()))
            .collect(),
    )
}

const LIB_OWNER: &str = "11111111-1111-0000-0000-000100bba000";

/// The LLSD login server's answers, shaped like `LLLoginResponse.ToOSDMap` /
/// `LLLoginHandlers.FailedOSDResponse`.
fn route_llsd(m: &BTreeMap<String, LoginValue>) -> (u16, Vec<u8>) {
    let good = Password::from_plaintext(PLAINTEXT);
    let passwd = m.get("passwd").and_then(LoginValue::as_str).unwrap_or("");
    let refusal = |reason: &str, message: &str| {
        let v = llsd_map(vec![
            ("reason", reason.into()),
            ("message", message.into()),
            ("login", "false".into()),
        ]);
        (200, opensim_llsd::to_xml(&v))
    };
    if passwd != good.expose_hash() {
        return refusal("key", USER_PROBLEM);
    }
    let root = "3c87c6d8-3462-4218-977a-beee07344df5";
    let uuid = |s: &str| Llsd::Uuid(s.parse().unwrap());
    match m.get("last").and_then(LoginValue::as_str).unwrap_or("") {
        "User" => {
            let v = llsd_map(vec![
                ("first_name", "Test".into()),
                ("last_name", "User".into()),
                ("agent_access", "M".into()),
                ("agent_access_max", "A".into()),
                ("sim_port", 9000.into()),
                ("sim_ip", "127.0.0.1".into()),
                ("agent_id", uuid(AGENT)),
                ("session_id", uuid("9eab4ebe-ee55-412b-8425-632922b9bf60")),
                ("secure_session_id", uuid("fad22ce8-4a82-4f77-abb2-e778adab6073")),
                // A circuit code above i32::MAX, written through an Int32 cast.
                ("circuit_code", Llsd::Integer(3_000_000_000u32 as i32)),
                ("seconds_since_epoch", 1_795_599_682.into()),
                (
                    "login-flags",
                    llsd_strings(&[&[
                        ("daylight_savings", "N"),
                        ("stipend_since_login", "N"),
                        ("gendered", "Y"),
                        ("ever_logged_in", "Y"),
                    ]]),
                ),
                (
                    "global-textures",
                    llsd_strings(&[&[
                        ("sun_texture_id", "cce0f112-878f-4586-a2e2-a8f104bba271"),
                        ("cloud_texture_id", "dc4b9f0b-d008-45c6-96a4-01dd947ac621"),
                        ("moon_texture_id", "ec4b9f0b-d008-45c6-96a4-01dd947ac621"),
                    ]]),
                ),
                (
                    "seed_capability",
                    "http://127.0.0.1:9000/CAPS/43842463-bbd6-470d-bcb7-c5801e708bec0000/".into(),
                ),
                ("event_categories", Llsd::Array(vec![])),
                (
                    "classified_categories",
                    llsd_strings(&[&[("category_name", "Shopping"), ("category_id", "1")]]),
                ),
                ("ui-config", llsd_strings(&[&[("allow_first_life", "Y")]])),
                (
                    "inventory-skeleton",
                    llsd_strings(&[&[
                        ("name", "My Inventory"),
                        ("parent_id", "00000000-0000-0000-0000-000000000000"),
                        ("version", "18"),
                        ("type_default", "8"),
                        ("folder_id", root),
                    ]]),
                ),
                ("inventory-skel-lib", Llsd::Array(vec![])),
                ("inventory-root", llsd_strings(&[&[("folder_id", root)]])),
                (
                    "inventory-lib-root",
                    llsd_strings(&[&[("folder_id", "00000112-000f-0000-0000-000100bba000")]]),
                ),
                ("inventory-lib-owner", llsd_strings(&[&[("agent_id", LIB_OWNER)]])),
                ("gestures", Llsd::Array(vec![])),
                (
                    "initial-outfit",
                    llsd_strings(&[&[("folder_name", "Nightclub Female"), ("gender", "female")]]),
                ),
                ("start_location", "url".into()),
                (
                    "home",
                    "{'region_handle':[r256000,r256000], 'position':[r128,r128,r30], 'look_at':[r1,r0,r0]}"
                        .into(),
                ),
                ("look_at", "[r1,r0,r0]".into()),
                ("message", "Welcome, Avatar!".into()),
                ("region_x", 256_000.into()),
                ("region_y", 256_000.into()),
                (
                    "buddy-list",
                    llsd_strings(&[&[
                        ("buddy_rights_has", "1"),
                        ("buddy_rights_given", "3"),
                        ("buddy_id", "11111111-2222-4333-8444-555555555555"),
                    ]]),
                ),
                ("login", "true".into()),
            ]);
            (200, opensim_llsd::to_xml(&v))
        }
        "Blocked" => refusal("presence", BLOCKED),
        "Garbage" => (200, b"<llsd><map><key>login</key>".to_vec()),
        "Array" => (200, b"<llsd><array/></llsd>".to_vec()),
        _ => refusal("key", USER_PROBLEM),
    }
}

fn llsd_params(grid_uri: &str, last: &str, password: &str) -> LoginParams {
    LoginParams::builder(grid_uri, "Test", last, Password::new(password))
        .start(StartLocation::Last)
        .channel("MyRustClient")
        .version("0.1.0")
        .encoding(opensim_login::LoginEncoding::Llsd)
        .installation_id(InstallationId::generate())
        .build()
        .unwrap()
}

#[test]
fn llsd_login_sends_an_llsd_map_and_parses_the_llsd_answer() {
    let grid = start_grid();
    let p = llsd_params(&grid.uri(), "User", PLAINTEXT);
    let r = login_with(&client(), &p).unwrap();
    assert_eq!(r.agent_id.to_string(), AGENT);
    assert_eq!(r.circuit_code, 3_000_000_000);
    assert_eq!(r.sim_addr.to_string(), "127.0.0.1:9000");
    assert_eq!(r.region_handle(), 1_099_511_628_032_000);
    // Not in the LLSD answer.
    assert_eq!((r.region_size_x, r.region_size_y), (256, 256));
    assert_eq!(r.http_port, None);
    assert_eq!(
        r.seed_capability,
        "http://127.0.0.1:9000/CAPS/43842463-bbd6-470d-bcb7-c5801e708bec0000/"
    );
    assert_eq!(r.look_at, Some([1.0, 0.0, 0.0]));
    assert_eq!(r.home.unwrap().position, [128.0, 128.0, 30.0]);
    assert_eq!(r.max_agent_groups, None);
    assert_eq!(r.seconds_since_epoch, Some(1_795_599_682));
    // Nested members all came as strings.
    assert_eq!(r.inventory_skeleton.len(), 1);
    let top = &r.inventory_skeleton[0];
    assert_eq!(
        (top.name.as_str(), top.type_default, top.version),
        ("My Inventory", 8, 18)
    );
    assert_eq!(r.inventory_root, Some(top.folder_id));
    assert_eq!(r.library_owner.unwrap().to_string(), LIB_OWNER);
    assert_eq!(r.buddy_list.len(), 1);
    assert_eq!(
        (r.buddy_list[0].rights_given, r.buddy_list[0].rights_has),
        (3, 1)
    );
    assert_eq!(r.classified_categories.len(), 1);
    assert_eq!(r.classified_categories[0].id, 1);
    assert!(r.login_flags.unwrap().gendered);
    assert!(r.global_textures.is_some());
    assert_eq!(r.allow_first_life, Some(true));
    assert!(r.extra.is_empty(), "{:?}", r.extra.keys());

    let seen = grid.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.headers["content-type"], "application/llsd+xml");
    let text = |k: &str| s.members[k].as_str().unwrap().to_owned();
    assert_eq!(text("first"), "Test");
    assert_eq!(text("last"), "User");
    assert_eq!(
        text("passwd"),
        Password::from_plaintext(PLAINTEXT).expose_hash()
    );
    assert_eq!(text("start"), "last");
    assert_eq!(text("channel"), "MyRustClient");
    assert_eq!(text("version"), "0.1.0");
    assert_eq!(text("mac"), p.mac());
    assert_eq!(text("id0"), p.id0());
    assert_eq!(s.members["agree_to_tos"], LoginValue::Bool(false));
    assert!(!format!("{:?}", s.members).contains(PLAINTEXT));
}

#[test]
fn llsd_login_failures() {
    let grid = start_grid();
    let c = client();
    match login_with(&c, &llsd_params(&grid.uri(), "User", "wrong")) {
        Err(LoginError::InvalidCredentials(r)) => {
            assert_eq!(
                (r.reason.as_str(), r.message.as_str()),
                ("key", USER_PROBLEM)
            );
        }
        other => panic!("{other:?}"),
    }
    match login_with(&c, &llsd_params(&grid.uri(), "Blocked", PLAINTEXT)) {
        Err(LoginError::LoginBlocked(r)) => assert_eq!(r.message, BLOCKED),
        other => panic!("{other:?}"),
    }
    for last in ["Garbage", "Array"] {
        assert!(
            matches!(
                login_with(&c, &llsd_params(&grid.uri(), last, PLAINTEXT)),
                Err(LoginError::MalformedResponse(_))
            ),
            "{last}"
        );
    }
    assert_eq!(grid.seen().len(), 4);
    // The LLSD login has no web-login-key form: refused before anything is sent.
    let key = LoginParams::builder(
        grid.uri(),
        "Test",
        "User",
        opensim_login::Credential::WebLoginKey(uuid::Uuid::new_v4()),
    )
    .encoding(opensim_login::LoginEncoding::Llsd)
    .build();
    assert!(matches!(key, Err(LoginError::InvalidParams(_))));
}

#[test]
fn password_never_shows_in_debug_or_errors() {
    let grid = start_grid();
    let p = params(&grid.uri(), "Echo");
    let shown = format!("{p:?}");
    let hash = Password::from_plaintext(PLAINTEXT);
    assert!(!shown.contains(PLAINTEXT) && !shown.contains(&hash.expose_hash()[3..]));
    assert!(shown.contains("<redacted>"));
    assert_eq!(format!("{hash:?}"), "<redacted>");

    // The servers below echo the hash they received; the client scrubs it.
    match login(&grid, "Echo") {
        Err(LoginError::Refused(r)) => assert_eq!(r.message, "bad login for passwd <redacted>"),
        other => panic!("{other:?}"),
    }
    match login(&grid, "EchoStatus") {
        Err(LoginError::HttpStatus { status: 500, body }) => {
            assert_eq!(body, "error handling passwd=<redacted>");
        }
        other => panic!("{other:?}"),
    }
    // Every other failure path was checked by `login_with` as the tests ran; these too.
    for last in [
        "Region", "Fault", "Status", "Garbage", "Loop", "Update", "Tos",
    ] {
        assert_no_secret(&login(&grid, last).unwrap_err());
    }
}
