//! Span threads: one per configured span, owning its driver (softspan now; DAHDI hardware is not
//! wired yet), its 20 ms media tick, the DTMF detector and VoiceXML session of each channel, and
//! the TTS requests of those sessions. See `lines.rs` for the messages to and from the main loop.

use crate::config::{self, CalleeBehaviour, Config, ScriptStep, SpanConfig, SpanKind};
use crate::dispatcher::LineEvent;
use crate::lines::{LineCommand, LineReport, Lines, SessionStart};
use crate::portmgr::{Direction, Port, Progress};
use crate::session::{RenderId, Session, SessionOutput};
use outcall_media::dtmf::{DtmfDetector, DtmfEvent};
use outcall_media::tts::{Samples, Speech, Tts, TtsError};
use outcall_port::{CallDir, Cause, PortCommand, PortEvent, SpanEvent};
use outcall_softspan::{Behaviour, Callee, Hunting, Softspan, Step};
use outcall_vxml::PlayItem;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, error, info, warn};

/// The media tick.
const TICK: Duration = Duration::from_millis(20);

/// Starts every span's thread. A span whose driver cannot start stays down (its ports are
/// never offered) and the reason is logged.
pub fn start(config: &Config, config_path: &Path, reports: UnboundedSender<LineReport>) -> Lines {
    let mut lines = Lines::default();
    let base = config_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let tts = match Tts::start(&config.tts.cache) {
        Ok(t) => Some(t),
        Err(e) => {
            error!("text-to-speech unavailable, prompts will be silent: {e}");
            None
        }
    };
    let voice = (config.tts.voice.clone(), *config.tts.rate.get_ref());
    for (i, s) in config.span.iter().enumerate() {
        let s = s.get_ref();
        match s.kind {
            SpanKind::Softspan => {
                match softspan_config(s, &base)
                    .and_then(|c| Ok((c, offers_of(s, &base)?, poisson_of(s, &base)?)))
                {
                    Ok((cfg, offers, poisson)) => {
                        let (tx, rx) = mpsc::channel();
                        let ctx = SpanCtx {
                            index: i,
                            name: s.name.clone(),
                            reports: reports.clone(),
                            tts: tts.clone(),
                            voice: voice.clone(),
                        };
                        // libpri instances are not Send: the span is built on its own thread.
                        let spawned = std::thread::Builder::new()
                            .name(format!("span-{}", s.name))
                            .spawn(move || match Softspan::new(cfg) {
                                Ok(ss) => run_softspan(ss, rx, ctx, offers, poisson),
                                Err(e) => error!(span = %ctx.name, "softspan did not start: {e}"),
                            });
                        match spawned {
                            Ok(_) => lines.set(i, Some(tx)),
                            Err(e) => error!(span = %s.name, "cannot start the span thread: {e}"),
                        }
                    }
                    Err(e) => error!(span = %s.name, "softspan did not start: {e}"),
                }
            }
            SpanKind::Dahdi => {
                error!(span = %s.name, "DAHDI spans are not wired into outcalld yet: span stays down");
                lines.set(i, None);
            }
        }
    }
    lines
}

/// `p`, relative to the configuration file's directory unless absolute.
fn relative_to(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Random inbound traffic, from `[span.carrier] poisson`.
struct Poisson {
    per_ms: f64,
    did: String,
    ani: String,
    script: Vec<Step>,
    rng: rand::rngs::SmallRng,
    next: Option<Instant>,
}

impl Poisson {
    /// The gap to the next arrival: exponential with the configured mean.
    fn gap(&mut self) -> Duration {
        use rand::Rng;
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        Duration::from_secs_f64((-u.ln() / self.per_ms / 1000.0).min(86_400.0))
    }
}

fn poisson_of(s: &SpanConfig, base: &Path) -> Result<Option<Poisson>, String> {
    use rand::SeedableRng;
    let resolve = |p: &Path| relative_to(base, p);
    let Some(pz) = s.carrier.as_ref().and_then(|c| c.poisson.as_ref()) else {
        return Ok(None);
    };
    let pz = pz.get_ref();
    Ok(Some(Poisson {
        per_ms: pz.per_minute / 60_000.0,
        did: pz.did.clone(),
        ani: pz.ani.clone(),
        script: script_of(&pz.script, &resolve)?,
        rng: rand::rngs::SmallRng::seed_from_u64(pz.seed),
        next: None,
    }))
}

/// A call the carrier places to us, from `[[span.carrier.inbound]]`.
struct Offer {
    after: Duration,
    did: String,
    ani: String,
    script: Vec<Step>,
    record: Option<PathBuf>,
}

fn script_of(
    steps: &[toml::Spanned<String>],
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<Step>, String> {
    let mut script = Vec::new();
    for step in steps {
        script.push(match ScriptStep::parse(step.get_ref())? {
            ScriptStep::WaitPrompt => Step::WaitPrompt,
            ScriptStep::Dtmf(d) => Step::Dtmf(d),
            ScriptStep::Wait(ms) => Step::Wait(ms),
            ScriptStep::Hangup => Step::Hangup,
            ScriptStep::Play(p) => {
                let path = resolve(&p);
                let (rate, samples) = outcall_media::wav::read(&path).map_err(|e| e.to_string())?;
                Step::Play(outcall_media::resample::resample(&samples, rate, 8000))
            }
        });
    }
    Ok(script)
}

fn offers_of(s: &SpanConfig, base: &Path) -> Result<Vec<Offer>, String> {
    let resolve = |p: &Path| relative_to(base, p);
    let carrier = s.carrier.clone().unwrap_or_default();
    carrier
        .inbound
        .iter()
        .map(|i| {
            let i = i.get_ref();
            Ok(Offer {
                after: Duration::from_millis(i.after_ms),
                did: i.did.clone(),
                ani: i.ani.clone(),
                script: script_of(&i.script, &resolve)?,
                record: i.record.as_deref().map(resolve),
            })
        })
        .collect()
}

fn softspan_config(s: &SpanConfig, base: &Path) -> Result<outcall_softspan::Config, String> {
    let resolve = |p: &Path| relative_to(base, p);
    let carrier = s.carrier.clone().unwrap_or_default();
    let mut callees = Vec::new();
    for c in &carrier.callee {
        let c = c.get_ref();
        let script = script_of(&c.script, &resolve)?;
        callees.push(Callee {
            number: c.number.clone(),
            behaviour: match c.behaviour {
                CalleeBehaviour::Answer => Behaviour::Answer,
                CalleeBehaviour::Busy => Behaviour::Busy,
                CalleeBehaviour::NoAnswer => Behaviour::NoAnswer,
                CalleeBehaviour::Unallocated => Behaviour::Unallocated,
                CalleeBehaviour::Congestion => Behaviour::Congestion,
            },
            rings: c.rings,
            script,
            record: c.record.as_deref().map(resolve),
        });
    }
    Ok(outcall_softspan::Config {
        channels: s.channels(),
        e1: s.span_type == config::SpanType::E1,
        law: match s.law() {
            config::Law::Mulaw => outcall_media::g711::Law::Ulaw,
            config::Law::Alaw => outcall_media::g711::Law::Alaw,
        },
        switch: s.switch_type().to_string(),
        carrier_hunting: match carrier.hunting.unwrap_or(config::Hunting::Ascending) {
            config::Hunting::Ascending => Hunting::Ascending,
            config::Hunting::Descending => Hunting::Descending,
            config::Hunting::RoundRobin => Hunting::RoundRobin,
        },
        callees,
    })
}

struct SpanCtx {
    index: usize,
    name: String,
    reports: UnboundedSender<LineReport>,
    tts: Option<Tts>,
    voice: (String, u32),
}

/// One channel's media state.
#[derive(Default)]
struct Channel {
    session: Option<Session>,
    detector: DtmfDetector,
    reported_digits: usize,
    renders: Vec<(RenderId, mpsc::Receiver<Result<Samples, TtsError>>)>,
}

impl SpanCtx {
    fn port(&self, channel: u16) -> Port {
        Port {
            span: self.index,
            channel,
        }
    }

    fn report(&self, r: LineReport) {
        let _ = self.reports.send(r);
    }

    fn event(&self, e: LineEvent) {
        self.report(LineReport::Event(e));
    }
}

/// The monotonic clock, read by the span thread (a shell) for its tick and the sessions.
#[allow(clippy::disallowed_methods)] // the span thread's clock, handed to the sessions as `now`
fn now() -> Instant {
    Instant::now()
}

fn run_softspan(
    mut ss: Softspan,
    rx: mpsc::Receiver<LineCommand>,
    ctx: SpanCtx,
    mut offers: Vec<Offer>,
    mut poisson: Option<Poisson>,
) {
    info!(span = %ctx.name, "softspan thread started");
    let mut chans: HashMap<u16, Channel> = HashMap::new();
    let mut next_tick = now() + TICK;
    let mut up_at: Option<Instant> = None;
    loop {
        // The carrier's scheduled calls to us, counted from the span coming up.
        if up_at.is_none() && ss.is_up() {
            up_at = Some(now());
        }
        if let (Some(up), Some(pz)) = (up_at, poisson.as_mut()) {
            let t = now();
            let next = *pz.next.get_or_insert(up);
            if t >= next {
                let gap = pz.gap();
                pz.next = Some(next + gap);
                match ss.offer_inbound_with(&pz.did, &pz.ani, pz.script.clone(), None) {
                    Ok(ch) => debug!(span = %ctx.name, ch, "carrier: random inbound call"),
                    Err(e) => warn!(span = %ctx.name, "carrier: {e}"),
                }
            }
        }
        if let Some(up) = up_at {
            let elapsed = now().saturating_duration_since(up);
            let mut i = 0;
            while i < offers.len() {
                if offers[i].after <= elapsed {
                    let o = offers.remove(i);
                    match ss.offer_inbound_with(&o.did, &o.ani, o.script, o.record) {
                        Ok(ch) => {
                            info!(span = %ctx.name, did = %o.did, ch, "carrier: offering an inbound call")
                        }
                        Err(e) => warn!(span = %ctx.name, "carrier: {e}"),
                    }
                } else {
                    i += 1;
                }
            }
        }
        // Commands from the main loop.
        loop {
            match rx.try_recv() {
                Ok(LineCommand::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => {
                    info!(span = %ctx.name, "softspan thread stopping");
                    return;
                }
                Ok(cmd) => command(&mut ss, &mut chans, &ctx, cmd),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        // Signalling.
        ss.poll();
        while let Some(ev) = ss.poll_event() {
            signalling(&mut chans, &ctx, ev);
        }
        // Media, every 20 ms for all channels together.
        let t = now();
        if t >= next_tick {
            media_tick(&mut ss, &mut chans, &ctx, t);
            next_tick += TICK;
            if next_tick < t {
                next_tick = t + TICK; // a stall: do not burst to catch up
            }
        }
        let until_tick = next_tick.saturating_duration_since(now()).as_millis() as u64;
        let wait = ss
            .next_timer_ms()
            .map_or(until_tick, |p| p.min(until_tick))
            .min(20);
        ss.wait(wait);
    }
}

fn command(ss: &mut Softspan, chans: &mut HashMap<u16, Channel>, ctx: &SpanCtx, cmd: LineCommand) {
    let r = match cmd {
        LineCommand::Dial {
            port,
            number,
            caller_id,
        } => {
            let r = ss.command(
                port.channel,
                PortCommand::Dial {
                    called: number,
                    calling: caller_id,
                },
            );
            if r.is_err() {
                // The port manager must learn the channel is free again.
                ctx.event(LineEvent::Released {
                    port,
                    dir: Direction::Outbound,
                    cause: Cause::TEMPORARY_FAILURE.0,
                });
            }
            r
        }
        LineCommand::Answer { port } => ss.command(port.channel, PortCommand::Answer),
        LineCommand::Reject { port, cause } => {
            ss.command(port.channel, PortCommand::Reject(Cause(cause)))
        }
        LineCommand::Hangup { port, dir, cause } => {
            let dir = match dir {
                Direction::Outbound => CallDir::Outbound,
                Direction::Inbound => CallDir::Inbound,
            };
            ss.command(port.channel, PortCommand::Hangup(dir, Cause(cause)))
        }
        LineCommand::StartSession { port, start } => {
            start_session(chans, ctx, port, *start);
            Ok(())
        }
        LineCommand::StopSession { port } => {
            if let Some(c) = chans.get_mut(&port.channel) {
                c.session = None;
                c.renders.clear();
            }
            Ok(())
        }
        LineCommand::Fetched { port, id, result } => {
            if let Some(s) = chans
                .get_mut(&port.channel)
                .and_then(|c| c.session.as_mut())
            {
                s.handle_fetched(now(), id, result);
            }
            Ok(())
        }
        LineCommand::Shutdown => Ok(()),
    };
    if let Err(e) = r {
        warn!(span = %ctx.name, "{e}");
    }
}

fn start_session(
    chans: &mut HashMap<u16, Channel>,
    ctx: &SpanCtx,
    port: Port,
    start: SessionStart,
) {
    let c = chans.entry(port.channel).or_default();
    c.detector = DtmfDetector::new();
    c.reported_digits = 0;
    c.renders.clear();
    match Session::start(now(), &start.app, start.info) {
        Ok(s) => c.session = Some(s),
        Err(e) => {
            error!(%port, "the application did not start: {e}");
            ctx.report(LineReport::SessionEnded {
                port,
                digits: String::new(),
                submitted: None,
            });
        }
    }
}

fn signalling(chans: &mut HashMap<u16, Channel>, ctx: &SpanCtx, ev: outcall_softspan::Event) {
    match ev {
        outcall_softspan::Event::Span(SpanEvent::Up) => ctx.event(LineEvent::Span {
            span: ctx.index,
            up: true,
        }),
        outcall_softspan::Event::Span(SpanEvent::Down) => ctx.event(LineEvent::Span {
            span: ctx.index,
            up: false,
        }),
        outcall_softspan::Event::Span(SpanEvent::Restart(ch)) => {
            debug!(span = %ctx.name, ?ch, "restart")
        }
        outcall_softspan::Event::Port(ch, pe) => {
            let port = ctx.port(ch);
            match pe {
                PortEvent::Incoming { dnis, ani } => {
                    ctx.event(LineEvent::Incoming { port, dnis, ani })
                }
                PortEvent::Proceeding => ctx.event(LineEvent::Progress {
                    port,
                    progress: Progress::Proceeding,
                }),
                PortEvent::Alerting => ctx.event(LineEvent::Progress {
                    port,
                    progress: Progress::Alerting,
                }),
                PortEvent::Connected => ctx.event(LineEvent::Progress {
                    port,
                    progress: Progress::Connected,
                }),
                PortEvent::Hangup(dir, cause) => {
                    // The session hears the hang-up; its results go up before the release.
                    if let Some(c) = chans.get_mut(&ch) {
                        if let Some(s) = c.session.as_mut() {
                            s.handle_hangup(now());
                            ctx.report(LineReport::SessionProgress {
                                port,
                                digits: s.digits().to_string(),
                                submitted: s.submitted().cloned(),
                            });
                        }
                        c.session = None;
                        c.renders.clear();
                    }
                    let dir = match dir {
                        CallDir::Outbound => Direction::Outbound,
                        CallDir::Inbound => Direction::Inbound,
                    };
                    ctx.event(LineEvent::Released {
                        port,
                        dir,
                        cause: cause.0,
                    });
                }
            }
        }
    }
}

fn media_tick(ss: &mut Softspan, chans: &mut HashMap<u16, Channel>, ctx: &SpanCtx, t: Instant) {
    let mut received: Vec<(u16, outcall_port::AudioFrame)> = Vec::new();
    ss.tick(
        |ch| {
            chans
                .get_mut(&ch)
                .and_then(|c| c.session.as_mut())
                .map(|s| s.next_frame(t))
        },
        |ch, f| received.push((ch, *f)),
    );
    for (ch, frame) in received {
        let Some(c) = chans.get_mut(&ch) else {
            continue;
        };
        let mut digits = Vec::new();
        c.detector.process(&frame, |e| {
            if let DtmfEvent::Start { digit, .. } = e {
                digits.push(digit)
            }
        });
        if let Some(s) = c.session.as_mut() {
            for d in digits {
                debug!(port = %ctx.port(ch), digit = %d, "DTMF");
                s.handle_dtmf(t, d);
            }
        }
    }
    for (&ch, c) in chans.iter_mut() {
        let port = ctx.port(ch);
        // Finished renders.
        let mut done = Vec::new();
        c.renders.retain(|(id, rx)| match rx.try_recv() {
            Ok(r) => {
                done.push((*id, r));
                false
            }
            Err(mpsc::TryRecvError::Empty) => true,
            Err(mpsc::TryRecvError::Disconnected) => {
                done.push((*id, Err(TtsError::Gone)));
                false
            }
        });
        let Some(s) = c.session.as_mut() else {
            continue;
        };
        for (id, r) in done {
            match r {
                Ok(samples) => s.handle_rendered(id, Some(samples.to_vec())),
                Err(e) => {
                    warn!(%port, "prompt not rendered: {e}");
                    s.handle_rendered(id, None);
                }
            }
        }
        s.handle_timeout(t);
        while let Some(o) = s.poll_output() {
            match o {
                SessionOutput::Render { id, item } => {
                    let text = match item {
                        PlayItem::Text(text) => text,
                        PlayItem::Audio { url, fallback } => match audio_file(&url) {
                            Some(samples) => {
                                s.handle_rendered(id, Some(samples));
                                continue;
                            }
                            None => outcall_vxml::interp::play_text(&fallback),
                        },
                        PlayItem::Break(_) | PlayItem::Mark(_) => String::new(),
                    };
                    match &ctx.tts {
                        Some(tts) if !text.trim().is_empty() => {
                            let (tx, rx) = mpsc::channel();
                            let ssml = text.trim_start().starts_with("<speak");
                            tts.submit(
                                Speech {
                                    text,
                                    voice: ctx.voice.0.clone(),
                                    rate: ctx.voice.1,
                                    ssml,
                                },
                                tx,
                            );
                            c.renders.push((id, rx));
                        }
                        _ => s.handle_rendered(id, None),
                    }
                }
                SessionOutput::Fetch {
                    id,
                    url,
                    post,
                    params,
                    timeout_ms,
                    ..
                } => ctx.report(LineReport::Fetch {
                    port,
                    id,
                    url,
                    post,
                    enctype: String::new(),
                    params,
                    timeout_ms,
                }),
                SessionOutput::Submit {
                    id,
                    url,
                    post,
                    enctype,
                    params,
                    timeout_ms,
                } => {
                    ctx.report(LineReport::SessionProgress {
                        port,
                        digits: s.digits().to_string(),
                        submitted: s.submitted().cloned(),
                    });
                    ctx.report(LineReport::Fetch {
                        port,
                        id,
                        url,
                        post,
                        enctype,
                        params,
                        timeout_ms,
                    })
                }
                SessionOutput::Hangup => {
                    info!(%port, digits = s.digits(), "application ended");
                    ctx.report(LineReport::SessionEnded {
                        port,
                        digits: s.digits().to_string(),
                        submitted: s.submitted().cloned(),
                    });
                }
                SessionOutput::Log(line) => info!(%port, "{line}"),
            }
        }
        if s.digits().len() != c.reported_digits {
            c.reported_digits = s.digits().len();
            ctx.report(LineReport::SessionProgress {
                port,
                digits: s.digits().to_string(),
                submitted: s.submitted().cloned(),
            });
        }
    }
}

/// An `<audio>` file as 8 kHz samples: `file:` URLs of WAV files. Anything else plays the
/// fallback.
fn audio_file(url: &str) -> Option<Vec<i16>> {
    let path = PathBuf::from(url.strip_prefix("file://")?);
    let (rate, samples) = outcall_media::wav::read(&path).ok()?;
    Some(outcall_media::resample::resample(&samples, rate, 8000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn poisson_gaps_have_the_configured_mean_and_spread() {
        let mut p = Poisson {
            per_ms: 6.0 / 60_000.0, // six a minute: mean gap 10 s
            did: "1".into(),
            ani: String::new(),
            script: Vec::new(),
            rng: rand::rngs::SmallRng::seed_from_u64(7),
            next: None,
        };
        let gaps: Vec<f64> = (0..20_000).map(|_| p.gap().as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 10.0).abs() < 0.3, "mean gap {mean} s");
        // Exponential: the standard deviation equals the mean, and P(gap > mean) = 1/e.
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "sd {sd} vs mean {mean}");
        let above = gaps.iter().filter(|&&g| g > mean).count() as f64 / gaps.len() as f64;
        assert!(
            (above - (-1f64).exp()).abs() < 0.02,
            "P(gap > mean) = {above}"
        );
    }
}
