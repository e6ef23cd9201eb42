//! The port model every outcall telephony driver speaks.
//!
//! A *port* is one bidirectional call slot: a B-channel of an ISDN PRI span (DAHDI hardware or
//! softspan) or a channel of a SIP trunk. Each driver exposes its ports through the same small
//! surface, so the daemon never knows which kind it drives: [`PortCommand`]s in,
//! [`PortEvent`]s out, Q.850 [`Cause`]s, and [`AudioFrame`]s of 20 ms (160 samples at 8 kHz).
#![forbid(unsafe_code)]

use std::fmt;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// 20 ms of 8 kHz 16-bit linear audio.
pub type AudioFrame = [i16; FRAME_SAMPLES];

/// A span (or trunk) of a driver: its index in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u16);

/// A port: the span and the 1-based B-channel (or trunk slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId {
    /// The span.
    pub span: SpanId,
    /// B-channel number, 1-based.
    pub channel: u16,
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.span.0, self.channel)
    }
}

/// Which call on a port an event or command is about: after a collision (glare) a channel may
/// briefly carry our abandoned SETUP and the network's winning call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallDir {
    /// Our call (we sent SETUP / INVITE).
    Outbound,
    /// The network's call (we received SETUP / INVITE).
    Inbound,
}

/// A Q.850 cause value. Named constants cover the values outcall acts on; any other value
/// received from the network is kept as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cause(pub u8);

impl Cause {
    /// 1: unallocated (unassigned) number.
    pub const UNALLOCATED: Cause = Cause(1);
    /// 3: no route to destination.
    pub const NO_ROUTE_DESTINATION: Cause = Cause(3);
    /// 16: normal call clearing.
    pub const NORMAL_CLEARING: Cause = Cause(16);
    /// 17: user busy.
    pub const USER_BUSY: Cause = Cause(17);
    /// 18: no user responding.
    pub const NO_USER_RESPONSE: Cause = Cause(18);
    /// 19: no answer from user (user alerted).
    pub const NO_ANSWER: Cause = Cause(19);
    /// 21: call rejected.
    pub const CALL_REJECTED: Cause = Cause(21);
    /// 27: destination out of order.
    pub const DESTINATION_OUT_OF_ORDER: Cause = Cause(27);
    /// 28: invalid number format.
    pub const INVALID_NUMBER_FORMAT: Cause = Cause(28);
    /// 31: normal, unspecified.
    pub const NORMAL_UNSPECIFIED: Cause = Cause(31);
    /// 34: no circuit/channel available.
    pub const NO_CIRCUIT_AVAILABLE: Cause = Cause(34);
    /// 38: network out of order.
    pub const NETWORK_OUT_OF_ORDER: Cause = Cause(38);
    /// 41: temporary failure.
    pub const TEMPORARY_FAILURE: Cause = Cause(41);
    /// 42: switching equipment congestion.
    pub const SWITCH_CONGESTION: Cause = Cause(42);
    /// 44: requested circuit/channel not available.
    pub const REQUESTED_CHAN_UNAVAIL: Cause = Cause(44);
    /// 102: recovery on timer expiry.
    pub const RECOVERY_ON_TIMER_EXPIRE: Cause = Cause(102);

    /// The Q.850 name of the cause, or "unknown".
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "unallocated number",
            3 => "no route to destination",
            16 => "normal call clearing",
            17 => "user busy",
            18 => "no user responding",
            19 => "no answer from user",
            21 => "call rejected",
            27 => "destination out of order",
            28 => "invalid number format",
            31 => "normal, unspecified",
            34 => "no circuit/channel available",
            38 => "network out of order",
            41 => "temporary failure",
            42 => "switching equipment congestion",
            44 => "requested circuit/channel not available",
            102 => "recovery on timer expiry",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// What the daemon asks of a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortCommand {
    /// Seize the channel and place a call.
    Dial {
        /// Called number.
        called: String,
        /// Calling number, if presented.
        calling: Option<String>,
    },
    /// Answer the incoming call.
    Answer,
    /// Refuse the incoming call.
    Reject(Cause),
    /// Clear a call.
    Hangup(CallDir, Cause),
}

/// What a port reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortEvent {
    /// The network offers a call.
    Incoming {
        /// Called number (DNIS).
        dnis: String,
        /// Calling number (ANI), empty if withheld.
        ani: String,
    },
    /// CALL PROCEEDING for our call.
    Proceeding,
    /// ALERTING: the callee's phone rings.
    Alerting,
    /// CONNECT: answered (ours), or our answer was acknowledged (theirs).
    Connected,
    /// A call was cleared.
    Hangup(CallDir, Cause),
}

/// A span-level event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanEvent {
    /// The D-channel (or trunk) is up: calls may be placed.
    Up,
    /// The D-channel went down; every call on the span has ended.
    Down,
    /// The network restarted the span or a channel (Q.931 RESTART).
    Restart(Option<u16>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_keep_unknown_values_and_name_known_ones() {
        assert_eq!(Cause(17), Cause::USER_BUSY);
        assert_eq!(Cause::USER_BUSY.to_string(), "17 (user busy)");
        assert_eq!(Cause(99).name(), "unknown");
        assert_eq!(
            PortId {
                span: SpanId(2),
                channel: 23
            }
            .to_string(),
            "2/23"
        );
    }
}
