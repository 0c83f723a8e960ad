//! The client's address: the one function, [`client_address`], that says who sent a request.
//! Lockout, named locations, the sign-in log, the block page and audit entries all see what it
//! returns (through [`crate::middleware::RequestMeta`]).
//!
//! The peer of the TCP connection is the client, unless the peer is one of the configured
//! trusted proxies; only then are `X-Forwarded-For` and `Forwarded` read, and only as far as
//! the proxies vouch for them. Every proxy appends the address it saw to the end of the list,
//! so the list is walked from the right past trusted proxies, and the first address that is
//! not one is the client. Anything to the left of it was written by that client and could say
//! anything.
//!
//! What it must never do: believe a header from a peer that is not a trusted proxy, or take the
//! leftmost address of a list (whoever sent the request chose it).

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed. Empty by default: then the peer is always
/// the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: impl IntoIterator<Item = IpNet>) -> TrustedProxies {
        TrustedProxies(ranges.into_iter().collect())
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|range| range.contains(&address))
    }
}

/// Who sent the request: `peer` (the TCP peer), or, when the peer is a trusted proxy, the
/// rightmost address in the forwarding headers that is not a trusted proxy.
///
/// `X-Forwarded-For` is read when present, `Forwarded` (RFC 7239, its `for=` parameters) only
/// when it is not: the de facto header is what nearly every proxy writes, and one the proxy
/// does not write is the client's own text. A proxy that writes only `Forwarded` must therefore
/// drop any `X-Forwarded-For` a client sends.
///
/// An entry that is not an address (`unknown`, an obfuscated `_name`, garbage) ends the walk:
/// the proxy that wrote it is the last hop anyone vouches for, so its address is returned.
/// Addresses come back in canonical form (an IPv4-mapped IPv6 address as IPv4), so the same
/// client is the same address on a dual-stack listener.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.trusts(peer) {
        return peer;
    }
    let hops = if headers.contains_key("x-forwarded-for") {
        forwarded_for(headers)
    } else {
        forwarded(headers)
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(address) = hop else {
            break;
        };
        client = *address;
        if !trusted.trusts(client) {
            break;
        }
    }
    client
}

/// The entries of every `X-Forwarded-For` line, in order; `None` for one that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| {
            // A line that is not text cannot be read as addresses; it stands for one unknown hop.
            match line.to_str() {
                Ok(text) => text.split(',').map(parse_node).collect::<Vec<_>>(),
                Err(_) => vec![None],
            }
        })
        .collect()
}

/// The `for=` node of every element of every `Forwarded` line, in order; `None` for an element
/// without one, or whose node is not an address.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|line| match line.to_str() {
            Ok(text) => text
                .split(',')
                .map(|element| {
                    element.split(';').find_map(|pair| {
                        let (name, value) = pair.split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_node(value))
                            .flatten()
                    })
                })
                .collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// One node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, any of them in quotes (RFC 7239 quotes those with a colon).
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"').trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _port) = rest.split_once(']')?;
        return inside.parse::<IpAddr>().ok().map(|a| a.to_canonical());
    }
    // An IPv4 address with a port; an IPv6 one would have parsed above or been bracketed.
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(
            client_address(ip("192.0.2.7"), &h, &TrustedProxies::default()),
            ip("192.0.2.7")
        );
        assert_eq!(
            client_address(ip("192.0.2.7"), &h, &proxies(&["10.0.0.0/8"])),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_address_wins() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_address(peer, &h, &trusted), ip("203.0.113.9"));
        // Several lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9:5555"),
        ]);
        assert_eq!(client_address(peer, &h, &trusted), ip("203.0.113.9"));
        // Every hop a trusted proxy: the furthest one is the client.
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.2")]);
        assert_eq!(client_address(peer, &h, &trusted), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(client_address(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_at_the_proxy_that_wrote_it() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.2"));
        let h = headers(&[("x-forwarded-for", "")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            "for=198.51.100.1;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2",
        )]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
        let h = headers(&[("forwarded", "for=_hidden, for=\"192.0.2.60:8080\"")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.9")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("::ffff:192.0.2.1"), &HeaderMap::new(), &trusted),
            ip("192.0.2.1")
        );
    }
}
