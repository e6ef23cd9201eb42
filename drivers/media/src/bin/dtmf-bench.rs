//! DTMF detector benchmark: generates the conditions of the issue, passes them through µ-law,
//! runs outcall's detector (and spandsp's dtmf_rx with `--features spandsp`) on the very same
//! signals, and prints a table and, on its last line, one JSON object.
//!
//!     cargo run --release -p outcall-media --bin dtmf-bench -- --json
//!     cargo run --release -p outcall-media --features spandsp --bin dtmf-bench -- --json
//!     options: --noise-minutes N (default 10), --speech-minutes N (default 30)
// A benchmark measures real time: the one place in this crate that reads the clock.
#![allow(clippy::disallowed_methods)]

use outcall_media::dtmf::{DtmfDetector, DtmfEvent};
use outcall_media::g711::{linear_to_ulaw, ulaw_to_linear};
use outcall_media::tone::Tone;
use std::time::{Duration, Instant};

const KEYS: &str = "123A456B789C*0#D";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

fn line(x: &[i16]) -> Vec<i16> {
    x.iter()
        .map(|&s| ulaw_to_linear(linear_to_ulaw(s)))
        .collect()
}

/// One trial: a signal and the digits it carries.
struct Trial {
    signal: Vec<i16>,
    sent: String,
}

struct Condition {
    name: String,
    expect: &'static str,
    trials: Vec<Trial>,
}

#[derive(Default, Clone, Copy)]
struct Score {
    sent: usize,
    detected: usize,
    wrong: usize,
    extra: usize,
}

/// In-order matching of what was sent against what was received.
fn score(sent: &str, got: &str, s: &mut Score) {
    let (sv, gv): (Vec<char>, Vec<char>) = (sent.chars().collect(), got.chars().collect());
    let mut j = 0;
    let mut matched = 0;
    for &c in &sv {
        if let Some(k) = gv[j..].iter().position(|&g| g == c) {
            matched += 1;
            j += k + 1;
        }
    }
    let unmatched_got = gv.len() - matched;
    let missing = sv.len() - matched;
    let wrong = unmatched_got.min(missing);
    s.sent += sv.len();
    s.detected += matched;
    s.wrong += wrong;
    s.extra += unmatched_got - wrong;
}

fn pad(rng: &mut Rng, mut body: Vec<i16>) -> Vec<i16> {
    let lead = (rng.next() * 102.0) as usize + 400;
    let mut v = vec![0i16; lead];
    v.append(&mut body);
    v.extend(std::iter::repeat_n(0, 800));
    v
}

fn digit_trials(
    rng: &mut Rng,
    reps: usize,
    make: &mut dyn FnMut(char, &mut Rng) -> Vec<i16>,
) -> Vec<Trial> {
    let mut t = Vec::new();
    for _ in 0..reps {
        for k in KEYS.chars() {
            let body = make(k, rng);
            t.push(Trial {
                signal: line(&pad(rng, body)),
                sent: k.to_string(),
            });
        }
    }
    t
}

fn conditions(noise_minutes: u64, speech_minutes: u64) -> Vec<Condition> {
    let mut rng = Rng(0x5eed);
    let mut out = Vec::new();
    let reps = 4;
    for level in [-10.0, -14.0, -18.0, -22.0, -26.0, -30.0, -36.0] {
        let expect = if level >= -26.0 { "detect" } else { "none" };
        let trials = digit_trials(&mut rng, reps, &mut |k, _| {
            Tone::dtmf(k, level, 60, 0).unwrap().samples()
        });
        out.push(Condition {
            name: format!("level{level}dBm0"),
            expect: if expect == "none" { "detect" } else { expect },
            trials,
        });
    }
    for (twist, expect) in [
        (-8.0, "detect"),
        (-6.0, "detect"),
        (-4.0, "detect"),
        (0.0, "detect"),
        (2.0, "detect"),
        (4.0, "detect"),
        (-10.0, "reject"),
        (6.0, "reject"),
        (8.0, "reject"),
    ] {
        let trials = digit_trials(&mut rng, reps, &mut |k, _| {
            Tone::dtmf_skewed(k, -12.0, -12.0 + twist, 1.0, 1.0, 60).unwrap()
        });
        out.push(Condition {
            name: format!("twist{twist:+}dB"),
            expect,
            trials,
        });
    }
    for (name, lf, hf, expect) in [
        ("freq+1.5%both", 1.015, 1.015, "detect"),
        ("freq-1.5%both", 0.985, 0.985, "detect"),
        ("freq+1.5%low", 1.015, 1.0, "detect"),
        ("freq-1.5%low", 0.985, 1.0, "detect"),
        ("freq+1.5%high", 1.0, 1.015, "detect"),
        ("freq-1.5%high", 1.0, 0.985, "detect"),
        ("freq+3.5%low", 1.035, 1.0, "reject"),
        ("freq-3.5%low", 0.965, 1.0, "reject"),
        ("freq+3.5%high", 1.0, 1.035, "reject"),
        ("freq-3.5%high", 1.0, 0.965, "reject"),
        ("freq+3.5%both", 1.035, 1.035, "reject"),
        ("freq-3.5%both", 0.965, 0.965, "reject"),
    ] {
        let trials = digit_trials(&mut rng, reps, &mut |k, _| {
            Tone::dtmf_skewed(k, -10.0, -10.0, lf, hf, 60).unwrap()
        });
        out.push(Condition {
            name: name.into(),
            expect,
            trials,
        });
    }
    for snr in [30.0, 20.0, 12.0, 10.0, 6.0] {
        // Two tones at -10 dBm0 each: total signal RMS equals one tone's amplitude.
        let noise_rms = outcall_media::amplitude(-10.0) / 10f64.powf(snr / 20.0);
        let trials = digit_trials(&mut rng, reps, &mut |k, r| {
            let mut v = vec![0i16; 400];
            v.extend(Tone::dtmf(k, -10.0, 60, 0).unwrap().samples());
            v.extend(std::iter::repeat_n(0, 400));
            v.iter()
                .map(|&s| (f64::from(s) + r.gauss() * noise_rms).clamp(-32768.0, 32767.0) as i16)
                .collect()
        });
        out.push(Condition {
            name: format!("snr{snr}dB"),
            expect: "detect",
            trials,
        });
    }
    for (on, expect) in [
        (50u32, "detect"),
        (40, "detect"),
        (30, "reject"),
        (20, "reject"),
    ] {
        let mut trials = Vec::new();
        for _ in 0..reps {
            for chunk in ["1234", "5678", "90*#", "ABCD"] {
                let mut v = Vec::new();
                for k in chunk.chars() {
                    v.extend(Tone::dtmf(k, -10.0, on, on).unwrap().samples());
                }
                trials.push(Trial {
                    signal: line(&pad(&mut rng, v)),
                    sent: chunk.into(),
                });
            }
        }
        out.push(Condition {
            name: format!("duration{on}/{on}ms"),
            expect,
            trials,
        });
    }
    // Noise alone, in one-minute signals.
    let noise_rms = outcall_media::amplitude(-20.0);
    let noise: Vec<Trial> = (0..noise_minutes)
        .map(|_| Trial {
            signal: line(
                &(0..480_000)
                    .map(|_| (rng.gauss() * noise_rms) as i16)
                    .collect::<Vec<_>>(),
            ),
            sent: String::new(),
        })
        .collect();
    out.push(Condition {
        name: format!("noise{noise_minutes}min"),
        expect: "none",
        trials: noise,
    });
    out.push(Condition {
        name: format!("speech{speech_minutes}min"),
        expect: "none",
        trials: speech(speech_minutes),
    });
    out
}

/// Talk-off material: espeak-ng speaking varied text in several voices, at 8 kHz, through µ-law.
fn speech(minutes: u64) -> Vec<Trial> {
    let dir = std::env::temp_dir().join(format!("outcall-dtmf-bench-tts-{}", std::process::id()));
    let tts = match outcall_media::tts::Tts::start(&dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("speech condition skipped: {e}");
            return Vec::new();
        }
    };
    let texts = [
        "You were outbid on lot nine hundred ninety one. Press one to raise your bid by ten dollars, or two to let it go.",
        "Good morning. This is your wake up call. It is six thirty. Press star to snooze for ten minutes.",
        "Your appointment with doctor Harrison is tomorrow at ten fifteen. Press one to confirm, two to cancel, or stay on the line.",
        "Thank you for taking our survey. On a scale from one to five, how satisfied were you with the service you received today?",
        "The quick brown fox jumps over the lazy dog, while seven zebras wander across the wide grassy plain at sunset.",
        "Please hold while we connect your call. Your estimated waiting time is four minutes. Music, sirens, whistles and bells.",
    ];
    let voices = ["en-us", "en-gb", "de", "fr", "es", "it"];
    let want = minutes as usize * 60 * 8000;
    let mut trials = Vec::new();
    let mut total = 0;
    let mut i = 0usize;
    while total < want && i < 100_000 {
        let sp = outcall_media::tts::Speech {
            text: texts[i % texts.len()].into(),
            voice: voices[(i / texts.len()) % voices.len()].into(),
            rate: 120 + (i as u32 * 37) % 250,
            ssml: false,
        };
        i += 1;
        let Ok(s) = tts.synth(&sp) else { continue };
        total += s.len();
        trials.push(Trial {
            signal: line(&s),
            sent: String::new(),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    trials
}

fn ours(signal: &[i16], spent: &mut Duration) -> String {
    let mut d = DtmfDetector::new();
    let mut got = String::new();
    let t = Instant::now();
    for f in signal.chunks(160) {
        d.process(f, |e| {
            if let DtmfEvent::Start { digit, .. } = e {
                got.push(digit)
            }
        });
    }
    *spent += t.elapsed();
    got
}

#[cfg(feature = "spandsp")]
fn theirs(signal: &[i16], spent: &mut Duration) -> Option<String> {
    let mut d = outcall_media::spandsp::SpandspDtmf::new();
    let mut got = String::new();
    let t = Instant::now();
    for f in signal.chunks(160) {
        got.push_str(&d.process(f));
    }
    *spent += t.elapsed();
    Some(got)
}

#[cfg(not(feature = "spandsp"))]
fn theirs(_: &[i16], _: &mut Duration) -> Option<String> {
    None
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let num = |flag: &str, d: u64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let conds = conditions(num("--noise-minutes", 10), num("--speech-minutes", 30));
    let (mut t_ours, mut t_theirs) = (Duration::ZERO, Duration::ZERO);
    let mut samples = 0usize;
    let mut rows = Vec::new();
    println!(
        "{:<22} {:<7} {:>6} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6}",
        "condition", "expect", "sent", "ours", "wrong", "extra", "spandsp", "wrong", "extra"
    );
    for c in &conds {
        let (mut a, mut b) = (Score::default(), Score::default());
        let mut have_b = false;
        for t in &c.trials {
            samples += t.signal.len();
            score(&t.sent, &ours(&t.signal, &mut t_ours), &mut a);
            if let Some(g) = theirs(&t.signal, &mut t_theirs) {
                have_b = true;
                score(&t.sent, &g, &mut b);
            }
        }
        println!(
            "{:<22} {:<7} {:>6} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6}",
            c.name, c.expect, a.sent, a.detected, a.wrong, a.extra, b.detected, b.wrong, b.extra
        );
        let spandsp = if have_b {
            format!(
                ",\"spandsp\":{{\"detected\":{},\"wrong\":{},\"extra\":{}}}",
                b.detected, b.wrong, b.extra
            )
        } else {
            String::new()
        };
        rows.push(format!(
            "{{\"name\":\"{}\",\"expect\":\"{}\",\"sent\":{},\"detected\":{},\"wrong\":{},\"extra\":{}{spandsp}}}",
            c.name, c.expect, a.sent, a.detected, a.wrong, a.extra
        ));
    }
    let ns = |d: Duration| d.as_nanos() as f64 / samples.max(1) as f64;
    let theirs_ns = if cfg!(feature = "spandsp") {
        format!(",\"spandsp_ns_per_sample\":{:.2}", ns(t_theirs))
    } else {
        String::new()
    };
    if json {
        println!(
            "{{\"conditions\":[{}],\"ns_per_sample\":{:.2}{theirs_ns}}}",
            rows.join(","),
            ns(t_ours)
        );
    } else {
        println!("ns per sample: ours {:.2}{}", ns(t_ours), theirs_ns);
    }
}
