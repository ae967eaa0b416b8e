//! A circuit tap that writes every datagram into a pcap file (`session.pcap`).

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opensim_circuit::{Direction, Tap};

use crate::pcap::PcapWriter;

/// Writes tapped datagrams as they pass; a write error stops the capture, and is reported.
#[derive(Debug)]
pub struct PcapTap {
    writer: Mutex<Option<PcapWriter<BufWriter<File>>>>,
    error: Mutex<Option<std::io::Error>>,
    /// Datagrams written.
    pub datagrams: AtomicU64,
    /// Datagrams not written: IPv6 addresses, which the raw-IPv4 capture cannot hold.
    pub skipped: AtomicU64,
}

impl PcapTap {
    /// Creates the file and writes its header.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let w = PcapWriter::new(BufWriter::new(File::create(path)?))?;
        Ok(PcapTap {
            writer: Mutex::new(Some(w)),
            error: Mutex::new(None),
            datagrams: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    /// Flushes the file; the first write error of the capture, if any.
    ///
    /// # Errors
    /// The first failed write, or the flush.
    pub fn finish(&self) -> std::io::Result<()> {
        let w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(e) = self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            return Err(e);
        }
        if let Some(w) = w {
            w.finish()?;
        }
        Ok(())
    }
}

impl Tap for PcapTap {
    fn datagram(&self, direction: Direction, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (local, remote) else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (src, dst) = match direction {
            Direction::Sent => (local, remote),
            Direction::Received => (remote, local),
        };
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(w) = guard.as_mut() else { return };
        match w.write_udp(micros, src, dst, bytes) {
            Ok(()) => {
                self.datagrams.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                *guard = None;
                *self
                    .error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        }
    }
}
