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
use crate::register::{RegisterConfig, Registration, TrunkState};
use crate::transaction::layer::{
    Event, Input as LayerInput, LayerConfig, LayerOutput, TransactionLayer, TxId,
};
use crate::transaction::Timer;
use crate::transport::{self, Target, Transport};

mod trunk;
mod uas;

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
        let mut layer = TransactionLayer::new(cfg.timers, rng_seed ^ 0x5eed);
        // All of a trunk's calls come from its proxy: the flood limit is for everyone else.
        layer.trust(cfg.proxy.ip());
        Self {
            layer,
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
                let ours = c.dialog.as_ref().map(|d| d.id.remote_tag.clone());
                if msg::to_tag(&r).ok().flatten() == ours {
                    // A retransmitted 2xx (RFC 6026: the ICT passes it up): the same ACK again.
                    if let Some(ack) = c.ack.clone() {
                        let to = self.peer();
                        let bytes = msg::to_bytes(&SipMessage::Request(ack));
                        self.out.push_back(Output::Transmit { to, bytes });
                    }
                    return;
                }
                // A 2xx from another fork (§13.2.2.4): ACK it and end that dialog with BYE; the
                // BYE's transaction belongs to no call.
                let invite = c.invite.clone();
                let Ok(mut fork) = Dialog::uac(&invite, &r) else {
                    return;
                };
                let seq = msg::cseq(&invite).map(|s| s.seq).unwrap_or(1);
                let ack = fork.ack(seq, &self.via());
                let bye = fork.request(Method::Bye, &self.via(), None);
                let peer = self.peer();
                let _ = self.layer.start_client(now, ack, peer);
                let _ = self.layer.start_client(now, bye, peer);
                tracing::warn!(call = h.0, "2xx from a second fork: ACK + BYE");
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
mod tests;
