//! The HTTP side: login, seed capability, event queue, simulator features and textures.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_net::{TcpListener, TcpStream};
use futures_lite::FutureExt;
use opensim_llsd::{Map, Value};
use opensim_login::LoginValue;
use opensim_login::codec::{decode_xmlrpc_call, encode_xmlrpc_fault, encode_xmlrpc_response};
use uuid::Uuid;

use crate::http::{self, HttpError, Request, Response};
use crate::state::{Identity, Session, Shared};

/// OpenSim's text for a wrong name or password.
pub(crate) const BAD_CREDENTIALS: &str = "Could not authenticate your avatar. Please check your username and password, and check the grid if problems persist.";

/// The caps this simulator grants (more are left out of the seed answer, as OpenSim does).
const SERVED_CAPS: [&str; 4] = [
    "EventQueueGet",
    "GetTexture",
    "ViewerAsset",
    "SimulatorFeatures",
];

async fn stopped(shared: &Shared) {
    loop {
        let l = shared.changed.listen();
        if shared.is_stopping() {
            return;
        }
        l.await;
    }
}

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                stopped(&shared).await;
                None
            })
            .await;
        match accepted {
            None => return,
            Some(Ok((stream, _))) => {
                smol::spawn(connection(shared.clone(), stream)).detach();
            }
            // Out of descriptors and the like: keep serving the connections we have.
            Some(Err(_)) => {
                async_io::Timer::after(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let idle = shared.config.http_idle_timeout;
        let req = http::read_request(&mut stream, &mut buf)
            .or(async {
                async_io::Timer::after(idle).await;
                Err(HttpError::Closed)
            })
            .or(async {
                stopped(&shared).await;
                Err(HttpError::Closed)
            })
            .await;
        let (resp, close) = match req {
            Ok(req) => {
                let close = req.wants_close();
                let resp = handle(&shared, req).await;
                let close = close || resp.close;
                (resp, close)
            }
            Err(HttpError::Closed | HttpError::Io(_)) => return,
            Err(HttpError::TooLarge) => (Response::empty_close(413), true),
            Err(HttpError::Malformed(_)) => (Response::empty_close(400), true),
        };
        if http::write_response(&mut stream, &resp).await.is_err() || close {
            return;
        }
    }
}

async fn handle(shared: &Arc<Shared>, req: Request) -> Response {
    if req.path == "/" {
        return if req.method == "POST" {
            login(shared, &req)
        } else {
            Response::empty_close(405)
        };
    }
    if let Some(token) = req.path.strip_prefix("/CAPS/") {
        return seed(shared, token.trim_end_matches('/'), &req);
    }
    if let Some(token) = req.path.strip_prefix("/CE/") {
        return event_queue(shared, token, &req).await;
    }
    let token = req.path.trim_start_matches('/');
    let kind = shared.with_session(
        |s| cap_tokens(s).any(|(_, t)| t == token),
        |region, s| {
            cap_tokens(s)
                .find(|(_, t)| *t == token)
                .map(|(k, _)| (k, region))
        },
    );
    match kind.flatten() {
        Some(("SimulatorFeatures", _)) => llsd_ok(simulator_features()),
        Some(("GetTexture" | "ViewerAsset", region)) => texture(shared, region, &req).await,
        _ => Response::empty_close(404),
    }
}

fn llsd_ok(v: Value) -> Response {
    Response::ok("text/html;charset=UTF-8", opensim_llsd::to_xml(&v))
}

fn cap_tokens(s: &Session) -> impl Iterator<Item = (&'static str, &str)> {
    s.cap_tokens.iter().map(|(k, t)| (*k, t.as_str()))
}

// ---------------------------------------------------------------- login

fn hash_password(plain: &str) -> String {
    let d = <md5::Md5 as md5::Digest>::digest(plain.as_bytes());
    format!("$1${}", hex::encode(d))
}

fn refusal(reason: &str, message: &str) -> Response {
    let mut m = BTreeMap::new();
    m.insert("reason".to_owned(), LoginValue::String(reason.to_owned()));
    m.insert("message".to_owned(), LoginValue::String(message.to_owned()));
    m.insert("login".to_owned(), LoginValue::String("false".to_owned()));
    xml_rpc(encode_xmlrpc_response(m))
}

fn xml_rpc(body: Vec<u8>) -> Response {
    let mut r = Response::ok("text/xml", body);
    r.headers
        .push(("Access-Control-Allow-Origin", "*".to_owned()));
    r.close = true;
    r
}

fn login(shared: &Arc<Shared>, req: &Request) -> Response {
    let Ok((method, members)) = decode_xmlrpc_call(&req.body) else {
        return xml_rpc(encode_xmlrpc_fault(-32700, "parse error"));
    };
    if method != "login_to_simulator" {
        return xml_rpc(encode_xmlrpc_fault(-32601, "unknown method"));
    }
    let get = |k: &str| members.get(k).and_then(LoginValue::as_str).unwrap_or("");
    let (first, last, passwd) = (get("first"), get("last"), get("passwd"));
    let Some(user) = shared
        .config
        .users
        .iter()
        .find(|u| u.first.eq_ignore_ascii_case(first) && u.last.eq_ignore_ascii_case(last))
    else {
        return refusal("key", BAD_CREDENTIALS);
    };
    let offered = if passwd.starts_with("$1$") {
        passwd.to_ascii_lowercase()
    } else {
        hash_password(passwd)
    };
    if offered != hash_password(&user.password) {
        return refusal("key", BAD_CREDENTIALS);
    }
    let circuit_code = loop {
        let c = rand::random::<u32>() & 0x7FFF_FFFF;
        if c != 0 {
            break c;
        }
    };
    let session_id = Uuid::new_v4();
    let secure_session_id = Uuid::new_v4();
    let who = Identity {
        agent_id: user.agent_id,
        session_id,
        first: user.first.clone(),
        last: user.last.clone(),
        circuit_code,
    };
    let Some(login_region) = shared.regions.first() else {
        return refusal("presence", "No region is available.");
    };
    if login_region.is_full(shared.config.agent_limit, user.agent_id) {
        return refusal("key", crate::state::REGION_FULL);
    }
    let p = &login_region.prepared;
    let mut session = Session::new(&who, p.start);
    session.arriving_root = true;
    let seed_token = session.seed_token.clone();
    // A second login replaces the first everywhere (OpenSim would refuse once and kick the
    // old agent).
    for r in &shared.regions {
        if let Some(c) = shared
            .remove(r.index, user.agent_id)
            .and_then(|o| o.connection)
        {
            smol::spawn(async move { c.close().await }).detach();
        }
    }
    login_region.sessions().insert(user.agent_id, session);
    shared.changed.notify(usize::MAX);
    // A login whose circuit never comes is dropped, as OpenSim drops its pending agent.
    let expiry = shared.config.login_expiry;
    let weak = Arc::downgrade(shared);
    let agent_id = user.agent_id;
    smol::spawn(async move {
        async_io::Timer::after(expiry).await;
        if let Some(shared) = weak.upgrade() {
            // Every region the login reached without a circuit lets it go.
            for r in &shared.regions {
                let unused = r
                    .sessions()
                    .get(&agent_id)
                    .is_some_and(|s| s.session_id == session_id && s.connection.is_none());
                if unused {
                    shared.remove(r.index, agent_id);
                }
            }
        }
    })
    .detach();

    let scene = &login_region.scene;
    let size = scene.size();
    let base = shared.base_url();
    let s = |v: &str| LoginValue::String(v.to_owned());
    let int = |v: i64| LoginValue::Int(v);
    let folder = |name: &str, id: Uuid, parent: Uuid, ty: i64| {
        let mut m = BTreeMap::new();
        m.insert("name".to_owned(), s(name));
        m.insert("folder_id".to_owned(), s(&id.to_string()));
        m.insert("parent_id".to_owned(), s(&parent.to_string()));
        m.insert("type_default".to_owned(), int(ty));
        m.insert("version".to_owned(), int(1));
        LoginValue::Map(m)
    };
    let one = |k: &str, v: LoginValue| {
        let mut m = BTreeMap::new();
        m.insert(k.to_owned(), v);
        LoginValue::Array(vec![LoginValue::Map(m)])
    };
    let root = Uuid::from_u128(user.agent_id.as_u128() ^ 0x1);
    let lib_root = Uuid::from_u128(0x00000112_000f_0000_0000_000100bba000);
    let (gx, gy) = (i64::from(scene.grid.0) * 256, i64::from(scene.grid.1) * 256);
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: LoginValue| {
        m.insert(k.to_owned(), v);
    };
    put("login", s("true"));
    put("agent_id", s(&user.agent_id.to_string()));
    put("session_id", s(&session_id.to_string()));
    put("secure_session_id", s(&secure_session_id.to_string()));
    put("circuit_code", int(i64::from(circuit_code)));
    put("first_name", s(&user.first));
    put("last_name", s(&user.last));
    put("sim_ip", s("127.0.0.1"));
    put("sim_port", int(i64::from(shared.port)));
    put("http_port", int(0));
    put("region_x", int(gx));
    put("region_y", int(gy));
    put("region_size_x", int(i64::from(size.width())));
    put("region_size_y", int(i64::from(size.height())));
    put("seed_capability", s(&format!("{base}/CAPS/{seed_token}/")));
    put("look_at", s("[r0,r1,r0]"));
    put("start_location", s("safe"));
    put("message", s("Welcome, Avatar!"));
    put("seconds_since_epoch", int(unix_now() as i64));
    put("agent_access", s("M"));
    put("agent_access_max", s("A"));
    put("max-agent-groups", int(42));
    put("real_id", s(&Uuid::nil().to_string()));
    put("map-server-url", s(&format!("{base}/")));
    put(
        "home",
        s(&format!(
            "{{'region_handle':[r{gx},r{gy}], 'position':[r{},r{},r{}], 'look_at':[r0,r1,r0]}}",
            p.start.x, p.start.y, p.start.z
        )),
    );
    put("inventory-root", one("folder_id", s(&root.to_string())));
    put(
        "inventory-skeleton",
        LoginValue::Array(vec![folder("My Inventory", root, Uuid::nil(), 8)]),
    );
    put(
        "inventory-lib-root",
        one("folder_id", s(&lib_root.to_string())),
    );
    put(
        "inventory-skel-lib",
        LoginValue::Array(vec![folder("OpenSim Library", lib_root, Uuid::nil(), 8)]),
    );
    put(
        "inventory-lib-owner",
        one("agent_id", s("11111111-1111-0000-0000-000100bba000")),
    );
    for k in [
        "buddy-list",
        "gestures",
        "event_categories",
        "event_notifications",
    ] {
        put(k, LoginValue::Array(Vec::new()));
    }
    put("classified_categories", LoginValue::Array(Vec::new()));
    put("ui-config", one("allow_first_life", s("Y")));
    let mut flags = BTreeMap::new();
    for (k, v) in [
        ("daylight_savings", "N"),
        ("ever_logged_in", "Y"),
        ("stipend_since_login", "N"),
        ("gendered", "Y"),
    ] {
        flags.insert(k.to_owned(), s(v));
    }
    put(
        "login-flags",
        LoginValue::Array(vec![LoginValue::Map(flags)]),
    );
    let mut textures = BTreeMap::new();
    for (k, v) in [
        ("moon_texture_id", "ec4b9f0b-d008-45c6-96a4-01dd947ac621"),
        ("cloud_texture_id", "dc4b9f0b-d008-45c6-96a4-01dd947ac621"),
        ("sun_texture_id", "cce0f112-878f-4586-a2e2-a8f104bba271"),
    ] {
        textures.insert(k.to_owned(), s(v));
    }
    put(
        "global-textures",
        LoginValue::Array(vec![LoginValue::Map(textures)]),
    );
    let mut outfit = BTreeMap::new();
    outfit.insert("folder_name".to_owned(), s("Nightclub Female"));
    outfit.insert("gender".to_owned(), s("female"));
    put(
        "initial-outfit",
        LoginValue::Array(vec![LoginValue::Map(outfit)]),
    );
    xml_rpc(encode_xmlrpc_response(m))
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------- caps

fn seed(shared: &Shared, token: &str, req: &Request) -> Response {
    shared
        .with_session(
            |s| s.seed_token == token,
            |_, s| seed_answer(shared, s, req),
        )
        .unwrap_or_else(|| Response::empty_close(404))
}

fn seed_answer(shared: &Shared, s: &Session, req: &Request) -> Response {
    if req.method != "POST" {
        return Response::empty_close(405);
    }
    let Ok(Value::Array(names)) = opensim_llsd::from_xml(&req.body) else {
        return Response::empty_close(400);
    };
    let base = shared.base_url();
    let mut out = Map::new();
    for name in names.iter().filter_map(Value::as_str) {
        if !SERVED_CAPS.contains(&name) {
            continue;
        }
        let url = if name == "EventQueueGet" {
            format!("{base}/CE/{}", s.eq_token)
        } else {
            match cap_tokens(s).find(|(k, _)| *k == name) {
                Some((_, t)) => format!("{base}/{t}"),
                None => continue,
            }
        };
        out.insert(name, Value::String(url));
    }
    llsd_ok(Value::Map(out))
}

fn simulator_features() -> Value {
    let mut extras = Map::new();
    extras.insert("GridName", Value::String("opensim-sim".into()));
    extras.insert("say-range", Value::Integer(20));
    extras.insert("whisper-range", Value::Integer(10));
    extras.insert("shout-range", Value::Integer(100));
    let mut m = Map::new();
    m.insert("MeshRezEnabled", Value::Boolean(true));
    m.insert("MeshUploadEnabled", Value::Boolean(true));
    m.insert("MaxAgentAttachments", Value::Integer(38));
    m.insert("OpenSimExtras", Value::Map(extras));
    Value::Map(m)
}

enum Poll {
    Answer(i32, Vec<Value>),
    Wait,
    Gone,
}

fn take_batch(shared: &Shared, token: &str, ack: Option<i32>) -> Poll {
    shared
        .with_session(|s| s.eq_token == token, |_, s| batch_of(s, ack))
        .unwrap_or(Poll::Gone)
}

fn batch_of(s: &mut Session, ack: Option<i32>) -> Poll {
    let eq = &mut s.eq;
    if eq.unacked.as_ref().is_some_and(|(id, _)| Some(*id) == ack) {
        eq.unacked = None;
    }
    if let Some((id, events)) = &eq.unacked {
        return Poll::Answer(*id, events.clone());
    }
    if eq.pending.is_empty() {
        return Poll::Wait;
    }
    let id = eq.next_id;
    eq.next_id = eq.next_id.wrapping_add(1);
    let events: Vec<Value> = eq.pending.drain(..).collect();
    eq.unacked = Some((id, events.clone()));
    Poll::Answer(id, events)
}

async fn event_queue(shared: &Shared, token: &str, req: &Request) -> Response {
    if req.method != "POST" {
        return Response::empty_close(405);
    }
    let body = opensim_llsd::from_xml(&req.body).unwrap_or_default();
    let ack = body.get("ack").and_then(Value::as_i32);
    let deadline = async_io::Timer::after(shared.config.eq_idle_timeout);
    futures_lite::pin!(deadline);
    loop {
        let listener = shared.changed.listen();
        if shared.is_stopping() {
            return Response::empty_close(404);
        }
        match take_batch(shared, token, ack) {
            Poll::Gone => return Response::empty_close(404),
            Poll::Answer(id, events) => {
                let mut m = Map::new();
                m.insert("events", Value::Array(events));
                m.insert("id", Value::Integer(id));
                return Response::ok("application/xml", opensim_llsd::to_xml(&Value::Map(m)));
            }
            Poll::Wait => {}
        }
        let timed_out = async {
            listener.await;
            false
        }
        .or(async {
            (&mut deadline).await;
            true
        })
        .await;
        if timed_out {
            return Response::empty_close(502);
        }
    }
}

async fn texture(shared: &Shared, region: usize, req: &Request) -> Response {
    let id = req.query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "texture_id" || k == "texture" || k == "asset_id").then(|| v.parse::<Uuid>().ok())?
    });
    let data = match id {
        Some(id) => shared.fetch_texture(region, id).await,
        None => None,
    };
    let Some(data) = data else {
        return Response::empty_close(404);
    };
    let total = data.len();
    let range = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            let start: usize = a.trim().parse().ok()?;
            let end: usize = if b.trim().is_empty() {
                total.checked_sub(1)?
            } else {
                b.trim().parse().ok()?
            };
            Some((start, end))
        });
    match range {
        // OpenSim answers a range starting past the end with the whole texture.
        Some((start, end)) if start < total && start <= end => {
            let end = end.min(total - 1);
            let mut r = Response::ok("image/x-j2c", data[start..=end].to_vec());
            r.status = 206;
            r.headers
                .push(("Content-Range", format!("bytes {start}-{end}/{total}")));
            r
        }
        _ => Response::ok("image/x-j2c", data.to_vec()),
    }
}
