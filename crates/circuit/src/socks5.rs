//! SOCKS5 UDP ASSOCIATE (RFC 1928, username/password from RFC 1929), so that a debugging
//! proxy such as Hippolyzer can sit between a client and the grid.
//!
//! [`associate`] opens the TCP control connection and asks the proxy for a UDP relay; keep
//! the returned [`Association`] alive as long as the relay is used (the proxy ends the
//! association when the control connection closes), and put
//! [`Association::relay_addr`] in [`EndpointConfig::socks5_relay`](crate::EndpointConfig::socks5_relay).
//! The endpoint then wraps every outgoing datagram in the RFC 1928 UDP request header and
//! unwraps what the relay sends back.
//!
//! ```no_run
//! use opensim_circuit::{Endpoint, EndpointConfig, socks5};
//!
//! smol::block_on(async {
//!     let association = socks5::associate("127.0.0.1:9061".parse()?, None).await?;
//!     let mut config = EndpointConfig::client();
//!     config.socks5_relay = Some(association.relay_addr());
//!     let endpoint = Endpoint::bind("0.0.0.0:0".parse()?, config)?;
//!     let circuit = endpoint.connect("203.0.113.5:9000".parse()?)?;
//!     // ... use `circuit`; keep `association` alive meanwhile.
//!     # drop(circuit);
//!     endpoint.shutdown().await;
//!     drop(association);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! .unwrap();
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

/// Protocol version byte of SOCKS5.
const VERSION: u8 = 5;
/// Method: no authentication.
const METHOD_NONE: u8 = 0x00;
/// Method: username/password (RFC 1929).
const METHOD_USER_PASS: u8 = 0x02;
/// Method reply: none of the offered methods is acceptable.
const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
/// Command: UDP ASSOCIATE.
const CMD_UDP_ASSOCIATE: u8 = 0x03;
/// Address types.
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// How long the whole TCP handshake may take before [`Socks5Error::TimedOut`].
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`associate`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The TCP connection to the proxy failed.
    #[error("socks5 proxy connection: {0}")]
    Io(#[from] io::Error),
    /// The proxy answered the request with a failure code (RFC 1928 `REP`, e.g. 2 = not
    /// allowed by ruleset, 7 = command not supported).
    #[error("socks5 proxy refused UDP ASSOCIATE with code {0}")]
    Refused(u8),
    /// The proxy's bytes do not follow RFC 1928 / 1929.
    #[error("malformed socks5 reply: {0}")]
    MalformedReply(&'static str),
    /// The proxy accepted none of the offered authentication methods.
    #[error("socks5 proxy accepts none of the offered authentication methods")]
    NoAcceptableMethod,
    /// The proxy rejected the username and password.
    #[error("socks5 proxy rejected the credentials")]
    AuthRejected,
    /// A username or password longer than the 255 bytes RFC 1929 allows (API misuse).
    #[error("socks5 username or password longer than 255 bytes")]
    CredentialsTooLong,
    /// The proxy did not finish the handshake within [`HANDSHAKE_TIMEOUT`].
    #[error("socks5 handshake timed out")]
    TimedOut,
}

/// A UDP association with a SOCKS5 proxy: keeps the TCP control connection open, which keeps
/// the relay alive. Dropping it ends the association.
#[derive(Debug)]
pub struct Association {
    control: Async<TcpStream>,
    relay: SocketAddr,
}

impl Association {
    /// Where to send UDP datagrams (with the RFC 1928 header): the relay the proxy opened.
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay
    }

    /// Resolves when the proxy closes the control connection (the relay is then gone).
    /// Anything the proxy sends on it meanwhile is read and ignored.
    pub async fn closed(&self) {
        let mut buf = [0u8; 64];
        loop {
            match (&self.control).read(&mut buf).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Opens a UDP association through the SOCKS5 proxy at `proxy`, authenticating with
/// `credentials` (username, password) when given, without authentication otherwise.
///
/// A relay address of `0.0.0.0` / `::` in the proxy's reply (common: "same host as the
/// proxy") is replaced by the proxy's IP.
///
/// # Errors
/// See [`Socks5Error`]; the whole handshake is bounded by [`HANDSHAKE_TIMEOUT`].
pub async fn associate(
    proxy: SocketAddr,
    credentials: Option<(&str, &str)>,
) -> Result<Association, Socks5Error> {
    if let Some((user, pass)) = credentials
        && (user.len() > 255 || pass.len() > 255)
    {
        return Err(Socks5Error::CredentialsTooLong);
    }
    future::or(handshake(proxy, credentials), async {
        Timer::after(HANDSHAKE_TIMEOUT).await;
        Err(Socks5Error::TimedOut)
    })
    .await
}

async fn handshake(
    proxy: SocketAddr,
    credentials: Option<(&str, &str)>,
) -> Result<Association, Socks5Error> {
    let mut control = Async::<TcpStream>::connect(proxy).await?;
    // Small handshake packets; do not let Nagle hold them.
    let _ = control.get_ref().set_nodelay(true);

    let method = if credentials.is_some() {
        METHOD_USER_PASS
    } else {
        METHOD_NONE
    };
    control.write_all(&[VERSION, 1, method]).await?;
    let mut reply = [0u8; 2];
    control.read_exact(&mut reply).await?;
    if reply[0] != VERSION {
        return Err(Socks5Error::MalformedReply("method reply version is not 5"));
    }
    match reply[1] {
        m if m == method => {}
        METHOD_NONE_ACCEPTABLE => return Err(Socks5Error::NoAcceptableMethod),
        _ => {
            return Err(Socks5Error::MalformedReply(
                "proxy chose a method not offered",
            ));
        }
    }

    if let Some((user, pass)) = credentials {
        let mut msg = Vec::with_capacity(3 + user.len() + pass.len());
        msg.push(1);
        // Lengths were checked against 255 above.
        msg.push(u8::try_from(user.len()).map_err(|_| Socks5Error::CredentialsTooLong)?);
        msg.extend_from_slice(user.as_bytes());
        msg.push(u8::try_from(pass.len()).map_err(|_| Socks5Error::CredentialsTooLong)?);
        msg.extend_from_slice(pass.as_bytes());
        control.write_all(&msg).await?;
        let mut status = [0u8; 2];
        control.read_exact(&mut status).await?;
        if status[0] != 1 {
            return Err(Socks5Error::MalformedReply(
                "authentication reply version is not 1",
            ));
        }
        if status[1] != 0 {
            return Err(Socks5Error::AuthRejected);
        }
    }

    // The client's UDP source is not known here: all zeros lets the proxy take it from the
    // first datagram (RFC 1928 section 6).
    let unspecified = match proxy {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let mut request = Vec::with_capacity(22);
    request.extend_from_slice(&[VERSION, CMD_UDP_ASSOCIATE, 0]);
    put_addr(&mut request, unspecified);
    control.write_all(&request).await?;

    let mut head = [0u8; 4];
    control.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(Socks5Error::MalformedReply("reply version is not 5"));
    }
    if head[1] != 0 {
        return Err(Socks5Error::Refused(head[1]));
    }
    let ip = match head[3] {
        ATYP_IPV4 => {
            let mut a = [0u8; 4];
            control.read_exact(&mut a).await?;
            IpAddr::from(a)
        }
        ATYP_IPV6 => {
            let mut a = [0u8; 16];
            control.read_exact(&mut a).await?;
            IpAddr::from(a)
        }
        ATYP_DOMAIN => {
            return Err(Socks5Error::MalformedReply(
                "relay given as a domain name, which is not supported",
            ));
        }
        _ => return Err(Socks5Error::MalformedReply("unknown address type")),
    };
    let mut port = [0u8; 2];
    control.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    if port == 0 {
        return Err(Socks5Error::MalformedReply("relay port 0"));
    }
    let ip = if ip.is_unspecified() { proxy.ip() } else { ip };
    Ok(Association {
        control,
        relay: SocketAddr::new(ip, port),
    })
}

/// Appends ATYP, address and port.
fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Length of the UDP request header for a destination: 10 bytes for IPv4, 22 for IPv6.
#[cfg(test)]
pub(crate) fn udp_header_len(dst: SocketAddr) -> usize {
    match dst {
        SocketAddr::V4(_) => 10,
        SocketAddr::V6(_) => 22,
    }
}

/// Appends the RFC 1928 UDP request header (RSV = 0, FRAG = 0) for `dst`.
#[cfg(test)]
pub(crate) fn put_udp_header(out: &mut Vec<u8>, dst: SocketAddr) {
    let (h, n) = udp_header(dst);
    out.extend_from_slice(&h[..n]);
}

/// The RFC 1928 UDP request header for `dst` in a fixed array, and its length.
pub(crate) fn udp_header(dst: SocketAddr) -> ([u8; 22], usize) {
    let mut h = [0u8; 22];
    let n = match dst {
        SocketAddr::V4(a) => {
            h[3] = ATYP_IPV4;
            h[4..8].copy_from_slice(&a.ip().octets());
            h[8..10].copy_from_slice(&a.port().to_be_bytes());
            10
        }
        SocketAddr::V6(a) => {
            h[3] = ATYP_IPV6;
            h[4..20].copy_from_slice(&a.ip().octets());
            h[20..22].copy_from_slice(&a.port().to_be_bytes());
            22
        }
    };
    (h, n)
}

/// Parses the UDP request header of a datagram from the relay: the address it names and where
/// the payload starts. `None` for fragments (FRAG != 0), domain names, unknown address types
/// and truncated headers. RSV is not checked.
pub(crate) fn parse_udp_header(datagram: &[u8]) -> Option<(SocketAddr, usize)> {
    let (&[_, _, frag, atyp], rest) = datagram.split_first_chunk::<4>()?;
    if frag != 0 {
        return None;
    }
    let (ip, rest, used) = match atyp {
        ATYP_IPV4 => {
            let (a, rest) = rest.split_first_chunk::<4>()?;
            (IpAddr::from(*a), rest, 4)
        }
        ATYP_IPV6 => {
            let (a, rest) = rest.split_first_chunk::<16>()?;
            (IpAddr::from(*a), rest, 16)
        }
        _ => return None,
    };
    let (port, _) = rest.split_first_chunk::<2>()?;
    Some((SocketAddr::new(ip, u16::from_be_bytes(*port)), 4 + used + 2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
        ]
    }

    proptest! {
        #[test]
        fn udp_header_round_trips(dst in any_addr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut d = Vec::new();
            put_udp_header(&mut d, dst);
            prop_assert_eq!(d.len(), udp_header_len(dst));
            d.extend_from_slice(&payload);
            let (addr, at) = parse_udp_header(&d).unwrap();
            prop_assert_eq!(addr, dst);
            prop_assert_eq!(&d[at..], &payload[..]);
        }

        #[test]
        fn parsing_never_panics_and_stays_in_bounds(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Some((_, at)) = parse_udp_header(&d) {
                prop_assert!(at <= d.len());
            }
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let dst: SocketAddr = "10.0.0.1:9000".parse().unwrap();
        let mut d = Vec::new();
        put_udp_header(&mut d, dst);
        d.extend_from_slice(b"payload");
        // Every truncation of the header.
        for n in 0..10 {
            assert_eq!(parse_udp_header(&d[..n]), None, "{n}");
        }
        // A header with nothing after it is an empty payload, not an error.
        assert_eq!(parse_udp_header(&d[..10]), Some((dst, 10)));
        let mut frag = d.clone();
        frag[2] = 1;
        assert_eq!(parse_udp_header(&frag), None);
        let mut domain = d.clone();
        domain[3] = ATYP_DOMAIN;
        assert_eq!(parse_udp_header(&domain), None);
        let mut unknown = d;
        unknown[3] = 9;
        assert_eq!(parse_udp_header(&unknown), None);
    }
}
