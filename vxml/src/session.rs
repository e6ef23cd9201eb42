//! Session variables (VoiceXML 2.0 §5.1.4) and how a call request maps onto them.

use serde_json::{json, Value};

/// The telephony protocol of the call, `session.connection.protocol.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// ISDN PRI (Q.931).
    #[default]
    Isdn,
    /// SIP.
    Sip,
}

/// One entry of `session.connection.redirect` (an ISDN redirecting number or a SIP
/// History-Info/Diversion entry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    /// `uri`.
    pub uri: String,
    /// `pi`: presentation indicator.
    pub pi: Option<u8>,
    /// `si`: screening indicator.
    pub si: Option<u8>,
    /// `reason`: e.g. "unconditional", "busy", "no reply".
    pub reason: Option<String>,
}

/// What the session knows about the call and the request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionInfo {
    /// `session.connection.local.uri`: our side (the calling number for outbound calls).
    pub local_uri: String,
    /// `session.connection.remote.uri`: the callee (outbound) or caller (inbound).
    pub remote_uri: String,
    /// `session.connection.protocol.name`.
    pub protocol: Protocol,
    /// `session.connection.redirect`.
    pub redirect: Vec<Redirect>,
    /// `session.connection.aai`: user-to-user information from the network.
    pub aai: Option<String>,
    /// `session.connection.originator`: "local" for outbound calls, "remote" for inbound.
    pub outbound: bool,
    /// `session.outcall.request`: the request id.
    pub request_id: Option<String>,
    /// `session.outcall.user`: the request's user data (any JSON).
    pub user_data: Value,
}

impl SessionInfo {
    /// The session scope variables as JSON (`connection`, `outcall`).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let proto = match self.protocol {
            Protocol::Isdn => "isdn",
            Protocol::Sip => "sip",
        };
        let version = match self.protocol {
            Protocol::Isdn => "q931",
            Protocol::Sip => "2.0",
        };
        let redirect: Vec<Value> = self
            .redirect
            .iter()
            .map(|r| json!({"uri": r.uri, "pi": r.pi, "si": r.si, "reason": r.reason}))
            .collect();
        json!({
            "connection": {
                "local": {"uri": self.local_uri},
                "remote": {"uri": self.remote_uri},
                "protocol": {"name": proto, "version": version, proto: {}},
                "redirect": redirect,
                "aai": self.aai,
                "originator": if self.outbound { "local" } else { "remote" },
            },
            "outcall": {"request": self.request_id, "user": self.user_data},
        })
    }
}
