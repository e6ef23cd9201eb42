//! Memory per session and speed: rquickjs (QuickJS) vs boa_engine, on the VoiceXML scope chain.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock
use std::time::Instant;

const N: usize = 200;
/// What one VoiceXML session does to its engine: five nested scopes, a few vars, conds.
const SETUP: &str = r#"
var session = { connection: { local: { uri: "tel:+15550001" }, remote: { uri: "tel:+15550002" },
  protocol: { name: "isdn" }, redirect: [], aai: "" }, user: { id: "42", bid: "17.50" } };
var application = Object.create(session); application.lastresult$ = [];
var document = Object.create(application); document.item = 0; document.price = 17.5;
var dialog = Object.create(document); dialog.bid = undefined; dialog.confirm = undefined;
"#;
const EXPRS: &[&str] = &[
    "dialog.bid = '1850'",
    "Number(dialog.bid) / 100 > document.price",
    "'Your bid of ' + (Number(dialog.bid)/100).toFixed(2) + ' dollars'",
    "document.item = document.item + 1",
    "session.connection.protocol.name == 'isdn' && document.item < 3",
];

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn quickjs() {
    use rquickjs::{Context, Runtime};
    let before = rss_kib();
    let t0 = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..N {
        let rt = Runtime::new().unwrap();
        rt.set_memory_limit(256 * 1024);
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|c| c.eval::<(), _>(SETUP).unwrap());
        sessions.push((rt, ctx));
    }
    let create = t0.elapsed();
    let after = rss_kib();
    let usage = sessions[0].0.memory_usage();
    let t1 = Instant::now();
    let mut n = 0;
    for _ in 0..50 {
        for (_, ctx) in &sessions {
            ctx.with(|c| {
                for e in EXPRS {
                    let _: rquickjs::Value = c.eval(*e).unwrap();
                    n += 1;
                }
            });
        }
    }
    let eval = t1.elapsed();
    println!(
        "rquickjs  : RSS/session {:>6} KiB  malloc_size/session {:>6} KiB  create {:>7.1} us/session  eval {:>6.2} us/expr",
        (after - before) / N,
        usage.malloc_size / 1024,
        create.as_secs_f64() * 1e6 / N as f64,
        eval.as_secs_f64() * 1e6 / n as f64
    );
}

fn boa() {
    use boa_engine::{Context, Source};
    let before = rss_kib();
    let t0 = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..N {
        let mut ctx = Context::default();
        ctx.eval(Source::from_bytes(SETUP)).unwrap();
        sessions.push(ctx);
    }
    let create = t0.elapsed();
    let after = rss_kib();
    let t1 = Instant::now();
    let mut n = 0;
    for _ in 0..50 {
        for ctx in &mut sessions {
            for e in EXPRS {
                ctx.eval(Source::from_bytes(*e)).unwrap();
                n += 1;
            }
        }
    }
    let eval = t1.elapsed();
    println!(
        "boa_engine: RSS/session {:>6} KiB  create {:>7.1} us/session  eval {:>6.2} us/expr",
        (after - before) / N,
        create.as_secs_f64() * 1e6 / N as f64,
        eval.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("quickjs") => quickjs(),
        Some("boa") => boa(),
        _ => eprintln!("usage: vxml-jsbench quickjs|boa (run each in its own process)"),
    }
}
