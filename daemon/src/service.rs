//! The daemon's command handling: what each control-socket command does to the store and the
//! running calls. The control server calls [`Service::handle`]; the main loop reads the
//! [`Wakeups`] it is given and publishes port snapshots through [`Service::set_ports`].

use crate::config::Config;
use crate::control::proto::{Accepted, Command, ErrorCode, Event, Reply};
use crate::control::server::{Handler, Peer};
use crate::policy;
use crate::request::{RequestId, RequestRecord, RequestState};
use crate::store::{Store, StoreError};
use crate::time::{parse_rfc3339, UnixMillis};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, Notify};
use tracing::{error, info, warn};

/// What the service asks of the main loop.
#[derive(Debug)]
pub enum LoopCommand {
    /// Hang up the call of this request (cancelled while in a call).
    HangUp(RequestId),
    /// Re-read the configuration.
    Reload(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// How the service reaches the main loop.
pub struct Wakeups {
    /// Notified when a request was queued: the scheduler looks again.
    pub queued: Arc<Notify>,
    /// Commands for the main loop.
    pub commands: mpsc::UnboundedReceiver<LoopCommand>,
}

/// One port as `ports` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PortView {
    /// `span/channel`.
    pub port: String,
    /// `idle`, `dialing`, `ringing`, `connected`, `inbound`, `guard`, `down`.
    pub state: String,
    /// The request on it, if outbound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    /// Far-end number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// One span as `spans` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SpanView {
    /// Name.
    pub name: String,
    /// `dahdi` or `softspan`.
    pub kind: String,
    /// `up`, `down` or `alarm`.
    pub state: String,
    /// B-channels.
    pub channels: u16,
    /// Channels in a call.
    pub busy: u16,
}

/// The command side of the daemon.
pub struct Service {
    store: Store,
    config: RwLock<Arc<Config>>,
    events: broadcast::Sender<Event>,
    queued: Arc<Notify>,
    commands: mpsc::UnboundedSender<LoopCommand>,
    ports: Mutex<(Vec<SpanView>, Vec<PortView>)>,
    draining: std::sync::atomic::AtomicBool,
}

impl Service {
    /// A service over `store`, and the wakeups its main loop listens to.
    pub fn new(store: Store, config: Arc<Config>) -> (Arc<Service>, Wakeups) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(Notify::new());
        let svc = Service {
            store,
            config: RwLock::new(config),
            events: broadcast::channel(1024).0,
            queued: queued.clone(),
            commands: tx,
            ports: Mutex::new((Vec::new(), Vec::new())),
            draining: false.into(),
        };
        (
            Arc::new(svc),
            Wakeups {
                queued,
                commands: rx,
            },
        )
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    /// Replaces the configuration (reload).
    pub fn set_config(&self, c: Arc<Config>) {
        *self.config.write().expect("config lock") = c;
    }

    /// Publishes a changed record to watchers.
    pub fn publish(&self, record: &RequestRecord) {
        let _ = self.events.send(Event::Request {
            record: Box::new(record.clone()),
        });
    }

    /// Publishes a call event to watchers.
    pub fn publish_call(
        &self,
        port: &str,
        request: Option<RequestId>,
        what: &str,
        cause: Option<u8>,
    ) {
        let _ = self.events.send(Event::Call {
            port: port.into(),
            request: request.map(|r| r.0),
            what: what.into(),
            cause,
        });
    }

    /// The main loop's latest view of spans and ports.
    pub fn set_ports(&self, spans: Vec<SpanView>, ports: Vec<PortView>) {
        *self.ports.lock().expect("ports lock") = (spans, ports);
    }

    /// Refuse new submissions from now on (shutdown).
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn store_err(e: StoreError) -> Reply {
        match e {
            StoreError::NotFound(id) => Reply::err(ErrorCode::NotFound, format!("no request {id}")),
            StoreError::Conflict { .. } => Reply::err(ErrorCode::Conflict, e.to_string()),
            e => {
                error!("store: {e}");
                Reply::err(
                    ErrorCode::Internal,
                    format!("store failure, nothing changed: {e}"),
                )
            }
        }
    }

    async fn submit(&self, peer: &Peer, req: crate::request::Submit, now: UnixMillis) -> Reply {
        if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return Reply::err(ErrorCode::Unavailable, "outcalld is shutting down");
        }
        let spec = match req.validate(&format!("uid{}", peer.uid)) {
            Ok(s) => s,
            Err(fields) => {
                info!(uid = peer.uid, "submit refused: invalid request");
                return Reply::invalid(fields);
            }
        };
        let cfg = self.config();
        let day_ago = UnixMillis(now.0.saturating_sub(86_400_000));
        let mut queued = 0usize;
        let mut recent = 0u32;
        for r in self.store.all() {
            let r = match r {
                Ok(r) => r,
                Err(e) => return Self::store_err(e),
            };
            if !r.state.is_final() {
                queued += 1;
            }
            if r.spec.number == spec.number {
                recent += r
                    .attempts
                    .iter()
                    .filter(|a| a.started_at >= day_ago)
                    .count() as u32;
            }
        }
        if cfg
            .policy
            .callee(&spec.number)
            .is_some_and(|c| c.do_not_call)
        {
            warn!(
                uid = peer.uid,
                "submit refused: the callee asked not to be called"
            );
            return Reply::err(
                ErrorCode::Policy,
                format!("{:?} is on the do-not-call list", spec.number),
            );
        }
        if let Err(refusal) = policy::check(
            &spec.number,
            &cfg.policy.emergency_numbers,
            recent,
            cfg.limits.per_callee_per_day,
            queued,
            cfg.limits.max_queued,
        ) {
            warn!(uid = peer.uid, "submit refused by policy: {refusal}");
            let code = match refusal {
                policy::Refusal::QueueFull { .. } => ErrorCode::Unavailable,
                _ => ErrorCode::Policy,
            };
            return Reply::err(code, refusal.to_string());
        }
        let rec = match self.store.insert(spec, peer.uid, now) {
            Ok(r) => r,
            Err(e) => return Self::store_err(e),
        };
        // Acknowledge only what is on disk.
        if let Err(e) = self.store.flush().await {
            return Self::store_err(e);
        }
        info!(request = %rec.id, sender = %rec.spec.sender, "request accepted");
        self.publish(&rec);
        self.queued.notify_one();
        Reply::ok(Accepted {
            id: rec.id.0,
            state: "queued".into(),
            due_at: rec.due_at.to_string(),
        })
    }

    fn list(
        &self,
        state: Option<String>,
        sender: Option<String>,
        since: Option<String>,
        limit: Option<usize>,
    ) -> Reply {
        let since = match parse_since(since.as_deref()) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let mut out = Vec::new();
        for r in self.store.all() {
            let r = match r {
                Ok(r) => r,
                Err(e) => return Self::store_err(e),
            };
            if state.as_deref().is_some_and(|s| s != r.state.name())
                || sender.as_deref().is_some_and(|s| s != r.spec.sender)
                || since.is_some_and(|t| r.created_at < t)
            {
                continue;
            }
            out.push(r);
        }
        out.reverse();
        out.truncate(limit.unwrap_or(100));
        Reply::ok(out)
    }

    fn cancel(&self, id: RequestId, now: UnixMillis) -> Reply {
        let rec = match self.store.get(id) {
            Ok(r) => r,
            Err(e) => return Self::store_err(e),
        };
        if rec.state.is_final() {
            return Reply::err(
                ErrorCode::Conflict,
                format!("request {id} is already {}", rec.state.name()),
            );
        }
        if rec.state.in_call() {
            let _ = self.commands.send(LoopCommand::HangUp(id));
            return Reply::ok(
                serde_json::json!({"id": id.0, "state": rec.state.name(), "hanging_up": true}),
            );
        }
        match self.store.transition(id, RequestState::Queued, |r| {
            r.state = RequestState::Cancelled;
            r.updated_at = now;
        }) {
            Ok(r) => {
                self.store.flush_blocking().ok();
                self.publish(&r);
                info!(request = %id, "cancelled");
                Reply::ok(r)
            }
            Err(e) => Self::store_err(e),
        }
    }

    fn report(&self, since: Option<String>) -> Reply {
        let since = match parse_since(since.as_deref()) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
        let mut causes: BTreeMap<u8, u64> = BTreeMap::new();
        let (mut requests, mut attempts, mut answered, mut talk_ms) = (0u64, 0u64, 0u64, 0u64);
        for r in self.store.all().flatten() {
            if since.is_some_and(|t| r.created_at < t) {
                continue;
            }
            requests += 1;
            *states.entry(r.state.name()).or_default() += 1;
            for a in &r.attempts {
                attempts += 1;
                *outcomes
                    .entry(a.outcome.clone().unwrap_or_else(|| "in-progress".into()))
                    .or_default() += 1;
                if let Some(c) = a.cause {
                    *causes.entry(c).or_default() += 1;
                }
                if let (Some(ans), Some(end)) = (a.answered_at, a.ended_at) {
                    answered += 1;
                    talk_ms += end.0.saturating_sub(ans.0);
                }
            }
        }
        Reply::ok(serde_json::json!({
            "requests": requests, "states": states, "attempts": attempts,
            "outcomes": outcomes, "causes": causes, "answered": answered,
            "talk_seconds": talk_ms / 1000,
        }))
    }
}

/// The optional `since` of list and report: an RFC 3339 time, or a `bad_json` reply naming it.
fn parse_since(since: Option<&str>) -> Result<Option<UnixMillis>, Reply> {
    since
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| {
                Reply::err(
                    ErrorCode::BadJson,
                    format!("since: {s:?} is not an RFC 3339 time"),
                )
            })
        })
        .transpose()
}

impl Handler for Service {
    async fn handle(&self, peer: &Peer, cmd: Command) -> Reply {
        let now = UnixMillis::now();
        match cmd {
            Command::Submit { request } => self.submit(peer, *request, now).await,
            Command::Status { id } => match self.store.get(RequestId(id)) {
                Ok(r) => Reply::ok(r),
                Err(e) => Self::store_err(e),
            },
            Command::List {
                state,
                sender,
                since,
                limit,
            } => self.list(state, sender, since, limit),
            Command::Cancel { id } => self.cancel(RequestId(id), now),
            Command::Watch => unreachable!("the server streams watch itself"),
            Command::Spans => Reply::ok(&self.ports.lock().expect("ports lock").0),
            Command::Ports => Reply::ok(&self.ports.lock().expect("ports lock").1),
            Command::Calls => {
                let calls: Vec<PortView> = self
                    .ports
                    .lock()
                    .expect("ports lock")
                    .1
                    .iter()
                    .filter(|p| p.state != "idle")
                    .cloned()
                    .collect();
                Reply::ok(calls)
            }
            Command::Report { since } => self.report(since),
            Command::Reload => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if self.commands.send(LoopCommand::Reload(tx)).is_err() {
                    return Reply::err(ErrorCode::Unavailable, "the main loop is not running");
                }
                match rx.await {
                    Ok(Ok(())) => Reply::ok(serde_json::json!({"reloaded": true})),
                    Ok(Err(msg)) => Reply::err(ErrorCode::Invalid, msg),
                    Err(_) => Reply::err(ErrorCode::Unavailable, "the main loop stopped"),
                }
            }
            Command::Version => Reply::ok(serde_json::json!({
                "daemon": crate::VERSION, "protocol": crate::control::proto::VERSION,
            })),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
