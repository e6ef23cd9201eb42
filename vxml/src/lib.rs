//! A VoiceXML 2.1 interpreter, sans-IO.
//!
//! It parses documents into a validated model and runs the Form Interpretation Algorithm
//! (VoiceXML 2.0 Appendix C). The interpreter takes events (DTMF, prompt done, timer expiry,
//! fetch results, hangup) with the current time and yields actions (play prompts, collect input,
//! fetch, submit, transfer, hang up, exit); the daemon's session runner does the I/O.
#![forbid(unsafe_code)]

pub mod error;
pub mod grammar;
pub mod model;
pub mod parse;
pub mod script;

pub use error::{Error, GrammarError, ParseError};
pub use parse::parse_document;
pub mod interp;
pub mod io;
pub mod session;

pub use interp::{Config, Interpreter};
pub use io::{FetchId, FetchKind, FetchResult, Input, Output, PlayItem, TransferOutcome};
pub use session::{Protocol, Redirect, SessionInfo};
