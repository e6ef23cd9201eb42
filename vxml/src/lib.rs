//! A VoiceXML 2.1 interpreter, sans-IO.
//!
//! It parses documents into a validated model ([`parse_document`]: errors name line, column and
//! element) and runs the Form Interpretation Algorithm (VoiceXML 2.0 Appendix C) with
//! ECMAScript on QuickJS ([`script`]) and DTMF grammars ([`grammar`]: SRGS XML, ABNF, builtins).
//! The interpreter takes [`Input`]s (DTMF, prompts done, hangup, fetch results, recording and
//! transfer outcomes) with the current time and yields [`Output`]s (play, listen, fetch, submit,
//! record, transfer, log, hang up, exit); the caller does all I/O and owns the clock.
//!
//! Driving contract: after [`Interpreter::start`] and after every `handle_*` call, drain
//! [`Interpreter::poll_output`] until it returns `None`, then read
//! [`Interpreter::poll_timeout`] and call [`Interpreter::handle_timeout`] once that instant is
//! reached. Every [`Output::Fetch`] and [`Output::Submit`] must be answered with
//! [`Input::Fetched`]; [`Output::Play`] with [`Input::PromptsDone`] (the no-input timer starts
//! then); [`Output::Record`] and [`Output::Transfer`] with their `*Done` inputs.
//! [`Output::Exit`] is always the last output.
//!
//! ```no_run
//! use std::time::Instant;
//! use outcall_vxml::{Config, FetchResult, Input, Interpreter, Output};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let mut now = Instant::now(); // the shell's clock; the interpreter never reads one
//! let mut vxml = Interpreter::new(Config::default()).expect("engine");
//! vxml.start(now, "file:///srv/app/main.vxml");
//! loop {
//!     while let Some(out) = vxml.poll_output() {
//!         match out {
//!             Output::Fetch { id, url, .. } => {
//!                 let body = std::fs::read_to_string(url.trim_start_matches("file://"));
//!                 let result = match body {
//!                     Ok(body) => FetchResult::Ok { url, body },
//!                     Err(e) => FetchResult::Err { status: None, message: e.to_string() },
//!                 };
//!                 vxml.handle_input(now, Input::Fetched { id, result }).expect("id is outstanding");
//!             }
//!             Output::Play { .. } => vxml.handle_input(now, Input::PromptsDone).expect("live"),
//!             Output::Exit { values } => return println!("exit {values}"),
//!             other => println!("{other:?}"),
//!         }
//!     }
//!     match vxml.poll_timeout() {
//!         Some(t) => {
//!             now = t; // a real shell sleeps until t, or feeds DTMF that arrives first
//!             vxml.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! ```
#![forbid(unsafe_code)]

pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod grammar;
pub mod interp;
pub mod io;
pub mod model;
pub mod parse;
pub mod script;
pub mod session;

pub use error::{Error, GrammarError, ParseError};
pub use interp::{Config, Interpreter};
pub use io::{FetchId, FetchKind, FetchResult, Input, Output, PlayItem, TransferOutcome};
pub use parse::parse_document;
pub use session::{Protocol, Redirect, SessionInfo};
