//! The `EventQueueGet` long poll of one region: [`EventQueue`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use futures_lite::{Stream, future};
use opensim_llsd::{Map, Value};

use crate::client::{CapsClient, parse_llsd, status_error};
use crate::events::{Event, parse_event};
use crate::{CapsError, EventError};

/// Settings of an [`EventQueue`].
///
/// Fields are public; start from `EventQueueConfig::default()` and change what you need.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventQueueConfig {
    /// Time allowed for one poll (default 90 s). OpenSimulator holds an idle poll for 58 s,
    /// then answers 502; a poll that times out after at least half this time counts as an
    /// idle poll, an earlier timeout (a connect timeout) as an error.
    pub poll_timeout: Duration,
    /// The first wait after a failed poll (default 1 s); doubled at each further failure.
    pub backoff_initial: Duration,
    /// The longest wait between failed polls (default 30 s).
    pub backoff_max: Duration,
    /// After this many failed polls in a row the queue ends with [`EndReason::Failed`]
    /// (default `Some(10)`, as viewers do; `None` retries forever).
    pub max_consecutive_errors: Option<u32>,
    /// Time allowed for the final `done: true` request at shutdown (default 2 s: OpenSimulator
    /// ignores the body and would hold that request like any poll).
    pub done_timeout: Duration,
}

impl Default for EventQueueConfig {
    fn default() -> Self {
        Self {
            poll_timeout: Duration::from_secs(90),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_consecutive_errors: Some(10),
            done_timeout: Duration::from_secs(2),
        }
    }
}

impl EventQueueConfig {
    /// Sets [`poll_timeout`](Self::poll_timeout).
    #[must_use]
    pub fn with_poll_timeout(mut self, t: Duration) -> Self {
        self.poll_timeout = t;
        self
    }

    /// Sets [`backoff_initial`](Self::backoff_initial) and [`backoff_max`](Self::backoff_max).
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Sets [`max_consecutive_errors`](Self::max_consecutive_errors).
    #[must_use]
    pub fn with_max_consecutive_errors(mut self, n: Option<u32>) -> Self {
        self.max_consecutive_errors = n;
        self
    }

    /// Sets [`done_timeout`](Self::done_timeout).
    #[must_use]
    pub fn with_done_timeout(mut self, t: Duration) -> Self {
        self.done_timeout = t;
        self
    }

    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }
}

/// Why an [`EventQueue`] stopped.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndReason {
    /// The queue answered 404 (or 410): the agent left the region or the region closed it.
    #[error("the region dropped the agent's event queue (HTTP 404)")]
    RegionGone,
    /// [`ShutdownHandle::shutdown`] was called (and `done: true` was sent).
    #[error("the event queue was shut down")]
    Shutdown,
    /// Too many polls failed in a row.
    #[error("{failures} event-queue polls failed in a row; last: {error}")]
    Failed {
        /// How many polls failed in a row.
        failures: u32,
        /// The last failure.
        #[source]
        error: CapsError,
    },
}

/// Stops an [`EventQueue`] from another task; cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    tx: async_channel::Sender<()>,
}

impl ShutdownHandle {
    /// Asks the queue to stop: a poll in flight is abandoned, `done: true` is sent, and
    /// [`EventQueue::next`] returns [`EndReason::Shutdown`] once the events already received
    /// have been handed out.
    pub fn shutdown(&self) {
        self.tx.close();
    }

    /// Whether shutdown was asked for.
    pub fn is_shutdown(&self) -> bool {
        self.tx.is_closed()
    }
}

/// One answer of the event queue.
#[derive(Clone, Debug, PartialEq)]
pub struct PollReply {
    /// The answer's `id`, to echo as `ack` in the next poll.
    pub id: Option<i32>,
    /// Its events, in order (OpenSimulator's `FAKEEVENT` keep-alives are dropped).
    pub events: Vec<Event>,
}

/// The body of a poll: `{ack: <id or undef>, done: <bool>}` in LLSD XML.
pub fn poll_request_body(ack: Option<i32>, done: bool) -> Vec<u8> {
    let mut map = Map::with_capacity(2);
    map.push("ack", ack.map_or(Value::Undef, Value::Integer));
    map.push("done", done);
    opensim_llsd::to_xml(&Value::Map(map))
}

/// Reads a poll answer: `{events: [{message, body} ...], id}`.
///
/// # Errors
/// [`CapsError::UnexpectedReply`] when it is not such a map. A single event of the wrong
/// shape does not fail the answer: it becomes [`Event::Malformed`].
pub fn parse_poll_reply(value: Value) -> Result<PollReply, CapsError> {
    let Value::Map(map) = value else {
        return Err(CapsError::UnexpectedReply(format!(
            "event queue answered {}, not a map",
            value.type_name()
        )));
    };
    let mut id = None;
    let mut list = None;
    for (key, v) in map.into_entries() {
        match key.as_str() {
            "id" => id = Some(v),
            "events" => list = Some(v),
            _ => {}
        }
    }
    let id = match id {
        None | Some(Value::Undef) => None,
        Some(v) => Some(v.as_i32_lenient().ok_or_else(|| {
            CapsError::UnexpectedReply(format!("event queue id is {}", v.type_name()))
        })?),
    };
    let list = match list {
        Some(Value::Array(a)) => a,
        None | Some(Value::Undef) => Vec::new(),
        Some(other) => {
            return Err(CapsError::UnexpectedReply(format!(
                "event queue events is {}",
                other.type_name()
            )));
        }
    };
    let mut events = Vec::with_capacity(list.len());
    for entry in list {
        let Value::Map(m) = entry else {
            events.push(Event::Malformed {
                message: String::new(),
                body: entry,
                error: EventError::Missing("message"),
            });
            continue;
        };
        let mut message = None;
        let mut body = Value::Undef;
        let mut rest = Map::new();
        for (key, v) in m.into_entries() {
            match (key.as_str(), v) {
                ("message", Value::String(s)) => message = Some(s),
                ("body", b) => body = b,
                (_, v) => rest.push(key, v),
            }
        }
        match message {
            Some(m) if m == "FAKEEVENT" => {}
            Some(m) => events.push(parse_event(m, body)),
            None => {
                rest.push("body", body);
                events.push(Event::Malformed {
                    message: String::new(),
                    body: Value::Map(rest),
                    error: EventError::Missing("message"),
                });
            }
        }
    }
    Ok(PollReply { id, events })
}

/// What one poll came to.
enum Outcome {
    Events(PollReply),
    Idle,
    Gone,
    Failed(CapsError),
    Shutdown,
}

/// The event-queue poller of one region.
///
/// Call [`next`](Self::next) in a loop (or use [`into_stream`](Self::into_stream)); it polls
/// `EventQueueGet` as needed, with at most one poll in flight:
///
/// - each poll POSTs `{ack: <last id or undef>, done: false}`;
/// - an idle answer (502 after OpenSimulator's 58 s hold, 499, 504, or our own poll timeout)
///   is normal: the next poll goes out at once;
/// - 404 (or 410) ends the queue with [`EndReason::RegionGone`];
/// - other failures (statuses, transport errors, malformed answers) wait with exponential
///   back-off, bounded by [`EventQueueConfig::backoff_max`], and end the queue with
///   [`EndReason::Failed`] after [`EventQueueConfig::max_consecutive_errors`] in a row;
/// - [`ShutdownHandle::shutdown`] abandons the poll in flight, sends `done: true` and ends
///   with [`EndReason::Shutdown`].
///
/// OpenSimulator forgets the events of an answer once it is sent, whatever the `ack` says:
/// dropping a `next()` future while a poll is in flight may lose that poll's events.
pub struct EventQueue {
    client: CapsClient,
    url: String,
    cfg: EventQueueConfig,
    ack: Option<i32>,
    pending: VecDeque<Event>,
    failures: u32,
    stop_tx: async_channel::Sender<()>,
    stop_rx: async_channel::Receiver<()>,
    ended: Option<EndReason>,
}

impl fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is a secret of the agent's session.
        f.debug_struct("EventQueue")
            .field("ack", &self.ack)
            .field("pending", &self.pending.len())
            .field("failures", &self.failures)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl EventQueue {
    pub(crate) fn new(client: CapsClient, url: String, cfg: EventQueueConfig) -> Self {
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        Self {
            client,
            url,
            cfg,
            ack: None,
            pending: VecDeque::new(),
            failures: 0,
            stop_tx,
            stop_rx,
            ended: None,
        }
    }

    /// A handle that stops this queue from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.stop_tx.clone(),
        }
    }

    /// The `id` of the last answer received (what the next poll acknowledges).
    pub fn last_id(&self) -> Option<i32> {
        self.ack
    }

    /// Why the queue ended, once it has.
    pub fn end_reason(&self) -> Option<&EndReason> {
        self.ended.as_ref()
    }

    /// The settings in use.
    pub fn config(&self) -> &EventQueueConfig {
        &self.cfg
    }

    /// The next event, polling as needed; `Err` once the queue has ended (and again on every
    /// later call).
    ///
    /// # Errors
    /// The [`EndReason`].
    pub async fn next(&mut self) -> Result<Event, EndReason> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if let Some(end) = &self.ended {
                return Err(end.clone());
            }
            if self.stop_tx.is_closed() {
                self.send_done().await;
                self.ended = Some(EndReason::Shutdown);
                continue;
            }
            let outcome = future::or(self.poll_once(), async {
                // Nothing is ever sent: this wakes when the channel is closed.
                let _ = self.stop_rx.recv().await;
                Outcome::Shutdown
            })
            .await;
            match outcome {
                Outcome::Events(reply) => {
                    self.failures = 0;
                    if reply.id.is_some() {
                        self.ack = reply.id;
                    }
                    self.pending.extend(reply.events);
                }
                Outcome::Idle => self.failures = 0,
                Outcome::Gone => self.ended = Some(EndReason::RegionGone),
                Outcome::Shutdown => {}
                Outcome::Failed(error) => {
                    self.failures += 1;
                    if self
                        .cfg
                        .max_consecutive_errors
                        .is_some_and(|max| self.failures >= max)
                    {
                        tracing::warn!(failures = self.failures, %error, "event queue gave up");
                        self.ended = Some(EndReason::Failed {
                            failures: self.failures,
                            error,
                        });
                        continue;
                    }
                    let wait = self.cfg.backoff(self.failures);
                    tracing::debug!(failures = self.failures, ?wait, %error, "event queue poll failed");
                    future::or(
                        async {
                            async_io::Timer::after(wait).await;
                        },
                        async {
                            let _ = self.stop_rx.recv().await;
                        },
                    )
                    .await;
                }
            }
        }
    }

    /// The queue as a stream of events; the last item is the `Err` that ended it.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, EndReason>> + Send {
        futures_lite::stream::unfold(Some(self), |queue| async move {
            let mut queue = queue?;
            match queue.next().await {
                Ok(event) => Some((Ok(event), Some(queue))),
                Err(end) => Some((Err(end), None)),
            }
        })
    }

    /// Sends `done: true` (unless the queue already ended) and drops the queue: for a caller
    /// that is not polling at the moment.
    pub async fn close(mut self) {
        if self.ended.is_none() {
            self.send_done().await;
            self.ended = Some(EndReason::Shutdown);
        }
    }

    async fn poll_once(&self) -> Outcome {
        let body = poll_request_body(self.ack, false);
        let request = match self
            .client
            .llsd_post(&self.url, body, self.cfg.poll_timeout)
        {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e),
        };
        let started = Instant::now();
        let reply = match self.client.exchange(request).await {
            Ok(r) => r,
            // Our own timeout on a held poll is an idle poll; one long before it is a
            // connect timeout, i.e. a failure.
            Err(CapsError::Timeout) if started.elapsed() >= self.cfg.poll_timeout / 2 => {
                return Outcome::Idle;
            }
            Err(e) => return Outcome::Failed(e),
        };
        match reply.status {
            200..=299 if reply.body.iter().all(u8::is_ascii_whitespace) => Outcome::Idle,
            200..=299 => match parse_llsd(reply.content_type, reply.body).await {
                Ok(value) => match parse_poll_reply(value) {
                    Ok(r) => Outcome::Events(r),
                    Err(e) => Outcome::Failed(e),
                },
                Err(e) => Outcome::Failed(e),
            },
            404 | 410 => Outcome::Gone,
            499 | 502 | 504 => Outcome::Idle,
            status => Outcome::Failed(status_error(status, &reply.body)),
        }
    }

    async fn send_done(&self) {
        let body = poll_request_body(self.ack, true);
        if let Ok(request) = self
            .client
            .llsd_post(&self.url, body, self.cfg.done_timeout)
        {
            // The answer does not matter: we are leaving, and OpenSimulator ignores the body.
            let _ = self.client.exchange(request).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn poll_body_matches_the_viewer_form() {
        let first = opensim_llsd::from_xml(&poll_request_body(None, false)).unwrap();
        assert_eq!(first["ack"], Value::Undef);
        assert_eq!(first["done"], Value::Boolean(false));
        let later = opensim_llsd::from_xml(&poll_request_body(Some(18632324), true)).unwrap();
        assert_eq!(later["ack"], Value::Integer(18632324));
        assert_eq!(later["done"], Value::Boolean(true));
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let c = EventQueueConfig::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<u128> = (1..=7).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn poll_reply_shapes() {
        let v = opensim_llsd::from_xml(
            b"<llsd><map><key>events</key><array>\
              <map><key>message</key><string>FAKEEVENT</string><key>body</key><map/></map>\
              <map><key>message</key><string>Custom</string><key>body</key><integer>5</integer></map>\
              <map><key>body</key><map/></map>\
              <string>junk</string>\
              <map><key>message</key><string>TeleportFinish</string><key>body</key><map/></map>\
              </array><key>id</key><integer>7</integer></map></llsd>",
        )
        .unwrap();
        let r = parse_poll_reply(v).unwrap();
        assert_eq!(r.id, Some(7));
        assert_eq!(r.events.len(), 4);
        assert_eq!(
            r.events[0],
            Event::Other {
                message: "Custom".into(),
                body: Value::Integer(5)
            }
        );
        assert!(
            matches!(&r.events[1], Event::Malformed { message, error: EventError::Missing("message"), .. } if message.is_empty())
        );
        assert!(
            matches!(&r.events[2], Event::Malformed { body: Value::String(s), .. } if s == "junk")
        );
        assert!(matches!(
            &r.events[3],
            Event::Malformed { message, error: EventError::Missing("Info"), .. } if message == "TeleportFinish"
        ));

        for bad in [
            &b"<llsd><array/></llsd>"[..],
            b"<llsd><map><key>events</key><string>x</string></map></llsd>",
            b"<llsd><map><key>events</key><array/><key>id</key><string>x</string></map></llsd>",
        ] {
            let v = opensim_llsd::from_xml(bad).unwrap();
            assert!(matches!(
                parse_poll_reply(v),
                Err(CapsError::UnexpectedReply(_))
            ));
        }
    }
}
