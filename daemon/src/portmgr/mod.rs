//! The port manager: which B-channel (or trunk slot) an outbound call takes, and what happens
//! when the network offers a call on the channel we just seized (glare).
//!
//! Sans-IO (STYLE.md §2): inputs are `handle_*` calls with `now`, outputs are drained with
//! [`PortManager::poll_output`], and [`PortManager::poll_timeout`] says when to call
//! [`PortManager::handle_timeout`]. Randomness comes from a seeded `SmallRng`.
//!
//! Rules, from Q.931 §5.7 (call collisions) and carrier practice:
//! - Every port is bidirectional. We hunt in the order opposite to the carrier's, so both
//!   ends meet only when the span is nearly full.
//! - The network side's call wins a collision. When an incoming SETUP names the channel of our
//!   outbound call that has not yet been answered by CALL PROCEEDING, we answer the incoming
//!   call, clear ours with cause 44 and re-dial the request on another port at once.
//! - A release of our SETUP with cause 34 (no circuit) or 44 (requested channel not available)
//!   before any progress is a collision too: the request is re-dialled elsewhere.
//! - Either way the request keeps its attempt count: glare never costs the callee a retry.
//!   With no other port free, the request goes back to the queue, due at once.
//! - A channel rests for the span's guard time after an inbound call before we dial on it.
//! - Pacing: at most `calls_per_second` new outbound calls per span.

#[cfg(test)]
mod tests;

use crate::config::Hunting;
use crate::request::RequestId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A port: a B-channel of a span (1-based channel), or a slot of a trunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// Index of the span in the configuration.
    pub span: usize,
    /// B-channel number, 1-based.
    pub channel: u16,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.span, self.channel)
    }
}

/// How a span is set up.
#[derive(Clone, Debug)]
pub struct SpanSetup {
    /// Name (for views and logs).
    pub name: String,
    /// B-channels, numbered 1..=channels.
    pub channels: u16,
    /// Our hunting order for outbound calls.
    pub hunting: Hunting,
    /// Outbound attempts per second.
    pub calls_per_second: f64,
    /// Rest after an inbound call.
    pub guard: Duration,
    /// Channels kept for inbound calls.
    pub inbound_reserve: u16,
}

/// Which of the calls a channel may carry an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Our call (SETUP sent by us).
    Outbound,
    /// The network's call (SETUP received).
    Inbound,
}

/// Where an outbound call stands on its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// SETUP sent; nothing back yet (the window in which glare happens).
    Setup,
    /// CALL PROCEEDING / 100 Trying: the network took the channel for our call.
    Proceeding,
    /// ALERTING / 180: the callee's phone rings.
    Alerting,
    /// CONNECT / 200: answered.
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chan {
    Idle,
    /// Free again at this time (after an inbound call).
    Guard(Instant),
    Outbound(RequestId, Progress),
    Inbound,
    Down,
}

#[derive(Debug)]
struct SpanState {
    setup: SpanSetup,
    up: bool,
    chans: Vec<Chan>,
    next_dial: Instant,
    rr_next: u16,
}

/// A span as [`PortManager::view`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanPorts {
    /// The span's name.
    pub name: String,
    /// Whether its D-channel is up.
    pub up: bool,
    /// Per channel, 1 first: `idle`, `guard`, `dialing`, `ringing`, `connected`, `inbound`,
    /// `down`, and the request of an outbound call.
    pub channels: Vec<(&'static str, Option<RequestId>)>,
}

/// What the port manager asks the drivers and the dispatcher to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Seize `port` and place the request's call (SETUP / INVITE).
    Dial {
        /// The port.
        port: Port,
        /// The request.
        request: RequestId,
    },
    /// Answer the incoming call on `port`.
    Answer {
        /// The port.
        port: Port,
    },
    /// Refuse the incoming call on `port` with this Q.850 cause.
    Reject {
        /// The port.
        port: Port,
        /// Q.850 cause.
        cause: u8,
    },
    /// Clear our outbound call on `port` with this cause: it lost a collision.
    Abandon {
        /// The port.
        port: Port,
        /// The request, which is being re-dialled.
        request: RequestId,
        /// Q.850 cause (44).
        cause: u8,
    },
    /// A collision moved the request: it is re-dialled on `to` (a `Dial` follows) or, with
    /// `to` = None, queued again due now. Its attempt count is unchanged.
    Moved {
        /// The request.
        request: RequestId,
        /// The port it lost.
        from: Port,
        /// The new port, if one was free.
        to: Option<Port>,
    },
    /// An outbound call ended (not a collision): the dispatcher records the attempt.
    Ended {
        /// The request.
        request: RequestId,
        /// The port.
        port: Port,
        /// Q.850 cause.
        cause: u8,
        /// How far it got.
        progress: Progress,
    },
}

/// Why no port could be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPort {
    /// Every usable channel is busy (or the global limit is reached): wait for a release.
    Busy,
    /// Spans have free channels, but pacing holds them until this time.
    PacedUntil(Instant),
}

/// The port manager.
#[derive(Debug)]
pub struct PortManager {
    spans: Vec<SpanState>,
    rng: SmallRng,
    max_calls: usize,
    out: VecDeque<Output>,
}

/// Q.850 cause 34, no circuit/channel available.
pub const CAUSE_NO_CIRCUIT: u8 = 34;
/// Q.850 cause 44, requested circuit/channel not available.
pub const CAUSE_CHANNEL_UNAVAILABLE: u8 = 44;

impl PortManager {
    /// A manager over `spans`, all down until [`PortManager::handle_span`] says otherwise.
    /// `max_calls` limits outbound calls over all spans (0 = no limit).
    pub fn new(spans: Vec<SpanSetup>, max_calls: usize, seed: u64, now: Instant) -> Self {
        let spans = spans
            .into_iter()
            .map(|setup| SpanState {
                chans: vec![Chan::Down; setup.channels as usize],
                rr_next: 1,
                up: false,
                next_dial: now,
                setup,
            })
            .collect();
        PortManager {
            spans,
            rng: SmallRng::seed_from_u64(seed),
            max_calls,
            out: VecDeque::new(),
        }
    }

    fn chan(&mut self, p: Port) -> &mut Chan {
        &mut self.spans[p.span].chans[p.channel as usize - 1]
    }

    /// The port's name for records and logs: `SPAN-NAME/CHANNEL`.
    pub fn port_name(&self, p: Port) -> String {
        match self.spans.get(p.span) {
            Some(s) => format!("{}/{}", s.setup.name, p.channel),
            None => p.to_string(),
        }
    }

    /// Outbound calls in progress.
    pub fn outbound_calls(&self) -> usize {
        self.spans
            .iter()
            .flat_map(|s| &s.chans)
            .filter(|c| matches!(c, Chan::Outbound(..)))
            .count()
    }

    fn usable(&self, s: &SpanState, now: Instant) -> Vec<u16> {
        let free: Vec<u16> = (1..=s.setup.channels)
            .filter(|&ch| match s.chans[ch as usize - 1] {
                Chan::Idle => true,
                Chan::Guard(until) => now >= until,
                _ => false,
            })
            .collect();
        if free.len() <= s.setup.inbound_reserve as usize {
            return Vec::new();
        }
        free
    }

    fn pick_channel(&mut self, span: usize, free: &[u16]) -> u16 {
        let s = &mut self.spans[span];
        match s.setup.hunting {
            Hunting::Ascending => free[0],
            Hunting::Descending => *free.last().expect("free is not empty"),
            Hunting::RoundRobin => {
                let ch = free
                    .iter()
                    .copied()
                    .find(|&c| c >= s.rr_next)
                    .unwrap_or(free[0]);
                s.rr_next = if ch >= s.setup.channels { 1 } else { ch + 1 };
                ch
            }
        }
    }

    /// Chooses a port for `request`, seizes it and emits [`Output::Dial`].
    pub fn dial(&mut self, now: Instant, request: RequestId) -> Result<Port, NoPort> {
        self.dial_except(now, request, None)
    }

    fn dial_except(
        &mut self,
        now: Instant,
        request: RequestId,
        except: Option<Port>,
    ) -> Result<Port, NoPort> {
        if self.max_calls > 0 && self.outbound_calls() >= self.max_calls {
            return Err(NoPort::Busy);
        }
        // Candidate spans with their free channels; those held by pacing are noted.
        let mut candidates: Vec<(usize, Vec<u16>)> = Vec::new();
        let mut paced: Option<Instant> = None;
        for (i, s) in self.spans.iter().enumerate() {
            if !s.up {
                continue;
            }
            let mut free = self.usable(s, now);
            if let Some(x) = except.filter(|x| x.span == i) {
                free.retain(|&c| c != x.channel);
            }
            if free.is_empty() {
                continue;
            }
            if now < s.next_dial {
                paced = Some(paced.map_or(s.next_dial, |p: Instant| p.min(s.next_dial)));
                continue;
            }
            candidates.push((i, free));
        }
        if candidates.is_empty() {
            return Err(paced.map_or(NoPort::Busy, NoPort::PacedUntil));
        }
        // Semi-random, biased to the least-loaded span: weight = free channels.
        let total: usize = candidates.iter().map(|(_, f)| f.len()).sum();
        let mut pick = self.rng.gen_range(0..total);
        let (span, free) = candidates
            .into_iter()
            .find(|(_, f)| {
                if pick < f.len() {
                    true
                } else {
                    pick -= f.len();
                    false
                }
            })
            .expect("pick < total");
        let channel = self.pick_channel(span, &free);
        let port = Port { span, channel };
        *self.chan(port) = Chan::Outbound(request, Progress::Setup);
        let s = &mut self.spans[span];
        s.next_dial = now + Duration::from_nanos((1e9 / s.setup.calls_per_second).round() as u64);
        self.out.push_back(Output::Dial { port, request });
        Ok(port)
    }

    /// The network offers a call on `port`.
    pub fn handle_incoming(&mut self, now: Instant, port: Port) {
        match *self.chan(port) {
            Chan::Idle | Chan::Guard(_) => {
                *self.chan(port) = Chan::Inbound;
                self.out.push_back(Output::Answer { port });
            }
            Chan::Outbound(request, Progress::Setup) => {
                // Glare: the network's call wins (Q.931 §5.7.1 for the user side).
                *self.chan(port) = Chan::Inbound;
                self.out.push_back(Output::Abandon {
                    port,
                    request,
                    cause: CAUSE_CHANNEL_UNAVAILABLE,
                });
                self.out.push_back(Output::Answer { port });
                self.move_request(now, request, port);
            }
            Chan::Outbound(..) | Chan::Inbound | Chan::Down => {
                self.out.push_back(Output::Reject {
                    port,
                    cause: CAUSE_CHANNEL_UNAVAILABLE,
                });
            }
        }
    }

    fn move_request(&mut self, now: Instant, request: RequestId, from: Port) {
        // Re-dial at once: pacing is the carrier's rate for new calls, and this call already
        // spent its slot, so the re-dial ignores it.
        let saved: Vec<Instant> = self.spans.iter().map(|s| s.next_dial).collect();
        for s in &mut self.spans {
            s.next_dial = s.next_dial.min(now);
        }
        let to = self.dial_except(now, request, Some(from)).ok();
        for (s, t) in self.spans.iter_mut().zip(saved) {
            s.next_dial = s.next_dial.max(t);
        }
        // Moved goes before the Dial it announces.
        if to.is_some() {
            let dial = self.out.pop_back().expect("dial_except pushed a Dial");
            self.out.push_back(Output::Moved { request, from, to });
            self.out.push_back(dial);
        } else {
            self.out.push_back(Output::Moved { request, from, to });
        }
    }

    /// Our outbound call on `port` progressed.
    pub fn handle_progress(&mut self, port: Port, progress: Progress) {
        if let Chan::Outbound(r, p) = *self.chan(port) {
            if progress as u8 > p as u8 {
                *self.chan(port) = Chan::Outbound(r, progress);
            }
        }
    }

    /// A call on `port` was cleared with `cause` (by either side). `dir` says which call: after
    /// a collision the late release of our abandoned SETUP must not end the inbound call that
    /// won the channel.
    pub fn handle_released(&mut self, now: Instant, port: Port, dir: Direction, cause: u8) {
        match (*self.chan(port), dir) {
            (Chan::Outbound(..), Direction::Inbound) | (Chan::Inbound, Direction::Outbound) => {}
            (Chan::Outbound(request, Progress::Setup), _)
                if cause == CAUSE_NO_CIRCUIT || cause == CAUSE_CHANNEL_UNAVAILABLE =>
            {
                *self.chan(port) = Chan::Idle;
                self.move_request(now, request, port);
            }
            (Chan::Outbound(request, progress), _) => {
                *self.chan(port) = Chan::Idle;
                self.out.push_back(Output::Ended {
                    request,
                    port,
                    cause,
                    progress,
                });
            }
            (Chan::Inbound, _) => {
                let guard = self.spans[port.span].setup.guard;
                *self.chan(port) = Chan::Guard(now + guard);
            }
            (Chan::Idle | Chan::Guard(_) | Chan::Down, _) => {}
        }
    }

    /// A span's D-channel came up or went down. Down ends every call on it.
    pub fn handle_span(&mut self, span: usize, up: bool) {
        let s = &mut self.spans[span];
        s.up = up;
        for (i, c) in s.chans.iter_mut().enumerate() {
            let port = Port {
                span,
                channel: i as u16 + 1,
            };
            if up {
                if *c == Chan::Down {
                    *c = Chan::Idle;
                }
            } else {
                if let Chan::Outbound(request, progress) = *c {
                    // Cause 38, network out of order.
                    self.out.push_back(Output::Ended {
                        request,
                        port,
                        cause: 38,
                        progress,
                    });
                }
                *c = Chan::Down;
            }
        }
    }

    /// Guard times and pacing are timers only in that they make ports usable again; the
    /// dispatcher retries [`PortManager::dial`] at [`PortManager::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in &mut self.spans {
            for c in &mut s.chans {
                if matches!(*c, Chan::Guard(t) if now >= t) {
                    *c = Chan::Idle;
                }
            }
        }
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest time a channel leaves its guard time. (Pacing is reported by
    /// [`NoPort::PacedUntil`] when a dial is refused.)
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.spans
            .iter()
            .filter(|s| s.up)
            .flat_map(|s| s.chans.iter())
            .filter_map(|c| match c {
                Chan::Guard(t) => Some(*t),
                _ => None,
            })
            .min()
    }

    /// Each span's state and its channels' states.
    pub fn view(&self) -> Vec<SpanPorts> {
        self.spans
            .iter()
            .map(|s| {
                let chans = s
                    .chans
                    .iter()
                    .map(|c| match c {
                        Chan::Idle => ("idle", None),
                        Chan::Guard(_) => ("guard", None),
                        Chan::Outbound(r, Progress::Setup | Progress::Proceeding) => {
                            ("dialing", Some(*r))
                        }
                        Chan::Outbound(r, Progress::Alerting) => ("ringing", Some(*r)),
                        Chan::Outbound(r, Progress::Connected) => ("connected", Some(*r)),
                        Chan::Inbound => ("inbound", None),
                        Chan::Down => ("down", None),
                    })
                    .collect();
                SpanPorts {
                    name: s.setup.name.clone(),
                    up: s.up,
                    channels: chans,
                }
            })
            .collect()
    }
}
