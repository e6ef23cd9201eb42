//! The SIP trunk driver: RFC 3261 transactions and dialogs as sans-IO state machines driven by an
//! injected clock, digest authentication, registration, SDP offer/answer (RFC 3264), RTP with
//! G.711 and Opus, and DTMF as RFC 4733 events. A trunk is a set of bidirectional ports exactly
//! like a PRI span (`outcall-port`).
#![forbid(unsafe_code)]

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod error;
#[cfg(feature = "io")]
pub mod io;
pub mod msg;
pub mod rfc4733;
pub mod sdp;
pub mod transaction;
pub mod transport;

pub use error::{Error, ParseError};
