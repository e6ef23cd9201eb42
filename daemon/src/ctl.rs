//! outcallctl: the command-line client of the control socket (docs/PROTOCOL.md).
//!
//! Human-readable output by default, `--json` everywhere. Exit status: 0 on success, 1 when the
//! daemon refused the command, 2 for usage errors, 3 when `call --wait` ended in any state but
//! `completed`, 69 when the daemon cannot be reached, 78 when `check-config` finds errors.

use crate::control::proto::{command_line, Command, Reply};
use crate::request::{App, RequestRecord, Service, Submit};
use crate::time::{parse_rfc3339, UnixMillis};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// outcallctl command line.
#[derive(Debug, Parser)]
#[command(
    name = "outcallctl",
    version,
    about = "Control outcalld: place calls, follow them, report"
)]
pub struct Cli {
    /// The daemon's control socket.
    #[arg(
        long,
        global = true,
        env = "OUTCALL_SOCKET",
        default_value = "/run/outcall/outcalld.sock"
    )]
    pub socket: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// outcallctl's commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Submit a call request.
    Call(CallArgs),
    /// Show one request.
    Status {
        /// Request id.
        id: u64,
    },
    /// List requests, newest first.
    List {
        /// Only this state (queued, completed, busy, no-answer, failed, …).
        #[arg(long)]
        state: Option<String>,
        /// Only this sender.
        #[arg(long)]
        sender: Option<String>,
        /// Only requests submitted since (RFC 3339, or -1h, -30m, -2d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Cancel a request (a call in progress is hung up).
    Cancel {
        /// Request id.
        id: u64,
    },
    /// Follow request and call events live (Ctrl-C to stop).
    Watch,
    /// Spans and trunks.
    Spans,
    /// Ports.
    Ports,
    /// Calls in progress.
    Calls,
    /// Summary of requests and attempts.
    Report {
        /// Since (RFC 3339, or -1h, -30m, -2d).
        #[arg(long)]
        since: Option<String>,
        /// One CSV line per attempt instead of the summary.
        #[arg(long)]
        csv: bool,
    },
    /// Ask the daemon to re-read its configuration.
    Reload,
    /// Versions of outcallctl and the daemon.
    Version,
    /// Check a configuration file and print every problem.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

/// `call` options.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The number to call (E.164 like +15551234567, or national digits).
    pub number: String,
    /// VoiceXML application URL.
    #[arg(long, group = "app")]
    pub vxml: Option<String>,
    /// VoiceXML file, sent inline.
    #[arg(long, group = "app")]
    pub vxml_file: Option<PathBuf>,
    /// Text to speak.
    #[arg(long, group = "app")]
    pub say: Option<String>,
    /// With --say: digits to collect.
    #[arg(long, requires = "say")]
    pub collect: Option<u8>,
    /// Calling number to present.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Ring timeout, seconds.
    #[arg(long)]
    pub ring_timeout: Option<u32>,
    /// Max call duration, seconds.
    #[arg(long)]
    pub max_duration: Option<u32>,
    /// Not before (RFC 3339, or +10m, +2h).
    #[arg(long)]
    pub at: Option<String>,
    /// Expire at (RFC 3339, or +10m, +2h).
    #[arg(long)]
    pub expires: Option<String>,
    /// Priority 0 (lowest) – 9 (highest).
    #[arg(long)]
    pub priority: Option<u8>,
    /// Bulk level of service (after solitary calls of the same priority).
    #[arg(long)]
    pub bulk: bool,
    /// Attempts in all.
    #[arg(long)]
    pub attempts: Option<u32>,
    /// Seconds between attempts.
    #[arg(long)]
    pub retry_delay: Option<u32>,
    /// Opaque user data: JSON if it parses as JSON, else a string.
    #[arg(long)]
    pub user_data: Option<String>,
    /// Sender name for reports.
    #[arg(long)]
    pub sender: Option<String>,
    /// Calling window in the callee's local time: FROM-TO/ZONE, e.g. 08:00-21:00/America/Chicago.
    #[arg(long)]
    pub window: Option<String>,
    /// Wait until the request ends and print its final record.
    #[arg(long)]
    pub wait: bool,
}

/// An outcallctl failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// Message for stderr.
    pub message: String,
}

fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Resolves `+10m`/`-1h`-style offsets against `now`, or parses RFC 3339; returns RFC 3339.
pub fn resolve_time(s: &str, now: UnixMillis) -> Result<String, Failure> {
    let rel = |t: &str| -> Option<u64> {
        let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
        let n: u64 = n.parse().ok()?;
        Some(
            n * match unit {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return None,
            },
        )
    };
    let t = if let Some(r) = s.strip_prefix('+').and_then(rel) {
        UnixMillis(now.0 + r)
    } else if let Some(r) = s.strip_prefix('-').and_then(rel) {
        UnixMillis(now.0.saturating_sub(r))
    } else {
        parse_rfc3339(s).ok_or_else(|| {
            fail(
                2,
                format!("{s:?} is not a time: use RFC 3339 (2026-11-24T15:00:00Z) or +10m / -1h"),
            )
        })?
    };
    Ok(t.to_string())
}

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Conn {
    fn open(path: &std::path::Path) -> Result<Conn, Failure> {
        let s = UnixStream::connect(path).map_err(|e| {
            fail(
                69,
                format!("cannot reach outcalld at {}: {e}", path.display()),
            )
        })?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone().map_err(|e| fail(69, e.to_string()))?),
            writer: s,
        })
    }

    /// Sends a command. A write error is not final: the daemon may have answered (for example
    /// `forbidden`) and closed before reading, and that answer is then read by the caller.
    fn send(&mut self, cmd: &Command) {
        let _ = self.writer.write_all(command_line(cmd).as_bytes());
    }

    fn line(&mut self) -> Result<String, Failure> {
        let mut l = String::new();
        let n = self
            .reader
            .read_line(&mut l)
            .map_err(|e| fail(69, format!("reading: {e}")))?;
        if n == 0 {
            return Err(fail(69, "outcalld closed the connection"));
        }
        Ok(l)
    }

    fn call(&mut self, cmd: &Command) -> Result<serde_json::Value, Failure> {
        self.send(cmd);
        let reply: Reply =
            serde_json::from_str(&self.line()?).map_err(|e| fail(69, format!("bad reply: {e}")))?;
        match (reply.ok, reply.error, reply.result) {
            (true, _, r) => Ok(r.unwrap_or(serde_json::Value::Null)),
            (false, Some(e), _) => {
                let code = serde_json::to_value(e.code).expect("codes serialise");
                let mut m = format!("{}: ", code.as_str().unwrap_or("error"));
                if e.fields.is_empty() {
                    m.push_str(&e.message);
                } else {
                    for f in e.fields {
                        m.push_str(&format!("\n  {}: {}", f.field, f.message));
                    }
                }
                Err(fail(1, m))
            }
            (false, None, _) => Err(fail(1, "refused without a reason")),
        }
    }
}

/// Runs outcallctl; returns the exit code.
pub fn main(cli: Cli) -> i32 {
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("outcallctl: {}", f.message);
            f.code
        }
    }
}

fn run(cli: Cli) -> Result<i32, Failure> {
    let now = UnixMillis::now();
    let json = cli.json;
    let out = |v: &serde_json::Value, human: &dyn Fn(&serde_json::Value) -> String| {
        if json {
            println!("{}", serde_json::to_string_pretty(v).expect("values print"));
        } else {
            print!("{}", human(v));
        }
    };
    let cmd = match cli.cmd {
        Cmd::CheckConfig { file } => {
            return match crate::config::Config::load(&file) {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(78)
                }
            }
        }
        Cmd::Call(a) => return call(&cli.socket, a, now, json),
        Cmd::Watch => {
            let mut c = Conn::open(&cli.socket)?;
            c.call(&Command::Watch)?;
            loop {
                print!("{}", c.line()?);
                std::io::stdout().flush().ok();
            }
        }
        Cmd::Status { id } => Command::Status { id },
        Cmd::List {
            state,
            sender,
            since,
            limit,
        } => Command::List {
            state,
            sender,
            since: since.map(|s| resolve_time(&s, now)).transpose()?,
            limit,
        },
        Cmd::Cancel { id } => Command::Cancel { id },
        Cmd::Spans => Command::Spans,
        Cmd::Ports => Command::Ports,
        Cmd::Calls => Command::Calls,
        Cmd::Report { since, csv } => {
            let since = since.map(|s| resolve_time(&s, now)).transpose()?;
            if csv {
                let v = Conn::open(&cli.socket)?.call(&Command::List {
                    state: None,
                    sender: None,
                    since,
                    limit: Some(usize::MAX),
                })?;
                print!("{}", attempts_csv(&v));
                return Ok(0);
            }
            Command::Report { since }
        }
        Cmd::Reload => Command::Reload,
        Cmd::Version => {
            let v = Conn::open(&cli.socket)?.call(&Command::Version)?;
            let v = serde_json::json!({"outcallctl": crate::VERSION, "outcalld": v["daemon"], "protocol": v["protocol"]});
            out(&v, &|v| {
                format!(
                    "outcallctl {}\noutcalld {}\nprotocol {}\n",
                    v["outcallctl"].as_str().unwrap_or("?"),
                    v["outcalld"].as_str().unwrap_or("?"),
                    v["protocol"]
                )
            });
            return Ok(0);
        }
    };
    let v = Conn::open(&cli.socket)?.call(&cmd)?;
    match cmd {
        Command::Status { .. } | Command::Cancel { .. } => out(&v, &record_text),
        Command::List { .. } => out(&v, &list_text),
        _ => out(&v, &|v| {
            format!(
                "{}\n",
                serde_json::to_string_pretty(v).expect("values print")
            )
        }),
    }
    Ok(0)
}

/// Parses `FROM-TO/ZONE` (e.g. `08:00-21:00/America/Chicago`).
fn parse_window(s: &str) -> Result<crate::window::Window, Failure> {
    let bad = || {
        fail(
            2,
            format!("--window {s:?}: use FROM-TO/ZONE, e.g. 08:00-21:00/America/Chicago"),
        )
    };
    let (times, tz) = s.split_once('/').ok_or_else(bad)?;
    let (from, to) = times.split_once('-').ok_or_else(bad)?;
    Ok(crate::window::Window {
        from: from.into(),
        to: to.into(),
        tz: tz.into(),
    })
}

/// The application a `call` names: exactly one of --vxml, --vxml-file, --say; --collect only
/// with --say.
fn app_of(a: &CallArgs) -> Result<App, Failure> {
    if a.collect.is_some() && a.say.is_none() {
        return Err(fail(2, "--collect goes with --say"));
    }
    match (&a.vxml, &a.vxml_file, &a.say) {
        (Some(u), None, None) => Ok(App::VxmlUrl(u.clone())),
        (None, Some(f), None) => std::fs::read_to_string(f)
            .map(App::Vxml)
            .map_err(|e| fail(2, format!("{}: {e}", f.display()))),
        (None, None, Some(text)) => Ok(App::Say {
            text: text.clone(),
            collect: a.collect.unwrap_or(0),
        }),
        _ => Err(fail(
            2,
            "give one of --vxml URL, --vxml-file PATH, --say TEXT",
        )),
    }
}

fn call(
    socket: &std::path::Path,
    a: CallArgs,
    now: UnixMillis,
    json: bool,
) -> Result<i32, Failure> {
    let app = app_of(&a)?;
    let req = Submit {
        number: a.number,
        app: Some(app),
        caller_id: a.caller_id,
        ring_timeout_s: a.ring_timeout,
        max_duration_s: a.max_duration,
        not_before: a.at.map(|t| resolve_time(&t, now)).transpose()?,
        expires: a.expires.map(|t| resolve_time(&t, now)).transpose()?,
        priority: a.priority,
        service: a.bulk.then_some(Service::Bulk),
        max_attempts: a.attempts,
        retry_delay_s: a.retry_delay,
        user_data: a
            .user_data
            .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))),
        sender: a.sender,
        window: a.window.as_deref().map(parse_window).transpose()?,
    };
    // Watch before submitting, so no event can slip between the two.
    let mut watch = if a.wait {
        let mut w = Conn::open(socket)?;
        w.call(&Command::Watch)?;
        Some(w)
    } else {
        None
    };
    let mut c = Conn::open(socket)?;
    let accepted = c.call(&Command::Submit {
        request: Box::new(req),
    })?;
    let id = accepted["id"]
        .as_u64()
        .ok_or_else(|| fail(69, "reply without an id"))?;
    let Some(w) = watch.as_mut() else {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&accepted).expect("values print")
            );
        } else {
            println!(
                "request {id} accepted, first dial at {}",
                accepted["due_at"].as_str().unwrap_or("?")
            );
        }
        return Ok(0);
    };
    loop {
        let ev: serde_json::Value =
            serde_json::from_str(&w.line()?).map_err(|e| fail(69, format!("bad event: {e}")))?;
        if ev["event"] != "request" || ev["record"]["id"].as_u64() != Some(id) {
            continue;
        }
        let rec: RequestRecord = serde_json::from_value(ev["record"].clone())
            .map_err(|e| fail(69, format!("bad record: {e}")))?;
        if !json {
            eprintln!("request {id}: {}", rec.state.name());
        }
        if rec.state.is_final() {
            let v = c.call(&Command::Status { id })?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("values print")
                );
            } else {
                print!("{}", record_text(&v));
            }
            return Ok(if rec.state == crate::request::RequestState::Completed {
                0
            } else {
                3
            });
        }
    }
}

fn record_text(v: &serde_json::Value) -> String {
    let mut s = String::new();
    let f = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
            .unwrap_or_default()
    };
    s += &format!(
        "request   {}\nstate     {}\nnumber    {}\nsender    {}\n",
        f("id"),
        f("state"),
        v["spec"]["number"].as_str().unwrap_or(""),
        v["spec"]["sender"].as_str().unwrap_or("")
    );
    if let Some(c) = v.get("cause") {
        s += &format!("cause     {c}\n");
    }
    if let Some(u) = v["spec"].get("user_data").filter(|u| !u.is_null()) {
        s += &format!("user data {u}\n");
    }
    for a in v["attempts"].as_array().into_iter().flatten() {
        s += &format!(
            "attempt {} on {}: {} cause {} digits {:?} submitted {}\n",
            a["n"],
            a["port"].as_str().unwrap_or("-"),
            a["outcome"].as_str().unwrap_or("in progress"),
            a["cause"],
            a["digits"].as_str().unwrap_or(""),
            a["submitted"]
        );
    }
    s
}

fn list_text(v: &serde_json::Value) -> String {
    let mut s = format!(
        "{:>8}  {:<10}  {:<16}  {:<12}  {:>8}\n",
        "ID", "STATE", "NUMBER", "SENDER", "ATTEMPTS"
    );
    for r in v.as_array().into_iter().flatten() {
        s += &format!(
            "{:>8}  {:<10}  {:<16}  {:<12}  {:>8}\n",
            r["id"],
            r["state"].as_str().unwrap_or(""),
            r["spec"]["number"].as_str().unwrap_or(""),
            r["spec"]["sender"].as_str().unwrap_or(""),
            r["attempts"].as_array().map_or(0, Vec::len)
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn attempts_csv(v: &serde_json::Value) -> String {
    let mut s = String::from("request,attempt,number,sender,port,started_at,answered_at,ended_at,outcome,cause,digits,state\n");
    for r in v.as_array().into_iter().flatten() {
        for a in r["attempts"].as_array().into_iter().flatten() {
            let t = |k: &str| {
                a[k].as_u64()
                    .map(|m| UnixMillis(m).to_string())
                    .unwrap_or_default()
            };
            let fields = [
                r["id"].to_string(),
                a["n"].to_string(),
                r["spec"]["number"].as_str().unwrap_or("").into(),
                r["spec"]["sender"].as_str().unwrap_or("").into(),
                a["port"].as_str().unwrap_or("").into(),
                t("started_at"),
                t("answered_at"),
                t("ended_at"),
                a["outcome"].as_str().unwrap_or("").into(),
                a["cause"]
                    .as_u64()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                a["digits"].as_str().unwrap_or("").into(),
                r["state"].as_str().unwrap_or("").into(),
            ];
            s += &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",");
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_times() {
        let now = UnixMillis(1_000_000_000_000);
        assert_eq!(
            resolve_time("+10m", now).unwrap(),
            UnixMillis(1_000_000_600_000).to_string()
        );
        assert_eq!(
            resolve_time("-1h", now).unwrap(),
            UnixMillis(999_996_400_000).to_string()
        );
        assert_eq!(
            resolve_time("2026-11-24T15:00:00Z", now).unwrap(),
            "2026-11-24T15:00:00.000Z"
        );
        assert_eq!(resolve_time("tomorrow", now).unwrap_err().code, 2);
        assert_eq!(resolve_time("+10y", now).unwrap_err().code, 2);
    }

    #[test]
    fn window_option() {
        let w = parse_window("08:00-21:00/America/Chicago").unwrap();
        assert_eq!(
            (w.from.as_str(), w.to.as_str(), w.tz.as_str()),
            ("08:00", "21:00", "America/Chicago")
        );
        assert_eq!(parse_window("08:00/UTC").unwrap_err().code, 2);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn cli_parses_the_documented_call_line() {
        let cli = Cli::try_parse_from([
            "outcallctl",
            "--json",
            "call",
            "+15551234567",
            "--say",
            "hello",
            "--collect",
            "1",
            "--ring-timeout",
            "20",
            "--attempts",
            "2",
            "--wait",
        ])
        .unwrap();
        let Cmd::Call(a) = cli.cmd else {
            panic!("not a call")
        };
        assert_eq!(a.collect, Some(1));
        assert!(a.wait && cli.json);
        assert!(Cli::try_parse_from([
            "outcallctl",
            "call",
            "1",
            "--say",
            "x",
            "--vxml",
            "http://x"
        ])
        .is_err());
        let cli = Cli::try_parse_from([
            "outcallctl",
            "call",
            "1",
            "--collect",
            "1",
            "--vxml",
            "http://x",
        ]);
        let Ok(Cli {
            cmd: Cmd::Call(a), ..
        }) = cli
        else {
            panic!("parses; app_of refuses")
        };
        assert_eq!(app_of(&a).unwrap_err().code, 2);
        let cli = Cli::try_parse_from(["outcallctl", "call", "1", "--vxml", "http://x"]).unwrap();
        let Cmd::Call(a) = cli.cmd else {
            panic!("not a call")
        };
        assert_eq!(app_of(&a).unwrap(), App::VxmlUrl("http://x".into()));
    }
}
