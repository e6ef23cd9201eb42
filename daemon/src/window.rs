//! Calling windows in the callee's local time: "call between 08:00 and 21:00 America/Chicago".
//!
//! A window is checked when a request is due; outside it, the request's due time moves to the
//! window's next opening. Times are wall-clock values ([`UnixMillis`]); the zone rules come from
//! the system's tz database (Debian `tzdata`).

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// A daily window, `from` inclusive to `to` exclusive, in a time zone. `from` > `to` spans
/// midnight (e.g. 22:00–06:00 for night-shift wake-up calls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Opening time, `HH:MM`.
    pub from: String,
    /// Closing time, `HH:MM`.
    pub to: String,
    /// IANA time zone, e.g. `America/Chicago`.
    pub tz: String,
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl Window {
    /// Checks the window; the message names the offending value.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [("from", &self.from), ("to", &self.to)] {
            if minutes(v).is_none() {
                return Err(format!("{k}: {v:?} is not a time like 08:00"));
            }
        }
        if self.from == self.to {
            return Err(format!(
                "from and to are both {:?}: an empty window",
                self.from
            ));
        }
        jiff::tz::TimeZone::get(&self.tz)
            .map(|_| ())
            .map_err(|e| format!("tz: {:?} is not a known time zone: {e}", self.tz))
    }

    /// The earliest instant at or after `t` inside the window.
    pub fn next_open(&self, t: UnixMillis) -> UnixMillis {
        let (Some(from), Some(to), Ok(tz)) = (
            minutes(&self.from),
            minutes(&self.to),
            jiff::tz::TimeZone::get(&self.tz),
        ) else {
            return t; // validated on submission; an unusable window does not block the call
        };
        let Ok(ts) = jiff::Timestamp::from_millisecond(t.0 as i64) else {
            return t;
        };
        let local = ts.to_zoned_datetime(tz.clone());
        let now_min = local.hour() as u32 * 60 + local.minute() as u32;
        let inside = if from < to {
            now_min >= from && now_min < to
        } else {
            now_min >= from || now_min < to
        };
        if inside {
            return t;
        }
        // The next opening: today at `from` if still ahead, else tomorrow.
        let date = local.date();
        let opening = |d: jiff::civil::Date| {
            d.at((from / 60) as i8, (from % 60) as i8, 0, 0)
                .to_zoned_datetime(tz.clone())
                .ok()
                .map(|z| UnixMillis(z.timestamp().as_millisecond().max(0) as u64))
        };
        let today = opening(date).filter(|o| *o > t);
        today
            .or_else(|| date.tomorrow().ok().and_then(opening))
            .unwrap_or(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn w(from: &str, to: &str, tz: &str) -> Window {
        Window {
            from: from.into(),
            to: to.into(),
            tz: tz.into(),
        }
    }

    fn at(s: &str) -> UnixMillis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn inside_is_now_and_outside_moves_to_the_next_opening() {
        let chicago = w("08:00", "21:00", "America/Chicago");
        // 2026-11-24 is CST (UTC-6): 15:00Z is 09:00 local.
        assert_eq!(
            chicago.next_open(at("2026-11-24T15:00:00Z")),
            at("2026-11-24T15:00:00Z")
        );
        // 05:00 local -> 08:00 local the same day.
        assert_eq!(
            chicago.next_open(at("2026-11-24T11:00:00Z")),
            at("2026-11-24T14:00:00Z")
        );
        // 22:00 local -> 08:00 local the next day.
        assert_eq!(
            chicago.next_open(at("2026-11-25T04:00:00Z")),
            at("2026-11-25T14:00:00Z")
        );
        // 21:00 exactly is closed.
        assert_eq!(
            chicago.next_open(at("2026-11-25T03:00:00Z")),
            at("2026-11-25T14:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_is_the_zone_s_business() {
        // 2026-03-08 US DST starts: 08:00 CDT is 13:00Z, the day before 08:00 CST was 14:00Z.
        let chicago = w("08:00", "21:00", "America/Chicago");
        assert_eq!(
            chicago.next_open(at("2026-03-08T06:00:00Z")),
            at("2026-03-08T13:00:00Z")
        );
        assert_eq!(
            chicago.next_open(at("2026-03-07T06:00:00Z")),
            at("2026-03-07T14:00:00Z")
        );
    }

    #[test]
    fn a_window_across_midnight() {
        let night = w("22:00", "06:00", "Europe/Berlin");
        // 23:30 CET (22:30Z) is inside; 12:00 CET (11:00Z) waits for 22:00 CET (21:00Z).
        assert_eq!(
            night.next_open(at("2026-11-24T22:30:00Z")),
            at("2026-11-24T22:30:00Z")
        );
        assert_eq!(
            night.next_open(at("2026-11-24T04:00:00Z")),
            at("2026-11-24T04:00:00Z")
        );
        assert_eq!(
            night.next_open(at("2026-11-24T11:00:00Z")),
            at("2026-11-24T21:00:00Z")
        );
    }

    #[test]
    fn validation_names_the_value() {
        assert!(w("08:00", "21:00", "America/Chicago").validate().is_ok());
        assert!(w("8:00", "21:00", "UTC")
            .validate()
            .unwrap_err()
            .contains("\"8:00\""));
        assert!(w("08:00", "24:00", "UTC")
            .validate()
            .unwrap_err()
            .contains("24:00"));
        assert!(w("08:00", "08:00", "UTC").validate().is_err());
        assert!(w("08:00", "21:00", "Mars/Olympus")
            .validate()
            .unwrap_err()
            .contains("Mars/Olympus"));
    }
}
