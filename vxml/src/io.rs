//! The inputs and outputs of the interpreter: what the shell feeds in and what it must do.

use std::collections::BTreeMap;

use crate::model::Method;

/// Identifies an outstanding fetch; the shell answers with [`Input::Fetched`] carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub u64);

/// What a fetch is for (the shell may apply different caches or timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// A VoiceXML document (`<goto>`, `<subdialog>`, the application root, the first document).
    Document,
    /// A `<script src>`.
    Script,
    /// A `<data>` (XML).
    Data,
    /// An external grammar.
    Grammar,
}

/// One thing to play, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayItem {
    /// Text for the TTS engine.
    Text(String),
    /// An audio file; when it cannot be fetched or played, play `fallback` instead
    /// (VoiceXML 2.0 §4.1.3).
    Audio {
        /// Absolute URL.
        url: String,
        /// Fallback content.
        fallback: Vec<PlayItem>,
    },
    /// Silence.
    Break(u64),
    /// A `<mark>` (2.1): the shell reports nothing back; kept for tracing.
    Mark(String),
}

/// Result of a fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchResult {
    /// The body of the resource.
    Ok {
        /// The final URL (after redirects); relative URIs in the document resolve against it.
        url: String,
        /// The body as text.
        body: String,
    },
    /// The fetch failed.
    Err {
        /// HTTP status, when the server answered (`error.badfetch.http.NNN`).
        status: Option<u16>,
        /// Why.
        message: String,
    },
}

/// How a `<transfer>` ended (VoiceXML 2.0 §2.3.7, table 11 and the error events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The callee was busy.
    Busy,
    /// No answer within connecttimeout.
    NoAnswer,
    /// The network was busy.
    NetworkBusy,
    /// The caller's side (the platform) ended the bridge, e.g. a hotword.
    NearEndDisconnect,
    /// The callee hung up.
    FarEndDisconnect,
    /// The network dropped the bridge.
    NetworkDisconnect,
    /// `maxtime` elapsed.
    MaxTimeDisconnect,
    /// A blind transfer was handed to the network.
    Blind,
    /// The caller hung up during the transfer.
    CallerHangup,
    /// An error event to throw, e.g. `error.connection.baddestination`.
    Error(String),
    /// Unknown outcome.
    Unknown,
}

impl TransferOutcome {
    /// The form item value for a bridge transfer.
    #[must_use]
    pub fn as_value(&self) -> &'static str {
        match self {
            TransferOutcome::Busy => "busy",
            TransferOutcome::NoAnswer => "noanswer",
            TransferOutcome::NetworkBusy => "network_busy",
            TransferOutcome::NearEndDisconnect => "near_end_disconnect",
            TransferOutcome::FarEndDisconnect => "far_end_disconnect",
            TransferOutcome::NetworkDisconnect => "network_disconnect",
            TransferOutcome::MaxTimeDisconnect => "maxtime_disconnect",
            _ => "unknown",
        }
    }
}

/// An input event for [`crate::Interpreter::handle_input`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A DTMF key.
    Dtmf(char),
    /// Everything from the last [`Output::Play`] has been played (or cut by barge-in).
    PromptsDone,
    /// The caller hung up.
    Hangup,
    /// A fetch finished.
    Fetched {
        /// Which fetch.
        id: FetchId,
        /// Body or error.
        result: FetchResult,
    },
    /// A recording ended.
    RecordDone {
        /// Where the audio is (a URL the shell can serve or submit).
        url: Option<String>,
        /// Duration in milliseconds (0 = nothing recorded → `noinput`).
        duration_ms: u64,
        /// Size in bytes.
        size: u64,
        /// The DTMF key that ended it, if any.
        termchar: Option<char>,
        /// Whether maxtime ended it.
        maxtime: bool,
    },
    /// A transfer ended.
    TransferDone {
        /// Outcome.
        outcome: TransferOutcome,
        /// Bridge duration in milliseconds.
        duration_ms: u64,
    },
}

/// An action the shell must take, from [`crate::Interpreter::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Play these prompts. Answer with [`Input::PromptsDone`] when done.
    Play {
        /// What to play, in order.
        items: Vec<PlayItem>,
        /// Whether DTMF may interrupt them.
        bargein: bool,
    },
    /// Collect DTMF: feed [`Input::Dtmf`]; the interpreter runs the timers.
    Listen {
        /// The form item that listens.
        item: String,
        /// Descriptions of the active grammars.
        grammars: Vec<String>,
        /// `timeout` (no-input) in milliseconds.
        timeout_ms: u64,
        /// `interdigittimeout` in milliseconds.
        interdigit_ms: u64,
        /// `termtimeout` in milliseconds.
        termtimeout_ms: u64,
        /// `termchar`.
        termchar: Option<char>,
        /// Whether DTMF may interrupt the prompts queued before this collection (keys that
        /// arrive during non-bargein prompts are discarded by the interpreter).
        bargein: bool,
    },
    /// Stop collecting (input matched, or an event ended the collection).
    StopListening,
    /// Fetch a resource; answer with [`Input::Fetched`].
    Fetch {
        /// Fetch id.
        id: FetchId,
        /// Absolute URL.
        url: String,
        /// What it is for.
        kind: FetchKind,
        /// Method.
        method: Method,
        /// Parameters (`namelist`), for `<data>` and `<subdialog>`.
        params: BTreeMap<String, serde_json::Value>,
        /// The `fetchtimeout` property in milliseconds (default 30 s): past it, answer with
        /// [`FetchResult::Err`].
        timeout_ms: u64,
    },
    /// Submit and fetch the next document (`<submit>`); answer with [`Input::Fetched`].
    Submit {
        /// Fetch id.
        id: FetchId,
        /// Absolute URL.
        url: String,
        /// Method.
        method: Method,
        /// `enctype`.
        enctype: String,
        /// The submitted variables.
        params: BTreeMap<String, serde_json::Value>,
        /// The `fetchtimeout` property in milliseconds.
        timeout_ms: u64,
    },
    /// Record; answer with [`Input::RecordDone`].
    Record {
        /// The form item.
        item: String,
        /// Play a beep first.
        beep: bool,
        /// Maximum duration in milliseconds.
        maxtime_ms: Option<u64>,
        /// Silence that ends the recording, in milliseconds.
        finalsilence_ms: Option<u64>,
        /// A DTMF key ends it.
        dtmfterm: bool,
        /// Media type.
        media_type: Option<String>,
    },
    /// Transfer the call; answer with [`Input::TransferDone`].
    Transfer {
        /// The form item.
        item: String,
        /// Destination URI (`tel:`, `sip:`).
        dest: String,
        /// "bridge", "blind" or "consultation".
        transfer_type: String,
        /// connecttimeout in milliseconds.
        connecttimeout_ms: u64,
        /// maxtime in milliseconds (0 = none).
        maxtime_ms: u64,
        /// User-to-user information.
        aai: Option<String>,
    },
    /// `<log>`.
    Log {
        /// `label`.
        label: Option<String>,
        /// The text.
        text: String,
    },
    /// An event was thrown (for tracing; `error.*` are errors).
    Event {
        /// Event name.
        name: String,
        /// `_message`.
        message: Option<String>,
    },
    /// Hang up the call (`<disconnect>`); the session may still run handlers, then exits.
    Hangup {
        /// `namelist` values (2.1).
        values: BTreeMap<String, serde_json::Value>,
    },
    /// The session is over; the last output.
    Exit {
        /// `expr` or `namelist` values (null when none).
        values: serde_json::Value,
    },
}
