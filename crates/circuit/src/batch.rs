//! Batched datagram system calls: `recvmmsg` / `sendmmsg` on Linux (through safe wrappers),
//! one `recv_from` / `send_to` per datagram elsewhere.
//!
//! On loopback most of the driver's time is the kernel's, and a large share of that is the
//! per-call overhead; moving many datagrams per call cuts it. What remains is paid per
//! datagram (route lookup, IP output, the receive path), so on Linux runs of equal-size
//! datagrams to one destination also go out as one UDP segmentation offload (GSO) send,
//! and the socket accepts coalesced (GRO) reads, which it splits back into datagrams here.
//! Either is dropped for the socket the first time the kernel refuses it.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use bytes::Bytes;

use crate::socks5;

/// Bytes reserved per received datagram: the largest UDP payload, so nothing is truncated.
/// A coalesced (GRO) read is at most that long too. The buffer is zero-allocated, so pages
/// that no datagram reaches are never touched.
pub(crate) const SLOT: usize = 65_536;

/// Datagrams read per call.
#[cfg(target_os = "linux")]
pub(crate) const RECV_SLOTS: usize = 32;
/// Datagrams read per call.
#[cfg(not(target_os = "linux"))]
pub(crate) const RECV_SLOTS: usize = 1;

/// Datagrams written per call.
#[cfg(target_os = "linux")]
const SEND_BATCH: usize = 64;

/// Most segments in one offloaded send (the kernel's `UDP_MAX_SEGMENTS` before 6.9).
#[cfg(target_os = "linux")]
const GSO_MAX_SEGMENTS: usize = 64;
/// Largest segment sent with offload: a full-size datagram under a 1500-byte link MTU
/// (IPv6 headers). Bigger ones would fail on such links, and LLUDP packets are smaller.
#[cfg(target_os = "linux")]
const GSO_MAX_SEGMENT: usize = 1452;
/// Most bytes in one offloaded send: the UDP length field, headers included, with room.
#[cfg(target_os = "linux")]
const GSO_MAX_BYTES: usize = 65_000;

/// Where one received datagram lies in the receive buffer and who sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
}

/// Reusable state of the batched calls.
pub(crate) struct Batcher {
    #[cfg(target_os = "linux")]
    send_addrs: Vec<rustix::net::SocketAddrAny>,
    /// SOCKS5 headers of the datagrams of one send call.
    headers: Vec<([u8; 22], usize)>,
    /// Header plus payload, for the one-at-a-time path through a relay.
    #[cfg(not(target_os = "linux"))]
    framed: Vec<u8>,
    /// Runs of equal datagrams go out as one segmentation offload send.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    gso: bool,
    /// The socket delivers coalesced reads with their segment size.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    gro: bool,
    /// Datagrams sent in offloaded sends.
    pub(crate) gso_datagrams: u64,
    /// Datagrams that arrived coalesced.
    pub(crate) gro_datagrams: u64,
    /// Tests: the error the next offloaded send fails with, as a kernel that refuses would.
    #[cfg(test)]
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    refuse_with: Option<i32>,
}

impl Batcher {
    /// Batched calls on `socket`; with `offload`, segmentation and receive offload where the
    /// kernel offers them (Linux).
    pub(crate) fn new(socket: &UdpSocket, offload: bool) -> Self {
        let (gso, gro) = if offload {
            enable_offload(socket)
        } else {
            (false, false)
        };
        Batcher {
            #[cfg(target_os = "linux")]
            send_addrs: Vec::with_capacity(SEND_BATCH),
            headers: Vec::new(),
            #[cfg(not(target_os = "linux"))]
            framed: Vec::new(),
            gso,
            gro,
            gso_datagrams: 0,
            gro_datagrams: 0,
            #[cfg(test)]
            refuse_with: None,
        }
    }

    /// Whether runs of datagrams are sent with segmentation offload.
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn gso(&self) -> bool {
        self.gso
    }

    /// Whether the socket accepts coalesced reads.
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn gro(&self) -> bool {
        self.gro
    }

    /// A zeroed receive buffer for [`Batcher::recv`].
    pub(crate) fn recv_buffer() -> Vec<u8> {
        vec![0; RECV_SLOTS * SLOT]
    }

    /// Reads what is waiting, up to [`RECV_SLOTS`] reads, into `buf` (from
    /// [`Batcher::recv_buffer`]); appends where each datagram landed to `out` (a coalesced
    /// read gives several). Returns the number of reads.
    ///
    /// # Errors
    /// The socket's, `WouldBlock` when nothing is waiting.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
        out: &mut Vec<Received>,
    ) -> io::Result<usize> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{
            ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
        };

        let mut chunks = buf.chunks_mut(SLOT);
        let mut slices: [[IoSliceMut<'_>; 1]; RECV_SLOTS] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        // The headers hold raw pointers, so they cannot live in the (Send) driver across
        // awaits; a few small allocations per call of up to RECV_SLOTS reads.
        let control = self.gro.then(|| nix::cmsg_space!(i32));
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_SLOTS, control);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut reads = 0;
        for (i, msg) in results.enumerate() {
            reads += 1;
            let from = msg.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(*v4))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
            });
            // A datagram without an IP source cannot be answered or routed.
            let Some(from) = from else {
                continue;
            };
            let len = msg.bytes.min(SLOT);
            let mut segment = len;
            if self.gro
                && let Ok(cmsgs) = msg.cmsgs()
            {
                for c in cmsgs {
                    if let ControlMessageOwned::UdpGroSegments(size) = c
                        && let Ok(size) = usize::try_from(size)
                        && size > 0
                    {
                        segment = size;
                    }
                }
            }
            let offset = i * SLOT;
            if segment >= len {
                out.push(Received { offset, len, from });
                continue;
            }
            // Coalesced: equal segments, the last one possibly shorter.
            let mut at = 0;
            while at < len {
                let n = segment.min(len - at);
                out.push(Received {
                    offset: offset + at,
                    len: n,
                    from,
                });
                self.gro_datagrams += 1;
                at += n;
            }
        }
        Ok(reads)
    }

    /// Reads one datagram into `buf`; appends where it landed to `out`. Returns 1.
    ///
    /// # Errors
    /// The socket's, `WouldBlock` when nothing is waiting.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
        out: &mut Vec<Received>,
    ) -> io::Result<usize> {
        let (len, from) = socket.recv_from(buf)?;
        out.push(Received {
            offset: 0,
            len,
            from,
        });
        Ok(1)
    }

    /// Sends the first datagrams of `batch` (destination, payload), to their destinations or,
    /// with `relay`, to the relay behind a SOCKS5 header naming it. Returns how many left
    /// (at least one).
    ///
    /// A run of datagrams to one destination, all of one size but the last (which may be
    /// shorter), goes out in one offloaded send; other datagrams, up to the next such run,
    /// in one `sendmmsg`.
    ///
    /// # Errors
    /// The socket's error for the first datagram (none was sent).
    #[cfg(target_os = "linux")]
    pub(crate) fn send(
        &mut self,
        socket: &UdpSocket,
        relay: Option<SocketAddr>,
        batch: &[(SocketAddr, Bytes)],
    ) -> io::Result<usize> {
        let batch = &batch[..batch.len().min(SEND_BATCH)];
        if batch.is_empty() {
            return Ok(0);
        }
        if !self.gso {
            return self.send_each(socket, relay, batch);
        }
        let extra = relay.map_or(0, |_| header(batch[0].0).1);
        let run = gso_run(batch, extra);
        if run >= 2 {
            match self.send_gso(socket, relay, &batch[..run]) {
                Ok(()) => {
                    self.gso_datagrams += run as u64;
                    return Ok(run);
                }
                // The kernel, the route or the device does not do it: stop asking.
                Err(e) if offload_refused(&e) => {
                    self.gso = false;
                    return self.send_each(socket, relay, batch);
                }
                Err(e) => return Err(e),
            }
        }
        // Singles up to where the next run starts.
        let end = (1..batch.len())
            .find(|&i| {
                let extra = relay.map_or(0, |_| header(batch[i].0).1);
                gso_run(&batch[i..], extra) >= 2
            })
            .unwrap_or(batch.len());
        self.send_each(socket, relay, &batch[..end])
    }

    /// One offloaded send of `run` (one destination, equal sizes but the last).
    #[cfg(target_os = "linux")]
    fn send_gso(
        &mut self,
        socket: &UdpSocket,
        relay: Option<SocketAddr>,
        run: &[(SocketAddr, Bytes)],
    ) -> io::Result<()> {
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};

        let to = run[0].0;
        self.headers.clear();
        if relay.is_some() {
            self.headers.extend(run.iter().map(|(to, _)| header(*to)));
        }
        let mut iovs: Vec<IoSlice<'_>> = Vec::with_capacity(2 * run.len());
        for (i, (_, payload)) in run.iter().enumerate() {
            if let Some((h, n)) = self.headers.get(i) {
                iovs.push(IoSlice::new(&h[..*n]));
            }
            iovs.push(IoSlice::new(payload));
        }
        let segment = run[0].1.len() + self.headers.first().map_or(0, |(_, n)| *n);
        // gso_run keeps it under GSO_MAX_SEGMENT.
        let segment = u16::try_from(segment).unwrap_or(u16::MAX);
        let addr = SockaddrStorage::from(relay.unwrap_or(to));
        let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
        #[cfg(test)]
        if let Some(code) = self.refuse_with.take() {
            return Err(io::Error::from_raw_os_error(code));
        }
        loop {
            match sendmsg(
                socket.as_raw_fd(),
                &iovs,
                &cmsgs,
                MsgFlags::MSG_DONTWAIT,
                Some(&addr),
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One `sendmmsg` of `batch`, a datagram per message.
    #[cfg(target_os = "linux")]
    fn send_each(
        &mut self,
        socket: &UdpSocket,
        relay: Option<SocketAddr>,
        batch: &[(SocketAddr, Bytes)],
    ) -> io::Result<usize> {
        use std::io::IoSlice;

        use rustix::net::addr::SocketAddrArg;
        use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};

        self.send_addrs.clear();
        self.headers.clear();
        match relay {
            Some(relay) => {
                let relay = relay.as_any();
                for (to, _) in batch {
                    self.send_addrs.push(relay.clone());
                    self.headers.push(header(*to));
                }
            }
            None => self
                .send_addrs
                .extend(batch.iter().map(|(to, _)| to.as_any())),
        }
        let iovs: Vec<[IoSlice<'_>; 2]> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, payload))| {
                let head = self.headers.get(i).map_or(&[][..], |(h, n)| &h[..*n]);
                [IoSlice::new(head), IoSlice::new(payload)]
            })
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = batch
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = self
            .send_addrs
            .iter()
            .zip(&iovs)
            .zip(controls.iter_mut())
            .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
            .collect();
        loop {
            match sendmmsg(socket, &mut msgs, SendFlags::DONTWAIT) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends the first datagram of `batch` (see the Linux version).
    ///
    /// # Errors
    /// The socket's error; nothing was sent.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn send(
        &mut self,
        socket: &UdpSocket,
        relay: Option<SocketAddr>,
        batch: &[(SocketAddr, Bytes)],
    ) -> io::Result<usize> {
        let Some((to, payload)) = batch.first() else {
            return Ok(0);
        };
        match relay {
            Some(relay) => {
                self.framed.clear();
                let (h, n) = header(*to);
                self.framed.extend_from_slice(&h[..n]);
                self.framed.extend_from_slice(payload);
                socket.send_to(&self.framed, relay)?;
            }
            None => {
                socket.send_to(payload, *to)?;
            }
        }
        Ok(1)
    }
}

/// How many datagrams from the start of `batch` one offloaded send can carry: same
/// destination, all of the first one's size except the last, which may be shorter but not
/// empty. `extra` is the relay header each one gets.
#[cfg(target_os = "linux")]
fn gso_run(batch: &[(SocketAddr, Bytes)], extra: usize) -> usize {
    let Some((to, first)) = batch.first() else {
        return 0;
    };
    let size = first.len() + extra;
    if first.is_empty() || size > GSO_MAX_SEGMENT {
        return 1;
    }
    let limit = GSO_MAX_SEGMENTS.min(GSO_MAX_BYTES / size);
    let mut n = 1;
    for (t, d) in &batch[1..] {
        if n == limit || t != to || d.is_empty() || d.len() > first.len() {
            break;
        }
        n += 1;
        if d.len() < first.len() {
            break;
        }
    }
    n
}

/// Errors by which the kernel says it will not do segmentation offload here.
#[cfg(target_os = "linux")]
fn offload_refused(e: &io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|code| {
        [
            Errno::EIO,
            Errno::EINVAL,
            Errno::ENOPROTOOPT,
            Errno::EOPNOTSUPP,
            Errno::EMSGSIZE,
        ]
        .iter()
        .any(|&errno| errno as i32 == code)
    })
}

/// Turns on receive offload and checks that the kernel knows segmentation offload:
/// (segmentation, receive) as available.
#[cfg(target_os = "linux")]
fn enable_offload(socket: &UdpSocket) -> (bool, bool) {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    // Reading the option tells whether the kernel has it (4.18 and later).
    let gso = getsockopt(socket, sockopt::UdpGsoSegment).is_ok();
    let gro = setsockopt(socket, sockopt::UdpGroSegment, &true).is_ok();
    (gso, gro)
}

#[cfg(not(target_os = "linux"))]
fn enable_offload(_socket: &UdpSocket) -> (bool, bool) {
    (false, false)
}

/// The SOCKS5 UDP header for `to`, in a fixed array with its length.
fn header(to: SocketAddr) -> ([u8; 22], usize) {
    socks5::udp_header(to)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn bound() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    /// `n` datagrams of `size` bytes (the last one `last` bytes), each filled with a pattern
    /// that names its index.
    fn run(to: SocketAddr, n: usize, size: usize, last: usize) -> Vec<(SocketAddr, Bytes)> {
        (0..n)
            .map(|i| {
                let len = if i + 1 == n { last } else { size };
                let d: Vec<u8> = (0..len).map(|k| (i * 7 + k) as u8).collect();
                (to, Bytes::from(d))
            })
            .collect()
    }

    fn send_everything(b: &mut Batcher, socket: &UdpSocket, batch: &[(SocketAddr, Bytes)]) {
        let mut i = 0;
        while i < batch.len() {
            i += b.send(socket, None, &batch[i..]).unwrap();
        }
    }

    /// Blocks until the socket has something to read (bounded, so a lost datagram fails the
    /// test instead of hanging it).
    fn wait_readable(socket: &UdpSocket) {
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.peek_from(&mut [0u8; 1]).unwrap();
        socket.set_nonblocking(true).unwrap();
    }

    /// Reads `n` datagrams with a plain one-at-a-time receiver.
    fn plain_receive(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; SLOT];
        while got.len() < n {
            wait_readable(socket);
            let (len, _) = socket.recv_from(&mut buf).unwrap();
            got.push(buf[..len].to_vec());
        }
        got
    }

    /// Reads `n` datagrams through a batcher.
    fn batched_receive(b: &mut Batcher, socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = Batcher::recv_buffer();
        let mut out = Vec::new();
        while got.len() < n {
            wait_readable(socket);
            out.clear();
            match b.recv(socket, &mut buf, &mut out) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
            for r in &out {
                got.push(buf[r.offset..r.offset + r.len].to_vec());
            }
        }
        got
    }

    fn payloads(batch: &[(SocketAddr, Bytes)]) -> Vec<Vec<u8>> {
        batch.iter().map(|(_, d)| d.to_vec()).collect()
    }

    #[test]
    fn runs_split_at_destination_size_and_limits() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let d = |n: usize| Bytes::from(vec![0u8; n]);
        assert_eq!(gso_run(&[], 0), 0);
        assert_eq!(gso_run(&[(a, d(10)), (a, d(10)), (b, d(10))], 0), 2);
        // The last may be shorter, and ends the run.
        assert_eq!(gso_run(&[(a, d(10)), (a, d(4)), (a, d(4))], 0), 2);
        // A longer one cannot follow.
        assert_eq!(gso_run(&[(a, d(10)), (a, d(11))], 0), 1);
        // Empty datagrams never join one.
        assert_eq!(gso_run(&[(a, d(10)), (a, d(0))], 0), 1);
        assert_eq!(gso_run(&[(a, d(0)), (a, d(0))], 0), 1);
        // Segment count and size limits, the relay header included.
        let many: Vec<_> = (0..100).map(|_| (a, d(10))).collect();
        assert_eq!(gso_run(&many, 0), GSO_MAX_SEGMENTS);
        let big: Vec<_> = (0..100).map(|_| (a, d(1400))).collect();
        assert_eq!(gso_run(&big, 0), GSO_MAX_BYTES / 1400);
        assert_eq!(gso_run(&big, 22), GSO_MAX_BYTES / 1422);
        let huge = [(a, d(GSO_MAX_SEGMENT)), (a, d(GSO_MAX_SEGMENT))];
        assert_eq!(gso_run(&huge, 0), 2);
        assert_eq!(gso_run(&huge, 1), 1);
    }

    #[test]
    fn an_offloaded_run_reaches_a_plain_receiver_intact_and_in_order() {
        let (tx, rx) = (bound(), bound());
        let mut sender = Batcher::new(&tx, true);
        assert!(sender.gso(), "the kernel refused UDP_SEGMENT");
        let batch = run(rx.local_addr().unwrap(), 41, 100, 37);
        send_everything(&mut sender, &tx, &batch);
        assert_eq!(sender.gso_datagrams, 41);
        assert_eq!(plain_receive(&rx, 41), payloads(&batch));
    }

    #[test]
    fn through_a_relay_each_segment_carries_its_own_socks5_header() {
        let (tx, relay) = (bound(), bound());
        let mut sender = Batcher::new(&tx, true);
        let dst: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        let batch = run(dst, 10, 64, 20);
        let mut i = 0;
        while i < batch.len() {
            i += sender
                .send(&tx, Some(relay.local_addr().unwrap()), &batch[i..])
                .unwrap();
        }
        assert_eq!(sender.gso_datagrams, 10);
        let (h, n) = header(dst);
        let framed: Vec<Vec<u8>> = batch
            .iter()
            .map(|(_, d)| [&h[..n], &d[..]].concat())
            .collect();
        assert_eq!(plain_receive(&relay, 10), framed);
    }

    #[test]
    fn a_coalescing_receiver_splits_an_offloaded_run_back_into_datagrams() {
        let (tx, rx) = (bound(), bound());
        let mut sender = Batcher::new(&tx, true);
        let mut receiver = Batcher::new(&rx, true);
        assert!(receiver.gro(), "the kernel refused UDP_GRO");
        let to = rx.local_addr().unwrap();
        // Several runs: full ones, one with a short tail, and sizes that change.
        let mut batch = run(to, 64, 200, 200);
        batch.extend(run(to, 30, 57, 3));
        batch.extend(run(to, 5, 1000, 999));
        send_everything(&mut sender, &tx, &batch);
        assert_eq!(sender.gso_datagrams, batch.len() as u64);
        assert_eq!(
            batched_receive(&mut receiver, &rx, batch.len()),
            payloads(&batch)
        );
        assert!(receiver.gro_datagrams > 0, "nothing arrived coalesced");
    }

    #[test]
    fn without_offload_runs_go_one_datagram_each_and_still_arrive() {
        let (tx, rx) = (bound(), bound());
        let mut sender = Batcher::new(&tx, false);
        let mut receiver = Batcher::new(&rx, false);
        assert!(!sender.gso() && !receiver.gro());
        let batch = run(rx.local_addr().unwrap(), 50, 120, 120);
        send_everything(&mut sender, &tx, &batch);
        assert_eq!(sender.gso_datagrams, 0);
        assert_eq!(
            batched_receive(&mut receiver, &rx, batch.len()),
            payloads(&batch)
        );
        assert_eq!(receiver.gro_datagrams, 0);
    }

    #[test]
    fn a_refused_offload_is_dropped_for_the_socket_and_the_run_still_goes() {
        let (tx, rx) = (bound(), bound());
        let mut sender = Batcher::new(&tx, true);
        assert!(sender.gso());
        sender.refuse_with = Some(nix::errno::Errno::EIO as i32);
        let to = rx.local_addr().unwrap();
        let mut batch = run(to, 20, 80, 80);
        batch.extend(run(to, 20, 90, 90));
        send_everything(&mut sender, &tx, &batch);
        assert!(!sender.gso());
        assert_eq!(sender.gso_datagrams, 0);
        assert_eq!(plain_receive(&rx, batch.len()), payloads(&batch));
    }

    #[test]
    fn other_send_errors_do_not_turn_offload_off() {
        let tx = bound();
        let mut sender = Batcher::new(&tx, true);
        sender.refuse_with = Some(nix::errno::Errno::ECONNREFUSED as i32);
        let batch = run("127.0.0.1:9".parse().unwrap(), 4, 10, 10);
        let e = sender.send(&tx, None, &batch).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(nix::errno::Errno::ECONNREFUSED as i32)
        );
        assert!(sender.gso());
    }
}
