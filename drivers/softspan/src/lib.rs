//! softspan: a loopback ISDN PRI span with a simulated carrier on the far end.
//!
//! Our side is exactly the PRI stack of `outcall-pri` as CPE; the far side is a second libpri
//! instance as NETWORK, the *carrier*, reached over a `socketpair(AF_UNIX, SOCK_SEQPACKET)`
//! D-channel. B-channels carry 160-byte G.711 frames (µ-law on T1, A-law on E1), moved for
//! every channel at once by [`Softspan::tick`], which the owner calls every 20 ms: one clock per
//! span, the way DAHDI delivers them.
//!
//! The carrier plays the callees of its configuration (answer after N rings, busy, no answer,
//! unallocated, congestion; after answering, a script: wait for the prompt, press DTMF keys as
//! real in-band tones, wait, hang up) and records what each callee heard; it offers inbound
//! calls to our span on the channel its hunting order picks; and it applies the Q.931 collision
//! rule: when our SETUP names a channel on which it has offered a call, its call wins and ours
//! is cleared with cause 44. Faults: [`Softspan::cut_dchannel`] drops D-channel frames both
//! ways until restored.
//!
//! Driving contract: call [`Softspan::poll`] whenever [`Softspan::fds`] are readable or libpri's
//! timer ([`Softspan::next_timer_ms`]) expires, [`Softspan::tick`] every 20 ms, and drain
//! [`Softspan::poll_event`] after each.
#![forbid(unsafe_code)]

use outcall_media::g711::Law;
use outcall_media::tone::Tone;
use outcall_port::{AudioFrame, CallDir, Cause, PortCommand, PortEvent, SpanEvent, FRAME_SAMPLES};
use outcall_pri::{Event as PriEvent, Node, Span};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use tracing::{debug, info, warn};

/// A softspan error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libpri refused.
    #[error(transparent)]
    Pri(#[from] outcall_pri::Error),
    /// The D-channel socketpair could not be made.
    #[error("softspan D-channel socketpair: {0}")]
    Io(#[from] std::io::Error),
    /// No channel is free for an inbound call.
    #[error("no free B-channel for an inbound call to {0}")]
    NoChannel(String),
}

/// How the carrier picks channels for its calls to us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hunting {
    /// Lowest free first (what carriers usually do).
    #[default]
    Ascending,
    /// Highest free first.
    Descending,
    /// After the last one used.
    RoundRobin,
}

/// What a simulated callee does with our call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Rings, answers, runs its script.
    #[default]
    Answer,
    /// CALL PROCEEDING then DISCONNECT cause 17.
    Busy,
    /// Rings until we give up.
    NoAnswer,
    /// Cause 1.
    Unallocated,
    /// Cause 34.
    Congestion,
}

/// One step of a callee's script after it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait until the prompt starts (energy on the channel), then until it ends (0.6 s of
    /// silence), at most 30 s.
    WaitPrompt,
    /// Press keys: 100 ms tones at −10 dBm0 each, 100 ms apart.
    Dtmf(String),
    /// Wait this many milliseconds.
    Wait(u32),
    /// Play these samples (8 kHz).
    Play(Vec<i16>),
    /// Hang up (cause 16).
    Hangup,
}

/// A simulated callee.
#[derive(Clone, Debug, Default)]
pub struct Callee {
    /// The number it answers to.
    pub number: String,
    /// What it does.
    pub behaviour: Behaviour,
    /// Rings before it answers; softspan's ring cycle is one second.
    pub rings: u32,
    /// After answering.
    pub script: Vec<Step>,
    /// Write what it heard to this WAV file when the call ends.
    pub record: Option<PathBuf>,
}

/// A softspan's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// B-channels: 23 (T1) or 30 (E1).
    pub channels: u16,
    /// E1 framing (timeslot 16 is the D-channel).
    pub e1: bool,
    /// A-law (E1) or µ-law (T1).
    pub law: Law,
    /// libpri switch type.
    pub switch: String,
    /// The carrier's hunting order for inbound calls.
    pub carrier_hunting: Hunting,
    /// The simulated callees; any other number is unallocated.
    pub callees: Vec<Callee>,
}

/// What our side of the span reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About a B-channel.
    Port(u16, PortEvent),
    /// About the span.
    Span(SpanEvent),
}

/// Ticks per second (20 ms frames).
const TICKS_PER_SEC: u64 = 50;

#[derive(Debug)]
enum CarrierState {
    /// Our SETUP is ringing the callee until this tick (None: never answers).
    Ringing(Option<u64>),
    /// The carrier offered a call to us and waits for our answer.
    Offered,
    /// Connected; running the script from this step.
    Talking {
        step: usize,
        wait_until: Option<u64>,
        heard_voice: bool,
        quiet_since: Option<u64>,
        started: u64,
    },
    /// Cleared by the carrier, waiting for libpri to finish.
    Clearing,
}

#[derive(Debug)]
struct CarrierCall {
    /// The carrier's side of this call: Inbound = our SETUP (a call to a callee).
    dir: CallDir,
    callee: Option<usize>,
    script: Vec<Step>,
    state: CarrierState,
    heard: Vec<i16>,
    sending: VecDeque<i16>,
    record: Option<PathBuf>,
}

/// A loopback span: our CPE span and the carrier's NETWORK span.
pub struct Softspan {
    ours: Span,
    carrier: Span,
    cfg: Config,
    calls: HashMap<u16, CarrierCall>,
    /// Our connected channels (audio flows only while both ends are connected).
    ours_connected: HashMap<u16, bool>,
    events: VecDeque<Event>,
    tick: u64,
    rr_next: u16,
}

/// The energy per sample above which the carrier hears a prompt.
const VOICE_RMS: f64 = 150.0;

impl Softspan {
    /// Creates both spans over a fresh socketpair. The D-channel comes up on the first polls.
    pub fn new(cfg: Config) -> Result<Softspan, Error> {
        let (a, b) = outcall_pri::dchannel_pair()?;
        let alaw = cfg.law == Law::Alaw;
        let ours = Span::new(a, Node::Cpe, &cfg.switch, cfg.channels, cfg.e1, alaw)?;
        let carrier = Span::new(b, Node::Network, &cfg.switch, cfg.channels, cfg.e1, alaw)?;
        Ok(Softspan {
            ours,
            carrier,
            cfg,
            calls: HashMap::new(),
            ours_connected: HashMap::new(),
            events: VecDeque::new(),
            tick: 0,
            rr_next: 1,
        })
    }

    /// Both D-channel fds, to poll for readability.
    pub fn fds(&self) -> [std::os::fd::RawFd; 2] {
        [self.ours.fd(), self.carrier.fd()]
    }

    /// Waits up to `timeout_ms` for D-channel traffic (returns early when a frame arrives).
    pub fn wait(&self, timeout_ms: u64) {
        outcall_pri::wait_readable(&self.fds(), timeout_ms);
    }

    /// Milliseconds to libpri's next timer on either side.
    pub fn next_timer_ms(&self) -> Option<u64> {
        [self.ours.next_timer_ms(), self.carrier.next_timer_ms()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether our D-channel is up.
    pub fn is_up(&self) -> bool {
        self.ours.is_up()
    }

    /// Cuts (or restores) the D-channel: frames are lost both ways, Q.921 notices and the span
    /// goes down; on restore it comes back up.
    pub fn cut_dchannel(&mut self, cut: bool) {
        info!(
            cut,
            "softspan: D-channel {}",
            if cut { "cut" } else { "restored" }
        );
        self.ours.set_cut(cut);
        self.carrier.set_cut(cut);
    }

    /// The carrier restarts B-channel `channel` (Q.931 RESTART): a call on it ends at both ends.
    pub fn restart_channel(&mut self, channel: u16) -> Result<(), Error> {
        info!(channel, "softspan carrier: RESTART");
        self.carrier.restart_channel(channel)?;
        if let Some(c) = self.calls.remove(&channel) {
            if let Some(path) = &c.record {
                let _ = outcall_media::wav::write_mono16(path, 8000, &c.heard);
            }
        }
        Ok(())
    }

    /// Carries out a command on our side.
    pub fn command(&mut self, channel: u16, cmd: PortCommand) -> Result<(), outcall_pri::Error> {
        match cmd {
            PortCommand::Dial { called, calling } => {
                self.ours.dial(channel, &called, calling.as_deref())
            }
            PortCommand::Answer => {
                self.ours.proceeding(channel)?;
                self.ours.answer(channel)?;
                // Our answer is final on our side at once (CONNECT sent).
                self.ours_connected.insert(channel, true);
                Ok(())
            }
            PortCommand::Reject(cause) => self.ours.hangup(channel, CallDir::Inbound, cause),
            PortCommand::Hangup(dir, cause) => {
                self.ours_connected.remove(&channel);
                self.ours.hangup(channel, dir, cause)
            }
        }
    }

    /// The carrier offers a call to `did` from `ani` on the channel its hunting picks.
    pub fn offer_inbound(&mut self, did: &str, ani: &str) -> Result<u16, Error> {
        let busy = self.carrier.busy_channels();
        let free: Vec<u16> = (1..=self.cfg.channels)
            .filter(|c| !busy.contains(c) && !self.calls.contains_key(c))
            .collect();
        let ch = match self.cfg.carrier_hunting {
            Hunting::Ascending => free.first().copied(),
            Hunting::Descending => free.last().copied(),
            Hunting::RoundRobin => free
                .iter()
                .copied()
                .find(|&c| c >= self.rr_next)
                .or(free.first().copied()),
        }
        .ok_or_else(|| Error::NoChannel(did.into()))?;
        self.rr_next = if ch >= self.cfg.channels { 1 } else { ch + 1 };
        self.carrier.dial(ch, did, Some(ani))?;
        self.calls.insert(
            ch,
            CarrierCall {
                dir: CallDir::Outbound,
                callee: None,
                script: Vec::new(),
                state: CarrierState::Offered,
                heard: Vec::new(),
                sending: VecDeque::new(),
                record: None,
            },
        );
        Ok(ch)
    }

    /// Same as [`Softspan::offer_inbound`], with a script the caller runs once we answer and a
    /// WAV file for what the caller hears.
    pub fn offer_inbound_with(
        &mut self,
        did: &str,
        ani: &str,
        script: Vec<Step>,
        record: Option<PathBuf>,
    ) -> Result<u16, Error> {
        let ch = self.offer_inbound(did, ani)?;
        if let Some(c) = self.calls.get_mut(&ch) {
            c.script = script;
            c.record = record;
        }
        Ok(ch)
    }

    /// Runs both libpri instances on pending D-channel frames and timers, and the carrier's
    /// reactions to them.
    pub fn poll(&mut self) {
        for _ in 0..8 {
            self.ours.poll();
            self.carrier.poll();
            let mut any = false;
            while let Some(e) = self.carrier.poll_event() {
                any = true;
                self.carrier_event(e);
            }
            while let Some(e) = self.ours.poll_event() {
                any = true;
                match &e {
                    PriEvent::Port(ch, PortEvent::Hangup(..)) => {
                        self.ours_connected.remove(ch);
                    }
                    PriEvent::Port(ch, PortEvent::Connected) => {
                        self.ours_connected.insert(*ch, true);
                    }
                    _ => {}
                }
                self.events.push_back(match e {
                    PriEvent::Port(ch, pe) => Event::Port(ch, pe),
                    PriEvent::Span(se) => Event::Span(se),
                });
            }
            if !any {
                break;
            }
        }
    }

    fn callee_of(&self, number: &str) -> Option<usize> {
        let digits = |s: &str| s.trim_start_matches('+').to_string();
        self.cfg
            .callees
            .iter()
            .position(|c| digits(&c.number) == digits(number))
    }

    fn carrier_event(&mut self, e: PriEvent) {
        let PriEvent::Port(ch, pe) = e else { return };
        match pe {
            PortEvent::Incoming { dnis, .. } => {
                if let Some(own) = self.calls.get(&ch) {
                    if own.dir == CallDir::Outbound {
                        // Q.931 collision: the network's call wins; clear the user's SETUP.
                        warn!(ch, "softspan carrier: glare on B-channel {ch}: clearing the user's SETUP with 44");
                        let _ = self.carrier.hangup(
                            ch,
                            CallDir::Inbound,
                            Cause::REQUESTED_CHAN_UNAVAIL,
                        );
                        return;
                    }
                }
                let idx = self.callee_of(&dnis);
                let behaviour =
                    idx.map_or(Behaviour::Unallocated, |i| self.cfg.callees[i].behaviour);
                let _ = self.carrier.proceeding(ch);
                let cause = match behaviour {
                    Behaviour::Busy => Some(Cause::USER_BUSY),
                    Behaviour::Unallocated => Some(Cause::UNALLOCATED),
                    Behaviour::Congestion => Some(Cause::NO_CIRCUIT_AVAILABLE),
                    Behaviour::Answer | Behaviour::NoAnswer => None,
                };
                if let Some(cause) = cause {
                    debug!(ch, %dnis, %cause, "softspan carrier: refusing");
                    let _ = self.carrier.hangup(ch, CallDir::Inbound, cause);
                    return;
                }
                let _ = self.carrier.alerting(ch);
                let i = idx.expect("answering callees exist");
                let callee = &self.cfg.callees[i];
                let answer_at = (behaviour == Behaviour::Answer)
                    .then_some(self.tick + u64::from(callee.rings.max(1)) * TICKS_PER_SEC);
                self.calls.insert(
                    ch,
                    CarrierCall {
                        dir: CallDir::Inbound,
                        callee: Some(i),
                        script: callee.script.clone(),
                        state: CarrierState::Ringing(answer_at),
                        heard: Vec::new(),
                        sending: VecDeque::new(),
                        record: callee.record.clone(),
                    },
                );
            }
            PortEvent::Connected => {
                if let Some(c) = self.calls.get_mut(&ch) {
                    c.state = CarrierState::Talking {
                        step: 0,
                        wait_until: None,
                        heard_voice: false,
                        quiet_since: None,
                        started: self.tick,
                    };
                }
            }
            PortEvent::Hangup(dir, cause) => {
                if self.calls.get(&ch).is_some_and(|c| c.dir == dir) {
                    let c = self.calls.remove(&ch).expect("checked");
                    debug!(ch, %cause, heard = c.heard.len(), "softspan carrier: call ended");
                    if let Some(path) = &c.record {
                        if let Err(e) = outcall_media::wav::write_mono16(path, 8000, &c.heard) {
                            warn!("softspan: recording {}: {e}", path.display());
                        }
                    }
                }
            }
            PortEvent::Proceeding | PortEvent::Alerting => {}
        }
    }

    /// Moves one 20 ms frame each way on every channel connected at both ends, and runs the
    /// carrier's rings and scripts. `send(ch)` gives our side's frame (None: silence);
    /// `recv(ch, frame)` takes what arrived for us.
    pub fn tick(
        &mut self,
        mut send: impl FnMut(u16) -> Option<AudioFrame>,
        mut recv: impl FnMut(u16, &AudioFrame),
    ) {
        self.tick += 1;
        let law = self.cfg.law;
        let channels: Vec<u16> = self.calls.keys().copied().collect();
        for ch in channels {
            let now = self.tick;
            let mut hang_up = None;
            {
                let c = self.calls.get_mut(&ch).expect("listed");
                match c.state {
                    CarrierState::Ringing(Some(at)) if now >= at => {
                        let _ = self.carrier.answer(ch);
                        c.state = CarrierState::Talking {
                            step: 0,
                            wait_until: None,
                            heard_voice: false,
                            quiet_since: None,
                            started: now,
                        };
                    }
                    _ => {}
                }
            }
            let both = self.ours_connected.contains_key(&ch)
                && matches!(self.calls[&ch].state, CarrierState::Talking { .. });
            if !both {
                continue;
            }
            // Our frame, through the line to the carrier.
            let ours = send(ch).unwrap_or([0; FRAME_SAMPLES]);
            let heard = through(law, &ours);
            let c = self.calls.get_mut(&ch).expect("listed");
            c.heard.extend_from_slice(&heard);
            // The carrier's frame, through the line to us.
            let mut theirs = [0i16; FRAME_SAMPLES];
            for s in theirs.iter_mut() {
                *s = c.sending.pop_front().unwrap_or(0);
            }
            recv(ch, &through(law, &theirs));
            // The script.
            let rms = (heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
                / FRAME_SAMPLES as f64)
                .sqrt();
            if let CarrierState::Talking {
                step,
                wait_until,
                heard_voice,
                quiet_since,
                started,
            } = &mut c.state
            {
                while let Some(s) = c.script.get(*step) {
                    let done = match s {
                        Step::WaitPrompt => {
                            if rms > VOICE_RMS {
                                *heard_voice = true;
                                *quiet_since = None;
                            } else if *heard_voice && quiet_since.is_none() {
                                *quiet_since = Some(now);
                            }
                            let quiet = quiet_since.is_some_and(|q| now - q >= 30);
                            (*heard_voice && quiet) || now - *started > 30 * TICKS_PER_SEC
                        }
                        Step::Dtmf(keys) => {
                            if c.sending.is_empty() && wait_until.is_none() {
                                for k in keys.chars() {
                                    if let Some(t) = Tone::dtmf(k, -10.0, 100, 100) {
                                        c.sending.extend(t.samples());
                                    }
                                }
                                *wait_until = Some(now); // queued
                                false
                            } else {
                                c.sending.is_empty()
                            }
                        }
                        Step::Wait(ms) => match wait_until {
                            None => {
                                *wait_until = Some(now + u64::from(*ms) / 20);
                                false
                            }
                            Some(t) => now >= *t,
                        },
                        Step::Play(samples) => {
                            if wait_until.is_none() {
                                c.sending.extend(samples.iter().copied());
                                *wait_until = Some(now);
                                false
                            } else {
                                c.sending.is_empty()
                            }
                        }
                        Step::Hangup => {
                            hang_up = Some(c.dir);
                            true
                        }
                    };
                    if !done {
                        break;
                    }
                    *step += 1;
                    *wait_until = None;
                    *started = now;
                }
            }
            if let Some(dir) = hang_up {
                c.state = CarrierState::Clearing;
                let _ = self.carrier.hangup(ch, dir, Cause::NORMAL_CLEARING);
            }
        }
    }

    /// The next event of our side.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// What the callee on `channel` has heard so far (tests).
    pub fn heard(&self, channel: u16) -> Option<&[i16]> {
        self.calls.get(&channel).map(|c| c.heard.as_slice())
    }

    /// The callee index of the carrier's call on `channel` (tests).
    pub fn callee_on(&self, channel: u16) -> Option<usize> {
        self.calls.get(&channel).and_then(|c| c.callee)
    }
}

/// A frame through the line: encoded with the span's law and decoded at the far end.
fn through(law: Law, frame: &AudioFrame) -> AudioFrame {
    let mut g = [0u8; FRAME_SAMPLES];
    law.encode(frame, &mut g);
    let mut out = [0i16; FRAME_SAMPLES];
    law.decode(&g, &mut out);
    out
}

#[cfg(test)]
mod tests;
