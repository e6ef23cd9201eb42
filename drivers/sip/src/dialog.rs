//! Dialog state (RFC 3261 §12): identifiers, route set, remote target and CSeq numbering, and
//! the requests built inside a dialog (§12.2.1.1), including the ACK for a 2xx (§13.2.2.4).
//!
//! Headers are kept as the exact values exchanged (our From with its tag, their To with theirs),
//! so requests in the dialog repeat them byte for byte.

use rsip::headers::UntypedHeader;
use rsip::prelude::HasHeaders;
use rsip::Header;

use crate::error::ParseError;
use crate::msg::{self, split_commas, Method, Request, Response};

/// The dialog identifier (§12): Call-ID and both tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Our header value (From in our requests), with our tag.
    pub local: String,
    /// Their header value (To in our requests), with their tag.
    pub remote: String,
    /// Where requests go: the peer's Contact URI (§12.1.1/§12.1.2).
    pub remote_target: String,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// Last CSeq number we used.
    pub local_seq: u32,
    /// Last CSeq number the peer used, if any.
    pub remote_seq: Option<u32>,
    /// Early (created by a 1xx) rather than confirmed.
    pub early: bool,
}

fn header_values(headers: &rsip::Headers, pick: fn(&Header) -> Option<&str>) -> Vec<String> {
    headers
        .iter()
        .filter_map(pick)
        .flat_map(split_commas)
        .collect()
}

fn record_routes(h: &Header) -> Option<&str> {
    match h {
        Header::RecordRoute(v) => Some(v.value()),
        _ => None,
    }
}

/// The URI inside a Contact/Route value: between `<` and `>`, else up to the first `;`.
#[must_use]
pub fn uri_of(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_owned(),
        _ => value.split(';').next().unwrap_or("").trim().to_owned(),
    }
}

fn contact(headers: &rsip::Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::Contact(v) => split_commas(v.value())
            .into_iter()
            .next()
            .map(|c| uri_of(&c)),
        _ => None,
    })
}

fn header_value(headers: &rsip::Headers, pick: fn(&Header) -> Option<&str>) -> Option<String> {
    headers.iter().find_map(pick).map(str::to_owned)
}

impl Dialog {
    /// The UAC side (§12.1.2): from our INVITE and a 1xx/2xx that carries a To tag.
    ///
    /// # Errors
    /// [`ParseError::MissingHeader`] if the response has no To tag (no dialog) or a 2xx has no
    /// Contact.
    pub fn uac(invite: &Request, resp: &Response) -> Result<Self, ParseError> {
        let remote_tag = msg::to_tag(resp)?.ok_or(ParseError::MissingHeader("To tag"))?;
        let local_tag = msg::from_tag(invite)?.ok_or(ParseError::MissingHeader("From tag"))?;
        let code = resp.status_code.code();
        let remote_target = match contact(resp.headers()) {
            Some(c) => c,
            None if code < 200 => invite.uri.to_string(),
            None => return Err(ParseError::MissingHeader("Contact")),
        };
        let mut route_set = header_values(resp.headers(), record_routes);
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: msg::call_id(invite)?,
                local_tag,
                remote_tag,
            },
            local: header_value(invite.headers(), |h| match h {
                Header::From(v) => Some(v.value()),
                _ => None,
            })
            .ok_or(ParseError::MissingHeader("From"))?,
            remote: header_value(resp.headers(), |h| match h {
                Header::To(v) => Some(v.value()),
                _ => None,
            })
            .ok_or(ParseError::MissingHeader("To"))?,
            remote_target,
            route_set,
            local_seq: msg::cseq(invite)?.seq,
            remote_seq: None,
            early: code < 200,
        })
    }

    /// The UAS side (§12.1.1): from a received INVITE and the tag we put in our To.
    ///
    /// # Errors
    /// [`ParseError::MissingHeader`] if the INVITE has no Contact or no From tag.
    pub fn uas(invite: &Request, local_tag: &str) -> Result<Self, ParseError> {
        let remote_tag = msg::from_tag(invite)?.ok_or(ParseError::MissingHeader("From tag"))?;
        let to = header_value(invite.headers(), |h| match h {
            Header::To(v) => Some(v.value()),
            _ => None,
        })
        .ok_or(ParseError::MissingHeader("To"))?;
        Ok(Dialog {
            id: DialogId {
                call_id: msg::call_id(invite)?,
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            local: format!("{to};tag={local_tag}"),
            remote: header_value(invite.headers(), |h| match h {
                Header::From(v) => Some(v.value()),
                _ => None,
            })
            .ok_or(ParseError::MissingHeader("From"))?,
            remote_target: contact(invite.headers()).ok_or(ParseError::MissingHeader("Contact"))?,
            route_set: header_values(invite.headers(), record_routes),
            local_seq: 0,
            remote_seq: Some(msg::cseq(invite)?.seq),
            early: false,
        })
    }

    /// A 2xx confirms an early dialog: route set recomputed and target refreshed (§13.2.2.4).
    pub fn confirm(&mut self, resp: &Response) {
        if let Some(c) = contact(resp.headers()) {
            self.remote_target = c;
        }
        if self.early {
            let mut rs = header_values(resp.headers(), record_routes);
            rs.reverse();
            self.route_set = rs;
        }
        if let Some(to) = header_value(resp.headers(), |h| match h {
            Header::To(v) => Some(v.value()),
            _ => None,
        }) {
            self.remote = to;
        }
        self.early = false;
    }

    /// Whether a request received belongs to this dialog (§12.2.2): Call-ID, To tag = ours,
    /// From tag = theirs.
    #[must_use]
    pub fn matches_request(&self, req: &Request) -> bool {
        msg::call_id(req).ok().as_deref() == Some(self.id.call_id.as_str())
            && msg::to_tag(req).ok().flatten().as_deref() == Some(self.id.local_tag.as_str())
            && msg::from_tag(req).ok().flatten().as_deref() == Some(self.id.remote_tag.as_str())
    }

    /// Checks and records the CSeq of a request received in the dialog (§12.2.2).
    ///
    /// # Errors
    /// `Err(500)`: the request is out of order and must be answered 500.
    pub fn check_remote_cseq(&mut self, req: &Request) -> Result<(), u16> {
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = msg::cseq(req).map_err(|_| 400u16)?.seq;
        match self.remote_seq {
            Some(last) if seq < last => Err(500),
            _ => {
                self.remote_seq = Some(seq);
                Ok(())
            }
        }
    }

    fn build(&self, method: Method, seq: u32, via: &str, contact: Option<&str>) -> Request {
        // §12.2.1.1: loose routing keeps the remote target as Request-URI; a strict router
        // (first route without ;lr) becomes the Request-URI and the target goes last.
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| !uri_of(r).contains(";lr"));
        let (uri, routes): (String, Vec<String>) = if strict {
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (uri_of(&self.route_set[0]), rest)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for r in routes {
            headers.push(Header::Route(rsip::headers::Route::new(r)));
        }
        headers.push(Header::From(rsip::headers::From::new(self.local.clone())));
        headers.push(Header::To(rsip::headers::To::new(self.remote.clone())));
        headers.push(Header::CallId(rsip::headers::CallId::new(
            self.id.call_id.clone(),
        )));
        headers.push(Header::CSeq(rsip::typed::CSeq { seq, method }.into()));
        if let Some(c) = contact {
            headers.push(Header::Contact(rsip::headers::Contact::new(format!(
                "<{c}>"
            ))));
        }
        headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
            "0",
        )));
        Request {
            method,
            uri: rsip::Uri::try_from(uri.as_str()).unwrap_or_else(|_| rsip::Uri::default()),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    /// A new request in the dialog (BYE, re-INVITE, INFO…): next local CSeq, `via` as the top
    /// Via (carrying a fresh branch), `contact` for target-refresh requests.
    pub fn request(&mut self, method: Method, via: &str, contact: Option<&str>) -> Request {
        self.local_seq += 1;
        self.build(method, self.local_seq, via, contact)
    }

    /// The ACK for a 2xx to the INVITE numbered `invite_seq` (§13.2.2.4): CSeq number of the
    /// INVITE, method ACK, its own branch in `via`.
    #[must_use]
    pub fn ack(&self, invite_seq: u32, via: &str) -> Request {
        self.build(Method::Ack, invite_seq, via, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SipMessage;

    fn parse_req(t: &str) -> Request {
        match msg::parse(t.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }
    fn parse_resp(t: &str) -> Response {
        match msg::parse(t.as_bytes()).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => unreachable!(),
        }
    }

    const INVITE: &str = "INVITE sip:+15551234567@carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa;rport\r\n\
Max-Forwards: 70\r\n\
From: \"outcall\" <sip:100@192.0.2.10>;tag=ours\r\n\
To: <sip:+15551234567@carrier.example>\r\n\
Call-ID: c1@192.0.2.10\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:100@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

    fn ok_200(rr: &str) -> Response {
        parse_resp(&format!(
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa;rport=5060\r\n\
{rr}From: \"outcall\" <sip:100@192.0.2.10>;tag=ours\r\n\
To: <sip:+15551234567@carrier.example>;tag=theirs\r\n\
Call-ID: c1@192.0.2.10\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:gw@198.51.100.7:5070;transport=udp>\r\n\
Content-Length: 0\r\n\r\n"
        ))
    }

    #[test]
    fn uac_dialog_loose_route_set_reversed() {
        let invite = parse_req(INVITE);
        let resp = ok_200("Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n");
        let mut d = Dialog::uac(&invite, &resp).unwrap();
        assert_eq!(
            d.id,
            DialogId {
                call_id: "c1@192.0.2.10".into(),
                local_tag: "ours".into(),
                remote_tag: "theirs".into()
            }
        );
        assert_eq!(d.route_set, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(d.remote_target, "sip:gw@198.51.100.7:5070;transport=udp");
        assert!(!d.early);
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye;rport",
            None,
        );
        let text = String::from_utf8(msg::to_bytes(&SipMessage::Request(bye.clone()))).unwrap();
        assert!(
            // rsip prints the transport parameter upper-case; URI comparison ignores case.
            text.to_ascii_lowercase()
                .starts_with("bye sip:gw@198.51.100.7:5070;transport=udp sip/2.0\r\n"),
            "{text}"
        );
        let routes: Vec<&str> = text.lines().filter(|l| l.starts_with("Route:")).collect();
        assert_eq!(
            routes,
            ["Route: <sip:p1.example;lr>", "Route: <sip:p2.example;lr>"]
        );
        assert_eq!(msg::cseq(&bye).unwrap().seq, 11);
        assert_eq!(msg::to_tag(&bye).unwrap().as_deref(), Some("theirs"));
        assert_eq!(msg::from_tag(&bye).unwrap().as_deref(), Some("ours"));
        assert!(msg::parse(text.as_bytes()).is_ok());
        let ack = d.ack(10, "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKack;rport");
        assert_eq!(
            msg::cseq(&ack).unwrap(),
            rsip::typed::CSeq {
                seq: 10,
                method: Method::Ack
            }
        );
        assert_eq!(d.local_seq, 11, "ACK does not consume a CSeq");
    }

    #[test]
    fn strict_router_becomes_request_uri() {
        let invite = parse_req(INVITE);
        let mut d = Dialog::uac(&invite, &ok_200("Record-Route: <sip:p1.example>\r\n")).unwrap();
        let bye = d.request(Method::Bye, "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKx", None);
        assert_eq!(bye.uri.to_string(), "sip:p1.example");
        let text = String::from_utf8(msg::to_bytes(&SipMessage::Request(bye))).unwrap();
        assert!(
            text.contains("Route: <sip:gw@198.51.100.7:5070;transport=udp>\r\n"),
            "{text}"
        );
    }

    #[test]
    fn early_dialog_confirmed_by_2xx() {
        let invite = parse_req(INVITE);
        let ringing = parse_resp(
            &msg::to_bytes(&SipMessage::Response(ok_200("")))
                .iter()
                .map(|b| *b as char)
                .collect::<String>()
                .replace("200 OK", "180 Ringing")
                .replace("Contact: <sip:gw@198.51.100.7:5070;transport=udp>\r\n", ""),
        );
        let mut d = Dialog::uac(&invite, &ringing).unwrap();
        assert!(d.early);
        assert_eq!(d.remote_target, "sip:+15551234567@carrier.example");
        d.confirm(&ok_200("Record-Route: <sip:p9.example;lr>\r\n"));
        assert!(!d.early);
        assert_eq!(d.route_set, ["<sip:p9.example;lr>"]);
        assert_eq!(d.remote_target, "sip:gw@198.51.100.7:5070;transport=udp");
        // No To tag: no dialog.
        let no_tag = msg::response_to(&invite, 180, None);
        assert_eq!(
            Dialog::uac(&invite, &no_tag),
            Err(ParseError::MissingHeader("To tag"))
        );
    }

    #[test]
    fn uas_dialog_and_remote_cseq_rule() {
        let invite = parse_req(&INVITE.replace(
            "Contact: <sip:100@192.0.2.10:5060>\r\n",
            "Contact: <sip:100@192.0.2.10:5060>\r\nRecord-Route: <sip:p1.example;lr>\r\n",
        ));
        let mut d = Dialog::uas(&invite, "uas1").unwrap();
        assert_eq!(
            d.route_set,
            ["<sip:p1.example;lr>"],
            "UAS keeps Record-Route order"
        );
        assert_eq!(d.remote_seq, Some(10));
        assert_eq!(d.local, "<sip:+15551234567@carrier.example>;tag=uas1");
        let bye = d.request(Method::Bye, "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKq", None);
        assert_eq!(msg::cseq(&bye).unwrap().seq, 1);
        assert_eq!(bye.uri.to_string(), "sip:100@192.0.2.10:5060");
        // Their BYE: matches; CSeq 11 accepted, then an older CSeq 9 is out of order (500).
        let their_bye = |seq: u32| {
            parse_req(&format!(
                "BYE sip:x@192.0.2.99 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKb{seq}\r\n\
From: \"outcall\" <sip:100@192.0.2.10>;tag=ours\r\nTo: <sip:+15551234567@carrier.example>;tag=uas1\r\n\
Call-ID: c1@192.0.2.10\r\nCSeq: {seq} BYE\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        assert!(d.matches_request(&their_bye(11)));
        assert_eq!(d.check_remote_cseq(&their_bye(11)), Ok(()));
        assert_eq!(d.check_remote_cseq(&their_bye(9)), Err(500));
        let no_contact = parse_req(&INVITE.replace("Contact: <sip:100@192.0.2.10:5060>\r\n", ""));
        assert_eq!(
            Dialog::uas(&no_contact, "t"),
            Err(ParseError::MissingHeader("Contact"))
        );
    }
}
