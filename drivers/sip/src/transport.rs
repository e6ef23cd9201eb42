//! Transport-level rules that need no socket: Via construction with `rport` (RFC 3581), stamping
//! `received`/`rport` on incoming requests (RFC 3261 §18.2.1, RFC 3581 §4), where responses go
//! (§18.2.2, RFC 3581 §4), the UDP→TCP size rule (§18.1.1), and branch/tag generation.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rand::Rng;
use rsip::common::uri::param::{OtherParam, OtherParamValue};
use rsip::common::uri::Param;
use rsip::headers::UntypedHeader;
use rsip::Header;

use crate::msg::{self, Request, BRANCH_COOKIE};

/// Requests larger than this go over TCP when the path MTU is unknown (RFC 3261 §18.1.1:
/// "larger than 1300 bytes").
pub const UDP_SIZE_LIMIT: usize = 1300;

/// Default SIP port (RFC 3261 §19.1.2).
pub const DEFAULT_PORT: u16 = 5060;

/// The transports a trunk may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, retransmissions by the transactions.
    Udp,
    /// TCP: reliable.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (RFC 3261 §17: no retransmission timers).
    #[must_use]
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    fn rsip(self) -> rsip::Transport {
        match self {
            Transport::Udp => rsip::Transport::Udp,
            Transport::Tcp => rsip::Transport::Tcp,
            Transport::Tls => rsip::Transport::Tls,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// Where a message goes (or came from): transport and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// The peer's address.
    pub addr: SocketAddr,
}

/// A fresh RFC 3261 branch: the magic cookie and 64 random bits (§8.1.1.7).
pub fn new_branch(rng: &mut impl Rng) -> String {
    format!("{BRANCH_COOKIE}{:016x}", rng.gen::<u64>())
}

/// A fresh From/To tag: 64 random bits (§19.3 asks for at least 32).
pub fn new_tag(rng: &mut impl Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// Our Via value: `SIP/2.0/<transport> <local>;branch=<branch>;rport` (RFC 3581 §3: a client
/// that wants symmetric responses adds an empty `rport`).
#[must_use]
pub fn via_value(transport: Transport, local: SocketAddr, branch: &str) -> String {
    format!("SIP/2.0/{transport} {local};branch={branch};rport")
}

/// The size rule of RFC 3261 §18.1.1: a UDP request larger than [`UDP_SIZE_LIMIT`] bytes is sent
/// over TCP instead. Other transports are kept.
#[must_use]
pub fn choose_transport(requested: Transport, len: usize) -> Transport {
    if requested == Transport::Udp && len > UDP_SIZE_LIMIT {
        Transport::Tcp
    } else {
        requested
    }
}

/// Rewrites the transport of the top Via of `req` (after [`choose_transport`] switched it).
pub fn set_via_transport(req: &mut Request, transport: Transport) {
    let Ok(mut via) = msg::top_via(req) else {
        return;
    };
    via.transport = transport.rsip();
    replace_top_via(req, &via);
}

/// Replaces the branch of the top Via of `req` (a new transaction for a re-sent request).
pub fn set_via_branch(req: &mut Request, branch: &str) {
    let Ok(mut via) = msg::top_via(req) else {
        return;
    };
    via.params.retain(|p| !matches!(p, Param::Branch(_)));
    via.params
        .insert(0, Param::Branch(branch.to_owned().into()));
    replace_top_via(req, &via);
}

fn replace_top_via(req: &mut Request, via: &rsip::typed::Via) {
    if let Some(Header::Via(h)) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) {
        *h = rsip::headers::Via::new(via.to_string());
    }
}

/// Stamps the top Via of a received request with `received` (when the sent-by host differs from
/// the source address, §18.2.1, or always when `rport` is present, RFC 3581 §4) and fills an
/// empty `rport` with the source port.
pub fn stamp_received(req: &mut Request, source: SocketAddr) {
    let Ok(mut via) = msg::top_via(req) else {
        return;
    };
    let mut has_rport = false;
    for p in &mut via.params {
        if let Param::Other(name, value) = p {
            if name.value().eq_ignore_ascii_case("rport") {
                has_rport = true;
                *value = Some(OtherParamValue::new(source.port().to_string()));
            }
        }
    }
    let sent_by_ip = match &via.uri.host_with_port.host {
        rsip::Host::IpAddr(ip) => Some(*ip),
        rsip::Host::Domain(_) => None,
    };
    if has_rport || sent_by_ip != Some(source.ip()) {
        via.params.retain(|p| !matches!(p, Param::Received(_)));
        via.params
            .push(Param::Received(source.ip().to_string().into()));
    }
    replace_top_via(req, &via);
}

/// Where a response to a request with this top Via goes over an unreliable transport
/// (RFC 3261 §18.2.2 with RFC 3581 §4): `received` (else sent-by) as the host, `rport` (else the
/// sent-by port, else 5060) as the port. `None` if the host is a name without `received`
/// (resolving it is the shell's job).
#[must_use]
pub fn response_addr(via: &rsip::typed::Via) -> Option<SocketAddr> {
    let received: Option<IpAddr> = via.received().ok().flatten();
    let host = match (&via.uri.host_with_port.host, received) {
        (_, Some(ip)) => ip,
        (rsip::Host::IpAddr(ip), None) => *ip,
        (rsip::Host::Domain(_), None) => return None,
    };
    let rport = via.params.iter().find_map(|p| match p {
        Param::Other(name, Some(value)) if name.value().eq_ignore_ascii_case("rport") => {
            value.value().parse::<u16>().ok()
        }
        _ => None,
    });
    let port = rport
        .or_else(|| via.uri.host_with_port.port.map(u16::from))
        .unwrap_or(DEFAULT_PORT);
    Some(SocketAddr::new(host, port))
}

/// Whether a Via parameter list carries an `rport` (valued or not).
#[must_use]
pub fn has_rport(via: &rsip::typed::Via) -> bool {
    via.params
        .iter()
        .any(|p| matches!(p, Param::Other(n, _) if n.value().eq_ignore_ascii_case("rport")))
}

/// Builds an `rport` parameter (used by tests and by the UAC when it builds a Via by hand).
#[must_use]
pub fn rport_param() -> Param {
    Param::Other(OtherParam::new("rport"), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SipMessage;
    use rand::{rngs::SmallRng, SeedableRng};

    fn request(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n\
Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match msg::parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn rfc3581_example_rport_and_received() {
        // RFC 3581 §4 example: client 10.1.1.1:4540 behind a NAT seen as 192.0.2.1:9988.
        let mut r = request("SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bKkjshdyff;rport");
        stamp_received(&mut r, "192.0.2.1:9988".parse().unwrap());
        let via = msg::top_via(&r).unwrap();
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bKkjshdyff;rport=9988;received=192.0.2.1"
        );
        assert_eq!(response_addr(&via), Some("192.0.2.1:9988".parse().unwrap()));
    }

    #[test]
    fn received_without_rport_keeps_sent_by_port() {
        let mut r = request("SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bKx");
        stamp_received(&mut r, "192.0.2.1:9988".parse().unwrap());
        let via = msg::top_via(&r).unwrap();
        assert_eq!(via.received().unwrap(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(response_addr(&via), Some("192.0.2.1:4540".parse().unwrap()));
        // Same host: no received added; port defaults to 5060 when absent.
        let mut r = request("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKy");
        stamp_received(&mut r, "192.0.2.7:5060".parse().unwrap());
        let via = msg::top_via(&r).unwrap();
        assert_eq!(via.received().unwrap(), None);
        assert_eq!(response_addr(&via), Some("192.0.2.7:5060".parse().unwrap()));
        // A domain without received cannot be answered without DNS.
        let via = msg::top_via(&request("SIP/2.0/UDP pc.example.com;branch=z9hG4bKz")).unwrap();
        assert_eq!(response_addr(&via), None);
    }

    #[test]
    fn size_rule_switches_large_udp_requests_to_tcp() {
        assert_eq!(choose_transport(Transport::Udp, 1300), Transport::Udp);
        assert_eq!(choose_transport(Transport::Udp, 1301), Transport::Tcp);
        assert_eq!(choose_transport(Transport::Tls, 5000), Transport::Tls);
        let mut r = request("SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bKx;rport");
        set_via_transport(&mut r, Transport::Tcp);
        assert!(msg::top_via(&r)
            .unwrap()
            .to_string()
            .starts_with("SIP/2.0/TCP 10.1.1.1:4540"));
    }

    #[test]
    fn branches_and_tags_are_seeded_and_distinct() {
        let mut a = SmallRng::seed_from_u64(7);
        let mut b = SmallRng::seed_from_u64(7);
        let x = new_branch(&mut a);
        assert!(x.starts_with("z9hG4bK") && x.len() == 23);
        assert_eq!(x, new_branch(&mut b), "same seed, same branch");
        assert_ne!(new_branch(&mut a), x);
        assert_eq!(new_tag(&mut a).len(), 16);
        let via = via_value(Transport::Udp, "192.0.2.1:5060".parse().unwrap(), &x);
        let r = request(&via);
        assert!(has_rport(&msg::top_via(&r).unwrap()));
        assert_eq!(msg::branch(&r).unwrap(), Some(x));
    }
}
