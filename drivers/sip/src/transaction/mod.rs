//! RFC 3261 §17 transactions as sans-IO state machines, with the RFC 6026 "Accepted" state in
//! both INVITE machines.
//!
//! Each machine follows STYLE.md §2: `handle_input(now, input)` and `handle_timeout(now)` feed
//! it; after each call drain [`poll_output`](Ict::poll_output) until `None`, then read
//! `poll_timeout` for the next deadline. Nothing here reads a clock or touches a socket.
//!
//! - [`Ict`]: INVITE client (§17.1.1, RFC 6026 §8.4).
//! - [`Nict`]: non-INVITE client (§17.1.2).
//! - [`Ist`]: INVITE server (§17.2.1, RFC 6026 §8.5–8.7).
//! - [`Nist`]: non-INVITE server (§17.2.2).
//! - [`layer`]: matching of messages to transactions (§17.1.3, §17.2.3).

pub mod ict;
pub mod ist;
pub mod layer;
pub mod nict;
pub mod nist;
pub mod ratelimit;
pub mod timer;

pub use ict::Ict;
pub use ist::Ist;
pub use nict::Nict;
pub use nist::Nist;
pub use timer::{Timer, TimerConfig, TimerTable, T1, T2, T4};

use crate::msg::{Request, Response, SipMessage};

/// What a transaction asks of its user: send bytes, or tell the TU something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Hand this message to the transport, towards the transaction's peer.
    Transmit(SipMessage),
    /// Client transactions: a response for the TU.
    Response(Response),
    /// Server transactions: a request for the TU (an ACK in the INVITE server's Accepted state).
    Request(Request),
    /// The transaction failed because this timer fired (B, F: no answer; H: no ACK).
    Timeout(Timer),
    /// The transport reported a failure; the TU is told and the transaction ends (§17.1.4).
    TransportError,
    /// The transaction has reached Terminated and can be dropped.
    Terminated,
}

/// Input to a client transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInput {
    /// A response matched to this transaction by the transaction layer.
    Response(Response),
    /// The transport failed to send this transaction's request.
    TransportError,
}

/// Input to a server transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerInput {
    /// A request matched to this transaction (a retransmission, or an ACK).
    Request(Request),
    /// The TU sends this response within the transaction.
    Respond(Response),
    /// The transport failed to send this transaction's response.
    TransportError,
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Shared pieces of the table tests: an origin instant and output summaries.
    use super::Output;
    use crate::msg::{self, Request, Response, SipMessage};
    use std::time::Instant;

    /// The origin of a test's virtual time.
    #[allow(clippy::disallowed_methods)] // tests need an origin; time then moves by offsets only
    pub(crate) fn epoch() -> Instant {
        Instant::now()
    }

    pub(crate) fn request(method: &str) -> Request {
        let text = format!(
            "{method} sip:+15551234567@carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtest1;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+15551234567@carrier.example>\r\n\
From: <sip:100@192.0.2.10>;tag=abc\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
        );
        match msg::parse(text.as_bytes()).expect("test request parses") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!("a request line"),
        }
    }

    pub(crate) fn response(req: &Request, code: u16) -> Response {
        msg::response_to(req, code, Some("srv"))
    }

    /// One-word summaries so tables stay readable: `tx INVITE`, `tx 486`, `up 180`, `timeout B`.
    pub(crate) fn summary(o: &Output) -> String {
        match o {
            Output::Transmit(SipMessage::Request(r)) => format!("tx {}", r.method),
            Output::Transmit(SipMessage::Response(r)) => format!("tx {}", r.status_code.code()),
            Output::Response(r) => format!("up {}", r.status_code.code()),
            Output::Request(r) => format!("up {}", r.method),
            Output::Timeout(t) => format!("timeout {t:?}"),
            Output::TransportError => "transport-error".into(),
            Output::Terminated => "terminated".into(),
        }
    }
}
