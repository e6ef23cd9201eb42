//! One VoiceXML session on one call, sans-IO.
//!
//! The session owns the interpreter (`outcall-vxml`) and the call's playback buffer. Its shell
//! (the span thread) calls [`Session::next_frame`] every 20 ms for the audio to send, feeds
//! detected DTMF with [`Session::handle_dtmf`], and serves the session's requests from
//! [`Session::poll_output`]: render a play item to 8 kHz samples (TTS or an audio file), fetch
//! or submit over HTTP, hang up. Time is the `now` passed in.

use crate::request::App;
use outcall_vxml::{FetchId, FetchKind, FetchResult, Input, Interpreter, Output, PlayItem};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use tracing::{debug, info, warn};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// Identifies one render job of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RenderId(pub u64);

/// What the session asks of its shell.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionOutput {
    /// Render this item to 8 kHz linear samples; answer with [`Session::handle_rendered`].
    Render {
        /// Job id.
        id: RenderId,
        /// Text (TTS) or an audio URL with fallback.
        item: PlayItem,
    },
    /// Fetch a resource (document, script, data, grammar); answer with
    /// [`Session::handle_fetched`].
    Fetch {
        /// Fetch id.
        id: FetchId,
        /// Absolute URL.
        url: String,
        /// What for.
        kind: FetchKind,
        /// GET or POST.
        post: bool,
        /// Parameters.
        params: BTreeMap<String, Value>,
        /// `fetchtimeout`, milliseconds.
        timeout_ms: u64,
    },
    /// Submit values and fetch the next document; answer with [`Session::handle_fetched`].
    Submit {
        /// Fetch id.
        id: FetchId,
        /// Absolute URL.
        url: String,
        /// GET or POST.
        post: bool,
        /// enctype.
        enctype: String,
        /// The values.
        params: BTreeMap<String, Value>,
        /// `fetchtimeout`, milliseconds.
        timeout_ms: u64,
    },
    /// The application hung up (`<disconnect>`, `<exit>`, end of document).
    Hangup,
    /// A `<log>` line or an event, for the call's log.
    Log(String),
}

/// The session.
pub struct Session {
    interp: Interpreter,
    playback: VecDeque<i16>,
    /// Render jobs of the current Play, in order, and their samples once ready.
    pending: VecDeque<(RenderId, Option<Vec<i16>>)>,
    playing: bool,
    bargein: bool,
    next_render: u64,
    digits: String,
    submitted: Option<Value>,
    out: VecDeque<SessionOutput>,
    ended: bool,
    /// The application asked to hang up; done once the playback has drained.
    hangup_pending: bool,
}

/// The VoiceXML document for the `say` shorthand: speak the text, collect `collect` digits and
/// exit with them as `digits` (twice more on no input or no match).
pub fn say_document(text: &str, collect: u8) -> String {
    let text = xml_escape(text);
    if collect == 0 {
        return format!(
            "<?xml version=\"1.0\"?>\n<vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">\
             <form><block><prompt>{text}</prompt><exit/></block></form></vxml>"
        );
    }
    format!(
        "<?xml version=\"1.0\"?>\n<vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">\
         <form><field name=\"digits\" type=\"digits?length={collect}\">\
         <prompt>{text}</prompt>\
         <noinput count=\"3\"><exit/></noinput><nomatch count=\"3\"><exit/></nomatch>\
         <noinput><reprompt/></noinput><nomatch><reprompt/></nomatch>\
         <filled><exit namelist=\"digits\"/></filled></field></form></vxml>"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Session {
    /// Starts a session running `app`. `session` fills `session.*` for the application.
    pub fn start(
        now: Instant,
        app: &App,
        session: outcall_vxml::SessionInfo,
    ) -> Result<Session, outcall_vxml::Error> {
        let interp = Interpreter::new(outcall_vxml::Config {
            session,
            ..Default::default()
        })?;
        let (url, inline_doc) = match app {
            App::VxmlUrl(u) => (u.clone(), None),
            App::Vxml(doc) => ("outcall:inline.vxml".to_string(), Some(doc.clone())),
            App::Say { text, collect } => (
                "outcall:say.vxml".to_string(),
                Some(say_document(text, *collect)),
            ),
        };
        let mut s = Session {
            interp,
            playback: VecDeque::new(),
            pending: VecDeque::new(),
            playing: false,
            bargein: true,
            next_render: 0,
            digits: String::new(),
            submitted: None,
            out: VecDeque::new(),
            ended: false,
            hangup_pending: false,
        };
        match inline_doc {
            Some(doc) => s.interp.start_inline(now, &url, &doc),
            None => s.interp.start(now, &url),
        }
        s.pump(now);
        Ok(s)
    }

    /// Digits the caller pressed so far.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Values submitted or returned by `<exit>` so far.
    pub fn submitted(&self) -> Option<&Value> {
        self.submitted.as_ref()
    }

    /// Whether the application has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether a prompt is playing (or waiting for its audio).
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    fn feed(&mut self, now: Instant, input: Input) {
        if self.ended {
            return;
        }
        if let Err(e) = self.interp.handle_input(now, input) {
            warn!("vxml: {e}");
        }
        self.pump(now);
    }

    /// A DTMF digit detected on the call.
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        self.digits.push(digit);
        if self.playing && self.bargein {
            // Barge-in: the prompt stops where it is.
            self.playback.clear();
            self.pending.clear();
            self.playing = false;
            self.feed(now, Input::PromptsDone);
        }
        self.feed(now, Input::Dtmf(digit));
    }

    /// The far end hung up.
    pub fn handle_hangup(&mut self, now: Instant) {
        self.playback.clear();
        self.pending.clear();
        self.playing = false;
        self.feed(now, Input::Hangup);
        self.ended = true;
    }

    /// A fetch or submit finished.
    pub fn handle_fetched(&mut self, now: Instant, id: FetchId, result: FetchResult) {
        self.feed(now, Input::Fetched { id, result });
    }

    /// A render job finished: `None` if the item could not be rendered (its fallback, if any,
    /// should have been rendered instead by the shell; silence otherwise).
    pub fn handle_rendered(&mut self, id: RenderId, samples: Option<Vec<i16>>) {
        if let Some(slot) = self.pending.iter_mut().find(|(r, _)| *r == id) {
            slot.1 = Some(samples.unwrap_or_default());
        }
        // Move finished jobs, in order, into the playback buffer.
        while let Some((_, Some(_))) = self.pending.front() {
            let (_, s) = self.pending.pop_front().expect("front exists");
            self.playback.extend(s.expect("checked Some"));
        }
    }

    /// The next 20 ms of audio to send. Call once per frame tick.
    pub fn next_frame(&mut self, now: Instant) -> [i16; FRAME] {
        let mut f = [0i16; FRAME];
        let n = self.playback.len().min(FRAME);
        for (o, s) in f.iter_mut().zip(self.playback.drain(..n)) {
            *o = s;
        }
        if self.playing && self.playback.is_empty() && self.pending.is_empty() {
            self.playing = false;
            self.feed(now, Input::PromptsDone);
        }
        self.release_hangup();
        f
    }

    /// Fires the interpreter's timers (no-input, inter-digit) due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.interp.poll_timeout().is_some_and(|t| t <= now) {
            self.interp.handle_timeout(now);
            self.pump(now);
        }
    }

    /// When [`Session::handle_timeout`] is next needed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.interp.poll_timeout()
    }

    /// The next request to the shell.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.out.pop_front()
    }

    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.interp.poll_output() {
            match o {
                Output::Play { items, bargein } => {
                    self.bargein = bargein;
                    self.playing = true;
                    for item in items {
                        if let PlayItem::Break(ms) = item {
                            let id = self.render_id();
                            let n = (ms as usize) * 8;
                            self.pending.push_back((id, Some(vec![0; n])));
                            continue;
                        }
                        if matches!(item, PlayItem::Mark(_)) {
                            continue;
                        }
                        let id = self.render_id();
                        self.pending.push_back((id, None));
                        self.out.push_back(SessionOutput::Render { id, item });
                    }
                    self.handle_rendered(RenderId(u64::MAX), None);
                }
                Output::Listen { .. } | Output::StopListening => {}
                Output::Fetch {
                    id,
                    url,
                    kind,
                    method,
                    params,
                    timeout_ms,
                } => {
                    let post = matches!(method, outcall_vxml::model::Method::Post);
                    self.out.push_back(SessionOutput::Fetch {
                        id,
                        url,
                        kind,
                        post,
                        params,
                        timeout_ms,
                    });
                }
                Output::Submit {
                    id,
                    url,
                    method,
                    enctype,
                    params,
                    timeout_ms,
                } => {
                    self.submitted = Some(serde_json::to_value(&params).expect("values serialise"));
                    let post = matches!(method, outcall_vxml::model::Method::Post);
                    self.out.push_back(SessionOutput::Submit {
                        id,
                        url,
                        post,
                        enctype,
                        params,
                        timeout_ms,
                    });
                }
                Output::Record { .. } => {
                    // Recording is not supported yet: report an empty recording (noinput).
                    let input = Input::RecordDone {
                        url: None,
                        duration_ms: 0,
                        size: 0,
                        termchar: None,
                        maxtime: false,
                    };
                    if let Err(e) = self.interp.handle_input(now, input) {
                        warn!("vxml: {e}");
                    }
                }
                Output::Transfer { .. } => {
                    let input = Input::TransferDone {
                        outcome: outcall_vxml::TransferOutcome::Error(
                            "error.unsupported.transfer".into(),
                        ),
                        duration_ms: 0,
                    };
                    if let Err(e) = self.interp.handle_input(now, input) {
                        warn!("vxml: {e}");
                    }
                }
                Output::Log { label, text } => {
                    let line = match label {
                        Some(l) => format!("[{l}] {text}"),
                        None => text,
                    };
                    info!("vxml log: {line}");
                    self.out.push_back(SessionOutput::Log(line));
                }
                Output::Event { name, message } => {
                    debug!(event = %name, ?message, "vxml event");
                    if name.starts_with("error.") {
                        self.out.push_back(SessionOutput::Log(format!(
                            "{name}: {}",
                            message.unwrap_or_default()
                        )));
                    }
                }
                Output::Hangup { values } => {
                    if !values.is_empty() {
                        self.submitted =
                            Some(serde_json::to_value(&values).expect("values serialise"));
                    }
                    self.hangup_pending = true;
                }
                Output::Exit { values } => {
                    if !values.is_null() {
                        self.submitted = Some(values);
                    }
                    self.ended = true;
                    self.hangup_pending = true;
                }
            }
        }
        self.release_hangup();
    }

    /// Emits the pending hang-up once nothing is left to play.
    fn release_hangup(&mut self) {
        if self.hangup_pending && self.playback.is_empty() && self.pending.is_empty() {
            self.hangup_pending = false;
            self.playing = false;
            self.out.push_back(SessionOutput::Hangup);
        }
    }

    fn render_id(&mut self) -> RenderId {
        self.next_render += 1;
        RenderId(self.next_render)
    }
}

#[cfg(test)]
mod tests;
