//! Registration (RFC 3261 §10) with refresh before expiry, and the OPTIONS keep-alive that marks
//! a trunk down and up again. Both are small state holders the [`Endpoint`](crate::endpoint)
//! drives: they build requests and read responses; the endpoint owns the transactions.

use std::time::{Duration, Instant};

use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::Header;

use crate::auth::{Credentials, DigestClient};
use crate::msg::{self, Request, Response, SipMessage};
use crate::transport::{self, Transport};

/// What to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Registrar Request-URI, e.g. `sip:carrier.example`.
    pub registrar: String,
    /// Address of record (From and To), e.g. `sip:100@carrier.example`.
    pub aor: String,
    /// Requested expiry.
    pub expires: Duration,
}

/// The outcome of a REGISTER response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOutcome {
    /// Send this REGISTER now (after a challenge or a 423).
    Resend(Request),
    /// Registered for this long; refresh is scheduled.
    Registered(Duration),
    /// Refused with this status, or the challenge could not be answered (status 401/407).
    Failed(u16),
    /// A provisional: keep waiting.
    Pending,
}

/// One registration binding (one Call-ID, increasing CSeq: §10.2.4).
#[derive(Debug, Clone)]
pub struct Registration {
    cfg: RegisterConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: Duration,
    auth: Option<DigestClient>,
    refresh_at: Option<Instant>,
}

/// When to refresh a binding granted for `granted`: at 90 % of the grant but at least 60 s
/// before expiry, and half-way for grants too short for that.
#[must_use]
pub fn refresh_after(granted: Duration) -> Duration {
    let early = (granted / 10).max(Duration::from_secs(60)).min(granted / 2);
    granted.saturating_sub(early)
}

impl Registration {
    /// A binding to keep; `rng` makes the Call-ID and tag.
    pub fn new(cfg: RegisterConfig, creds: Option<Credentials>, rng: &mut impl Rng) -> Self {
        Self {
            call_id: format!("{:016x}@reg", rng.gen::<u64>()),
            from_tag: transport::new_tag(rng),
            cseq: 0,
            expires: cfg.expires,
            cfg,
            auth: creds.map(DigestClient::new),
            refresh_at: None,
        }
    }

    /// When the next REGISTER is due, if scheduled.
    #[must_use]
    pub fn refresh_at(&self) -> Option<Instant> {
        self.refresh_at
    }

    /// Schedules the next REGISTER.
    pub fn schedule(&mut self, at: Instant) {
        self.refresh_at = Some(at);
    }

    /// Builds the next REGISTER (new branch, next CSeq) and clears the schedule.
    pub fn request(
        &mut self,
        transport: Transport,
        local: std::net::SocketAddr,
        contact: &str,
        rng: &mut impl Rng,
    ) -> Request {
        self.refresh_at = None;
        self.cseq += 1;
        let via = transport::via_value(transport, local, &transport::new_branch(rng));
        let text = format!(
            "REGISTER {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <{aor}>;tag={}\r\n\
To: <{aor}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nContact: <{contact}>\r\nExpires: {}\r\n\
Content-Length: 0\r\n\r\n",
            self.cfg.registrar,
            self.from_tag,
            self.call_id,
            self.cseq,
            self.expires.as_secs(),
            aor = self.cfg.aor,
        );
        match msg::parse(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("REGISTER built from config must parse: {other:?}"),
        }
    }

    /// Reads the final or provisional response to `req`.
    pub fn on_response(
        &mut self,
        now: Instant,
        req: &Request,
        resp: &Response,
        rng: &mut impl Rng,
    ) -> RegOutcome {
        let code = resp.status_code.code();
        match code {
            100..=199 => RegOutcome::Pending,
            200..=299 => {
                let granted = granted_expiry(resp).unwrap_or(self.expires);
                if granted.is_zero() {
                    return RegOutcome::Failed(code);
                }
                self.refresh_at = Some(now + refresh_after(granted));
                RegOutcome::Registered(granted)
            }
            401 | 407 => match self.auth.as_mut().map(|a| a.authorize(req, resp, rng)) {
                Some(Ok(next)) => {
                    self.cseq = msg::cseq(&next).map(|c| c.seq).unwrap_or(self.cseq + 1);
                    RegOutcome::Resend(next)
                }
                _ => RegOutcome::Failed(code),
            },
            423 => {
                // §10.2.8: Interval Too Brief: retry with Min-Expires.
                let min = resp.headers.iter().find_map(|h| match h {
                    Header::MinExpires(v) => v.value().trim().parse::<u64>().ok(),
                    _ => None,
                });
                match min {
                    Some(m) if Duration::from_secs(m) > self.expires => {
                        self.expires = Duration::from_secs(m);
                        let mut next = req.clone();
                        next.headers
                            .retain(|h| !matches!(h, Header::Expires(_) | Header::CSeq(_)));
                        self.cseq += 1;
                        next.headers
                            .push(Header::Expires(rsip::headers::Expires::new(m.to_string())));
                        next.headers.push(Header::CSeq(
                            rsip::typed::CSeq {
                                seq: self.cseq,
                                method: rsip::Method::Register,
                            }
                            .into(),
                        ));
                        crate::transport::set_via_branch(&mut next, &transport::new_branch(rng));
                        RegOutcome::Resend(next)
                    }
                    _ => RegOutcome::Failed(code),
                }
            }
            _ => RegOutcome::Failed(code),
        }
    }
}

/// The expiry the registrar granted: our Contact's `expires` parameter, else `Expires`.
fn granted_expiry(resp: &Response) -> Option<Duration> {
    let from_contact = resp.headers.iter().find_map(|h| match h {
        Header::Contact(c) => c.value().split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("expires")
                .then(|| v.trim().parse::<u64>().ok())
                .flatten()
        }),
        _ => None,
    });
    let header = || {
        resp.headers.iter().find_map(|h| match h {
            Header::Expires(v) => v.value().trim().parse::<u64>().ok(),
            _ => None,
        })
    };
    from_contact.or_else(header).map(Duration::from_secs)
}

/// Whether the trunk answers: OPTIONS every `interval`; any response means up, a timeout
/// (Timer F) or transport error means down (RFC 3261 §11 used as a ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    /// Not probed yet.
    Unknown,
    /// The last probe was answered.
    Up,
    /// The last probe failed.
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::epoch;
    use rand::{rngs::SmallRng, SeedableRng};

    fn reg(creds: bool) -> (Registration, SmallRng) {
        let mut rng = SmallRng::seed_from_u64(5);
        let r = Registration::new(
            RegisterConfig {
                registrar: "sip:carrier.example".into(),
                aor: "sip:100@carrier.example".into(),
                expires: Duration::from_secs(3600),
            },
            creds.then(|| Credentials {
                username: "100".into(),
                password: "pw".into(),
            }),
            &mut rng,
        );
        (r, rng)
    }

    fn req(r: &mut Registration, rng: &mut SmallRng) -> Request {
        r.request(
            Transport::Udp,
            "192.0.2.10:5060".parse().unwrap(),
            "sip:outcall@192.0.2.10:5060",
            rng,
        )
    }

    #[test]
    fn refresh_schedule() {
        for (granted, refresh) in [(3600, 3240), (600, 540), (60, 30), (10, 5)] {
            assert_eq!(
                refresh_after(Duration::from_secs(granted)),
                Duration::from_secs(refresh),
                "{granted}"
            );
        }
    }

    #[test]
    fn register_challenge_then_granted_expiry_from_contact() {
        let t0 = epoch();
        let (mut r, mut rng) = reg(true);
        let first = req(&mut r, &mut rng);
        assert_eq!(msg::cseq(&first).unwrap().seq, 1);
        let mut ch = msg::response_to(&first, 401, Some("reg"));
        ch.headers.push(Header::WwwAuthenticate(
            rsip::headers::WwwAuthenticate::new(
                "Digest realm=\"carrier\", nonce=\"n\", qop=\"auth\", algorithm=MD5",
            ),
        ));
        let RegOutcome::Resend(second) = r.on_response(t0, &first, &ch, &mut rng) else {
            panic!()
        };
        assert_eq!(msg::cseq(&second).unwrap().seq, 2);
        assert_eq!(
            msg::call_id(&second).unwrap(),
            msg::call_id(&first).unwrap(),
            "§10.2.4 same Call-ID"
        );
        let mut ok = msg::response_to(&second, 200, Some("reg"));
        ok.headers.push(Header::Contact(rsip::headers::Contact::new(
            "<sip:outcall@192.0.2.10:5060>;expires=120",
        )));
        ok.headers
            .push(Header::Expires(rsip::headers::Expires::new("3600")));
        assert_eq!(
            r.on_response(t0, &second, &ok, &mut rng),
            RegOutcome::Registered(Duration::from_secs(120))
        );
        assert_eq!(r.refresh_at(), Some(t0 + Duration::from_secs(60)));
        let third = req(&mut r, &mut rng);
        assert_eq!(msg::cseq(&third).unwrap().seq, 3);
        assert_eq!(r.refresh_at(), None);
    }

    #[test]
    fn interval_too_brief_and_refusals() {
        let t0 = epoch();
        let (mut r, mut rng) = reg(false);
        let first = req(&mut r, &mut rng);
        let mut brief = msg::response_to(&first, 423, Some("reg"));
        brief
            .headers
            .push(Header::MinExpires(rsip::headers::MinExpires::new("7200")));
        let RegOutcome::Resend(second) = r.on_response(t0, &first, &brief, &mut rng) else {
            panic!()
        };
        let text = String::from_utf8(msg::to_bytes(&SipMessage::Request(second.clone()))).unwrap();
        assert!(text.contains("Expires: 7200\r\n"), "{text}");
        assert_eq!(msg::cseq(&second).unwrap().seq, 2);
        assert_ne!(msg::branch(&second).unwrap(), msg::branch(&first).unwrap());
        let no_creds = msg::response_to(&second, 401, Some("reg"));
        assert_eq!(
            r.on_response(t0, &second, &no_creds, &mut rng),
            RegOutcome::Failed(401)
        );
        let forbidden = msg::response_to(&second, 403, Some("reg"));
        assert_eq!(
            r.on_response(t0, &second, &forbidden, &mut rng),
            RegOutcome::Failed(403)
        );
        let trying = msg::response_to(&second, 100, None);
        assert_eq!(
            r.on_response(t0, &second, &trying, &mut rng),
            RegOutcome::Pending
        );
    }
}
