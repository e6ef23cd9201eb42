//! Measures a softspan's media clock: all B-channels in calls, one tick every 20 ms on the real
//! clock, for a bounded time. Prints the lateness of each tick against its schedule (jitter) and
//! the processing time of a tick, as one JSON object on the last line.
//!
//!     cargo run --release -p outcall-softspan --bin span-clock -- [SECONDS] [CHANNELS]

use outcall_media::g711::Law;
use outcall_port::PortEvent;
use outcall_port::{CallDir, Cause, PortCommand};
use outcall_softspan::{Behaviour, Callee, Config, Event, Hunting, Softspan};
use std::time::{Duration, Instant};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[allow(clippy::disallowed_methods)] // a measurement of the real clock
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 600);
    let channels: u16 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(23)
        .clamp(1, 23);
    let callees = (1..=channels)
        .map(|c| Callee {
            number: format!("55500{c:02}"),
            behaviour: Behaviour::Answer,
            rings: 1,
            script: vec![],
            record: None,
        })
        .collect();
    let mut ss = Softspan::new(Config {
        channels: 23,
        e1: false,
        law: Law::Ulaw,
        switch: "ni2".into(),
        carrier_hunting: Hunting::Ascending,
        callees,
    })
    .expect("softspan");
    let start = Instant::now();
    while !ss.is_up() {
        ss.poll();
        while ss.poll_event().is_some() {}
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the D-channel did not come up"
        );
        ss.wait(5);
    }
    for c in 1..=channels {
        ss.command(
            c,
            PortCommand::Dial {
                called: format!("55500{c:02}"),
                calling: None,
            },
        )
        .expect("dial");
    }
    // Ring (one second) and connect, ticking as fast as possible.
    let mut connected = 0;
    let mut n = 0u64;
    while connected < channels {
        ss.poll();
        while let Some(e) = ss.poll_event() {
            if matches!(e, Event::Port(_, PortEvent::Connected)) {
                connected += 1;
            }
        }
        ss.tick(|_| None, |_, _| {});
        n += 1;
        assert!(n < 100_000, "calls did not connect");
    }
    let tone = |ch: u16, k: u64| {
        let mut f = [0i16; 160];
        for (i, s) in f.iter_mut().enumerate() {
            let t = (k * 160 + i as u64) as f64 / 8000.0;
            *s = (6000.0 * (2.0 * std::f64::consts::PI * (400.0 + 40.0 * f64::from(ch)) * t).sin())
                as i16;
        }
        f
    };
    let tick = Duration::from_millis(20);
    let ticks = seconds * 50;
    let (mut late, mut work) = (
        Vec::with_capacity(ticks as usize),
        Vec::with_capacity(ticks as usize),
    );
    let t0 = Instant::now() + tick;
    let mut received = 0u64;
    for k in 0..ticks {
        let due = t0 + tick * k as u32;
        // Wait for the tick: D-channel traffic is served meanwhile.
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            ss.poll();
            while ss.poll_event().is_some() {}
            let left = (due - now).as_millis() as u64;
            if left > 1 {
                ss.wait(left - 1);
            }
        }
        let begun = Instant::now();
        late.push((begun - due).as_secs_f64() * 1e3);
        ss.tick(|ch| Some(tone(ch, k)), |_, _| received += 1);
        work.push(begun.elapsed().as_secs_f64() * 1e6);
    }
    for c in 1..=channels {
        let _ = ss.command(
            c,
            PortCommand::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        );
    }
    let frames_per_tick = received as f64 / ticks as f64;
    println!(
        "{{\"seconds\":{seconds},\"channels\":{channels},\"ticks\":{ticks},\"frames_per_tick\":{frames_per_tick:.1},\
\"late_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\"tick_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}}}}",
        pct(&mut late.clone(), 0.5),
        pct(&mut late.clone(), 0.99),
        pct(&mut late, 1.0),
        pct(&mut work.clone(), 0.5),
        pct(&mut work.clone(), 0.99),
        pct(&mut work, 1.0),
    );
}
