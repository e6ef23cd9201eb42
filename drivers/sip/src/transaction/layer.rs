//! The transaction layer: matches datagrams to transactions (RFC 3261 §17.1.3, §17.2.3), creates
//! server transactions for new requests, answers malformed ones (§8.2, §21.4.1) and turns the
//! machines' outputs into addressed datagrams.
//!
//! Matching:
//! - client side (§17.1.3): top Via `branch` + CSeq method;
//! - server side (§17.2.3): top Via `branch` + sent-by + method, where an ACK matches the INVITE
//!   transaction. A CANCEL is its own transaction; the event that delivers it names the INVITE
//!   server transaction it cancels (§9.2), or the layer answers 481 itself.
//! - Requests whose branch lacks the magic cookie (RFC 2543 peers) are keyed by Call-ID, From tag,
//!   CSeq number and top Via instead, which is what §17.2.3's fallback amounts to for a UAS.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::ratelimit::{Limiter, RateLimit};
use super::{ClientInput, Ict, Ist, Nict, Nist, Output, ServerInput, Timer, TimerConfig};
use crate::error::{Error, ParseError};
use crate::msg::{self, Method, Request, Response, SipMessage, BRANCH_COOKIE};
use crate::transport::{self, Target, Transport};

/// Identifies one transaction inside a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    /// rsip's `Method` is not `Hash`: its printed name.
    method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    sent_by: String,
    method: String,
}

#[derive(Debug)]
enum Machine {
    Ict(Ict),
    Nict(Nict),
    Ist(Ist),
    Nist(Nist),
}

impl Machine {
    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Machine::Ict(t) => t.poll_output(),
            Machine::Nict(t) => t.poll_output(),
            Machine::Ist(t) => t.poll_output(),
            Machine::Nist(t) => t.poll_output(),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Ict(t) => t.poll_timeout(),
            Machine::Nict(t) => t.poll_timeout(),
            Machine::Ist(t) => t.poll_timeout(),
            Machine::Nist(t) => t.poll_timeout(),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::Ict(t) => t.handle_timeout(now),
            Machine::Nict(t) => t.handle_timeout(now),
            Machine::Ist(t) => t.handle_timeout(now),
            Machine::Nist(t) => t.handle_timeout(now),
        }
    }
}

#[derive(Debug)]
struct Entry {
    machine: Machine,
    /// Where requests (client) or responses (server) go.
    peer: Target,
    client_key: Option<ClientKey>,
    server_key: Option<ServerKey>,
}

/// An event for the transaction user (the dialog/trunk layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request. `tx` is its server transaction (`None` for an ACK, which has none).
    /// `cancels` names the INVITE server transaction a CANCEL targets (§9.2).
    Request {
        /// The server transaction created for it.
        tx: Option<TxId>,
        /// The request (top Via stamped with received/rport).
        request: Request,
        /// Where it came from.
        source: Target,
        /// For a CANCEL: the matching INVITE server transaction.
        cancels: Option<TxId>,
    },
    /// A response matched to a client transaction.
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        response: Response,
    },
    /// A response that matches no transaction (e.g. a 2xx retransmission after the ICT ended);
    /// the TU core may still need it (§13.2.2.4).
    StrayResponse(Response),
    /// A server transaction's ACK in the RFC 6026 Accepted state.
    Ack {
        /// The INVITE server transaction.
        tx: TxId,
        /// The ACK.
        request: Request,
    },
    /// The transaction failed on a timer (B, F, H).
    Timeout {
        /// The transaction.
        tx: TxId,
        /// The timer that fired.
        timer: Timer,
    },
    /// The transport failed for the transaction.
    TransportError {
        /// The transaction.
        tx: TxId,
    },
    /// The transaction ended and was removed.
    Terminated {
        /// The transaction.
        tx: TxId,
    },
}

/// What the layer asks of its shell.
// Outputs are drained one at a time right after each call; boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerOutput {
    /// Send these bytes.
    Transmit {
        /// Destination (transport and address).
        to: Target,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Tell the TU.
    Event(Event),
}

/// Input to the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A datagram (or a framed stream message) arrived.
    Received {
        /// Where it came from.
        source: Target,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// The TU answers a request of a server transaction.
    Respond {
        /// The server transaction.
        tx: TxId,
        /// The response.
        response: Response,
    },
    /// The shell could not deliver a message of this transaction.
    TransportError {
        /// The transaction.
        tx: TxId,
    },
}

/// Timer values for the layer: T1, T2, T4 (the reliable flag is set per transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerConfig {
    /// RFC 3261 T1.
    pub t1: Duration,
    /// RFC 3261 T2.
    pub t2: Duration,
    /// RFC 3261 T4.
    pub t4: Duration,
    /// Per-source flood limit applied before parsing (`None`: unlimited).
    pub rate_limit: Option<RateLimit>,
}

impl Default for LayerConfig {
    fn default() -> Self {
        Self {
            t1: super::T1,
            t2: super::T2,
            t4: super::T4,
            rate_limit: Some(RateLimit::default()),
        }
    }
}

/// Every live transaction of one endpoint, keyed per §17.1.3 / §17.2.3.
#[derive(Debug)]
pub struct TransactionLayer {
    cfg: LayerConfig,
    next_id: u64,
    entries: HashMap<TxId, Entry>,
    clients: HashMap<ClientKey, TxId>,
    servers: HashMap<ServerKey, TxId>,
    out: VecDeque<LayerOutput>,
    rng: SmallRng,
    limiter: Option<Limiter>,
}

impl TransactionLayer {
    /// A layer with these timers; `rng_seed` makes generated tags reproducible.
    #[must_use]
    pub fn new(cfg: LayerConfig, rng_seed: u64) -> Self {
        Self {
            cfg,
            next_id: 1,
            entries: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            out: VecDeque::new(),
            rng: SmallRng::seed_from_u64(rng_seed),
            limiter: cfg.rate_limit.map(Limiter::new),
        }
    }

    /// Exempts a trusted peer (the trunk's proxy) from the per-source flood limit.
    pub fn trust(&mut self, ip: std::net::IpAddr) {
        if let Some(l) = &mut self.limiter {
            l.trust(ip);
        }
    }

    /// Number of live transactions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transaction is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn timers(&self, transport: Transport) -> TimerConfig {
        TimerConfig {
            t1: self.cfg.t1,
            t2: self.cfg.t2,
            t4: self.cfg.t4,
            reliable: transport.is_reliable(),
        }
    }

    /// Starts a client transaction for `request` towards `target`. A UDP request over 1300
    /// bytes is moved to TCP and its Via rewritten (§18.1.1); the returned target says which.
    ///
    /// # Errors
    /// [`Error::BadMessage`] if the request has no Via branch or CSeq;
    /// [`Error::DuplicateTransaction`] if its branch is in use.
    pub fn start_client(
        &mut self,
        now: Instant,
        mut request: Request,
        target: Target,
    ) -> Result<(TxId, Target), Error> {
        let branch = msg::branch(&request)
            .map_err(Error::BadMessage)?
            .ok_or(Error::BadMessage(ParseError::MissingHeader("Via branch")))?;
        msg::cseq(&request).map_err(Error::BadMessage)?;
        let len = msg::to_bytes(&SipMessage::Request(request.clone())).len();
        let transport = transport::choose_transport(target.transport, len);
        if transport != target.transport {
            transport::set_via_transport(&mut request, transport);
        }
        let target = Target {
            transport,
            ..target
        };
        // ACK for a 2xx is not a transaction (§17.1.1.3): just send it.
        if request.method == Method::Ack {
            self.transmit(target, SipMessage::Request(request));
            return Ok((TxId(0), target));
        }
        let key = ClientKey {
            branch,
            method: request.method.to_string(),
        };
        if self.clients.contains_key(&key) {
            return Err(Error::DuplicateTransaction(key.branch));
        }
        let cfg = self.timers(transport);
        let machine = if request.method == Method::Invite {
            Machine::Ict(Ict::new(now, request, cfg))
        } else {
            Machine::Nict(Nict::new(now, request, cfg))
        };
        let id = self.alloc();
        self.clients.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                machine,
                peer: target,
                client_key: Some(key),
                server_key: None,
            },
        );
        self.drain(id);
        Ok((id, target))
    }

    /// Feeds a received message, a TU response or a transport error.
    ///
    /// # Errors
    /// [`Error::NoTransaction`] if the named transaction does not exist;
    /// [`Error::ResponseInState`] if a server transaction cannot send that response.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), Error> {
        match input {
            Input::Received { source, bytes } => {
                self.on_received(now, source, &bytes);
                Ok(())
            }
            Input::Respond { tx, response } => {
                let entry = self
                    .entries
                    .get_mut(&tx)
                    .ok_or(Error::NoTransaction(tx.0.to_string()))?;
                match &mut entry.machine {
                    Machine::Ist(t) => t.handle_input(now, ServerInput::Respond(response))?,
                    Machine::Nist(t) => t.handle_input(now, ServerInput::Respond(response))?,
                    Machine::Ict(_) | Machine::Nict(_) => {
                        return Err(Error::NoTransaction(format!("{} is a client", tx.0)))
                    }
                }
                self.drain(tx);
                Ok(())
            }
            Input::TransportError { tx } => {
                let entry = self
                    .entries
                    .get_mut(&tx)
                    .ok_or(Error::NoTransaction(tx.0.to_string()))?;
                match &mut entry.machine {
                    Machine::Ict(t) => t.handle_input(now, ClientInput::TransportError),
                    Machine::Nict(t) => t.handle_input(now, ClientInput::TransportError),
                    Machine::Ist(t) => t.handle_input(now, ServerInput::TransportError)?,
                    Machine::Nist(t) => t.handle_input(now, ServerInput::TransportError)?,
                }
                self.drain(tx);
                Ok(())
            }
        }
    }

    /// Fires every transaction timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.machine.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        let mut due = due;
        due.sort();
        for id in due {
            if let Some(e) = self.entries.get_mut(&id) {
                e.machine.handle_timeout(now);
            }
            self.drain(id);
        }
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<LayerOutput> {
        self.out.pop_front()
    }

    /// The earliest deadline of all transactions.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.machine.poll_timeout())
            .min()
    }

    fn alloc(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    fn transmit(&mut self, to: Target, msg: SipMessage) {
        self.out.push_back(LayerOutput::Transmit {
            to,
            bytes: msg::to_bytes(&msg),
        });
    }

    fn on_received(&mut self, now: Instant, source: Target, bytes: &[u8]) {
        if let Some(l) = &mut self.limiter {
            if !l.allow(now, source.addr.ip()) {
                return;
            }
        }
        match msg::parse(bytes) {
            Ok(SipMessage::Request(r)) => self.on_request(now, source, r),
            Ok(SipMessage::Response(r)) => self.on_response(now, r),
            Err(e) => {
                tracing::warn!(%e, from = %source.addr, "malformed SIP message");
                let (code, reason) = match e {
                    ParseError::UnknownMethod(_) => (501, "Not Implemented"),
                    _ => (400, "Bad Request"),
                };
                let tag = transport::new_tag(&mut self.rng);
                if let Some(answer) = msg::salvage_response(bytes, code, reason, &tag) {
                    self.out.push_back(LayerOutput::Transmit {
                        to: source,
                        bytes: answer,
                    });
                }
            }
        }
    }

    fn server_key(r: &Request, method: Method) -> Option<ServerKey> {
        let via = msg::top_via(r).ok()?;
        let sent_by = via.uri.host_with_port.to_string();
        let branch = match via.branch() {
            Some(b) if b.to_string().starts_with(BRANCH_COOKIE) => b.to_string(),
            _ => {
                // RFC 2543 fallback: enough of §17.2.3's list to separate transactions.
                let cseq = msg::cseq(r).ok()?.seq;
                let from_tag = msg::from_tag(r).ok().flatten().unwrap_or_default();
                format!("2543:{}:{from_tag}:{cseq}:{via}", msg::call_id(r).ok()?)
            }
        };
        Some(ServerKey {
            branch,
            sent_by,
            method: method.to_string(),
        })
    }

    fn on_request(&mut self, now: Instant, source: Target, mut r: Request) {
        transport::stamp_received(&mut r, source.addr);
        let method = if r.method == Method::Ack {
            Method::Invite
        } else {
            r.method
        };
        let Some(key) = Self::server_key(&r, method) else {
            return; // parse() already checked Via and CSeq; nothing sensible to do
        };
        if let Some(&id) = self.servers.get(&key) {
            let entry = self
                .entries
                .get_mut(&id)
                .expect("servers map only live ids");
            let res = match &mut entry.machine {
                Machine::Ist(t) => t.handle_input(now, ServerInput::Request(r)),
                Machine::Nist(t) => t.handle_input(now, ServerInput::Request(r)),
                Machine::Ict(_) | Machine::Nict(_) => Ok(()),
            };
            debug_assert!(res.is_ok(), "a request input never fails");
            self.drain(id);
            return;
        }
        if r.method == Method::Ack {
            // ACK for a 2xx, or stray: the TU decides (§17.2.3 / §13.3.1.4).
            self.out.push_back(LayerOutput::Event(Event::Request {
                tx: None,
                request: r,
                source,
                cancels: None,
            }));
            return;
        }
        let cancels = if r.method == Method::Cancel {
            let invite_key = ServerKey {
                method: Method::Invite.to_string(),
                ..key.clone()
            };
            self.servers.get(&invite_key).copied()
        } else {
            None
        };
        let peer = match msg::top_via(&r)
            .ok()
            .and_then(|v| transport::response_addr(&v))
        {
            Some(addr) if !source.transport.is_reliable() => Target { addr, ..source },
            _ => source,
        };
        let cfg = self.timers(source.transport);
        let machine = if r.method == Method::Invite {
            Machine::Ist(Ist::new(now, r.clone(), cfg))
        } else {
            Machine::Nist(Nist::new(now, r.clone(), cfg))
        };
        let id = self.alloc();
        self.servers.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                machine,
                peer,
                client_key: None,
                server_key: Some(key),
            },
        );
        if r.method == Method::Cancel && cancels.is_none() {
            // §9.2: no matching INVITE: 481, and the TU never sees it.
            let resp = msg::response_to(&r, 481, Some(&transport::new_tag(&mut self.rng)));
            if let Some(Entry {
                machine: Machine::Nist(t),
                ..
            }) = self.entries.get_mut(&id)
            {
                let res = t.handle_input(now, ServerInput::Respond(resp));
                debug_assert!(res.is_ok(), "a fresh NIST accepts a final response");
            }
            self.drain(id);
            return;
        }
        self.drain(id);
        self.out.push_back(LayerOutput::Event(Event::Request {
            tx: Some(id),
            request: r,
            source,
            cancels,
        }));
    }

    fn on_response(&mut self, now: Instant, r: Response) {
        let key = match (msg::branch(&r), msg::cseq(&r)) {
            (Ok(Some(branch)), Ok(cseq)) => ClientKey {
                branch,
                method: cseq.method.to_string(),
            },
            _ => return,
        };
        let Some(&id) = self.clients.get(&key) else {
            self.out
                .push_back(LayerOutput::Event(Event::StrayResponse(r)));
            return;
        };
        let entry = self
            .entries
            .get_mut(&id)
            .expect("clients map only live ids");
        match &mut entry.machine {
            Machine::Ict(t) => t.handle_input(now, ClientInput::Response(r)),
            Machine::Nict(t) => t.handle_input(now, ClientInput::Response(r)),
            Machine::Ist(_) | Machine::Nist(_) => {}
        }
        self.drain(id);
    }

    /// Moves a machine's outputs into the layer's queue; removes it once Terminated.
    fn drain(&mut self, id: TxId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let peer = entry.peer;
        let mut terminated = false;
        let mut outs = Vec::new();
        while let Some(o) = entry.machine.poll_output() {
            outs.push(o);
        }
        for o in outs {
            let ev = match o {
                Output::Transmit(m) => {
                    self.transmit(peer, m);
                    continue;
                }
                Output::Response(response) => Event::Response { tx: id, response },
                Output::Request(request) => Event::Ack { tx: id, request },
                Output::Timeout(timer) => Event::Timeout { tx: id, timer },
                Output::TransportError => Event::TransportError { tx: id },
                Output::Terminated => {
                    terminated = true;
                    Event::Terminated { tx: id }
                }
            };
            self.out.push_back(LayerOutput::Event(ev));
        }
        if terminated {
            let e = self.entries.remove(&id).expect("entry looked up above");
            if let Some(k) = e.client_key {
                self.clients.remove(&k);
            }
            if let Some(k) = e.server_key {
                self.servers.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::{epoch, request};

    fn udp(addr: &str) -> Target {
        Target {
            transport: Transport::Udp,
            addr: addr.parse().unwrap(),
        }
    }

    fn drain(l: &mut TransactionLayer) -> Vec<LayerOutput> {
        std::iter::from_fn(|| l.poll_output()).collect()
    }

    fn sent(outs: &[LayerOutput]) -> Vec<(Target, SipMessage)> {
        outs.iter()
            .filter_map(|o| match o {
                LayerOutput::Transmit { to, bytes } => Some((*to, msg::parse(bytes).unwrap())),
                LayerOutput::Event(_) => None,
            })
            .collect()
    }

    fn events(outs: Vec<LayerOutput>) -> Vec<Event> {
        outs.into_iter()
            .filter_map(|o| match o {
                LayerOutput::Event(e) => Some(e),
                LayerOutput::Transmit { .. } => None,
            })
            .collect()
    }

    fn bytes(m: impl Into<SipMessage>) -> Vec<u8> {
        msg::to_bytes(&m.into())
    }

    #[test]
    fn client_matching_by_branch_and_method() {
        let t0 = epoch();
        let mut l = TransactionLayer::new(LayerConfig::default(), 1);
        let invite = request("INVITE");
        let (id, to) = l
            .start_client(t0, invite.clone(), udp("198.51.100.1:5060"))
            .unwrap();
        assert_eq!(to.transport, Transport::Udp);
        let out = drain(&mut l);
        assert_eq!(sent(&out).len(), 1);
        let src = udp("198.51.100.1:5060");
        // 180 with the same branch and method: matched.
        let ringing = msg::response_to(&invite, 180, Some("x"));
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(ringing.clone()),
            },
        )
        .unwrap();
        assert_eq!(
            events(drain(&mut l)),
            [Event::Response {
                tx: id,
                response: ringing
            }]
        );
        // Same branch but CSeq method CANCEL: a different transaction (none): stray.
        let cancel = msg::cancel_for(&invite);
        let resp = msg::response_to(&cancel, 200, Some("x"));
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(resp.clone()),
            },
        )
        .unwrap();
        assert_eq!(events(drain(&mut l)), [Event::StrayResponse(resp)]);
        // Duplicate branch refused.
        assert!(matches!(
            l.start_client(t0, invite, src),
            Err(Error::DuplicateTransaction(_))
        ));
    }

    #[test]
    fn server_invite_retransmit_ack_and_cancel() {
        let t0 = epoch();
        let mut l = TransactionLayer::new(LayerConfig::default(), 1);
        let src = udp("203.0.113.5:40000");
        let invite = request("INVITE");
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(invite.clone()),
            },
        )
        .unwrap();
        let out = drain(&mut l);
        // 100 Trying goes to received/rport: the request's Via had ";rport".
        let s = sent(&out);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, src);
        let evs = events(out);
        let Event::Request {
            tx: Some(tx),
            request,
            cancels: None,
            ..
        } = &evs[0]
        else {
            panic!("{evs:?}")
        };
        let tx = *tx;
        let via = msg::top_via(request).unwrap();
        assert_eq!(transport::response_addr(&via), Some(src.addr));
        // Retransmission: absorbed by the IST (resends 100), no new event.
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(invite.clone()),
            },
        )
        .unwrap();
        let out = drain(&mut l);
        assert_eq!(sent(&out).len(), 1);
        assert!(events(out).is_empty());
        // CANCEL with the same branch: its own NIST, naming the INVITE transaction.
        let cancel = msg::cancel_for(&invite);
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(cancel),
            },
        )
        .unwrap();
        let evs = events(drain(&mut l));
        let Event::Request {
            tx: Some(ctx),
            cancels: Some(c),
            ..
        } = &evs[0]
        else {
            panic!("{evs:?}")
        };
        assert_eq!(*c, tx);
        assert_ne!(*ctx, tx);
        // TU: 487 to the INVITE, then the ACK with the same branch matches the IST.
        let resp = msg::response_to(&invite, 487, Some("t"));
        l.handle_input(
            t0,
            Input::Respond {
                tx,
                response: resp.clone(),
            },
        )
        .unwrap();
        drain(&mut l);
        let ack = msg::ack_for_non_2xx(&invite, &resp);
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(ack),
            },
        )
        .unwrap();
        assert!(drain(&mut l).is_empty(), "ACK absorbed by IST (Confirmed)");
        assert_eq!(l.len(), 2);
        // Timer I (5 s) ends the IST.
        l.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(events(drain(&mut l)), [Event::Terminated { tx }]);
    }

    #[test]
    fn bad_input_gets_protocol_answers() {
        let t0 = epoch();
        let mut l = TransactionLayer::new(LayerConfig::default(), 1);
        let src = udp("203.0.113.5:40000");
        // CANCEL for nothing: 481.
        let cancel = msg::cancel_for(&request("INVITE"));
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: bytes(cancel),
            },
        )
        .unwrap();
        let out = drain(&mut l);
        let SipMessage::Response(r) = &sent(&out)[0].1 else {
            panic!()
        };
        assert_eq!(r.status_code.code(), 481);
        assert!(events(out).is_empty(), "the TU never sees it");
        // Unknown method: 501; a bad CSeq value: 400; garbage: dropped.
        let foo = String::from_utf8(bytes(request("OPTIONS")))
            .unwrap()
            .replace("OPTIONS", "FOO");
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: foo.into_bytes(),
            },
        )
        .unwrap();
        let no_cseq = String::from_utf8(bytes(request("BYE")))
            .unwrap()
            .replace("CSeq: 1 BYE", "CSeq: one BYE");
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: no_cseq.into_bytes(),
            },
        )
        .unwrap();
        l.handle_input(
            t0,
            Input::Received {
                source: src,
                bytes: b"\x00\x01garbage".to_vec(),
            },
        )
        .unwrap();
        let out = drain(&mut l);
        let codes: Vec<String> = out
            .iter()
            .map(|o| match o {
                LayerOutput::Transmit { bytes, .. } => {
                    String::from_utf8_lossy(&bytes[..11]).into_owned()
                }
                LayerOutput::Event(e) => format!("{e:?}"),
            })
            .collect();
        assert_eq!(codes, ["SIP/2.0 501", "SIP/2.0 400"]);
    }

    #[test]
    fn flood_from_one_source_is_dropped_before_parsing() {
        let t0 = epoch();
        let cfg = LayerConfig {
            rate_limit: Some(RateLimit {
                burst: 5,
                per_second: 1,
                max_sources: 16,
            }),
            ..LayerConfig::default()
        };
        let mut l = TransactionLayer::new(cfg, 1);
        let flood = udp("203.0.113.66:5060");
        let mut answered = 0;
        for i in 0..100 {
            let mut r = request("OPTIONS");
            let b = String::from_utf8(bytes(r.clone()))
                .unwrap()
                .replace("z9hG4bKtest1", &format!("z9hG4bKf{i}"));
            r = match msg::parse(b.as_bytes()).unwrap() {
                SipMessage::Request(r) => r,
                _ => unreachable!(),
            };
            l.handle_input(
                t0,
                Input::Received {
                    source: flood,
                    bytes: bytes(r),
                },
            )
            .unwrap();
            answered += events(drain(&mut l)).len();
        }
        assert_eq!(answered, 5, "only the burst reaches the TU");
        let other = udp("203.0.113.7:5060");
        l.handle_input(
            t0,
            Input::Received {
                source: other,
                bytes: bytes(request("OPTIONS")),
            },
        )
        .unwrap();
        assert_eq!(events(drain(&mut l)).len(), 1, "other sources still served");
    }

    #[test]
    fn large_udp_request_moves_to_tcp() {
        let t0 = epoch();
        let mut l = TransactionLayer::new(LayerConfig::default(), 1);
        let mut invite = request("INVITE");
        invite.body = vec![b'a'; 1400];
        let (_, to) = l
            .start_client(t0, invite, udp("198.51.100.1:5060"))
            .unwrap();
        assert_eq!(to.transport, Transport::Tcp);
        let s = sent(&drain(&mut l));
        assert_eq!(s[0].0.transport, Transport::Tcp);
        let SipMessage::Request(r) = &s[0].1 else {
            panic!()
        };
        assert!(msg::top_via(r)
            .unwrap()
            .to_string()
            .starts_with("SIP/2.0/TCP"));
        // Reliable: no Timer A, only B.
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    }

    #[test]
    fn timeouts_are_reported_and_entries_removed() {
        let t0 = epoch();
        let mut l = TransactionLayer::new(LayerConfig::default(), 1);
        let (id, _) = l
            .start_client(t0, request("OPTIONS"), udp("198.51.100.1:5060"))
            .unwrap();
        drain(&mut l);
        let mut now = t0;
        let mut sends = 1;
        for _ in 0..100 {
            let Some(next) = l.poll_timeout() else { break };
            now = next;
            l.handle_timeout(now);
            let out = drain(&mut l);
            sends += sent(&out).len();
            let evs = events(out);
            if !evs.is_empty() {
                assert_eq!(
                    evs,
                    [
                        Event::Timeout {
                            tx: id,
                            timer: Timer::F
                        },
                        Event::Terminated { tx: id }
                    ]
                );
            }
        }
        assert_eq!(now - t0, Duration::from_secs(32));
        assert_eq!(sends, 11, "0, 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s");
        assert!(l.is_empty());
    }
}
