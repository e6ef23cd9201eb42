//! Memory and CPU per live session: starts N interpreters on examples/vxml/outbid.vxml and
//! drives each to its first `Listen`, then through one DTMF answer.
//!
//!     cargo run --release -p outcall-vxml --example sessions -- 200
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::time::Instant;

use outcall_vxml::{Config, FetchResult, Input, Interpreter, Output, SessionInfo};

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("linux");
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .expect("statm")
        * 4
}

fn drain(i: &mut Interpreter, now: Instant, doc: &str) -> bool {
    let mut listening = false;
    while let Some(o) = i.poll_output() {
        match o {
            Output::Fetch { id, url, .. } => {
                let result = FetchResult::Ok {
                    url,
                    body: doc.to_string(),
                };
                i.handle_input(now, Input::Fetched { id, result })
                    .expect("outstanding");
            }
            Output::Play { .. } => i.handle_input(now, Input::PromptsDone).expect("live"),
            Output::Listen { .. } => listening = true,
            _ => {}
        }
    }
    listening
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vxml/outbid.vxml");
    let doc = std::fs::read_to_string(path).expect("example");
    let user = serde_json::json!({"item": "a lamp", "lot": "9", "price": "10.00", "callback": "http://127.0.0.1:9"});
    let now = Instant::now();
    let before = rss_kib();
    let t0 = Instant::now();
    let mut live = Vec::with_capacity(n);
    for _ in 0..n {
        let cfg = Config {
            session: SessionInfo {
                user_data: user.clone(),
                ..SessionInfo::default()
            },
            ..Config::default()
        };
        let mut i = Interpreter::new(cfg).expect("engine");
        i.start(now, "file:///outbid.vxml");
        assert!(drain(&mut i, now, &doc), "reaches the menu");
        live.push(i);
    }
    let start = t0.elapsed();
    let after = rss_kib();
    let t1 = Instant::now();
    for i in &mut live {
        i.handle_input(now, Input::Dtmf('1')).expect("live");
        assert!(drain(i, now, &doc), "reaches the bid field");
    }
    let answer = t1.elapsed();
    println!(
        "{n} sessions: RSS {} KiB/session; start to first listen {:.0} us/session; one DTMF answer to next listen {:.0} us/session",
        (after - before) / n,
        start.as_secs_f64() * 1e6 / n as f64,
        answer.as_secs_f64() * 1e6 / n as f64
    );
}
