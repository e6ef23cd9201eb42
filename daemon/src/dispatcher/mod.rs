//! The dispatcher: takes due requests from the store, gets them ports, follows each call and
//! records every attempt. Sans-IO apart from the store (sled, local and synchronous): inputs
//! are `handle_*` calls with the monotonic `now` and the wall clock `unix`; outputs are
//! drained with [`Dispatcher::poll_output`]; [`Dispatcher::poll_timeout`] says when to call
//! [`Dispatcher::handle_timeout`].
//!
//! The drivers see [`Output::Dial`], `Answer`, `Reject`, `Hangup`; the session runner sees
//! `StartSession`/`StopSession` and reports back with [`Dispatcher::handle_session_end`].

use crate::portmgr::{self, Direction, NoPort, Port, PortManager, Progress};
use crate::request::{Attempt, HungUpBy, RequestId, RequestRecord, RequestState};
use crate::scheduler::{self, Outcome};
use crate::store::{Store, StoreError};
use crate::time::UnixMillis;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// What a line (B-channel or trunk slot) reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// The network offers a call.
    Incoming {
        /// The port.
        port: Port,
        /// Called number.
        dnis: String,
        /// Calling number.
        ani: String,
    },
    /// Our outbound call progressed.
    Progress {
        /// The port.
        port: Port,
        /// How far.
        progress: Progress,
    },
    /// A call was cleared.
    Released {
        /// The port.
        port: Port,
        /// Which call.
        dir: Direction,
        /// Q.850 cause.
        cause: u8,
    },
    /// A span's D-channel (or a trunk) went up or down.
    Span {
        /// The span's index.
        span: usize,
        /// Up or down.
        up: bool,
    },
}

/// What the dispatcher asks of the drivers and the session runner.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Place a call.
    Dial {
        /// The port.
        port: Port,
        /// The request.
        request: RequestId,
        /// Called number.
        number: String,
        /// Calling number.
        caller_id: Option<String>,
    },
    /// Answer the incoming call.
    Answer {
        /// The port.
        port: Port,
    },
    /// Refuse the incoming call.
    Reject {
        /// The port.
        port: Port,
        /// Q.850 cause.
        cause: u8,
    },
    /// Clear a call.
    Hangup {
        /// The port.
        port: Port,
        /// Which call.
        dir: Direction,
        /// Q.850 cause.
        cause: u8,
    },
    /// Run the application on an answered call: the request's, or the inbound one for `dnis`.
    StartSession {
        /// The port.
        port: Port,
        /// The outbound request, or None for an inbound call.
        request: Option<RequestId>,
        /// For inbound calls: called and calling numbers.
        dnis: Option<(String, String)>,
    },
    /// The call under a session ended: stop it.
    StopSession {
        /// The port.
        port: Port,
    },
    /// A request record changed (for watchers).
    Changed(Box<RequestRecord>),
}

/// Why we are clearing an outbound call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clearing {
    RingTimeout,
    MaxDuration,
    SessionEnded,
    Cancelled,
    Shutdown,
}

#[derive(Debug)]
struct Call {
    request: RequestId,
    ring_deadline: Option<Instant>,
    max_deadline: Option<Instant>,
    max_duration: Duration,
    clearing: Option<Clearing>,
    digits: String,
    submitted: Option<serde_json::Value>,
    session: bool,
}

/// The dispatcher.
pub struct Dispatcher {
    store: Store,
    ports: PortManager,
    calls: HashMap<Port, Call>,
    inbound: HashMap<Port, (String, String)>,
    out: VecDeque<Output>,
    next_due: Option<UnixMillis>,
    policy: std::sync::Arc<crate::config::PolicyConfig>,
    /// Why the last dispatch stopped with requests still due.
    blocked: Option<NoPort>,
    draining: bool,
}

/// Q.850 cause 16, normal call clearing.
pub const NORMAL_CLEARING: u8 = 16;

impl Dispatcher {
    /// A dispatcher over `store` and `ports`.
    pub fn new(store: Store, ports: PortManager) -> Self {
        let next_due = store.next_due().ok().flatten();
        Dispatcher {
            store,
            ports,
            calls: HashMap::new(),
            inbound: HashMap::new(),
            out: VecDeque::new(),
            next_due,
            policy: Default::default(),
            blocked: None,
            draining: false,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The port manager (for views).
    pub fn ports(&self) -> &PortManager {
        &self.ports
    }

    /// Calls in progress (outbound and inbound).
    pub fn active_calls(&self) -> usize {
        self.calls.len() + self.inbound.len()
    }

    fn changed(&mut self, r: RequestRecord) {
        self.out.push_back(Output::Changed(Box::new(r)));
    }

    fn transition(
        &mut self,
        id: RequestId,
        change: impl Fn(&mut RequestRecord),
    ) -> Result<RequestRecord, StoreError> {
        let cur = self.store.get(id)?;
        let new = self.store.transition(id, cur.state, change)?;
        // Every state change is durable before anything acts on it: a crash leaves the request
        // in the state last reported, and a final request is never dialled again.
        self.store.flush_blocking()?;
        self.changed(new.clone());
        Ok(new)
    }

    /// The calling-window policy (set at start and on reload).
    pub fn set_policy(&mut self, policy: std::sync::Arc<crate::config::PolicyConfig>) {
        self.policy = policy;
    }

    /// Re-reads the queue's earliest due time (after a submission or a cancel).
    pub fn refresh_due(&mut self) -> Result<(), StoreError> {
        self.next_due = self.store.next_due()?;
        Ok(())
    }

    /// A request was queued (or may have become due): look at the queue on the next dispatch.
    pub fn handle_queued(&mut self, due_at: UnixMillis) {
        self.next_due = Some(self.next_due.map_or(due_at, |d| d.min(due_at)));
    }

    /// Stop dialling; clear every call with cause 16 when `hang_up` (the drain deadline).
    pub fn drain(&mut self, hang_up: bool) {
        self.draining = true;
        if hang_up {
            let ports: Vec<Port> = self.calls.keys().copied().collect();
            for port in ports {
                self.clear(port, Clearing::Shutdown);
            }
            for port in self.inbound.keys().copied().collect::<Vec<_>>() {
                self.out.push_back(Output::Hangup {
                    port,
                    dir: Direction::Inbound,
                    cause: NORMAL_CLEARING,
                });
            }
        }
    }

    fn clear(&mut self, port: Port, why: Clearing) {
        if let Some(c) = self.calls.get_mut(&port) {
            if c.clearing.is_none() {
                c.clearing = Some(why);
                c.ring_deadline = None;
                c.max_deadline = None;
                self.out.push_back(Output::Hangup {
                    port,
                    dir: Direction::Outbound,
                    cause: NORMAL_CLEARING,
                });
            }
        }
    }

    /// Dials due requests while ports are free.
    pub fn dispatch(&mut self, now: Instant, unix: UnixMillis) -> Result<(), StoreError> {
        if self.draining || self.next_due.is_none_or(|d| d > unix) {
            return Ok(());
        }
        let mut due: Vec<RequestRecord> = self
            .store
            .due(unix)?
            .into_iter()
            .map(|id| self.store.get(id))
            .collect::<Result<_, _>>()?;
        scheduler::order(&mut due);
        self.blocked = None;
        for rec in due {
            if rec.spec.expires.is_some_and(|ex| ex <= unix) {
                let r = self.transition(rec.id, |r| {
                    r.state = RequestState::Expired;
                    r.updated_at = unix;
                })?;
                info!(request = %r.id, "expired before it could be dialled");
                continue;
            }
            let window = self
                .policy
                .window_for(&rec.spec.number, rec.spec.window.as_ref());
            if let Some(open) = window.map(|w| w.next_open(unix)).filter(|t| *t > unix) {
                let r = self.transition(rec.id, |r| {
                    r.due_at = open;
                    r.updated_at = unix;
                })?;
                info!(request = %r.id, due_at = %open, "outside the callee's calling window: moved");
                continue;
            }
            match self.ports.dial(now, rec.id) {
                Ok(port) => {
                    let name = self.ports.port_name(port);
                    let r = self.transition(rec.id, |r| {
                        r.state = RequestState::Dialing;
                        r.updated_at = unix;
                        r.attempts.push(Attempt::start(
                            r.attempts.len() as u32 + 1,
                            Some(name.clone()),
                            unix,
                        ));
                    })?;
                    info!(request = %r.id, %port, attempt = r.attempts.len(), "dialling");
                    self.calls.insert(
                        port,
                        Call {
                            request: r.id,
                            ring_deadline: Some(
                                now + Duration::from_secs(r.spec.ring_timeout_s.into()),
                            ),
                            max_deadline: None,
                            max_duration: Duration::from_secs(r.spec.max_duration_s.into()),
                            clearing: None,
                            digits: String::new(),
                            submitted: None,
                            session: false,
                        },
                    );
                    self.drain_ports(unix)?;
                }
                Err(no) => {
                    self.blocked = Some(no);
                    break;
                }
            }
        }
        self.next_due = self.store.next_due()?;
        Ok(())
    }

    /// A line event.
    pub fn handle_event(
        &mut self,
        now: Instant,
        unix: UnixMillis,
        ev: LineEvent,
    ) -> Result<(), StoreError> {
        match ev {
            LineEvent::Incoming { port, dnis, ani } => {
                self.ports.handle_incoming(now, port);
                self.inbound.insert(port, (dnis, ani));
            }
            LineEvent::Progress { port, progress } => {
                self.ports.handle_progress(port, progress);
                if let Some(call) = self.calls.get_mut(&port) {
                    let request = call.request;
                    match progress {
                        Progress::Alerting => {
                            self.transition(request, |r| {
                                if r.state == RequestState::Dialing {
                                    r.state = RequestState::Ringing;
                                    r.updated_at = unix;
                                }
                            })?;
                        }
                        Progress::Connected => {
                            call.ring_deadline = None;
                            call.max_deadline = Some(now + call.max_duration);
                            call.session = true;
                            self.transition(request, |r| {
                                r.state = RequestState::Answered;
                                r.updated_at = unix;
                                if let Some(a) = r.attempts.last_mut() {
                                    a.answered_at = Some(unix);
                                }
                            })?;
                            info!(request = %request, %port, "answered");
                            self.out.push_back(Output::StartSession {
                                port,
                                request: Some(request),
                                dnis: None,
                            });
                        }
                        Progress::Setup | Progress::Proceeding => {}
                    }
                }
            }
            LineEvent::Released { port, dir, cause } => {
                if dir == Direction::Inbound && self.inbound.remove(&port).is_some() {
                    self.out.push_back(Output::StopSession { port });
                }
                self.ports.handle_released(now, port, dir, cause);
            }
            LineEvent::Span { span, up } => self.ports.handle_span(span, up),
        }
        self.drain_ports(unix)?;
        // A released channel or a span coming up may let a waiting request through.
        self.dispatch(now, unix)
    }

    /// The session on `port` ended: digits pressed and values submitted. The dispatcher clears
    /// the call if it is still up.
    pub fn handle_session_end(
        &mut self,
        port: Port,
        digits: String,
        submitted: Option<serde_json::Value>,
    ) {
        if let Some(c) = self.calls.get_mut(&port) {
            c.digits = digits;
            c.submitted = submitted;
            c.session = false;
            self.clear(port, Clearing::SessionEnded);
        } else if self.inbound.contains_key(&port) {
            self.out.push_back(Output::Hangup {
                port,
                dir: Direction::Inbound,
                cause: NORMAL_CLEARING,
            });
        }
    }

    /// DTMF and submitted values seen so far on an outbound call (kept if the callee hangs up).
    pub fn handle_session_progress(
        &mut self,
        port: Port,
        digits: &str,
        submitted: Option<&serde_json::Value>,
    ) {
        if let Some(c) = self.calls.get_mut(&port) {
            c.digits = digits.to_string();
            if let Some(s) = submitted {
                c.submitted = Some(s.clone());
            }
        }
    }

    /// Cancel a request in a call: clear it with cause 16.
    pub fn cancel(&mut self, request: RequestId) -> bool {
        let port = self
            .calls
            .iter()
            .find(|(_, c)| c.request == request)
            .map(|(p, _)| *p);
        if let Some(port) = port {
            self.clear(port, Clearing::Cancelled);
        }
        port.is_some()
    }

    /// Fires ring timeouts, max durations and port timers, then dispatches.
    pub fn handle_timeout(&mut self, now: Instant, unix: UnixMillis) -> Result<(), StoreError> {
        self.ports.handle_timeout(now);
        let expired: Vec<(Port, Clearing)> = self
            .calls
            .iter()
            .filter_map(|(p, c)| {
                if c.ring_deadline.is_some_and(|d| now >= d) {
                    Some((*p, Clearing::RingTimeout))
                } else if c.max_deadline.is_some_and(|d| now >= d) {
                    Some((*p, Clearing::MaxDuration))
                } else {
                    None
                }
            })
            .collect();
        for (port, why) in expired {
            debug!(%port, ?why, "call timer");
            if why == Clearing::MaxDuration {
                self.out.push_back(Output::StopSession { port });
            }
            self.clear(port, why);
        }
        self.dispatch(now, unix)
    }

    fn drain_ports(&mut self, unix: UnixMillis) -> Result<(), StoreError> {
        while let Some(o) = self.ports.poll_output() {
            match o {
                portmgr::Output::Dial { port, request } => {
                    let rec = self.store.get(request)?;
                    self.out.push_back(Output::Dial {
                        port,
                        request,
                        number: rec.spec.number.clone(),
                        caller_id: rec.spec.caller_id.clone(),
                    });
                }
                portmgr::Output::Answer { port } => {
                    self.out.push_back(Output::Answer { port });
                    let dnis = self.inbound.get(&port).cloned();
                    self.out.push_back(Output::StartSession {
                        port,
                        request: None,
                        dnis,
                    });
                }
                portmgr::Output::Reject { port, cause } => {
                    self.inbound.remove(&port);
                    self.out.push_back(Output::Reject { port, cause });
                }
                portmgr::Output::Abandon {
                    port,
                    request,
                    cause,
                } => {
                    warn!(request = %request, %port, "glare: the network's call wins the channel");
                    self.out.push_back(Output::Hangup {
                        port,
                        dir: Direction::Outbound,
                        cause,
                    });
                }
                portmgr::Output::Moved { request, from, to } => {
                    let Some(mut call) = self.calls.remove(&from) else {
                        continue;
                    };
                    match to {
                        Some(to) => {
                            info!(request = %request, %from, %to, "re-dialled on another port after a collision");
                            let name = self.ports.port_name(to);
                            self.transition(request, |r| {
                                if let Some(a) = r.attempts.last_mut() {
                                    a.port = Some(name.clone());
                                }
                            })?;
                            // The Dial for `to` follows in the port manager's outputs.
                            call.clearing = None;
                            self.calls.insert(to, call);
                        }
                        None => {
                            info!(request = %request, %from, "collision and no free port: queued again, no attempt counted");
                            self.transition(request, |r| {
                                r.attempts.pop();
                                r.state = RequestState::Queued;
                                r.due_at = unix;
                                r.updated_at = unix;
                            })?;
                            self.handle_queued(unix);
                        }
                    }
                }
                portmgr::Output::Ended {
                    request,
                    port,
                    cause,
                    progress,
                } => {
                    let call = self.calls.remove(&port);
                    if call.as_ref().is_some_and(|c| c.session) {
                        self.out.push_back(Output::StopSession { port });
                    }
                    self.record_end(request, call, cause, progress, unix)?;
                }
            }
        }
        Ok(())
    }

    fn record_end(
        &mut self,
        request: RequestId,
        call: Option<Call>,
        cause: u8,
        progress: Progress,
        unix: UnixMillis,
    ) -> Result<(), StoreError> {
        let clearing = call.as_ref().and_then(|c| c.clearing);
        let (outcome, hung_up_by) = match (clearing, progress) {
            (Some(Clearing::RingTimeout), _) => (Outcome::RingTimeout, HungUpBy::Outcall),
            (Some(Clearing::Shutdown), Progress::Connected) | (Some(_), Progress::Connected) => {
                (Outcome::Answered, HungUpBy::Outcall)
            }
            (Some(Clearing::Shutdown), _) => (Outcome::Lost, HungUpBy::Outcall),
            (Some(_), _) => (Outcome::Cleared(cause), HungUpBy::Outcall),
            (None, Progress::Connected) => (Outcome::Answered, HungUpBy::Callee),
            (None, _) => (Outcome::Cleared(cause), HungUpBy::Network),
        };
        let rec = self.store.get(request)?;
        let mut next = scheduler::after_attempt(&rec, outcome, unix);
        if clearing == Some(Clearing::Cancelled) {
            next.state = RequestState::Cancelled;
        }
        let (digits, submitted) = call.map(|c| (c.digits, c.submitted)).unwrap_or_default();
        let r = self.transition(request, |r| {
            r.state = next.state;
            r.due_at = next.due_at;
            r.updated_at = unix;
            if let Some(a) = r.attempts.last_mut() {
                a.ended_at = Some(unix);
                a.cause = Some(cause);
                a.outcome = Some(next.outcome.to_string());
                a.hung_up_by = Some(hung_up_by);
                a.digits = digits.clone();
                a.submitted = submitted.clone();
            }
        })?;
        info!(request = %request, state = r.state.name(), cause, "attempt ended");
        if r.state == RequestState::Queued {
            self.handle_queued(r.due_at);
        }
        Ok(())
    }

    /// The next output.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Dispatcher::handle_timeout`] is next needed. `unix` maps the next due time of the
    /// queue (wall clock) onto `now`. With requests due and every port busy there is no queue
    /// timer: the release that frees a port dispatches them.
    #[must_use]
    pub fn poll_timeout(&self, now: Instant, unix: UnixMillis) -> Option<Instant> {
        let call_timers = self
            .calls
            .values()
            .flat_map(|c| [c.ring_deadline, c.max_deadline])
            .flatten();
        let queue = match self.next_due {
            _ if self.draining => None,
            None => None,
            Some(d) if d > unix => Some(now + Duration::from_millis(d.0 - unix.0)),
            Some(_) => match self.blocked {
                Some(NoPort::PacedUntil(t)) => Some(t),
                Some(NoPort::Busy) => self.ports.poll_timeout(),
                None => Some(now),
            },
        };
        call_timers.chain(queue).min()
    }
}

#[cfg(test)]
mod tests;
