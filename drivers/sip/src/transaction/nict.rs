//! Non-INVITE client transaction: RFC 3261 §17.1.2 (figure 6).
//!
//! ```text
//!   Trying --1xx--> Proceeding --1xx--> Proceeding
//!     |  \             \--200-699--> Completed --Timer K--> Terminated
//!     |   \--200-699--> Completed
//!     \--Timer F / transport error--> Terminated   (also from Proceeding)
//! ```
//! Timer E retransmits: T1 doubling up to T2 in Trying, every T2 in Proceeding (UDP only).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ClientInput, Output, Timer, TimerConfig, TimerTable};
use crate::msg::{Request, Response, SipMessage};

/// States of the non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NictState {
    /// The request was sent; no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions of it.
    Completed,
    /// Finished.
    Terminated,
}

/// A non-INVITE client transaction (REGISTER, OPTIONS, BYE, CANCEL…).
#[derive(Debug)]
pub struct Nict {
    state: NictState,
    cfg: TimerConfig,
    request: Request,
    timers: TimerTable,
    timer_e: Duration,
    out: VecDeque<Output>,
}

impl Nict {
    /// Starts the transaction: queues the request and arms E (UDP) and F.
    #[must_use]
    pub fn new(now: Instant, request: Request, cfg: TimerConfig) -> Self {
        let mut t = Self {
            state: NictState::Trying,
            cfg,
            request,
            timers: TimerTable::default(),
            timer_e: cfg.t1,
            out: VecDeque::new(),
        };
        t.out
            .push_back(Output::Transmit(SipMessage::Request(t.request.clone())));
        if !cfg.reliable {
            t.timers.set(Timer::E, now + t.timer_e);
        }
        t.timers.set(Timer::F, now + cfg.t1x64());
        t
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> NictState {
        self.state
    }

    /// The request this transaction carries.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds a matched response or a transport error.
    pub fn handle_input(&mut self, now: Instant, input: ClientInput) {
        match input {
            ClientInput::Response(r) => self.on_response(now, r),
            ClientInput::TransportError => {
                if matches!(self.state, NictState::Trying | NictState::Proceeding) {
                    self.out.push_back(Output::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn on_response(&mut self, now: Instant, r: Response) {
        let code = r.status_code.code();
        match (self.state, code) {
            (NictState::Trying | NictState::Proceeding, 100..=199) => {
                // §17.1.2.2: the running E stays; from its next firing it is T2.
                self.set_state(NictState::Proceeding);
                self.out.push_back(Output::Response(r));
            }
            (NictState::Trying | NictState::Proceeding, 200..=699) => {
                self.timers.stop_all();
                self.set_state(NictState::Completed);
                self.out.push_back(Output::Response(r));
                let k = self.cfg.timer_k();
                if k.is_zero() {
                    self.terminate();
                } else {
                    self.timers.set(Timer::K, now + k);
                }
            }
            _ => tracing::debug!(code, state = ?self.state, "nict absorbs response"),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (self.state, timer) {
                (NictState::Trying | NictState::Proceeding, Timer::E) => {
                    self.out
                        .push_back(Output::Transmit(SipMessage::Request(self.request.clone())));
                    self.timer_e = if self.state == NictState::Trying {
                        (self.timer_e * 2).min(self.cfg.t2)
                    } else {
                        self.cfg.t2
                    };
                    self.timers.set(Timer::E, now + self.timer_e);
                }
                (NictState::Trying | NictState::Proceeding, Timer::F) => {
                    self.out.push_back(Output::Timeout(Timer::F));
                    self.terminate();
                }
                (NictState::Completed, Timer::K) => self.terminate(),
                (state, timer) => tracing::debug!(?state, ?timer, "nict: stale timer"),
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

    fn set_state(&mut self, state: NictState) {
        tracing::debug!(from = ?self.state, to = ?state, "nict");
        self.state = state;
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.set_state(NictState::Terminated);
        self.out.push_back(Output::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::{epoch, request, response, summary};

    #[derive(Clone, Copy, Debug)]
    enum Act {
        Recv(u16),
        Tick,
        TransportError,
    }
    use Act::*;
    use NictState::*;

    type Step = (u64, Act, &'static [&'static str], NictState, Option<u64>);

    fn run(cfg: TimerConfig, first_deadline: u64, steps: &[Step]) {
        let t0 = epoch();
        let req = request("OPTIONS");
        let mut t = Nict::new(t0, req.clone(), cfg);
        let drain = |t: &mut Nict| -> Vec<String> {
            std::iter::from_fn(|| t.poll_output())
                .map(|o| summary(&o))
                .collect()
        };
        let ms = |i: Option<Instant>| i.map(|i| (i - t0).as_millis() as u64);
        assert_eq!(drain(&mut t), ["tx OPTIONS"]);
        assert_eq!(ms(t.poll_timeout()), Some(first_deadline));
        for (i, (at, act, want, state, next)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*at);
            match act {
                Recv(code) => t.handle_input(now, ClientInput::Response(response(&req, *code))),
                Tick => t.handle_timeout(now),
                TransportError => t.handle_input(now, ClientInput::TransportError),
            }
            assert_eq!(drain(&mut t), *want, "step {i} {act:?} at {at}");
            assert_eq!(t.state(), *state, "step {i} state");
            assert_eq!(ms(t.poll_timeout()), *next, "step {i} deadline");
        }
    }

    #[test]
    fn timer_e_doubles_to_t2_then_timer_f() {
        // E after 0.5, 1, 2, 4, 4, 4… s: at 0.5, 1.5, 3.5, 7.5, 11.5, … 31.5; F at 32 s.
        let mut steps: Vec<Step> = vec![
            (500, Tick, &["tx OPTIONS"], Trying, Some(1500)),
            (1500, Tick, &["tx OPTIONS"], Trying, Some(3500)),
            (3500, Tick, &["tx OPTIONS"], Trying, Some(7500)),
        ];
        for at in [7500, 11500, 15500, 19500, 23500, 27500] {
            steps.push((at, Tick, &["tx OPTIONS"], Trying, Some(at + 4000)));
        }
        steps.push((31500, Tick, &["tx OPTIONS"], Trying, Some(32000)));
        steps.push((32000, Tick, &["timeout F", "terminated"], Terminated, None));
        run(TimerConfig::unreliable(), 500, &steps);
    }

    #[test]
    fn proceeding_retransmits_every_t2() {
        run(
            TimerConfig::unreliable(),
            500,
            &[
                (500, Tick, &["tx OPTIONS"], Trying, Some(1500)),
                (600, Recv(100), &["up 100"], Proceeding, Some(1500)),
                (1500, Tick, &["tx OPTIONS"], Proceeding, Some(5500)),
                (5500, Tick, &["tx OPTIONS"], Proceeding, Some(9500)),
                (6000, Recv(180), &["up 180"], Proceeding, Some(9500)),
                (9500, Tick, &["tx OPTIONS"], Proceeding, Some(13500)),
                (10000, Recv(200), &["up 200"], Completed, Some(15000)),
            ],
        );
    }

    #[test]
    fn timeout_f_in_proceeding() {
        run(
            TimerConfig::reliable(),
            32000,
            &[
                (10, Recv(100), &["up 100"], Proceeding, Some(32000)),
                (32000, Tick, &["timeout F", "terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn completed_absorbs_until_timer_k() {
        run(
            TimerConfig::unreliable(),
            500,
            &[
                (100, Recv(401), &["up 401"], Completed, Some(5100)),
                (200, Recv(401), &[], Completed, Some(5100)),
                (300, Recv(100), &[], Completed, Some(5100)),
                (400, TransportError, &[], Completed, Some(5100)),
                (5100, Tick, &["terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn reliable_timer_k_is_zero() {
        run(
            TimerConfig::reliable(),
            32000,
            &[(100, Recv(200), &["up 200", "terminated"], Terminated, None)],
        );
    }

    #[test]
    fn transport_error_in_trying_and_proceeding() {
        run(
            TimerConfig::unreliable(),
            500,
            &[(
                1,
                TransportError,
                &["transport-error", "terminated"],
                Terminated,
                None,
            )],
        );
        run(
            TimerConfig::unreliable(),
            500,
            &[
                (1, Recv(100), &["up 100"], Proceeding, Some(500)),
                (
                    2,
                    TransportError,
                    &["transport-error", "terminated"],
                    Terminated,
                    None,
                ),
            ],
        );
    }
}
