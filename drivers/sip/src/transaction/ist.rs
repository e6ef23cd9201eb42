//! INVITE server transaction: RFC 3261 §17.2.1 (figure 7) with the RFC 6026 §8.5–8.7 Accepted
//! state (so a 2xx no longer destroys the transaction, and INVITE retransmissions arriving after
//! it are absorbed instead of looking like new requests).
//!
//! ```text
//!   Proceeding --1xx from TU--> Proceeding      (INVITE retransmit: resend last 1xx)
//!       |  \--2xx from TU--> Accepted --Timer L--> Terminated       (RFC 6026)
//!       \--300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
//!                                \--Timer H--> Terminated (timeout to TU)
//! ```
//! The transaction sends `100 Trying` as soon as it is created (§17.2.1: it MUST unless the TU
//! answers within 200 ms, which the core cannot promise).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Output, ServerInput, Timer, TimerConfig, TimerTable};
use crate::error::Error;
use crate::msg::{self, Method, Request, Response, SipMessage};

/// States of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IstState {
    /// The INVITE was passed to the TU; provisional responses may be sent.
    Proceeding,
    /// A 300–699 was sent; retransmitting it until the ACK.
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026): the TU retransmits it; INVITE retransmissions are absorbed.
    Accepted,
    /// Finished.
    Terminated,
}

impl IstState {
    fn name(self) -> &'static str {
        match self {
            IstState::Proceeding => "Proceeding",
            IstState::Completed => "Completed",
            IstState::Confirmed => "Confirmed",
            IstState::Accepted => "Accepted",
            IstState::Terminated => "Terminated",
        }
    }
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct Ist {
    state: IstState,
    cfg: TimerConfig,
    invite: Request,
    last: Response,
    timers: TimerTable,
    timer_g: Duration,
    out: VecDeque<Output>,
}

impl Ist {
    /// Creates the transaction for a received INVITE and queues its `100 Trying`.
    ///
    /// The transaction layer hands the INVITE itself to the TU.
    #[must_use]
    pub fn new(_now: Instant, invite: Request, cfg: TimerConfig) -> Self {
        let trying = msg::response_to(&invite, 100, None);
        let mut out = VecDeque::new();
        out.push_back(Output::Transmit(SipMessage::Response(trying.clone())));
        Self {
            state: IstState::Proceeding,
            cfg,
            invite,
            last: trying,
            timers: TimerTable::default(),
            timer_g: cfg.t1,
            out,
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> IstState {
        self.state
    }

    /// The INVITE that created this transaction.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.invite
    }

    /// Feeds a matched request (retransmitted INVITE or ACK), a response from the TU, or a
    /// transport error.
    ///
    /// # Errors
    /// [`Error::ResponseInState`] if the TU sends a response the state does not allow
    /// (anything but a 2xx after a 2xx, or any response after a 300–699).
    pub fn handle_input(&mut self, now: Instant, input: ServerInput) -> Result<(), Error> {
        match input {
            ServerInput::Request(r) => {
                self.on_request(now, r);
                Ok(())
            }
            ServerInput::Respond(r) => self.on_tu_response(now, r),
            ServerInput::TransportError => {
                if matches!(self.state, IstState::Proceeding | IstState::Completed) {
                    self.out.push_back(Output::TransportError);
                    self.terminate();
                }
                Ok(())
            }
        }
    }

    fn on_request(&mut self, now: Instant, r: Request) {
        match (self.state, r.method) {
            (IstState::Proceeding | IstState::Completed, Method::Invite) => {
                // §17.2.1: a retransmitted INVITE gets the most recent response again.
                self.out
                    .push_back(Output::Transmit(SipMessage::Response(self.last.clone())));
            }
            (IstState::Completed, Method::Ack) => {
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                self.set_state(IstState::Confirmed);
                let i = self.cfg.timer_i();
                if i.is_zero() {
                    self.terminate();
                } else {
                    self.timers.set(Timer::I, now + i);
                }
            }
            (IstState::Accepted, Method::Ack) => {
                // RFC 6026 §8.7: an ACK matching the transaction goes to the TU.
                self.out.push_back(Output::Request(r));
            }
            (state, method) => tracing::debug!(?state, %method, "ist absorbs request"),
        }
    }

    fn on_tu_response(&mut self, now: Instant, r: Response) -> Result<(), Error> {
        let code = r.status_code.code();
        match (self.state, code) {
            (IstState::Proceeding, 100..=199) => {
                self.send(r);
            }
            (IstState::Proceeding, 200..=299) => {
                self.send(r);
                self.set_state(IstState::Accepted);
                self.timers.set(Timer::L, now + self.cfg.t1x64());
            }
            (IstState::Accepted, 200..=299) => {
                // RFC 6026 §8.6: the TU's 2xx retransmissions pass through.
                self.send(r);
            }
            (IstState::Proceeding, 300..=699) => {
                self.send(r);
                self.set_state(IstState::Completed);
                if !self.cfg.reliable {
                    self.timers.set(Timer::G, now + self.timer_g);
                }
                self.timers.set(Timer::H, now + self.cfg.t1x64());
            }
            (state, code) => {
                return Err(Error::ResponseInState {
                    code,
                    state: state.name(),
                });
            }
        }
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (self.state, timer) {
                (IstState::Completed, Timer::G) => {
                    self.out
                        .push_back(Output::Transmit(SipMessage::Response(self.last.clone())));
                    self.timer_g = (self.timer_g * 2).min(self.cfg.t2);
                    self.timers.set(Timer::G, now + self.timer_g);
                }
                (IstState::Completed, Timer::H) => {
                    self.out.push_back(Output::Timeout(Timer::H));
                    self.terminate();
                }
                (IstState::Confirmed, Timer::I) | (IstState::Accepted, Timer::L) => {
                    self.terminate();
                }
                (state, timer) => tracing::debug!(?state, ?timer, "ist: stale timer"),
            }
        }
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next deadline, if any timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    fn send(&mut self, r: Response) {
        self.last = r.clone();
        self.out
            .push_back(Output::Transmit(SipMessage::Response(r)));
    }

    fn set_state(&mut self, state: IstState) {
        tracing::debug!(from = ?self.state, to = ?state, "ist");
        self.state = state;
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.set_state(IstState::Terminated);
        self.out.push_back(Output::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::{epoch, request, response, summary};

    #[derive(Clone, Copy, Debug)]
    enum Act {
        /// The peer retransmits the INVITE.
        Invite,
        /// The peer sends the ACK.
        Ack,
        /// The TU sends a response with this code.
        Send(u16),
        Tick,
        TransportError,
    }
    use Act::*;
    use IstState::*;

    type Step = (u64, Act, &'static [&'static str], IstState, Option<u64>);

    fn run(cfg: TimerConfig, steps: &[Step]) -> Ist {
        let t0 = epoch();
        let invite = request("INVITE");
        let ack = request("ACK");
        let mut t = Ist::new(t0, invite.clone(), cfg);
        let drain = |t: &mut Ist| -> Vec<String> {
            std::iter::from_fn(|| t.poll_output())
                .map(|o| summary(&o))
                .collect()
        };
        let ms = |i: Option<Instant>| i.map(|i| (i - t0).as_millis() as u64);
        assert_eq!(drain(&mut t), ["tx 100"], "100 Trying at once");
        assert_eq!(t.poll_timeout(), None);
        for (i, (at, act, want, state, next)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*at);
            let res = match act {
                Invite => t.handle_input(now, ServerInput::Request(invite.clone())),
                Ack => t.handle_input(now, ServerInput::Request(ack.clone())),
                Send(code) => t.handle_input(now, ServerInput::Respond(response(&invite, *code))),
                Tick => {
                    t.handle_timeout(now);
                    Ok(())
                }
                TransportError => t.handle_input(now, ServerInput::TransportError),
            };
            assert_eq!(res, Ok(()), "step {i} {act:?}");
            assert_eq!(drain(&mut t), *want, "step {i} {act:?} at {at}");
            assert_eq!(t.state(), *state, "step {i} state");
            assert_eq!(ms(t.poll_timeout()), *next, "step {i} deadline");
        }
        t
    }

    #[test]
    fn retransmitted_invite_gets_last_provisional() {
        run(
            TimerConfig::unreliable(),
            &[
                (10, Invite, &["tx 100"], Proceeding, None),
                (20, Send(180), &["tx 180"], Proceeding, None),
                (30, Invite, &["tx 180"], Proceeding, None),
                (40, Send(183), &["tx 183"], Proceeding, None),
                (50, Ack, &[], Proceeding, None),
            ],
        );
    }

    #[test]
    fn timer_g_doubles_to_t2_until_timer_h() {
        // G after 0.5, 1, 2, 4, 4… s from the 486 at 1 s; H at 1 + 32 s.
        let mut steps: Vec<Step> = vec![
            (1000, Send(486), &["tx 486"], Completed, Some(1500)),
            (1500, Tick, &["tx 486"], Completed, Some(2500)),
            (2500, Tick, &["tx 486"], Completed, Some(4500)),
            (4500, Tick, &["tx 486"], Completed, Some(8500)),
        ];
        for at in [8500, 12500, 16500, 20500, 24500, 28500] {
            steps.push((at, Tick, &["tx 486"], Completed, Some(at + 4000)));
        }
        steps.push((32500, Tick, &["tx 486"], Completed, Some(33000)));
        steps.push((32600, Invite, &["tx 486"], Completed, Some(33000)));
        steps.push((33000, Tick, &["timeout H", "terminated"], Terminated, None));
        run(TimerConfig::unreliable(), &steps);
    }

    #[test]
    fn ack_confirms_then_timer_i() {
        run(
            TimerConfig::unreliable(),
            &[
                (0, Send(404), &["tx 404"], Completed, Some(500)),
                (500, Tick, &["tx 404"], Completed, Some(1500)),
                (700, Ack, &[], Confirmed, Some(5700)),
                (800, Ack, &[], Confirmed, Some(5700)),
                (900, Invite, &[], Confirmed, Some(5700)),
                (5700, Tick, &["terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn reliable_has_no_g_and_zero_i() {
        run(
            TimerConfig::reliable(),
            &[
                (0, Send(603), &["tx 603"], Completed, Some(32000)),
                (100, Ack, &["terminated"], Terminated, None),
            ],
        );
        run(
            TimerConfig::reliable(),
            &[
                (0, Send(603), &["tx 603"], Completed, Some(32000)),
                (32000, Tick, &["timeout H", "terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn rfc6026_accepted_state() {
        run(
            TimerConfig::unreliable(),
            &[
                (10, Send(180), &["tx 180"], Proceeding, None),
                (20, Send(200), &["tx 200"], Accepted, Some(32020)),
                (30, Invite, &[], Accepted, Some(32020)),
                (520, Send(200), &["tx 200"], Accepted, Some(32020)),
                (600, Ack, &["up ACK"], Accepted, Some(32020)),
                (700, TransportError, &[], Accepted, Some(32020)),
                (32020, Tick, &["terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn transport_error_in_proceeding_and_completed() {
        run(
            TimerConfig::unreliable(),
            &[(
                5,
                TransportError,
                &["transport-error", "terminated"],
                Terminated,
                None,
            )],
        );
        run(
            TimerConfig::unreliable(),
            &[
                (0, Send(500), &["tx 500"], Completed, Some(500)),
                (
                    5,
                    TransportError,
                    &["transport-error", "terminated"],
                    Terminated,
                    None,
                ),
            ],
        );
    }

    #[test]
    fn tu_misuse_is_an_error_not_a_transition() {
        let mut t = run(
            TimerConfig::unreliable(),
            &[(0, Send(486), &["tx 486"], Completed, Some(500))],
        );
        let now = epoch();
        let invite = request("INVITE");
        for code in [180, 200, 486] {
            let err = t.handle_input(now, ServerInput::Respond(response(&invite, code)));
            assert_eq!(
                err,
                Err(Error::ResponseInState {
                    code,
                    state: "Completed"
                })
            );
        }
        assert_eq!(t.state(), Completed);
        let mut t = run(
            TimerConfig::unreliable(),
            &[(0, Send(200), &["tx 200"], Accepted, Some(32000))],
        );
        let err = t.handle_input(now, ServerInput::Respond(response(&invite, 486)));
        assert_eq!(
            err,
            Err(Error::ResponseInState {
                code: 486,
                state: "Accepted"
            })
        );
    }
}
