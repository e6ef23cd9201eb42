//! Runs the applications in examples/vxml through the `vxml-run` binary and checks what the
//! caller hears and what is submitted, including real HTTP submits to a server on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/vxml")
        .join(name)
}

fn run(app: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_vxml-run"))
        .arg(app)
        .args(args)
        .arg("--json")
        .output()
        .expect("vxml-run runs");
    assert!(
        out.status.success(),
        "vxml-run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn prompts(events: &[Value]) -> Vec<String> {
    of(events, "prompt")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// A one-thread HTTP server answering `n` requests with `body_for(path, form)`; each request
/// (method, path, body) goes to the returned channel.
fn server(
    n: usize,
    body_for: fn(&str, &str) -> (u16, String),
) -> (String, mpsc::Receiver<(String, String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let mut s = s.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let (status, reply) = body_for(&path, &body);
            let _ = tx.send((method, path, body));
            write!(s, "HTTP/1.1 {status} X\r\nContent-Type: application/voicexml+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len()).unwrap();
        }
    });
    (addr, rx)
}

const THANKS: &str = r#"<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form><block><prompt>Your answer is recorded.</prompt><exit expr="'stored'"/></block></form></vxml>"#;

#[test]
fn outbid_auction_posts_the_new_bid() {
    let (url, rx) = server(1, |_, _| (200, THANKS.to_string()));
    let user = format!(
        r#"{{"item":"a 1960s Leica M3","lot":"4711","price":"125.00","callback":"{url}"}}"#
    );
    let ev = run(
        example("outbid.vxml").to_str().unwrap(),
        &[
            "--user-data",
            &user,
            "--input",
            "1",
            "--input",
            "120#",
            "--input",
            "130*50#",
            "--input",
            "1",
        ],
    );
    let p = prompts(&ev);
    assert!(
        p[0].starts_with(
            "Hello, this is the auction house. You have been outbid on a 1960s Leica M3, lot 4711."
        ),
        "{}",
        p[0]
    );
    assert!(p[0].contains("The highest bid is now 125.00 dollars."));
    assert!(
        p.iter()
            .any(|t| t.starts_with("Your bid must be more than 125.00 dollars.")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|t| t == "You bid 130.50 dollars. Press 1 to confirm, 2 to change it."),
        "{p:?}"
    );
    let sub = of(&ev, "submit");
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0]["url"], format!("{url}/bid"));
    assert_eq!(sub[0]["method"], "POST");
    assert_eq!(
        sub[0]["params"],
        serde_json::json!({"lot": "4711", "amount": "130.50"})
    );
    let (method, path, body) = rx.recv().unwrap();
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/bid"));
    assert_eq!(body, "amount=130.50&lot=4711");
    assert_eq!(prompts(&ev).last().unwrap(), "Your answer is recorded.");
    assert_eq!(of(&ev, "exit")[0]["values"], "stored");
}

#[test]
fn outbid_server_error_is_caught() {
    let (url, _rx) = server(1, |_, _| (503, String::new()));
    let user = format!(r#"{{"item":"a lamp","lot":"9","price":"10","callback":"{url}"}}"#);
    let ev = run(
        example("outbid.vxml").to_str().unwrap(),
        &[
            "--user-data",
            &user,
            "--input",
            "1",
            "--input",
            "11#",
            "--input",
            "1",
        ],
    );
    let err = of(&ev, "error");
    assert_eq!(err[0]["name"], "error.badfetch.http.503");
    assert!(prompts(&ev)
        .iter()
        .any(|p| p.starts_with("We could not place your bid.")));
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"outcome": "bid-failed"})
    );
}

#[test]
fn outbid_declined_and_silent_bidder() {
    let user = r#"{"item":"a lamp","lot":"9","price":"10","callback":"http://127.0.0.1:9"}"#;
    let ev = run(
        example("outbid.vxml").to_str().unwrap(),
        &["--user-data", user, "--input", "2"],
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"outcome": "declined"})
    );
    let ev = run(
        example("outbid.vxml").to_str().unwrap(),
        &[
            "--user-data",
            user,
            "--input",
            "noinput",
            "--input",
            "noinput",
        ],
    );
    assert_eq!(
        prompts(&ev)[1],
        "Please press 1 to bid again, or 2 to let it go."
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"outcome": "no-response"})
    );
    // inputs run out: the caller hangs up
    let ev = run(
        example("outbid.vxml").to_str().unwrap(),
        &["--user-data", user],
    );
    assert_eq!(of(&ev, "hangup")[0]["by"], "caller");
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"outcome": "no-answer-from-bidder"})
    );
}

const APPT: &str =
    r#"{"name":"Ms Smith","when":"Tuesday at 10 30","clinic":"the Riverside clinic"}"#;

#[test]
fn appointment_confirm_reschedule_cancel() {
    let app = example("appointment.vxml");
    let app = app.to_str().unwrap();
    let ev = run(app, &["--user-data", APPT, "--input", "1"]);
    assert_eq!(
        prompts(&ev)[0],
        "Hello Ms Smith. This is a reminder of your appointment at the Riverside clinic on Tuesday at 10 30. \
         To confirm it, press 1. To choose another time, press 2. To cancel it, press 3."
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"status": "confirmed"})
    );

    let ev = run(
        app,
        &[
            "--user-data",
            APPT,
            "--input",
            "4",
            "--input",
            "2",
            "--input",
            "20261341",
            "--input",
            "20261201",
            "--input",
            "1430",
        ],
    );
    assert!(prompts(&ev)[1].starts_with("That is not one of the choices. Hello Ms Smith."));
    assert!(prompts(&ev)
        .iter()
        .any(|p| p.starts_with("That is not a valid date.")));
    assert_eq!(
        prompts(&ev).last().unwrap(),
        "We will call you to confirm 01 12 at 1430. Goodbye."
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"status": "reschedule-requested", "newdate": "20261201", "newtime": "1430"})
    );

    let ev = run(
        app,
        &[
            "--user-data",
            APPT,
            "--input",
            "3",
            "--input",
            "2",
            "--input",
            "3",
            "--input",
            "1",
        ],
    );
    assert_eq!(
        of(&ev, "listen")
            .iter()
            .filter(|l| l["item"] == "_menu")
            .count(),
        2,
        "keeping it goes back to the menu"
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"status": "cancelled"})
    );

    let ev = run(
        app,
        &[
            "--user-data",
            APPT,
            "--input",
            "noinput",
            "--input",
            "noinput",
            "--input",
            "noinput",
        ],
    );
    assert_eq!(
        prompts(&ev).last().unwrap(),
        "We did not hear from you. We will call again later."
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"status": "unanswered"})
    );
}

const WAKE: &str = r#"{"name":"Alex","snooze_minutes":10,"snoozes_left":3}"#;

#[test]
fn wakeup_snooze_awake_and_silence() {
    let app = example("wakeup.vxml");
    let app = app.to_str().unwrap();
    let ev = run(app, &["--user-data", WAKE, "--input", "1"]);
    // the rooster audio file does not exist: its fallback text is heard
    assert!(
        prompts(&ev)[0]
            .starts_with("Cock-a-doodle-doo! Good morning, Alex. This is your wake-up call."),
        "{:?}",
        prompts(&ev)
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"result": "snoozed", "call_again_in": 10})
    );

    let ev = run(
        app,
        &["--user-data", WAKE, "--input", "noinput", "--input", "2"],
    );
    assert_eq!(
        prompts(&ev)[1],
        "Are you awake? Press 1 to snooze, 2 if you are up."
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"result": "awake", "call_again_in": 0})
    );

    let ev = run(
        app,
        &[
            "--user-data",
            r#"{"name":"Alex","snooze_minutes":10,"snoozes_left":0,"hour":19}"#,
            "--input",
            "1",
        ],
    );
    assert!(prompts(&ev)[0].contains("Good evening, Alex."));
    assert_eq!(of(&ev, "exit")[0]["values"]["result"], "awake-forced");

    let ev = run(
        app,
        &[
            "--user-data",
            WAKE,
            "--input",
            "noinput",
            "--input",
            "noinput",
        ],
    );
    assert_eq!(
        of(&ev, "exit")[0]["values"],
        serde_json::json!({"result": "asleep", "call_again_in": 5})
    );
}

#[test]
fn survey_with_retries_posts_answers() {
    let (url, rx) = server(1, |_, _| (200, THANKS.to_string()));
    let user = format!(r#"{{"callback":"{url}","order":"A-1001"}}"#);
    let ev = run(
        example("survey.vxml").to_str().unwrap(),
        &[
            "--user-data",
            &user,
            "--input",
            "5",
            "--input",
            "1",
            "--input",
            "11",
            "--input",
            "10#",
            "--input",
            "2",
        ],
    );
    let nomatch = of(&ev, "throw")
        .iter()
        .filter(|t| t["name"] == "nomatch")
        .count();
    assert_eq!(nomatch, 2);
    assert_eq!(
        of(&ev, "submit")[0]["params"],
        serde_json::json!({"order": "A-1001", "satisfaction": "very", "recommend": "10", "again": "no"})
    );
    let (_, path, body) = rx.recv().unwrap();
    assert_eq!(path, "/survey");
    assert_eq!(body, "again=no&order=A-1001&recommend=10&satisfaction=very");
    assert_eq!(of(&ev, "exit")[0]["values"], "stored");
}

#[test]
fn survey_hangup_midway_still_posts() {
    let (url, rx) = server(1, |_, _| (200, THANKS.to_string()));
    let user = format!(r#"{{"callback":"{url}","order":"B-7"}}"#);
    let ev = run(
        example("survey.vxml").to_str().unwrap(),
        &["--user-data", &user, "--input", "3", "--input", "hangup"],
    );
    assert_eq!(
        of(&ev, "throw").last().unwrap()["name"],
        "connection.disconnect.hangup"
    );
    let (_, _, body) = rx.recv().unwrap();
    assert_eq!(body, "again=&order=B-7&recommend=&satisfaction=unsatisfied");
    // after the hangup nothing more is played
    assert!(of(&ev, "prompt").len() <= 2);
}

#[test]
fn documents_served_over_http_resolve_relative_urls() {
    let (url, rx) = server(3, |path, _| {
        match path {
        "/app/start.vxml" => (200, r#"<?xml version="1.0"?><vxml version="2.1"><form><block><goto next="next.vxml"/></block></form></vxml>"#.into()),
        "/app/next.vxml" => (200, r#"<?xml version="1.0"?><vxml version="2.1"><form><field name="n" type="digits?length=2"><prompt>Two digits.</prompt><filled><submit next="/done" namelist="n"/></filled></field></form></vxml>"#.into()),
        _ => (200, r#"<?xml version="1.0"?><vxml version="2.1"><form><block><exit expr="'ok'"/></block></form></vxml>"#.into()),
    }
    });
    let ev = run(&format!("{url}/app/start.vxml"), &["--input", "42"]);
    assert_eq!(of(&ev, "submit")[0]["url"], format!("{url}/done"));
    let paths: Vec<String> = rx.iter().take(3).map(|(_, p, _)| p).collect();
    assert_eq!(paths, ["/app/start.vxml", "/app/next.vxml", "/done?n=42"]);
    assert_eq!(of(&ev, "exit")[0]["values"], "ok");
}

#[test]
fn https_is_refused_clearly_and_bad_documents_name_the_line() {
    let ev = run("https://127.0.0.1:9/x.vxml", &[]);
    assert_eq!(of(&ev, "error")[0]["name"], "error.badfetch");
    assert!(of(&ev, "error")[0]["message"]
        .as_str()
        .unwrap()
        .contains("https is not supported"));
    let dir = std::env::temp_dir().join(format!("vxml-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.vxml");
    std::fs::write(
        &f,
        "<vxml version=\"2.1\">\n<form>\n<block><goto/></block></form></vxml>",
    )
    .unwrap();
    let ev = run(f.to_str().unwrap(), &[]);
    let msg = of(&ev, "error")[0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("line 3, column 8, <goto>"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inline_document_from_stdin() {
    use std::process::Stdio;
    let mut c = Command::new(env!("CARGO_BIN_EXE_vxml-run"))
        .args(["-", "--json", "--input", "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(br#"<vxml version="2.1"><form><field name="d" type="digits?length=1"/><block><exit namelist="d"/></block></form></vxml>"#)
        .unwrap();
    let out = c.wait_with_output().unwrap();
    let last = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(last, r#"{"event":"exit","values":{"d":"7"}}"#);
}
