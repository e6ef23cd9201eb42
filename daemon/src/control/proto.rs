//! Control-socket messages, version 1.
//!
//! Each line a client writes is one JSON object `{"v":1,"op":…, …}`; each line the daemon writes
//! back is a [`Reply`]. Unknown fields, unknown ops, a wrong version and lines over
//! [`MAX_LINE`] bytes get an error reply naming the problem; the connection stays open.

use crate::request::{FieldError, RequestRecord, Submit};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The longest line accepted, in bytes (an inline VoiceXML document fits with room to spare).
pub const MAX_LINE: usize = 1024 * 1024;

/// A client's command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Submit a call request; the reply carries its id once it is on disk.
    Submit {
        /// The request.
        request: Box<Submit>,
    },
    /// One request's record.
    Status {
        /// The request id.
        id: u64,
    },
    /// Requests, newest first, filtered.
    List {
        /// Only requests in this state (`queued`, `completed`, `no-answer`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        /// Only requests from this sender.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        /// Only requests submitted at or after this RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// At most this many (default 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Cancel a queued request (a call in progress is hung up with cause 16).
    Cancel {
        /// The request id.
        id: u64,
    },
    /// A live stream of request and call events, one [`Event`] per line, until the client
    /// closes the connection.
    Watch,
    /// The spans and trunks with their state.
    Spans,
    /// Every port with its state.
    Ports,
    /// The calls in progress.
    Calls,
    /// Counts of requests and attempts by outcome.
    Report {
        /// Only requests submitted at or after this RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// Re-read the configuration file.
    Reload,
    /// The daemon's version.
    Version,
}

/// Why a command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not JSON, or not an object of the right shape.
    BadJson,
    /// The line is longer than [`MAX_LINE`].
    LineTooLong,
    /// `v` is missing or not [`VERSION`].
    BadVersion,
    /// `op` names no command.
    UnknownOp,
    /// Fields of a request are invalid (see `fields`).
    Invalid,
    /// Policy refused the request.
    Policy,
    /// The peer's uid/gid is not allowed.
    Forbidden,
    /// No such request.
    NotFound,
    /// The request is not in a state that allows this.
    Conflict,
    /// The daemon is shutting down or at a limit.
    Unavailable,
    /// The daemon failed (store error); nothing was changed.
    Internal,
}

/// An error reply's body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message naming the offending value.
    pub message: String,
    /// Per-field problems (code `invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// A reply line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// The error, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// The result, when `ok` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

impl Reply {
    /// A success with a result.
    pub fn ok(result: impl Serialize) -> Self {
        Reply {
            v: VERSION,
            ok: true,
            error: None,
            result: Some(serde_json::to_value(result).expect("results serialise")),
        }
    }

    /// A failure.
    pub fn err(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply {
            v: VERSION,
            ok: false,
            error: Some(ErrorBody {
                code,
                message: message.into(),
                fields: Vec::new(),
            }),
            result: None,
        }
    }

    /// A validation failure listing every field error.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let mut r = Self::err(ErrorCode::Invalid, message);
        r.error.as_mut().expect("err sets error").fields = fields;
        r
    }
}

/// The `submit` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    /// The new request's id.
    pub id: u64,
    /// Always `queued`.
    pub state: String,
    /// When it will first be dialled (RFC 3339).
    pub due_at: String,
}

/// A `watch` event line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A request changed state; the full new record.
    Request {
        /// The record after the change.
        record: Box<RequestRecord>,
    },
    /// A call on a port changed state (dialing, alerting, connected, hangup).
    Call {
        /// The port, e.g. `span1/3`.
        port: String,
        /// The request, for outbound calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<u64>,
        /// What happened.
        what: String,
        /// Q.850 cause for hangups.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<u8>,
    },
}

/// Parses one line into a command, or the error reply to send.
pub fn parse_line(line: &[u8]) -> Result<Command, Reply> {
    let text = std::str::from_utf8(line)
        .map_err(|e| Reply::err(ErrorCode::BadJson, format!("not UTF-8: {e}")))?;
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Reply::err(ErrorCode::BadJson, format!("not JSON: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| Reply::err(ErrorCode::BadJson, "a command is a JSON object"))?;
    match obj.remove("v") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(VERSION as u64) => {}
        Some(other) => {
            return Err(Reply::err(
                ErrorCode::BadVersion,
                format!(
                    "protocol version {other} is not supported: this daemon speaks v={VERSION}"
                ),
            ))
        }
        None => {
            return Err(Reply::err(
                ErrorCode::BadVersion,
                format!("missing \"v\": send \"v\":{VERSION}"),
            ))
        }
    }
    let op = match obj.get("op") {
        Some(serde_json::Value::String(op)) => op.clone(),
        Some(other) => {
            return Err(Reply::err(
                ErrorCode::BadJson,
                format!("\"op\" must be a string, not {other}"),
            ))
        }
        None => return Err(Reply::err(ErrorCode::BadJson, "missing \"op\"")),
    };
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown variant") {
            Reply::err(ErrorCode::UnknownOp, format!("unknown op {op:?}: {msg}"))
        } else {
            Reply::err(ErrorCode::BadJson, format!("op {op:?}: {msg}"))
        }
    })
}

/// Serialises a command as one line, with the version (the client side).
pub fn command_line(cmd: &Command) -> String {
    let mut v = serde_json::to_value(cmd).expect("commands serialise");
    v.as_object_mut()
        .expect("commands are objects")
        .insert("v".into(), VERSION.into());
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> ErrorCode {
        parse_line(line.as_bytes()).unwrap_err().error.unwrap().code
    }

    #[test]
    fn every_command_round_trips_through_a_line() {
        let cmds = vec![
            Command::Submit {
                request: Box::new(Submit {
                    number: "+1555".into(),
                    ..Default::default()
                }),
            },
            Command::Status { id: 3 },
            Command::List {
                state: Some("queued".into()),
                sender: None,
                since: None,
                limit: Some(5),
            },
            Command::Cancel { id: 9 },
            Command::Watch,
            Command::Spans,
            Command::Ports,
            Command::Calls,
            Command::Report { since: None },
            Command::Reload,
            Command::Version,
        ];
        for c in cmds {
            let line = command_line(&c);
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(parse_line(line.trim_end().as_bytes()).unwrap(), c, "{line}");
        }
    }

    #[test]
    fn bad_lines_get_precise_codes() {
        assert_eq!(code("garbage"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"op":"version"}"#), ErrorCode::BadVersion);
        assert_eq!(code(r#"{"v":2,"op":"version"}"#), ErrorCode::BadVersion);
        assert_eq!(code(r#"{"v":1}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"v":1,"op":"dance"}"#), ErrorCode::UnknownOp);
        assert_eq!(code(r#"{"v":1,"op":"status"}"#), ErrorCode::BadJson);
        assert_eq!(
            code(r#"{"v":1,"op":"status","id":1,"extra":true}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            code(r#"{"v":1,"op":"submit","request":{"number":"1","x":1}}"#),
            ErrorCode::BadJson
        );
        let r = parse_line(br#"{"v":1,"op":"dance"}"#).unwrap_err();
        assert!(r.error.unwrap().message.contains("dance"));
        let r = parse_line(br#"{"v":1,"op":"status","id":1,"extra":true}"#).unwrap_err();
        assert!(r.error.unwrap().message.contains("extra"));
    }
}
