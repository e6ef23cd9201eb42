//! The control socket: newline-delimited JSON over a Unix stream socket (docs/PROTOCOL.md).
//!
//! [`proto`] holds the messages, shared by outcalld and outcallctl; [`server`] the listener.

pub mod proto;
pub mod server;
