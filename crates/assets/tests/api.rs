//! Endpoint behaviour, status codes, policies, limits, de-duplication and concurrency.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{Backend, Client, TestServer, asset_xml, req, uuid_n};
use opensim_assets::{Credentials, DeletePolicy};

fn post(addr: std::net::SocketAddr, body: &[u8]) -> common::Resp {
    req(addr, "POST", "/assets", &[], body)
}

fn string_reply(id: &str) -> Vec<u8> {
    let mut v = Vec::new();
    opensim_assets::xml::write_string(&mut v, id);
    v
}

fn store_get_data_metadata(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let id = uuid_n(1);
    let r = post(srv.addr, &asset_xml(&id, 49, "", b"mesh bytes"));
    assert_eq!((r.status, r.body), (200, string_reply(&id)));
    let r = req(srv.addr, "GET", &format!("/assets/{id}/data"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, b"mesh bytes");
    let r = req(srv.addr, "GET", &format!("/assets/{id}/metadata"), &[], b"");
    assert_eq!(r.header("content-type"), Some("application/vnd.ll.mesh"));
    assert!(r.body.starts_with(b"\xef\xbb\xbf<?xml"));
    let r = req(srv.addr, "GET", &format!("/assets/{id}"), &[], b"");
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert_eq!(r.body, asset_xml(&id, 49, "", b"mesh bytes"));
}

fn second_store_does_not_overwrite_and_update_is_refused(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let id = uuid_n(2);
    post(srv.addr, &asset_xml(&id, 7, "", b"first"));
    let r = post(srv.addr, &asset_xml(&id, 7, "", b"second"));
    assert_eq!((r.status, r.body), (200, string_reply(&id)));
    let r = req(
        srv.addr,
        "POST",
        &format!("/assets/{id}"),
        &[],
        &asset_xml(&id, 7, "", b"third"),
    );
    assert!(r.body.ends_with(b"<boolean>false</boolean>"));
    let r = req(srv.addr, "GET", &format!("/assets/{id}/data"), &[], b"");
    assert_eq!(r.body, b"first");
}

fn status_codes(b: &Backend) {
    let srv = TestServer::start_on(b, |c| c.max_body = 4096);
    let a = srv.addr;
    let missing = uuid_n(404);
    for p in [
        format!("/assets/{missing}"),
        format!("/assets/{missing}/data"),
        format!("/assets/{missing}/metadata"),
    ] {
        let r = req(a, "GET", &p, &[], b"");
        assert_eq!((r.status, r.body.len()), (404, 0), "{p}");
        assert_eq!(r.header("connection"), Some("close"));
    }
    assert_eq!(req(a, "GET", "/assets/not-a-uuid", &[], b"").status, 404);
    assert_eq!(
        req(a, "GET", &format!("/assets/{missing}/bogus"), &[], b"").status,
        400
    );
    assert_eq!(
        req(a, "GET", &format!("/assets/{missing}/data/x"), &[], b"").status,
        400
    );
    assert_eq!(req(a, "GET", "/elsewhere", &[], b"").status, 404);
    assert_eq!(post(a, b"<AssetBase><Data>").status, 400);
    assert_eq!(post(a, b"<AssetBase><Data>!!notbase64</Data><ID>d00dfeed-0000-4000-8000-000000000001</ID></AssetBase>").status, 400);
    assert_eq!(post(a, b"<AssetBase><ID>nope</ID></AssetBase>").status, 400);
    assert_eq!(
        post(
            a,
            b"<Other><ID>d00dfeed-0000-4000-8000-000000000001</ID></Other>"
        )
        .status,
        400
    );
    assert_eq!(
        post(
            a,
            b"<AssetBase><ID>d00dfeed-0000-4000-8000-000000000001</ID><Type>999</Type></AssetBase>"
        )
        .status,
        400
    );
    assert_eq!(req(a, "DELETE", "/assets/not-a-uuid", &[], b"").status, 400);
    assert_eq!(
        req(a, "PUT", &format!("/assets/{missing}"), &[], b"x").status,
        405
    );
    assert_eq!(req(a, "GET", "/get_assets_exist", &[], b"").status, 405);
    assert_eq!(
        req(a, "DELETE", &format!("/assets/{missing}/data"), &[], b"").status,
        405
    );
    // Oversized by Content-Length: refused before the body is read.
    let big = asset_xml(&uuid_n(3), 0, "", &[7u8; 8192]);
    assert_eq!(post(a, &big).status, 413);
    // Oversized chunked body.
    let mut c = Client::connect(a);
    c.send_raw(b"POST /assets HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = format!("{:x}\r\n{}\r\n", 3000, "a".repeat(3000));
    c.send_raw(chunk.as_bytes());
    c.send_raw(chunk.as_bytes());
    assert_eq!(c.read_response().unwrap().status, 413);
    // Oversized head.
    let r = req(
        a,
        "GET",
        "/assets/x",
        &[("X-Pad", &"p".repeat(20_000))],
        b"",
    );
    assert_eq!(r.status, 431);
    // Garbage request line.
    let mut c = Client::connect(a);
    c.send_raw(b"HELLO\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 400);
}

fn chunked_body_and_expect_continue_and_keep_alive(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let id = uuid_n(5);
    let body = asset_xml(&id, 7, "", b"chunked!");
    let (x, y) = body.split_at(100);
    let mut c = Client::connect(srv.addr);
    c.send_raw(
        b"POST /assets/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    );
    c.send_raw(format!("{:x};ext=1\r\n", x.len()).as_bytes());
    c.send_raw(x);
    c.send_raw(format!("\r\n{:X}\r\n", y.len()).as_bytes());
    c.send_raw(y);
    c.send_raw(b"\r\n0\r\nTrailer: t\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, &r.body), (200, &string_reply(&id)));
    assert_eq!(r.header("connection"), Some("Keep-Alive"));
    // Same connection, OpenSim's limit of 20 requests: the 20th answer says close.
    for i in 2..=20 {
        let r = c
            .request("GET", &format!("/assets/{id}/data"), &[], b"")
            .unwrap();
        assert_eq!(r.body, b"chunked!");
        let want = if i == 20 { "close" } else { "Keep-Alive" };
        assert_eq!(r.header("connection"), Some(want), "request {i}");
    }
    assert!(
        c.request("GET", &format!("/assets/{id}/data"), &[], b"")
            .is_err()
    );
}

fn pipelined_requests(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let id = uuid_n(6);
    post(srv.addr, &asset_xml(&id, 7, "", b"pipe"));
    let mut c = Client::connect(srv.addr);
    let one = format!("GET /assets/{id}/data HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send_raw(one.repeat(3).as_bytes());
    for _ in 0..3 {
        assert_eq!(c.read_response().unwrap().body, b"pipe");
    }
}

fn exists_batch(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    post(srv.addr, &asset_xml(&uuid_n(1), 0, "", b"a"));
    let ids = vec![uuid_n(1), uuid_n(2), uuid_n(1)];
    let mut body = Vec::new();
    opensim_assets::xml::write_string_array(&mut body, &ids);
    let r = req(srv.addr, "POST", "/get_assets_exist", &[], &body);
    let mut want = Vec::new();
    opensim_assets::xml::write_bool_array(&mut want, &[true, false, true]);
    assert_eq!(r.body, want);
    // One unparsable id: OpenSim answers all false.
    let mut body = Vec::new();
    opensim_assets::xml::write_string_array(&mut body, &[uuid_n(1), "junk".into()]);
    let r = req(srv.addr, "POST", "/get_assets_exist", &[], &body);
    let mut want = Vec::new();
    opensim_assets::xml::write_bool_array(&mut want, &[false, false]);
    assert_eq!(r.body, want);
    assert_eq!(
        req(
            srv.addr,
            "POST",
            "/get_assets_exist",
            &[],
            b"<ArrayOfString>"
        )
        .status,
        400
    );
}

fn delete(addr: std::net::SocketAddr, id: &str) -> bool {
    let r = req(addr, "DELETE", &format!("/assets/{id}"), &[], b"");
    assert_eq!(r.status, 200);
    r.body.ends_with(b"<boolean>true</boolean>")
}

fn delete_policies(b: &Backend) {
    let (plain, tile) = (uuid_n(1), uuid_n(2));
    for (policy, plain_ok, tile_ok) in [
        (DeletePolicy::Deny, false, false),
        (DeletePolicy::MaptileOnly, false, true),
        (DeletePolicy::All, true, true),
    ] {
        let srv = TestServer::start_on(b, |c| c.delete_policy = policy);
        post(srv.addr, &asset_xml(&plain, 0, "", b"p"));
        post(srv.addr, &asset_xml(&tile, 0, "Maptile", b"t"));
        assert_eq!(delete(srv.addr, &plain), plain_ok, "{policy:?}");
        assert_eq!(delete(srv.addr, &tile), tile_ok, "{policy:?}");
        assert!(!delete(srv.addr, &uuid_n(99)));
        let gone = req(srv.addr, "GET", &format!("/assets/{tile}"), &[], b"").status == 404;
        assert_eq!(gone, tile_ok);
    }
}

fn write_auth_and_read_only(b: &Backend) {
    let srv = TestServer::start_on(b, |c| {
        c.write_auth = Some(Credentials {
            user: "grid".into(),
            password: "s3cret".into(),
        });
        c.delete_policy = DeletePolicy::All;
    });
    let body = asset_xml(&uuid_n(1), 0, "", b"a");
    let r = post(srv.addr, &body);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    // base64("grid:wrong") and base64("grid:s3cret")
    assert_eq!(
        req(
            srv.addr,
            "POST",
            "/assets",
            &[("Authorization", "Basic Z3JpZDp3cm9uZw==")],
            &body
        )
        .status,
        403
    );
    assert_eq!(
        req(
            srv.addr,
            "DELETE",
            &format!("/assets/{}", uuid_n(1)),
            &[],
            b""
        )
        .status,
        401
    );
    let r = req(
        srv.addr,
        "POST",
        "/assets",
        &[("Authorization", "Basic Z3JpZDpzM2NyZXQ=")],
        &body,
    );
    assert_eq!(r.status, 200);
    // Reads stay open.
    assert_eq!(
        req(
            srv.addr,
            "GET",
            &format!("/assets/{}/data", uuid_n(1)),
            &[],
            b""
        )
        .status,
        200
    );

    let ro = TestServer::start_on(b, |c| c.read_only = true);
    assert_eq!(post(ro.addr, &body).status, 403);
    assert_eq!(
        req(
            ro.addr,
            "DELETE",
            &format!("/assets/{}", uuid_n(1)),
            &[],
            b""
        )
        .status,
        403
    );
    assert_eq!(
        req(ro.addr, "GET", &format!("/assets/{}", uuid_n(1)), &[], b"").status,
        404
    );
}

fn identical_content_shares_one_blob(b: &Backend) {
    let srv = TestServer::start_on(b, |c| c.delete_policy = DeletePolicy::All);
    let data = vec![42u8; 10_000];
    post(srv.addr, &asset_xml(&uuid_n(1), 0, "", &data));
    post(srv.addr, &asset_xml(&uuid_n(2), 0, "", &data));
    post(srv.addr, &asset_xml(&uuid_n(3), 0, "", b"other"));
    // PostgreSQL keeps OpenSimulator's one-row-per-asset table: no sharing there.
    let blobs = |shared: u64, plain: u64| if b.dedups() { shared } else { plain };
    assert_eq!(srv.store.counts().unwrap(), (3, blobs(2, 3)));
    assert!(delete(srv.addr, &uuid_n(1)));
    assert_eq!(srv.store.counts().unwrap(), (2, 2));
    assert_eq!(
        req(
            srv.addr,
            "GET",
            &format!("/assets/{}/data", uuid_n(2)),
            &[],
            b""
        )
        .body,
        data
    );
    assert!(delete(srv.addr, &uuid_n(2)));
    assert_eq!(srv.store.counts().unwrap(), (1, 1));
}

fn long_names_are_truncated_to_64_chars(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let id = uuid_n(1);
    let name = "é".repeat(100);
    let xml = format!(
        "<AssetBase><Data>aGk=</Data><ID>{id}</ID><Name>{name}</Name><Description>a&amp;b&lt;c</Description><Type>7</Type></AssetBase>"
    );
    assert_eq!(post(srv.addr, xml.as_bytes()).status, 200);
    let a = srv
        .store
        .get(uuid::Uuid::parse_str(&id).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(a.name, "é".repeat(64));
    assert_eq!(a.description, "a&b<c");
    // Creator ids: up to 128 characters (OpenSim's column), longer is a client error.
    let ok = format!("{};http://grid.example:8002/;", "c".repeat(100));
    let ok = format!("{ok}{}", "n".repeat(128 - ok.chars().count()));
    let long = format!("{ok}x");
    for (n, creator, status) in [(2, &ok, 200), (3, &long, 400)] {
        let xml = format!(
            "<AssetBase><Data>aGk=</Data><ID>{}</ID><Type>7</Type><CreatorID>{creator}</CreatorID></AssetBase>",
            uuid_n(n)
        );
        assert_eq!(post(srv.addr, xml.as_bytes()).status, status, "{n}");
    }
    assert_eq!(
        req(srv.addr, "GET", &format!("/assets/{}", uuid_n(3)), &[], b"").status,
        404
    );
}

fn concurrent_clients(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let addr = srv.addr;
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..40u64 {
                    let id = uuid_n(t * 1000 + i);
                    let data = format!("asset {t} {i}").repeat((i as usize % 7) + 1);
                    let r = match c.request(
                        "POST",
                        "/assets/",
                        &[],
                        &asset_xml(&id, 7, "", data.as_bytes()),
                    ) {
                        Ok(r) => r,
                        Err(_) => {
                            c = Client::connect(addr);
                            c.request(
                                "POST",
                                "/assets/",
                                &[],
                                &asset_xml(&id, 7, "", data.as_bytes()),
                            )
                            .unwrap()
                        }
                    };
                    assert_eq!(r.status, 200);
                    let r = match c.request("GET", &format!("/assets/{id}/data"), &[], b"") {
                        Ok(r) => r,
                        Err(_) => {
                            c = Client::connect(addr);
                            c.request("GET", &format!("/assets/{id}/data"), &[], b"")
                                .unwrap()
                        }
                    };
                    assert_eq!(r.body, data.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(srv.store.counts().unwrap().0, 16 * 40);
}

fn import_and_export_folders(b: &Backend) {
    let srv = TestServer::start_on(b, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let t = uuid_n(1);
    std::fs::write(
        dir.path().join(format!("{t}_texture.jp2")),
        b"\xff\x4f\xff\x51",
    )
    .unwrap();
    std::fs::write(dir.path().join(format!("{}.j2c", uuid_n(2))), b"j2c").unwrap();
    std::fs::write(
        dir.path().join(format!("{}.xml", uuid_n(3))),
        asset_xml(&uuid_n(3), 7, "Maptile", b"nc"),
    )
    .unwrap();
    std::fs::write(dir.path().join("readme.txt"), b"not an asset").unwrap();
    let rep = opensim_assets::import_dir(&*srv.store, dir.path(), 1 << 20).unwrap();
    assert_eq!(
        (rep.stored, rep.existing, rep.skipped),
        (3, 0, vec!["readme.txt".to_owned()])
    );
    let r = req(srv.addr, "GET", &format!("/assets/{t}/metadata"), &[], b"");
    assert_eq!(r.header("content-type"), Some("image/x-j2c"));
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        opensim_assets::export_dir(&*srv.store, out.path()).unwrap(),
        3
    );
    let exported = std::fs::read(out.path().join(format!("{}.xml", uuid_n(3)))).unwrap();
    assert_eq!(exported, asset_xml(&uuid_n(3), 7, "Maptile", b"nc"));
    // Re-importing the export into a fresh store reproduces every asset.
    let other = TestServer::start_on(b, |_| {});
    let rep = opensim_assets::import_dir(&*other.store, out.path(), 1 << 20).unwrap();
    assert_eq!(rep.stored, 3);
    for n in 1..=3 {
        let id = uuid::Uuid::parse_str(&uuid_n(n)).unwrap();
        assert_eq!(other.store.get(id).unwrap(), srv.store.get(id).unwrap());
    }
}

fn stalled_clients_are_timed_out(b: &Backend) {
    let srv = TestServer::start_on(b, |c| {
        c.idle_timeout = std::time::Duration::from_millis(200);
        c.io_timeout = std::time::Duration::from_millis(200);
    });
    // Idle keep-alive connection: closed without a response.
    let mut c = Client::connect(srv.addr);
    assert!(c.read_response().is_err());
    // Head started but never finished: 408.
    let mut c = Client::connect(srv.addr);
    c.send_raw(b"GET /assets/x HTTP/1.1\r\nHost:");
    assert_eq!(c.read_response().unwrap().status, 408);
    // Body shorter than its Content-Length: 408, not a hang.
    let mut c = Client::connect(srv.addr);
    c.send_raw(b"POST /assets HTTP/1.1\r\nContent-Length: 100\r\n\r\n<AssetBase>");
    assert_eq!(c.read_response().unwrap().status, 408);
}

on_both_backends!(
    store_get_data_metadata,
    second_store_does_not_overwrite_and_update_is_refused,
    status_codes,
    chunked_body_and_expect_continue_and_keep_alive,
    pipelined_requests,
    exists_batch,
    delete_policies,
    write_auth_and_read_only,
    identical_content_shares_one_blob,
    long_names_are_truncated_to_64_chars,
    concurrent_clients,
    import_and_export_folders,
    stalled_clients_are_timed_out,
);
