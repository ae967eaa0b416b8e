//! Capability requests from a process that already holds over 1,024 open files, as a bot
//! swarm does. curl's select() fallback cannot wait on a socket numbered 1024 or above
//! (FD_SETSIZE); the workspace builds the bundled curl with poll() (see
//! `.cargo/config.toml`), and this test fails with "could not connect" when it does not.
//! Its own test binary, so the files it holds open disturb no other test.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{Reply, Server};
use opensim_caps::{CapsClient, Value};
use opensim_llsd::Map;

#[test]
fn requests_succeed_on_sockets_numbered_above_fd_setsize() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let wanted = 4096;
    if limit.maximum.is_some_and(|max| max < wanted) {
        eprintln!(
            "skipped: the open-files hard limit {:?} is below {wanted}",
            limit.maximum
        );
        return;
    }
    if limit.current.is_some_and(|cur| cur < wanted) {
        limit.current = Some(wanted);
        setrlimit(Resource::Nofile, limit).unwrap();
    }

    let server = Server::start(|_, _| {
        let caps: Map = [(
            "EventQueueGet".to_string(),
            Value::from("http://127.0.0.1:1/eq"),
        )]
        .into_iter()
        .collect();
        Reply::llsd(&Value::Map(caps))
    });
    let client = CapsClient::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // Fill the descriptor table past FD_SETSIZE so every socket curl opens from here on
    // (and the client's own, created lazily) is numbered above it.
    let mut held = Vec::new();
    loop {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_raw_fd();
        held.push(file);
        if fd >= 1100 {
            break;
        }
    }

    for round in 0..3 {
        let caps =
            smol::block_on(client.request_capabilities(&server.url("/seed"), &["EventQueueGet"]))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(caps.get("EventQueueGet"), Some("http://127.0.0.1:1/eq"));
    }
    assert_eq!(server.requests().len(), 3);
    drop(held);
}
