//! RFC 3261 transaction timers (§17, Table 4 of appendix A) and the [`TimerTable`] that holds
//! their deadlines (quinn `timer.rs` style: one slot per timer, the earliest is the next wake-up).

use std::time::{Duration, Instant};

/// RTT estimate, the base of every transaction timer (RFC 3261 §17.1.1.1).
pub const T1: Duration = Duration::from_millis(500);
/// Maximum retransmit interval for non-INVITE requests and INVITE responses (RFC 3261 §17.1.2.2).
pub const T2: Duration = Duration::from_secs(4);
/// Maximum duration a message remains in the network (RFC 3261 §17.1.2.2).
pub const T4: Duration = Duration::from_secs(5);
/// Timer D's floor for unreliable transports: "at least 32 seconds" (RFC 3261 §17.1.1.2).
pub const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

/// The transaction timers. C (proxy only) is not used by a user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, UDP only (§17.1.1.2): T1, doubling.
    A,
    /// INVITE transaction timeout (§17.1.1.2): 64*T1.
    B,
    /// Wait for response retransmits in ICT Completed (§17.1.1.2): >32 s UDP, 0 reliable.
    D,
    /// Non-INVITE request retransmit interval, UDP only (§17.1.2.2): T1, doubling to T2.
    E,
    /// Non-INVITE transaction timeout (§17.1.2.2): 64*T1.
    F,
    /// INVITE final response retransmit interval (§17.2.1): T1, doubling to T2.
    G,
    /// Wait for ACK receipt (§17.2.1): 64*T1.
    H,
    /// Wait for ACK retransmits in IST Confirmed (§17.2.1): T4 UDP, 0 reliable.
    I,
    /// Wait for non-INVITE request retransmits (§17.2.2): 64*T1 UDP, 0 reliable.
    J,
    /// Wait for non-INVITE response retransmits (§17.1.2.2): T4 UDP, 0 reliable.
    K,
    /// Wait for INVITE retransmits in IST Accepted (RFC 6026 §8.7): 64*T1.
    L,
    /// Wait for 2xx retransmits in ICT Accepted (RFC 6026 §8.4): 64*T1.
    M,
}

impl Timer {
    const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|t| *t == self)
            .expect("ALL lists every timer")
    }
}

/// Timer values for one transaction: T1/T2/T4 and whether the transport is reliable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default [`T1`]).
    pub t1: Duration,
    /// Retransmit cap (default [`T2`]).
    pub t2: Duration,
    /// Network lifetime (default [`T4`]).
    pub t4: Duration,
    /// TCP/TLS/SCTP: no retransmissions, and timers D, I, J, K are zero (RFC 3261 §17).
    pub reliable: bool,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self::unreliable()
    }
}

impl TimerConfig {
    /// RFC defaults over UDP.
    #[must_use]
    pub const fn unreliable() -> Self {
        Self {
            t1: T1,
            t2: T2,
            t4: T4,
            reliable: false,
        }
    }

    /// RFC defaults over TCP/TLS.
    #[must_use]
    pub const fn reliable() -> Self {
        Self {
            t1: T1,
            t2: T2,
            t4: T4,
            reliable: true,
        }
    }

    /// 64*T1: timers B, F, H, L, M and J over UDP.
    #[must_use]
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s (and at least 64*T1 when T1 was raised) for UDP, 0 reliable.
    #[must_use]
    pub fn timer_d(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            TIMER_D_UNRELIABLE.max(self.t1x64())
        }
    }

    /// Timer I: T4 for UDP, 0 reliable.
    #[must_use]
    pub fn timer_i(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 for UDP, 0 reliable.
    #[must_use]
    pub fn timer_j(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.t1x64()
        }
    }

    /// Timer K: T4 for UDP, 0 reliable.
    #[must_use]
    pub fn timer_k(&self) -> Duration {
        self.timer_i()
    }
}

/// Deadlines of the running timers of one state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    slots: [Option<Instant>; 12],
}

impl TimerTable {
    /// Arms `timer` to fire at `at` (replacing any previous deadline).
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.slots[timer.index()] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.slots = [None; 12];
    }

    /// The deadline of `timer`, if armed.
    #[must_use]
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer.index()]
    }

    /// The earliest deadline of all armed timers.
    #[must_use]
    pub fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (i, _) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.filter(|at| *at <= now).map(|at| (i, at)))
            .min_by_key(|(i, at)| (*at, *i))?;
        self.slots[i] = None;
        Some(Timer::ALL[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_values_unreliable_and_reliable() {
        let u = TimerConfig::unreliable();
        let r = TimerConfig::reliable();
        // (timer, UDP value, TCP value) from RFC 3261 appendix A, Table 4.
        let table: [(&str, Duration, Duration, Duration, Duration); 5] = [
            (
                "64*T1 (B,F,H)",
                u.t1x64(),
                Duration::from_secs(32),
                r.t1x64(),
                Duration::from_secs(32),
            ),
            (
                "D",
                u.timer_d(),
                Duration::from_secs(32),
                r.timer_d(),
                Duration::ZERO,
            ),
            (
                "I",
                u.timer_i(),
                Duration::from_secs(5),
                r.timer_i(),
                Duration::ZERO,
            ),
            (
                "J",
                u.timer_j(),
                Duration::from_secs(32),
                r.timer_j(),
                Duration::ZERO,
            ),
            (
                "K",
                u.timer_k(),
                Duration::from_secs(5),
                r.timer_k(),
                Duration::ZERO,
            ),
        ];
        for (name, got_u, want_u, got_r, want_r) in table {
            assert_eq!(got_u, want_u, "{name} over UDP");
            assert_eq!(got_r, want_r, "{name} over TCP");
        }
        let slow = TimerConfig {
            t1: Duration::from_secs(1),
            ..u
        };
        assert_eq!(
            slow.timer_d(),
            Duration::from_secs(64),
            "D >= 64*T1 when T1 is raised"
        );
    }

    #[test]
    fn table_pops_earliest_first() {
        #[allow(clippy::disallowed_methods)] // a test needs an origin; time then moves by offsets
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::B, t0 + Duration::from_secs(32));
        t.set(Timer::A, t0 + Duration::from_millis(500));
        assert_eq!(t.next_timeout(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(t.pop_expired(t0), None);
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), Some(Timer::A));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), Some(Timer::B));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(40)), None);
        t.set(Timer::K, t0);
        t.stop(Timer::K);
        assert_eq!(t.get(Timer::K), None);
    }
}
