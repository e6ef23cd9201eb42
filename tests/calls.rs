//! Real calls: the outcalld binary, its socket, softspan (our libpri CPE against the simulated
//! libpri carrier), espeak-ng prompts, in-band DTMF.

use outcall_tests::Daemon;
use serde_json::Value;
use std::time::Duration;

/// The carrier's callees and the span, for `Daemon::start`'s extra config.
fn span(dir_hint: &str, inbound: &str) -> String {
    format!(
        r#"
[tts]
cache = "{dir_hint}/tts"

[limits]
per-callee-per-day = 100

[[span]]
name = "soft1"
kind = "softspan"
calls-per-second = 50.0

[span.carrier]
{inbound}

[[span.carrier.callee]]
number = "+15550001"
script = ["wait-prompt", "dtmf 1", "wait 1s", "hangup"]
record = "{dir_hint}/callee.wav"

[[span.carrier.callee]]
number = "+15550017"
behaviour = "busy"

[[span.carrier.callee]]
number = "+15550019"
behaviour = "no-answer"

[[span.carrier.callee]]
number = "+15550050"
script = ["wait 8s", "hangup"]

[[span.carrier.callee]]
number = "+15550060"
script = ["wait 25s", "hangup"]
"#
    )
}

fn scratch(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("outcall-e2e-{name}-{}", std::process::id()))
        .display()
        .to_string()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn status(d: &Daemon, id: u64) -> Value {
    json(&d.ctl(&["--json", "status", &id.to_string()]))
}

/// Waits (bounded) until the request's state satisfies `pred`.
fn wait_for(d: &Daemon, id: u64, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = outcall_tests::deadline(limit);
    loop {
        let r = status(d, id);
        if pred(&r) {
            return r;
        }
        assert!(
            !outcall_tests::passed(deadline),
            "request {id} still {}: {r}\nlog:\n{}",
            r["state"],
            d.log()
        );
        outcall_tests::pause();
    }
}

fn submit(d: &Daemon, args: &[&str]) -> u64 {
    let mut a = vec!["--json", "call"];
    a.extend_from_slice(args);
    let out = d.ctl(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)["id"].as_u64().unwrap()
}

/// Voiced duration of a recording: first to last 20 ms frame above the speech floor.
fn voiced_seconds(samples: &[i16]) -> f64 {
    let loud: Vec<usize> = samples
        .chunks(160)
        .enumerate()
        .filter(|(_, f)| {
            (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64).sqrt() > 200.0
        })
        .map(|(i, _)| i)
        .collect();
    match (loud.first(), loud.last()) {
        (Some(a), Some(b)) => (b - a + 1) as f64 * 0.02,
        _ => 0.0,
    }
}

#[test]
fn a_call_completes_with_the_callee_s_in_band_digit_after_hearing_the_prompt() {
    let dir = scratch("complete");
    let d = Daemon::start("complete", "", &span(&dir, ""));
    assert_eq!(d.dir.display().to_string(), dir);
    let out = d.ctl(&[
        "--json",
        "call",
        "+15550001",
        "--say",
        "You were outbid. Press 1 to raise your bid by ten dollars.",
        "--collect",
        "1",
        "--user-data",
        "{\"auction\":991}",
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let r = json(&out);
    assert_eq!(r["state"], "completed", "{r}");
    let a = &r["attempts"][0];
    assert_eq!(a["digits"], "1", "{r}");
    assert_eq!(a["submitted"]["digits"], "1", "{r}");
    assert_eq!(a["cause"], 16);
    assert_eq!(r["spec"]["user_data"]["auction"], 991);
    assert!(a["port"].as_str().unwrap().starts_with("soft1/"), "{r}");
    // The callee heard the prompt: about as long as what espeak-ng synthesised for it.
    let (_, heard) = outcall_media_wav(&d.dir.join("callee.wav"));
    let tts: Vec<_> = std::fs::read_dir(d.dir.join("tts"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(tts.len(), 1, "one prompt synthesised and cached");
    let synth = std::fs::metadata(tts[0].path()).unwrap().len() as f64 / 2.0 / 8000.0;
    let voiced = voiced_seconds(&heard);
    assert!(
        voiced > 0.7 * synth && voiced < synth + 0.5,
        "voiced {voiced:.2} s vs synthesised {synth:.2} s"
    );
}

/// Reads a 16-bit mono WAV (the carrier's recordings).
fn outcall_media_wav(p: &std::path::Path) -> (u32, Vec<i16>) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&b[0..4], b"RIFF");
    let rate = u32::from_le_bytes(b[24..28].try_into().unwrap());
    (
        rate,
        b[44..]
            .chunks_exact(2)
            .map(|x| i16::from_le_bytes([x[0], x[1]]))
            .collect(),
    )
}

#[test]
fn busy_and_no_answer_are_retried_and_end_busy_and_no_answer() {
    let dir = scratch("retry");
    let d = Daemon::start("retry", "", &span(&dir, ""));
    let busy = submit(
        &d,
        &[
            "+15550017",
            "--say",
            "x",
            "--attempts",
            "2",
            "--retry-delay",
            "10",
        ],
    );
    let noans = submit(
        &d,
        &[
            "+15550019",
            "--say",
            "x",
            "--attempts",
            "2",
            "--retry-delay",
            "10",
            "--ring-timeout",
            "5",
        ],
    );
    let final_state = |r: &Value| {
        !matches!(
            r["state"].as_str(),
            Some("queued" | "dialing" | "ringing" | "answered")
        )
    };
    let b = wait_for(&d, busy, Duration::from_secs(60), final_state);
    assert_eq!(b["state"], "busy", "{b}");
    assert_eq!(b["attempts"].as_array().unwrap().len(), 2, "{b}");
    assert!(b["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["cause"] == 17));
    let gap = b["attempts"][1]["started_at"].as_u64().unwrap()
        - b["attempts"][0]["ended_at"].as_u64().unwrap();
    assert!(gap >= 10_000, "retried after the delay: {gap} ms");
    let n = wait_for(&d, noans, Duration::from_secs(60), final_state);
    assert_eq!(n["state"], "no-answer", "{n}");
    assert_eq!(n["attempts"].as_array().unwrap().len(), 2, "{n}");
    for a in n["attempts"].as_array().unwrap() {
        let rang = a["ended_at"].as_u64().unwrap() - a["started_at"].as_u64().unwrap();
        assert!(
            (5_000..8_000).contains(&rang),
            "ring timeout of 5 s: rang {rang} ms"
        );
        assert_eq!(a["hung_up_by"], "outcall");
    }
}

#[test]
fn twenty_three_requests_fill_the_span_and_the_twenty_fourth_waits_its_turn() {
    let dir = scratch("fill");
    let d = Daemon::start("fill", "", &span(&dir, ""));
    let ids: Vec<u64> = (0..24)
        .map(|_| {
            submit(
                &d,
                &[
                    "+15550050",
                    "--say",
                    "Hello. This is one of twenty four calls placed at once.",
                    "--attempts",
                    "1",
                ],
            )
        })
        .collect();
    let recs: Vec<Value> = ids
        .iter()
        .map(|&id| {
            wait_for(&d, id, Duration::from_secs(90), |r| {
                r["state"] == "completed" || r["state"] == "failed"
            })
        })
        .collect();
    for r in &recs {
        assert_eq!(r["state"], "completed", "{r}");
    }
    let mut ports: Vec<&str> = recs[..23]
        .iter()
        .map(|r| r["attempts"][0]["port"].as_str().unwrap())
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 23, "the first 23 each had their own B-channel");
    let first_end = recs[..23]
        .iter()
        .map(|r| r["attempts"][0]["ended_at"].as_u64().unwrap())
        .min()
        .unwrap();
    let last_start = recs[23]["attempts"][0]["started_at"].as_u64().unwrap();
    assert!(
        last_start >= first_end,
        "the 24th dialled only once a channel was free"
    );
}

#[test]
fn an_inbound_call_from_the_carrier_runs_the_inbound_application() {
    let dir = scratch("inbound");
    let carrier_calls = format!(
        "[[span.carrier.inbound]]\ndid = \"5550100\"\nani = \"2125551212\"\nafter-ms = 300\nscript = [\"wait-prompt\", \"dtmf 7\", \"wait 1s\", \"hangup\"]\nrecord = \"{dir}/inbound.wav\"\n"
    );
    let apps = "\n[[inbound]]\ndid = \"5550100\"\nsay = \"Thank you for calling back. Press 7 to hear your message again.\"\ncollect = 1\n";
    let d = Daemon::start("inbound", "", &(span(&dir, &carrier_calls) + apps));
    let deadline = outcall_tests::deadline(Duration::from_secs(40));
    while !d.log().contains("application ended") {
        assert!(
            !outcall_tests::passed(deadline),
            "no inbound session ended; log:\n{}",
            d.log()
        );
        outcall_tests::pause();
    }
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("application ended"))
        .unwrap()
        .to_string();
    assert!(line.contains("digits=\"7\""), "{line}");
    let deadline = outcall_tests::deadline(Duration::from_secs(20));
    while !d.dir.join("inbound.wav").exists() {
        assert!(
            !outcall_tests::passed(deadline),
            "the caller's recording never appeared"
        );
        outcall_tests::pause();
    }
    let (_, heard) = outcall_media_wav(&d.dir.join("inbound.wav"));
    assert!(
        voiced_seconds(&heard) > 1.5,
        "the caller heard the inbound prompt"
    );
}

#[test]
fn kill_9_during_a_call_records_the_attempt_lost_and_retries() {
    let dir = scratch("crash");
    let mut d = Daemon::start("crash", "", &span(&dir, ""));
    let id = submit(
        &d,
        &[
            "+15550060",
            "--say",
            "Please hold.",
            "--collect",
            "1",
            "--attempts",
            "2",
        ],
    );
    wait_for(&d, id, Duration::from_secs(30), |r| {
        r["state"] == "answered"
    });
    d.kill9();
    d.restart();
    let r = status(&d, id);
    assert_eq!(r["attempts"][0]["outcome"], "lost", "{r}");
    assert_eq!(r["attempts"][0]["hung_up_by"], "unknown");
    // Retried at once, and this time it runs to its end (the application gives up on no input).
    let r = wait_for(&d, id, Duration::from_secs(60), |r| {
        r["state"] == "completed"
    });
    assert_eq!(r["attempts"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["attempts"][1]["outcome"], "completed");
}
