//! Errors of the VoiceXML crate.
//!
//! A faulty *document* is not an `Err` of the interpreter: it becomes the VoiceXML event the
//! specification names (`error.badfetch`, `error.semantic`, …). `Err` is for misuse of the API.

/// A problem found while parsing a document: where, in which element, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {col}, <{element}>: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// The element that holds the error.
    pub element: String,
    /// What is wrong.
    pub message: String,
}

/// A problem in an SRGS grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrammarError {
    /// `type="..."` names no builtin.
    #[error("unknown builtin type {0:?}")]
    UnknownBuiltin(String),
    /// A builtin parameter is malformed.
    #[error("bad builtin parameter {0:?}")]
    BadParameter(String),
    /// A token is not a DTMF key.
    #[error("token {0:?} is not a DTMF key")]
    NotDtmf(String),
    /// `repeat` is malformed.
    #[error("bad repeat {0:?}")]
    BadRepeat(String),
    /// A `<rule>` has no id.
    #[error("<rule> without id")]
    RuleWithoutId,
    /// A rule reference names no rule.
    #[error("no rule named {0:?}")]
    UnknownRule(String),
    /// A construct this interpreter does not run.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// ABNF syntax error.
    #[error("ABNF: {0}")]
    Abnf(String),
    /// The grammar is in voice mode; only DTMF is recognised.
    #[error("voice-mode grammar")]
    VoiceMode,
}

/// Misuse of the interpreter API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fetch result arrived for a fetch that is not outstanding.
    #[error("fetch result for unknown fetch id {0}")]
    UnknownFetch(u64),
    /// Input after the session ended.
    #[error("session already ended")]
    Ended,
    /// The ECMAScript engine could not be created.
    #[error("ECMAScript engine: {0}")]
    Engine(String),
}
