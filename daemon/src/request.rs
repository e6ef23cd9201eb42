//! The call request: what a sender submits, its validation, and the record the store keeps.
//!
//! A [`Submit`] is the wire form (docs/PROTOCOL.md). [`Submit::validate`] turns it into a
//! [`RequestSpec`] with every default filled in, or returns *all* the problems, each naming the
//! field and the offending value. The store keeps a [`RequestRecord`]: the spec, its
//! [`RequestState`] and one [`Attempt`] per dial.

use crate::time::{parse_rfc3339, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A request's id: unique in one store, increasing in submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the call runs once answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum App {
    /// A VoiceXML document fetched from this URL (http, https or file).
    VxmlUrl(String),
    /// An inline VoiceXML document.
    Vxml(String),
    /// Shorthand: speak `text`, then collect `collect` DTMF digits (0 = none).
    Say {
        /// The text to speak (TTS).
        text: String,
        /// How many digits to collect after the prompt.
        #[serde(default)]
        collect: u8,
    },
}

/// Level of service: solitary calls (one person waiting on a result, such as an outbid alert)
/// go before bulk campaigns of the same priority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// One-off, time-sensitive calls. The default.
    #[default]
    Solitary,
    /// Campaign calls: dialled when no solitary call of the same priority waits.
    Bulk,
}

/// A request as it arrives on the control socket. Every field but `number` and `app` is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// The callee: E.164 (`+15551234567`) or a national number of digits.
    pub number: String,
    /// The application to run on the answered call.
    pub app: Option<App>,
    /// Calling number presented to the callee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Seconds to let the callee's phone ring (5–300, default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_timeout_s: Option<u32>,
    /// Longest call in seconds once answered (10–14400, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<u32>,
    /// Do not dial before this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Give up (state `expired`) if not completed by this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// 0 (lowest) to 9 (highest), default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Level of service, default `solitary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Dial attempts in all (1–20, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Seconds between attempts after busy, no answer or congestion (10–86400, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_s: Option<u32>,
    /// Opaque data kept with every record and visible to the application (at most 8 KiB as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<serde_json::Value>,
    /// The sender's name, for reports (default: the peer's user name or uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Dial only inside this daily window of the callee's local time (a callee's own
    /// preference in `[[policy.callee]]` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<crate::window::Window>,
}

/// One problem with a submitted request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field, as named on the wire.
    pub field: String,
    /// What is wrong, quoting the offending value.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A validated request with every default filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// The callee's number, digits with an optional leading `+`.
    pub number: String,
    /// The application.
    pub app: App,
    /// Calling number presented, if any.
    pub caller_id: Option<String>,
    /// Ring timeout in seconds.
    pub ring_timeout_s: u32,
    /// Max call duration in seconds.
    pub max_duration_s: u32,
    /// Earliest dial time.
    pub not_before: Option<UnixMillis>,
    /// Expiry time.
    pub expires: Option<UnixMillis>,
    /// 0–9, higher first.
    pub priority: u8,
    /// Level of service.
    pub service: Service,
    /// Attempts in all.
    pub max_attempts: u32,
    /// Seconds between attempts.
    pub retry_delay_s: u32,
    /// Opaque user data.
    pub user_data: Option<serde_json::Value>,
    /// Sender's name.
    pub sender: String,
    /// Calling window asked by the sender.
    #[serde(default)]
    pub window: Option<crate::window::Window>,
}

/// Defaults and limits of the request fields (docs/PROTOCOL.md lists them).
pub mod limits {
    /// Default ring timeout, seconds.
    pub const RING_TIMEOUT_DEFAULT: u32 = 30;
    /// Allowed ring timeouts, seconds.
    pub const RING_TIMEOUT: std::ops::RangeInclusive<u32> = 5..=300;
    /// Default max duration, seconds.
    pub const MAX_DURATION_DEFAULT: u32 = 300;
    /// Allowed max durations, seconds.
    pub const MAX_DURATION: std::ops::RangeInclusive<u32> = 10..=14_400;
    /// Default priority.
    pub const PRIORITY_DEFAULT: u8 = 5;
    /// Default attempts.
    pub const ATTEMPTS_DEFAULT: u32 = 3;
    /// Allowed attempts.
    pub const ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=20;
    /// Default retry delay, seconds.
    pub const RETRY_DELAY_DEFAULT: u32 = 300;
    /// Allowed retry delays, seconds.
    pub const RETRY_DELAY: std::ops::RangeInclusive<u32> = 10..=86_400;
    /// Largest user data, bytes of JSON.
    pub const USER_DATA_MAX: usize = 8 * 1024;
    /// Largest inline VoiceXML document or say text, bytes.
    pub const APP_MAX: usize = 256 * 1024;
    /// Longest sender name.
    pub const SENDER_MAX: usize = 64;
}

/// Checks a phone number: an optional `+`, then 1–20 digits (E.164 allows 15 after the `+`).
pub fn check_number(field: &str, n: &str) -> Result<(), FieldError> {
    let err = |message: String| FieldError {
        field: field.into(),
        message,
    };
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!(
            "{n:?} is not a phone number (digits, optionally after '+')"
        )));
    }
    let max = if n.starts_with('+') { 15 } else { 20 };
    if digits.len() > max {
        return Err(err(format!(
            "{n:?} has {} digits, more than {max}",
            digits.len()
        )));
    }
    Ok(())
}

impl Submit {
    /// Validates the request. `default_sender` names the peer when `sender` is absent.
    pub fn validate(&self, default_sender: &str) -> Result<RequestSpec, Vec<FieldError>> {
        use limits::*;
        let mut errs = Vec::new();
        let mut err = |field: &str, message: String| {
            errs.push(FieldError {
                field: field.into(),
                message,
            })
        };
        if let Err(e) = check_number("number", &self.number) {
            err(&e.field, e.message);
        }
        if let Some(c) = &self.caller_id {
            if let Err(e) = check_number("caller_id", c) {
                err(&e.field, e.message);
            }
        }
        match &self.app {
            None => err("app", "missing: give vxml_url, vxml or say".into()),
            Some(App::VxmlUrl(u)) => {
                let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                if !matches!(scheme.as_deref(), Some("http" | "https" | "file")) {
                    err(
                        "app.vxml_url",
                        format!("{u:?} is not an http, https or file URL"),
                    );
                }
            }
            Some(App::Vxml(doc)) => {
                if doc.len() > APP_MAX {
                    err(
                        "app.vxml",
                        format!("{} bytes, more than {APP_MAX}", doc.len()),
                    );
                } else if !doc.contains("<vxml") {
                    err(
                        "app.vxml",
                        "no <vxml> element: not a VoiceXML document".into(),
                    );
                }
            }
            Some(App::Say { text, collect }) => {
                if text.trim().is_empty() {
                    err("app.say.text", "empty".into());
                } else if text.len() > APP_MAX {
                    err(
                        "app.say.text",
                        format!("{} bytes, more than {APP_MAX}", text.len()),
                    );
                }
                if *collect > 32 {
                    err("app.say.collect", format!("{collect} digits, more than 32"));
                }
            }
        }
        let mut ranged = |field: &str, v: Option<u32>, d: u32, r: std::ops::RangeInclusive<u32>| {
            let v = v.unwrap_or(d);
            if !r.contains(&v) {
                err(field, format!("{v} is outside {}..={}", r.start(), r.end()));
            }
            v
        };
        let ring_timeout_s = ranged(
            "ring_timeout_s",
            self.ring_timeout_s,
            RING_TIMEOUT_DEFAULT,
            RING_TIMEOUT,
        );
        let max_duration_s = ranged(
            "max_duration_s",
            self.max_duration_s,
            MAX_DURATION_DEFAULT,
            MAX_DURATION,
        );
        let max_attempts = ranged(
            "max_attempts",
            self.max_attempts,
            ATTEMPTS_DEFAULT,
            ATTEMPTS,
        );
        let retry_delay_s = ranged(
            "retry_delay_s",
            self.retry_delay_s,
            RETRY_DELAY_DEFAULT,
            RETRY_DELAY,
        );
        let mut time = |field: &str, v: &Option<String>| {
            v.as_ref().and_then(|s| {
                let t = parse_rfc3339(s);
                if t.is_none() {
                    err(
                        field,
                        format!("{s:?} is not an RFC 3339 time like 2026-11-24T15:00:00Z"),
                    );
                }
                t
            })
        };
        let not_before = time("not_before", &self.not_before);
        let expires = time("expires", &self.expires);
        if let (Some(nb), Some(ex)) = (not_before, expires) {
            if ex <= nb {
                err("expires", format!("{ex} is not after not_before {nb}"));
            }
        }
        let priority = self.priority.unwrap_or(PRIORITY_DEFAULT);
        if priority > 9 {
            err("priority", format!("{priority} is outside 0..=9"));
        }
        if let Some(u) = &self.user_data {
            let n = serde_json::to_string(u)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if n > USER_DATA_MAX {
                err(
                    "user_data",
                    format!("{n} bytes of JSON, more than {USER_DATA_MAX}"),
                );
            }
        }
        let sender = self
            .sender
            .clone()
            .unwrap_or_else(|| default_sender.to_string());
        if sender.is_empty()
            || sender.len() > SENDER_MAX
            || !sender.bytes().all(|b| b.is_ascii_graphic())
        {
            err(
                "sender",
                format!("{sender:?} must be 1–{SENDER_MAX} printable ASCII characters"),
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(RequestSpec {
            number: self.number.clone(),
            app: self.app.clone().expect("checked above"),
            caller_id: self.caller_id.clone(),
            ring_timeout_s,
            max_duration_s,
            not_before,
            expires,
            priority,
            service: self.service.unwrap_or_default(),
            max_attempts,
            retry_delay_s,
            user_data: self.user_data.clone(),
            sender,
            window: self.window.clone(),
        })
    }
}

/// Where a request stands. `queued → dialing → ringing → answered → completed`, or one of the
/// other final states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum RequestState {
    /// Waiting for its time and a free port.
    Queued,
    /// A port is seizing a channel and sending SETUP / INVITE.
    Dialing,
    /// The callee's phone rings.
    Ringing,
    /// The callee answered; the application runs.
    Answered,
    /// The application ran to its end.
    Completed,
    /// The last attempt failed with this Q.850 cause.
    Failed {
        /// The Q.850 cause value.
        cause: u8,
    },
    /// The last attempt found the callee busy (cause 17).
    Busy,
    /// The last attempt was not answered within the ring timeout.
    NoAnswer,
    /// Cancelled by the sender.
    Cancelled,
    /// Reached its expiry before completing.
    Expired,
    /// Refused by policy at dispatch time.
    Rejected,
    /// The daemon stopped during the last attempt and no attempt remained.
    Lost,
}

impl RequestState {
    /// Whether the request is finished: no further transition happens.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Queued | Self::Dialing | Self::Ringing | Self::Answered
        )
    }

    /// Whether an attempt is under way (the states a crash interrupts).
    pub fn in_call(self) -> bool {
        matches!(self, Self::Dialing | Self::Ringing | Self::Answered)
    }

    /// The state's name as on the wire (`no-answer`, `failed`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::Failed { .. } => "failed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
            Self::Lost => "lost",
        }
    }
}

/// Who ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HungUpBy {
    /// The callee hung up.
    Callee,
    /// outcall hung up (application end, max duration, ring timeout, shutdown).
    Outcall,
    /// The network cleared the call (busy, unallocated, congestion, alarm).
    Network,
    /// Unknown: the daemon stopped during the call.
    Unknown,
}

/// One dial attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub n: u32,
    /// The port dialled, e.g. `span1/3` or `trunk1/0`.
    pub port: Option<String>,
    /// When dialling started.
    pub started_at: UnixMillis,
    /// When the callee answered.
    pub answered_at: Option<UnixMillis>,
    /// When the call ended.
    pub ended_at: Option<UnixMillis>,
    /// The outcome, as a state name (`completed`, `busy`, `lost`, …).
    pub outcome: Option<String>,
    /// The Q.850 cause of the clearing.
    pub cause: Option<u8>,
    /// Who hung up.
    pub hung_up_by: Option<HungUpBy>,
    /// DTMF digits the callee pressed, in order.
    pub digits: String,
    /// Values the application submitted (`<submit>` namelist or `<exit>` values).
    pub submitted: Option<serde_json::Value>,
}

impl Attempt {
    /// Attempt number `n`, started at `started_at` on `port`; nothing else known yet.
    pub fn start(n: u32, port: Option<String>, started_at: UnixMillis) -> Attempt {
        Attempt {
            n,
            port,
            started_at,
            answered_at: None,
            ended_at: None,
            outcome: None,
            cause: None,
            hung_up_by: None,
            digits: String::new(),
            submitted: None,
        }
    }
}

/// The stored record of a request. Serialised with a version tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Record format version (1).
    pub v: u32,
    /// The id.
    pub id: RequestId,
    /// The validated request.
    pub spec: RequestSpec,
    /// Where it stands.
    #[serde(flatten)]
    pub state: RequestState,
    /// Next time it may be dialled (queued requests only).
    pub due_at: UnixMillis,
    /// Submission time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
    /// The submitting peer's uid.
    pub uid: u32,
    /// One entry per attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

impl RequestRecord {
    /// The current record format version.
    pub const VERSION: u32 = 1;

    /// A new queued record.
    pub fn new(id: RequestId, spec: RequestSpec, uid: u32, now: UnixMillis) -> Self {
        let due_at = spec.not_before.map_or(now, |nb| nb.max(now));
        RequestRecord {
            v: Self::VERSION,
            id,
            spec,
            state: RequestState::Queued,
            due_at,
            created_at: now,
            updated_at: now,
            uid,
            attempts: Vec::new(),
        }
    }

    /// Attempts left after those made.
    pub fn attempts_left(&self) -> u32 {
        self.spec
            .max_attempts
            .saturating_sub(self.attempts.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(json: &str) -> Submit {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn minimal_request_gets_the_defaults() {
        let s = submit(r#"{"number":"+15551234567","app":{"say":{"text":"hi","collect":1}}}"#);
        let spec = s.validate("alice").unwrap();
        assert_eq!(spec.ring_timeout_s, limits::RING_TIMEOUT_DEFAULT);
        assert_eq!(spec.max_attempts, limits::ATTEMPTS_DEFAULT);
        assert_eq!(spec.priority, 5);
        assert_eq!(spec.service, Service::Solitary);
        assert_eq!(spec.sender, "alice");
        assert_eq!(
            spec.app,
            App::Say {
                text: "hi".into(),
                collect: 1
            }
        );
    }

    #[test]
    fn every_bad_field_is_reported_with_its_value() {
        let s = submit(
            r#"{"number":"+1-555","app":{"vxml_url":"ftp://x"},"ring_timeout_s":1,
                "priority":12,"max_attempts":0,"not_before":"tomorrow","caller_id":"abc",
                "user_data":{"k":"v"},"sender":"has space"}"#,
        );
        let errs = s.validate("x").unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "number",
            "caller_id",
            "app.vxml_url",
            "ring_timeout_s",
            "priority",
            "max_attempts",
            "not_before",
            "sender",
        ] {
            assert!(fields.contains(&f), "{f} missing from {errs:?}");
        }
        let number = errs.iter().find(|e| e.field == "number").unwrap();
        assert!(number.message.contains("+1-555"), "{number}");
        assert!(errs.iter().any(|e| e.message.contains("ftp://x")));
    }

    #[test]
    fn unknown_fields_and_missing_app_are_refused() {
        assert!(serde_json::from_str::<Submit>(r#"{"number":"1","colour":"red"}"#).is_err());
        let errs = submit(r#"{"number":"123"}"#).validate("x").unwrap_err();
        assert_eq!(errs[0].field, "app");
    }

    #[test]
    fn number_limits() {
        assert!(check_number("n", "+123456789012345").is_ok());
        assert!(check_number("n", "+1234567890123456").is_err());
        assert!(check_number("n", "").is_err());
        assert!(check_number("n", "+").is_err());
        assert!(check_number("n", "5551234").is_ok());
    }

    #[test]
    fn expiry_must_follow_not_before() {
        let s = submit(
            r#"{"number":"1","app":{"say":{"text":"x"}},"not_before":"2026-11-24T15:00:00Z",
                "expires":"2026-11-24T14:00:00Z"}"#,
        );
        let errs = s.validate("x").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "expires");
    }

    #[test]
    fn record_round_trips_with_flattened_state() {
        let spec = submit(r#"{"number":"1","app":{"vxml":"<vxml/>"}}"#)
            .validate("x")
            .unwrap();
        let mut r = RequestRecord::new(RequestId(7), spec, 1000, UnixMillis(5));
        r.state = RequestState::Failed { cause: 34 };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["state"], "failed");
        assert_eq!(j["cause"], 34);
        let back: RequestRecord = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
    }
}
