//! The real OpenSimulator 0.9.2.2 login exchange from the shared captures.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::mem::discriminant;
use std::net::SocketAddr;

use opensim_login::codec::{decode_xmlrpc_call, decode_xmlrpc_response, encode_xmlrpc_call};
use opensim_login::{
    LOGIN_METHOD, LoginParams, LoginReply, LoginResponse, LoginValue, Password, StartLocation,
};
use uuid::{Uuid, uuid};

fn session_file(name: &str) -> Option<Vec<u8>> {
    let dir = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session")?;
    Some(std::fs::read(dir.join(name)).unwrap())
}

fn parse_success(body: &[u8]) -> LoginResponse {
    match LoginReply::from_members(decode_xmlrpc_response(body).unwrap()).unwrap() {
        LoginReply::Success(r) => *r,
        other => panic!("not a success: {other:?}"),
    }
}

#[test]
fn session_login_response_parses_completely() {
    let Some(body) = session_file("login_response.xml") else {
        return;
    };
    let r = parse_success(&body);

    assert_eq!(r.agent_id, uuid!("aaaaaaaa-bbbb-4ccc-8ddd-000000000001"));
    assert_eq!(r.session_id, uuid!("9eab4ebe-ee55-412b-8425-632922b9bf60"));
    assert_eq!(
        r.secure_session_id,
        uuid!("fad22ce8-4a82-4f77-abb2-e778adab6073")
    );
    assert_eq!(r.circuit_code, 1_617_885_466);
    assert_eq!(r.sim_addr, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
    assert_eq!((r.region_x, r.region_y), (256_000, 256_000));
    assert_eq!(r.region_handle(), 1_099_511_628_032_000);
    assert_eq!((r.region_size_x, r.region_size_y), (256, 256));
    assert_eq!(
        r.seed_capability,
        "http://127.0.0.1:9000/CAPS/43842463-bbd6-470d-bcb7-c5801e708bec0000/"
    );
    assert_eq!(
        (r.first_name.as_str(), r.last_name.as_str()),
        ("Test", "User")
    );
    assert_eq!(r.http_port, Some(0));
    assert_eq!(r.real_id, Some(Uuid::nil()));
    assert_eq!(r.look_at, Some([0.0, 1.0, 0.0]));
    assert_eq!(r.start_location.as_deref(), Some("safe"));
    let home = r.home.unwrap();
    assert_eq!(home.region_handle(), r.region_handle());
    assert_eq!((home.position, home.look_at), ([0.0; 3], [0.0; 3]));
    assert_eq!(r.message.as_deref(), Some("Welcome, Avatar!"));
    assert_eq!(r.agent_access.as_deref(), Some("M"));
    assert_eq!(r.agent_access_max.as_deref(), Some("A"));
    assert_eq!(r.max_agent_groups, Some(42));
    assert_eq!(r.seconds_since_epoch, Some(1_795_599_682));

    let root = uuid!("3c87c6d8-3462-4218-977a-beee07344df5");
    assert_eq!(r.inventory_root, Some(root));
    assert_eq!(r.inventory_skeleton.len(), 20);
    let top = &r.inventory_skeleton[0];
    assert_eq!(
        (
            top.folder_id,
            top.parent_id,
            top.name.as_str(),
            top.type_default,
            top.version
        ),
        (root, Uuid::nil(), "My Inventory", 8, 18)
    );
    // Every user folder hangs off a folder of the same skeleton.
    for f in &r.inventory_skeleton[1..] {
        assert!(
            r.inventory_skeleton
                .iter()
                .any(|p| p.folder_id == f.parent_id),
            "{f:?}"
        );
    }
    assert!(
        r.inventory_skeleton
            .iter()
            .any(|f| f.name == "Current Outfit" && f.type_default == 46)
    );

    let lib_root = uuid!("00000112-000f-0000-0000-000100bba000");
    assert_eq!(r.library_root, Some(lib_root));
    assert_eq!(
        r.library_owner,
        Some(uuid!("11111111-1111-0000-0000-000100bba000"))
    );
    assert_eq!(r.library_skeleton.len(), 19);
    assert_eq!(r.library_skeleton[0].folder_id, lib_root);
    assert_eq!(r.library_skeleton[0].version, 429);
    assert!(r.library_skeleton.iter().any(|f| f.type_default == -1));

    assert!(r.buddy_list.is_empty());
    assert!(r.gestures.is_empty());
    assert!(r.event_categories.is_empty());
    assert_eq!(r.classified_categories.len(), 9);
    assert_eq!(r.classified_categories[0].id, 1);
    assert_eq!(r.classified_categories[0].name, "Shopping");
    let outfit = r.initial_outfit.unwrap();
    assert_eq!(
        (outfit.folder_name.as_str(), outfit.gender.as_str()),
        ("Nightclub Female", "female")
    );
    let flags = r.login_flags.unwrap();
    assert!(!flags.daylight_savings && !flags.stipend_since_login);
    assert!(flags.gendered && flags.ever_logged_in);
    let tex = r.global_textures.unwrap();
    assert_eq!(
        tex.sun_texture_id,
        uuid!("cce0f112-878f-4586-a2e2-a8f104bba271")
    );
    assert_eq!(
        tex.cloud_texture_id,
        uuid!("dc4b9f0b-d008-45c6-96a4-01dd947ac621")
    );
    assert_eq!(
        tex.moon_texture_id,
        uuid!("ec4b9f0b-d008-45c6-96a4-01dd947ac621")
    );
    assert_eq!(r.allow_first_life, Some(true));
    assert_eq!(r.map_server_url.as_deref(), Some("http://127.0.0.1:9000/"));

    // Nothing was lost: the only member without a typed field is the (empty) notifications list.
    let extra: Vec<&str> = r.extra.keys().map(String::as_str).collect();
    assert_eq!(extra, ["event_notifications"]);
    assert_eq!(r.extra["event_notifications"], LoginValue::Array(vec![]));
}

/// The login of the HTTP capture: the body after the `=== RESPONSE ===` headers.
#[test]
fn http_capture_login_response_parses() {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("login-caps/0000_c2s_http.txt")).unwrap();
    let response = &text[text.find("=== RESPONSE ===").unwrap()..];
    let body = &response[response
        .find("\r\n\r\n")
        .map_or_else(|| response.find("\n\n").unwrap() + 2, |i| i + 4)..];
    let r = parse_success(body.trim_end().as_bytes());
    assert_eq!(r.agent_id, uuid!("aaaaaaaa-bbbb-4ccc-8ddd-000000000001"));
    assert_eq!(r.sim_addr.port(), 9000);
    assert_eq!(r.region_handle(), 1_099_511_628_032_000);
    assert_eq!(r.start_location.as_deref(), Some("url"));
    assert!(r.seed_capability.starts_with("http://127.0.0.1:9000/CAPS/"));
    assert!(r.seed_capability.ends_with("0000/"));
    assert_eq!(
        r.seed_capability.len(),
        "http://127.0.0.1:9000/CAPS/".len() + 36 + 5
    );
    assert_ne!(r.session_id, Uuid::nil());
    assert_eq!(r.inventory_skeleton.len(), 20);
}

/// Our request carries every member the captured request has, with the same XML-RPC types.
#[test]
fn our_request_has_every_member_of_the_captured_one() {
    let Some(body) = session_file("login_request.xml") else {
        return;
    };
    let (method, captured) = decode_xmlrpc_call(&body).unwrap();
    assert_eq!(method, LOGIN_METHOD);

    let params = LoginParams::builder(
        "http://127.0.0.1:9000/",
        "Test",
        "User",
        Password::new("password"),
    )
    .start(StartLocation::Last)
    .agree_to_tos(true)
    .read_critical(true)
    .build()
    .unwrap();
    let ours_body = encode_xmlrpc_call(LOGIN_METHOD, params.wire_members(None));
    let (our_method, ours) = decode_xmlrpc_call(&ours_body).unwrap();
    assert_eq!(our_method, LOGIN_METHOD);

    same_shape(&captured, &ours);
    for key in [
        "first",
        "last",
        "passwd",
        "start",
        "agree_to_tos",
        "read_critical",
        "viewer_digest",
    ] {
        assert_eq!(ours[key], captured[key], "{key}");
    }
    let wanted = |m: &BTreeMap<String, LoginValue>| -> Vec<String> {
        m["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect()
    };
    let our_options = wanted(&ours);
    for o in wanted(&captured) {
        assert!(our_options.contains(&o), "option {o} missing");
    }
}

fn same_shape(captured: &BTreeMap<String, LoginValue>, ours: &BTreeMap<String, LoginValue>) {
    for (key, theirs) in captured {
        let mine = ours
            .get(key)
            .unwrap_or_else(|| panic!("member {key} missing"));
        assert_eq!(discriminant(mine), discriminant(theirs), "type of {key}");
        if let (LoginValue::Array(a), LoginValue::Array(b)) = (mine, theirs) {
            for (x, y) in a.iter().zip(b) {
                assert_eq!(discriminant(x), discriminant(y), "element type of {key}");
            }
        }
    }
}
