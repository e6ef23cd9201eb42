//! Per-source token buckets: a flood from one address is dropped before parsing (issue 7 §6),
//! while other sources keep being served. Time is injected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Limits for one source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages accepted in a burst.
    pub burst: u32,
    /// Sustained messages per second.
    pub per_second: u32,
    /// Most sources tracked at once; beyond it, sources with full buckets are forgotten.
    pub max_sources: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 200,
            per_second: 100,
            max_sources: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

/// Token buckets keyed by source IP.
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    trusted: Vec<IpAddr>,
}

impl Limiter {
    /// A limiter with these limits.
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: HashMap::new(),
            trusted: Vec::new(),
        }
    }

    /// Exempts `ip` (a trunk's own proxy, whose traffic is all our calls) from limiting.
    pub fn trust(&mut self, ip: IpAddr) {
        if !self.trusted.contains(&ip) {
            self.trusted.push(ip);
        }
    }

    /// Whether a message from `ip` at `now` may be processed (and takes a token if so).
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.trusted.contains(&ip) {
            return true;
        }
        let limit = self.limit;
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= limit.max_sources {
            let rate = f64::from(limit.per_second);
            let burst = f64::from(limit.burst);
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if self.buckets.len() >= limit.max_sources {
                return false; // every tracked source is flooding: refuse newcomers too
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at: now,
            dropped: 0,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * f64::from(limit.per_second)).min(f64::from(limit.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.dropped += 1;
            if b.dropped.is_power_of_two() {
                tracing::warn!(%ip, dropped = b.dropped, "SIP flood: dropping messages");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testkit::epoch;
    use std::time::Duration;

    #[test]
    fn burst_then_sustained_rate_per_source() {
        let t0 = epoch();
        let mut l = Limiter::new(RateLimit {
            burst: 10,
            per_second: 5,
            max_sources: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let ok = (0..15).filter(|_| l.allow(t0, a)).count();
        assert_eq!(ok, 10, "burst");
        assert_eq!(
            (0..10).filter(|_| l.allow(t0, b)).count(),
            10,
            "another source is unaffected"
        );
        // 1 s later: 5 more tokens for a.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| l.allow(t1, a)).count(), 5);
        // Table full (a flooding, b idle but half refilled): c refused until b's bucket is full.
        assert!(!l.allow(t1, c));
        let t2 = t1 + Duration::from_secs(1);
        assert!(l.allow(t2, c), "b's full bucket was forgotten to make room");
        let proxy: IpAddr = "198.51.100.7".parse().unwrap();
        l.trust(proxy);
        assert_eq!(
            (0..1000).filter(|_| l.allow(t2, proxy)).count(),
            1000,
            "trusted: unlimited"
        );
    }
}
