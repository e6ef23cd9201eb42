//! outcalld's run loop: configuration, store and recovery, the control socket, signals, the
//! watchdog, reload and the drain on SIGTERM. Calls are placed by the dispatcher it drives.

use crate::config::{Config, ConfigErrors, Hunting};
use crate::control::server::{self, Access};
use crate::dispatcher::{Dispatcher, LineEvent, Output as DispatchOutput, NORMAL_CLEARING};
use crate::lines::{LineCommand, LineReport, Lines, SessionStart};
use crate::portmgr::{Direction, Port, PortManager, SpanSetup};
use crate::request::{App, RequestId};
use crate::service::{LoopCommand, Service};
use crate::service::{PortView, SpanView};
use crate::spans;
use crate::store::{Store, StoreError};
use crate::systemd;
use crate::time::UnixMillis;
use outcall_vxml::model::Method;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Why outcalld stopped with an error; each maps to a sysexits code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (EX_CONFIG, 78).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The store could not be opened or recovered (EX_CANTCREAT, 73).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The control socket could not be bound (EX_NOPERM 77 for permissions, else EX_OSERR 71).
    #[error("control socket: {0}")]
    Socket(std::io::Error),
}

impl RunError {
    /// The sysexits code to exit with.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 78,
            RunError::Store(_) => 73,
            RunError::Socket(e) if e.kind() == std::io::ErrorKind::PermissionDenied => 77,
            RunError::Socket(_) => 71,
        }
    }
}

/// The monotonic and the wall clock, read together: the shell's one place for both.
#[allow(clippy::disallowed_methods)] // the shell reads the clocks and hands them to the cores
fn clock() -> (Instant, UnixMillis) {
    (Instant::now(), UnixMillis::now())
}

fn span_setups(config: &Config) -> Vec<SpanSetup> {
    config
        .span
        .iter()
        .map(|s| {
            let s = s.get_ref();
            SpanSetup {
                name: s.name.clone(),
                channels: s.channels(),
                hunting: s.hunting.unwrap_or(Hunting::Descending),
                calls_per_second: *s.calls_per_second.get_ref(),
                guard: Duration::from_millis(s.guard_ms.into()),
                inbound_reserve: s.inbound_reserve,
            }
        })
        .collect()
}

/// Runs the daemon with the configuration at `config_path` until SIGTERM/SIGINT.
pub async fn run(config_path: PathBuf) -> Result<(), RunError> {
    let config = Arc::new(Config::load(&config_path)?);
    let store = Store::open(&config.daemon.store)?;
    let rec = store.recover(UnixMillis::now())?;
    if !rec.requeued.is_empty() || !rec.lost.is_empty() {
        warn!(
            requeued = ?rec.requeued, lost = ?rec.lost,
            "recovered requests whose call was interrupted by a stop"
        );
    }
    let listener = bind_socket(&config.daemon.socket, config.daemon.socket_mode())?;
    let access = Arc::new(RwLock::new(access_of(&config)));
    let (svc, mut wake) = Service::new(store.clone(), config.clone());

    let (now, unix) = clock();
    let seed = unix.0 ^ u64::from(std::process::id()) << 32;
    let ports = PortManager::new(span_setups(&config), config.limits.max_calls, seed, now);
    let mut d = Dispatcher::new(store, ports);
    d.set_policy(Arc::new(config.policy.clone()));
    let (report_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let lines = spans::start(&config, &config_path, report_tx);

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        listener,
        svc.clone(),
        access.clone(),
        stopped(stop_rx.clone()),
    ));

    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    let mut watchdog = systemd::watchdog_interval().map(tokio::time::interval);

    systemd::notify("READY=1\nSTATUS=accepting requests");
    info!(socket = %config.daemon.socket.display(), "outcalld {} ready", crate::VERSION);

    let mut ctx = Ctx {
        d: &mut d,
        lines: &lines,
        svc: &svc,
        config_path: &config_path,
    };
    // Requests recovered or queued before the restart may be due now.
    let (now, unix) = clock();
    ctx.step(|d| d.handle_timeout(now, unix));
    let mut draining: Option<tokio::time::Instant> = None;
    let mut hung_up = false;
    loop {
        let (now, unix) = clock();
        let deadline = ctx
            .d
            .poll_timeout(now, unix)
            .map(tokio::time::Instant::from_std);
        if let Some(drain_end) = draining {
            if ctx.d.active_calls() == 0 {
                break;
            }
            if tokio::time::Instant::now() >= drain_end {
                if hung_up {
                    warn!(
                        calls = ctx.d.active_calls(),
                        "calls still up after the drain: stopping anyway"
                    );
                    break;
                }
                info!(
                    calls = ctx.d.active_calls(),
                    "drain deadline: clearing the remaining calls with cause 16"
                );
                ctx.step(|d| {
                    d.drain(true);
                    Ok(())
                });
                hung_up = true;
                draining = Some(tokio::time::Instant::now() + Duration::from_secs(5));
            }
        }
        let wake_at = [deadline, draining].into_iter().flatten().min();
        tokio::select! {
            _ = term.recv(), if draining.is_none() => draining = Some(start_drain(&mut ctx, &config)),
            _ = int.recv(), if draining.is_none() => draining = Some(start_drain(&mut ctx, &config)),
            _ = hup.recv() => {
                if let Err(e) = reload(&config_path, &svc, &access, ctx.d) {
                    error!("reload refused, keeping the running configuration:\n{e}");
                }
            }
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                systemd::notify("WATCHDOG=1");
            }
            cmd = wake.commands.recv() => match cmd {
                Some(LoopCommand::Reload(reply)) => {
                    let r = reload(&config_path, &svc, &access, ctx.d).map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        error!("reload refused, keeping the running configuration:\n{e}");
                    }
                    let _ = reply.send(r);
                }
                Some(LoopCommand::HangUp(id)) => {
                    ctx.step(|d| {
                        d.cancel(id);
                        Ok(())
                    });
                }
                None => break,
            },
            _ = wake.queued.notified() => {
                let (now, unix) = clock();
                ctx.step(|d| {
                    d.refresh_due()?;
                    d.dispatch(now, unix)
                });
            }
            Some(report) = reports.recv() => ctx.report(report),
            _ = async { tokio::time::sleep_until(wake_at.expect("guarded")).await }, if wake_at.is_some() => {
                let (now, unix) = clock();
                ctx.step(|d| d.handle_timeout(now, unix));
            }
        }
    }

    info!("stopping");
    lines.shutdown();
    let _ = stop_tx.send(true);
    let _ = server.await;
    svc.store().flush().await?;
    let _ = std::fs::remove_file(&config.daemon.socket);
    info!("stopped");
    Ok(())
}

fn start_drain(ctx: &mut Ctx<'_>, config: &Config) -> tokio::time::Instant {
    info!(
        calls = ctx.d.active_calls(),
        "stopping: no new requests, live calls may finish"
    );
    systemd::notify("STOPPING=1\nSTATUS=draining");
    ctx.svc.start_draining();
    ctx.step(|d| {
        d.drain(false);
        Ok(())
    });
    tokio::time::Instant::now() + Duration::from_secs(config.daemon.drain_timeout.into())
}

/// What the loop's branches share.
struct Ctx<'a> {
    d: &'a mut Dispatcher,
    lines: &'a Lines,
    svc: &'a Arc<Service>,
    config_path: &'a Path,
}

impl Ctx<'_> {
    /// Runs one dispatcher input, then carries out its outputs.
    fn step(&mut self, f: impl FnOnce(&mut Dispatcher) -> Result<(), StoreError>) {
        if let Err(e) = f(self.d) {
            error!("store: {e}: the operator must check the disk; requests stay as last recorded");
        }
        while let Some(o) = self.d.poll_output() {
            self.carry_out(o);
        }
        self.publish_views();
    }

    fn carry_out(&mut self, o: DispatchOutput) {
        let (line_ok, port) = match o {
            DispatchOutput::Changed(r) => {
                self.svc.publish(&r);
                return;
            }
            DispatchOutput::Dial {
                port,
                request,
                number,
                caller_id,
            } => {
                self.svc.publish_call(
                    &self.d.ports().port_name(port),
                    Some(request),
                    "dialing",
                    None,
                );
                (
                    self.lines.send(
                        port,
                        LineCommand::Dial {
                            port,
                            number,
                            caller_id,
                        },
                    ),
                    port,
                )
            }
            DispatchOutput::Answer { port } => {
                (self.lines.send(port, LineCommand::Answer { port }), port)
            }
            DispatchOutput::Reject { port, cause } => (
                self.lines.send(port, LineCommand::Reject { port, cause }),
                port,
            ),
            DispatchOutput::Hangup { port, dir, cause } => (
                self.lines
                    .send(port, LineCommand::Hangup { port, dir, cause }),
                port,
            ),
            DispatchOutput::StopSession { port } => (
                self.lines.send(port, LineCommand::StopSession { port }),
                port,
            ),
            DispatchOutput::StartSession {
                port,
                request,
                dnis,
            } => match self.session_start(port, request, dnis) {
                Some(start) => (
                    self.lines.send(
                        port,
                        LineCommand::StartSession {
                            port,
                            start: Box::new(start),
                        },
                    ),
                    port,
                ),
                None => {
                    let dir = if request.is_some() {
                        Direction::Outbound
                    } else {
                        Direction::Inbound
                    };
                    (
                        self.lines.send(
                            port,
                            LineCommand::Hangup {
                                port,
                                dir,
                                cause: NORMAL_CLEARING,
                            },
                        ),
                        port,
                    )
                }
            },
        };
        if !line_ok {
            error!(%port, "the span thread owning this port is not running");
        }
    }

    fn session_start(
        &self,
        port: Port,
        request: Option<RequestId>,
        dnis: Option<(String, String)>,
    ) -> Option<SessionStart> {
        let config = self.svc.config();
        let protocol = outcall_vxml::Protocol::Isdn;
        match (request, dnis) {
            (Some(id), _) => {
                let rec = self.svc.store().get(id).ok()?;
                let info = outcall_vxml::SessionInfo {
                    local_uri: rec
                        .spec
                        .caller_id
                        .as_ref()
                        .map(|c| format!("tel:{c}"))
                        .unwrap_or_default(),
                    remote_uri: format!("tel:{}", rec.spec.number),
                    protocol,
                    outbound: true,
                    request_id: Some(id.to_string()),
                    user_data: rec
                        .spec
                        .user_data
                        .clone()
                        .unwrap_or(serde_json::Value::Null),
                    ..Default::default()
                };
                Some(SessionStart {
                    app: rec.spec.app.clone(),
                    info,
                    max_duration_s: rec.spec.max_duration_s,
                })
            }
            (None, Some((dnis, ani))) => {
                let Some(ib) = config.inbound_for(&dnis) else {
                    warn!(%port, %dnis, "inbound call to a DID with no [[inbound]] application: clearing it");
                    return None;
                };
                let app = if let Some(u) = &ib.vxml_url {
                    App::VxmlUrl(u.clone())
                } else if let Some(f) = &ib.vxml_file {
                    let path = self.config_path.parent().unwrap_or(Path::new(".")).join(f);
                    match std::fs::read_to_string(&path) {
                        Ok(doc) => App::Vxml(doc),
                        Err(e) => {
                            error!(%port, "inbound application {}: {e}", path.display());
                            return None;
                        }
                    }
                } else {
                    App::Say {
                        text: ib.say.clone().unwrap_or_default(),
                        collect: ib.collect,
                    }
                };
                let info = outcall_vxml::SessionInfo {
                    local_uri: format!("tel:{dnis}"),
                    remote_uri: format!("tel:{ani}"),
                    protocol,
                    outbound: false,
                    user_data: serde_json::Value::Null,
                    ..Default::default()
                };
                Some(SessionStart {
                    app,
                    info,
                    max_duration_s: 3600,
                })
            }
            (None, None) => None,
        }
    }

    fn report(&mut self, report: LineReport) {
        let (now, unix) = clock();
        match report {
            LineReport::Event(ev) => {
                if let LineEvent::Progress { port, progress } = &ev {
                    self.svc.publish_call(
                        &self.d.ports().port_name(*port),
                        None,
                        &format!("{progress:?}").to_lowercase(),
                        None,
                    );
                }
                if let LineEvent::Released { port, cause, .. } = &ev {
                    self.svc.publish_call(
                        &self.d.ports().port_name(*port),
                        None,
                        "hangup",
                        Some(*cause),
                    );
                }
                self.step(|d| d.handle_event(now, unix, ev));
            }
            LineReport::SessionProgress {
                port,
                digits,
                submitted,
            } => {
                self.d
                    .handle_session_progress(port, &digits, submitted.as_ref());
            }
            LineReport::SessionEnded {
                port,
                digits,
                submitted,
            } => self.step(|d| {
                d.handle_session_end(port, digits, submitted);
                Ok(())
            }),
            LineReport::Fetch {
                port,
                id,
                url,
                post,
                enctype,
                params,
                timeout_ms,
            } => {
                // Blocking HTTP on the runtime's blocking pool; the answer goes straight back to
                // the span thread that owns the session.
                let lines_tx = self.lines.sender(port);
                tokio::task::spawn_blocking(move || {
                    let method = if post { Method::Post } else { Method::Get };
                    let result =
                        outcall_vxml::fetch::get(method, &url, &params, &enctype, timeout_ms);
                    if let Some(tx) = lines_tx {
                        let _ = tx.send(LineCommand::Fetched { port, id, result });
                    }
                });
            }
        }
    }

    fn publish_views(&self) {
        let mut spans = Vec::new();
        let mut ports = Vec::new();
        let config = self.svc.config();
        for (i, s) in self.d.ports().view().into_iter().enumerate() {
            let kind = config
                .span
                .get(i)
                .map(|c| format!("{:?}", c.get_ref().kind).to_lowercase())
                .unwrap_or_default();
            let busy = s
                .channels
                .iter()
                .filter(|(st, _)| !matches!(*st, "idle" | "guard" | "down"))
                .count() as u16;
            for (ch, (state, request)) in s.channels.iter().enumerate() {
                ports.push(PortView {
                    port: format!("{}/{}", s.name, ch + 1),
                    state: state.to_string(),
                    request: request.map(|r| r.0),
                    number: None,
                });
            }
            spans.push(SpanView {
                name: s.name,
                kind,
                state: if s.up { "up".into() } else { "down".into() },
                channels: s.channels.len() as u16,
                busy,
            });
        }
        self.svc.set_ports(spans, ports);
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn access_of(c: &Config) -> Access {
    Access {
        uids: c.daemon.allowed_uids.clone(),
        gids: c.daemon.allowed_gids.clone(),
        own_uid: nix_uid(),
    }
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is our effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn bind_socket(path: &Path, mode: u32) -> Result<tokio::net::UnixListener, RunError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(RunError::Socket)?;
    }
    server::bind(path, mode).map_err(RunError::Socket)
}

fn reload(
    path: &Path,
    svc: &Service,
    access: &RwLock<Access>,
    d: &mut Dispatcher,
) -> Result<(), ConfigErrors> {
    let new = Config::load(path)?;
    *access.write().expect("access lock") = access_of(&new);
    d.set_policy(Arc::new(new.policy.clone()));
    svc.set_config(Arc::new(new));
    info!(config = %path.display(), "configuration reloaded");
    Ok(())
}
