//! SDP (RFC 4566) parse/print and the offer/answer model (RFC 3264) for audio: PCMU, PCMA, Opus
//! and telephone-event (RFC 4733).
//!
//! The model keeps every line it does not interpret, so printing a parsed description gives
//! back an equivalent one. [`offer`] builds our offer, [`answer`] answers a peer's offer choosing
//! codecs by our preference (RFC 3264 §6.1), and [`Session::negotiated`] reads the media
//! parameters from whichever description was accepted.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use crate::error::Error;

/// Dynamic payload type we offer for Opus.
pub const PT_OPUS: u8 = 111;
/// Dynamic payload type we offer for telephone-event.
pub const PT_TELEPHONE_EVENT: u8 = 101;

/// An audio codec this driver can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0 (RFC 3551).
    Pcmu,
    /// G.711 A-law, static payload type 8 (RFC 3551).
    Pcma,
    /// Opus, `opus/48000/2` (RFC 7587).
    Opus,
}

impl Codec {
    /// The rtpmap encoding name (RFC 3551 §6, RFC 7587).
    #[must_use]
    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    fn default_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus => PT_OPUS,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// Identifies a codec from a payload type and its rtpmap (static types need none).
    fn identify(pt: u8, rtpmap: Option<&str>) -> Option<Codec> {
        match rtpmap {
            Some(map) => {
                let mut parts = map.split('/');
                let name = parts.next()?.trim();
                let rate = parts.next().and_then(|r| r.trim().parse::<u32>().ok());
                if name.eq_ignore_ascii_case("PCMU") && rate == Some(8000) {
                    Some(Codec::Pcmu)
                } else if name.eq_ignore_ascii_case("PCMA") && rate == Some(8000) {
                    Some(Codec::Pcma)
                } else if name.eq_ignore_ascii_case("opus") && rate == Some(48000) {
                    Some(Codec::Opus)
                } else {
                    None
                }
            }
            None => match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                _ => None,
            },
        }
    }
}

/// Media direction attributes (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction an answer takes for this offered direction (RFC 3264 §6.1).
    #[must_use]
    pub fn answer(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name before the colon.
    pub name: String,
    /// The value after it, if any.
    pub value: Option<String>,
}

/// `o=` (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version, incremented on every new offer (RFC 3264 §8).
    pub session_version: u64,
    /// Unicast address of the originator.
    pub address: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`…
    pub kind: String,
    /// Transport port; 0 rejects the stream (RFC 3264 §6).
    pub port: u16,
    /// `RTP/AVP`…
    pub proto: String,
    /// Formats (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// `c=` of this section.
    pub connection: Option<IpAddr>,
    /// Other lines (`i=`, `b=`, `k=`) in order, as (type, value).
    pub other: Vec<(char, String)>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// The value of the first attribute named `name`.
    #[must_use]
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_deref())
    }

    /// The rtpmap value for payload type `pt`.
    #[must_use]
    pub fn rtpmap(&self, pt: u8) -> Option<&str> {
        self.pt_attr("rtpmap", pt)
    }

    /// The fmtp value for payload type `pt`.
    #[must_use]
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.pt_attr("fmtp", pt)
    }

    fn pt_attr(&self, name: &str, pt: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name == name)
            .find_map(|a| {
                let v = a.value.as_deref()?;
                let (p, rest) = v.split_once(' ')?;
                (p.parse::<u8>().ok()? == pt).then_some(rest.trim())
            })
    }

    /// The direction attribute (sendrecv when absent).
    #[must_use]
    pub fn direction(&self) -> Direction {
        self.attributes
            .iter()
            .find_map(|a| {
                if a.value.is_none() {
                    Direction::parse(&a.name)
                } else {
                    None
                }
            })
            .unwrap_or(Direction::SendRecv)
    }

    fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub name: String,
    /// Session-level `c=`.
    pub connection: Option<IpAddr>,
    /// Other session lines (`i u e p b t r z k`) in order, as (type, value).
    pub other: Vec<(char, String)>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections.
    pub media: Vec<Media>,
}

fn sdp_err(what: &str, line: &str) -> Error {
    Error::Sdp(format!(
        "{what}: {:?}",
        line.chars().take(80).collect::<String>()
    ))
}

fn parse_connection(v: &str) -> Result<IpAddr, Error> {
    let mut p = v.split_whitespace();
    match (p.next(), p.next(), p.next()) {
        (Some("IN"), Some("IP4" | "IP6"), Some(addr)) => {
            // Multicast TTL/count suffixes are not for us.
            addr.split('/')
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|_| sdp_err("bad c= address", v))
        }
        _ => Err(sdp_err("bad c= line", v)),
    }
}

fn parse_attr(v: &str) -> Attribute {
    match v.split_once(':') {
        Some((n, val)) => Attribute {
            name: n.to_owned(),
            value: Some(val.to_owned()),
        },
        None => Attribute {
            name: v.to_owned(),
            value: None,
        },
    }
}

impl Session {
    /// Parses a description (CRLF or LF line ends).
    ///
    /// # Errors
    /// [`Error::Sdp`] naming the offending line.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty());
        if lines.next() != Some("v=0") {
            return Err(Error::Sdp("first line is not v=0".into()));
        }
        let mut origin = None;
        let mut name = None;
        let mut s = Session {
            origin: Origin {
                username: String::new(),
                session_id: 0,
                session_version: 0,
                address: String::new(),
            },
            name: String::new(),
            connection: None,
            other: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        for line in lines {
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(sdp_err("bad line", line));
            }
            let (t, v) = (b[0] as char, &line[2..]);
            match (t, s.media.last_mut()) {
                ('m', _) => {
                    let mut p = v.split_whitespace();
                    let kind = p.next().ok_or_else(|| sdp_err("bad m= line", line))?;
                    let port = p
                        .next()
                        .and_then(|p| p.split('/').next()?.parse::<u16>().ok())
                        .ok_or_else(|| sdp_err("bad m= port", line))?;
                    let proto = p.next().ok_or_else(|| sdp_err("bad m= proto", line))?;
                    s.media.push(Media {
                        kind: kind.to_owned(),
                        port,
                        proto: proto.to_owned(),
                        formats: p.map(str::to_owned).collect(),
                        connection: None,
                        other: Vec::new(),
                        attributes: Vec::new(),
                    });
                }
                ('o', None) => {
                    let p: Vec<&str> = v.split_whitespace().collect();
                    let [user, id, ver, "IN", _, addr] = p[..] else {
                        return Err(sdp_err("bad o= line", line));
                    };
                    origin = Some(Origin {
                        username: user.to_owned(),
                        session_id: id.parse().map_err(|_| sdp_err("bad o= id", line))?,
                        session_version: ver
                            .parse()
                            .map_err(|_| sdp_err("bad o= version", line))?,
                        address: addr.to_owned(),
                    });
                }
                ('s', None) => name = Some(v.to_owned()),
                ('c', None) => s.connection = Some(parse_connection(v)?),
                ('c', Some(m)) => m.connection = Some(parse_connection(v)?),
                ('a', None) => s.attributes.push(parse_attr(v)),
                ('a', Some(m)) => m.attributes.push(parse_attr(v)),
                ('i' | 'b' | 'k', Some(m)) => m.other.push((t, v.to_owned())),
                ('i' | 'u' | 'e' | 'p' | 'b' | 't' | 'r' | 'z' | 'k', None) => {
                    s.other.push((t, v.to_owned()));
                }
                _ => return Err(sdp_err("unexpected line", line)),
            }
        }
        // Keep the RFC 4566 §5 order so that printing and re-parsing give the same model.
        s.other.sort_by_key(|(t, _)| "iuepcbtrzka".find(*t));
        for m in &mut s.media {
            m.other.sort_by_key(|(t, _)| *t != 'i');
        }
        s.origin = origin.ok_or_else(|| Error::Sdp("no o= line".into()))?;
        s.name = name.ok_or_else(|| Error::Sdp("no s= line".into()))?;
        if !s.other.iter().any(|(t, _)| *t == 't') {
            return Err(Error::Sdp("no t= line".into()));
        }
        for m in &s.media {
            if m.port != 0 && m.connection.is_none() && s.connection.is_none() {
                return Err(Error::Sdp(format!(
                    "m={} {} has no c= line",
                    m.kind, m.port
                )));
            }
        }
        Ok(s)
    }

    /// The address media for `m` is sent to.
    #[must_use]
    pub fn media_addr(&self, m: &Media) -> Option<SocketAddr> {
        Some(SocketAddr::new(m.connection.or(self.connection)?, m.port))
    }

    /// The audio parameters of an accepted description: the first audio stream with a non-zero
    /// port, its first codec we know (the peer's preference, RFC 3264 §5.1), telephone-event.
    ///
    /// # Errors
    /// [`Error::Sdp`] if no audio stream with a known codec is active.
    pub fn negotiated(&self) -> Result<Negotiated, Error> {
        for m in self
            .media
            .iter()
            .filter(|m| m.kind == "audio" && m.port != 0)
        {
            let Some((pt, codec)) = m
                .payload_types()
                .find_map(|pt| Codec::identify(pt, m.rtpmap(pt)).map(|c| (pt, c)))
            else {
                continue;
            };
            let dtmf_pt = m.payload_types().find(|pt| {
                m.rtpmap(*pt)
                    .is_some_and(|r| r.to_ascii_lowercase().starts_with("telephone-event/8000"))
            });
            return Ok(Negotiated {
                remote: self
                    .media_addr(m)
                    .ok_or_else(|| Error::Sdp("no c= for audio".into()))?,
                codec,
                pt,
                dtmf_pt,
                ptime: m.attr("ptime").and_then(|p| p.trim().parse().ok()),
                direction: m.direction(),
            });
        }
        Err(Error::Sdp(
            "no active audio stream with a known codec".into(),
        ))
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        let family = if o.address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        write!(
            f,
            "v=0\r\no={} {} {} IN {family} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.address, self.name
        )?;
        let order = |t: char| "iuepcbtrzka".find(t).unwrap_or(usize::MAX);
        let c_pos = order('c');
        for (t, v) in self.other.iter().filter(|(t, _)| order(*t) < c_pos) {
            write!(f, "{t}={v}\r\n")?;
        }
        if let Some(c) = self.connection {
            write_c(f, c)?;
        }
        for (t, v) in self.other.iter().filter(|(t, _)| order(*t) > c_pos) {
            write!(f, "{t}={v}\r\n")?;
        }
        for a in &self.attributes {
            write_a(f, a)?;
        }
        for m in &self.media {
            write!(f, "m={} {} {}", m.kind, m.port, m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            for (t, v) in m.other.iter().filter(|(t, _)| *t == 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            if let Some(c) = m.connection {
                write_c(f, c)?;
            }
            for (t, v) in m.other.iter().filter(|(t, _)| *t != 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            for a in &m.attributes {
                write_a(f, a)?;
            }
        }
        Ok(())
    }
}

fn write_c(f: &mut fmt::Formatter<'_>, c: IpAddr) -> fmt::Result {
    let family = if c.is_ipv6() { "IP6" } else { "IP4" };
    write!(f, "c=IN {family} {c}\r\n")
}

fn write_a(f: &mut fmt::Formatter<'_>, a: &Attribute) -> fmt::Result {
    match &a.value {
        Some(v) => write!(f, "a={}:{v}\r\n", a.name),
        None => write!(f, "a={}\r\n", a.name),
    }
}

/// Media parameters agreed by offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// The codec to send.
    pub codec: Codec,
    /// Its payload type.
    pub pt: u8,
    /// The telephone-event payload type, if both sides have it (else DTMF goes in-band).
    pub dtmf_pt: Option<u8>,
    /// `a=ptime`, if given.
    pub ptime: Option<u32>,
    /// The direction of the described stream.
    pub direction: Direction,
}

/// What we offer and accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Our RTP address.
    pub local: SocketAddr,
    /// Codecs in order of preference.
    pub codecs: Vec<Codec>,
    /// Whether to offer/accept telephone-event (RFC 4733).
    pub telephone_event: bool,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
}

fn session_shell(cfg: &MediaConfig) -> Session {
    Session {
        origin: Origin {
            username: "outcall".into(),
            session_id: cfg.session_id,
            session_version: cfg.session_version,
            address: cfg.local.ip().to_string(),
        },
        name: "outcall".into(),
        connection: Some(cfg.local.ip()),
        other: vec![('t', "0 0".into())],
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

fn push_codec(m: &mut Media, codec: Codec, pt: u8) {
    m.formats.push(pt.to_string());
    m.attributes.push(Attribute {
        name: "rtpmap".into(),
        value: Some(format!("{pt} {}", codec.rtpmap())),
    });
    if codec == Codec::Opus {
        m.attributes.push(Attribute {
            name: "fmtp".into(),
            value: Some(format!("{pt} useinbandfec=1")),
        });
    }
}

fn push_dtmf(m: &mut Media, pt: u8) {
    m.formats.push(pt.to_string());
    m.attributes.push(Attribute {
        name: "rtpmap".into(),
        value: Some(format!("{pt} telephone-event/8000")),
    });
    m.attributes.push(Attribute {
        name: "fmtp".into(),
        value: Some(format!("{pt} 0-16")),
    });
}

/// Our offer: one audio stream with the configured codecs, telephone-event, ptime 20.
#[must_use]
pub fn offer(cfg: &MediaConfig, direction: Direction) -> Session {
    let mut s = session_shell(cfg);
    let mut m = Media {
        kind: "audio".into(),
        port: cfg.local.port(),
        proto: "RTP/AVP".into(),
        formats: Vec::new(),
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    };
    for c in &cfg.codecs {
        push_codec(&mut m, *c, c.default_pt());
    }
    if cfg.telephone_event {
        push_dtmf(&mut m, PT_TELEPHONE_EVENT);
    }
    m.attributes.push(Attribute {
        name: "ptime".into(),
        value: Some("20".into()),
    });
    m.attributes.push(Attribute {
        name: direction.name().into(),
        value: None,
    });
    s.media.push(m);
    s
}

/// Answers `offer` (RFC 3264 §6): the first acceptable audio stream gets our codecs that the
/// offer has, in *our* order of preference but with the offer's payload numbers, plus
/// telephone-event if offered; every other stream is rejected with port 0.
///
/// # Errors
/// [`Error::Sdp`] if no audio stream has a codec we support (the TU answers 488).
pub fn answer(offer: &Session, cfg: &MediaConfig) -> Result<Session, Error> {
    let mut s = session_shell(cfg);
    let mut accepted = false;
    for om in &offer.media {
        let rejected = Media {
            kind: om.kind.clone(),
            port: 0,
            proto: om.proto.clone(),
            formats: om.formats.clone(),
            connection: None,
            other: Vec::new(),
            attributes: Vec::new(),
        };
        if accepted || om.kind != "audio" || om.port == 0 || om.proto != "RTP/AVP" {
            s.media.push(rejected);
            continue;
        }
        let offered: Vec<(u8, Codec)> = om
            .payload_types()
            .filter_map(|pt| Codec::identify(pt, om.rtpmap(pt)).map(|c| (pt, c)))
            .collect();
        let mut m = Media {
            port: cfg.local.port(),
            formats: Vec::new(),
            ..rejected.clone()
        };
        for ours in &cfg.codecs {
            if let Some((pt, c)) = offered.iter().find(|(_, c)| c == ours) {
                push_codec(&mut m, *c, *pt);
            }
        }
        if m.formats.is_empty() {
            s.media.push(rejected);
            continue;
        }
        if cfg.telephone_event {
            let te = om.payload_types().find(|pt| {
                om.rtpmap(*pt)
                    .is_some_and(|r| r.to_ascii_lowercase().starts_with("telephone-event/8000"))
            });
            if let Some(pt) = te {
                push_dtmf(&mut m, pt);
            }
        }
        if let Some(p) = om.attr("ptime") {
            m.attributes.push(Attribute {
                name: "ptime".into(),
                value: Some(p.to_owned()),
            });
        }
        m.attributes.push(Attribute {
            name: om.direction().answer().name().into(),
            value: None,
        });
        s.media.push(m);
        accepted = true;
    }
    if accepted {
        Ok(s)
    } else {
        Err(Error::Sdp(
            "no audio stream with a supported codec in the offer".into(),
        ))
    }
}

/// Appends `text` with CRLF line ends: helper for tests and the UAC.
#[must_use]
pub fn to_body(s: &Session) -> Vec<u8> {
    let mut out = String::new();
    let _ = write!(out, "{s}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// RFC 4317 §2.1-style offer from a peer: PCMU, PCMA, a codec we lack, telephone-event.
    const PEER_OFFER: &str = "v=0\r\n\
o=carol 28908764872 28908764872 IN IP4 100.3.6.6\r\n\
s=-\r\n\
t=0 0\r\n\
c=IN IP4 192.0.2.4\r\n\
m=audio 49170 RTP/AVP 0 8 97 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:97 iLBC/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendonly\r\n\
m=video 51372 RTP/AVP 31 32\r\n\
a=rtpmap:31 H261/90000\r\n";

    fn cfg(codecs: Vec<Codec>) -> MediaConfig {
        MediaConfig {
            local: "192.0.2.10:20000".parse().unwrap(),
            codecs,
            telephone_event: true,
            session_id: 42,
            session_version: 1,
        }
    }

    #[test]
    fn parse_print_round_trip() {
        let s = Session::parse(PEER_OFFER).unwrap();
        assert_eq!(s.media.len(), 2);
        assert_eq!(s.origin.session_id, 28_908_764_872);
        assert_eq!(s.media[0].rtpmap(101), Some("telephone-event/8000"));
        assert_eq!(s.media[0].fmtp(101), Some("0-15"));
        assert_eq!(s.media[0].direction(), Direction::SendOnly);
        // t= printed before c= in RFC order; re-parse gives the same model.
        let printed = s.to_string();
        assert_eq!(Session::parse(&printed).unwrap(), s);
        let canonical = PEER_OFFER.replace(
            "t=0 0\r\nc=IN IP4 192.0.2.4\r\n",
            "c=IN IP4 192.0.2.4\r\nt=0 0\r\n",
        );
        assert_eq!(printed, canonical);
        let ours = offer(
            &cfg(vec![Codec::Opus, Codec::Pcmu, Codec::Pcma]),
            Direction::SendRecv,
        );
        assert_eq!(Session::parse(&ours.to_string()).unwrap(), ours);
    }

    #[test]
    fn our_offer_lists_codecs_in_preference_order() {
        let s = offer(
            &cfg(vec![Codec::Pcma, Codec::Opus, Codec::Pcmu]),
            Direction::SendRecv,
        );
        let text = s.to_string();
        assert!(
            text.contains("m=audio 20000 RTP/AVP 8 111 0 101\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(text.contains("a=fmtp:101 0-16\r\n"));
        assert!(text.contains("c=IN IP4 192.0.2.10\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
    }

    #[test]
    fn answer_selects_by_our_preference_and_rejects_others() {
        let o = Session::parse(PEER_OFFER).unwrap();
        let a = answer(&o, &cfg(vec![Codec::Opus, Codec::Pcma, Codec::Pcmu])).unwrap();
        assert_eq!(a.media.len(), 2, "one m= per offered m= (§6)");
        assert_eq!(
            a.media[0].formats,
            ["8", "0", "101"],
            "opus not offered; PCMA first"
        );
        assert_eq!(
            a.media[0].direction(),
            Direction::RecvOnly,
            "sendonly answered recvonly"
        );
        assert_eq!(a.media[0].attr("ptime"), Some("20"));
        assert_eq!(a.media[1].port, 0, "video rejected");
        let n = a.negotiated().unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
        // The offerer reads the answer: remote is our address.
        assert_eq!(n.remote, "192.0.2.10:20000".parse().unwrap());
        // From the offer side, the peer's preferred codec is PCMU.
        assert_eq!(o.negotiated().unwrap().codec, Codec::Pcmu);
        assert_eq!(
            o.negotiated().unwrap().remote,
            "192.0.2.4:49170".parse().unwrap()
        );
    }

    #[test]
    fn answer_keeps_offer_dynamic_payload_numbers() {
        let o = Session::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 96 100\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:100 telephone-event/8000\r\n",
        )
        .unwrap();
        let a = answer(&o, &cfg(vec![Codec::Pcmu, Codec::Opus])).unwrap();
        assert_eq!(a.media[0].formats, ["96", "100"]);
        assert_eq!(a.media[0].rtpmap(96), Some("opus/48000/2"));
        let n = a.negotiated().unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Opus, 96, Some(100)));
    }

    #[test]
    fn no_common_codec_is_an_error_and_no_dtmf_means_in_band() {
        let o = Session::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n",
        )
        .unwrap();
        assert!(answer(&o, &cfg(vec![Codec::Pcmu])).is_err());
        let o = Session::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        )
        .unwrap();
        let n = answer(&o, &cfg(vec![Codec::Pcmu]))
            .unwrap()
            .negotiated()
            .unwrap();
        assert_eq!(n.dtmf_pt, None);
        assert_eq!(n.codec, Codec::Pcmu);
    }

    #[test]
    fn malformed_sdp_is_a_typed_error() {
        for bad in [
            "",
            "v=1\r\n",
            "v=0\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- x 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nc=IN IP4 nope\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nX=1\r\n",
        ] {
            assert!(matches!(Session::parse(bad), Err(Error::Sdp(_))), "{bad:?}");
        }
    }

    #[test]
    fn mutated_sdp_never_panics() {
        let mut rng = SmallRng::seed_from_u64(4566);
        let alphabet = b"\r\n=: /0123456789amcvtIP";
        let c = cfg(vec![Codec::Opus, Codec::Pcmu]);
        for _ in 0..5_000 {
            let mut m = PEER_OFFER.as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..5) {
                let at = rng.gen_range(0..m.len());
                match rng.gen_range(0..3) {
                    0 => m[at] = alphabet[rng.gen_range(0..alphabet.len())],
                    1 => {
                        m.remove(at);
                    }
                    _ => m.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                }
            }
            let Ok(text) = String::from_utf8(m) else {
                continue;
            };
            if let Ok(s) = Session::parse(&text) {
                assert_eq!(Session::parse(&s.to_string()).as_ref(), Ok(&s), "{text:?}");
                let _ = answer(&s, &c).map(|a| a.negotiated());
            }
        }
    }
}
