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

mod documents;
mod events;
mod exec;
mod fia;
mod prompts;

/// Platform defaults for properties (VoiceXML 2.0 §6.3).
const DEFAULT_TIMEOUT_MS: u64 = 5000;
const DEFAULT_INTERDIGIT_MS: u64 = 5000;
const DEFAULT_TERMTIMEOUT_MS: u64 = 0;
const DEFAULT_FETCHTIMEOUT_MS: u64 = 30_000;
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
        self.start_fetch(url);
        self.run(now);
    }

    /// Starts the session with a first document given inline (a request that carries its
    /// VoiceXML); relative URIs in it resolve against `url`.
    pub fn start_inline(&mut self, now: Instant, url: &str, text: &str) {
        self.start_fetch(url);
        if let Wait::Fetch(id, _) = self.wait {
            self.out.clear();
            let result = FetchResult::Ok {
                url: split_fragment(url).0,
                body: text.to_string(),
            };
            self.handle_input(now, Input::Fetched { id, result })
                .expect("the start fetch is outstanding");
        }
    }

    fn start_fetch(&mut self, url: &str) {
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

    /// The current dialog; a document without dialogs (only possible while its
    /// initialisation or a handler runs) yields an empty one.
    fn dlg(&self) -> &Dialog {
        static EMPTY: std::sync::OnceLock<Dialog> = std::sync::OnceLock::new();
        self.docu().dialogs.get(self.dialog).unwrap_or_else(|| {
            EMPTY.get_or_init(|| Dialog {
                id: String::new(),
                pos: Pos::default(),
                init: Arc::from(Vec::new()),
                items: Vec::new(),
                filled: Vec::new(),
                catches: Vec::new(),
                properties: Vec::new(),
                grammars: Vec::new(),
                links: Vec::new(),
                document_scope: false,
            })
        })
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
        let timeout_ms = self.prop_ms("fetchtimeout", DEFAULT_FETCHTIMEOUT_MS);
        self.out.push_back(Output::Fetch {
            id,
            url,
            kind,
            method,
            params,
            timeout_ms,
        });
        self.wait = Wait::Fetch(id, purpose);
    }

    /// The current form item, if the current dialog has it (bounds-checked: events and
    /// properties are looked up while documents change).
    fn current_item(&self) -> Option<(usize, &Item)> {
        let d = self.doc.as_ref()?.doc.dialogs.get(self.dialog)?;
        let i = self.form.current?;
        d.items.get(i).map(|it| (i, it))
    }

    fn property(&self, name: &str) -> Option<String> {
        if let Some((_, it)) = self.current_item() {
            if let Some(v) = props_get(&it.properties, name) {
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
mod tests;
