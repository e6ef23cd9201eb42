//! INVITE client transaction: RFC 3261 §17.1.1 (figure 5) with the RFC 6026 §8.4 Accepted state.
//!
//! ```text
//!            INVITE sent, Timer A (UDP) and B started
//!   Calling --1xx--> Proceeding --1xx--> Proceeding
//!      |  \--300-699 + ACK--> Completed --Timer D--> Terminated
//!      |   \--2xx--> Accepted --Timer M--> Terminated      (RFC 6026)
//!      \--Timer B / transport error--> Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ClientInput, Output, Timer, TimerConfig, TimerTable};
use crate::msg::{self, Request, Response, SipMessage};

/// States of the INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IctState {
    /// The INVITE was sent; no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300–699 arrived and was ACKed; absorbing its retransmissions.
    Completed,
    /// A 2xx arrived (RFC 6026): further 2xx go to the TU, which ACKs them.
    Accepted,
    /// Finished.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct Ict {
    state: IctState,
    cfg: TimerConfig,
    invite: Request,
    ack: Option<Request>,
    timers: TimerTable,
    timer_a: Duration,
    out: VecDeque<Output>,
}

impl Ict {
    /// Starts the transaction: queues the INVITE for transmission and arms A (UDP) and B.
    #[must_use]
    pub fn new(now: Instant, invite: Request, cfg: TimerConfig) -> Self {
        let mut t = Self {
            state: IctState::Calling,
            cfg,
            invite,
            ack: None,
            timers: TimerTable::default(),
            timer_a: cfg.t1,
            out: VecDeque::new(),
        };
        t.out
            .push_back(Output::Transmit(SipMessage::Request(t.invite.clone())));
        if !cfg.reliable {
            t.timers.set(Timer::A, now + t.timer_a);
        }
        t.timers.set(Timer::B, now + cfg.t1x64());
        tracing::debug!(state = ?t.state, "ict started");
        t
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> IctState {
        self.state
    }

    /// The INVITE this transaction carries.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.invite
    }

    /// Feeds a matched response or a transport error.
    pub fn handle_input(&mut self, now: Instant, input: ClientInput) {
        match input {
            ClientInput::Response(r) => self.on_response(now, r),
            ClientInput::TransportError => match self.state {
                IctState::Calling | IctState::Proceeding | IctState::Completed => {
                    self.out.push_back(Output::TransportError);
                    self.terminate();
                }
                IctState::Accepted | IctState::Terminated => {}
            },
        }
    }

    fn on_response(&mut self, now: Instant, r: Response) {
        let code = r.status_code.code();
        match (self.state, code) {
            (IctState::Calling | IctState::Proceeding, 100..=199) => {
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                self.set_state(IctState::Proceeding);
                self.out.push_back(Output::Response(r));
            }
            (IctState::Calling | IctState::Proceeding, 200..=299) => {
                self.timers.stop_all();
                self.set_state(IctState::Accepted);
                self.timers.set(Timer::M, now + self.cfg.t1x64());
                self.out.push_back(Output::Response(r));
            }
            (IctState::Calling | IctState::Proceeding, 300..=699) => {
                self.timers.stop_all();
                let ack = msg::ack_for_non_2xx(&self.invite, &r);
                self.out.push_back(Output::Response(r));
                self.out
                    .push_back(Output::Transmit(SipMessage::Request(ack.clone())));
                self.ack = Some(ack);
                self.set_state(IctState::Completed);
                self.start_or_fire(now, Timer::D, self.cfg.timer_d());
            }
            (IctState::Completed, 300..=699) => {
                // §17.1.1.2: retransmitted final responses are ACKed again, not passed up.
                let ack = self.ack.clone().expect("Completed always holds its ACK");
                self.out
                    .push_back(Output::Transmit(SipMessage::Request(ack)));
            }
            (IctState::Accepted, 200..=299) => {
                // RFC 6026 §8.4: retransmitted (or forked) 2xx go to the TU, which ACKs them.
                self.out.push_back(Output::Response(r));
            }
            _ => tracing::debug!(code, state = ?self.state, "ict ignores response"),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (self.state, timer) {
                (IctState::Calling, Timer::A) => {
                    self.out
                        .push_back(Output::Transmit(SipMessage::Request(self.invite.clone())));
                    self.timer_a *= 2;
                    self.timers.set(Timer::A, now + self.timer_a);
                }
                (IctState::Calling, Timer::B) => {
                    self.out.push_back(Output::Timeout(Timer::B));
                    self.terminate();
                }
                (IctState::Completed, Timer::D) | (IctState::Accepted, Timer::M) => {
                    self.terminate();
                }
                (state, timer) => tracing::debug!(?state, ?timer, "ict: stale timer"),
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

    fn start_or_fire(&mut self, now: Instant, timer: Timer, after: Duration) {
        if after.is_zero() {
            // Reliable transports: D is 0, so the transaction ends at once.
            self.terminate();
        } else {
            self.timers.set(timer, now + after);
        }
    }

    fn set_state(&mut self, state: IctState) {
        tracing::debug!(from = ?self.state, to = ?state, "ict");
        self.state = state;
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.set_state(IctState::Terminated);
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
    use IctState::*;

    /// (time ms, action, outputs, state after, next deadline ms)
    type Step = (u64, Act, &'static [&'static str], IctState, Option<u64>);

    fn run(cfg: TimerConfig, start: (&[&str], Option<u64>), steps: &[Step]) {
        let t0 = epoch();
        let invite = request("INVITE");
        let mut t = Ict::new(t0, invite.clone(), cfg);
        let drain = |t: &mut Ict| -> Vec<String> {
            std::iter::from_fn(|| t.poll_output())
                .map(|o| summary(&o))
                .collect()
        };
        assert_eq!(drain(&mut t), start.0, "start");
        let ms = |i: Option<Instant>| i.map(|i| (i - t0).as_millis() as u64);
        assert_eq!(ms(t.poll_timeout()), start.1, "start deadline");
        for (i, (at, act, want, state, next)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*at);
            match act {
                Recv(code) => t.handle_input(now, ClientInput::Response(response(&invite, *code))),
                Tick => t.handle_timeout(now),
                TransportError => t.handle_input(now, ClientInput::TransportError),
            }
            assert_eq!(drain(&mut t), *want, "step {i} {act:?} at {at}");
            assert_eq!(t.state(), *state, "step {i} state");
            assert_eq!(ms(t.poll_timeout()), *next, "step {i} deadline");
        }
    }

    #[test]
    fn timer_a_doubles_until_timer_b_over_udp() {
        // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (T1 doubling); B at 64*T1 = 32 s.
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[
                (499, Tick, &[], Calling, Some(500)),
                (500, Tick, &["tx INVITE"], Calling, Some(1500)),
                (1500, Tick, &["tx INVITE"], Calling, Some(3500)),
                (3500, Tick, &["tx INVITE"], Calling, Some(7500)),
                (7500, Tick, &["tx INVITE"], Calling, Some(15500)),
                (15500, Tick, &["tx INVITE"], Calling, Some(31500)),
                (31500, Tick, &["tx INVITE"], Calling, Some(32000)),
                (32000, Tick, &["timeout B", "terminated"], Terminated, None),
            ],
        );
    }

    #[test]
    fn no_timer_a_over_tcp() {
        run(
            TimerConfig::reliable(),
            (&["tx INVITE"], Some(32000)),
            &[(32000, Tick, &["timeout B", "terminated"], Terminated, None)],
        );
    }

    #[test]
    fn provisional_stops_retransmission_and_b() {
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[
                (100, Recv(100), &["up 100"], Proceeding, None),
                (200, Recv(180), &["up 180"], Proceeding, None),
                (60_000, Tick, &[], Proceeding, None),
                (90_000, Recv(183), &["up 183"], Proceeding, None),
            ],
        );
    }

    #[test]
    fn final_error_is_acked_and_absorbed_until_timer_d() {
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[
                (100, Recv(180), &["up 180"], Proceeding, None),
                (
                    1000,
                    Recv(486),
                    &["up 486", "tx ACK"],
                    Completed,
                    Some(33000),
                ),
                (1200, Recv(486), &["tx ACK"], Completed, Some(33000)),
                (1300, Recv(180), &[], Completed, Some(33000)),
                (32999, Tick, &[], Completed, Some(33000)),
                (33000, Tick, &["terminated"], Terminated, None),
                (34000, Recv(486), &[], Terminated, None),
            ],
        );
    }

    #[test]
    fn final_error_from_calling_and_reliable_timer_d_zero() {
        run(
            TimerConfig::reliable(),
            (&["tx INVITE"], Some(32000)),
            &[(
                700,
                Recv(503),
                &["up 503", "tx ACK", "terminated"],
                Terminated,
                None,
            )],
        );
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[(
                400,
                Recv(404),
                &["up 404", "tx ACK"],
                Completed,
                Some(32400),
            )],
        );
    }

    #[test]
    fn rfc6026_accepted_passes_2xx_until_timer_m() {
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[
                (500, Tick, &["tx INVITE"], Calling, Some(1500)),
                (600, Recv(200), &["up 200"], Accepted, Some(32600)),
                (700, Recv(200), &["up 200"], Accepted, Some(32600)),
                (800, Recv(486), &[], Accepted, Some(32600)),
                (900, TransportError, &[], Accepted, Some(32600)),
                (32600, Tick, &["terminated"], Terminated, None),
            ],
        );
        run(
            TimerConfig::unreliable(),
            (&["tx INVITE"], Some(500)),
            &[
                (100, Recv(183), &["up 183"], Proceeding, None),
                (5000, Recv(200), &["up 200"], Accepted, Some(37000)),
            ],
        );
    }

    #[test]
    fn transport_error_in_each_live_state() {
        for (pre, state) in [
            (None, Calling),
            (Some(180), Proceeding),
            (Some(486), Completed),
        ] {
            let mut steps: Vec<Step> = Vec::new();
            let next = match state {
                Calling => Some(500),
                Proceeding => None,
                _ => Some(32100),
            };
            if let Some(code) = pre {
                let want: &'static [&'static str] = if code == 180 {
                    &["up 180"]
                } else {
                    &["up 486", "tx ACK"]
                };
                steps.push((100, Recv(code), want, state, next));
            }
            steps.push((
                200,
                TransportError,
                &["transport-error", "terminated"],
                Terminated,
                None,
            ));
            run(
                TimerConfig::unreliable(),
                (&["tx INVITE"], Some(500)),
                &steps,
            );
        }
    }

    #[test]
    fn ack_for_error_reuses_branch_and_takes_to_tag() {
        let t0 = epoch();
        let invite = request("INVITE");
        let mut t = Ict::new(t0, invite.clone(), TimerConfig::unreliable());
        t.handle_input(t0, ClientInput::Response(response(&invite, 486)));
        let ack = std::iter::from_fn(|| t.poll_output())
            .find_map(|o| match o {
                Output::Transmit(SipMessage::Request(r)) if r.method == msg::Method::Ack => Some(r),
                _ => None,
            })
            .expect("an ACK");
        assert_eq!(msg::branch(&ack).unwrap(), msg::branch(&invite).unwrap());
        assert_eq!(msg::to_tag(&ack).unwrap().as_deref(), Some("srv"));
        assert_eq!(msg::cseq(&ack).unwrap().seq, 1);
        assert_eq!(ack.uri, invite.uri);
    }
}
