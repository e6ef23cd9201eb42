//! SIP messages: the glue between datagrams and [`rsip`] types.
//!
//! rsip 0.4 (MIT) parses and prints the messages. It does not know compact header names
//! (RFC 3261 §7.3.3), folded header lines (§7.3.1), comma-joined Via values (§7.3), Content-Length
//! framing (§18.3) or methods outside its list, so [`parse`] first *normalises* the header section
//! with a small line scanner, then hands the result to rsip and checks the mandatory headers
//! (§8.1.1). Every failure is a typed [`ParseError`], never a panic (see the mutation test below).
//! [`salvage_response`] builds a 400/501 from the raw lines of a request rsip refused, so a bad
//! peer gets its RFC answer (§8.2, §21.4.1).

use std::convert::TryFrom;

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HeadersExt;
use rsip::prelude::HasHeaders;
use rsip::{Header, Headers};
pub use rsip::{Method, Request, Response, SipMessage, StatusCode};

use crate::error::ParseError;

/// Largest datagram accepted (the largest UDP payload; RFC 3261 §18.1.1).
pub const MAX_MESSAGE: usize = 65_535;

/// The magic cookie that starts every RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Compact header names, RFC 3261 §7.3.3 and §20 (plus `o`, `u`, `r`, `x` from later RFCs).
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
];

/// Methods rsip can represent; a request with any other is [`ParseError::UnknownMethod`].
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// The header section split into lines, unfolded, compact names expanded, Via values split.
struct RawHead<'a> {
    start: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

fn is_token(s: &str) -> bool {
    // RFC 3261 §25.1 token
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Splits a header value at commas outside double quotes and angle brackets.
pub(crate) fn split_commas(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut cur = String::new();
    for ch in value.chars() {
        if escaped {
            escaped = false;
        } else if quoted && ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            quoted = !quoted;
        } else if !quoted && ch == '<' {
            angle = true;
        } else if !quoted && ch == '>' {
            angle = false;
        } else if ch == ',' && !quoted && !angle {
            out.push(cur.trim().to_owned());
            cur.clear();
            continue;
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_owned());
    out.retain(|v| !v.is_empty());
    out
}

fn split_head(data: &[u8]) -> Result<RawHead<'_>, ParseError> {
    if data.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge {
            len: data.len(),
            max: MAX_MESSAGE,
        });
    }
    // §7.5: CRLFs before the start line are ignored.
    let mut skip = 0;
    while data[skip..].starts_with(b"\r\n") {
        skip += 2;
    }
    let data = &data[skip..];
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(ParseError::NoHeaderEnd)?;
    let head = std::str::from_utf8(&data[..end]).map_err(|e| ParseError::NotUtf8 {
        at: skip + e.valid_up_to(),
    })?;
    let body = &data[end + 4..];
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut unfolded: Vec<String> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            // §7.3.1 folding: a continuation line joins the previous one with one space.
            let prev = unfolded
                .last_mut()
                .ok_or_else(|| ParseError::BadHeaderLine(line.into()))?;
            prev.push(' ');
            prev.push_str(line.trim());
        } else {
            unfolded.push(line.to_owned());
        }
    }
    for line in unfolded {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::BadHeaderLine(line.clone()))?;
        let name = name.trim();
        if !is_token(name) {
            return Err(ParseError::BadHeaderLine(line.clone()));
        }
        let name = match name.as_bytes() {
            [c] => COMPACT
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map_or(name, |(_, long)| long),
            _ => name,
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Via") {
            for v in split_commas(value) {
                headers.push(("Via".to_owned(), v));
            }
        } else {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(RawHead {
        start,
        headers,
        body,
    })
}

/// Checks the start line; returns the request method if it is a Request-Line.
fn check_start_line(start: &str) -> Result<Option<&str>, ParseError> {
    let bad = || ParseError::BadStartLine(start.chars().take(80).collect());
    if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
        let code = rest.get(..3).ok_or_else(bad)?;
        let ok = code.bytes().all(|b| b.is_ascii_digit())
            && (b'1'..=b'6').contains(&code.as_bytes()[0])
            && (rest.len() == 3 || rest.as_bytes()[3] == b' ');
        return if ok { Ok(None) } else { Err(bad()) };
    }
    let mut parts = start.splitn(3, ' ');
    let (method, uri, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(uri), Some("SIP/2.0")) = (method, uri, version) else {
        return Err(bad());
    };
    if !is_token(method) || uri.is_empty() || uri.contains(char::is_whitespace) {
        return Err(bad());
    }
    if !KNOWN_METHODS.contains(&method) {
        return Err(ParseError::UnknownMethod(method.to_owned()));
    }
    Ok(Some(method))
}

fn header<'a>(head: &'a RawHead<'_>, name: &str) -> Option<&'a str> {
    head.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses one datagram (or one framed stream message) into a checked [`SipMessage`].
///
/// Normalises compact names, folding and comma-joined Via values; applies Content-Length
/// (§18.3: excess bytes are discarded, a short body is an error); checks that Via, From, To,
/// Call-ID and CSeq are present and parse, and that the CSeq method matches the Request-Line.
pub fn parse(data: &[u8]) -> Result<SipMessage, ParseError> {
    let head = split_head(data)?;
    let method = check_start_line(head.start)?;
    let body = match header(&head, "Content-Length") {
        Some(v) => {
            let declared: usize = v.parse().map_err(|_| ParseError::BadHeader {
                name: "Content-Length",
                value: v.into(),
            })?;
            if declared > head.body.len() {
                return Err(ParseError::BodyTooShort {
                    declared,
                    actual: head.body.len(),
                });
            }
            &head.body[..declared]
        }
        None => head.body,
    };
    let mut norm = Vec::with_capacity(data.len() + 64);
    norm.extend_from_slice(head.start.as_bytes());
    norm.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("Content-Length") {
            continue; // rewritten below from the framed body
        }
        norm.extend_from_slice(name.as_bytes());
        norm.extend_from_slice(b": ");
        norm.extend_from_slice(value.as_bytes());
        norm.extend_from_slice(b"\r\n");
    }
    norm.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    norm.extend_from_slice(body);
    let msg = SipMessage::try_from(norm.as_slice()).map_err(|e| ParseError::Rsip(e.to_string()))?;
    validate(&msg, method)?;
    Ok(msg)
}

fn bad(name: &'static str, value: &impl std::fmt::Display) -> ParseError {
    ParseError::BadHeader {
        name,
        value: value.to_string(),
    }
}

fn validate(msg: &SipMessage, method: Option<&str>) -> Result<(), ParseError> {
    let via = msg
        .via_header()
        .map_err(|_| ParseError::MissingHeader("Via"))?;
    via.typed().map_err(|_| bad("Via", via))?;
    let from = msg
        .from_header()
        .map_err(|_| ParseError::MissingHeader("From"))?;
    from.typed().map_err(|_| bad("From", from))?;
    let to = msg
        .to_header()
        .map_err(|_| ParseError::MissingHeader("To"))?;
    to.typed().map_err(|_| bad("To", to))?;
    let call_id = msg
        .call_id_header()
        .map_err(|_| ParseError::MissingHeader("Call-ID"))?;
    if call_id.value().is_empty() {
        return Err(bad("Call-ID", call_id));
    }
    let cseq = msg
        .cseq_header()
        .map_err(|_| ParseError::MissingHeader("CSeq"))?;
    let typed = cseq.typed().map_err(|_| bad("CSeq", cseq))?;
    if let Some(method) = method {
        if typed.method.to_string() != method {
            return Err(ParseError::CSeqMethodMismatch {
                cseq: typed.method.to_string(),
                request: method.to_owned(),
            });
        }
    }
    Ok(())
}

/// Prints a message to the bytes sent on the wire.
#[must_use]
pub fn to_bytes(msg: &SipMessage) -> Vec<u8> {
    let mut out = msg.to_string().into_bytes();
    // rsip prints the head as text and the body lossily; put the exact body back.
    if !msg.body().is_empty() {
        let text = out.len() - String::from_utf8_lossy(msg.body()).len();
        out.truncate(text);
        out.extend_from_slice(msg.body());
    }
    out
}

/// Builds a response straight from the raw lines of a request that [`parse`] refused, copying
/// Via, From, To (adding `to_tag` if it has none), Call-ID and CSeq (RFC 3261 §8.2.6.2).
///
/// Returns `None` when no answer is possible: the datagram is a response, an ACK (never
/// answered, §17.2.1), or lacks one of those headers.
#[must_use]
pub fn salvage_response(data: &[u8], code: u16, reason: &str, to_tag: &str) -> Option<Vec<u8>> {
    let head = split_head(data).ok()?;
    let method = head.start.split(' ').next()?;
    if head.start.starts_with("SIP/") || method == "ACK" || !is_token(method) {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let vias: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Via"))
        .map(|(_, v)| v.as_str())
        .collect();
    if vias.is_empty() {
        return None;
    }
    for v in vias {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        let v = header(&head, name)?;
        if name == "To" && !v.to_ascii_lowercase().contains(";tag=") {
            out.push_str(&format!("To: {v};tag={to_tag}\r\n"));
        } else {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// The top Via of a message, typed.
pub fn top_via(msg: &impl HeadersExt) -> Result<rsip::typed::Via, ParseError> {
    let via = msg
        .via_header()
        .map_err(|_| ParseError::MissingHeader("Via"))?;
    via.typed().map_err(|_| bad("Via", via))
}

/// The CSeq of a message, typed.
pub fn cseq(msg: &impl HeadersExt) -> Result<rsip::typed::CSeq, ParseError> {
    let cseq = msg
        .cseq_header()
        .map_err(|_| ParseError::MissingHeader("CSeq"))?;
    cseq.typed().map_err(|_| bad("CSeq", cseq))
}

/// The branch parameter of the top Via, if any.
pub fn branch(msg: &impl HeadersExt) -> Result<Option<String>, ParseError> {
    Ok(top_via(msg)?.branch().map(ToString::to_string))
}

/// The tag parameter of To, if any.
pub fn to_tag(msg: &impl HeadersExt) -> Result<Option<String>, ParseError> {
    let to = msg
        .to_header()
        .map_err(|_| ParseError::MissingHeader("To"))?;
    Ok(to
        .typed()
        .map_err(|_| bad("To", to))?
        .tag()
        .map(ToString::to_string))
}

/// The tag parameter of From, if any.
pub fn from_tag(msg: &impl HeadersExt) -> Result<Option<String>, ParseError> {
    let from = msg
        .from_header()
        .map_err(|_| ParseError::MissingHeader("From"))?;
    Ok(from
        .typed()
        .map_err(|_| bad("From", from))?
        .tag()
        .map(ToString::to_string))
}

/// The Call-ID value.
pub fn call_id(msg: &impl HeadersExt) -> Result<String, ParseError> {
    Ok(msg
        .call_id_header()
        .map_err(|_| ParseError::MissingHeader("Call-ID"))?
        .value()
        .to_owned())
}

/// Builds a response to `req` per RFC 3261 §8.2.6: the same Via headers in order, From, To
/// (with `to_tag` added when the request had none and the code is not 100), Call-ID and CSeq.
#[must_use]
pub fn response_to(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::default();
    for h in req.headers().iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone());
            }
            Header::To(to) => {
                let has_tag = to.typed().map(|t| t.tag().is_some()).unwrap_or(true);
                match to_tag {
                    Some(tag) if !has_tag && code != 100 => {
                        headers.push(Header::To(rsip::headers::To::new(format!(
                            "{};tag={tag}",
                            to.value()
                        ))));
                    }
                    _ => headers.push(h.clone()),
                }
            }
            // §8.2.6.1: a 100 Trying copies Timestamp.
            Header::Timestamp(_) if code == 100 => headers.push(h.clone()),
            _ => {}
        }
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Response {
        status_code: StatusCode::from(code),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Builds the ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): same
/// Request-URI, Call-ID, From, CSeq number and top Via; To from the response; Route copied.
#[must_use]
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Ok(via) = invite.via_header() {
        headers.push(Header::Via(via.clone()));
    }
    for h in invite.headers().iter() {
        match h {
            Header::From(_) | Header::CallId(_) | Header::Route(_) | Header::MaxForwards(_) => {
                headers.push(h.clone());
            }
            _ => {}
        }
    }
    if let Ok(to) = response.to_header() {
        headers.push(Header::To(to.clone()));
    }
    let seq = cseq(invite).map(|c| c.seq).unwrap_or(0);
    headers.push(Header::CSeq(
        rsip::typed::CSeq {
            seq,
            method: Method::Ack,
        }
        .into(),
    ));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Builds the CANCEL for `req` (RFC 3261 §9.1): same Request-URI, Call-ID, To, From, CSeq number
/// and top Via (so the same branch), Route copied, method CANCEL.
#[must_use]
pub fn cancel_for(req: &Request) -> Request {
    let mut headers = Headers::default();
    if let Ok(via) = req.via_header() {
        headers.push(Header::Via(via.clone()));
    }
    for h in req.headers().iter() {
        match h {
            Header::From(_)
            | Header::To(_)
            | Header::CallId(_)
            | Header::Route(_)
            | Header::MaxForwards(_) => headers.push(h.clone()),
            _ => {}
        }
    }
    let seq = cseq(req).map(|c| c.seq).unwrap_or(0);
    headers.push(Header::CSeq(
        rsip::typed::CSeq {
            seq,
            method: Method::Cancel,
        }
        .into(),
    ));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Request {
        method: Method::Cancel,
        uri: req.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    pub(crate) const INVITE: &str = "INVITE sip:+15551234567@carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+15551234567@carrier.example>\r\n\
From: \"outcall\" <sip:100@192.0.2.10>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:100@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn req(method: &str, extra: &str) -> String {
        format!(
            "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 {method}\r\n{extra}\
Content-Length: 0\r\n\r\n"
        )
    }

    fn resp(code: &str, method: &str) -> String {
        format!(
            "SIP/2.0 {code}\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 {method}\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    fn round_trip(text: &str) -> SipMessage {
        let msg = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
        let printed = to_bytes(&msg);
        let again = parse(&printed).expect("printed message parses");
        assert_eq!(msg, again, "round trip of {text}");
        assert_eq!(printed, to_bytes(&again), "printing is stable");
        msg
    }

    #[test]
    fn round_trip_every_request_type() {
        for m in KNOWN_METHODS {
            let msg = round_trip(&req(m, ""));
            let SipMessage::Request(r) = msg else {
                panic!("{m} is a request")
            };
            assert_eq!(r.method.to_string(), *m);
            assert_eq!(cseq(&r).unwrap().seq, 314_159);
        }
        let r = round_trip(&req(
            "REGISTER",
            "Expires: 3600\r\nContact: <sip:a@192.0.2.4>\r\n",
        ));
        assert!(r.to_string().contains("Expires: 3600"));
    }

    #[test]
    fn round_trip_responses() {
        for (code, m) in [
            ("100 Trying", "INVITE"),
            ("180 Ringing", "INVITE"),
            ("183 Session Progress", "INVITE"),
            ("200 OK", "INVITE"),
            ("200 OK", "BYE"),
            ("401 Unauthorized", "REGISTER"),
            ("407 Proxy Authentication Required", "INVITE"),
            ("486 Busy Here", "INVITE"),
            ("491 Request Pending", "INVITE"),
            ("503 Service Unavailable", "OPTIONS"),
            ("603 Decline", "INVITE"),
        ] {
            let SipMessage::Response(r) = round_trip(&resp(code, m)) else {
                panic!("{code} is a response")
            };
            assert_eq!(r.status_code.code().to_string(), code[..3]);
            assert_eq!(branch(&r).unwrap().as_deref(), Some("z9hG4bK4b43c2ff8.1"));
        }
    }

    #[test]
    fn body_and_content_length_framing() {
        let SipMessage::Request(r) = round_trip(INVITE) else {
            panic!()
        };
        assert_eq!(r.body, b"v=0\n");
        // §18.3: bytes past Content-Length are discarded.
        let extra = format!("{INVITE}garbage");
        let SipMessage::Request(r) = parse(extra.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"v=0\n");
        // A body shorter than declared is an error.
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert_eq!(
            parse(short.as_bytes()),
            Err(ParseError::BodyTooShort {
                declared: 40,
                actual: 4
            })
        );
    }

    #[test]
    fn compact_folding_and_joined_via() {
        let text = "OPTIONS sip:carrier.example SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb\r\n\
f: <sip:a@x>;tag=1\r\n\
t: <sip:b@y>\r\n\
i: abc\r\n\
CSeq: 1\r\n OPTIONS\r\n\
l: 0\r\n\r\n";
        let SipMessage::Request(r) = parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(branch(&r).unwrap().as_deref(), Some("z9hG4bKa"));
        let vias = r
            .headers
            .iter()
            .filter(|h| matches!(h, Header::Via(_)))
            .count();
        assert_eq!(vias, 2);
        assert_eq!(call_id(&r).unwrap(), "abc");
        assert_eq!(cseq(&r).unwrap().method, Method::Options);
    }

    #[test]
    fn typed_errors_for_malformed_input() {
        type Check = fn(&ParseError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("INVITE sip:a SIP/2.0\r\n".into(), |e| {
                *e == ParseError::NoHeaderEnd
            }),
            ("HELLO\r\n\r\n".into(), |e| {
                matches!(e, ParseError::BadStartLine(_))
            }),
            ("SIP/2.0 99x OK\r\n\r\n".into(), |e| {
                matches!(e, ParseError::BadStartLine(_))
            }),
            (req("FOO", ""), |e| {
                *e == ParseError::UnknownMethod("FOO".into())
            }),
            (
                req("INVITE", "").replace("Call-ID: a84b4c76e66710\r\n", ""),
                |e| *e == ParseError::MissingHeader("Call-ID"),
            ),
            (
                req("INVITE", "").replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE"),
                |e| matches!(e, ParseError::CSeqMethodMismatch { .. }),
            ),
            (req("INVITE", "").replace("CSeq: 314159", "CSeq: x"), |e| {
                matches!(e, ParseError::BadHeader { name: "CSeq", .. })
            }),
            (req("BYE", "Bogus line\r\n"), |e| {
                matches!(e, ParseError::BadHeaderLine(_))
            }),
        ];
        for (text, ok) in cases {
            let err = parse(text.as_bytes()).expect_err(&text);
            assert!(ok(&err), "{text:?} gave {err:?}");
        }
        let big = vec![b'a'; MAX_MESSAGE + 1];
        assert!(matches!(parse(&big), Err(ParseError::TooLarge { .. })));
        assert!(matches!(
            parse(b"INVITE \xff\r\n\r\n"),
            Err(ParseError::NotUtf8 { at: 7 })
        ));
    }

    #[test]
    fn salvage_answers_unknown_method_but_never_ack() {
        let text = req("FOO", "");
        let out = salvage_response(text.as_bytes(), 501, "Not Implemented", "t1").unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("SIP/2.0 501 Not Implemented\r\n"), "{out}");
        assert!(out.contains("Call-ID: a84b4c76e66710\r\n"));
        assert!(out.contains("CSeq: 314159 FOO\r\n"));
        assert!(out.contains("To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"));
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"));
        // A known method whose request rsip refused: the 400 parses and gets our To tag.
        let bad_max = req("BYE", "")
            .replace(";tag=a6c85cf", "")
            .replace("CSeq: 314159 BYE", "CSeq: 1 BYE");
        let out = salvage_response(bad_max.as_bytes(), 400, "Bad Request", "t1").unwrap();
        let SipMessage::Response(r) = parse(&out).unwrap() else {
            panic!()
        };
        assert_eq!(r.status_code.code(), 400);
        assert_eq!(to_tag(&r).unwrap().as_deref(), Some("t1"));
        assert_eq!(branch(&r).unwrap().as_deref(), Some("z9hG4bKnashds8"));
        assert!(salvage_response(req("ACK", "").as_bytes(), 400, "Bad", "t").is_none());
        assert!(salvage_response(resp("200 OK", "BYE").as_bytes(), 400, "Bad", "t").is_none());
    }

    #[test]
    fn response_builder_copies_headers_and_adds_tag() {
        let SipMessage::Request(invite) = parse(INVITE.as_bytes()).unwrap() else {
            panic!()
        };
        let r = response_to(&invite, 180, Some("xyz"));
        assert_eq!(to_tag(&r).unwrap().as_deref(), Some("xyz"));
        assert_eq!(branch(&r).unwrap().as_deref(), Some("z9hG4bK776asdhds"));
        assert_eq!(cseq(&r).unwrap(), cseq(&invite).unwrap());
        let trying = response_to(&invite, 100, Some("xyz"));
        assert_eq!(
            to_tag(&trying).unwrap(),
            None,
            "100 carries no tag (§8.2.6.2)"
        );
        let reparsed = parse(&to_bytes(&SipMessage::Response(r.clone()))).unwrap();
        assert_eq!(reparsed, SipMessage::Response(r.clone()));
        let ack = ack_for_non_2xx(&invite, &r);
        assert_eq!(cseq(&ack).unwrap().method, Method::Ack);
        assert_eq!(branch(&ack).unwrap(), branch(&invite).unwrap());
        assert_eq!(to_tag(&ack).unwrap().as_deref(), Some("xyz"));
        let cancel = cancel_for(&invite);
        assert_eq!(
            cseq(&cancel).unwrap(),
            rsip::typed::CSeq {
                seq: 314_159,
                method: Method::Cancel
            }
        );
        assert_eq!(cancel.uri, invite.uri);
    }

    /// Fuzz-like bounded test: 20 000 seeded mutations of valid messages must each give
    /// `Ok` or a typed `Err`, never a panic; every `Ok` must print and re-parse.
    #[test]
    fn mutated_messages_never_panic() {
        let seeds = [
            INVITE.to_owned(),
            req(
                "REGISTER",
                "Authorization: Digest username=\"a\", realm=\"r\"\r\n",
            ),
            resp("407 Proxy Authentication Required", "INVITE"),
        ];
        let mut rng = SmallRng::seed_from_u64(0x5149);
        let alphabet = b"\r\n:;,<>\"= \tz9hG4bK@SIP/2.0\xff\x00";
        let mut oks = 0;
        for i in 0..20_000 {
            let mut m = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..m.len());
                match rng.gen_range(0..4) {
                    0 => m[at] = alphabet[rng.gen_range(0..alphabet.len())],
                    1 => {
                        m.remove(at);
                    }
                    2 => m.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                    _ => {
                        let end = (at + rng.gen_range(1..20)).min(m.len());
                        let chunk = m[at..end].to_vec();
                        m.splice(at..at, chunk);
                    }
                }
                if m.is_empty() {
                    m.push(b'x');
                }
            }
            if let Ok(msg) = parse(&m) {
                oks += 1;
                let again = parse(&to_bytes(&msg));
                assert!(
                    again.is_ok(),
                    "accepted {:?} but not its print",
                    String::from_utf8_lossy(&m)
                );
            }
        }
        assert!(
            oks > 100,
            "mutations too destructive to test printing ({oks} parsed)"
        );
    }

    /// Throughput figure for NOTES.md: `cargo test -p outcall-sip --release --lib --
    /// --ignored --nocapture parse_throughput`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn parse_throughput() {
        let n = 200_000u32;
        #[allow(clippy::disallowed_methods)] // a measurement reads the clock; cores never do
        let start = std::time::Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            let m = parse(INVITE.as_bytes()).expect("valid");
            bytes += to_bytes(&m).len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parse+print INVITE: {:.0} msgs/s ({bytes} bytes printed)",
            f64::from(n) / secs
        );
    }
}
