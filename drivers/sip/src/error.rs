//! Errors of the SIP core.
//!
//! A misbehaving peer is never an [`Error`] from a state machine: the core answers it (400, 481,
//! 501…) or drops it and keeps running (STYLE.md §4). [`ParseError`] is the typed reason a datagram
//! was refused; the transaction layer turns it into a response where RFC 3261 §8.2 / §18 ask for one.

/// Why a datagram is not a well-formed SIP message (RFC 3261 §7, §18.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The datagram is larger than the configured maximum.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Size of the datagram.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No empty line ends the header section.
    #[error("no CRLFCRLF ends the header section")]
    NoHeaderEnd,
    /// The start line and headers are not UTF-8.
    #[error("header section is not UTF-8 at byte {at}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The start line is neither a Request-Line nor a Status-Line.
    #[error("bad start line {0:?}")]
    BadStartLine(String),
    /// A request carries a method this core does not know (answered with 501, RFC 3261 §8.2.1).
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// A header line has no colon or an empty name.
    #[error("bad header line {0:?}")]
    BadHeaderLine(String),
    /// A mandatory header (RFC 3261 §8.1.1) is missing.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// A header is present but its value does not parse.
    #[error("header {name}: bad value {value:?}")]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// The offending value.
        value: String,
    },
    /// Content-Length says more bytes than the datagram holds (RFC 3261 §18.3).
    #[error("Content-Length {declared} but only {actual} body bytes")]
    BodyTooShort {
        /// Value of Content-Length.
        declared: usize,
        /// Bytes present after the header section.
        actual: usize,
    },
    /// The CSeq method differs from the Request-Line method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} differs from request method {request}")]
    CSeqMethodMismatch {
        /// Method in CSeq.
        cseq: String,
        /// Method in the Request-Line.
        request: String,
    },
    /// rsip refused the normalised message.
    #[error("rsip: {0}")]
    Rsip(String),
}

/// Misuse of a state machine by its caller (never caused by a peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A response was given to a server transaction in a state that cannot send it.
    #[error("cannot send {code} response in state {state}")]
    ResponseInState {
        /// Status code of the response.
        code: u16,
        /// The state's name.
        state: &'static str,
    },
    /// A message lacks what the core needs to build on it (a Via branch, a CSeq…).
    #[error("message unusable: {0}")]
    BadMessage(ParseError),
    /// A transaction with this key already exists.
    #[error("transaction {0} already exists")]
    DuplicateTransaction(String),
    /// The transaction named does not exist (any more).
    #[error("no transaction {0}")]
    NoTransaction(String),
    /// Digest authentication cannot answer this challenge.
    #[error("digest: {0}")]
    Digest(String),
    /// SDP negotiation failed or an SDP value is invalid.
    #[error("sdp: {0}")]
    Sdp(String),
}
