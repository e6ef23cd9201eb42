use super::*;

fn setup(name: &str, channels: u16, hunting: Hunting) -> SpanSetup {
    SpanSetup {
        name: name.into(),
        channels,
        hunting,
        calls_per_second: 1000.0,
        guard: Duration::from_millis(500),
        inbound_reserve: 0,
    }
}

#[allow(clippy::disallowed_methods)] // tests own the clock: one real Instant as the origin
fn t0() -> Instant {
    Instant::now()
}

/// `now` plus `n` milliseconds: one dial per millisecond fits the tests' 1000 calls/s pacing.
fn ms(now: Instant, n: u64) -> Instant {
    now + Duration::from_millis(n)
}

fn up(spans: Vec<SpanSetup>, seed: u64, now: Instant) -> PortManager {
    let n = spans.len();
    let mut m = PortManager::new(spans, 0, seed, now);
    for i in 0..n {
        m.handle_span(i, true);
    }
    m
}

fn drain(m: &mut PortManager) -> Vec<Output> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

const R: RequestId = RequestId(7);

#[test]
fn hunting_orders() {
    let now = t0();
    for (h, want) in [
        (Hunting::Ascending, vec![1, 2, 3]),
        (Hunting::Descending, vec![3, 2, 1]),
        (Hunting::RoundRobin, vec![1, 2, 3]),
    ] {
        let mut m = up(vec![setup("a", 3, h)], 1, now);
        let got: Vec<u16> = (0..3)
            .map(|i| m.dial(ms(now, i), RequestId(i)).unwrap().channel)
            .collect();
        assert_eq!(got, want, "{h:?}");
        assert_eq!(m.dial(ms(now, 3), RequestId(9)), Err(NoPort::Busy));
    }
    // Round robin goes on after the last channel taken, not back to the lowest free one.
    let mut m = up(vec![setup("a", 3, Hunting::RoundRobin)], 1, now);
    let p1 = m.dial(now, RequestId(1)).unwrap();
    m.handle_released(now, p1, Direction::Outbound, 16);
    assert_eq!(m.dial(ms(now, 1), RequestId(2)).unwrap().channel, 2);
}

/// The table of orderings STYLE.md §3 asks for. Our SETUP goes out at `t0` on P1; the carrier's
/// SETUP for the same channel arrives `dt` later (negative: before we dial); the carrier also
/// clears our SETUP with cause 44 after `latency`, before or after its SETUP reaches us.
#[test]
fn glare_table() {
    let latency = Duration::from_millis(10);
    for dt_ms in [-5i64, 0, 1, 10] {
        for release_first in [false, true] {
            let case = format!("dt={dt_ms}ms release_first={release_first}");
            let start = t0();
            let mut m = up(
                vec![
                    setup("a", 1, Hunting::Descending),
                    setup("b", 1, Hunting::Descending),
                ],
                3,
                start,
            );
            if dt_ms < 0 {
                // The carrier's call arrives first: A/1 is inbound, so we dial B/1. No collision.
                let a1 = Port {
                    span: 0,
                    channel: 1,
                };
                m.handle_incoming(start, a1);
                let later = start + Duration::from_millis(5);
                let p = m.dial(later, R).unwrap();
                assert_ne!(p, a1, "{case}");
                assert_eq!(
                    drain(&mut m),
                    vec![
                        Output::Answer { port: a1 },
                        Output::Dial {
                            port: p,
                            request: R
                        }
                    ],
                    "{case}"
                );
                continue;
            }
            let p1 = m.dial(start, R).unwrap();
            assert_eq!(
                drain(&mut m),
                vec![Output::Dial {
                    port: p1,
                    request: R
                }]
            );
            let incoming_at = start + Duration::from_millis(dt_ms as u64);
            let release_at = start + latency;
            let mut outputs = Vec::new();
            let mut events = vec![(incoming_at, false), (release_at, true)];
            events.sort_by_key(|(t, is_release)| (*t, *is_release != release_first));
            let mut moved_at = None;
            for (t, is_release) in events {
                if is_release {
                    m.handle_released(t, p1, Direction::Outbound, CAUSE_CHANNEL_UNAVAILABLE);
                } else {
                    m.handle_incoming(t, p1);
                }
                let out = drain(&mut m);
                if moved_at.is_none() && out.iter().any(|o| matches!(o, Output::Moved { .. })) {
                    moved_at = Some(t);
                    // Re-dialled at the same `now` as the collision was seen, on the other port.
                    let dial = out.iter().find_map(|o| match o {
                        Output::Dial { port, request } => Some((*port, *request)),
                        _ => None,
                    });
                    let (p2, r) = dial.unwrap_or_else(|| panic!("{case}: no re-dial in {out:?}"));
                    assert_eq!(r, R, "{case}");
                    assert_ne!(p2, p1, "{case}");
                }
                outputs.extend(out);
            }
            assert!(moved_at.is_some(), "{case}: {outputs:?}");
            assert!(
                outputs.contains(&Output::Answer { port: p1 }),
                "{case}: inbound answered: {outputs:?}"
            );
            assert!(
                !outputs.iter().any(|o| matches!(o, Output::Ended { .. })),
                "{case}: a collision is not an attempt outcome: {outputs:?}"
            );
            assert_eq!(
                outputs
                    .iter()
                    .filter(|o| matches!(o, Output::Moved { .. }))
                    .count(),
                1,
                "{case}: moved once: {outputs:?}"
            );
            // The inbound call that won is still up on P1 and ends normally later.
            m.handle_released(release_at + latency, p1, Direction::Inbound, 16);
            assert!(drain(&mut m).is_empty(), "{case}");
        }
    }
}

#[test]
fn collision_with_no_other_port_requeues() {
    let now = t0();
    let mut m = up(vec![setup("a", 1, Hunting::Descending)], 1, now);
    let p = m.dial(now, R).unwrap();
    drain(&mut m);
    m.handle_incoming(now, p);
    assert_eq!(
        drain(&mut m),
        vec![
            Output::Abandon {
                port: p,
                request: R,
                cause: 44
            },
            Output::Answer { port: p },
            Output::Moved {
                request: R,
                from: p,
                to: None
            },
        ]
    );
}

#[test]
fn an_incoming_call_on_a_channel_in_progress_is_rejected() {
    let now = t0();
    let mut m = up(vec![setup("a", 1, Hunting::Descending)], 1, now);
    let p = m.dial(now, R).unwrap();
    m.handle_progress(p, Progress::Proceeding);
    drain(&mut m);
    m.handle_incoming(now, p);
    assert_eq!(drain(&mut m), vec![Output::Reject { port: p, cause: 44 }]);
    // A cause-44 release after PROCEEDING is an ordinary failure, not a collision.
    m.handle_released(now, p, Direction::Outbound, 44);
    assert_eq!(
        drain(&mut m),
        vec![Output::Ended {
            request: R,
            port: p,
            cause: 44,
            progress: Progress::Proceeding
        }]
    );
}

#[test]
fn guard_time_after_inbound_and_pacing() {
    let now = t0();
    let mut s = setup("a", 1, Hunting::Descending);
    s.calls_per_second = 2.0;
    let mut m = up(vec![s], 1, now);
    let p = Port {
        span: 0,
        channel: 1,
    };
    m.handle_incoming(now, p);
    m.handle_released(now, p, Direction::Inbound, 16);
    assert_eq!(m.dial(now, R), Err(NoPort::Busy), "guarded");
    let guard_end = now + Duration::from_millis(500);
    assert_eq!(
        m.poll_timeout(),
        Some(guard_end),
        "the guard's end is the next timer"
    );
    m.handle_timeout(guard_end);
    assert_eq!(m.dial(guard_end, R), Ok(p));
    m.handle_released(guard_end, p, Direction::Outbound, 16);
    assert_eq!(
        m.dial(guard_end, RequestId(8)),
        Err(NoPort::PacedUntil(guard_end + Duration::from_millis(500)))
    );
    assert_eq!(
        m.dial(guard_end + Duration::from_millis(500), RequestId(8)),
        Ok(p)
    );
}

#[test]
fn span_down_ends_calls_and_least_loaded_span_is_preferred() {
    let now = t0();
    let mut m = up(
        vec![
            setup("a", 23, Hunting::Descending),
            setup("b", 23, Hunting::Descending),
        ],
        42,
        now,
    );
    // Load span a with 20 inbound calls: new outbound calls should mostly go to b.
    for ch in 1..=20 {
        m.handle_incoming(
            now,
            Port {
                span: 0,
                channel: ch,
            },
        );
    }
    drain(&mut m);
    let on_b = (0..10)
        .filter(|&i| m.dial(ms(now, i), RequestId(i)).unwrap().span == 1)
        .count();
    assert!(on_b >= 7, "{on_b} of 10 went to the less loaded span");
    drain(&mut m);
    m.handle_span(1, false);
    let ended = drain(&mut m)
        .into_iter()
        .filter(|o| matches!(o, Output::Ended { cause: 38, .. }))
        .count();
    assert_eq!(ended, on_b);
    assert!(m.view()[1].channels.iter().all(|(s, _)| *s == "down"));
}

#[test]
fn inbound_reserve_and_global_limit() {
    let now = t0();
    let mut s = setup("a", 3, Hunting::Ascending);
    s.inbound_reserve = 1;
    let mut m = up(vec![s], 1, now);
    assert!(m.dial(now, RequestId(1)).is_ok());
    assert!(m.dial(ms(now, 1), RequestId(2)).is_ok());
    assert_eq!(
        m.dial(ms(now, 2), RequestId(3)),
        Err(NoPort::Busy),
        "the last channel is kept for inbound"
    );
    let mut m = PortManager::new(vec![setup("a", 3, Hunting::Ascending)], 1, 1, now);
    m.handle_span(0, true);
    assert!(m.dial(now, RequestId(1)).is_ok());
    assert_eq!(
        m.dial(ms(now, 1), RequestId(2)),
        Err(NoPort::Busy),
        "max-calls = 1"
    );
}
