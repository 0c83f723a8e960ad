//! `portcullis healthcheck`: asks the local server's `/readyz` whether it is ready, for
//! container `HEALTHCHECK`s and service managers on images that carry no HTTP client.
//!
//! Plain HTTP/1.1 over a TCP connection with a deadline: the server listens without TLS (TLS is
//! the reverse proxy's), so nothing more is needed. Exit 0 when `/readyz` answers 200, 1
//! otherwise.
//!
//! Must never: follow a redirect or talk to anything but the address it was given.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The address to ask: `listen`, with an unspecified address (`0.0.0.0`, `::`) read as the
/// loopback of the same family, which reaches the same socket.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

/// Why the server is not healthy.
#[derive(Debug)]
pub enum Unhealthy {
    /// Nothing answered at the address.
    Unreachable(String),
    /// It answered with another status than 200.
    Status(String),
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::Unreachable(m) => write!(f, "not reachable: {m}"),
            Unhealthy::Status(line) => write!(f, "not ready: {line}"),
        }
    }
}

/// `GET /readyz` at `host:port` (a name or an address).
pub fn check(address: &str, timeout: Duration) -> Result<(), Unhealthy> {
    let unreachable = |e: std::io::Error| Unhealthy::Unreachable(format!("{address}: {e}"));
    let target = address
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| Unhealthy::Unreachable(format!("{address}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(unreachable)?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {address}\r\nUser-Agent: portcullis-healthcheck\r\nConnection: close\r\n\r\n"
    )
    .map_err(unreachable)?;
    // The status line is all that is needed; it comes first.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => {
                read += n;
                if head[..read].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(unreachable(e)),
        }
    }
    let text = String::from_utf8_lossy(&head[..read]);
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    let status = line.split_whitespace().nth(1);
    if line.starts_with("HTTP/1.") && status == Some("200") {
        Ok(())
    } else {
        Err(Unhealthy::Status(if line.is_empty() {
            "no answer".into()
        } else {
            line
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        assert_eq!(
            local_address("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            local_address("[::]:9".parse().unwrap()),
            "[::1]:9".parse().unwrap()
        );
        assert_eq!(
            local_address("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }
}
