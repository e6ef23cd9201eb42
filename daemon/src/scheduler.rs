//! Scheduling rules, sans-IO: the order in which due requests are dialled, and what an
//! attempt's outcome does to its request (retry after the request's delay, or a final state).
//!
//! Order: priority (9 first), then level of service (solitary before bulk), then the time the
//! request became due, then arrival (id). Retries: busy (17), no answer (18, 19, or our ring
//! timeout) and network congestion (34, 38, 41, 42, 44, 47) are retried after `retry_delay_s`
//! while attempts remain; numbering errors (1, 3, 22, 28) and a call rejection (21) are final
//! at once; an answered call is final whatever ended it.

use crate::request::{RequestRecord, RequestState};
use crate::time::UnixMillis;
use std::cmp::Reverse;

/// Sorts due requests into dial order.
pub fn order(due: &mut [RequestRecord]) {
    due.sort_by_key(|r| (Reverse(r.spec.priority), r.spec.service, r.due_at, r.id));
}

/// How an attempt ended, as the dispatcher saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call was answered and the application ran to its end (or the callee hung up).
    Answered,
    /// Our ring timeout expired before an answer.
    RingTimeout,
    /// The network cleared the call before answer with this Q.850 cause.
    Cleared(u8),
    /// The daemon stopped during the attempt.
    Lost,
}

/// What happens to the request after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Next {
    /// The request's new state.
    pub state: RequestState,
    /// For `Queued`: when it is due again.
    pub due_at: UnixMillis,
    /// The attempt's outcome name for the record.
    pub outcome: &'static str,
}

/// Whether a pre-answer cause is worth another attempt.
pub fn retryable(cause: u8) -> bool {
    matches!(cause, 17 | 18 | 19 | 34 | 38 | 41 | 42 | 44 | 47 | 102)
}

/// Decides what follows an attempt. `rec.attempts` already includes the attempt just made.
pub fn after_attempt(rec: &RequestRecord, outcome: Outcome, now: UnixMillis) -> Next {
    let (final_state, outcome_name) = match outcome {
        Outcome::Answered => {
            return Next {
                state: RequestState::Completed,
                due_at: now,
                outcome: "completed",
            }
        }
        Outcome::RingTimeout | Outcome::Cleared(18 | 19) => (RequestState::NoAnswer, "no-answer"),
        Outcome::Cleared(17) => (RequestState::Busy, "busy"),
        Outcome::Cleared(c) => (RequestState::Failed { cause: c }, "failed"),
        Outcome::Lost => (RequestState::Lost, "lost"),
    };
    let retry = match outcome {
        Outcome::RingTimeout | Outcome::Lost => true,
        Outcome::Cleared(c) => retryable(c),
        Outcome::Answered => false,
    };
    let due_at = now.plus_secs(rec.spec.retry_delay_s as u64);
    if retry && rec.attempts_left() > 0 {
        if rec.spec.expires.is_some_and(|ex| due_at >= ex) {
            return Next {
                state: RequestState::Expired,
                due_at,
                outcome: outcome_name,
            };
        }
        return Next {
            state: RequestState::Queued,
            due_at,
            outcome: outcome_name,
        };
    }
    Next {
        state: final_state,
        due_at: now,
        outcome: outcome_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Attempt, RequestId, Service, Submit};

    fn rec(id: u64, priority: u8, service: Service, due: u64, attempts: u32) -> RequestRecord {
        let spec = Submit {
            number: "+15551234567".into(),
            app: Some(crate::request::App::Say {
                text: "x".into(),
                collect: 0,
            }),
            priority: Some(priority),
            service: Some(service),
            max_attempts: Some(attempts),
            retry_delay_s: Some(60),
            ..Default::default()
        }
        .validate("t")
        .unwrap();
        let mut r = RequestRecord::new(RequestId(id), spec, 0, UnixMillis(0));
        r.due_at = UnixMillis(due);
        r
    }

    fn attempt(r: &mut RequestRecord) {
        r.attempts.push(Attempt::start(
            r.attempts.len() as u32 + 1,
            None,
            UnixMillis(0),
        ));
    }

    #[test]
    fn dial_order_priority_service_due_arrival() {
        let mut v = vec![
            rec(1, 5, Service::Bulk, 0, 1),
            rec(2, 5, Service::Solitary, 10, 1),
            rec(3, 9, Service::Bulk, 50, 1),
            rec(4, 5, Service::Solitary, 5, 1),
            rec(5, 5, Service::Solitary, 5, 1),
            rec(6, 0, Service::Solitary, 0, 1),
        ];
        order(&mut v);
        let ids: Vec<u64> = v.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, vec![3, 4, 5, 2, 1, 6]);
    }

    #[test]
    fn retries_and_final_states() {
        let now = UnixMillis(1_000);
        let mut r = rec(1, 5, Service::Solitary, 0, 2);
        attempt(&mut r);
        let cases = [
            (Outcome::Cleared(17), RequestState::Queued, "busy"),
            (Outcome::RingTimeout, RequestState::Queued, "no-answer"),
            (Outcome::Cleared(34), RequestState::Queued, "failed"),
            (
                Outcome::Cleared(1),
                RequestState::Failed { cause: 1 },
                "failed",
            ),
            (
                Outcome::Cleared(21),
                RequestState::Failed { cause: 21 },
                "failed",
            ),
            (Outcome::Answered, RequestState::Completed, "completed"),
            (Outcome::Lost, RequestState::Queued, "lost"),
        ];
        for (o, state, name) in cases {
            let n = after_attempt(&r, o, now);
            assert_eq!((n.state, n.outcome), (state, name), "{o:?}");
            if state == RequestState::Queued {
                assert_eq!(n.due_at, UnixMillis(61_000), "{o:?}: retry delay");
            }
        }
        attempt(&mut r); // the last attempt
        assert_eq!(
            after_attempt(&r, Outcome::Cleared(17), now).state,
            RequestState::Busy
        );
        assert_eq!(
            after_attempt(&r, Outcome::RingTimeout, now).state,
            RequestState::NoAnswer
        );
        assert_eq!(
            after_attempt(&r, Outcome::Cleared(34), now).state,
            RequestState::Failed { cause: 34 }
        );
        assert_eq!(
            after_attempt(&r, Outcome::Lost, now).state,
            RequestState::Lost
        );
    }

    #[test]
    fn a_retry_past_expiry_expires() {
        let mut r = rec(1, 5, Service::Solitary, 0, 3);
        r.spec.expires = Some(UnixMillis(30_000));
        attempt(&mut r);
        assert_eq!(
            after_attempt(&r, Outcome::Cleared(17), UnixMillis(1_000)).state,
            RequestState::Expired
        );
    }
}
