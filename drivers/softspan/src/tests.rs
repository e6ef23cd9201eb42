use super::*;
use outcall_media::dtmf::{DtmfDetector, DtmfEvent};
use std::time::{Duration, Instant};

fn callee(number: &str, behaviour: Behaviour, script: Vec<Step>) -> Callee {
    Callee {
        number: number.into(),
        behaviour,
        rings: 1,
        script,
        record: None,
    }
}

fn t1(callees: Vec<Callee>) -> Softspan {
    Softspan::new(Config {
        channels: 23,
        e1: false,
        law: Law::Ulaw,
        switch: "ni2".into(),
        carrier_hunting: Hunting::Ascending,
        callees,
    })
    .unwrap()
}

/// A sine frame generator per channel.
fn sine(freq: f64, n: u64) -> AudioFrame {
    let mut f = [0i16; FRAME_SAMPLES];
    for (i, s) in f.iter_mut().enumerate() {
        let t = (n * FRAME_SAMPLES as u64 + i as u64) as f64 / 8000.0;
        *s = (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16;
    }
    f
}

/// Estimates the dominant frequency by counting zero crossings.
fn freq_of(x: &[i16]) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / 8000.0)
}

struct Run {
    ss: Softspan,
    events: Vec<Event>,
    ticks: u64,
    rx: HashMap<u16, Vec<i16>>,
    tx_freq: HashMap<u16, f64>,
}

impl Run {
    fn new(ss: Softspan) -> Run {
        let mut r = Run {
            ss,
            events: Vec::new(),
            ticks: 0,
            rx: HashMap::new(),
            tx_freq: HashMap::new(),
        };
        r.until(Duration::from_secs(5), |r| {
            r.events.contains(&Event::Span(SpanEvent::Up))
        });
        r
    }

    /// Polls and ticks until `done`; each loop is one 20 ms tick of virtual media time, and the
    /// D-channel is waited for with poll(2) when libpri has a timer running.
    #[allow(clippy::disallowed_methods)] // libpri's timers are on the real clock: bounded wait
    fn until(&mut self, limit: Duration, mut done: impl FnMut(&Run) -> bool) {
        let start = Instant::now();
        loop {
            self.ss.poll();
            while let Some(e) = self.ss.poll_event() {
                self.events.push(e);
            }
            if done(self) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "not done within {limit:?}: {:?}",
                self.events
            );
            let (tx, ticks) = (&self.tx_freq, self.ticks);
            let rx = &mut self.rx;
            self.ss.tick(
                |ch| tx.get(&ch).map(|f| sine(*f, ticks)),
                |ch, f| rx.entry(ch).or_default().extend_from_slice(f),
            );
            self.ticks += 1;
            let fds = self.ss.fds();
            let mut p = [libc_pollfd(fds[0]), libc_pollfd(fds[1])];
            let wait = if self.ss.next_timer_ms().is_some_and(|t| t < 5) {
                5
            } else {
                0
            };
            let _ = nix_poll(&mut p, wait);
        }
    }

    fn has(&self, e: &Event) -> bool {
        self.events.contains(e)
    }
}

// Tiny poll(2) helpers without unsafe (std has none): use the D-channel fds through nix-free
// std::os::fd by way of a one-shot libc-less wait: we simply yield when there is nothing to do.
#[derive(Clone, Copy)]
struct PollFd(#[allow(dead_code)] std::os::fd::RawFd);
fn libc_pollfd(fd: std::os::fd::RawFd) -> PollFd {
    PollFd(fd)
}
#[allow(clippy::disallowed_methods)] // a bounded pause while libpri's real-time timers run
fn nix_poll(_fds: &mut [PollFd], ms: u64) -> usize {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
    0
}

#[test]
fn outbound_call_with_audio_both_ways_dtmf_and_clearing() {
    let mut r = Run::new(t1(vec![callee(
        "+15550001",
        Behaviour::Answer,
        vec![
            Step::Wait(300),
            Step::Dtmf("1".into()),
            Step::Wait(200),
            Step::Hangup,
        ],
    )]));
    r.ss.command(
        23,
        PortCommand::Dial {
            called: "+15550001".into(),
            calling: Some("5559999".into()),
        },
    )
    .unwrap();
    r.tx_freq.insert(23, 1000.0);
    r.until(Duration::from_secs(10), |r| {
        r.has(&Event::Port(
            23,
            PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        ))
    });
    for e in [
        PortEvent::Proceeding,
        PortEvent::Alerting,
        PortEvent::Connected,
    ] {
        assert!(
            r.has(&Event::Port(23, e.clone())),
            "{e:?} in {:?}",
            r.events
        );
    }
    // The carrier answered after one ring (50 ticks).
    // Our 1 kHz tone reached the callee at the right frequency and level.
    let rec = r.ss.calls.get(&23).map(|c| c.heard.clone());
    assert!(rec.is_none(), "call cleared on the carrier side too");
    // What came back carried the callee's '1' as real in-band DTMF.
    let back = &r.rx[&23];
    let mut det = DtmfDetector::new();
    let mut digits = String::new();
    det.process(back, |e| {
        if let DtmfEvent::Start { digit, .. } = e {
            digits.push(digit)
        }
    });
    assert_eq!(digits, "1");
}

#[test]
fn the_callee_hears_our_tone_at_the_right_frequency_and_level() {
    let rec = std::env::temp_dir().join(format!("outcall-softspan-rec-{}.wav", std::process::id()));
    let mut c = callee(
        "5550001",
        Behaviour::Answer,
        vec![Step::Wait(1000), Step::Hangup],
    );
    c.record = Some(rec.clone());
    let mut r = Run::new(t1(vec![c]));
    r.ss.command(
        1,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    r.tx_freq.insert(1, 697.0);
    r.until(Duration::from_secs(10), |r| {
        r.has(&Event::Port(
            1,
            PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        ))
    });
    let (rate, heard) = outcall_media::wav::read(&rec).unwrap();
    assert_eq!(rate, 8000);
    assert!(
        heard.len() >= 8000 * 9 / 10,
        "about a second heard: {}",
        heard.len()
    );
    let f = freq_of(&heard[800..]);
    assert!((f - 697.0).abs() < 10.0, "heard {f} Hz");
    let rms = (heard[800..]
        .iter()
        .map(|&s| f64::from(s).powi(2))
        .sum::<f64>()
        / (heard.len() - 800) as f64)
        .sqrt();
    assert!(
        (rms / (8000.0 / 2f64.sqrt()) - 1.0).abs() < 0.05,
        "level kept through µ-law: rms {rms}"
    );
    std::fs::remove_file(&rec).unwrap();
}

#[test]
fn busy_unallocated_congestion_and_no_answer() {
    let mut r = Run::new(t1(vec![
        callee("5550017", Behaviour::Busy, vec![]),
        callee("5550034", Behaviour::Congestion, vec![]),
        callee("5550019", Behaviour::NoAnswer, vec![]),
    ]));
    for (ch, num, cause) in [
        (1, "5550017", Cause::USER_BUSY),
        (2, "5550034", Cause::NO_CIRCUIT_AVAILABLE),
        (3, "5550404", Cause::UNALLOCATED),
    ] {
        r.ss.command(
            ch,
            PortCommand::Dial {
                called: num.into(),
                calling: None,
            },
        )
        .unwrap();
        r.until(Duration::from_secs(5), |r| {
            r.has(&Event::Port(
                ch,
                PortEvent::Hangup(CallDir::Outbound, cause),
            ))
        });
    }
    r.ss.command(
        4,
        PortCommand::Dial {
            called: "5550019".into(),
            calling: None,
        },
    )
    .unwrap();
    r.until(Duration::from_secs(5), |r| {
        r.has(&Event::Port(4, PortEvent::Alerting))
    });
    let t = r.ticks;
    // 10 s of ringing in virtual ticks (the loop pauses while libpri's real timers are close,
    // so allow real time for a loaded machine).
    r.until(Duration::from_secs(30), |r| r.ticks > t + 500);
    assert!(
        !r.events
            .iter()
            .any(|e| matches!(e, Event::Port(4, PortEvent::Connected))),
        "never answers"
    );
    // Our ring timeout: we clear it.
    r.ss.command(
        4,
        PortCommand::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
    )
    .unwrap();
    r.until(Duration::from_secs(5), |r| {
        r.has(&Event::Port(
            4,
            PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        ))
    });
}

#[test]
fn inbound_call_with_dnis_and_ani_is_answered_on_the_hunted_channel() {
    let mut r = Run::new(t1(vec![]));
    let ch = r.ss.offer_inbound("5550100", "2125551212").unwrap();
    assert_eq!(ch, 1, "the carrier hunts ascending");
    let inc = Event::Port(
        1,
        PortEvent::Incoming {
            dnis: "5550100".into(),
            ani: "2125551212".into(),
        },
    );
    r.until(Duration::from_secs(5), |r| r.has(&inc));
    r.ss.command(1, PortCommand::Answer).unwrap();
    r.until(Duration::from_secs(5), |r| {
        matches!(
            r.ss.calls.get(&1).map(|c| &c.state),
            Some(CarrierState::Talking { .. })
        )
    });
    assert_eq!(r.ss.offer_inbound("5550101", "1").unwrap(), 2);
}

#[test]
fn twenty_three_calls_at_once_each_with_its_own_audio() {
    let callees: Vec<Callee> = (1..=23)
        .map(|i| {
            callee(
                &format!("55501{i:02}"),
                Behaviour::Answer,
                vec![Step::Wait(600), Step::Hangup],
            )
        })
        .collect();
    let mut r = Run::new(t1(callees));
    for ch in 1..=23u16 {
        r.ss.command(
            ch,
            PortCommand::Dial {
                called: format!("55501{ch:02}"),
                calling: None,
            },
        )
        .unwrap();
        r.tx_freq.insert(ch, 300.0 + 100.0 * f64::from(ch));
    }
    let mut heard: HashMap<u16, Vec<i16>> = HashMap::new();
    r.until(Duration::from_secs(10), |r| {
        (1..=23).all(|ch| r.ss.heard(ch).is_some_and(|h| h.len() >= 4000))
    });
    for ch in 1..=23u16 {
        heard.insert(ch, r.ss.heard(ch).unwrap().to_vec());
    }
    for (ch, h) in &heard {
        let want = 300.0 + 100.0 * f64::from(*ch);
        let f = freq_of(&h[400..]);
        assert!(
            (f - want).abs() < 15.0,
            "channel {ch}: heard {f} Hz, sent {want} Hz"
        );
    }
    r.until(Duration::from_secs(10), |r| {
        (1..=23u16).all(|ch| {
            r.has(&Event::Port(
                ch,
                PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
            ))
        })
    });
}

#[test]
fn glare_the_carrier_wins_and_our_setup_is_cleared_with_44() {
    let mut r = Run::new(t1(vec![callee("5550001", Behaviour::Answer, vec![])]));
    r.ss.offer_inbound("5550100", "2125551212").unwrap(); // channel 1
    r.ss.command(
        1,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    r.until(Duration::from_secs(5), |r| {
        r.has(&Event::Port(
            1,
            PortEvent::Hangup(CallDir::Outbound, Cause::REQUESTED_CHAN_UNAVAIL),
        ))
    });
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Port(1, PortEvent::Incoming { .. }))),
        "{:?}",
        r.events
    );
    r.ss.command(1, PortCommand::Answer).unwrap();
    r.until(Duration::from_secs(5), |r| {
        matches!(
            r.ss.calls.get(&1).map(|c| &c.state),
            Some(CarrierState::Talking { .. })
        )
    });
}

#[test]
fn e1_span_calls_both_ways() {
    let ss = Softspan::new(Config {
        channels: 30,
        e1: true,
        law: Law::Alaw,
        switch: "euroisdn_e1".into(),
        carrier_hunting: Hunting::Descending,
        callees: vec![callee(
            "0301234567",
            Behaviour::Answer,
            vec![Step::Wait(200), Step::Hangup],
        )],
    })
    .unwrap();
    let mut r = Run::new(ss);
    r.ss.command(
        30,
        PortCommand::Dial {
            called: "0301234567".into(),
            calling: None,
        },
    )
    .unwrap();
    r.tx_freq.insert(30, 1000.0);
    r.until(Duration::from_secs(10), |r| {
        r.has(&Event::Port(
            30,
            PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        ))
    });
    assert!(r.has(&Event::Port(30, PortEvent::Connected)));
    let ch = r.ss.offer_inbound("0309999", "0301111").unwrap();
    assert_eq!(ch, 30, "descending hunting on E1");
    r.until(Duration::from_secs(5), |r| {
        r.events
            .iter()
            .any(|e| matches!(e, Event::Port(30, PortEvent::Incoming { .. })))
    });
}

#[test]
fn d_channel_down_mid_call_ends_the_call_and_the_span_recovers() {
    let mut r = Run::new(t1(vec![callee("5550001", Behaviour::Answer, vec![])]));
    r.ss.command(
        5,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    r.until(Duration::from_secs(5), |r| {
        r.has(&Event::Port(5, PortEvent::Connected))
    });
    r.ss.cut_dchannel(true);
    r.until(Duration::from_secs(40), |r| {
        r.has(&Event::Span(SpanEvent::Down))
    });
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Port(5, PortEvent::Hangup(CallDir::Outbound, _)))),
        "{:?}",
        r.events
    );
    let n = r.events.len();
    r.ss.cut_dchannel(false);
    r.until(Duration::from_secs(40), |r| {
        r.events[n..].contains(&Event::Span(SpanEvent::Up))
    });
    r.ss.command(
        6,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    r.until(Duration::from_secs(10), |r| {
        r.has(&Event::Port(6, PortEvent::Connected))
    });
}

#[test]
fn a_carrier_restart_ends_the_call_on_that_channel() {
    let mut r = Run::new(t1(vec![callee("5550001", Behaviour::Answer, vec![])]));
    r.ss.command(
        9,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    r.until(Duration::from_secs(5), |r| {
        r.has(&Event::Port(9, PortEvent::Connected))
    });
    r.ss.restart_channel(9).unwrap();
    r.until(Duration::from_secs(10), |r| {
        r.has(&Event::Span(SpanEvent::Restart(Some(9))))
    });
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Port(9, PortEvent::Hangup(CallDir::Outbound, _)))),
        "{:?}",
        r.events
    );
    // The channel takes a new call.
    r.ss.command(
        9,
        PortCommand::Dial {
            called: "5550001".into(),
            calling: None,
        },
    )
    .unwrap();
    let n = r.events.len();
    r.until(Duration::from_secs(5), |r| {
        r.events[n..].contains(&Event::Port(9, PortEvent::Connected))
    });
}
