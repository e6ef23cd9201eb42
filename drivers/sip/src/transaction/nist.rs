//! Non-INVITE server transaction: RFC 3261 §17.2.2 (figure 8).
//!
//! ```text
//!   Trying --1xx from TU--> Proceeding --1xx--> Proceeding   (retransmit: resend last 1xx)
//!     \--200-699 from TU--> Completed <--200-699 from TU--/
//!   Completed (retransmit: resend final) --Timer J--> Terminated
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::{Output, ServerInput, Timer, TimerConfig, TimerTable};
use crate::error::Error;
use crate::msg::{Request, Response, SipMessage};

/// States of the non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NistState {
    /// The request was passed to the TU; nothing sent yet (retransmissions are absorbed).
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; retransmitting it on each request retransmission.
    Completed,
    /// Finished.
    Terminated,
}

impl NistState {
    fn name(self) -> &'static str {
        match self {
            NistState::Trying => "Trying",
            NistState::Proceeding => "Proceeding",
            NistState::Completed => "Completed",
            NistState::Terminated => "Terminated",
        }
    }
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub struct Nist {
    state: NistState,
    cfg: TimerConfig,
    request: Request,
    last: Option<Response>,
    timers: TimerTable,
    out: VecDeque<Output>,
}

impl Nist {
    /// Creates the transaction for a received request (the layer passes the request to the TU).
    #[must_use]
    pub fn new(_now: Instant, request: Request, cfg: TimerConfig) -> Self {
        Self {
            state: NistState::Trying,
            cfg,
            request,
            last: None,
            timers: TimerTable::default(),
            out: VecDeque::new(),
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> NistState {
        self.state
    }

    /// The request that created this transaction.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds a retransmitted request, a response from the TU, or a transport error.
    ///
    /// # Errors
    /// [`Error::ResponseInState`] if the TU responds after the final response (§17.2.2: such
    /// responses are discarded).
    pub fn handle_input(&mut self, now: Instant, input: ServerInput) -> Result<(), Error> {
        match input {
            ServerInput::Request(_) => {
                if let (NistState::Proceeding | NistState::Completed, Some(last)) =
                    (self.state, &self.last)
                {
                    self.out
                        .push_back(Output::Transmit(SipMessage::Response(last.clone())));
                }
                Ok(())
            }
            ServerInput::Respond(r) => {
                let code = r.status_code.code();
                match (self.state, code) {
                    (NistState::Trying | NistState::Proceeding, 100..=199) => {
                        self.send(r);
                        self.set_state(NistState::Proceeding);
                    }
                    (NistState::Trying | NistState::Proceeding, 200..=699) => {
                        self.send(r);
                        self.set_state(NistState::Completed);
                        let j = self.cfg.timer_j();
                        if j.is_zero() {
                            self.terminate();
                        } else {
                            self.timers.set(Timer::J, now + j);
                        }
                    }
                    (state, code) => {
                        return Err(Error::ResponseInState {
                            code,
                            state: state.name(),
                        })
                    }
                }
                Ok(())
            }
            ServerInput::TransportError => {
                if matches!(self.state, NistState::Proceeding | NistState::Completed) {
                    self.out.push_back(Output::TransportError);
                    self.terminate();
                }
                Ok(())
            }
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (self.state, timer) {
                (NistState::Completed, Timer::J) => self.terminate(),
                (state, timer) => tracing::debug!(?state, ?timer, "nist: stale timer"),
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
        self.last = Some(r.clone());
        self.out
            .push_back(Output::Transmit(SipMessage::Response(r)));
    }

    fn set_state(&mut self, state: NistState) {
        tracing::debug!(from = ?self.state, to = ?state, "nist");
        self.state = state;
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.set_state(NistState::Terminated);
        self.out.push_back(Output::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::{epoch, request, response, summary};
    use std::time::Duration;

    #[derive(Clone, Copy, Debug)]
    enum Act {
        Retransmit,
        Send(u16),
        Tick,
        TransportError,
    }
    use Act::*;
    use NistState::*;

    type Step = (u64, Act, &'static [&'static str], NistState, Option<u64>);

    fn run(cfg: TimerConfig, steps: &[Step]) -> Nist {
        let t0 = epoch();
        let req = request("BYE");
        let mut t = Nist::new(t0, req.clone(), cfg);
        let drain = |t: &mut Nist| -> Vec<String> {
            std::iter::from_fn(|| t.poll_output())
                .map(|o| summary(&o))
                .collect()
        };
        let ms = |i: Option<Instant>| i.map(|i| (i - t0).as_millis() as u64);
        assert!(drain(&mut t).is_empty());
        for (i, (at, act, want, state, next)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*at);
            let res = match act {
                Retransmit => t.handle_input(now, ServerInput::Request(req.clone())),
                Send(code) => t.handle_input(now, ServerInput::Respond(response(&req, *code))),
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
    fn trying_absorbs_then_proceeding_resends_provisional() {
        run(
            TimerConfig::unreliable(),
            &[
                (10, Retransmit, &[], Trying, None),
                (20, TransportError, &[], Trying, None),
                (30, Send(100), &["tx 100"], Proceeding, None),
                (40, Retransmit, &["tx 100"], Proceeding, None),
                (50, Send(180), &["tx 180"], Proceeding, None),
                (60, Retransmit, &["tx 180"], Proceeding, None),
                (70, Send(200), &["tx 200"], Completed, Some(32070)),
            ],
        );
    }

    #[test]
    fn completed_resends_final_until_timer_j() {
        run(
            TimerConfig::unreliable(),
            &[
                (100, Send(481), &["tx 481"], Completed, Some(32100)),
                (200, Retransmit, &["tx 481"], Completed, Some(32100)),
                (32099, Tick, &[], Completed, Some(32100)),
                (32100, Tick, &["terminated"], Terminated, None),
                (32200, Retransmit, &[], Terminated, None),
            ],
        );
    }

    #[test]
    fn reliable_timer_j_is_zero() {
        run(
            TimerConfig::reliable(),
            &[(0, Send(200), &["tx 200", "terminated"], Terminated, None)],
        );
    }

    #[test]
    fn transport_error_in_proceeding_and_completed() {
        run(
            TimerConfig::unreliable(),
            &[
                (0, Send(100), &["tx 100"], Proceeding, None),
                (
                    1,
                    TransportError,
                    &["transport-error", "terminated"],
                    Terminated,
                    None,
                ),
            ],
        );
        run(
            TimerConfig::unreliable(),
            &[
                (0, Send(200), &["tx 200"], Completed, Some(32000)),
                (
                    1,
                    TransportError,
                    &["transport-error", "terminated"],
                    Terminated,
                    None,
                ),
            ],
        );
    }

    #[test]
    fn responses_after_final_are_refused() {
        let mut t = run(
            TimerConfig::unreliable(),
            &[(0, Send(200), &["tx 200"], Completed, Some(32000))],
        );
        let req = request("BYE");
        let err = t.handle_input(epoch(), ServerInput::Respond(response(&req, 500)));
        assert_eq!(
            err,
            Err(Error::ResponseInState {
                code: 500,
                state: "Completed"
            })
        );
        assert!(t.poll_output().is_none());
    }
}
