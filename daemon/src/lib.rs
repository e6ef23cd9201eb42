//! outcalld, the outcall telephony daemon, and outcallctl, its control client.
//!
//! outcalld takes call requests over a Unix socket, checks them against policy, stores them
//! durably (sled) before acknowledging them, schedules and dials them on PRI spans (DAHDI or
//! softspan) and SIP trunks, runs the VoiceXML dialog on each answered call and records what
//! happened. The binaries in `src/bin/` are thin shims over this library.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod ctl;
pub mod dispatcher;
pub mod lines;
pub mod logging;
pub mod main_loop;
pub mod policy;
pub mod portmgr;
pub mod request;
pub mod scheduler;
pub mod service;
pub mod session;
pub mod spans;
pub mod store;
pub mod systemd;
pub mod time;
pub mod window;

/// The version of outcall, from the workspace manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
