//! Policy checks a request passes before it is stored: emergency numbers are always refused,
//! per-callee volume limits, and the queue's load limit.
//!
//! Pure functions over values: the service gathers the figures (queue length, recent attempts
//! to the number) and the policy decides.

use std::fmt;

/// Emergency short codes refused in every form, from the national numbering plans of the
/// countries outcall is deployed in (ITU-T E.161.1 and national plans).
pub const EMERGENCY_CODES: &[&str] = &[
    "911", "112", "999", "000", "110", "119", "118", "100", "101", "102", "108", "911", "933",
    "106", "117", "122", "190", "193",
];

/// Why policy refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The number is an emergency number.
    Emergency {
        /// The number as submitted.
        number: String,
    },
    /// The callee was already called too often in the last 24 hours.
    CalleeLimit {
        /// The number.
        number: String,
        /// Attempts in the window.
        recent: u32,
        /// The limit.
        limit: u32,
    },
    /// The queue is full.
    QueueFull {
        /// Requests queued.
        queued: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Emergency { number } => {
                write!(
                    f,
                    "{number:?} is an emergency number: outcall never calls one"
                )
            }
            Refusal::CalleeLimit {
                number,
                recent,
                limit,
            } => write!(
                f,
                "{number:?} already has {recent} attempts in the last 24 h (limit {limit})"
            ),
            Refusal::QueueFull { queued, limit } => {
                write!(
                    f,
                    "{queued} requests are queued, the limit is {limit}: try later"
                )
            }
        }
    }
}

/// Whether `number` reaches an emergency service: the code itself, the code behind a one-digit
/// trunk or PBX prefix (`9911`, `0112`), or the code behind a country code (`+1911`, `+44999`).
pub fn is_emergency(number: &str, extra: &[String]) -> bool {
    let codes = EMERGENCY_CODES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str));
    let (intl, digits) = match number.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, number),
    };
    codes.into_iter().any(|code| {
        if intl {
            // +CC CODE with a 1–3 digit country code
            (1..=3).any(|cc| digits.len() == cc + code.len() && digits.ends_with(code))
        } else {
            digits == code || (digits.len() == code.len() + 1 && digits.ends_with(code))
        }
    })
}

/// Checks a request's number and the load against the limits.
pub fn check(
    number: &str,
    extra_emergency: &[String],
    recent_attempts: u32,
    per_callee_per_day: u32,
    queued: usize,
    max_queued: usize,
) -> Result<(), Refusal> {
    if is_emergency(number, extra_emergency) {
        return Err(Refusal::Emergency {
            number: number.into(),
        });
    }
    if per_callee_per_day > 0 && recent_attempts >= per_callee_per_day {
        return Err(Refusal::CalleeLimit {
            number: number.into(),
            recent: recent_attempts,
            limit: per_callee_per_day,
        });
    }
    if queued >= max_queued {
        return Err(Refusal::QueueFull {
            queued,
            limit: max_queued,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emergency_numbers_in_every_form_are_refused() {
        for n in [
            "911", "112", "999", "000", "9911", "0112", "+1911", "+44999", "+49112", "+353112",
        ] {
            assert!(is_emergency(n, &[]), "{n}");
        }
        for n in [
            "+15551234567",
            "5551234",
            "91100",
            "+19115551234",
            "1121",
            "+4411200",
        ] {
            assert!(!is_emergency(n, &[]), "{n}");
        }
        assert!(is_emergency("5555", &["5555".into()]));
    }

    #[test]
    fn limits() {
        assert!(check("+15551234567", &[], 2, 3, 0, 10).is_ok());
        let e = check("+15551234567", &[], 3, 3, 0, 10).unwrap_err();
        assert!(e.to_string().contains("+15551234567") && e.to_string().contains("limit 3"));
        assert!(matches!(
            check("1", &[], 0, 3, 10, 10),
            Err(Refusal::QueueFull { .. })
        ));
        assert!(matches!(
            check("911", &[], 0, 0, 0, 10),
            Err(Refusal::Emergency { .. })
        ));
        assert!(
            check("1", &[], 100, 0, 0, 10).is_ok(),
            "0 disables the callee limit"
        );
    }
}
