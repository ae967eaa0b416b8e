//! The async driver: one UDP socket and one task serving any number of circuits.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use bytes::{Bytes, BytesMut};
use event_listener::Event as Notify;
use futures_lite::{Stream, future};
use opensim_messages::{Message, MessageType, UseCircuitCode};

use crate::batch::{Batcher, Received};
use crate::circuit::{Circuit, Event, SendError, SendId, Stats};
use crate::config::{Config, Reliability};
use crate::impair::{Fate, Impairer, Impairment};
use crate::socks5;
use crate::tap::{Direction, Tap};
use crate::throttle::{Category, ThrottleRates};

/// Datagrams read per wake-up before timers and sends get a turn.
const RECV_BATCH: usize = 256;
/// Size of each chunk received datagrams are copied into.
const RX_CHUNK: usize = 64 * 1024;

/// Settings of an [`Endpoint`].
#[derive(Clone)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Settings of circuits opened with [`Endpoint::connect`].
    pub client: Config,
    /// `Some`: datagrams from unknown addresses open server circuits with these settings,
    /// handed out by [`Endpoint::accept`].
    pub server: Option<Config>,
    /// Open a server circuit for any datagram, not only for `UseCircuitCode` (as
    /// OpenSimulator requires).
    pub accept_any: bool,
    /// Most circuits at once; datagrams that would open more are dropped.
    pub max_circuits: usize,
    /// Accepted circuits waiting for [`Endpoint::accept`]; beyond it new ones are refused.
    pub accept_backlog: usize,
    /// Longest [`Endpoint::shutdown`] waits for circuits to drain.
    pub shutdown_timeout: Duration,
    /// Socket receive buffer to ask for (the OS may cap it); `None` keeps the default.
    /// Bursts of many circuits overflow a small one.
    pub recv_buffer: Option<usize>,
    /// Socket send buffer to ask for; `None` keeps the default.
    pub send_buffer: Option<usize>,
    /// Sees every datagram sent and received (see [`Tap`] for exactly when).
    pub tap: Option<Arc<dyn Tap>>,
    /// Loss, duplication and delay injected into outgoing datagrams (tests, simulators).
    /// [`Endpoint::bind`] refuses invalid probabilities.
    pub impairment: Option<Impairment>,
    /// Send everything through this SOCKS5 UDP relay
    /// ([`socks5::Association::relay_addr`]): outgoing datagrams get the RFC 1928 UDP header
    /// naming their real destination; incoming ones must come from the relay and are routed by
    /// the address in their header. Datagrams from elsewhere, fragments and malformed headers
    /// are dropped and counted in [`EndpointStats::socks5_dropped`].
    pub socks5_relay: Option<SocketAddr>,
    /// Linux: move the socket's descriptor to the lowest free number at or above this one
    /// (kept where it is when none is free). A process with many endpoints (a bot swarm) uses
    /// it to leave descriptors below 1024 to libraries that wait with `select()` and fail on
    /// a socket numbered 1024 or more (the curl that curl-sys bundles did, unless built with
    /// `-DHAVE_POLL` as this workspace does).
    pub fd_floor: Option<u32>,
    /// Linux: send runs of equal-size datagrams to one peer as one UDP segmentation offload
    /// (GSO) send and read coalesced (GRO) batches, cutting the kernel's per-datagram work.
    /// Each is turned off for the socket the first time the kernel refuses it; peers see
    /// ordinary datagrams either way, and the tap, impairment and SOCKS5 framing still see
    /// one datagram at a time. `false` sends and reads one datagram per message header.
    pub udp_offload: bool,
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("client", &self.client)
            .field("server", &self.server)
            .field("accept_any", &self.accept_any)
            .field("max_circuits", &self.max_circuits)
            .field("accept_backlog", &self.accept_backlog)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("recv_buffer", &self.recv_buffer)
            .field("send_buffer", &self.send_buffer)
            .field("tap", &self.tap.as_ref().map(|_| "<dyn Tap>"))
            .field("impairment", &self.impairment)
            .field("socks5_relay", &self.socks5_relay)
            .field("fd_floor", &self.fd_floor)
            .field("udp_offload", &self.udp_offload)
            .finish()
    }
}

impl EndpointConfig {
    /// An endpoint that only opens circuits itself (a viewer, a bot swarm).
    pub fn client() -> Self {
        EndpointConfig {
            client: Config::client(),
            server: None,
            accept_any: false,
            max_circuits: 4096,
            accept_backlog: 256,
            shutdown_timeout: Duration::from_secs(5),
            recv_buffer: Some(2 << 20),
            send_buffer: Some(1 << 20),
            tap: None,
            impairment: None,
            socks5_relay: None,
            fd_floor: None,
            udp_offload: true,
        }
    }

    /// An endpoint that accepts circuits (a simulator); it can also connect.
    pub fn server() -> Self {
        EndpointConfig {
            server: Some(Config::server()),
            ..EndpointConfig::client()
        }
    }
}

/// Why [`Endpoint::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A circuit to that address is already open.
    #[error("a circuit to {0} is already open")]
    AlreadyConnected(SocketAddr),
    /// [`EndpointConfig::max_circuits`] are open.
    #[error("too many circuits")]
    TooManyCircuits,
    /// The endpoint is shutting down or its driver has stopped.
    #[error("endpoint is shut down")]
    ShutDown,
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

/// Endpoint-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Open circuits.
    pub circuits: usize,
    /// Datagrams from unknown addresses that opened nothing.
    pub unrouted: u64,
    /// Datagrams the socket refused to send (dropped; reliable ones are resent).
    pub send_errors: u64,
    /// Datagrams handed to the socket (each tapped as [`Direction::Sent`]).
    pub datagrams_sent: u64,
    /// Datagrams read from the socket, garbage included.
    pub datagrams_received: u64,
    /// Outgoing datagrams dropped by [`EndpointConfig::impairment`].
    pub impaired_dropped: u64,
    /// Extra copies sent by [`EndpointConfig::impairment`].
    pub impaired_duplicated: u64,
    /// Outgoing datagrams waiting in the impairment delay queue.
    pub impaired_delayed: usize,
    /// Received datagrams dropped for not coming from [`EndpointConfig::socks5_relay`] or
    /// for a fragmented or malformed relay header.
    pub socks5_dropped: u64,
    /// Of [`datagrams_sent`](EndpointStats::datagrams_sent), those that left in segmentation
    /// offload sends ([`EndpointConfig::udp_offload`]).
    pub datagrams_sent_offloaded: u64,
    /// Of [`datagrams_received`](EndpointStats::datagrams_received), those that arrived in
    /// coalesced reads.
    pub datagrams_received_coalesced: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Slot {
    addr: SocketAddr,
    core: Mutex<Circuit>,
    readable: Notify,
    writable: Notify,
    dirty: AtomicBool,
}

struct Shared {
    socket: Async<UdpSocket>,
    circuits: Mutex<HashMap<SocketAddr, Arc<Slot>>>,
    dirty: Mutex<Vec<Arc<Slot>>>,
    wake: Sender<()>,
    config: EndpointConfig,
    stopping: AtomicBool,
    stopped: AtomicBool,
    stopped_notify: Notify,
    /// The bound address, as given to the tap.
    local: SocketAddr,
    unrouted: AtomicU64,
    send_errors: AtomicU64,
    datagrams_sent: AtomicU64,
    datagrams_received: AtomicU64,
    impaired_dropped: AtomicU64,
    impaired_duplicated: AtomicU64,
    impaired_delayed: AtomicU64,
    socks5_dropped: AtomicU64,
    offloaded: AtomicU64,
    coalesced: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Shared {
    fn mark_dirty(&self, slot: &Arc<Slot>) {
        if !slot.dirty.swap(true, Ordering::AcqRel) {
            lock(&self.dirty).push(slot.clone());
            let _ = self.wake.try_send(());
        }
    }

    fn new_slot(&self, addr: SocketAddr, config: Config, now: Instant) -> Arc<Slot> {
        Arc::new(Slot {
            addr,
            core: Mutex::new(Circuit::new(config, now)),
            readable: Notify::new(),
            writable: Notify::new(),
            dirty: AtomicBool::new(false),
        })
    }

    /// Marks the driver gone and wakes every waiting handle.
    fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        for slot in lock(&self.circuits).values() {
            slot.readable.notify(usize::MAX);
            slot.writable.notify(usize::MAX);
        }
        self.stopped_notify.notify(usize::MAX);
    }
}

fn udp_socket(addr: SocketAddr, config: &EndpointConfig) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Buffer sizes are hints: a refusal leaves the OS default, which still works.
    if let Some(n) = config.recv_buffer {
        let _ = socket.set_recv_buffer_size(n);
    }
    if let Some(n) = config.send_buffer {
        let _ = socket.set_send_buffer_size(n);
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    Ok(match config.fd_floor {
        Some(floor) => raise_fd(socket, floor),
        None => socket,
    })
}

/// The socket on a descriptor numbered `floor` or more, or as it was when that fails (no
/// free number under the process's limit): a low number still works, only less well.
#[cfg(target_os = "linux")]
fn raise_fd(socket: UdpSocket, floor: u32) -> UdpSocket {
    let Ok(floor) = i32::try_from(floor) else {
        return socket;
    };
    match rustix::io::fcntl_dupfd_cloexec(&socket, floor) {
        // The original descriptor closes when `socket` drops here.
        Ok(fd) => UdpSocket::from(fd),
        Err(_) => socket,
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_fd(socket: UdpSocket, _floor: u32) -> UdpSocket {
    socket
}

/// One UDP socket and the task that drives every circuit on it.
///
/// Cloning gives another handle to the same endpoint; the driver stops when
/// [`shutdown`](Endpoint::shutdown) is called or the last handle is dropped.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    shared: Arc<Shared>,
    accept: Receiver<Connection>,
    task: Mutex<Option<smol::Task<()>>>,
}

impl Drop for EndpointInner {
    fn drop(&mut self) {
        // Dropping the task cancels the driver; tell the handles.
        lock(&self.task).take();
        self.shared.mark_stopped();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds a UDP socket and starts its driver task on smol's global executor.
    ///
    /// # Errors
    /// When the socket cannot be bound, and [`io::ErrorKind::InvalidInput`] for an invalid
    /// [`EndpointConfig::impairment`] (see [`Impairment::validate`]).
    pub fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        if let Some(impairment) = &config.impairment {
            impairment.validate()?;
        }
        let socket = Async::new(udp_socket(addr, &config)?)?;
        let local = socket.get_ref().local_addr()?;
        let (wake, wake_rx) = async_channel::bounded(1);
        let (accept_tx, accept) = async_channel::bounded(config.accept_backlog.max(1));
        let shared = Arc::new(Shared {
            socket,
            circuits: Mutex::new(HashMap::new()),
            dirty: Mutex::new(Vec::new()),
            wake,
            config,
            stopping: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stopped_notify: Notify::new(),
            local,
            unrouted: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            datagrams_sent: AtomicU64::new(0),
            datagrams_received: AtomicU64::new(0),
            impaired_dropped: AtomicU64::new(0),
            impaired_duplicated: AtomicU64::new(0),
            impaired_delayed: AtomicU64::new(0),
            socks5_dropped: AtomicU64::new(0),
            offloaded: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
        });
        let driver = Driver::new(shared.clone(), wake_rx, accept_tx);
        let task = smol::spawn(driver.run());
        Ok(Endpoint {
            inner: Arc::new(EndpointInner {
                shared,
                accept,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// When the socket cannot tell.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.shared.socket.get_ref().local_addr()
    }

    /// Opens a client circuit to `addr` with [`EndpointConfig::client`] settings.
    ///
    /// # Errors
    /// When a circuit to `addr` exists, too many are open, or the endpoint is shut down.
    pub fn connect(&self, addr: SocketAddr) -> Result<Connection, EndpointError> {
        self.connect_with(addr, self.inner.shared.config.client.clone())
    }

    /// Opens a circuit to `addr` with the given settings.
    ///
    /// # Errors
    /// As [`Endpoint::connect`].
    pub fn connect_with(
        &self,
        addr: SocketAddr,
        config: Config,
    ) -> Result<Connection, EndpointError> {
        let shared = &self.inner.shared;
        if shared.stopping.load(Ordering::Acquire) || shared.stopped.load(Ordering::Acquire) {
            return Err(EndpointError::ShutDown);
        }
        let mut circuits = lock(&shared.circuits);
        if circuits.contains_key(&addr) {
            return Err(EndpointError::AlreadyConnected(addr));
        }
        if circuits.len() >= shared.config.max_circuits {
            return Err(EndpointError::TooManyCircuits);
        }
        let slot = shared.new_slot(addr, config, Instant::now());
        circuits.insert(addr, slot.clone());
        drop(circuits);
        // The driver must learn its timers.
        shared.mark_dirty(&slot);
        Ok(Connection {
            shared: shared.clone(),
            slot,
        })
    }

    /// The next circuit opened by a peer; `None` once the endpoint is shut down.
    pub async fn accept(&self) -> Option<Connection> {
        self.inner.accept.recv().await.ok()
    }

    /// The open circuit to `addr`, if any.
    pub fn connection(&self, addr: SocketAddr) -> Option<Connection> {
        let shared = &self.inner.shared;
        lock(&shared.circuits).get(&addr).map(|slot| Connection {
            shared: shared.clone(),
            slot: slot.clone(),
        })
    }

    /// Endpoint-wide counters.
    pub fn stats(&self) -> EndpointStats {
        let shared = &self.inner.shared;
        EndpointStats {
            circuits: lock(&shared.circuits).len(),
            unrouted: shared.unrouted.load(Ordering::Relaxed),
            send_errors: shared.send_errors.load(Ordering::Relaxed),
            datagrams_sent: shared.datagrams_sent.load(Ordering::Relaxed),
            datagrams_received: shared.datagrams_received.load(Ordering::Relaxed),
            impaired_dropped: shared.impaired_dropped.load(Ordering::Relaxed),
            impaired_duplicated: shared.impaired_duplicated.load(Ordering::Relaxed),
            impaired_delayed: usize::try_from(shared.impaired_delayed.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            socks5_dropped: shared.socks5_dropped.load(Ordering::Relaxed),
            datagrams_sent_offloaded: shared.offloaded.load(Ordering::Relaxed),
            datagrams_received_coalesced: shared.coalesced.load(Ordering::Relaxed),
        }
    }

    /// Closes every circuit cleanly (each drains its reliable sends, bounded by
    /// [`EndpointConfig::shutdown_timeout`]), then stops the driver.
    pub async fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.stopping.store(true, Ordering::Release);
        let now = Instant::now();
        let slots: Vec<_> = lock(&shared.circuits).values().cloned().collect();
        for slot in &slots {
            lock(&slot.core).close(now);
            shared.mark_dirty(slot);
        }
        let _ = shared.wake.try_send(());
        loop {
            let listener = shared.stopped_notify.listen();
            if shared.stopped.load(Ordering::Acquire) {
                break;
            }
            listener.await;
        }
        self.inner.accept.close();
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            task.await;
        }
    }
}

/// A handle to one circuit of an [`Endpoint`]; cheap to clone.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.slot.addr)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.slot.addr
    }

    fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Queues a message in its default throttle category, waiting while the send queue is
    /// full.
    ///
    /// # Errors
    /// When the circuit is closed or the message cannot be encoded.
    pub async fn send(
        &self,
        message: impl Into<Message>,
        reliability: Reliability,
    ) -> Result<SendId, SendError> {
        let message = message.into();
        let category = Category::of(&message);
        self.send_with(message, reliability, category).await
    }

    /// Queues a message in a given throttle category, waiting while the send queue is full.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub async fn send_with(
        &self,
        message: impl Into<Message>,
        reliability: Reliability,
        category: Category,
    ) -> Result<SendId, SendError> {
        let message = message.into();
        loop {
            if self.stopped() {
                return Err(SendError::Closed);
            }
            {
                let mut core = lock(&self.slot.core);
                if core.can_send() || core.is_closed() || core.is_closing() {
                    let r = core.send_with(message, reliability, category);
                    drop(core);
                    if r.is_ok() {
                        self.shared.mark_dirty(&self.slot);
                    }
                    return r;
                }
            }
            let listener = self.slot.writable.listen();
            {
                let core = lock(&self.slot.core);
                if core.can_send() || core.is_closed() || core.is_closing() || self.stopped() {
                    continue;
                }
            }
            listener.await;
        }
    }

    /// Queues a message without waiting.
    ///
    /// # Errors
    /// [`SendError::QueueFull`] when the queue is full (the message is dropped), and as
    /// [`Connection::send`].
    pub fn try_send(
        &self,
        message: impl Into<Message>,
        reliability: Reliability,
    ) -> Result<SendId, SendError> {
        if self.stopped() {
            return Err(SendError::Closed);
        }
        let r = lock(&self.slot.core).send(message, reliability);
        if r.is_ok() {
            self.shared.mark_dirty(&self.slot);
        }
        r
    }

    /// The next event without waiting.
    pub fn try_recv(&self) -> Option<Event> {
        lock(&self.slot.core).poll_event()
    }

    /// The next event: a message, an ack or give-up report, silence, or [`Event::Closed`];
    /// `None` after the last event of a closed circuit.
    pub async fn recv(&self) -> Option<Event> {
        loop {
            {
                let mut core = lock(&self.slot.core);
                if let Some(e) = core.poll_event() {
                    return Some(e);
                }
                if core.is_closed() || self.stopped() {
                    return None;
                }
            }
            let listener = self.slot.readable.listen();
            {
                let mut core = lock(&self.slot.core);
                if let Some(e) = core.poll_event() {
                    return Some(e);
                }
                if core.is_closed() || self.stopped() {
                    return None;
                }
            }
            listener.await;
        }
    }

    /// The events as a stream (ends after [`Event::Closed`]).
    pub fn events(&self) -> impl Stream<Item = Event> + Send + 'static {
        futures_lite::stream::unfold(self.clone(), |c| async move {
            let e = c.recv().await?;
            Some((e, c))
        })
    }

    /// Counters and round-trip estimate.
    pub fn stats(&self) -> Stats {
        lock(&self.slot.core).stats()
    }

    /// Sets the outgoing rates of this circuit (`None`: unthrottled).
    pub fn set_throttle(&self, rates: Option<ThrottleRates>) {
        lock(&self.slot.core).set_throttle(rates);
        self.shared.mark_dirty(&self.slot);
    }

    /// Whether the circuit has closed.
    pub fn is_closed(&self) -> bool {
        self.stopped() || lock(&self.slot.core).is_closed()
    }

    /// Closes cleanly: waits (at most [`Config::close_timeout`]) for reliable sends to be
    /// acked, sends `CloseCircuit`. Events stay readable afterwards.
    pub async fn close(&self) {
        lock(&self.slot.core).close(Instant::now());
        self.shared.mark_dirty(&self.slot);
        loop {
            let listener = self.slot.readable.listen();
            if self.is_closed() {
                return;
            }
            listener.await;
        }
    }
}

/// The driver task's state.
struct Driver {
    shared: Arc<Shared>,
    wake: Receiver<()>,
    accept: Sender<Connection>,
    timers: BTreeSet<(Instant, SocketAddr)>,
    timer_of: HashMap<SocketAddr, Instant>,
    work: Vec<Arc<Slot>>,
    /// Datagrams the circuits produced this round, with their destinations.
    out: Vec<(SocketAddr, Bytes)>,
    /// Datagrams past impairment, to put on the wire now.
    ready: Vec<(SocketAddr, Bytes)>,
    impair: Option<Impairer>,
    wire: Wire,
    /// Receive buffer, one slot per datagram of a batched read.
    buf: Vec<u8>,
    /// Where the datagrams of the last read landed in `buf`.
    received: Vec<Received>,
    rx: BytesMut,
}

/// The last stage before the socket: SOCKS5 framing, the tap, the system calls.
struct Wire {
    shared: Arc<Shared>,
    tap: Option<Arc<dyn Tap>>,
    relay: Option<SocketAddr>,
    batcher: Batcher,
}

impl Wire {
    /// Sends every datagram of `batch` (emptying it), waiting while the socket is full.
    async fn send_all(&mut self, batch: &mut Vec<(SocketAddr, Bytes)>) {
        let socket = &self.shared.socket;
        let mut i = 0;
        while i < batch.len() {
            match self.batcher.send(socket.get_ref(), self.relay, &batch[i..]) {
                Ok(n) if n > 0 => {
                    let sent = &batch[i..(i + n).min(batch.len())];
                    self.shared
                        .datagrams_sent
                        .fetch_add(sent.len() as u64, Ordering::Relaxed);
                    if let Some(tap) = &self.tap {
                        for (to, d) in sent {
                            tap.datagram(Direction::Sent, self.shared.local, *to, d);
                        }
                    }
                    i += sent.len();
                    self.shared
                        .offloaded
                        .store(self.batcher.gso_datagrams, Ordering::Relaxed);
                }
                Ok(_) => {
                    if socket.writable().await.is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Unreachable peer, no buffer, too large: this datagram is lost like any
                // other (reliable ones are resent); go on with the rest.
                Err(_) => {
                    bump(&self.shared.send_errors);
                    i += 1;
                }
            }
        }
        if i < batch.len() {
            self.shared
                .send_errors
                .fetch_add((batch.len() - i) as u64, Ordering::Relaxed);
        }
        batch.clear();
    }
}

impl Driver {
    fn new(shared: Arc<Shared>, wake: Receiver<()>, accept: Sender<Connection>) -> Self {
        let config = &shared.config;
        let wire = Wire {
            shared: shared.clone(),
            tap: config.tap.clone(),
            relay: config.socks5_relay,
            batcher: Batcher::new(shared.socket.get_ref(), config.udp_offload),
        };
        Driver {
            impair: config.impairment.clone().map(Impairer::new),
            wire,
            shared,
            wake,
            accept,
            timers: BTreeSet::new(),
            timer_of: HashMap::new(),
            work: Vec::new(),
            out: Vec::new(),
            ready: Vec::new(),
            buf: Batcher::recv_buffer(),
            received: Vec::new(),
            rx: BytesMut::new(),
        }
    }

    async fn run(mut self) {
        let mut timer = Timer::never();
        let mut stop_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let received = self.receive(now);
            self.work.append(&mut lock(&self.shared.dirty));
            while let Some(&(t, addr)) = self.timers.first() {
                if t > now {
                    break;
                }
                self.timers.pop_first();
                self.timer_of.remove(&addr);
                if let Some(slot) = lock(&self.shared.circuits).get(&addr)
                    && !slot.dirty.swap(true, Ordering::AcqRel)
                {
                    self.work.push(slot.clone());
                }
            }
            let busy = received >= RECV_BATCH || !self.work.is_empty();
            self.process(now).await;
            self.release_delayed(now).await;

            if self.shared.stopping.load(Ordering::Acquire) {
                let deadline =
                    *stop_deadline.get_or_insert(now + self.shared.config.shutdown_timeout);
                let drained = lock(&self.shared.circuits).is_empty()
                    && self.impair.as_ref().is_none_or(|i| i.delayed() == 0);
                if drained || now >= deadline {
                    break;
                }
                // Circuits can only close once the driver has run their timers; make sure it
                // wakes at the deadline at the latest.
                self.set_timer_floor(deadline);
            }

            if busy {
                future::yield_now().await;
                continue;
            }
            let circuit_due = self.timers.first().map(|&(t, _)| t);
            let delayed_due = self.impair.as_ref().and_then(Impairer::next_due);
            match (circuit_due, delayed_due) {
                (Some(a), Some(b)) => timer.set_at(a.min(b)),
                (Some(t), None) | (None, Some(t)) => timer.set_at(t),
                (None, None) => timer = Timer::never(),
            }
            let socket = &self.shared.socket;
            let wake = &self.wake;
            future::or(
                async {
                    let _ = socket.readable().await;
                },
                future::or(
                    async {
                        let _ = wake.recv().await;
                    },
                    async {
                        (&mut timer).await;
                    },
                ),
            )
            .await;
        }
        self.shared.mark_stopped();
    }

    fn set_timer_floor(&mut self, deadline: Instant) {
        if self.timers.first().is_none_or(|&(t, _)| t > deadline) {
            // A sentinel address that no circuit uses keeps the deadline in the set.
            let sentinel = SocketAddr::from(([0, 0, 0, 0], 0));
            self.timers.insert((deadline, sentinel));
        }
    }

    /// Reads up to a batch of datagrams and hands each to its circuit.
    fn receive(&mut self, now: Instant) -> usize {
        let mut n_read = 0;
        while n_read < RECV_BATCH {
            self.received.clear();
            let socket = self.shared.socket.get_ref();
            let reads = match self
                .wire
                .batcher
                .recv(socket, &mut self.buf, &mut self.received)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors reported on the socket (e.g. a port that went away): nothing to read.
                Err(_) => {
                    n_read += 1;
                    continue;
                }
            };
            let got = self.received.len();
            for i in 0..got {
                let r = self.received[i];
                self.deliver(r.offset, r.len, r.from, now);
            }
            n_read += got.max(1);
            self.shared
                .coalesced
                .store(self.wire.batcher.gro_datagrams, Ordering::Relaxed);
            if reads < crate::batch::RECV_SLOTS {
                // A short batch: the socket is drained; spare the call that would say so.
                break;
            }
        }
        n_read
    }

    /// Handles the datagram of `len` bytes at `offset` in `self.buf` that came from `from`.
    fn deliver(&mut self, offset: usize, len: usize, from: SocketAddr, now: Instant) {
        bump(&self.shared.datagrams_received);
        let Some(raw) = self.buf.get(offset..offset.saturating_add(len)) else {
            return;
        };
        let (remote, datagram) = match self.wire.relay {
            Some(relay) => {
                let inner = if from == relay {
                    socks5::parse_udp_header(raw)
                        .and_then(|(dst, at)| raw.get(at..).map(|d| (dst, d)))
                } else {
                    None
                };
                let Some(inner) = inner else {
                    bump(&self.shared.socks5_dropped);
                    return;
                };
                inner
            }
            None => (from, raw),
        };
        if let Some(tap) = &self.wire.tap {
            tap.datagram(Direction::Received, self.shared.local, remote, datagram);
        }
        let Some(slot) = route(&self.shared, &self.accept, datagram, remote, now) else {
            bump(&self.shared.unrouted);
            return;
        };
        if self.rx.capacity() < datagram.len() {
            self.rx.reserve(RX_CHUNK.max(datagram.len()));
        }
        self.rx.extend_from_slice(datagram);
        let datagram = self.rx.split().freeze();
        lock(&slot.core).handle_datagram(now, datagram);
        if !slot.dirty.swap(true, Ordering::AcqRel) {
            self.work.push(slot);
        }
    }

    /// Runs timers, collects transmits and wakes handles for every circuit with work.
    async fn process(&mut self, now: Instant) {
        let mut work = std::mem::take(&mut self.work);
        for slot in work.drain(..) {
            slot.dirty.store(false, Ordering::Release);
            let (has_events, can_send, closed, next) = {
                let mut core = lock(&slot.core);
                core.handle_timeout(now);
                while let Some(d) = core.poll_transmit(now) {
                    self.out.push((slot.addr, d));
                }
                (
                    core.has_events(),
                    core.can_send(),
                    core.is_closed(),
                    core.poll_timeout(),
                )
            };

            if let Some(old) = self.timer_of.remove(&slot.addr) {
                self.timers.remove(&(old, slot.addr));
            }
            if let Some(t) = next {
                self.timers.insert((t, slot.addr));
                self.timer_of.insert(slot.addr, t);
            }
            if has_events || closed {
                slot.readable.notify(usize::MAX);
            }
            if can_send || closed {
                slot.writable.notify(usize::MAX);
            }
            if closed {
                let mut circuits = lock(&self.shared.circuits);
                if circuits
                    .get(&slot.addr)
                    .is_some_and(|s| Arc::ptr_eq(s, &slot))
                {
                    circuits.remove(&slot.addr);
                }
            }
        }
        // Keep the allocation for the next round.
        self.work = work;
        self.flush(now).await;
    }

    /// Puts this round's datagrams through impairment and onto the wire.
    async fn flush(&mut self, now: Instant) {
        let Some(impair) = &mut self.impair else {
            self.wire.send_all(&mut self.out).await;
            return;
        };
        for (to, d) in self.out.drain(..) {
            match impair.admit(now, to, d, &mut self.ready) {
                Fate::Dropped => bump(&self.shared.impaired_dropped),
                Fate::Kept(copies) => {
                    self.shared
                        .impaired_duplicated
                        .fetch_add(u64::from(copies.saturating_sub(1)), Ordering::Relaxed);
                }
            }
        }
        self.shared
            .impaired_delayed
            .store(impair.delayed() as u64, Ordering::Relaxed);
        self.wire.send_all(&mut self.ready).await;
    }

    /// Sends the delayed datagrams that are due.
    async fn release_delayed(&mut self, now: Instant) {
        let Some(impair) = &mut self.impair else {
            return;
        };
        if impair.next_due().is_none_or(|t| t > now) {
            return;
        }
        impair.release(now, &mut self.ready);
        self.shared
            .impaired_delayed
            .store(impair.delayed() as u64, Ordering::Relaxed);
        self.wire.send_all(&mut self.ready).await;
    }
}

/// The circuit for a datagram from `from`, opening a server circuit if allowed.
fn route(
    shared: &Arc<Shared>,
    accept: &Sender<Connection>,
    datagram: &[u8],
    from: SocketAddr,
    now: Instant,
) -> Option<Arc<Slot>> {
    let mut circuits = lock(&shared.circuits);
    if let Some(slot) = circuits.get(&from) {
        return Some(slot.clone());
    }
    let config = shared.config.server.as_ref()?;
    if shared.stopping.load(Ordering::Acquire) || circuits.len() >= shared.config.max_circuits {
        return None;
    }
    if !shared.config.accept_any {
        let header = opensim_packet::Header::peek(datagram).ok()?;
        if header.id != UseCircuitCode::ID {
            return None;
        }
    }
    let slot = shared.new_slot(from, config.clone(), now);
    let conn = Connection {
        shared: shared.clone(),
        slot: slot.clone(),
    };
    // A full backlog refuses the circuit; the peer's resend will try again.
    accept.try_send(conn).ok()?;
    circuits.insert(from, slot.clone());
    Some(slot)
}
