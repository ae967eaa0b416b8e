//! HTTP fetching and the progressive pipeline against a texture server started by each test
//! on 127.0.0.1 port 0, which answers like OpenSimulator 0.9.2.2 (the `texture-http`
//! capture): 206 with Content-Range, 200 with the whole file for a range starting past the
//! end, 404 with `Connection: close`, reason phrases without spaces.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_lock::Semaphore;
use opensim_textures::progressive::ProgressEvent;
use opensim_textures::{
    ByteRange, Codestream, HttpConfig, HttpFetchError, Limits, ProgressiveConfig, ProgressiveError,
    ProgressiveFetcher, RetryPolicy, TextureCache, TextureDownload, TextureHttp, decode_rgba8,
};
use uuid::Uuid;

const PLYWOOD: &str = "89556747-24cb-43ed-920b-47caed15465f";
const MISSING: &str = "deadbeef-0000-4000-8000-00000000feed";
const CAP_PATH: &str = "/3d260fee-ef65-46fb-8311-cd4d6a346ebe";

/// One request as the server saw and answered it.
#[derive(Debug, Clone)]
struct Served {
    range: Option<String>,
    status: u16,
    body: usize,
}

#[derive(Default)]
struct State {
    textures: HashMap<Uuid, Arc<Vec<u8>>>,
    log: Mutex<Vec<Served>>,
    bytes: AtomicU64,
    fail_next: AtomicU32,
    in_flight: Mutex<usize>,
    changed: Condvar,
    max_in_flight: AtomicUsize,
    /// Hold each answer until this many requests are in flight, or for 300 ms, so that
    /// requests a client sends together are seen together.
    hold_until: AtomicUsize,
}

struct Server {
    port: u16,
    state: Arc<State>,
}

impl Server {
    fn start(textures: HashMap<Uuid, Arc<Vec<u8>>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            textures,
            ..State::default()
        });
        let s = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        Server { port, state }
    }

    fn cap(&self) -> String {
        format!("http://127.0.0.1:{}{CAP_PATH}", self.port)
    }

    fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<Served> {
        self.state.log.lock().unwrap().clone()
    }
}

/// OpenSim's `Util.TryParseHttpRange`: a single `bytes=a-b` or `bytes=a-`; `bytes=0-0`,
/// suffix and multiple ranges count as no range.
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => None,
        b => Some(b.parse::<u64>().ok()?),
    };
    if end == Some(0) || end.is_some_and(|e| e < start) {
        return None;
    }
    Some((start, end))
}

fn serve(stream: TcpStream, s: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut max_left = 20u32;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut skip = vec![0; len.min(1 << 16)];
        reader.read_exact(&mut skip)?;

        {
            let mut n = s.in_flight.lock().unwrap();
            *n += 1;
            s.max_in_flight.fetch_max(*n, Ordering::SeqCst);
            s.changed.notify_all();
            let want = s.hold_until.load(Ordering::SeqCst);
            if want > 0 {
                let _ = s
                    .changed
                    .wait_timeout_while(n, Duration::from_millis(300), |n| *n < want)
                    .unwrap();
            }
        }
        let answer = answer(&target, headers.get("range").map(String::as_str), s);
        {
            let mut n = s.in_flight.lock().unwrap();
            *n -= 1;
        }
        let (status, body, extra, close) = answer;
        let phrase = match status {
            200 => "OK",
            206 => "PartialContent",
            404 => "NotFound",
            503 => "ServiceUnavailable",
            _ => "BadRequest",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {phrase}\r\nContent-Length: {}\r\n",
            body.len()
        );
        head.push_str(if status == 404 || status == 503 {
            "Content-Type: text/plain\r\n"
        } else {
            "Content-Type: image/x-j2c\r\n"
        });
        if close {
            head.push_str("Connection: close\r\n");
        } else {
            max_left = max_left.saturating_sub(1);
            head.push_str(&format!(
                "Keep-Alive:timeout=60, max={max_left}\r\nConnection: Keep-Alive\r\n"
            ));
        }
        head.push_str(&extra);
        head.push_str("Server: OSWebServer\r\n\r\n");
        // Recorded before the answer leaves: a client that has its answer finds it logged.
        s.bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
        s.log.lock().unwrap().push(Served {
            range: headers.get("range").cloned(),
            status,
            body: body.len(),
        });
        out.write_all(head.as_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// `(status, body, extra headers, close)`.
fn answer(target: &str, range: Option<&str>, s: &State) -> (u16, Vec<u8>, String, bool) {
    if s.fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (503, Vec::new(), String::new(), true);
    }
    let id = target
        .split_once("?texture_id=")
        .and_then(|(path, id)| (path == CAP_PATH).then_some(id))
        .and_then(|id| Uuid::parse_str(id).ok());
    let Some(data) = id.and_then(|id| s.textures.get(&id)) else {
        return (404, Vec::new(), String::new(), true);
    };
    let total = data.len() as u64;
    match range.and_then(parse_range) {
        Some((start, end)) if start < total => {
            let last = end.map_or(total - 1, |e| e.min(total - 1));
            let body = data[start as usize..=last as usize].to_vec();
            let cr = format!("Content-Range: bytes {start}-{last}/{total}\r\n");
            (206, body, cr, false)
        }
        // No range, one OpenSim does not understand, or one starting past the end.
        _ => (200, data.to_vec(), String::new(), false),
    }
}

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The testdata textures keyed by id; `None` when the shared data is absent.
fn textures() -> Option<HashMap<Uuid, Arc<Vec<u8>>>> {
    let files = common::testdata();
    if files.is_empty() {
        return None;
    }
    Some(
        files
            .into_iter()
            .map(|(name, data)| (id(&name[..36]), Arc::new(data)))
            .collect(),
    )
}

fn fast_retry() -> HttpConfig {
    HttpConfig {
        retry: RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        },
        ..HttpConfig::default()
    }
}

fn http() -> TextureHttp {
    TextureHttp::new(fast_retry()).unwrap()
}

fn budget_bytes(data: &[u8], discard: u8) -> u64 {
    Codestream::parse(data, &Limits::default())
        .unwrap()
        .budget()
        .bytes_for_discard(discard)
        .unwrap()
}

/// Checks that the ranges asked for were contiguous and never overlapped.
fn assert_no_refetch(log: &[Served]) {
    let mut next = 0u64;
    for s in log {
        assert_eq!(s.status, 206, "{s:?}");
        let (start, _) = parse_range(s.range.as_deref().unwrap()).unwrap();
        assert_eq!(
            start, next,
            "range {s:?} does not start where the last ended"
        );
        next = start + s.body as u64;
    }
}

#[test]
fn progressive_fetches_only_the_budget_then_only_the_rest() {
    let Some(textures) = textures() else { return };
    let plywood = Arc::clone(&textures[&id(PLYWOOD)]);
    let server = Server::start(textures);
    let config = ProgressiveConfig::tight();
    let fetcher = ProgressiveFetcher::new(http(), &server.cap()).with_config(config);
    let mut events = Vec::new();
    let mut dl =
        smol::block_on(fetcher.fetch(id(PLYWOOD), 2, &mut |e| events.push(e.clone()))).unwrap();

    let need = budget_bytes(&plywood, 2);
    let held = dl.data().len() as u64;
    assert_eq!(server.bytes(), dl.bytes_fetched());
    assert_eq!(server.bytes(), held, "every byte served is held, once");
    assert!(held >= need, "{held} < budget {need}");
    assert!(
        held <= need + config.probe_bytes,
        "{held} bytes for a budget of {need}: more than one probe's worth over"
    );
    assert_eq!(dl.total(), Some(plywood.len() as u64));
    assert_eq!(dl.reached(), Some(2));
    assert_eq!(
        decode_rgba8(dl.data(), 2).unwrap(),
        decode_rgba8(&plywood, 2).unwrap()
    );
    let first_requests = dl.requests();
    let report = dl.reports()[0];
    assert_eq!((report.discard, report.needed), (2, need));
    assert_eq!(report.fetched, held);

    // Progress events: bytes go up, the expected figure never lies below what is held, and
    // level 2 was announced.
    let mut last = 0;
    for e in &events {
        if let ProgressEvent::Received { have, expected, .. } = e {
            assert!(*have >= last && *have <= *expected, "{e:?}");
            last = *have;
        }
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProgressEvent::LevelReached { discard: 2, .. }))
    );

    // The sharper level fetches the remainder only.
    let mut events = Vec::new();
    let report =
        smol::block_on(fetcher.fetch_level(&mut dl, 0, &mut |e| events.push(e.clone()))).unwrap();
    assert_eq!(dl.data(), &plywood[..]);
    assert_eq!(server.bytes(), plywood.len() as u64, "no byte served twice");
    assert_eq!(report.fetched, plywood.len() as u64 - held);
    assert_eq!(report.requests, dl.requests() - first_requests);
    assert_no_refetch(&server.log());
    assert_eq!(
        decode_rgba8(dl.data(), 0).unwrap(),
        decode_rgba8(&plywood, 0).unwrap()
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ProgressEvent::Complete { total, .. } if *total == plywood.len() as u64
    )));
    eprintln!(
        "plywood: discard 2 in {held} bytes / {first_requests} requests (budget {need}); \
         discard 0: {} more bytes in {} requests",
        report.fetched, report.requests
    );
}

#[test]
fn default_lookahead_stays_within_its_bound() {
    let Some(textures) = textures() else { return };
    let files: Vec<(Uuid, Arc<Vec<u8>>)> =
        textures.iter().map(|(k, v)| (*k, Arc::clone(v))).collect();
    let server = Server::start(textures);
    let config = ProgressiveConfig::default();
    let fetcher = ProgressiveFetcher::new(http(), &server.cap());
    eprintln!("texture: size, first usable image (largest discard, exact): bytes / requests");
    for (tid, data) in files {
        let before = server.bytes();
        let max = Codestream::parse(&data, &Limits::default())
            .unwrap()
            .budget()
            .max_discard();
        let dl = smol::block_on(fetcher.fetch(tid, max, &mut |_| {})).unwrap();
        let need = budget_bytes(&data, max);
        let got = server.bytes() - before;
        assert_eq!(got, dl.data().len() as u64);
        assert!(got >= need && got <= (need + config.lookahead_max).max(config.probe_bytes));
        assert_eq!(
            decode_rgba8(dl.data(), max).unwrap(),
            decode_rgba8(&data, max).unwrap()
        );
        eprintln!(
            "{tid}: {} bytes, discard {max}: {got} bytes ({:.1} %) / {} requests, budget {need}",
            data.len(),
            100.0 * got as f64 / data.len() as f64,
            dl.requests()
        );
    }
}

#[test]
fn missing_texture_is_not_found() {
    let Some(textures) = textures() else { return };
    let server = Server::start(textures);
    let http = http();
    let err = smol::block_on(http.fetch(&server.cap(), id(MISSING), ByteRange::Whole)).unwrap_err();
    assert!(
        matches!(err, HttpFetchError::NotFound { id: i } if i == id(MISSING)),
        "{err}"
    );
    let fetcher = ProgressiveFetcher::new(http.clone(), &server.cap());
    let err = smol::block_on(fetcher.fetch(id(MISSING), 0, &mut |_| {})).unwrap_err();
    assert!(matches!(err, ProgressiveError::NotFound { .. }), "{err}");
    // The 404 closed its connection; the next request must still work.
    let body = smol::block_on(http.fetch(
        &server.cap(),
        id(PLYWOOD),
        ByteRange::Span {
            first: 0,
            last: 599,
        },
    ))
    .unwrap();
    assert_eq!((body.offset, body.data.len(), body.partial), (0, 600, true));
    // No retry for a 404.
    assert_eq!(server.log().iter().filter(|s| s.status == 404).count(), 2);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let Some(textures) = textures() else { return };
    let plywood = Arc::clone(&textures[&id(PLYWOOD)]);
    let server = Server::start(textures);
    server.state.fail_next.store(2, Ordering::SeqCst);
    let body = smol::block_on(http().fetch(&server.cap(), id(PLYWOOD), ByteRange::Whole)).unwrap();
    assert_eq!(body.data, *plywood);
    let statuses: Vec<u16> = server.log().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [503, 503, 200]);

    server.state.fail_next.store(10, Ordering::SeqCst);
    let err =
        smol::block_on(http().fetch(&server.cap(), id(PLYWOOD), ByteRange::Whole)).unwrap_err();
    assert!(
        matches!(
            err,
            HttpFetchError::Status {
                status: 503,
                attempts: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.state.fail_next.load(Ordering::SeqCst), 6);

    let none = TextureHttp::new(HttpConfig {
        retry: RetryPolicy::none(),
        ..HttpConfig::default()
    })
    .unwrap();
    let err = smol::block_on(none.fetch(&server.cap(), id(PLYWOOD), ByteRange::Whole)).unwrap_err();
    assert!(matches!(
        err,
        HttpFetchError::Status {
            status: 503,
            attempts: 1
        }
    ));
}

#[test]
fn ranges_behave_like_the_capture() {
    let Some(textures) = textures() else { return };
    let plywood = Arc::clone(&textures[&id(PLYWOOD)]);
    let server = Server::start(textures);
    let http = http();
    let get = |r| smol::block_on(http.fetch(&server.cap(), id(PLYWOOD), r)).unwrap();
    let total = Some(plywood.len() as u64);

    // The five requests of the capture, with the bodies OpenSim sent when present.
    let captured = opensim_testkit::fixture_subdir("opensim-0.9.2.2-http/texture-http");
    let cap_body = |n: &str| {
        captured
            .as_ref()
            .map(|d| std::fs::read(d.join(format!("{n}_c2s_http_resp_body.bin"))).unwrap())
    };

    let whole = get(ByteRange::Whole);
    assert_eq!((whole.partial, whole.total), (false, total));
    assert_eq!(whole.data, *plywood);
    if let Some(b) = cap_body("0103") {
        assert_eq!(whole.data, b);
    }
    let head = get(ByteRange::Span {
        first: 0,
        last: 599,
    });
    assert_eq!((head.offset, head.partial, head.total), (0, true, total));
    if let Some(b) = cap_body("0105") {
        assert_eq!(head.data, b);
    }
    // Past the end: 200 and the whole file, not 416.
    let past = get(ByteRange::Span {
        first: 80234,
        last: 80833,
    });
    assert!(!past.partial && past.is_whole());
    assert_eq!(past.data, *plywood);
    if let Some(b) = cap_body("0107") {
        assert_eq!(past.data, b);
    }
    // Over the end: clipped.
    let over = get(ByteRange::Span {
        first: 79000,
        last: 79999,
    });
    assert_eq!(
        (over.offset, over.data.len(), over.total),
        (79000, 234, total)
    );
    if let Some(b) = cap_body("0109") {
        assert_eq!(over.data, b);
    }
    let open = get(ByteRange::From(600));
    assert_eq!((open.offset, open.data.len()), (600, 78634));
    if let Some(b) = cap_body("0111") {
        assert_eq!(open.data, b);
    }

    // The pipeline holding the whole file without knowing it asks from the end, gets the
    // whole file again (200) and recognises it.
    let fetcher = ProgressiveFetcher::new(http.clone(), &server.cap());
    let mut dl = TextureDownload::with_prefix(id(PLYWOOD), plywood.to_vec(), None);
    let before = server.bytes();
    let report = smol::block_on(fetcher.fetch_complete(&mut dl, &mut |_| {})).unwrap();
    assert!(dl.is_complete());
    assert_eq!(dl.data(), &plywood[..]);
    assert_eq!(report.requests, 1);
    assert_eq!(server.bytes() - before, plywood.len() as u64);
    assert_eq!(server.log().last().unwrap().status, 200);
}

#[test]
fn concurrency_limit_is_shared_and_respected() {
    let Some(textures) = textures() else { return };
    let server = Server::start(textures);
    // One more than the limit: a client that broke the limit would be caught in the act.
    server.state.hold_until.store(3, Ordering::SeqCst);
    let limit = Arc::new(Semaphore::new(2));
    let a = http().with_limit(Arc::clone(&limit));
    let b = http().with_limit(Arc::clone(&limit));
    let cap = server.cap();
    smol::block_on(async {
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let client = if i % 2 == 0 { a.clone() } else { b.clone() };
                let cap = cap.clone();
                smol::spawn(async move {
                    client
                        .fetch(
                            &cap,
                            id(PLYWOOD),
                            ByteRange::Span {
                                first: 0,
                                last: 999,
                            },
                        )
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().data.len(), 1000);
        }
    });
    assert_eq!(server.log().len(), 6);
    // Every answer was held long enough for the permitted requests to meet: exactly two ran
    // at once, never three.
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 2);
}

#[test]
fn cache_is_extended_and_reused() {
    let Some(textures) = textures() else { return };
    let plywood = Arc::clone(&textures[&id(PLYWOOD)]);
    let server = Server::start(textures);
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(TextureCache::open(dir.path(), 10 << 20).unwrap());
    let fetcher = ProgressiveFetcher::new(http(), &server.cap()).with_cache(Arc::clone(&cache));

    let dl = smol::block_on(fetcher.fetch(id(PLYWOOD), 3, &mut |_| {})).unwrap();
    let held = dl.data().len();
    let entry = cache.get(id(PLYWOOD)).unwrap().unwrap();
    assert_eq!(entry.data, dl.data());
    assert_eq!(entry.total_size, Some(plywood.len() as u64));

    // A new download starts from the cached prefix and fetches the rest only.
    let mut dl = TextureDownload::new(id(PLYWOOD));
    let before = server.bytes();
    let report = smol::block_on(fetcher.fetch_level(&mut dl, 0, &mut |_| {})).unwrap();
    assert_eq!(report.from_cache, held as u64);
    assert_eq!(server.bytes() - before, (plywood.len() - held) as u64);
    assert_eq!(dl.data(), &plywood[..]);
    assert!(cache.get(id(PLYWOOD)).unwrap().unwrap().is_complete());

    // Everything is cached now: no request at all.
    let requests = server.log().len();
    let dl = smol::block_on(fetcher.fetch(id(PLYWOOD), 0, &mut |_| {})).unwrap();
    assert_eq!(dl.data(), &plywood[..]);
    assert_eq!((dl.requests(), server.log().len()), (0, requests));
}

/// Issue 8's figures for the plywood texture (79 234 bytes; LRCP, 5 layers, 3 components,
/// one tile-part, no PLT/PLM/TLM): the packet lengths are only in the packet headers, which
/// lie between the packet bodies, so the first level costs a walk of several round trips;
/// each sharper level after it costs one request here.
#[test]
fn plywood_round_trips_and_bytes_per_level() {
    let Some(textures) = textures() else { return };
    let plywood = Arc::clone(&textures[&id(PLYWOOD)]);
    let total = plywood.len() as u64;
    let server = Server::start(textures);
    let fetcher = ProgressiveFetcher::new(http(), &server.cap());
    assert_eq!(*fetcher.config(), ProgressiveConfig::default());
    let mut dl = TextureDownload::new(id(PLYWOOD));
    let first = smol::block_on(fetcher.fetch_level(&mut dl, 5, &mut |_| {})).unwrap();
    assert_eq!(first.needed, budget_bytes(&plywood, 5));
    assert_eq!(first.needed, 31_924);
    // The default planner's figures; a change of the lookahead rules shows up here.
    assert_eq!((first.requests, first.fetched), (10, 35_218), "{first:?}");
    let mut have = first.have;
    for d in (0..5u8).rev() {
        let served = server.log().len();
        let r = smol::block_on(fetcher.fetch_level(&mut dl, d, &mut |_| {})).unwrap();
        let need = budget_bytes(&plywood, d);
        assert_eq!(r.needed, need);
        if need <= have {
            assert_eq!((r.requests, r.fetched), (0, 0), "level {d}: {r:?}");
        } else {
            // One request; at most one lookahead past the exact need (full resolution takes
            // the rest of the file, the end-of-codestream marker too).
            assert_eq!(r.requests, 1, "level {d}: {r:?}");
            assert_eq!(server.log().len(), served + 1);
            assert!(r.have >= need, "level {d}: {r:?}");
            if d == 0 {
                assert_eq!(r.have, total);
            } else {
                let cfg = fetcher.config();
                assert!(r.have <= need + cfg.lookahead_max, "level {d}: {r:?}");
            }
            assert_eq!(r.fetched, r.have - have);
        }
        // The finest level held, which may be sharper than the one asked for.
        let best = Codestream::parse(&plywood, &Limits::default())
            .unwrap()
            .budget()
            .best_discard_within(r.have);
        assert_eq!(r.reached, best);
        assert!(r.reached.is_some_and(|x| x <= d), "level {d}: {r:?}");
        have = r.have;
        eprintln!(
            "plywood discard {d}: {} requests, {} bytes, {have} held",
            r.requests, r.fetched
        );
    }
    assert_eq!(dl.data(), &plywood[..]);
    assert_eq!(server.bytes(), total, "no byte served twice");
    assert_no_refetch(&server.log());
}
