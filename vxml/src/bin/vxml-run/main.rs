//! `vxml-run`: runs a VoiceXML application with scripted caller input and prints what happens.
//!
//! ```text
//! vxml-run APP.vxml|URL|- [--input KEYS|noinput|hangup|busy|noanswer…]… [--json]
//!          [--local URI] [--remote URI] [--protocol isdn|sip] [--user-data JSON] [--aai TEXT]
//! ```
//! Each time the application listens it takes the next `--input`; when they run out the caller
//! hangs up. Time is virtual: timeouts fire at once, in order. This is the shell around the
//! sans-IO interpreter: it does the fetches (file and http; https is refused), the submits and
//! the printing.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::time::Instant;

use outcall_vxml::fetch::get;
use outcall_vxml::model::Method;
use outcall_vxml::{
    Config, FetchResult, Input, Interpreter, Output, PlayItem, Protocol, SessionInfo,
    TransferOutcome,
};
use serde_json::{json, Value};

struct Args {
    app: String,
    inputs: VecDeque<String>,
    json: bool,
    session: SessionInfo,
}

fn usage() -> ExitCode {
    eprintln!("usage: vxml-run APP.vxml|URL|- [--input KEYS|noinput|hangup]... [--json] [--local URI] [--remote URI] [--protocol isdn|sip] [--aai TEXT] [--user-data JSON]");
    ExitCode::from(64)
}

fn parse_args() -> Result<Args, String> {
    let mut a = std::env::args().skip(1);
    let mut app = None;
    let mut inputs = VecDeque::new();
    let mut json = false;
    let mut session = SessionInfo {
        local_uri: "tel:+15550100".into(),
        remote_uri: "tel:+15550199".into(),
        outbound: true,
        user_data: Value::Null,
        ..Default::default()
    };
    while let Some(x) = a.next() {
        let mut val = |n: &str| a.next().ok_or(format!("{n} needs a value"));
        match x.as_str() {
            "--input" | "-i" => inputs.push_back(val("--input")?),
            "--json" => json = true,
            "--local" => session.local_uri = val("--local")?,
            "--remote" => session.remote_uri = val("--remote")?,
            "--aai" => session.aai = Some(val("--aai")?),
            "--protocol" => {
                session.protocol = match val("--protocol")?.as_str() {
                    "isdn" => Protocol::Isdn,
                    "sip" => Protocol::Sip,
                    p => return Err(format!("--protocol {p}: isdn or sip")),
                }
            }
            "--user-data" => {
                session.user_data = serde_json::from_str(&val("--user-data")?)
                    .map_err(|e| format!("--user-data: {e}"))?
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option {s}")),
            s => {
                if app.replace(s.to_string()).is_some() {
                    return Err("only one application".into());
                }
            }
        }
    }
    let app = app.ok_or("no application given")?;
    Ok(Args {
        app,
        inputs,
        json,
        session,
    })
}

fn app_url(app: &str) -> Result<String, String> {
    if app.contains("://") {
        return Ok(app.to_string());
    }
    if app == "-" {
        // standard input: relative URIs resolve against the current directory
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        return url::Url::from_file_path(cwd.join("stdin.vxml"))
            .map(|u| u.to_string())
            .map_err(|_| "current directory is not absolute".to_string());
    }
    let p = std::fs::canonicalize(app).map_err(|e| format!("{app}: {e}"))?;
    url::Url::from_file_path(&p)
        .map(|u| u.to_string())
        .map_err(|_| format!("{app}: not an absolute path"))
}

struct Runner {
    json: bool,
    inputs: VecDeque<String>,
    now: Instant,
    interp: Interpreter,
    records: u32,
    listening: bool,
}

impl Runner {
    fn print(&self, v: Value) {
        let ev = v["event"].as_str().unwrap_or("?").to_string();
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("event");
        if self.json {
            // "event" first, then the other fields (serde_json maps are sorted)
            let rest = Value::Object(m).to_string();
            let rest = &rest[1..rest.len() - 1];
            let sep = if rest.is_empty() { "" } else { "," };
            println!("{{\"event\":{}{sep}{rest}}}", Value::String(ev));
        } else {
            let rest: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("{ev:>8}: {}", rest.join(" "));
        }
    }

    fn input(&mut self, i: Input) {
        if self.interp.is_ended() {
            return;
        }
        if let Err(e) = self.interp.handle_input(self.now, i) {
            self.print(json!({"event": "error", "name": "usage", "message": e.to_string()}));
        }
    }

    /// The text and audio the caller hears; audio that cannot be read is replaced by its fallback.
    fn heard(&self, items: &[PlayItem], text: &mut Vec<PlayItem>, audio: &mut Vec<String>) {
        for i in items {
            match i {
                PlayItem::Text(_) => text.push(i.clone()),
                PlayItem::Audio { url, fallback } => {
                    if matches!(
                        get(Method::Get, url, &BTreeMap::new(), "", 5_000),
                        FetchResult::Ok { .. }
                    ) {
                        audio.push(url.clone());
                    } else {
                        self.heard(fallback, text, audio);
                    }
                }
                _ => {}
            }
        }
    }

    fn run(&mut self) -> ExitCode {
        // bounded: every iteration consumes an output or a timer
        for _ in 0..100_000 {
            let mut progressed = false;
            while let Some(o) = self.interp.poll_output() {
                progressed = true;
                if self.output(o) {
                    return ExitCode::SUCCESS;
                }
            }
            if self.interp.is_ended() {
                return ExitCode::SUCCESS;
            }
            if std::mem::take(&mut self.listening) && self.interp.is_listening() {
                self.caller_input();
                continue;
            }
            if let Some(t) = self.interp.poll_timeout() {
                self.now = self.now.max(t);
                self.interp.handle_timeout(self.now);
                continue;
            }
            if !progressed {
                self.print(json!({"event": "error", "name": "vxml-run", "message": "the interpreter is waiting for nothing"}));
                return ExitCode::from(70);
            }
        }
        self.print(json!({"event": "error", "name": "vxml-run", "message": "step limit reached"}));
        ExitCode::from(70)
    }

    /// The next scripted input while the application listens.
    fn caller_input(&mut self) {
        match self.inputs.pop_front() {
            None => {
                self.print(json!({"event": "hangup", "by": "caller"}));
                self.input(Input::Hangup);
            }
            Some(s) if s == "hangup" => {
                self.print(json!({"event": "input", "value": "hangup"}));
                self.print(json!({"event": "hangup", "by": "caller"}));
                self.input(Input::Hangup);
            }
            Some(s) if s == "noinput" => self.print(json!({"event": "input", "value": "noinput"})),
            Some(s) => {
                self.print(json!({"event": "input", "value": s}));
                for c in s.chars() {
                    self.input(Input::Dtmf(c));
                }
            }
        }
    }

    /// Handles one output; true when the session is over.
    fn output(&mut self, o: Output) -> bool {
        match o {
            Output::Play { items, bargein } => {
                let (mut text, mut audio) = (Vec::new(), Vec::new());
                self.heard(&items, &mut text, &mut audio);
                let text = outcall_vxml::interp::play_text(&text);
                self.print(
                    json!({"event": "prompt", "text": text, "audio": audio, "bargein": bargein}),
                );
                self.input(Input::PromptsDone);
            }
            Output::Listen {
                item,
                grammars,
                timeout_ms,
                interdigit_ms,
                termtimeout_ms,
                termchar,
                bargein,
            } => {
                self.print(json!({"event": "listen", "item": item, "grammars": grammars, "timeout_ms": timeout_ms,
                    "interdigittimeout_ms": interdigit_ms, "termtimeout_ms": termtimeout_ms, "termchar": termchar.map(String::from), "bargein": bargein}));
                // The caller answers once every output of this step has been handled.
                self.listening = true;
            }
            Output::StopListening => self.listening = false,
            Output::Fetch {
                id,
                url,
                kind,
                method,
                params,
                timeout_ms,
            } => {
                if !self.json {
                    self.print(json!({"event": "fetch", "url": url, "kind": format!("{kind:?}").to_lowercase()}));
                }
                let r = get(method, &url, &params, "", timeout_ms);
                self.input(Input::Fetched { id, result: r });
            }
            Output::Submit {
                id,
                url,
                method,
                enctype,
                params,
                timeout_ms,
            } => {
                self.print(json!({"event": "submit", "url": url, "method": method.as_str(), "enctype": enctype, "params": params}));
                let r = get(method, &url, &params, &enctype, timeout_ms);
                self.input(Input::Fetched { id, result: r });
            }
            Output::Record {
                item,
                beep,
                maxtime_ms,
                ..
            } => {
                self.print(json!({"event": "record", "item": item, "beep": beep, "maxtime_ms": maxtime_ms}));
                match self.inputs.pop_front() {
                    None => {
                        self.print(json!({"event": "hangup", "by": "caller"}));
                        self.input(Input::Hangup);
                    }
                    Some(s) if s == "hangup" => {
                        self.print(json!({"event": "hangup", "by": "caller"}));
                        self.input(Input::Hangup);
                    }
                    Some(s) if s == "noinput" => {
                        self.print(json!({"event": "input", "value": "noinput"}));
                        self.input(Input::RecordDone {
                            url: None,
                            duration_ms: 0,
                            size: 0,
                            termchar: None,
                            maxtime: false,
                        });
                    }
                    Some(s) => {
                        self.records += 1;
                        self.print(json!({"event": "input", "value": s}));
                        let url = format!("file:///tmp/vxml-run-recording-{}.wav", self.records);
                        self.input(Input::RecordDone {
                            url: Some(url),
                            duration_ms: 3000,
                            size: 48_000,
                            termchar: s.chars().last(),
                            maxtime: false,
                        });
                    }
                }
            }
            Output::Transfer {
                item,
                dest,
                transfer_type,
                connecttimeout_ms,
                maxtime_ms,
                aai,
            } => {
                self.print(
                    json!({"event": "transfer", "item": item, "dest": dest, "type": transfer_type,
                    "connecttimeout_ms": connecttimeout_ms, "maxtime_ms": maxtime_ms, "aai": aai}),
                );
                let outcome = match self.inputs.front().map(String::as_str) {
                    Some("busy") => Some(TransferOutcome::Busy),
                    Some("noanswer") => Some(TransferOutcome::NoAnswer),
                    Some("network_busy") => Some(TransferOutcome::NetworkBusy),
                    Some("near_end_disconnect") => Some(TransferOutcome::NearEndDisconnect),
                    Some("far_end_disconnect") => Some(TransferOutcome::FarEndDisconnect),
                    Some("maxtime_disconnect") => Some(TransferOutcome::MaxTimeDisconnect),
                    Some("network_disconnect") => Some(TransferOutcome::NetworkDisconnect),
                    Some("hangup") => Some(TransferOutcome::CallerHangup),
                    _ => None,
                };
                let outcome = match outcome {
                    Some(o) => {
                        let v = self.inputs.pop_front();
                        self.print(json!({"event": "input", "value": v}));
                        o
                    }
                    None if transfer_type == "blind" => TransferOutcome::Blind,
                    None => TransferOutcome::FarEndDisconnect,
                };
                self.input(Input::TransferDone {
                    outcome,
                    duration_ms: 0,
                });
            }
            Output::Log { label, text } => {
                self.print(json!({"event": "log", "label": label, "text": text}))
            }
            Output::Event { name, message } => {
                if name.starts_with("error.") {
                    self.print(json!({"event": "error", "name": name, "message": message}));
                } else {
                    self.print(json!({"event": "throw", "name": name, "message": message}));
                }
            }
            Output::Hangup { values } => {
                self.print(json!({"event": "hangup", "by": "application", "values": values}))
            }
            Output::Exit { values } => {
                self.print(json!({"event": "exit", "values": values}));
                return true;
            }
        }
        false
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vxml-run: {e}");
            return usage();
        }
    };
    let url = match app_url(&args.app) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("vxml-run: {e}");
            return ExitCode::from(66);
        }
    };
    let interp = match Interpreter::new(Config {
        session: args.session,
        ..Config::default()
    }) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("vxml-run: {e}");
            return ExitCode::from(70);
        }
    };
    // The shell owns the clock; virtual time starts here and only moves to the next deadline.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let app = args.app.clone();
    let mut r = Runner {
        json: args.json,
        inputs: args.inputs,
        now,
        interp,
        records: 0,
        listening: false,
    };
    if app == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("vxml-run: standard input: {e}");
            return ExitCode::from(66);
        }
        r.interp.start_inline(r.now, &url, &text);
    } else {
        r.interp.start(r.now, &url);
    }
    r.run()
}
