//! SIP final status → Q.850 cause value (RFC 3398 §8.2.6.1), so a SIP attempt is recorded with
//! the same causes as a PRI one. Plain numbers until `outcall-port`'s `Cause` enum exists.

use crate::endpoint::EndReason;

/// Q.850 16: normal call clearing.
pub const NORMAL_CLEARING: u8 = 16;
/// Q.850 18: no user responding.
pub const NO_USER_RESPONDING: u8 = 18;
/// Q.850 19: no answer from user (user alerted).
pub const NO_ANSWER: u8 = 19;
/// Q.850 21: call rejected.
pub const CALL_REJECTED: u8 = 21;
/// Q.850 38: network out of order.
pub const NETWORK_OUT_OF_ORDER: u8 = 38;
/// Q.850 41: temporary failure.
pub const TEMPORARY_FAILURE: u8 = 41;
/// Q.850 102: recovery on timer expiry.
pub const TIMER_EXPIRY: u8 = 102;
/// Q.850 127: interworking, unspecified.
pub const INTERWORKING: u8 = 127;

/// The Q.850 cause for a SIP final response status, per the RFC 3398 §8.2.6.1 table; codes it
/// does not list fall back by class (3xx/4xx: 127 interworking, 5xx: 41, 6xx: 21).
#[must_use]
pub fn status_to_q850(status: u16) -> u8 {
    match status {
        400 | 481 | 500 | 503 => TEMPORARY_FAILURE,
        401 | 402 | 403 | 407 | 603 => CALL_REJECTED,
        404 | 485 | 604 => 1,
        405 => 63,
        406 | 415 | 501 => 79,
        408 | 504 => TIMER_EXPIRY,
        410 => 22,
        414 | 484 => 28,
        480 => NO_USER_RESPONDING,
        482 | 483 => 25,
        486 | 600 => 17,
        502 => NETWORK_OUT_OF_ORDER,
        606 => 58,
        505 | 513 => INTERWORKING,
        500..=599 => TEMPORARY_FAILURE,
        600..=699 => CALL_REJECTED,
        _ => INTERWORKING,
    }
}

impl EndReason {
    /// The Q.850 cause to record for this end. `alerted`: the callee was ringing (so a
    /// cancelled call is "no answer", 19, rather than "no user responding", 18).
    #[must_use]
    pub fn q850(&self, alerted: bool) -> u8 {
        match self {
            EndReason::Rejected(code) => status_to_q850(*code),
            EndReason::Timeout => TIMER_EXPIRY,
            EndReason::Cancelled if alerted => NO_ANSWER,
            EndReason::Cancelled => NO_USER_RESPONDING,
            EndReason::LocalHangup | EndReason::RemoteHangup | EndReason::RemoteCancelled => {
                NORMAL_CLEARING
            }
            EndReason::NoAck => TIMER_EXPIRY,
            EndReason::TransportError => NETWORK_OUT_OF_ORDER,
            EndReason::AuthFailed(_) => CALL_REJECTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3398_table() {
        // (SIP status, Q.850 cause) as listed in RFC 3398 §8.2.6.1.
        let table = [
            (400, 41),
            (401, 21),
            (402, 21),
            (403, 21),
            (404, 1),
            (405, 63),
            (406, 79),
            (407, 21),
            (408, 102),
            (410, 22),
            (413, 127),
            (414, 28),
            (415, 79),
            (416, 127),
            (420, 127),
            (421, 127),
            (423, 127),
            (480, 18),
            (481, 41),
            (482, 25),
            (483, 25),
            (484, 28),
            (485, 1),
            (486, 17),
            (488, 127),
            (500, 41),
            (501, 79),
            (502, 38),
            (503, 41),
            (504, 102),
            (505, 127),
            (513, 127),
            (600, 17),
            (603, 21),
            (604, 1),
            (606, 58),
        ];
        for (status, cause) in table {
            assert_eq!(status_to_q850(status), cause, "SIP {status}");
        }
        assert_eq!(status_to_q850(599), 41);
        assert_eq!(status_to_q850(699), 21);
        assert_eq!(status_to_q850(302), 127);
    }

    #[test]
    fn end_reasons() {
        assert_eq!(EndReason::Rejected(486).q850(true), 17);
        assert_eq!(EndReason::Cancelled.q850(true), 19);
        assert_eq!(EndReason::Cancelled.q850(false), 18);
        assert_eq!(EndReason::RemoteHangup.q850(true), 16);
        assert_eq!(EndReason::Timeout.q850(false), 102);
    }
}
