//! Batched datagram system calls: `recvmmsg` / `sendmmsg` on Linux (through safe wrappers),
//! one `recv_from` / `send_to` per datagram elsewhere.
//!
//! On loopback most of the driver's time is the kernel's, and a large share of that is the
//! per-call overhead; moving many datagrams per call cuts it.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use bytes::Bytes;

use crate::socks5;

/// Bytes reserved per received datagram: the largest UDP payload, so nothing is truncated.
/// The buffer is zero-allocated, so pages that no datagram reaches are never touched.
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
}

impl Batcher {
    pub(crate) fn new() -> Self {
        Batcher {
            #[cfg(target_os = "linux")]
            send_addrs: Vec::with_capacity(SEND_BATCH),
            headers: Vec::new(),
            #[cfg(not(target_os = "linux"))]
            framed: Vec::new(),
        }
    }

    /// A zeroed receive buffer for [`Batcher::recv`].
    pub(crate) fn recv_buffer() -> Vec<u8> {
        vec![0; RECV_SLOTS * SLOT]
    }

    /// Reads what is waiting, up to [`RECV_SLOTS`] datagrams, into `buf` (from
    /// [`Batcher::recv_buffer`]); appends where each landed to `out`.
    ///
    /// # Errors
    /// The socket's, `WouldBlock` when nothing is waiting.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
        out: &mut Vec<Received>,
    ) -> io::Result<()> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

        let mut chunks = buf.chunks_mut(SLOT);
        let mut slices: [[IoSliceMut<'_>; 1]; RECV_SLOTS] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        // The headers hold raw pointers, so they cannot live in the (Send) driver across
        // awaits; two small allocations per call of up to RECV_SLOTS datagrams.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_SLOTS, None);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for (i, msg) in results.enumerate() {
            let from = msg.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(*v4))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
            });
            // A datagram without an IP source cannot be answered or routed.
            if let Some(from) = from {
                out.push(Received {
                    offset: i * SLOT,
                    len: msg.bytes.min(SLOT),
                    from,
                });
            }
        }
        Ok(())
    }

    /// Reads one datagram into `buf`; appends where it landed to `out`.
    ///
    /// # Errors
    /// The socket's, `WouldBlock` when nothing is waiting.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
        out: &mut Vec<Received>,
    ) -> io::Result<()> {
        let (len, from) = socket.recv_from(buf)?;
        out.push(Received {
            offset: 0,
            len,
            from,
        });
        Ok(())
    }

    /// Sends the first datagrams of `batch` (destination, payload), to their destinations or,
    /// with `relay`, to the relay behind a SOCKS5 header naming it. Returns how many left
    /// (at least one).
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
        use std::io::IoSlice;

        use rustix::net::addr::SocketAddrArg;
        use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};

        let batch = &batch[..batch.len().min(SEND_BATCH)];
        if batch.is_empty() {
            return Ok(0);
        }
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

/// The SOCKS5 UDP header for `to`, in a fixed array with its length.
fn header(to: SocketAddr) -> ([u8; 22], usize) {
    socks5::udp_header(to)
}
