//! Who the client is, behind reverse proxies: with `http.trusted_proxies` set, and the TCP peer
//! one of them, the client is the right-most address of the configured forwarded header
//! (`X-Forwarded-For` or RFC 7239 `Forwarded`) that is not a trusted proxy. Each proxy appends
//! the address it received from, so everything to the left of the first untrusted hop was
//! written by the client and proves nothing. Without the setting, or from a peer that is not
//! trusted, forwarded headers are ignored and the peer is the client.
//!
//! Limits and lockouts count per [`bucket`]: an IPv4 address, or an IPv6 /64 (one host
//! usually holds a whole /64, so counting single IPv6 addresses would count nothing).

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::config::ForwardedHeader;

/// The most forwarded hops looked at; a longer chain is cut to its right-most hops.
const MAX_HOPS: usize = 32;

/// The client's address for `req` under the server's proxy settings.
pub fn of(req: &HttpRequest, trusted: &[IpNet], header: ForwardedHeader) -> Option<IpAddr> {
    resolve(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        trusted,
        header,
    )
}

/// [`of`], on plain values.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_hops(headers, header);
    // Right to left: the first hop that is not one of our proxies is the client. A hop that
    // does not parse ends the walk: nothing to its left can be believed either.
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        match hop {
            Some(ip) => {
                client = canonical(*ip);
                if !is_trusted(&client) {
                    break;
                }
            }
            None => break,
        }
    }
    Some(client)
}

/// The hops of the configured header, left to right (`None` for a hop that is not an address:
/// `unknown`, an obfuscated RFC 7239 identifier, garbage). Repeated headers are one list.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let mut hops = Vec::new();
    for value in headers.get_all(name) {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let element = element.trim();
            if element.is_empty() {
                continue;
            }
            hops.push(match header {
                ForwardedHeader::XForwardedFor => parse_node(element),
                ForwardedHeader::Forwarded => element
                    .split(';')
                    .find_map(|pair| {
                        let (k, v) = pair.trim().split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
                    })
                    .and_then(|v| parse_node(v.trim_matches('"'))),
            });
        }
    }
    hops
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, _port) = rest.split_once(']')?;
        return inside.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are the IPv4 client they stand for.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The unit a per-client limit counts: the IPv4 address, or the IPv6 /64.
pub fn bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|n| n.parse().unwrap_or_else(|e| panic!("{n}: {e}")))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(
            resolve(Some(ip("10.0.0.2")), &h, &[], XFF),
            Some(ip("10.0.0.2"))
        );
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(Some(ip("198.51.100.1")), &h, &trusted, XFF),
            Some(ip("198.51.100.1")),
            "a peer that is not a trusted proxy cannot forward"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.0/24"]);
        // The client wrote "1.2.3.4"; our two proxies appended what they saw.
        let h = headers("x-forwarded-for", &["1.2.3.4, 203.0.113.9, 10.1.1.1"]);
        assert_eq!(
            resolve(Some(ip("192.168.1.5")), &h, &trusted, XFF),
            Some(ip("203.0.113.9"))
        );
        // Repeated headers are one list, in order.
        let h = headers("x-forwarded-for", &["1.2.3.4", "203.0.113.9, 10.1.1.1"]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted, XFF),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_chain_of_only_proxies_gives_the_left_most() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted, XFF),
            Some(ip("10.9.9.9"))
        );
        let none = HeaderMap::new();
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &none, &trusted, XFF),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn a_hop_that_is_not_an_address_ends_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", &["1.2.3.4, garbage, 10.1.1.1"]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted, XFF),
            Some(ip("10.1.1.1"))
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers("forwarded", &["for=203.0.113.9"]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &h, &trusted, XFF),
            Some(ip("127.0.0.1"))
        );
        let fwd = ForwardedHeader::Forwarded;
        let h = headers(
            "forwarded",
            &["for=1.2.3.4;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"],
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &h, &trusted, fwd),
            Some(ip("2001:db8:cafe::17"))
        );
        let h = headers("forwarded", &["for=1.2.3.4, for=_hidden"]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &h, &trusted, fwd),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn addresses_with_ports_and_mapped_ipv4_parse() {
        let trusted = nets(&["10.0.0.0/8"]);
        for hop in [
            "203.0.113.9:5555",
            "[::ffff:203.0.113.9]",
            "::ffff:203.0.113.9",
        ] {
            let h = headers("x-forwarded-for", &[hop]);
            assert_eq!(
                resolve(Some(ip("10.0.0.1")), &h, &trusted, XFF),
                Some(ip("203.0.113.9")),
                "{hop}"
            );
        }
        assert_eq!(
            resolve(
                Some(ip("::ffff:10.0.0.1")),
                &headers("x-forwarded-for", &["1.1.1.1"]),
                &trusted,
                XFF
            ),
            Some(ip("1.1.1.1")),
            "a mapped peer is the IPv4 proxy"
        );
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            bucket(ip("2001:db8:1:2:bbbb::9")),
            bucket(ip("2001:db8:1:2::1"))
        );
        assert_ne!(bucket(ip("2001:db8:1:3::1")), bucket(ip("2001:db8:1:2::1")));
        assert_eq!(bucket(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(bucket(ip("::ffff:192.0.2.7")), "192.0.2.7");
    }
}
