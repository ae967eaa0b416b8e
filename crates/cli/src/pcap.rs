//! Reading and writing classic pcap files: the UDP payloads of a capture.

use std::net::{Ipv4Addr, SocketAddrV4};

/// A pcap file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapError {
    /// Not a classic pcap file (pcapng is not supported).
    BadMagic,
    /// A record runs past the end of the file.
    Truncated,
    /// A link type we cannot take apart.
    UnsupportedLinkType(u32),
}

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcapError::BadMagic => write!(f, "not a classic pcap file"),
            PcapError::Truncated => write!(f, "truncated pcap record"),
            PcapError::UnsupportedLinkType(t) => write!(f, "unsupported pcap link type {t}"),
        }
    }
}

impl std::error::Error for PcapError {}

/// One UDP datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRecord<'a> {
    /// The record's index in the file (0-based, counting every record).
    pub index: usize,
    /// Source address.
    pub src: SocketAddrV4,
    /// Destination address.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// The UDP-over-IPv4 payloads of a classic pcap file, in capture order.
///
/// # Errors
/// When the file is not classic pcap, a record is cut off, or the link type is unknown.
pub fn udp_records(file: &[u8]) -> Result<Vec<UdpRecord<'_>>, PcapError> {
    let magic = file.get(..4).ok_or(PcapError::BadMagic)?;
    let le = match magic {
        [0xD4, 0xC3, 0xB2, 0xA1] | [0x4D, 0x3C, 0xB2, 0xA1] => true,
        [0xA1, 0xB2, 0xC3, 0xD4] | [0xA1, 0xB2, 0x3C, 0x4D] => false,
        _ => return Err(PcapError::BadMagic),
    };
    let u32_at = |b: &[u8], at: usize| -> Result<u32, PcapError> {
        let s: [u8; 4] = b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or(PcapError::Truncated)?;
        Ok(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    let link = u32_at(file, 20)?;
    let mut out = Vec::new();
    let mut pos = 24;
    let mut index = 0;
    while pos < file.len() {
        let incl = u32_at(file, pos + 8)? as usize;
        let data = file
            .get(pos + 16..pos + 16 + incl)
            .ok_or(PcapError::Truncated)?;
        pos += 16 + incl;
        let ip = match link {
            // Ethernet, skipping one VLAN tag if present.
            1 => {
                let (ethertype, off) = match data.get(12..14) {
                    Some([0x81, 0x00]) => (data.get(16..18), 18),
                    other => (other, 14),
                };
                if ethertype != Some(&[0x08, 0x00]) {
                    index += 1;
                    continue;
                }
                data.get(off..)
            }
            // BSD loopback: a 4-byte address family.
            0 | 108 => data.get(4..),
            // Raw IPv4.
            101 | 228 => Some(data),
            // Linux cooked capture v1 and v2.
            113 => data.get(16..),
            276 => data.get(20..),
            other => return Err(PcapError::UnsupportedLinkType(other)),
        };
        if let Some(rec) = ip.and_then(|ip| parse_udp(ip, index)) {
            out.push(rec);
        }
        index += 1;
    }
    Ok(out)
}

fn parse_udp(ip: &[u8], index: usize) -> Option<UdpRecord<'_>> {
    let first = *ip.first()?;
    if first >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(first & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let ip = ip.get(..total.min(ip.len()))?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = ip.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..len.max(8).min(udp.len()))?;
    Some(UdpRecord {
        index,
        src: SocketAddrV4::new(src, sport),
        dst: SocketAddrV4::new(dst, dport),
        payload,
    })
}

/// Writes datagrams as a classic pcap file with raw IPv4 link type, readable by tshark.
#[derive(Debug)]
pub struct PcapWriter<W: std::io::Write> {
    out: W,
    /// One record (header, IPv4, UDP, payload), reused: the tap calls this per datagram.
    scratch: Vec<u8>,
}

impl<W: std::io::Write> PcapWriter<W> {
    /// Starts a file: writes the global header.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&101u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            scratch: Vec::with_capacity(16 + 28 + 1500),
        })
    }

    /// Appends one UDP datagram at the given time (microseconds since the Unix epoch).
    ///
    /// # Errors
    /// On I/O failure.
    pub fn write_udp(
        &mut self,
        micros: u64,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let udp_len = 8 + payload.len();
        let total = 20 + udp_len;
        // Datagrams are far below 64 KiB; clamp rather than wrap if one is not.
        let len = u32::try_from(total).unwrap_or(u32::MAX);
        let rec = &mut self.scratch;
        rec.clear();
        rec.extend_from_slice(
            &u32::try_from(micros / 1_000_000)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        rec.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        let ip = rec.len();
        rec.extend_from_slice(&[0x45, 0]);
        rec.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        rec.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        rec.extend_from_slice(&src.ip().octets());
        rec.extend_from_slice(&dst.ip().octets());
        let sum = ipv4_checksum(&rec[ip..ip + 20]);
        rec[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        rec.extend_from_slice(&src.port().to_be_bytes());
        rec.extend_from_slice(&dst.port().to_be_bytes());
        rec.extend_from_slice(&u16::try_from(udp_len).unwrap_or(u16::MAX).to_be_bytes());
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(payload);
        self.out.write_all(rec)
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_captures_read_back() {
        let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9000);
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_udp(1_500_000, a, b, b"hello").unwrap();
        w.write_udp(2_000_000, b, a, &[1, 2, 3]).unwrap();
        let file = w.finish().unwrap();
        let recs = udp_records(&file).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].src, recs[0].dst, recs[0].payload),
            (a, b, &b"hello"[..])
        );
        assert_eq!(recs[1].payload, &[1, 2, 3]);
        assert_eq!(udp_records(b"nope"), Err(PcapError::BadMagic));
        assert_eq!(
            udp_records(&file[..file.len() - 1]),
            Err(PcapError::Truncated)
        );
    }
}
