//! The SIP trunk driver of outcall: RFC 3261 messages, transactions and dialogs as sans-IO state
//! machines driven by an injected clock, digest authentication (RFC 2617/7616/8760), SDP
//! offer/answer (RFC 3264/4566) and DTMF as RFC 4733 events. A trunk will be a set of
//! bidirectional ports exactly like a PRI span (`outcall-port`); the binding to ports is the next
//! layer (see `NOTES.md`).
//!
//! # Layers
//! - [`msg`]: rsip glue: parse (with normalisation and typed errors), print, response builders.
//! - [`transaction`]: ICT/NICT/IST/NIST (§17, RFC 6026) and the matching [`transaction::layer`].
//! - [`transport`]: Via/rport (RFC 3581), the §18.1.1 size rule, branch and tag generation.
//! - [`dialog`], [`endpoint`]: dialogs (§12) and the UAC call flow addressed by [`CallHandle`].
//! - [`auth`], [`sdp`], [`rfc4733`]: digest, SDP, DTMF events.
//! - `io` (feature `io`, default): the tokio UDP shell. Nothing else imports tokio.
//!
//! # Driving contract (STYLE.md §2)
//! Feed one input (`handle_input`, `handle_command` or `handle_timeout`) with the current
//! `Instant`, then drain `poll_output` until it returns `None`, then sleep until `poll_timeout`.
//! A peer's bad input never returns `Err`: the core answers it (400, 481, 491, 501…) or drops it.
//! `Err` means the caller misused the core.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use outcall_sip::endpoint::{CallHandle, Command, Endpoint, EndpointConfig, Output};
//! use outcall_sip::transaction::layer::LayerConfig;
//! use outcall_sip::transport::Transport;
//!
//! # #[allow(clippy::disallowed_methods)] // an example needs a clock; cores never read one
//! # fn main() -> Result<(), outcall_sip::Error> {
//! let mut ep = Endpoint::new(
//!     EndpointConfig {
//!         local: "192.0.2.10:5060".parse().unwrap(),
//!         transport: Transport::Udp,
//!         proxy: "198.51.100.7:5060".parse().unwrap(),
//!         contact_user: "outcall".into(),
//!         credentials: None,
//!         timers: LayerConfig::default(),
//!         register: None,
//!         keepalive: None,
//!     },
//!     1, // rng seed
//! );
//! let now = Instant::now();
//! ep.handle_command(now, CallHandle(0), Command::Dial {
//!     to: "sip:+15551234567@carrier.example".into(),
//!     from: "sip:100@carrier.example".into(),
//!     offer: Vec::new(),
//!     ring_timeout: Duration::from_secs(30),
//! })?;
//! while let Some(out) = ep.poll_output() {
//!     match out {
//!         Output::Transmit { to, bytes } => { /* socket.send_to(&bytes, to.addr) */ }
//!         Output::Call { handle, event } => { /* tell the port */ }
//!         Output::Trunk(event) => { /* registration / keep-alive state */ }
//!     }
//! }
//! let _wake_at = ep.poll_timeout();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod cause;
pub mod dialog;
pub mod endpoint;
pub mod error;
#[cfg(feature = "io")]
pub mod io;
pub mod msg;
pub mod register;
pub mod rfc4733;
pub mod sdp;
pub mod transaction;
pub mod transport;

pub use endpoint::CallHandle;
pub use error::{Error, ParseError};
