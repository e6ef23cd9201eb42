//! A SIP user agent endpoint for outbound calls: the [`TransactionLayer`] plus one UAC call state
//! machine per [`CallHandle`] (STYLE.md §2: calls addressed by handle, quinn style).
//!
//! Flow of one call (RFC 3261 §13): `Dial` sends an INVITE with our SDP offer; 1xx report
//! ringing/early media; a 2xx creates the dialog and is ACKed (again for each retransmission);
//! 401/407 are answered once with digest credentials; the ring timeout CANCELs (§9.1, only
//! after a provisional, as the RFC requires); `Hangup` sends BYE or CANCEL; a BYE from the peer
//! gets 200. A re-INVITE refused with 491 is retried after the §14.1 random back-off (2.1–4 s
//! when we own the Call-ID, 0–2 s otherwise) drawn from the seeded rng; a re-INVITE from the
//! peer while ours is pending gets 491 (§14.2).
//!
//! Every request goes to the trunk's proxy (`peer`), the usual outbound-proxy set-up of a trunk.
//! Inbound calls are answered 480 until the UAS side lands (see NOTES.md).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rsip::headers::UntypedHeader;
use rsip::Header;

use crate::auth::{Credentials, DigestClient};
use crate::dialog::Dialog;
use crate::error::Error;
use crate::msg::{self, Method, Request, Response, SipMessage};
use crate::register::{RegOutcome, RegisterConfig, Registration, TrunkState};
use crate::transaction::layer::{
    Event, Input as LayerInput, LayerConfig, LayerOutput, TransactionLayer, TxId,
};
use crate::transaction::Timer;
use crate::transport::{self, Target, Transport};

/// Identifies a call (one port's current call) inside the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub usize);

/// Endpoint configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Our SIP address (Via sent-by and Contact).
    pub local: SocketAddr,
    /// Transport towards the trunk.
    pub transport: Transport,
    /// The trunk's proxy: where every request goes.
    pub proxy: SocketAddr,
    /// User part of our Contact.
    pub contact_user: String,
    /// Digest credentials, if the trunk challenges.
    pub credentials: Option<Credentials>,
    /// Transaction timers.
    pub timers: LayerConfig,
    /// Register with the trunk (and keep the binding refreshed).
    pub register: Option<RegisterConfig>,
    /// Send OPTIONS at this interval to watch the trunk.
    pub keepalive: Option<Duration>,
}

/// How long to wait before retrying a failed registration.
pub const REGISTER_RETRY: Duration = Duration::from_secs(60);

/// Trunk-level events (registration and keep-alive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkEvent {
    /// The registrar accepted the binding for this long.
    Registered(Duration),
    /// The registration failed with this status (408 for no answer); retried later.
    RegistrationFailed(u16),
    /// The keep-alive was answered after the trunk was down or unknown.
    Up,
    /// The keep-alive went unanswered.
    Down,
}

/// A command from the port layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Place a call.
    Dial {
        /// Request-URI and To, e.g. `sip:+15551234567@carrier.example`.
        to: String,
        /// From URI, e.g. `sip:100@carrier.example`.
        from: String,
        /// Our SDP offer.
        offer: Vec<u8>,
        /// CANCEL if not answered within this time.
        ring_timeout: Duration,
    },
    /// Send a re-INVITE with this offer (hold/unhold, codec change).
    Reinvite {
        /// The new offer.
        offer: Vec<u8>,
    },
    /// Hang up (BYE when answered, CANCEL before; an unanswered inbound call gets 486).
    Hangup,
    /// Inbound call: send 180 Ringing.
    Ring,
    /// Inbound call: answer 200 OK with this SDP answer.
    Answer {
        /// Our SDP answer.
        sdp: Vec<u8>,
    },
    /// Inbound call: refuse with this final status (e.g. 486, 603).
    Reject {
        /// 300–699.
        status: u16,
    },
}

/// First handle the endpoint gives to inbound calls; the port layer numbers outbound calls below.
pub const INBOUND_HANDLE_BASE: usize = 1 << 20;

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The peer answered the INVITE with this final status (3xx–6xx).
    Rejected(u16),
    /// No final response (Timer B) or no answer to BYE (Timer F).
    Timeout,
    /// We cancelled (ring timeout or hang-up before answer).
    Cancelled,
    /// We hung up with BYE.
    LocalHangup,
    /// The peer sent BYE.
    RemoteHangup,
    /// The caller cancelled an inbound call before it was answered.
    RemoteCancelled,
    /// We answered an inbound call but no ACK came within 64·T1 (§13.3.1.4).
    NoAck,
    /// The transport failed.
    TransportError,
    /// Credentials were refused or the challenge could not be answered.
    AuthFailed(String),
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// An inbound INVITE (the handle is new): caller, the Request-URI (the DID) and the offer.
    Incoming {
        /// From URI.
        from: String,
        /// Request-URI.
        to: String,
        /// SDP offer (empty if the caller sent none).
        offer: Vec<u8>,
    },
    /// Inbound call: the ACK for our 2xx arrived; the call is up.
    Established,
    /// 180 (or a 1xx without body).
    Ringing,
    /// 183 with SDP: early media.
    EarlyMedia(Vec<u8>),
    /// 2xx: the SDP answer.
    Answered(Vec<u8>),
    /// A re-INVITE of ours succeeded with this answer.
    Reinvited(Vec<u8>),
    /// A re-INVITE of ours was refused with this status (not 491, which is retried).
    ReinviteFailed(u16),
    /// The call is over.
    Ended(EndReason),
}

/// Output of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes.
    Transmit {
        /// Where.
        to: Target,
        /// What.
        bytes: Vec<u8>,
    },
    /// A trunk event.
    Trunk(TrunkEvent),
    /// A call event.
    Call {
        /// The call.
        handle: CallHandle,
        /// What happened.
        event: CallEvent,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Incoming,
    Answering,
    Calling,
    Ringing,
    Cancelling,
    Confirmed,
    Terminating,
}

#[derive(Debug)]
struct Call {
    state: State,
    invite: Request,
    invite_tx: TxId,
    dialog: Option<Dialog>,
    ack: Option<Request>,
    provisional: bool,
    cancel_pending: bool,
    ring_deadline: Option<Instant>,
    auth: Option<DigestClient>,
    reinvite: Option<(TxId, Request)>,
    reinvite_offer: Option<Vec<u8>>,
    glare_deadline: Option<Instant>,
    /// We generated the Call-ID (outbound): §14.1 back-off 2.1–4 s, else 0–2 s.
    owner: bool,
    /// Inbound: our 2xx, its next retransmission and the retransmit interval (§13.3.1.4).
    ok: Option<(Response, Instant, Duration)>,
    /// Inbound: give up on the ACK at this time.
    ack_deadline: Option<Instant>,
}

/// The endpoint: transaction layer plus UAC calls.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    layer: TransactionLayer,
    calls: HashMap<CallHandle, Call>,
    tx_calls: HashMap<TxId, CallHandle>,
    out: VecDeque<Output>,
    pending: VecDeque<Event>,
    rng: SmallRng,
    registration: Option<Registration>,
    reg_tx: Option<(TxId, Request)>,
    keepalive_at: Option<Instant>,
    ka_tx: Option<TxId>,
    trunk: TrunkState,
    next_inbound: usize,
}

impl Endpoint {
    /// An endpoint; `rng_seed` drives tags, branches, Call-IDs and glare back-off.
    #[must_use]
    pub fn new(cfg: EndpointConfig, rng_seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let registration = cfg
            .register
            .clone()
            .map(|r| Registration::new(r, cfg.credentials.clone(), &mut rng));
        Self {
            layer: TransactionLayer::new(cfg.timers, rng_seed ^ 0x5eed),
            cfg,
            calls: HashMap::new(),
            tx_calls: HashMap::new(),
            out: VecDeque::new(),
            pending: VecDeque::new(),
            rng,
            registration,
            reg_tx: None,
            keepalive_at: None,
            ka_tx: None,
            trunk: TrunkState::Unknown,
            next_inbound: INBOUND_HANDLE_BASE,
        }
    }

    fn peer(&self) -> Target {
        Target {
            transport: self.cfg.transport,
            addr: self.cfg.proxy,
        }
    }

    fn via(&mut self) -> String {
        let branch = transport::new_branch(&mut self.rng);
        transport::via_value(self.cfg.transport, self.cfg.local, &branch)
    }

    fn contact(&self) -> String {
        format!("sip:{}@{}", self.cfg.contact_user, self.cfg.local)
    }

    /// Starts registration and keep-alive (both due at `now`).
    pub fn start_trunk(&mut self, now: Instant) {
        if let Some(r) = &mut self.registration {
            r.schedule(now);
        }
        if self.cfg.keepalive.is_some() {
            self.keepalive_at = Some(now);
        }
    }

    /// What the keep-alive last saw.
    #[must_use]
    pub fn trunk_state(&self) -> TrunkState {
        self.trunk
    }

    fn send_register(&mut self, now: Instant) {
        let contact = self.contact();
        let (transport, local) = (self.cfg.transport, self.cfg.local);
        let Some(r) = &mut self.registration else {
            return;
        };
        let req = r.request(transport, local, &contact, &mut self.rng);
        self.send_register_request(now, req);
    }

    fn send_register_request(&mut self, now: Instant, req: Request) {
        match self.layer.start_client(now, req.clone(), self.peer()) {
            Ok((tx, _)) => self.reg_tx = Some((tx, req)),
            Err(e) => tracing::warn!(%e, "REGISTER not sent"),
        }
    }

    fn registration_failed(&mut self, now: Instant, code: u16) {
        self.reg_tx = None;
        if let Some(r) = &mut self.registration {
            r.schedule(now + REGISTER_RETRY);
        }
        self.out
            .push_back(Output::Trunk(TrunkEvent::RegistrationFailed(code)));
    }

    fn send_keepalive(&mut self, now: Instant) {
        let Some(interval) = self.cfg.keepalive else {
            return;
        };
        self.keepalive_at = Some(now + interval);
        if self.ka_tx.is_some() {
            return; // the previous probe is still running (Timer F is 32 s)
        }
        let via = self.via();
        let tag = transport::new_tag(&mut self.rng);
        let call_id = format!("{:016x}@ka", self.rng.gen::<u64>());
        let text = format!(
            "OPTIONS sip:{proxy} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
From: <{contact}>;tag={tag}\r\nTo: <sip:{proxy}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n",
            proxy = self.cfg.proxy,
            contact = self.contact(),
        );
        let Ok(SipMessage::Request(req)) = msg::parse(text.as_bytes()) else {
            unreachable!("OPTIONS built from addresses parses")
        };
        match self.layer.start_client(now, req, self.peer()) {
            Ok((tx, _)) => self.ka_tx = Some(tx),
            Err(e) => tracing::warn!(%e, "OPTIONS not sent"),
        }
    }

    fn set_trunk(&mut self, up: bool) {
        let new = if up { TrunkState::Up } else { TrunkState::Down };
        if new != self.trunk {
            self.trunk = new;
            self.out.push_back(Output::Trunk(if up {
                TrunkEvent::Up
            } else {
                TrunkEvent::Down
            }));
        }
    }

    /// Handles events of the registration and keep-alive transactions; false if not theirs.
    fn on_trunk_event(&mut self, now: Instant, e: &Event) -> bool {
        let (tx, resp) = match e {
            Event::Response { tx, response } => (*tx, Some(response)),
            Event::Timeout { tx, .. } | Event::TransportError { tx } => (*tx, None),
            _ => return false,
        };
        if self.ka_tx == Some(tx) {
            match resp {
                Some(r) if r.status_code.code() < 200 => {}
                Some(_) => {
                    self.ka_tx = None;
                    self.set_trunk(true);
                }
                None => {
                    self.ka_tx = None;
                    self.set_trunk(false);
                }
            }
            return true;
        }
        let Some((rtx, req)) = self.reg_tx.clone() else {
            return false;
        };
        if rtx != tx {
            return false;
        }
        let Some(resp) = resp else {
            self.registration_failed(now, 408);
            return true;
        };
        let Some(r) = &mut self.registration else {
            return true;
        };
        match r.on_response(now, &req, resp, &mut self.rng) {
            RegOutcome::Pending => {}
            RegOutcome::Registered(d) => {
                self.reg_tx = None;
                self.out.push_back(Output::Trunk(TrunkEvent::Registered(d)));
            }
            RegOutcome::Resend(next) => self.send_register_request(now, next),
            RegOutcome::Failed(code) => self.registration_failed(now, code),
        }
        true
    }

    /// Number of live calls.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// A command for call `handle`.
    ///
    /// # Errors
    /// [`Error::NoTransaction`] when the handle has no call (or already has one, for `Dial`),
    /// [`Error::BadMessage`] if the URIs do not parse.
    pub fn handle_command(
        &mut self,
        now: Instant,
        handle: CallHandle,
        cmd: Command,
    ) -> Result<(), Error> {
        match cmd {
            Command::Dial {
                to,
                from,
                offer,
                ring_timeout,
            } => {
                if self.calls.contains_key(&handle) {
                    return Err(Error::NoTransaction(format!("call {} busy", handle.0)));
                }
                let invite = self.build_invite(&to, &from, offer)?;
                let tx = self.start(now, handle, invite.clone())?;
                self.calls.insert(
                    handle,
                    Call {
                        state: State::Calling,
                        invite,
                        invite_tx: tx,
                        dialog: None,
                        ack: None,
                        provisional: false,
                        cancel_pending: false,
                        ring_deadline: Some(now + ring_timeout),
                        auth: self.cfg.credentials.clone().map(DigestClient::new),
                        reinvite: None,
                        reinvite_offer: None,
                        glare_deadline: None,
                        owner: true,
                        ok: None,
                        ack_deadline: None,
                    },
                );
            }
            Command::Hangup => {
                let call = self.call(handle)?;
                match call.state {
                    State::Calling | State::Ringing => self.cancel(now, handle)?,
                    State::Confirmed | State::Answering => self.bye(now, handle)?,
                    State::Incoming => self.reject(now, handle, 486)?,
                    State::Cancelling | State::Terminating => {}
                }
            }
            Command::Ring => {
                let call = self.call(handle)?;
                if call.state != State::Incoming {
                    return Err(Error::NoTransaction(format!(
                        "call {} is not ringing in",
                        handle.0
                    )));
                }
                let resp = self.uas_response(handle, 180, Vec::new())?;
                let tx = self.call(handle)?.invite_tx;
                self.layer
                    .handle_input(now, LayerInput::Respond { tx, response: resp })?;
            }
            Command::Answer { sdp } => {
                let call = self.call(handle)?;
                if call.state != State::Incoming {
                    return Err(Error::NoTransaction(format!(
                        "call {} is not ringing in",
                        handle.0
                    )));
                }
                let resp = self.uas_response(handle, 200, sdp)?;
                let tx = self.call(handle)?.invite_tx;
                self.layer.handle_input(
                    now,
                    LayerInput::Respond {
                        tx,
                        response: resp.clone(),
                    },
                )?;
                let t1 = self.cfg.timers.t1;
                let reliable = self.cfg.transport.is_reliable();
                let c = self.call_mut(handle)?;
                c.state = State::Answering;
                // §13.3.1.4: the UAS core retransmits the 2xx (T1 doubling to T2) until the ACK;
                // over a reliable transport only the 64·T1 give-up applies.
                c.ok = (!reliable).then(|| (resp, now + t1, t1));
                c.ack_deadline = Some(now + t1 * 64);
            }
            Command::Reject { status } => {
                if self.call(handle)?.state != State::Incoming || !(300..700).contains(&status) {
                    return Err(Error::NoTransaction(format!(
                        "call {}: cannot reject with {status}",
                        handle.0
                    )));
                }
                self.reject(now, handle, status)?;
            }
            Command::Reinvite { offer } => {
                let call = self.call(handle)?;
                if call.state != State::Confirmed || call.reinvite.is_some() {
                    return Err(Error::NoTransaction(format!(
                        "call {} cannot re-INVITE now",
                        handle.0
                    )));
                }
                self.call_mut(handle)?.reinvite_offer = Some(offer);
                self.send_reinvite(now, handle)?;
            }
        }
        self.pump();
        Ok(())
    }

    /// Feeds a received datagram.
    pub fn handle_input(&mut self, now: Instant, source: Target, bytes: Vec<u8>) {
        let res = self
            .layer
            .handle_input(now, LayerInput::Received { source, bytes });
        debug_assert!(res.is_ok(), "received input never fails");
        self.pump_layer(now);
    }

    /// Fires due timers: transactions, ring timeouts, glare back-offs.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.pump_layer(now);
        if self
            .registration
            .as_ref()
            .and_then(Registration::refresh_at)
            .is_some_and(|t| t <= now)
        {
            self.send_register(now);
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.send_keepalive(now);
        }
        let mut handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        handles.sort();
        for h in handles {
            let Some(c) = self.calls.get_mut(&h) else {
                continue;
            };
            if c.ring_deadline.is_some_and(|d| d <= now) {
                c.ring_deadline = None;
                if matches!(c.state, State::Calling | State::Ringing) {
                    tracing::debug!(call = h.0, "ring timeout: CANCEL");
                    let _ = self.cancel(now, h);
                }
            }
            let Some(c) = self.calls.get_mut(&h) else {
                continue;
            };
            if c.ack_deadline.is_some_and(|d| d <= now) {
                c.ack_deadline = None;
                c.ok = None;
                tracing::warn!(call = h.0, "no ACK for our 2xx: BYE");
                let _ = self.bye(now, h);
                self.emit(h, CallEvent::Ended(EndReason::NoAck));
                continue;
            }
            if let Some((resp, at, interval)) = c.ok.clone() {
                if at <= now {
                    let next = (interval * 2).min(self.cfg.timers.t2);
                    c.ok = Some((resp.clone(), now + next, next));
                    let tx = c.invite_tx;
                    // The IST (RFC 6026 Accepted) passes TU retransmissions to the wire.
                    let _ = self
                        .layer
                        .handle_input(now, LayerInput::Respond { tx, response: resp });
                }
            }
            let Some(c) = self.calls.get_mut(&h) else {
                continue;
            };
            if c.glare_deadline.is_some_and(|d| d <= now) {
                c.glare_deadline = None;
                let _ = self.send_reinvite(now, h);
            }
        }
        self.pump_layer(now);
    }

    /// The next output.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .flat_map(|c| {
                [
                    c.ring_deadline,
                    c.glare_deadline,
                    c.ack_deadline,
                    c.ok.as_ref().map(|o| o.1),
                ]
            })
            .flatten();
        let trunk = [
            self.registration
                .as_ref()
                .and_then(Registration::refresh_at),
            self.keepalive_at,
        ];
        calls
            .chain(trunk.into_iter().flatten())
            .chain(self.layer.poll_timeout())
            .min()
    }

    fn call(&self, h: CallHandle) -> Result<&Call, Error> {
        self.calls
            .get(&h)
            .ok_or(Error::NoTransaction(format!("no call {}", h.0)))
    }

    fn call_mut(&mut self, h: CallHandle) -> Result<&mut Call, Error> {
        self.calls
            .get_mut(&h)
            .ok_or(Error::NoTransaction(format!("no call {}", h.0)))
    }

    fn build_invite(&mut self, to: &str, from: &str, offer: Vec<u8>) -> Result<Request, Error> {
        let uri = rsip::Uri::try_from(to)
            .map_err(|e| Error::BadMessage(crate::ParseError::Rsip(e.to_string())))?;
        let tag = transport::new_tag(&mut self.rng);
        let call_id = format!("{:016x}@{}", self.rng.gen::<u64>(), self.cfg.local.ip());
        let via = self.via();
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <{from}>;tag={tag}\r\n\
To: <{to}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <{}>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n",
            self.contact(),
            offer.len()
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&offer);
        match msg::parse(&bytes).map_err(Error::BadMessage)? {
            SipMessage::Request(r) => Ok(r),
            SipMessage::Response(_) => unreachable!("built from a request line"),
        }
    }

    fn start(&mut self, now: Instant, h: CallHandle, req: Request) -> Result<TxId, Error> {
        let (tx, _) = self.layer.start_client(now, req, self.peer())?;
        self.tx_calls.insert(tx, h);
        Ok(tx)
    }

    fn cancel(&mut self, now: Instant, h: CallHandle) -> Result<(), Error> {
        let c = self.call_mut(h)?;
        c.state = State::Cancelling;
        if !c.provisional {
            // §9.1: no CANCEL before a provisional response; send it on the first one.
            c.cancel_pending = true;
            return Ok(());
        }
        let cancel = msg::cancel_for(&c.invite);
        self.start(now, h, cancel)?;
        Ok(())
    }

    fn bye(&mut self, now: Instant, h: CallHandle) -> Result<(), Error> {
        let via = self.via();
        let c = self.call_mut(h)?;
        c.state = State::Terminating;
        let d = c.dialog.as_mut().expect("Confirmed calls have a dialog");
        let bye = d.request(Method::Bye, &via, None);
        self.start(now, h, bye)?;
        Ok(())
    }

    fn send_reinvite(&mut self, now: Instant, h: CallHandle) -> Result<(), Error> {
        let via = self.via();
        let contact = self.contact();
        let c = self.call_mut(h)?;
        let offer = c.reinvite_offer.clone().unwrap_or_default();
        let d = c.dialog.as_mut().expect("re-INVITE only in Confirmed");
        let mut req = d.request(Method::Invite, &via, Some(&contact));
        req.headers
            .retain(|h| !matches!(h, Header::ContentLength(_)));
        req.headers
            .push(Header::ContentType(rsip::headers::ContentType::new(
                "application/sdp",
            )));
        req.headers
            .push(Header::ContentLength(rsip::headers::ContentLength::new(
                offer.len().to_string(),
            )));
        req.body = offer;
        let tx = self.start(now, h, req.clone())?;
        self.call_mut(h)?.reinvite = Some((tx, req));
        Ok(())
    }

    fn uas_response(&mut self, h: CallHandle, code: u16, body: Vec<u8>) -> Result<Response, Error> {
        let contact = self.contact();
        let c = self.call(h)?;
        let tag = c.dialog.as_ref().map(|d| d.id.local_tag.clone());
        let mut r = msg::response_to(&c.invite, code, tag.as_deref());
        r.headers
            .push(Header::Contact(rsip::headers::Contact::new(format!(
                "<{contact}>"
            ))));
        if !body.is_empty() {
            r.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
            r.headers
                .push(Header::ContentType(rsip::headers::ContentType::new(
                    "application/sdp",
                )));
            r.headers
                .push(Header::ContentLength(rsip::headers::ContentLength::new(
                    body.len().to_string(),
                )));
            r.body = body;
        }
        Ok(r)
    }

    fn reject(&mut self, now: Instant, h: CallHandle, status: u16) -> Result<(), Error> {
        let resp = self.uas_response(h, status, Vec::new())?;
        let tx = self.call(h)?.invite_tx;
        self.layer
            .handle_input(now, LayerInput::Respond { tx, response: resp })?;
        self.emit(h, CallEvent::Ended(EndReason::Rejected(status)));
        Ok(())
    }

    fn on_incoming_invite(&mut self, now: Instant, tx: TxId, req: Request) {
        let tag = transport::new_tag(&mut self.rng);
        let dialog = match Dialog::uas(&req, &tag) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%e, "inbound INVITE unusable");
                return self.respond(now, tx, &req, 400);
            }
        };
        let h = CallHandle(self.next_inbound);
        self.next_inbound += 1;
        let from = req
            .headers
            .iter()
            .find_map(|h| match h {
                Header::From(v) => Some(crate::dialog::uri_of(v.value())),
                _ => None,
            })
            .unwrap_or_default();
        let event = CallEvent::Incoming {
            from,
            to: req.uri.to_string(),
            offer: req.body.clone(),
        };
        self.tx_calls.insert(tx, h);
        self.calls.insert(
            h,
            Call {
                state: State::Incoming,
                invite: req,
                invite_tx: tx,
                dialog: Some(dialog),
                ack: None,
                provisional: false,
                cancel_pending: false,
                ring_deadline: None,
                auth: None,
                reinvite: None,
                reinvite_offer: None,
                glare_deadline: None,
                owner: false,
                ok: None,
                ack_deadline: None,
            },
        );
        self.emit(h, event);
    }

    fn on_ack(&mut self, req: &Request) {
        let found = self
            .calls
            .iter()
            .find(|(_, c)| {
                c.state == State::Answering
                    && c.dialog.as_ref().is_some_and(|d| d.matches_request(req))
            })
            .map(|(h, _)| *h);
        if let Some(h) = found {
            let c = self.calls.get_mut(&h).expect("found above");
            c.state = State::Confirmed;
            c.ok = None;
            c.ack_deadline = None;
            self.emit(h, CallEvent::Established);
        }
    }

    fn emit(&mut self, handle: CallHandle, event: CallEvent) {
        if matches!(event, CallEvent::Ended(_)) {
            self.calls.remove(&handle);
            self.tx_calls.retain(|_, c| *c != handle);
        }
        self.out.push_back(Output::Call { handle, event });
    }

    fn pump(&mut self) {
        while let Some(o) = self.layer.poll_output() {
            match o {
                LayerOutput::Transmit { to, bytes } => {
                    self.out.push_back(Output::Transmit { to, bytes })
                }
                LayerOutput::Event(e) => self.pending.push_back(e),
            }
        }
    }

    fn pump_layer(&mut self, now: Instant) {
        self.pump();
        while let Some(e) = self.pending.pop_front() {
            self.on_layer_event(now, e);
            self.pump();
        }
    }

    fn on_layer_event(&mut self, now: Instant, e: Event) {
        if self.on_trunk_event(now, &e) {
            return;
        }
        match e {
            Event::Response { tx, response } => {
                if let Some(&h) = self.tx_calls.get(&tx) {
                    self.on_response(now, h, tx, response);
                }
            }
            Event::StrayResponse(r) => {
                // A 2xx retransmission after the ICT ended: ACK again (§13.2.2.4).
                if (200..300).contains(&r.status_code.code()) {
                    self.reack(&r);
                }
            }
            Event::Request {
                tx,
                request,
                cancels,
                ..
            } => self.on_request(now, tx, request, cancels),
            Event::Timeout { tx, timer } => {
                let Some(&h) = self.tx_calls.get(&tx) else {
                    return;
                };
                let Some(c) = self.calls.get(&h) else { return };
                if tx == c.invite_tx || matches!(timer, Timer::F) && c.state == State::Terminating {
                    self.emit(h, CallEvent::Ended(EndReason::Timeout));
                } else if c.reinvite.as_ref().is_some_and(|(t, _)| *t == tx) {
                    self.call_mut(h).expect("looked up").reinvite = None;
                    self.emit(h, CallEvent::ReinviteFailed(408));
                }
            }
            Event::TransportError { tx } => {
                if let Some(&h) = self.tx_calls.get(&tx) {
                    self.emit(h, CallEvent::Ended(EndReason::TransportError));
                }
            }
            Event::Terminated { tx } => {
                self.tx_calls.remove(&tx);
            }
            Event::Ack { request, .. } => self.on_ack(&request),
        }
    }

    fn reack(&mut self, r: &Response) {
        let call_id = msg::call_id(r).ok();
        let to_tag = msg::to_tag(r).ok().flatten();
        let found = self.calls.values().find_map(|c| {
            let d = c.dialog.as_ref()?;
            (Some(&d.id.call_id) == call_id.as_ref() && Some(&d.id.remote_tag) == to_tag.as_ref())
                .then(|| c.ack.clone())
                .flatten()
        });
        if let Some(ack) = found {
            let to = self.peer();
            self.out.push_back(Output::Transmit {
                to,
                bytes: msg::to_bytes(&SipMessage::Request(ack)),
            });
        }
    }

    fn on_response(&mut self, now: Instant, h: CallHandle, tx: TxId, r: Response) {
        let code = r.status_code.code();
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        if let Some((rtx, req)) = c.reinvite.clone() {
            if rtx == tx {
                return self.on_reinvite_response(now, h, &req, r);
            }
        }
        if tx != c.invite_tx {
            // BYE or CANCEL responses.
            let method = msg::cseq(&r).map(|s| s.method).ok();
            if method == Some(Method::Bye) && code >= 200 {
                self.emit(h, CallEvent::Ended(EndReason::LocalHangup));
            }
            return;
        }
        match code {
            100..=199 => {
                c.provisional = true;
                if c.dialog.is_none() {
                    c.dialog = Dialog::uac(&c.invite, &r).ok();
                }
                if c.cancel_pending {
                    c.cancel_pending = false;
                    let cancel = msg::cancel_for(&c.invite);
                    let _ = self.start(now, h, cancel);
                    return;
                }
                if code == 100 {
                    return; // hop-by-hop: no ringing yet
                }
                if c.state == State::Calling {
                    c.state = State::Ringing;
                }
                if c.state == State::Ringing {
                    let ev = if r.body.is_empty() {
                        CallEvent::Ringing
                    } else {
                        CallEvent::EarlyMedia(r.body.clone())
                    };
                    self.emit(h, ev);
                }
            }
            200..=299 if matches!(c.state, State::Confirmed | State::Terminating) => {
                // A retransmitted 2xx (RFC 6026: the ICT passes it up): the same ACK again.
                if let Some(ack) = c.ack.clone() {
                    let to = self.peer();
                    let bytes = msg::to_bytes(&SipMessage::Request(ack));
                    self.out.push_back(Output::Transmit { to, bytes });
                }
            }
            200..=299 => {
                let dialog = match c.dialog.take() {
                    Some(mut d)
                        if Some(&d.id.remote_tag) == msg::to_tag(&r).ok().flatten().as_ref() =>
                    {
                        d.confirm(&r);
                        Some(d)
                    }
                    _ => Dialog::uac(&c.invite, &r).ok(),
                };
                let Some(dialog) = dialog else {
                    tracing::warn!(call = h.0, "2xx without a usable dialog: hanging up");
                    return self.emit(h, CallEvent::Ended(EndReason::Rejected(code)));
                };
                let seq = msg::cseq(&c.invite).map(|s| s.seq).unwrap_or(1);
                let branch = transport::new_branch(&mut self.rng);
                let via = transport::via_value(self.cfg.transport, self.cfg.local, &branch);
                let ack = dialog.ack(seq, &via);
                let peer = self.peer();
                let c = self.calls.get_mut(&h).expect("looked up above");
                c.dialog = Some(dialog);
                c.ack = Some(ack.clone());
                c.ring_deadline = None;
                let _ = self.layer.start_client(now, ack, peer);
                if c.state == State::Cancelling {
                    // The 2xx crossed our CANCEL: the call is up, so end it with BYE (§9.1).
                    c.state = State::Confirmed;
                    let _ = self.bye(now, h);
                    return;
                }
                if c.state != State::Confirmed {
                    c.state = State::Confirmed;
                    self.emit(h, CallEvent::Answered(r.body.clone()));
                }
            }
            401 | 407 => {
                let result = match c.auth.as_mut() {
                    Some(a) => a.authorize(&c.invite, &r, &mut self.rng),
                    None => Err(Error::Digest("no credentials".into())),
                };
                match result {
                    Ok(next) => {
                        c.invite = next.clone();
                        match self.start(now, h, next) {
                            Ok(tx) => self.call_mut(h).expect("looked up above").invite_tx = tx,
                            Err(e) => {
                                self.emit(h, CallEvent::Ended(EndReason::AuthFailed(e.to_string())))
                            }
                        }
                    }
                    Err(e) => self.emit(h, CallEvent::Ended(EndReason::AuthFailed(e.to_string()))),
                }
            }
            _ => {
                let reason = if c.state == State::Cancelling && code == 487 {
                    EndReason::Cancelled
                } else {
                    EndReason::Rejected(code)
                };
                self.emit(h, CallEvent::Ended(reason));
            }
        }
    }

    fn on_reinvite_response(&mut self, now: Instant, h: CallHandle, req: &Request, r: Response) {
        let code = r.status_code.code();
        if code < 200 {
            return;
        }
        let c = self.calls.get_mut(&h).expect("caller looked it up");
        c.reinvite = None;
        match code {
            200..=299 => {
                let seq = msg::cseq(req).map(|s| s.seq).unwrap_or(1);
                let branch = transport::new_branch(&mut self.rng);
                let via = transport::via_value(self.cfg.transport, self.cfg.local, &branch);
                let d = c.dialog.as_mut().expect("re-INVITE only in a dialog");
                d.confirm(&r);
                let ack = d.ack(seq, &via);
                c.ack = Some(ack.clone());
                c.reinvite_offer = None;
                let _ = self.layer.start_client(now, ack, self.peer());
                self.emit(h, CallEvent::Reinvited(r.body));
            }
            491 => {
                // §14.1: owner of the Call-ID: 2.1–4 s; otherwise 0–2 s; in units of 10 ms.
                let range = if c.owner { 210..=400 } else { 0..=200 };
                let backoff = Duration::from_millis(self.rng.gen_range(range) * 10);
                tracing::debug!(call = h.0, ?backoff, "491: re-INVITE glare back-off");
                c.glare_deadline = Some(now + backoff);
            }
            _ => {
                c.reinvite_offer = None;
                self.emit(h, CallEvent::ReinviteFailed(code));
            }
        }
    }

    fn respond(&mut self, now: Instant, tx: TxId, req: &Request, code: u16) {
        let tag = transport::new_tag(&mut self.rng);
        let resp = msg::response_to(req, code, Some(&tag));
        let res = self
            .layer
            .handle_input(now, LayerInput::Respond { tx, response: resp });
        debug_assert!(
            res.is_ok(),
            "a fresh server transaction accepts a final response"
        );
    }

    fn on_request(&mut self, now: Instant, tx: Option<TxId>, req: Request, cancels: Option<TxId>) {
        let Some(tx) = tx else {
            if req.method == Method::Ack {
                self.on_ack(&req);
            }
            return;
        };
        if req.method == Method::Cancel {
            // §9.2: 200 to the CANCEL, 487 to the INVITE if it is still unanswered.
            self.respond(now, tx, &req, 200);
            let target = cancels.and_then(|itx| self.tx_calls.get(&itx).copied());
            if let Some(h) = target {
                if self
                    .calls
                    .get(&h)
                    .is_some_and(|c| c.state == State::Incoming)
                {
                    if let Ok(resp) = self.uas_response(h, 487, Vec::new()) {
                        let itx = self.calls[&h].invite_tx;
                        let _ = self.layer.handle_input(
                            now,
                            LayerInput::Respond {
                                tx: itx,
                                response: resp,
                            },
                        );
                    }
                    self.emit(h, CallEvent::Ended(EndReason::RemoteCancelled));
                }
            }
            return;
        }
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.dialog.as_ref().is_some_and(|d| d.matches_request(&req)))
            .map(|(h, _)| *h);
        match (req.method, found) {
            (Method::Bye, Some(h)) => {
                let c = self.calls.get_mut(&h).expect("found above");
                let d = c.dialog.as_mut().expect("matched a dialog");
                match d.check_remote_cseq(&req) {
                    Ok(()) => {
                        self.respond(now, tx, &req, 200);
                        self.emit(h, CallEvent::Ended(EndReason::RemoteHangup));
                    }
                    Err(code) => self.respond(now, tx, &req, code),
                }
            }
            (Method::Invite, Some(h)) => {
                let pending = self.calls.get(&h).is_some_and(|c| c.reinvite.is_some());
                // §14.2: a re-INVITE while ours is pending gets 491. Accepting peer re-INVITEs
                // needs the media layer's answer: not yet (488 keeps the current session).
                self.respond(now, tx, &req, if pending { 491 } else { 488 });
            }
            (Method::Options, _) => self.respond(now, tx, &req, 200),
            (Method::Invite, None) if msg::to_tag(&req).ok().flatten().is_none() => {
                self.on_incoming_invite(now, tx, req);
            }
            (_, Some(_)) => self.respond(now, tx, &req, 405),
            (_, None) => self.respond(now, tx, &req, 481),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::epoch;

    const PROXY: &str = "198.51.100.7:5060";

    fn endpoint(creds: bool) -> Endpoint {
        Endpoint::new(
            EndpointConfig {
                local: "192.0.2.10:5060".parse().unwrap(),
                transport: Transport::Udp,
                proxy: PROXY.parse().unwrap(),
                contact_user: "outcall".into(),
                credentials: creds.then(|| Credentials {
                    username: "100".into(),
                    password: "pw".into(),
                }),
                timers: LayerConfig::default(),
                register: None,
                keepalive: None,
            },
            42,
        )
    }

    fn proxy() -> Target {
        Target {
            transport: Transport::Udp,
            addr: PROXY.parse().unwrap(),
        }
    }

    /// Drains outputs: (requests/responses sent, call events).
    fn drain(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<CallEvent>) {
        let (mut sent, mut evs) = (Vec::new(), Vec::new());
        while let Some(o) = ep.poll_output() {
            match o {
                Output::Transmit { to, bytes } => {
                    assert_eq!(to, proxy());
                    sent.push(msg::parse(&bytes).expect("we send valid SIP"));
                }
                Output::Call { handle, event } => {
                    assert_eq!(handle, CallHandle(1));
                    evs.push(event);
                }
                Output::Trunk(t) => panic!("unexpected trunk event {t:?}"),
            }
        }
        (sent, evs)
    }

    fn req_of(m: &SipMessage) -> &Request {
        match m {
            SipMessage::Request(r) => r,
            SipMessage::Response(r) => panic!("expected a request, got {}", r.status_code),
        }
    }

    fn names(sent: &[SipMessage]) -> Vec<String> {
        sent.iter()
            .map(|m| match m {
                SipMessage::Request(r) => r.method.to_string(),
                SipMessage::Response(r) => r.status_code.code().to_string(),
            })
            .collect()
    }

    /// The peer's answer to `req`: To tag "peer", Contact, optional body.
    fn reply(req: &Request, code: u16, body: &[u8]) -> Vec<u8> {
        let mut r = msg::response_to(req, code, Some("peer"));
        if (101..300).contains(&code) {
            r.headers.push(Header::Contact(rsip::headers::Contact::new(
                "<sip:gw@198.51.100.7>",
            )));
        }
        if !body.is_empty() {
            r.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
            r.headers
                .push(Header::ContentLength(rsip::headers::ContentLength::new(
                    body.len().to_string(),
                )));
            r.body = body.to_vec();
        }
        msg::to_bytes(&SipMessage::Response(r))
    }

    fn dial(ep: &mut Endpoint, now: Instant) -> Request {
        ep.handle_command(
            now,
            CallHandle(1),
            Command::Dial {
                to: "sip:+15551234567@carrier.example".into(),
                from: "sip:100@carrier.example".into(),
                offer: b"v=0\r\n".to_vec(),
                ring_timeout: Duration::from_secs(30),
            },
        )
        .unwrap();
        let (sent, evs) = drain(ep);
        assert_eq!(names(&sent), ["INVITE"]);
        assert!(evs.is_empty());
        let invite = req_of(&sent[0]).clone();
        assert_eq!(invite.body, b"v=0\r\n");
        invite
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn answered_call_acked_and_hung_up_with_bye() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = dial(&mut ep, t0);
        ep.handle_input(at(t0, 50), proxy(), reply(&invite, 100, b""));
        ep.handle_input(at(t0, 100), proxy(), reply(&invite, 180, b""));
        assert_eq!(drain(&mut ep), (vec![], vec![CallEvent::Ringing]));
        ep.handle_input(at(t0, 2000), proxy(), reply(&invite, 200, b"v=0 answer"));
        let (sent, evs) = drain(&mut ep);
        assert_eq!(evs, [CallEvent::Answered(b"v=0 answer".to_vec())]);
        assert_eq!(names(&sent), ["ACK"]);
        let ack = req_of(&sent[0]);
        assert_eq!(msg::cseq(ack).unwrap().seq, 1);
        assert_ne!(
            msg::branch(ack).unwrap(),
            msg::branch(&invite).unwrap(),
            "2xx ACK: new branch"
        );
        assert_eq!(ack.uri.to_string(), "sip:gw@198.51.100.7");
        // The 2xx is retransmitted: ACKed again, no second Answered.
        ep.handle_input(at(t0, 2500), proxy(), reply(&invite, 200, b"v=0 answer"));
        let (sent2, evs) = drain(&mut ep);
        assert_eq!((names(&sent2), evs), (vec!["ACK".to_owned()], vec![]));
        assert_eq!(sent2[0], sent[0], "the same ACK");
        ep.handle_command(at(t0, 10_000), CallHandle(1), Command::Hangup)
            .unwrap();
        let (sent, _) = drain(&mut ep);
        assert_eq!(names(&sent), ["BYE"]);
        let bye = req_of(&sent[0]).clone();
        assert_eq!(msg::cseq(&bye).unwrap().seq, 2);
        ep.handle_input(at(t0, 10_100), proxy(), reply(&bye, 200, b""));
        assert_eq!(drain(&mut ep).1, [CallEvent::Ended(EndReason::LocalHangup)]);
        assert_eq!(ep.calls(), 0);
    }

    #[test]
    fn ring_timeout_cancels_and_487_ends_call() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = dial(&mut ep, t0);
        ep.handle_input(at(t0, 1000), proxy(), reply(&invite, 180, b""));
        drain(&mut ep);
        // Nothing happens before 30 s (the ICT is in Proceeding: no retransmissions).
        assert_eq!(ep.poll_timeout(), Some(at(t0, 30_000)));
        ep.handle_timeout(at(t0, 30_000));
        let (sent, evs) = drain(&mut ep);
        assert_eq!((names(&sent), evs), (vec!["CANCEL".to_owned()], vec![]));
        let cancel = req_of(&sent[0]).clone();
        assert_eq!(msg::branch(&cancel).unwrap(), msg::branch(&invite).unwrap());
        ep.handle_input(at(t0, 30_050), proxy(), reply(&cancel, 200, b""));
        ep.handle_input(at(t0, 30_060), proxy(), reply(&invite, 487, b""));
        let (sent, evs) = drain(&mut ep);
        assert_eq!(names(&sent), ["ACK"], "the ICT ACKs the 487");
        assert_eq!(evs, [CallEvent::Ended(EndReason::Cancelled)]);
    }

    #[test]
    fn cancel_waits_for_a_provisional() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = dial(&mut ep, t0);
        ep.handle_command(at(t0, 100), CallHandle(1), Command::Hangup)
            .unwrap();
        assert!(drain(&mut ep).0.is_empty(), "§9.1: no CANCEL before a 1xx");
        ep.handle_input(at(t0, 200), proxy(), reply(&invite, 100, b""));
        let (sent, _) = drain(&mut ep);
        assert_eq!(
            names(&sent),
            ["CANCEL"],
            "a 100 is a provisional: CANCEL now"
        );
        let cancel = req_of(&sent[0]).clone();
        ep.handle_input(at(t0, 300), proxy(), reply(&cancel, 200, b""));
        ep.handle_input(at(t0, 310), proxy(), reply(&invite, 487, b""));
        assert_eq!(drain(&mut ep).1, [CallEvent::Ended(EndReason::Cancelled)]);
    }

    #[test]
    fn proxy_challenge_is_answered_once_then_busy() {
        let t0 = epoch();
        let mut ep = endpoint(true);
        let invite = dial(&mut ep, t0);
        let mut challenge = msg::response_to(&invite, 407, Some("p"));
        challenge.headers.push(Header::ProxyAuthenticate(
            rsip::headers::ProxyAuthenticate::new(
                "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256",
            ),
        ));
        ep.handle_input(
            at(t0, 100),
            proxy(),
            msg::to_bytes(&SipMessage::Response(challenge.clone())),
        );
        let (sent, evs) = drain(&mut ep);
        assert!(evs.is_empty());
        assert_eq!(names(&sent), ["ACK", "INVITE"]);
        let invite2 = req_of(&sent[1]).clone();
        assert_eq!(msg::cseq(&invite2).unwrap().seq, 2);
        let text = String::from_utf8(msg::to_bytes(&sent[1])).unwrap();
        assert!(
            text.contains("Proxy-Authorization: Digest username=\"100\""),
            "{text}"
        );
        ep.handle_input(at(t0, 200), proxy(), reply(&invite2, 486, b""));
        let (sent, evs) = drain(&mut ep);
        assert_eq!(names(&sent), ["ACK"]);
        assert_eq!(evs, [CallEvent::Ended(EndReason::Rejected(486))]);
        // Without credentials, a 407 ends the call.
        let mut ep = endpoint(false);
        let invite = dial(&mut ep, t0);
        challenge = msg::response_to(&invite, 407, Some("p"));
        ep.handle_input(
            at(t0, 100),
            proxy(),
            msg::to_bytes(&SipMessage::Response(challenge)),
        );
        assert!(matches!(
            drain(&mut ep).1[..],
            [CallEvent::Ended(EndReason::AuthFailed(_))]
        ));
    }

    fn answered(ep: &mut Endpoint, t0: Instant) -> Request {
        let invite = dial(ep, t0);
        ep.handle_input(at(t0, 100), proxy(), reply(&invite, 200, b"sdp"));
        drain(ep);
        invite
    }

    #[test]
    fn remote_bye_is_answered_200() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = answered(&mut ep, t0);
        let bye = format!(
            "BYE sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKpb\r\n\
From: <sip:+15551234567@carrier.example>;tag=peer\r\nTo: <sip:100@carrier.example>;tag={}\r\n\
Call-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            msg::from_tag(&invite).unwrap().unwrap(),
            msg::call_id(&invite).unwrap()
        );
        ep.handle_input(at(t0, 5000), proxy(), bye.into_bytes());
        let (sent, evs) = drain(&mut ep);
        assert_eq!(names(&sent), ["200"]);
        assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteHangup)]);
    }

    #[test]
    fn glare_491_backs_off_per_section_14_1_then_retries() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        answered(&mut ep, t0);
        ep.handle_command(
            at(t0, 1000),
            CallHandle(1),
            Command::Reinvite {
                offer: b"hold".to_vec(),
            },
        )
        .unwrap();
        let (sent, _) = drain(&mut ep);
        assert_eq!(names(&sent), ["INVITE"]);
        let re1 = req_of(&sent[0]).clone();
        assert_eq!(msg::cseq(&re1).unwrap().seq, 2);
        assert_eq!(re1.body, b"hold");
        ep.handle_input(at(t0, 1100), proxy(), reply(&re1, 491, b""));
        let (sent, evs) = drain(&mut ep);
        assert_eq!((names(&sent), evs), (vec!["ACK".to_owned()], vec![]));
        // The retry deadline lies in [2.1 s, 4 s] after the 491 (we own the Call-ID).
        let mut now;
        let retry = loop {
            let next = ep.poll_timeout().expect("the glare timer is armed");
            assert!(
                next - at(t0, 1100) <= Duration::from_secs(4),
                "no retry within 4 s"
            );
            now = next;
            ep.handle_timeout(now);
            let (sent, _) = drain(&mut ep);
            if let Some(m) = sent
                .iter()
                .find(|m| matches!(m, SipMessage::Request(r) if r.method == Method::Invite))
            {
                break req_of(m).clone();
            }
        };
        let waited = now - at(t0, 1100);
        assert!(waited >= Duration::from_millis(2100), "waited {waited:?}");
        assert_eq!(msg::cseq(&retry).unwrap().seq, 3);
        assert_eq!(retry.body, b"hold");
        ep.handle_input(now, proxy(), reply(&retry, 200, b"held"));
        let (sent, evs) = drain(&mut ep);
        assert_eq!(names(&sent), ["ACK"]);
        assert_eq!(evs, [CallEvent::Reinvited(b"held".to_vec())]);
    }

    #[test]
    fn glare_backoff_is_reproducible_from_the_seed() {
        let run = || {
            let t0 = epoch();
            let mut ep = endpoint(false);
            answered(&mut ep, t0);
            ep.handle_command(
                at(t0, 1000),
                CallHandle(1),
                Command::Reinvite { offer: vec![] },
            )
            .unwrap();
            let re = req_of(&drain(&mut ep).0[0]).clone();
            ep.handle_input(at(t0, 1100), proxy(), reply(&re, 491, b""));
            drain(&mut ep);
            ep.poll_timeout().map(|t| t - t0)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn peer_reinvite_during_ours_gets_491_and_strangers_get_answers() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = answered(&mut ep, t0);
        ep.handle_command(
            at(t0, 1000),
            CallHandle(1),
            Command::Reinvite { offer: vec![] },
        )
        .unwrap();
        drain(&mut ep);
        let theirs = format!(
            "INVITE sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKpr\r\n\
From: <sip:+15551234567@carrier.example>;tag=peer\r\nTo: <sip:100@carrier.example>;tag={}\r\n\
Call-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@198.51.100.7>\r\nContent-Length: 0\r\n\r\n",
            msg::from_tag(&invite).unwrap().unwrap(),
            msg::call_id(&invite).unwrap()
        );
        ep.handle_input(at(t0, 1001), proxy(), theirs.clone().into_bytes());
        assert_eq!(names(&drain(&mut ep).0), ["100", "491"]);
        let stranger = theirs
            .replace("Call-ID: ", "Call-ID: x")
            .replace("z9hG4bKpr", "z9hG4bKps");
        ep.handle_input(at(t0, 1002), proxy(), stranger.into_bytes());
        assert_eq!(
            names(&drain(&mut ep).0),
            ["100", "481"],
            "To tag but no dialog: 481 (§12.2.2)"
        );
        let options = String::from(
            "OPTIONS sip:outcall@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKo\r\n\
From: <sip:p@carrier.example>;tag=o\r\nTo: <sip:outcall@192.0.2.10>\r\nCall-ID: o1\r\n\
CSeq: 5 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        ep.handle_input(at(t0, 1003), proxy(), options.into_bytes());
        assert_eq!(names(&drain(&mut ep).0), ["200"]);
    }

    #[test]
    fn no_answer_at_all_times_out_with_timer_b() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        dial(&mut ep, t0);
        let mut invites = 1;
        let mut end = None;
        for _ in 0..50 {
            let Some(next) = ep.poll_timeout() else { break };
            ep.handle_timeout(next);
            let (sent, evs) = drain(&mut ep);
            invites += names(&sent).iter().filter(|n| *n == "INVITE").count();
            if !evs.is_empty() {
                end = Some((next - t0, evs));
            }
        }
        // The ring timeout (30 s) comes first but a CANCEL must wait for a 1xx; Timer B ends it.
        assert_eq!(
            end,
            Some((
                Duration::from_secs(32),
                vec![CallEvent::Ended(EndReason::Timeout)]
            ))
        );
        assert_eq!(invites, 7);
    }

    fn trunk_endpoint() -> Endpoint {
        let mut ep = endpoint(true);
        ep.cfg.register = Some(RegisterConfig {
            registrar: "sip:carrier.example".into(),
            aor: "sip:100@carrier.example".into(),
            expires: Duration::from_secs(600),
        });
        ep.cfg.keepalive = Some(Duration::from_secs(30));
        let creds = ep.cfg.credentials.clone();
        ep.registration = ep
            .cfg
            .register
            .clone()
            .map(|r| Registration::new(r, creds, &mut ep.rng));
        ep
    }

    fn drain_trunk(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<TrunkEvent>) {
        let (mut sent, mut evs) = (Vec::new(), Vec::new());
        while let Some(o) = ep.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => sent.push(msg::parse(&bytes).unwrap()),
                Output::Trunk(t) => evs.push(t),
                Output::Call { .. } => panic!("no calls here"),
            }
        }
        (sent, evs)
    }

    #[test]
    fn registration_with_challenge_and_refresh() {
        let t0 = epoch();
        let mut ep = trunk_endpoint();
        ep.start_trunk(t0);
        ep.handle_timeout(t0);
        let (sent, _) = drain_trunk(&mut ep);
        assert_eq!(names(&sent), ["REGISTER", "OPTIONS"]);
        let reg = req_of(&sent[0]).clone();
        let options = req_of(&sent[1]).clone();
        let mut ch = msg::response_to(&reg, 401, Some("r"));
        ch.headers.push(Header::WwwAuthenticate(
            rsip::headers::WwwAuthenticate::new(
                "Digest realm=\"carrier\", nonce=\"n\", qop=\"auth\"",
            ),
        ));
        ep.handle_input(
            at(t0, 50),
            proxy(),
            msg::to_bytes(&SipMessage::Response(ch)),
        );
        let (sent, evs) = drain_trunk(&mut ep);
        assert_eq!(names(&sent), ["REGISTER"]);
        assert!(evs.is_empty());
        let reg2 = req_of(&sent[0]).clone();
        assert!(String::from_utf8(msg::to_bytes(&sent[0]))
            .unwrap()
            .contains("Authorization: Digest"));
        let mut ok = msg::response_to(&reg2, 200, Some("r"));
        ok.headers
            .push(Header::Expires(rsip::headers::Expires::new("600")));
        ep.handle_input(
            at(t0, 100),
            proxy(),
            msg::to_bytes(&SipMessage::Response(ok)),
        );
        ep.handle_input(at(t0, 120), proxy(), reply(&options, 200, b""));
        let (_, evs) = drain_trunk(&mut ep);
        assert_eq!(
            evs,
            [
                TrunkEvent::Registered(Duration::from_secs(600)),
                TrunkEvent::Up
            ]
        );
        assert_eq!(ep.trunk_state(), TrunkState::Up);
        // Refresh 60 s before expiry: at 100 ms + 540 s.
        let mut now;
        let refresh = loop {
            now = ep.poll_timeout().unwrap();
            assert!(now <= at(t0, 540_100));
            ep.handle_timeout(now);
            let (sent, _) = drain_trunk(&mut ep);
            // Answer keep-alives so the trunk stays up.
            for m in &sent {
                if let SipMessage::Request(r) = m {
                    if r.method == Method::Options {
                        ep.handle_input(now, proxy(), reply(r, 200, b""));
                    }
                }
            }
            if let Some(r) = sent
                .iter()
                .find(|m| matches!(m, SipMessage::Request(r) if r.method == Method::Register))
            {
                break req_of(r).clone();
            }
            drain_trunk(&mut ep);
        };
        assert_eq!(now, at(t0, 540_100));
        assert!(msg::cseq(&refresh).unwrap().seq > msg::cseq(&reg2).unwrap().seq);
        assert_eq!(msg::call_id(&refresh).unwrap(), msg::call_id(&reg).unwrap());
    }

    #[test]
    fn keepalive_marks_trunk_down_and_up() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        ep.cfg.keepalive = Some(Duration::from_secs(30));
        ep.start_trunk(t0);
        ep.handle_timeout(t0);
        let (sent, _) = drain_trunk(&mut ep);
        assert_eq!(names(&sent), ["OPTIONS"]);
        // Nobody answers: Timer F at 32 s marks the trunk down.
        let mut down_at = None;
        for _ in 0..40 {
            let now = ep.poll_timeout().unwrap();
            ep.handle_timeout(now);
            let (_, evs) = drain_trunk(&mut ep);
            if evs == [TrunkEvent::Down] {
                down_at = Some(now - t0);
                break;
            }
        }
        assert_eq!(down_at, Some(Duration::from_secs(32)));
        // The next probe (due at 30 s, skipped while the first ran) goes at 60 s; answer it.
        let now = ep.poll_timeout().unwrap();
        assert_eq!(now - t0, Duration::from_secs(60));
        ep.handle_timeout(now);
        let (sent, _) = drain_trunk(&mut ep);
        assert_eq!(names(&sent), ["OPTIONS"]);
        ep.handle_input(now, proxy(), reply(req_of(&sent[0]), 404, b""));
        assert_eq!(
            drain_trunk(&mut ep).1,
            [TrunkEvent::Up],
            "any response means the trunk is up"
        );
    }

    const INBOUND: &str = "INVITE sip:+15550001111@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKin1\r\n\
Max-Forwards: 69\r\n\
From: <sip:+15559998888@carrier.example>;tag=caller\r\n\
To: <sip:+15550001111@192.0.2.10>\r\n\
Call-ID: in-1@carrier.example\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:gw@198.51.100.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\r\noffer";

    fn resp_of(m: &SipMessage) -> &Response {
        match m {
            SipMessage::Response(r) => r,
            SipMessage::Request(r) => panic!("expected a response, got {}", r.method),
        }
    }

    /// Drains outputs of an inbound call (handle INBOUND_HANDLE_BASE).
    fn drain_in(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<CallEvent>) {
        let (mut sent, mut evs) = (Vec::new(), Vec::new());
        while let Some(o) = ep.poll_output() {
            match o {
                Output::Transmit { to, bytes } => {
                    assert_eq!(to, proxy());
                    sent.push(msg::parse(&bytes).unwrap());
                }
                Output::Call { handle, event } => {
                    assert_eq!(handle, CallHandle(INBOUND_HANDLE_BASE));
                    evs.push(event);
                }
                Output::Trunk(t) => panic!("{t:?}"),
            }
        }
        (sent, evs)
    }

    fn incoming(ep: &mut Endpoint, t0: Instant) -> Request {
        ep.handle_input(t0, proxy(), INBOUND.as_bytes().to_vec());
        let (sent, evs) = drain_in(ep);
        assert_eq!(names(&sent), ["100"]);
        assert_eq!(
            evs,
            [CallEvent::Incoming {
                from: "sip:+15559998888@carrier.example".into(),
                to: "sip:+15550001111@192.0.2.10:5060".into(),
                offer: b"offer".to_vec(),
            }]
        );
        match msg::parse(INBOUND.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    fn ack_for(invite: &Request, ok: &Response, branch: &str) -> Vec<u8> {
        let tag = msg::to_tag(ok).unwrap().unwrap();
        let text = format!(
            "ACK sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch={branch}\r\n\
From: <sip:+15559998888@carrier.example>;tag=caller\r\nTo: <sip:+15550001111@192.0.2.10>;tag={tag}\r\n\
Call-ID: {}\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
            msg::call_id(invite).unwrap()
        );
        text.into_bytes()
    }

    #[test]
    fn inbound_call_ring_answer_ack_and_remote_bye() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = incoming(&mut ep, t0);
        let h = CallHandle(INBOUND_HANDLE_BASE);
        ep.handle_command(at(t0, 10), h, Command::Ring).unwrap();
        let (sent, _) = drain_in(&mut ep);
        assert_eq!(names(&sent), ["180"]);
        let tag = msg::to_tag(resp_of(&sent[0]))
            .unwrap()
            .expect("180 carries our tag");
        ep.handle_command(
            at(t0, 20),
            h,
            Command::Answer {
                sdp: b"answer".to_vec(),
            },
        )
        .unwrap();
        let (sent, _) = drain_in(&mut ep);
        assert_eq!(names(&sent), ["200"]);
        let ok = resp_of(&sent[0]).clone();
        assert_eq!(
            msg::to_tag(&ok).unwrap(),
            Some(tag),
            "same tag on 180 and 200"
        );
        assert_eq!(ok.body, b"answer");
        // §13.3.1.4: retransmitted at T1, then 2·T1 later, until the ACK.
        for (ms, want) in [(519, 0), (520, 1), (1519, 0), (1520, 1)] {
            ep.handle_timeout(at(t0, ms));
            let (sent, _) = drain_in(&mut ep);
            assert_eq!(sent.len(), want, "at {ms} ms");
        }
        ep.handle_input(at(t0, 2000), proxy(), ack_for(&invite, &ok, "z9hG4bKack1"));
        assert_eq!(drain_in(&mut ep), (vec![], vec![CallEvent::Established]));
        ep.handle_timeout(at(t0, 3520));
        assert!(
            drain_in(&mut ep).0.is_empty(),
            "no retransmission after the ACK"
        );
        let bye = String::from_utf8(ack_for(&invite, &ok, "z9hG4bKbye1"))
            .unwrap()
            .replace("ACK sip", "BYE sip")
            .replace("CSeq: 7 ACK", "CSeq: 8 BYE");
        ep.handle_input(at(t0, 9000), proxy(), bye.into_bytes());
        let (sent, evs) = drain_in(&mut ep);
        assert_eq!(names(&sent), ["200"]);
        assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteHangup)]);
    }

    #[test]
    fn inbound_cancel_gets_200_and_487() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        let invite = incoming(&mut ep, t0);
        let cancel = msg::cancel_for(&invite);
        ep.handle_input(
            at(t0, 100),
            proxy(),
            msg::to_bytes(&SipMessage::Request(cancel)),
        );
        let (sent, evs) = drain_in(&mut ep);
        assert_eq!(names(&sent), ["200", "487"]);
        assert_eq!(msg::cseq(resp_of(&sent[0])).unwrap().method, Method::Cancel);
        assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteCancelled)]);
        // The caller ACKs the 487 in the INVITE's transaction: absorbed by the IST.
        let ack = msg::ack_for_non_2xx(&invite, resp_of(&sent[1]));
        ep.handle_input(
            at(t0, 150),
            proxy(),
            msg::to_bytes(&SipMessage::Request(ack)),
        );
        assert_eq!(drain_in(&mut ep), (vec![], vec![]));
    }

    #[test]
    fn inbound_answer_without_ack_gives_up_after_64_t1() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        incoming(&mut ep, t0);
        let h = CallHandle(INBOUND_HANDLE_BASE);
        ep.handle_command(t0, h, Command::Answer { sdp: b"a".to_vec() })
            .unwrap();
        let mut oks = drain_in(&mut ep).0.len();
        let mut end = None;
        for _ in 0..100 {
            let Some(next) = ep.poll_timeout() else { break };
            ep.handle_timeout(next);
            let (sent, evs) = drain_in(&mut ep);
            oks += names(&sent).iter().filter(|n| *n == "200").count();
            if !evs.is_empty() {
                assert_eq!(names(&sent), ["BYE"]);
                end = Some((next - t0, evs));
                break;
            }
        }
        assert_eq!(
            end,
            Some((
                Duration::from_secs(32),
                vec![CallEvent::Ended(EndReason::NoAck)]
            ))
        );
        // 0, 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s: 1 + 3 + 7 (every T2 = 4 s from 7.5 s).
        assert_eq!(oks, 11);
    }

    #[test]
    fn inbound_reject_and_misuse() {
        let t0 = epoch();
        let mut ep = endpoint(false);
        incoming(&mut ep, t0);
        let h = CallHandle(INBOUND_HANDLE_BASE);
        assert!(ep
            .handle_command(t0, h, Command::Reject { status: 200 })
            .is_err());
        ep.handle_command(t0, h, Command::Reject { status: 603 })
            .unwrap();
        let (sent, evs) = drain_in(&mut ep);
        assert_eq!(names(&sent), ["603"]);
        assert_eq!(evs, [CallEvent::Ended(EndReason::Rejected(603))]);
        assert!(
            ep.handle_command(t0, h, Command::Ring).is_err(),
            "the call is gone"
        );
    }
}
