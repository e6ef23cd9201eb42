//! The boundary between the main loop and the span threads.
//!
//! Each span (or trunk) runs on its own thread: its signalling stack, its 20 ms media tick,
//! and the VoiceXML sessions of its channels (the interpreter is not `Send`, and one span's
//! channels are processed together). The main loop sends [`LineCommand`]s to the thread that
//! owns the port and receives [`LineReport`]s from all of them on one channel.

use crate::dispatcher::LineEvent;
use crate::portmgr::{Direction, Port};
use crate::request::App;
use outcall_vxml::{FetchId, FetchResult};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::mpsc;

/// What a session needs to start.
#[derive(Clone, Debug)]
pub struct SessionStart {
    /// The application.
    pub app: App,
    /// `session.*` variables.
    pub info: outcall_vxml::SessionInfo,
    /// Longest session in seconds (the call's max duration).
    pub max_duration_s: u32,
}

/// A command to a span thread.
#[derive(Debug)]
pub enum LineCommand {
    /// Place a call on the port.
    Dial {
        /// The port.
        port: Port,
        /// Called number.
        number: String,
        /// Calling number.
        caller_id: Option<String>,
    },
    /// Answer the incoming call on the port.
    Answer {
        /// The port.
        port: Port,
    },
    /// Refuse the incoming call.
    Reject {
        /// The port.
        port: Port,
        /// Q.850 cause.
        cause: u8,
    },
    /// Clear a call.
    Hangup {
        /// The port.
        port: Port,
        /// Which call.
        dir: Direction,
        /// Q.850 cause.
        cause: u8,
    },
    /// Start the application on the answered call.
    StartSession {
        /// The port.
        port: Port,
        /// What to run.
        start: Box<SessionStart>,
    },
    /// Stop the session (the call ended or max duration).
    StopSession {
        /// The port.
        port: Port,
    },
    /// A fetch or submit the session asked for finished.
    Fetched {
        /// The port.
        port: Port,
        /// The fetch.
        id: FetchId,
        /// Its result.
        result: FetchResult,
    },
    /// Stop the thread (after every call has ended).
    Shutdown,
}

/// A report from a span thread.
#[derive(Debug)]
pub enum LineReport {
    /// A signalling event for the dispatcher.
    Event(LineEvent),
    /// The session asks for a fetch or submit (done on the runtime's blocking pool).
    Fetch {
        /// The port.
        port: Port,
        /// The fetch.
        id: FetchId,
        /// URL.
        url: String,
        /// POST (else GET).
        post: bool,
        /// enctype (submit).
        enctype: String,
        /// Parameters.
        params: BTreeMap<String, Value>,
        /// Timeout.
        timeout_ms: u64,
    },
    /// Digits and submitted values so far (kept if the callee hangs up).
    SessionProgress {
        /// The port.
        port: Port,
        /// Digits.
        digits: String,
        /// Submitted values.
        submitted: Option<Value>,
    },
    /// The application ended; the dispatcher clears the call.
    SessionEnded {
        /// The port.
        port: Port,
        /// Digits pressed.
        digits: String,
        /// Values submitted or returned.
        submitted: Option<Value>,
    },
}

/// The command senders of every span thread, by span index.
#[derive(Default)]
pub struct Lines {
    spans: Vec<Option<mpsc::Sender<LineCommand>>>,
}

impl Lines {
    /// Registers span `index`'s command channel (None: the span has no driver running).
    pub fn set(&mut self, index: usize, tx: Option<mpsc::Sender<LineCommand>>) {
        if self.spans.len() <= index {
            self.spans.resize_with(index + 1, || None);
        }
        self.spans[index] = tx;
    }

    /// Sends a command to the thread owning `port`; false if that thread is gone.
    pub fn send(&self, port: Port, cmd: LineCommand) -> bool {
        self.spans
            .get(port.span)
            .and_then(Option::as_ref)
            .is_some_and(|tx| tx.send(cmd).is_ok())
    }

    /// A sender to the thread owning `port`.
    pub fn sender(&self, port: Port) -> Option<mpsc::Sender<LineCommand>> {
        self.spans.get(port.span).cloned().flatten()
    }

    /// Asks every span thread to stop.
    pub fn shutdown(&self) {
        for tx in self.spans.iter().flatten() {
            let _ = tx.send(LineCommand::Shutdown);
        }
    }
}
