//! The Form Interpretation Algorithm (VoiceXML 2.0 Appendix C), sans-IO.
//!
//! Driving contract: after every `handle_*` call, drain [`Interpreter::poll_output`] until it
//! returns `None`, then read [`Interpreter::poll_timeout`] and call
//! [`Interpreter::handle_timeout`] when that instant has passed. Time is only ever the `now`
//! passed in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::grammar::{js_string, Grammar};
use crate::io::*;
use crate::model::*;
use crate::script::{Js, ScopeId};
use crate::session::SessionInfo;
use crate::Error;

/// Platform defaults for properties (VoiceXML 2.0 §6.3).
const DEFAULT_TIMEOUT_MS: u64 = 5000;
const DEFAULT_INTERDIGIT_MS: u64 = 5000;
const DEFAULT_TERMTIMEOUT_MS: u64 = 0;
/// Steps of executable content and FIA iterations without waiting for the caller before the
/// session is declared runaway.
const STEP_BUDGET: u32 = 20_000;

/// Interpreter configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Session variables.
    pub session: SessionInfo,
    /// ECMAScript heap cap per session, in bytes.
    pub js_memory_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session: SessionInfo::default(),
            js_memory_limit: 512 * 1024,
        }
    }
}

/// A thrown event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    name: String,
    message: Option<String>,
}

impl Event {
    fn new(name: impl Into<String>, message: Option<String>) -> Event {
        Event {
            name: name.into(),
            message,
        }
    }
    fn semantic(m: impl Into<String>) -> Event {
        Event::new("error.semantic", Some(m.into()))
    }
}

#[derive(Debug, Clone)]
struct Loaded {
    doc: Arc<Document>,
    url: String,
}

#[derive(Debug)]
struct Frame {
    body: Arc<[Stmt]>,
    pc: usize,
    scope: ScopeId,
    foreach: Option<ForeachState>,
}

#[derive(Debug)]
struct ForeachState {
    tmp: String,
    idx: usize,
    len: usize,
    item: String,
}

/// What to do when the executable-content stack empties.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Document variables and scripts ran; enter this dialog (None = first).
    DocInit(Option<String>),
    /// Dialog variables ran; run the FIA.
    Fia,
}

#[derive(Debug, Clone)]
enum Target {
    Item(usize),
    Form,
    Link(Link),
}

#[derive(Debug, Clone)]
struct Active {
    grammar: Arc<Grammar>,
    target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    NoInput,
    InterDigit,
    TermTimeout,
}

#[derive(Debug)]
struct Collect {
    item: usize,
    grammars: Vec<Active>,
    keys: String,
    playing: bool,
    bargein: bool,
    timeout: Duration,
    interdigit: Duration,
    termtimeout: Duration,
    termchar: Option<char>,
}

#[derive(Debug)]
enum FetchPurpose {
    /// A document to go to; `submit` tells whether it was a submit.
    Goto {
        dialog: Option<String>,
        subdialog: Option<SubCall>,
    },
    /// The application root of `leaf`, which is loaded already.
    AppRoot {
        leaf: Loaded,
        dialog: Option<String>,
        subdialog: Option<SubCall>,
    },
    Script {
        scope: ScopeId,
    },
    Data {
        scope: ScopeId,
        name: Option<String>,
    },
    Grammar {
        url: String,
    },
}

#[derive(Debug)]
struct SubCall {
    params: Vec<(String, Option<Value>)>,
}

#[derive(Debug)]
enum Wait {
    None,
    Fetch(FetchId, FetchPurpose),
    Collect(Collect),
    Record(usize),
    Transfer(usize, bool),
    Ended,
}

/// A saved caller context while a subdialog runs.
#[derive(Debug)]
struct Context {
    app: Option<Loaded>,
    doc: Loaded,
    app_scope: ScopeId,
    doc_scope: ScopeId,
    dialog_scope: ScopeId,
    dialog: usize,
    form: FormState,
    item: usize,
}

#[derive(Debug, Default, Clone)]
struct FormState {
    prompt_counts: HashMap<usize, u32>,
    event_counts: HashMap<(Option<usize>, String), u32>,
    suppress_prompts: bool,
    next_item: Option<usize>,
    current: Option<usize>,
    params: HashMap<String, Option<Value>>,
}

/// The VoiceXML interpreter for one session.
pub struct Interpreter {
    js: Js,
    out: VecDeque<Output>,
    wait: Wait,
    phase: Phase,
    next_fetch: u64,
    app: Option<Loaded>,
    doc: Option<Loaded>,
    session_scope: ScopeId,
    app_scope: ScopeId,
    doc_scope: ScopeId,
    dialog_scope: ScopeId,
    dialog: usize,
    form: FormState,
    exec: Vec<Frame>,
    events: VecDeque<Event>,
    queue: Vec<PlayItem>,
    queue_bargein: bool,
    queue_timeout: Option<u64>,
    timer: Option<(Instant, TimerKind)>,
    grammar_cache: HashMap<String, Arc<Grammar>>,
    stack: Vec<Context>,
    disconnected: bool,
    reprompted: bool,
    in_catch: bool,
    typeahead: String,
    steps: u32,
    tmp_counter: u64,
    anon: Option<ScopeId>,
    absorb_termchar: Option<char>,
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("wait", &self.wait)
            .field("phase", &self.phase)
            .finish()
    }
}

enum Flow {
    Continue,
    Suspend,
}

fn props_get<'a>(props: &'a [Property], name: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

impl Interpreter {
    /// Creates an interpreter; call [`Interpreter::start`] next.
    pub fn new(config: Config) -> Result<Interpreter, Error> {
        let mut js = Js::new(config.js_memory_limit)?;
        let session_scope = js.new_scope(Some("session"));
        let app_scope = js.new_scope(Some("application"));
        let doc_scope = js.new_scope(Some("document"));
        let dialog_scope = js.new_scope(Some("dialog"));
        let session = config.session.to_json();
        if let Value::Object(m) = &session {
            for (k, v) in m {
                js.declare_json(session_scope, k, Some(v))
                    .map_err(|e| Error::Engine(e.0))?;
            }
        }
        js.set_chain(&[session_scope, app_scope]);
        js.declare_json(app_scope, "lastresult$", Some(&json!([])))
            .map_err(|e| Error::Engine(e.0))?;
        Ok(Interpreter {
            js,
            out: VecDeque::new(),
            wait: Wait::None,
            phase: Phase::Fia,
            next_fetch: 0,
            app: None,
            doc: None,
            session_scope,
            app_scope,
            doc_scope,
            dialog_scope,
            dialog: 0,
            form: FormState::default(),
            exec: Vec::new(),
            events: VecDeque::new(),
            queue: Vec::new(),
            queue_bargein: true,
            queue_timeout: None,
            timer: None,
            grammar_cache: HashMap::new(),
            stack: Vec::new(),
            disconnected: false,
            reprompted: false,
            in_catch: false,
            typeahead: String::new(),
            steps: 0,
            tmp_counter: 0,
            anon: None,
            absorb_termchar: None,
        })
    }

    /// Starts the session by fetching the first document.
    pub fn start(&mut self, now: Instant, url: &str) {
        let (base, frag) = split_fragment(url);
        self.fetch(
            FetchKind::Document,
            base,
            Method::Get,
            BTreeMap::new(),
            FetchPurpose::Goto {
                dialog: frag,
                subdialog: None,
            },
        );
        self.run(now);
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), Error> {
        if matches!(self.wait, Wait::Ended) {
            return Err(Error::Ended);
        }
        self.steps = 0;
        match input {
            Input::Dtmf(c) => self.on_key(now, c),
            Input::PromptsDone => {
                if let Wait::Collect(c) = &mut self.wait {
                    if c.playing {
                        c.playing = false;
                        if c.keys.is_empty() {
                            self.timer = Some((now + c.timeout, TimerKind::NoInput));
                        }
                    }
                }
            }
            Input::Hangup => {
                if !self.disconnected {
                    self.disconnected = true;
                    self.timer = None;
                    self.exec.clear();
                    self.wait = Wait::None;
                    self.queue.clear();
                    self.throw(Event::new("connection.disconnect.hangup", None));
                }
            }
            Input::Fetched { id, result } => {
                let wait = std::mem::replace(&mut self.wait, Wait::None);
                match wait {
                    Wait::Fetch(wid, purpose) if wid == id => self.on_fetched(purpose, result),
                    other => {
                        self.wait = other;
                        return Err(Error::UnknownFetch(id.0));
                    }
                }
            }
            Input::RecordDone {
                url,
                duration_ms,
                size,
                termchar,
                maxtime,
            } => {
                if let Wait::Record(item) = self.wait {
                    self.wait = Wait::None;
                    if duration_ms == 0 && url.is_none() {
                        self.throw(Event::new("noinput", None));
                    } else {
                        let name = self.item(item).name.clone();
                        let v = url.map(Value::String).unwrap_or(Value::Null);
                        self.set_item_var(&name, Some(&v));
                        let shadow = json!({"duration": duration_ms, "size": size,
                            "termchar": termchar.map(|c| c.to_string()), "maxtime": maxtime});
                        let _ = self.js.declare_json(
                            self.dialog_scope,
                            &format!("{name}$"),
                            Some(&shadow),
                        );
                        self.filled(vec![item]);
                    }
                }
            }
            Input::TransferDone {
                outcome,
                duration_ms,
            } => {
                if let Wait::Transfer(item, bridge) = self.wait {
                    self.wait = Wait::None;
                    match outcome {
                        TransferOutcome::CallerHangup => {
                            self.disconnected = true;
                            self.throw(Event::new("connection.disconnect.hangup", None));
                        }
                        TransferOutcome::Error(e) => self.throw(Event::new(e, None)),
                        TransferOutcome::Blind => {
                            self.throw(Event::new("connection.disconnect.transfer", None));
                        }
                        o if !bridge => {
                            let _ = o;
                            self.throw(Event::new("connection.disconnect.transfer", None));
                        }
                        o => {
                            let name = self.item(item).name.clone();
                            self.set_item_var(&name, Some(&json!(o.as_value())));
                            let _ = self.js.declare_json(
                                self.dialog_scope,
                                &format!("{name}$"),
                                Some(&json!({"duration": duration_ms / 1000})),
                            );
                            self.filled(vec![item]);
                        }
                    }
                }
            }
        }
        self.run(now);
        Ok(())
    }

    /// Fires expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((at, kind)) = self.timer else { return };
        if now < at {
            return;
        }
        self.steps = 0;
        self.timer = None;
        match kind {
            TimerKind::NoInput => {
                self.out.push_back(Output::StopListening);
                self.wait = Wait::None;
                self.throw(Event::new("noinput", None));
            }
            TimerKind::InterDigit | TimerKind::TermTimeout => self.finish_keys(),
        }
        self.run(now);
    }

    /// The next action for the shell.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Interpreter::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|t| t.0)
    }

    /// Whether the interpreter is collecting DTMF (after [`Output::Listen`], until the input
    /// matched, did not match, or an event interrupted it).
    #[must_use]
    pub fn is_listening(&self) -> bool {
        matches!(self.wait, Wait::Collect(_))
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        matches!(self.wait, Wait::Ended)
    }

    // ---------------------------------------------------------------- helpers

    fn docu(&self) -> &Arc<Document> {
        &self
            .doc
            .as_ref()
            .expect("a document is loaded while the FIA runs")
            .doc
    }

    fn dlg(&self) -> &Dialog {
        &self.docu().dialogs[self.dialog]
    }

    fn item(&self, i: usize) -> &Item {
        &self.dlg().items[i]
    }

    fn base_url(&self) -> String {
        self.doc.as_ref().map(|d| d.url.clone()).unwrap_or_default()
    }

    fn resolve(&self, uri: &str) -> String {
        let base = self.base_url();
        let base = self
            .doc
            .as_ref()
            .and_then(|d| d.doc.base.clone())
            .map(|b| resolve(&base, &b))
            .unwrap_or(base);
        resolve(&base, uri)
    }

    fn fetch(
        &mut self,
        kind: FetchKind,
        url: String,
        method: Method,
        params: BTreeMap<String, Value>,
        purpose: FetchPurpose,
    ) {
        self.flush_prompts();
        let id = FetchId(self.next_fetch);
        self.next_fetch += 1;
        self.out.push_back(Output::Fetch {
            id,
            url,
            kind,
            method,
            params,
        });
        self.wait = Wait::Fetch(id, purpose);
    }

    fn property(&self, name: &str) -> Option<String> {
        if let Some(i) = self.form.current {
            if let Some(v) = props_get(&self.item(i).properties, name) {
                return Some(v.to_string());
            }
        }
        if self.doc.is_some() && self.dialog < self.docu().dialogs.len() {
            if let Some(v) = props_get(&self.dlg().properties, name) {
                return Some(v.to_string());
            }
        }
        if let Some(d) = &self.doc {
            if let Some(v) = props_get(&d.doc.properties, name) {
                return Some(v.to_string());
            }
        }
        if let Some(a) = &self.app {
            if let Some(v) = props_get(&a.doc.properties, name) {
                return Some(v.to_string());
            }
        }
        None
    }

    fn prop_ms(&self, name: &str, default: u64) -> u64 {
        self.property(name)
            .and_then(|v| crate::parse::parse_duration(&v))
            .unwrap_or(default)
    }

    fn new_tmp(&mut self) -> String {
        self.tmp_counter += 1;
        format!("__t{}", self.tmp_counter)
    }

    fn set_chain(&mut self, anon: Option<ScopeId>) {
        let mut c = vec![
            self.session_scope,
            self.app_scope,
            self.doc_scope,
            self.dialog_scope,
        ];
        if let Some(a) = anon {
            c.push(a);
        }
        self.js.set_chain(&c);
    }

    /// A fresh anonymous scope for a block, filled or catch; the previous one is released.
    fn new_anon(&mut self) -> ScopeId {
        if let Some(old) = self.anon.take() {
            self.js.drop_scope(old);
        }
        let a = self.js.new_scope(None);
        self.anon = Some(a);
        self.set_chain(Some(a));
        a
    }

    fn set_item_var(&mut self, name: &str, v: Option<&Value>) {
        let _ = self.js.declare_json(self.dialog_scope, name, v);
    }

    fn end(&mut self, values: Value) {
        self.flush_prompts();
        self.exec.clear();
        self.timer = None;
        self.out.push_back(Output::Exit { values });
        self.wait = Wait::Ended;
    }

    fn flush_prompts(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.queue);
        if !self.disconnected {
            self.out.push_back(Output::Play {
                items,
                bargein: self.queue_bargein,
            });
        }
        self.queue_bargein = true;
    }

    // ---------------------------------------------------------------- main loop

    fn run(&mut self, _now: Instant) {
        loop {
            if !matches!(self.wait, Wait::None) {
                if let Wait::Collect(c) = &self.wait {
                    if !c.playing && self.timer.is_none() {
                        // waiting for prompts
                    }
                }
                return;
            }
            self.steps += 1;
            if self.steps > STEP_BUDGET {
                self.out.push_back(Output::Event {
                    name: "error.semantic".into(),
                    message: Some("runaway: no input was collected in 20000 steps".into()),
                });
                self.end(Value::Null);
                return;
            }
            if let Some(ev) = self.events.pop_front() {
                self.handle_event(ev);
                continue;
            }
            if !self.exec.is_empty() {
                self.step();
                continue;
            }
            if self.in_catch {
                self.in_catch = false;
                self.form.suppress_prompts = !self.reprompted;
                self.reprompted = false;
            }
            if self.doc.is_none() {
                self.end(Value::Null);
                return;
            }
            match self.phase.clone() {
                Phase::DocInit(dialog) => self.enter_dialog(dialog.as_deref()),
                Phase::Fia => self.fia_iteration(_now),
            }
        }
    }

    // ---------------------------------------------------------------- documents

    fn on_fetched(&mut self, purpose: FetchPurpose, result: FetchResult) {
        let (url, body) = match result {
            FetchResult::Ok { url, body } => (url, body),
            FetchResult::Err { status, message } => {
                let name = match status {
                    Some(s) => format!("error.badfetch.http.{s}"),
                    None => "error.badfetch".to_string(),
                };
                return self.fetch_failed(Event::new(name, Some(message)));
            }
        };
        match purpose {
            FetchPurpose::Goto { dialog, subdialog } => match crate::parse::parse_document(&body) {
                Ok(doc) => {
                    let leaf = Loaded {
                        doc: Arc::new(doc),
                        url,
                    };
                    if let Some(app) = leaf.doc.application.clone() {
                        let app_url = resolve(&leaf.url, &app);
                        if self.app.as_ref().map(|a| a.url.as_str()) != Some(app_url.as_str()) {
                            return self.fetch(
                                FetchKind::Document,
                                app_url,
                                Method::Get,
                                BTreeMap::new(),
                                FetchPurpose::AppRoot {
                                    leaf,
                                    dialog,
                                    subdialog,
                                },
                            );
                        }
                        let app = self.app.clone();
                        return self.load(app, leaf, dialog, subdialog, false);
                    }
                    self.load(None, leaf, dialog, subdialog, true)
                }
                Err(e) => {
                    self.fetch_failed(Event::new("error.badfetch", Some(format!("{url}: {e}"))))
                }
            },
            FetchPurpose::AppRoot {
                leaf,
                dialog,
                subdialog,
            } => match crate::parse::parse_document(&body) {
                Ok(doc) => self.load(
                    Some(Loaded {
                        doc: Arc::new(doc),
                        url,
                    }),
                    leaf,
                    dialog,
                    subdialog,
                    true,
                ),
                Err(e) => {
                    self.fetch_failed(Event::new("error.badfetch", Some(format!("{url}: {e}"))))
                }
            },
            FetchPurpose::Script { scope } => {
                if let Err(e) = self.js.run_script(scope, &body) {
                    self.throw(Event::semantic(format!("script {url}: {e}")));
                }
            }
            FetchPurpose::Data { scope, name } => match crate::script::xml_to_json(&body) {
                Ok(tree) => {
                    if let Some(n) = name {
                        if let Err(e) = self.js.declare_dom(scope, &n, &tree) {
                            self.throw(Event::semantic(e.0));
                        }
                    }
                }
                Err(e) => self.throw(Event::new("error.badfetch", Some(format!("{url}: {e}")))),
            },
            FetchPurpose::Grammar { url: gurl } => match crate::parse::parse_grammar_text(&body) {
                Ok(g) => {
                    self.grammar_cache.insert(gurl, Arc::new(g));
                }
                Err(e) => self.throw(Event::new(
                    "error.badfetch",
                    Some(format!("grammar {gurl}: {e}")),
                )),
            },
        }
    }

    fn fetch_failed(&mut self, ev: Event) {
        if self.doc.is_none() {
            self.out.push_back(Output::Event {
                name: ev.name,
                message: ev.message,
            });
            self.end(Value::Null);
        } else {
            self.throw(ev);
        }
    }

    /// Installs a newly fetched document (and application root) and runs its initialisation.
    fn load(
        &mut self,
        app: Option<Loaded>,
        leaf: Loaded,
        dialog: Option<String>,
        subdialog: Option<SubCall>,
        new_app: bool,
    ) {
        if let Some(call) = subdialog {
            // Save the caller; the subdialog gets fresh document and dialog scopes.
            let item = self.stack_item();
            let saved = Context {
                app: self.app.clone(),
                doc: self
                    .doc
                    .clone()
                    .expect("a subdialog is called from a document"),
                app_scope: self.app_scope,
                doc_scope: self.doc_scope,
                dialog_scope: self.dialog_scope,
                dialog: self.dialog,
                form: std::mem::take(&mut self.form),
                item,
            };
            self.stack.push(saved);
            self.form.params = call.params.into_iter().collect();
            if new_app {
                self.app_scope = self.js.new_scope(Some("application"));
            }
            self.doc_scope = self.js.new_scope(Some("document"));
            // enter_dialog releases the current dialog scope: give it one that is not the caller's
            self.dialog_scope = self.js.new_scope(Some("dialog"));
        } else {
            if new_app || app.is_none() {
                self.js.drop_scope(self.app_scope);
                self.app_scope = self.js.new_scope(Some("application"));
            }
            self.js.drop_scope(self.doc_scope);
            self.doc_scope = self.js.new_scope(Some("document"));
        }
        let app_changed = new_app || (app.is_none() && self.app.is_some());
        self.app = app;
        self.doc = Some(leaf);
        self.dialog = 0;
        self.exec.clear();
        self.set_chain(None);
        let mut init: Vec<Arc<[Stmt]>> = Vec::new();
        if app_changed
            || self
                .js
                .eval("application.lastresult$")
                .ok()
                .flatten()
                .is_none()
        {
            let _ = self
                .js
                .declare_json(self.app_scope, "lastresult$", Some(&json!([])));
            if let Some(a) = &self.app {
                init.push(a.doc.init.clone());
            }
        }
        let doc_init = self.docu().init.clone();
        self.phase = Phase::DocInit(dialog);
        self.exec.push(Frame {
            body: doc_init,
            pc: 0,
            scope: self.doc_scope,
            foreach: None,
        });
        if let Some(a) = init.pop() {
            self.exec.push(Frame {
                body: a,
                pc: 0,
                scope: self.app_scope,
                foreach: None,
            });
        }
    }

    fn stack_item(&self) -> usize {
        self.form.current.unwrap_or(0)
    }

    fn enter_dialog(&mut self, id: Option<&str>) {
        let idx = match id {
            Some(id) => match self.docu().dialog(id) {
                Some(i) => i,
                None => {
                    self.phase = Phase::Fia;
                    return self.throw(Event::new(
                        "error.badfetch",
                        Some(format!("no dialog {id:?} in {}", self.base_url())),
                    ));
                }
            },
            None => {
                if self.docu().dialogs.is_empty() {
                    self.phase = Phase::Fia;
                    self.doc = None;
                    return;
                }
                0
            }
        };
        self.dialog = idx;
        let params = std::mem::take(&mut self.form.params);
        self.form = FormState {
            params,
            ..FormState::default()
        };
        self.js.drop_scope(self.dialog_scope);
        self.dialog_scope = self.js.new_scope(Some("dialog"));
        self.set_chain(None);
        // Form item variables, with their expr.
        let items: Vec<(String, Option<String>)> = self
            .dlg()
            .items
            .iter()
            .map(|i| (i.name.clone(), i.expr.clone()))
            .collect();
        for (name, expr) in items {
            if let Err(e) = self.js.declare(self.dialog_scope, &name, expr.as_deref()) {
                self.phase = Phase::Fia;
                return self.throw(Event::semantic(e.0));
            }
        }
        let init = self.dlg().init.clone();
        self.phase = Phase::Fia;
        self.exec.push(Frame {
            body: init,
            pc: 0,
            scope: self.dialog_scope,
            foreach: None,
        });
    }

    // ---------------------------------------------------------------- FIA

    fn fia_iteration(&mut self, now: Instant) {
        // Select phase
        let sel = match self.form.next_item.take() {
            Some(i) => Some(i),
            None => {
                let n = self.dlg().items.len();
                let mut found = None;
                for i in 0..n {
                    let it = self.item(i).clone_head();
                    match self.js.eval(&it.0) {
                        Ok(None) => {}
                        Ok(Some(_)) => continue,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    }
                    if let Some(c) = &it.1 {
                        match self.js.eval_bool(c) {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => return self.throw(Event::semantic(e.0)),
                        }
                    }
                    found = Some(i);
                    break;
                }
                found
            }
        };
        let Some(i) = sel else {
            // No form item left: the form, and the document, are done (Appendix C).
            if !self.stack.is_empty() {
                return self.throw(Event::semantic("subdialog ended without <return>"));
            }
            return self.end(Value::Null);
        };
        let changed_item = self.form.current != Some(i);
        self.form.current = Some(i);
        if changed_item {
            // prompt suppression only applies when the same item is revisited after a catch
        }
        let item = self.dlg().items[i].clone();
        // Collect phase: prompts
        if !matches!(item.kind, ItemKind::Block(_)) {
            if self.form.suppress_prompts && !changed_item {
                self.form.suppress_prompts = false;
            } else {
                self.form.suppress_prompts = false;
                let c = self.form.prompt_counts.entry(i).or_insert(0);
                *c += 1;
                let count = *c;
                self.queue_item_prompts(&item, count);
            }
        }
        self.form.suppress_prompts = false;
        match &item.kind {
            ItemKind::Block(body) => {
                self.set_item_var(&item.name, Some(&Value::Bool(true)));
                let anon = self.new_anon();
                self.exec.push(Frame {
                    body: body.clone(),
                    pc: 0,
                    scope: anon,
                    foreach: None,
                });
            }
            ItemKind::Field(_) | ItemKind::Initial => self.listen(now, i),
            ItemKind::Record(r) => {
                if self.disconnected {
                    return self.end(Value::Null);
                }
                self.flush_prompts();
                self.out.push_back(Output::Record {
                    item: item.name.clone(),
                    beep: r.beep,
                    maxtime_ms: r.maxtime_ms,
                    finalsilence_ms: r.finalsilence_ms,
                    dtmfterm: r.dtmfterm,
                    media_type: r.media_type.clone(),
                });
                self.wait = Wait::Record(i);
            }
            ItemKind::Transfer(t) => {
                if self.disconnected {
                    return self.end(Value::Null);
                }
                let dest = match (&t.dest, &t.destexpr) {
                    (Some(d), _) => d.clone(),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(d) => d,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    (None, None) => {
                        return self.throw(Event::new(
                            "error.badfetch",
                            Some("transfer without dest".into()),
                        ))
                    }
                };
                let aai = match (&t.aai, &t.aaiexpr) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(a) => Some(a),
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    _ => None,
                };
                let ttype = t.transfer_type.clone().unwrap_or_else(|| {
                    if t.bridge {
                        "bridge".into()
                    } else {
                        "blind".into()
                    }
                });
                if ttype == "consultation" {
                    return self.throw(Event::new("error.unsupported.transfer.consultation", None));
                }
                if !(dest.starts_with("tel:")
                    || dest.starts_with("sip:")
                    || dest.starts_with("sips:"))
                {
                    return self.throw(Event::new("error.connection.baddestination", Some(dest)));
                }
                self.flush_prompts();
                self.out.push_back(Output::Transfer {
                    item: item.name.clone(),
                    dest,
                    transfer_type: ttype.clone(),
                    connecttimeout_ms: t.connecttimeout_ms.unwrap_or(30_000),
                    maxtime_ms: t.maxtime_ms.unwrap_or(0),
                    aai,
                });
                self.wait = Wait::Transfer(i, ttype == "bridge");
            }
            ItemKind::Subdialog(s) => {
                let src = match (&s.src, &s.srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(s) => s,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    _ => unreachable!("the parser requires src or srcexpr"),
                };
                let mut params = Vec::new();
                for p in &s.params {
                    let v = match (&p.expr, &p.value) {
                        (Some(e), _) => match self.js.eval(e) {
                            Ok(v) => v,
                            Err(e) => return self.throw(Event::semantic(e.0)),
                        },
                        (None, Some(v)) => Some(Value::String(v.clone())),
                        _ => None,
                    };
                    params.push((p.name.clone(), v));
                }
                let query = match self.namelist_values(&s.namelist) {
                    Ok(q) => q,
                    Err(e) => return self.throw(e),
                };
                let (base, frag) = split_fragment(&src);
                let call = SubCall { params };
                if base.is_empty() {
                    // A dialog of this document: reuse the parsed document.
                    let leaf = self.doc.clone().expect("document loaded");
                    let app = self.app.clone();
                    return self.load(app, leaf, frag, Some(call), false);
                }
                let url = self.resolve(&base);
                self.fetch(
                    FetchKind::Document,
                    url,
                    s.method,
                    query,
                    FetchPurpose::Goto {
                        dialog: frag,
                        subdialog: Some(call),
                    },
                );
            }
            ItemKind::Object => self.throw(Event::new(
                "error.unsupported.objectname",
                Some("<object> is not supported".into()),
            )),
        }
    }

    fn queue_item_prompts(&mut self, item: &Item, count: u32) {
        let mut eligible = Vec::new();
        for p in &item.prompts {
            if let Some(c) = &p.cond {
                match self.js.eval_bool(c) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.events.push_back(Event::semantic(e.0));
                        return;
                    }
                }
            }
            eligible.push(p);
        }
        let best = eligible
            .iter()
            .map(|p| p.count)
            .filter(|&c| c <= count)
            .max();
        let Some(best) = best else { return };
        let chosen: Vec<Prompt> = eligible
            .into_iter()
            .filter(|p| p.count == best)
            .cloned()
            .collect();
        let menu = match &item.kind {
            ItemKind::Field(Field { menu: Some(m), .. }) => Some(m.choices.clone()),
            ItemKind::Field(f) if !f.options.is_empty() => Some(
                f.options
                    .iter()
                    .map(|(d, v)| Choice {
                        dtmf: (!d.is_empty()).then(|| d.clone()),
                        text: vec![PromptPart::Text(v.clone())],
                        next: None,
                        expr: None,
                        event: None,
                        eventexpr: None,
                        message: None,
                        messageexpr: None,
                    })
                    .collect(),
            ),
            _ => None,
        };
        for p in chosen {
            if let Err(e) = self.queue_prompt(&p, menu.as_deref()) {
                self.events.push_back(e);
                return;
            }
        }
    }

    fn queue_prompt(&mut self, p: &Prompt, choices: Option<&[Choice]>) -> Result<(), Event> {
        let mut items = Vec::new();
        self.render(&p.content, choices, &mut items)?;
        if let Some(b) = p.bargein {
            self.queue_bargein = b;
        } else {
            self.queue_bargein = self.property("bargein").as_deref() != Some("false");
        }
        if let Some(t) = p.timeout_ms {
            self.queue_timeout = Some(t);
        }
        self.queue.extend(items);
        Ok(())
    }

    fn render(
        &mut self,
        parts: &[PromptPart],
        choices: Option<&[Choice]>,
        out: &mut Vec<PlayItem>,
    ) -> Result<(), Event> {
        for part in parts {
            match part {
                PromptPart::Text(t) => out.push(PlayItem::Text(t.clone())),
                PromptPart::Value(e) => {
                    let s = self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?;
                    out.push(PlayItem::Text(s));
                }
                PromptPart::Audio {
                    src,
                    expr,
                    fallback,
                } => {
                    let url = match (src, expr) {
                        (Some(s), _) => Some(self.resolve(s)),
                        (None, Some(e)) => {
                            match self.js.eval(e).map_err(|e| Event::semantic(e.0))? {
                                None | Some(Value::Null) => None,
                                Some(Value::String(s)) => Some(self.resolve(&s)),
                                Some(v) => Some(self.resolve(&v.to_string())),
                            }
                        }
                        _ => None,
                    };
                    let mut fb = Vec::new();
                    self.render(fallback, choices, &mut fb)?;
                    match url {
                        Some(url) => out.push(PlayItem::Audio { url, fallback: fb }),
                        None => out.extend(fb),
                    }
                }
                PromptPart::Break(ms) => out.push(PlayItem::Break(*ms)),
                PromptPart::Mark { name, nameexpr } => {
                    let n = match (name, nameexpr) {
                        (Some(n), _) => n.clone(),
                        (None, Some(e)) => {
                            self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?
                        }
                        _ => String::new(),
                    };
                    out.push(PlayItem::Mark(n));
                }
                PromptPart::Group(inner) => self.render(inner, choices, out)?,
                PromptPart::Enumerate(template) => {
                    let Some(choices) = choices else {
                        return Err(Event::semantic(
                            "<enumerate> outside a menu or a field with options",
                        ));
                    };
                    for c in choices {
                        let mut text = Vec::new();
                        self.render(&c.text, None, &mut text)?;
                        let spoken = play_text(&text);
                        let dtmf = c.dtmf.clone().unwrap_or_default();
                        if template.is_empty() {
                            out.push(PlayItem::Text(if dtmf.is_empty() {
                                spoken
                            } else {
                                format!("For {spoken}, press {dtmf}.")
                            }));
                        } else {
                            let anon = self.js.new_scope(None);
                            let saved: Vec<ScopeId> = self.js.chain().to_vec();
                            let mut chain = saved.clone();
                            chain.push(anon);
                            self.js.set_chain(&chain);
                            let _ = self.js.declare_json(anon, "_prompt", Some(&json!(spoken)));
                            let _ = self.js.declare_json(anon, "_dtmf", Some(&json!(dtmf)));
                            let r = self.render(template, None, out);
                            self.js.set_chain(&saved);
                            self.js.drop_scope(anon);
                            r?;
                        }
                    }
                }
                PromptPart::Foreach { array, item, body } => {
                    let len = self
                        .js
                        .eval(&format!("({array}).length"))
                        .map_err(|e| Event::semantic(e.0))?;
                    let len = len.and_then(|v| v.as_u64()).ok_or_else(|| {
                        Event::semantic(format!("foreach array {array} is not an array"))
                    })?;
                    let tmp = self.new_tmp();
                    let anon = self.js.new_scope(None);
                    let saved: Vec<ScopeId> = self.js.chain().to_vec();
                    self.js
                        .declare(anon, &tmp, Some(array))
                        .map_err(|e| Event::semantic(e.0))?;
                    let mut chain = saved.clone();
                    chain.push(anon);
                    self.js.set_chain(&chain);
                    let mut r = Ok(());
                    for k in 0..len {
                        if let Err(e) = self.js.declare(anon, item, Some(&format!("{tmp}[{k}]"))) {
                            r = Err(Event::semantic(e.0));
                            break;
                        }
                        if let Err(e) = self.render(body, choices, out) {
                            r = Err(e);
                            break;
                        }
                    }
                    self.js.set_chain(&saved);
                    self.js.drop_scope(anon);
                    r?;
                }
            }
        }
        Ok(())
    }

    fn grammar_of(&mut self, g: &GrammarRef) -> Result<Option<Arc<Grammar>>, Event> {
        match g {
            GrammarRef::Inline(g) => Ok(Some(g.clone())),
            GrammarRef::Voice => Ok(None),
            GrammarRef::Src { src, srcexpr } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?,
                    _ => return Ok(None),
                };
                if let Some(b) = uri.strip_prefix("builtin:") {
                    return crate::grammar::Builtin::parse(b)
                        .map(|b| Some(Arc::new(Grammar::builtin(b))))
                        .map_err(|e| Event::new("error.unsupported.builtin", Some(e.to_string())));
                }
                let url = self.resolve(&uri);
                let (base, frag) = split_fragment(&url);
                match self.grammar_cache.get(&base) {
                    Some(g) => {
                        if let Some(f) = frag {
                            let mut g2 = (**g).clone();
                            if let Some(r) = g2.rules.iter().position(|(n, _)| *n == f) {
                                g2.root = r;
                            }
                            return Ok(Some(Arc::new(g2)));
                        }
                        Ok(Some(g.clone()))
                    }
                    None => Err(Event::new("__fetch_grammar", Some(base))),
                }
            }
        }
    }

    fn listen(&mut self, now: Instant, i: usize) {
        if self.disconnected {
            return self.end(Value::Null);
        }
        let item = self.item(i).clone();
        let mut refs: Vec<(GrammarRef, Target)> = Vec::new();
        let modal = matches!(&item.kind, ItemKind::Field(f) if f.modal);
        if !matches!(item.kind, ItemKind::Initial) {
            refs.extend(item.grammars.iter().cloned().map(|g| (g, Target::Item(i))));
        }
        if !modal {
            refs.extend(
                self.dlg()
                    .grammars
                    .iter()
                    .cloned()
                    .map(|g| (g, Target::Form)),
            );
            let mut links: Vec<Link> = self.dlg().links.clone();
            links.extend(self.docu().links.iter().cloned());
            if let Some(a) = &self.app {
                links.extend(a.doc.links.iter().cloned());
            }
            for l in links {
                for g in &l.grammars {
                    refs.push((g.clone(), Target::Link(l.clone())));
                }
            }
        }
        let mut grammars = Vec::new();
        for (g, target) in refs {
            match self.grammar_of(&g) {
                Ok(Some(grammar)) => grammars.push(Active { grammar, target }),
                Ok(None) => {}
                Err(e) if e.name == "__fetch_grammar" => {
                    let url = e.message.expect("url");
                    // fetch, then come back to this item without re-queuing its prompts
                    self.form.next_item = Some(i);
                    self.form.suppress_prompts = true;
                    self.form.current = Some(i);
                    return self.fetch(
                        FetchKind::Grammar,
                        url.clone(),
                        Method::Get,
                        BTreeMap::new(),
                        FetchPurpose::Grammar { url },
                    );
                }
                Err(e) => return self.throw(e),
            }
        }
        if grammars.is_empty() {
            return self.throw(Event::new(
                "error.semantic",
                Some(format!("<{}> {} has no DTMF grammar", item.tag, item.name)),
            ));
        }
        let had_prompts = !self.queue.is_empty();
        let bargein = self.queue_bargein;
        self.flush_prompts();
        let timeout = self
            .queue_timeout
            .take()
            .unwrap_or_else(|| self.prop_ms("timeout", DEFAULT_TIMEOUT_MS));
        let termchar = match self.property("termchar") {
            None => Some('#'),
            Some(s) if s.is_empty() => None,
            Some(s) => s.chars().next(),
        };
        let c = Collect {
            item: i,
            grammars,
            keys: String::new(),
            playing: had_prompts,
            bargein,
            timeout: Duration::from_millis(timeout),
            interdigit: Duration::from_millis(
                self.prop_ms("interdigittimeout", DEFAULT_INTERDIGIT_MS),
            ),
            termtimeout: Duration::from_millis(self.prop_ms("termtimeout", DEFAULT_TERMTIMEOUT_MS)),
            termchar,
        };
        self.out.push_back(Output::Listen {
            item: item.name.clone(),
            grammars: c.grammars.iter().map(|a| describe(&a.grammar)).collect(),
            timeout_ms: timeout,
            interdigit_ms: c.interdigit.as_millis() as u64,
            termtimeout_ms: c.termtimeout.as_millis() as u64,
            termchar,
        });
        if !had_prompts {
            self.timer = Some((now + c.timeout, TimerKind::NoInput));
        }
        self.wait = Wait::Collect(c);
        let typeahead = std::mem::take(&mut self.typeahead);
        for k in typeahead.chars() {
            if matches!(self.wait, Wait::Collect(_)) {
                self.on_key(now, k);
            }
        }
    }

    fn on_key(&mut self, now: Instant, k: char) {
        // A termchar typed after input that was already complete belongs to that input.
        if self.absorb_termchar.take() == Some(k) {
            return;
        }
        let Wait::Collect(c) = &mut self.wait else {
            if !self.disconnected {
                self.typeahead.push(k);
            }
            return;
        };
        if c.playing {
            if !c.bargein {
                return;
            }
            c.playing = false;
        }
        if Some(k) == c.termchar && !c.keys.is_empty() {
            self.timer = None;
            return self.finish_keys();
        }
        c.keys.push(k);
        let mut complete = false;
        let mut extendable = false;
        for a in &c.grammars {
            let s = a.grammar.check(&c.keys);
            complete |= s.complete;
            extendable |= s.extendable;
        }
        if !complete && !extendable {
            self.timer = None;
            return self.finish_keys();
        }
        if complete && !extendable {
            if c.termchar.is_some() && !c.termtimeout.is_zero() {
                self.timer = Some((now + c.termtimeout, TimerKind::TermTimeout));
                return;
            }
            self.timer = None;
            self.absorb_termchar = c.termchar;
            return self.finish_keys();
        }
        self.timer = Some((now + c.interdigit, TimerKind::InterDigit));
    }

    /// The keys so far are final: match or nomatch.
    fn finish_keys(&mut self) {
        let Wait::Collect(c) = std::mem::replace(&mut self.wait, Wait::None) else {
            return;
        };
        self.timer = None;
        self.out.push_back(Output::StopListening);
        let hit = c.grammars.iter().find_map(|a| {
            let s = a.grammar.check(&c.keys);
            s.complete.then_some((a.clone(), s.semantics))
        });
        let Some((active, semantics)) = hit else {
            let _ = self.set_lastresult(&c.keys, None);
            return self.throw(Event::new("nomatch", None));
        };
        let interp = match self.set_lastresult(&c.keys, semantics.as_deref()) {
            Ok(v) => v,
            Err(e) => return self.throw(e),
        };
        match active.target {
            Target::Link(l) => self.follow_link(&l),
            Target::Item(i) => self.fill_item(i, &c.keys, &interp),
            Target::Form => self.fill_form(&c.keys, &interp, c.item),
        }
    }

    /// Sets `application.lastresult$`; returns the ECMAScript expression of the interpretation.
    fn set_lastresult(&mut self, keys: &str, semantics: Option<&str>) -> Result<String, Event> {
        let tmp = "__interp";
        let code = semantics.map_or_else(|| js_string(keys), str::to_string);
        self.js
            .declare_code(self.app_scope, tmp, &code)
            .map_err(|e| Event::semantic(e.0))?;
        let set = format!(
            "application.lastresult$ = [{{utterance: {u}, confidence: 1.0, inputmode: 'dtmf', interpretation: application.{tmp}}}]; \
             application.lastresult$.utterance = {u}; application.lastresult$.confidence = 1.0; \
             application.lastresult$.inputmode = 'dtmf'; application.lastresult$.interpretation = application.{tmp};",
            u = js_string(keys)
        );
        let scope = self.app_scope;
        self.js
            .run_script(scope, &set)
            .map_err(|e| Event::semantic(e.0))?;
        Ok(format!("application.{tmp}"))
    }

    fn fill_item(&mut self, i: usize, keys: &str, interp: &str) {
        let item = self.item(i).clone();
        if let ItemKind::Field(Field { menu: Some(m), .. }) = &item.kind {
            let idx = self
                .js
                .eval_string(interp)
                .ok()
                .and_then(|s| s.parse::<usize>().ok());
            let Some(choice) = idx.and_then(|k| m.choices.get(k)).cloned() else {
                return self.throw(Event::new("nomatch", None));
            };
            return self.follow_choice(&choice);
        }
        let slot = match &item.kind {
            ItemKind::Field(f) => f.slot.clone().unwrap_or_else(|| item.name.clone()),
            _ => item.name.clone(),
        };
        let value = format!(
            "(function(v){{ if (v !== null && typeof v === 'object' && !Array.isArray(v) && ({s} in v)) return v[{s}]; return v; }})({interp})",
            s = js_string(&slot)
        );
        if let Err(e) = self.js.declare_code(self.dialog_scope, &item.name, &value) {
            return self.throw(Event::semantic(e.0));
        }
        let shadow = format!(
            "({{utterance: {u}, inputmode: 'dtmf', confidence: 1.0, interpretation: {interp}}})",
            u = js_string(keys)
        );
        let _ = self
            .js
            .declare_code(self.dialog_scope, &format!("{}$", item.name), &shadow);
        self.filled(vec![i]);
    }

    fn fill_form(&mut self, keys: &str, interp: &str, listening: usize) {
        let items: Vec<(usize, String, String)> = self
            .dlg()
            .items
            .iter()
            .enumerate()
            .filter_map(|(k, it)| match &it.kind {
                ItemKind::Field(f) => Some((
                    k,
                    it.name.clone(),
                    f.slot.clone().unwrap_or_else(|| it.name.clone()),
                )),
                _ => None,
            })
            .collect();
        let mut filled = Vec::new();
        for (k, name, slot) in items {
            let code = format!(
                "(function(v){{ return (v !== null && typeof v === 'object' && ({s} in v)) ? 't' : 'f'; }})({interp})",
                s = js_string(&slot)
            );
            if self.js.eval_string(&code).as_deref() == Ok("t") {
                let _ = self.js.declare_code(
                    self.dialog_scope,
                    &name,
                    &format!("({interp})[{}]", js_string(&slot)),
                );
                let shadow = format!("({{utterance: {u}, inputmode: 'dtmf', confidence: 1.0, interpretation: {interp}}})", u = js_string(keys));
                let _ = self
                    .js
                    .declare_code(self.dialog_scope, &format!("{name}$"), &shadow);
                filled.push(k);
            }
        }
        if filled.is_empty() {
            // A non-object result fills the item that was listening, if it is a field.
            if matches!(self.item(listening).kind, ItemKind::Field(_)) {
                return self.fill_item(listening, keys, interp);
            }
            return self.throw(Event::new("nomatch", None));
        }
        // Filling any field through a form-level grammar sets the <initial>s (Appendix C).
        let initials: Vec<String> = self
            .dlg()
            .items
            .iter()
            .filter(|it| matches!(it.kind, ItemKind::Initial))
            .map(|it| it.name.clone())
            .collect();
        for n in initials {
            self.set_item_var(&n, Some(&Value::Bool(true)));
        }
        self.filled(filled);
    }

    /// Runs `<filled>` actions after items were filled (VoiceXML 2.0 §2.4).
    fn filled(&mut self, just: Vec<usize>) {
        let mut bodies: Vec<Arc<[Stmt]>> = Vec::new();
        for &i in &just {
            for f in &self.item(i).filled {
                bodies.push(f.body.clone());
            }
        }
        let names: Vec<String> = just.iter().map(|&i| self.item(i).name.clone()).collect();
        let form_filled = self.dlg().filled.clone();
        for f in form_filled {
            let list: Vec<String> = if f.namelist.is_empty() {
                self.dlg()
                    .items
                    .iter()
                    .filter(|it| !matches!(it.kind, ItemKind::Block(_)))
                    .map(|it| it.name.clone())
                    .collect()
            } else {
                f.namelist.clone()
            };
            if !list.iter().any(|n| names.contains(n)) {
                continue;
            }
            let ok = if f.any {
                true
            } else {
                list.iter()
                    .all(|n| self.js.eval(n).ok().flatten().is_some())
            };
            if ok {
                bodies.push(f.body.clone());
            }
        }
        let anon = self.new_anon();
        for b in bodies.into_iter().rev() {
            self.exec.push(Frame {
                body: b,
                pc: 0,
                scope: anon,
                foreach: None,
            });
        }
    }

    fn follow_choice(&mut self, c: &Choice) {
        if let Some(e) = &c.event {
            let msg = c.message.clone().or_else(|| {
                c.messageexpr
                    .as_ref()
                    .and_then(|m| self.js.eval_string(m).ok())
            });
            return self.throw(Event::new(e.clone(), msg));
        }
        if let Some(e) = &c.eventexpr {
            return match self.js.eval_string(e) {
                Ok(name) => self.throw(Event::new(name, None)),
                Err(e) => self.throw(Event::semantic(e.0)),
            };
        }
        let target = match (&c.next, &c.expr) {
            (Some(n), _) => n.clone(),
            (None, Some(e)) => match self.js.eval_string(e) {
                Ok(t) => t,
                Err(e) => return self.throw(Event::semantic(e.0)),
            },
            _ => return self.throw(Event::semantic("choice without target")),
        };
        self.goto_uri(&target);
    }

    fn follow_link(&mut self, l: &Link) {
        let c = Choice {
            dtmf: None,
            text: Vec::new(),
            next: l.next.clone(),
            expr: l.expr.clone(),
            event: l.event.clone(),
            eventexpr: l.eventexpr.clone(),
            message: None,
            messageexpr: None,
        };
        self.follow_choice(&c)
    }

    fn goto_uri(&mut self, uri: &str) {
        let (base, frag) = split_fragment(uri);
        self.exec.clear();
        if base.is_empty() {
            let Some(id) = frag else {
                return self.throw(Event::new("error.badfetch", Some("empty URI".into())));
            };
            if self.docu().dialog(&id).is_none() {
                return self.throw(Event::new(
                    "error.badfetch",
                    Some(format!("no dialog {id:?}")),
                ));
            }
            self.phase = Phase::DocInit(Some(id));
            return;
        }
        let url = self.resolve(&base);
        self.fetch(
            FetchKind::Document,
            url,
            Method::Get,
            BTreeMap::new(),
            FetchPurpose::Goto {
                dialog: frag,
                subdialog: None,
            },
        );
    }

    // ---------------------------------------------------------------- events

    fn throw(&mut self, ev: Event) {
        self.exec.clear();
        if let Wait::Collect(_) = self.wait {
            self.out.push_back(Output::StopListening);
        }
        if !matches!(self.wait, Wait::Ended) {
            self.wait = Wait::None;
        }
        self.timer = None;
        self.events.push_back(ev);
    }

    fn handle_event(&mut self, ev: Event) {
        self.out.push_back(Output::Event {
            name: ev.name.clone(),
            message: ev.message.clone(),
        });
        if self.doc.is_none() {
            return self.end(Value::Null);
        }
        let item = self.form.current.filter(|&i| i < self.dlg().items.len());
        let key = (item, ev.name.clone());
        let count = {
            let c = self.form.event_counts.entry(key).or_insert(0);
            *c += 1;
            *c
        };
        // Candidate catches: innermost scope first, document order within a scope.
        let mut cands: Vec<Catch> = Vec::new();
        if let Some(i) = item {
            cands.extend(self.item(i).catches.iter().cloned());
        }
        if self.dialog < self.docu().dialogs.len() {
            cands.extend(self.dlg().catches.iter().cloned());
        }
        cands.extend(self.docu().catches.iter().cloned());
        if let Some(a) = &self.app {
            cands.extend(a.doc.catches.iter().cloned());
        }
        let matching: Vec<Catch> = cands
            .into_iter()
            .filter(|c| c.events.is_empty() || c.events.iter().any(|e| event_matches(e, &ev.name)))
            .collect();
        let anon = self.new_anon();
        let _ = self.js.declare_json(anon, "_event", Some(&json!(ev.name)));
        let _ = self.js.declare_json(
            anon,
            "_message",
            Some(&ev.message.clone().map(Value::String).unwrap_or(Value::Null)),
        );
        let mut with_cond = Vec::new();
        for c in matching {
            if let Some(cond) = &c.cond {
                match self.js.eval_bool(cond) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => continue,
                }
            }
            with_cond.push(c);
        }
        let best = with_cond
            .iter()
            .map(|c| c.count)
            .filter(|&c| c <= count)
            .max();
        let chosen = best.and_then(|b| with_cond.into_iter().find(|c| c.count == b));
        self.reprompted = false;
        self.in_catch = true;
        match chosen {
            Some(c) => {
                self.exec.push(Frame {
                    body: c.body.clone(),
                    pc: 0,
                    scope: anon,
                    foreach: None,
                });
            }
            None => self.default_handler(&ev),
        }
    }

    /// Platform default handlers (VoiceXML 2.0 §5.2.5).
    fn default_handler(&mut self, ev: &Event) {
        let n = ev.name.as_str();
        if n == "cancel" {
            return;
        }
        if ["noinput", "nomatch", "help", "maxspeechtimeout"]
            .iter()
            .any(|p| event_matches(p, n))
        {
            if self.disconnected {
                return self.end(Value::Null);
            }
            self.reprompted = true;
            return;
        }
        if n.starts_with("connection.disconnect") {
            return self.end(Value::Null);
        }
        // error.* and application events: exit.
        self.end(Value::Null)
    }

    // ---------------------------------------------------------------- executable content

    fn step(&mut self) {
        let frame = self.exec.last_mut().expect("step is called with a frame");
        if frame.pc >= frame.body.len() {
            if let Some(fe) = &mut frame.foreach {
                fe.idx += 1;
                if fe.idx < fe.len {
                    let (scope, item, tmp, idx) =
                        (frame.scope, fe.item.clone(), fe.tmp.clone(), fe.idx);
                    frame.pc = 0;
                    if let Err(e) = self
                        .js
                        .declare(scope, &item, Some(&format!("{tmp}[{idx}]")))
                    {
                        self.throw(Event::semantic(e.0));
                    }
                    return;
                }
            }
            self.exec.pop();
            return;
        }
        let stmt = frame.body[frame.pc].clone();
        let scope = frame.scope;
        frame.pc += 1;
        if let Err(ev) = self.exec_stmt(&stmt, scope).map(|_| ()) {
            self.throw(ev);
        }
    }

    fn namelist_values(&mut self, names: &[String]) -> Result<BTreeMap<String, Value>, Event> {
        let mut m = BTreeMap::new();
        for n in names {
            let v = self
                .js
                .eval(n)
                .map_err(|e| Event::semantic(format!("namelist {n}: {}", e.0)))?;
            m.insert(n.clone(), v.unwrap_or(Value::Null));
        }
        Ok(m)
    }

    fn event_of(
        &mut self,
        event: &Option<String>,
        eventexpr: &Option<String>,
        message: &Option<String>,
        messageexpr: &Option<String>,
    ) -> Result<Event, Event> {
        let name = match (event, eventexpr) {
            (Some(e), _) => e.clone(),
            (None, Some(e)) => self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?,
            _ => return Err(Event::semantic("no event name")),
        };
        let message = match (message, messageexpr) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(e)) => Some(self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?),
            _ => None,
        };
        Ok(Event::new(name, message))
    }

    fn exec_stmt(&mut self, stmt: &Stmt, scope: ScopeId) -> Result<Flow, Event> {
        let sem = |e: crate::script::JsError| Event::semantic(e.0);
        match stmt {
            Stmt::Var { name, expr, .. } => {
                if let Some(v) = self
                    .form
                    .params
                    .get(name)
                    .cloned()
                    .filter(|_| scope == self.dialog_scope)
                {
                    self.form.params.remove(name);
                    self.js.declare_json(scope, name, v.as_ref()).map_err(sem)?;
                } else {
                    self.js.declare(scope, name, expr.as_deref()).map_err(sem)?;
                }
            }
            Stmt::Assign { name, expr, .. } => self.js.assign(name, expr).map_err(sem)?,
            Stmt::Clear(names) => {
                let names: Vec<String> = if names.is_empty() {
                    self.dlg().items.iter().map(|i| i.name.clone()).collect()
                } else {
                    names.clone()
                };
                for n in names {
                    if !self.js.is_declared(&n) {
                        return Err(Event::semantic(format!("clear: {n} is not declared")));
                    }
                    self.js.assign(&n, "undefined").map_err(sem)?;
                    if let Some(i) = self.dlg().items.iter().position(|it| it.name == n) {
                        self.form.prompt_counts.remove(&i);
                        self.form.event_counts.retain(|(it, _), _| *it != Some(i));
                    }
                }
            }
            Stmt::Script {
                src, srcexpr, text, ..
            } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(e)) => Some(self.js.eval_string(e).map_err(sem)?),
                    _ => None,
                };
                match uri {
                    Some(u) => {
                        let url = self.resolve(&u);
                        self.fetch(
                            FetchKind::Script,
                            url,
                            Method::Get,
                            BTreeMap::new(),
                            FetchPurpose::Script { scope },
                        );
                        return Ok(Flow::Suspend);
                    }
                    None => self.js.run_script(scope, text).map_err(sem)?,
                }
            }
            Stmt::If(branches) => {
                for (cond, body) in branches {
                    let take = match cond {
                        None => true,
                        Some(c) => self.js.eval_bool(c).map_err(sem)?,
                    };
                    if take {
                        self.exec.push(Frame {
                            body: body.clone(),
                            pc: 0,
                            scope,
                            foreach: None,
                        });
                        break;
                    }
                }
            }
            Stmt::Goto {
                next,
                expr,
                nextitem,
                expritem,
            } => {
                if nextitem.is_some() || expritem.is_some() {
                    let name = match (nextitem, expritem) {
                        (Some(n), _) => n.clone(),
                        (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                        _ => unreachable!(),
                    };
                    let Some(i) = self.dlg().items.iter().position(|it| it.name == name) else {
                        return Err(Event::new(
                            "error.badfetch",
                            Some(format!("no form item {name:?}")),
                        ));
                    };
                    self.exec.clear();
                    self.form.next_item = Some(i);
                    self.phase = Phase::Fia;
                    return Ok(Flow::Suspend);
                }
                let uri = match (next, expr) {
                    (Some(n), _) => n.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                self.goto_uri(&uri);
                return Ok(Flow::Suspend);
            }
            Stmt::Submit {
                next,
                expr,
                namelist,
                method,
                enctype,
            } => {
                let uri = match (next, expr) {
                    (Some(n), _) => n.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                let names: Vec<String> = if namelist.is_empty() {
                    self.dlg()
                        .items
                        .iter()
                        .filter(|i| !i.anonymous && !matches!(i.kind, ItemKind::Block(_)))
                        .map(|i| i.name.clone())
                        .collect()
                } else {
                    namelist.clone()
                };
                let params = self.namelist_values(&names)?;
                let (base, frag) = split_fragment(&uri);
                let url = self.resolve(&base);
                self.exec.clear();
                self.flush_prompts();
                let id = FetchId(self.next_fetch);
                self.next_fetch += 1;
                self.out.push_back(Output::Submit {
                    id,
                    url,
                    method: *method,
                    enctype: enctype
                        .clone()
                        .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
                    params,
                });
                self.wait = Wait::Fetch(
                    id,
                    FetchPurpose::Goto {
                        dialog: frag,
                        subdialog: None,
                    },
                );
                return Ok(Flow::Suspend);
            }
            Stmt::Exit { expr, namelist } => {
                let v = if let Some(e) = expr {
                    self.js.eval(e).map_err(sem)?.unwrap_or(Value::Null)
                } else if !namelist.is_empty() {
                    Value::Object(self.namelist_values(namelist)?.into_iter().collect())
                } else {
                    Value::Null
                };
                self.stack.clear();
                self.end(v);
                return Ok(Flow::Suspend);
            }
            Stmt::Disconnect(namelist) => {
                let values = self.namelist_values(namelist)?;
                self.flush_prompts();
                self.out.push_back(Output::Hangup { values });
                self.disconnected = true;
                return Err(Event::new("connection.disconnect.hangup", None));
            }
            Stmt::Return {
                event,
                eventexpr,
                message,
                messageexpr,
                namelist,
            } => {
                if self.stack.is_empty() {
                    return Err(Event::semantic("<return> outside a subdialog"));
                }
                let ev = if event.is_some() || eventexpr.is_some() {
                    Some(self.event_of(event, eventexpr, message, messageexpr)?)
                } else {
                    None
                };
                let values = self.namelist_values(namelist)?;
                self.return_from_subdialog(ev, values);
                return Ok(Flow::Suspend);
            }
            Stmt::Reprompt => {
                self.reprompted = true;
            }
            Stmt::Throw {
                event,
                eventexpr,
                message,
                messageexpr,
            } => {
                let ev = self.event_of(event, eventexpr, message, messageexpr)?;
                return Err(ev);
            }
            Stmt::Log {
                label,
                expr,
                content,
            } => {
                let mut items = Vec::new();
                self.render(content, None, &mut items)?;
                let mut text = play_text(&items);
                if let Some(e) = expr {
                    let v = self.js.eval_string(e).map_err(sem)?;
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(&v);
                }
                self.out.push_back(Output::Log {
                    label: label.clone(),
                    text,
                });
            }
            Stmt::Prompt(p) => {
                if let Some(c) = &p.cond {
                    if !self.js.eval_bool(c).map_err(sem)? {
                        return Ok(Flow::Continue);
                    }
                }
                self.queue_prompt(p, None)?;
            }
            Stmt::Data {
                name,
                src,
                srcexpr,
                namelist,
                method,
                ..
            } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                let params = self.namelist_values(namelist)?;
                if let Some(n) = name {
                    self.js.declare(scope, n, None).map_err(sem)?;
                }
                let url = self.resolve(&uri);
                self.fetch(
                    FetchKind::Data,
                    url,
                    *method,
                    params,
                    FetchPurpose::Data {
                        scope,
                        name: name.clone(),
                    },
                );
                return Ok(Flow::Suspend);
            }
            Stmt::Foreach { array, item, body } => {
                let len = self.js.eval(&format!("({array}).length")).map_err(sem)?;
                let Some(len) = len.and_then(|v| v.as_u64()) else {
                    return Err(Event::semantic(format!(
                        "foreach array {array} is not an array"
                    )));
                };
                if len == 0 {
                    return Ok(Flow::Continue);
                }
                let tmp = self.new_tmp();
                self.js.declare(scope, &tmp, Some(array)).map_err(sem)?;
                self.js
                    .declare(scope, item, Some(&format!("{tmp}[0]")))
                    .map_err(sem)?;
                self.exec.push(Frame {
                    body: body.clone(),
                    pc: 0,
                    scope,
                    foreach: Some(ForeachState {
                        tmp,
                        idx: 0,
                        len: len as usize,
                        item: item.clone(),
                    }),
                });
            }
        }
        Ok(Flow::Continue)
    }

    fn return_from_subdialog(&mut self, ev: Option<Event>, values: BTreeMap<String, Value>) {
        let ctx = self.stack.pop().expect("checked by the caller");
        self.exec.clear();
        self.flush_prompts();
        if ctx.app_scope != self.app_scope {
            self.js.drop_scope(self.app_scope);
        }
        self.js.drop_scope(self.doc_scope);
        self.js.drop_scope(self.dialog_scope);
        self.app = ctx.app;
        self.doc = Some(ctx.doc);
        self.app_scope = ctx.app_scope;
        self.doc_scope = ctx.doc_scope;
        self.dialog_scope = ctx.dialog_scope;
        self.dialog = ctx.dialog;
        self.form = ctx.form;
        self.form.current = Some(ctx.item);
        self.phase = Phase::Fia;
        self.set_chain(None);
        match ev {
            Some(e) => self.throw(e),
            None => {
                let name = self.item(ctx.item).name.clone();
                self.set_item_var(&name, Some(&Value::Object(values.into_iter().collect())));
                self.filled(vec![ctx.item]);
            }
        }
    }
}

impl Item {
    /// (expression reading the item variable, cond)
    fn clone_head(&self) -> (String, Option<String>) {
        (
            format!("dialog[{}]", js_string(&self.name)),
            self.cond.clone(),
        )
    }
}

/// Whether a catch for `pattern` catches `name`: equal, or a prefix ending at a dot
/// (VoiceXML 2.0 §5.2.4).
fn event_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.trim_end_matches('.');
    p.is_empty()
        || name == p
        || (name.starts_with(p) && name.as_bytes().get(p.len()) == Some(&b'.'))
}

fn split_fragment(uri: &str) -> (String, Option<String>) {
    match uri.split_once('#') {
        Some((b, f)) => (b.to_string(), (!f.is_empty()).then(|| f.to_string())),
        None => (uri.to_string(), None),
    }
}

/// Resolves a URI reference against a base (RFC 3986), leaving it as is when either is not a URL.
#[must_use]
pub fn resolve(base: &str, uri: &str) -> String {
    if let Ok(u) = url::Url::parse(uri) {
        return u.to_string();
    }
    match url::Url::parse(base).and_then(|b| b.join(uri)) {
        Ok(u) => u.to_string(),
        Err(_) => uri.to_string(),
    }
}

fn describe(g: &Grammar) -> String {
    match &g.builtin {
        Some(b) => format!("builtin:dtmf/{:?}", b.kind).to_lowercase(),
        None => format!(
            "srgs:{}",
            g.rules.get(g.root).map(|r| r.0.as_str()).unwrap_or("")
        ),
    }
}

/// The text a caller hears from play items (audio by its fallback is not included).
#[must_use]
pub fn play_text(items: &[PlayItem]) -> String {
    let mut s = String::new();
    for i in items {
        if let PlayItem::Text(t) = i {
            if t.is_empty() {
                continue;
            }
            let punct = t.starts_with(['.', ',', ';', ':', '!', '?', ')']);
            if !s.is_empty() && !punct {
                s.push(' ');
            }
            s.push_str(t);
        }
    }
    s
}

#[cfg(test)]
#[path = "interp_tests.rs"]
mod tests;
