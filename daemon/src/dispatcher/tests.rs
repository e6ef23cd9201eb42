use super::*;
use crate::config::Hunting;
use crate::portmgr::SpanSetup;
use crate::request::{App, Submit};

#[allow(clippy::disallowed_methods)] // tests own the clock: one real Instant as the origin
fn t0() -> Instant {
    Instant::now()
}

struct World {
    d: Dispatcher,
    now: Instant,
    unix: UnixMillis,
}

impl World {
    fn new(channels: u16) -> World {
        let now = t0();
        let setup = SpanSetup {
            name: "s".into(),
            channels,
            hunting: Hunting::Descending,
            calls_per_second: 1000.0,
            guard: Duration::from_millis(500),
            inbound_reserve: 0,
        };
        let mut ports = PortManager::new(vec![setup], 0, 9, now);
        ports.handle_span(0, true);
        World {
            d: Dispatcher::new(Store::temporary().unwrap(), ports),
            now,
            unix: UnixMillis(1_000_000),
        }
    }

    fn submit(&mut self, attempts: u32) -> RequestId {
        let spec = Submit {
            number: "+15550001".into(),
            app: Some(App::Say {
                text: "hi".into(),
                collect: 1,
            }),
            max_attempts: Some(attempts),
            retry_delay_s: Some(60),
            ring_timeout_s: Some(20),
            ..Default::default()
        }
        .validate("t")
        .unwrap();
        let r = self.d.store().insert(spec, 0, self.unix).unwrap();
        self.d.handle_queued(r.due_at);
        r.id
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.unix = UnixMillis(self.unix.0 + ms);
    }

    /// Runs timers up to `ms` later, in steps of the dispatcher's own deadlines (bounded).
    fn run_for(&mut self, ms: u64) -> Vec<Output> {
        let end = self.now + Duration::from_millis(ms);
        let mut out = Vec::new();
        for _ in 0..1000 {
            match self.d.poll_timeout(self.now, self.unix) {
                Some(t) if t <= end => {
                    let step = t.saturating_duration_since(self.now).as_millis() as u64;
                    self.advance(step);
                    self.d.handle_timeout(self.now, self.unix).unwrap();
                    out.extend(self.drain());
                }
                _ => {
                    let step = end.saturating_duration_since(self.now).as_millis() as u64;
                    self.advance(step);
                    return out;
                }
            }
        }
        panic!("more than 1000 timer steps in {ms} ms: a busy loop");
    }

    fn ev(&mut self, e: LineEvent) -> Vec<Output> {
        self.d.handle_event(self.now, self.unix, e).unwrap();
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.d.poll_output())
            .filter(|o| !matches!(o, Output::Changed(_)))
            .collect()
    }

    fn dial_port(out: &[Output]) -> Port {
        out.iter()
            .find_map(|o| match o {
                Output::Dial { port, .. } => Some(*port),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no Dial in {out:?}"))
    }
}

#[test]
fn a_call_that_is_answered_completes_with_digits_and_submitted_values() {
    let mut w = World::new(2);
    let id = w.submit(3);
    w.d.dispatch(w.now, w.unix).unwrap();
    let out = w.drain();
    let port = World::dial_port(&out);
    assert_eq!(w.d.store().get(id).unwrap().state, RequestState::Dialing);
    w.ev(LineEvent::Progress {
        port,
        progress: Progress::Proceeding,
    });
    w.ev(LineEvent::Progress {
        port,
        progress: Progress::Alerting,
    });
    assert_eq!(w.d.store().get(id).unwrap().state, RequestState::Ringing);
    w.advance(3000);
    let out = w.ev(LineEvent::Progress {
        port,
        progress: Progress::Connected,
    });
    assert_eq!(
        out,
        vec![Output::StartSession {
            port,
            request: Some(id),
            dnis: None
        }]
    );
    w.advance(5000);
    w.d.handle_session_end(port, "1".into(), Some(serde_json::json!({"choice": "1"})));
    let out = w.drain();
    assert_eq!(
        out,
        vec![Output::Hangup {
            port,
            dir: Direction::Outbound,
            cause: 16
        }]
    );
    w.ev(LineEvent::Released {
        port,
        dir: Direction::Outbound,
        cause: 16,
    });
    let r = w.d.store().get(id).unwrap();
    assert_eq!(r.state, RequestState::Completed);
    let a = &r.attempts[0];
    assert_eq!(
        (a.digits.as_str(), a.cause, a.hung_up_by),
        ("1", Some(16), Some(HungUpBy::Outcall))
    );
    assert_eq!(a.submitted.as_ref().unwrap()["choice"], "1");
    assert_eq!(a.answered_at, Some(UnixMillis(1_003_000)));
    assert_eq!(w.d.poll_timeout(w.now, w.unix), None, "nothing left to do");
}

#[test]
fn busy_is_retried_after_the_delay_and_ends_busy() {
    let mut w = World::new(1);
    let id = w.submit(2);
    w.d.dispatch(w.now, w.unix).unwrap();
    let port = World::dial_port(&w.drain());
    w.ev(LineEvent::Released {
        port,
        dir: Direction::Outbound,
        cause: 17,
    });
    let r = w.d.store().get(id).unwrap();
    assert_eq!((r.state, r.attempts.len()), (RequestState::Queued, 1));
    assert_eq!(r.due_at, UnixMillis(w.unix.0 + 60_000));
    assert!(w.run_for(59_999).is_empty(), "not before the retry delay");
    let out = w.run_for(1);
    let port = World::dial_port(&out);
    w.ev(LineEvent::Released {
        port,
        dir: Direction::Outbound,
        cause: 17,
    });
    let r = w.d.store().get(id).unwrap();
    assert_eq!((r.state, r.attempts.len()), (RequestState::Busy, 2));
    assert_eq!(r.attempts[1].hung_up_by, Some(HungUpBy::Network));
}

#[test]
fn ring_timeout_clears_the_call_and_counts_as_no_answer() {
    let mut w = World::new(1);
    let id = w.submit(1);
    w.d.dispatch(w.now, w.unix).unwrap();
    let port = World::dial_port(&w.drain());
    w.ev(LineEvent::Progress {
        port,
        progress: Progress::Alerting,
    });
    let out = w.run_for(19_999);
    assert!(out.is_empty(), "{out:?}");
    let out = w.run_for(1);
    assert_eq!(
        out,
        vec![Output::Hangup {
            port,
            dir: Direction::Outbound,
            cause: 16
        }]
    );
    w.ev(LineEvent::Released {
        port,
        dir: Direction::Outbound,
        cause: 16,
    });
    assert_eq!(w.d.store().get(id).unwrap().state, RequestState::NoAnswer);
}

#[test]
fn the_24th_request_waits_for_a_free_channel_without_busy_looping() {
    let mut w = World::new(23);
    let ids: Vec<RequestId> = (0..24).map(|_| w.submit(1)).collect();
    let mut ports = Vec::new();
    for _ in 0..30 {
        w.d.dispatch(w.now, w.unix).unwrap();
        ports.extend(w.drain().iter().filter_map(|o| match o {
            Output::Dial { port, .. } => Some(*port),
            _ => None,
        }));
        w.advance(1); // pacing: 1 ms per dial at 1000 calls/s
    }
    assert_eq!(ports.len(), 23);
    assert_eq!(
        w.d.store().get(ids[23]).unwrap().state,
        RequestState::Queued
    );
    // All channels busy: no timer until a call ends (ring timeouts are the only deadlines).
    let next = w.d.poll_timeout(w.now, w.unix).unwrap();
    assert!(
        next >= w.now + Duration::from_secs(19),
        "no busy loop: next timer {:?} away",
        next - w.now
    );
    let out = w.ev(LineEvent::Released {
        port: ports[0],
        dir: Direction::Outbound,
        cause: 16,
    });
    assert_eq!(
        World::dial_port(&out),
        ports[0],
        "the freed channel takes the waiting request"
    );
    assert_eq!(
        w.d.store().get(ids[23]).unwrap().state,
        RequestState::Dialing
    );
}

#[test]
fn glare_moves_the_request_without_counting_an_attempt() {
    let mut w = World::new(2);
    let id = w.submit(1);
    w.d.dispatch(w.now, w.unix).unwrap();
    let p1 = World::dial_port(&w.drain());
    let out = w.ev(LineEvent::Incoming {
        port: p1,
        dnis: "5550100".into(),
        ani: "5550199".into(),
    });
    let p2 = World::dial_port(&out);
    assert_ne!(p1, p2);
    assert!(out.contains(&Output::Hangup {
        port: p1,
        dir: Direction::Outbound,
        cause: 44
    }));
    assert!(out.contains(&Output::Answer { port: p1 }));
    assert!(out.contains(&Output::StartSession {
        port: p1,
        request: None,
        dnis: Some(("5550100".into(), "5550199".into()))
    }));
    // The carrier's late release of our abandoned SETUP changes nothing.
    assert!(w
        .ev(LineEvent::Released {
            port: p1,
            dir: Direction::Outbound,
            cause: 44
        })
        .is_empty());
    let r = w.d.store().get(id).unwrap();
    assert_eq!(r.attempts.len(), 1, "still the first attempt");
    assert_eq!(
        r.attempts[0].port.as_deref(),
        Some(format!("s/{}", p2.channel).as_str())
    );
    assert_eq!(r.state, RequestState::Dialing);
    // The inbound call ends normally.
    let out = w.ev(LineEvent::Released {
        port: p1,
        dir: Direction::Inbound,
        cause: 16,
    });
    assert_eq!(out, vec![Output::StopSession { port: p1 }]);
}

#[test]
fn cancel_during_ringing_and_span_down() {
    let mut w = World::new(2);
    let a = w.submit(3);
    let b = w.submit(3);
    w.d.dispatch(w.now, w.unix).unwrap();
    w.advance(1);
    w.d.dispatch(w.now, w.unix).unwrap();
    let dials: Vec<Port> = w
        .drain()
        .iter()
        .filter_map(|o| match o {
            Output::Dial { port, .. } => Some(*port),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2);
    assert!(w.d.cancel(a));
    let out = w.drain();
    let pa = match out[..] {
        [Output::Hangup { port, .. }] => port,
        _ => panic!("{out:?}"),
    };
    w.ev(LineEvent::Released {
        port: pa,
        dir: Direction::Outbound,
        cause: 16,
    });
    assert_eq!(w.d.store().get(a).unwrap().state, RequestState::Cancelled);
    // The span goes down under b: the attempt ends (cause 38) and b is retried later.
    w.ev(LineEvent::Span { span: 0, up: false });
    let r = w.d.store().get(b).unwrap();
    assert_eq!(
        (r.state, r.attempts[0].cause),
        (RequestState::Queued, Some(38))
    );
}

#[test]
fn expired_requests_are_not_dialled() {
    let mut w = World::new(1);
    let mut spec = Submit {
        number: "+15550001".into(),
        app: Some(App::Say {
            text: "hi".into(),
            collect: 0,
        }),
        ..Default::default()
    }
    .validate("t")
    .unwrap();
    spec.expires = Some(UnixMillis(w.unix.0 + 10));
    let id = w.d.store().insert(spec, 0, w.unix).unwrap().id;
    w.d.handle_queued(w.unix);
    w.advance(10);
    w.d.dispatch(w.now, w.unix).unwrap();
    assert!(w.drain().is_empty());
    assert_eq!(w.d.store().get(id).unwrap().state, RequestState::Expired);
}

#[test]
fn outside_the_calling_window_the_request_waits_for_the_opening() {
    let mut w = World::new(1);
    // 2026-11-24T11:00Z is 05:00 in Chicago; the window opens at 08:00 (14:00Z).
    w.unix = crate::time::parse_rfc3339("2026-11-24T11:00:00Z").unwrap();
    let spec = Submit {
        number: "+15550001".into(),
        app: Some(App::Say {
            text: "hi".into(),
            collect: 0,
        }),
        window: Some(crate::window::Window {
            from: "08:00".into(),
            to: "21:00".into(),
            tz: "America/Chicago".into(),
        }),
        ..Default::default()
    }
    .validate("t")
    .unwrap();
    let id = w.d.store().insert(spec, 0, w.unix).unwrap().id;
    w.d.handle_queued(w.unix);
    w.d.dispatch(w.now, w.unix).unwrap();
    assert!(w.drain().is_empty(), "not dialled at 05:00 local");
    assert_eq!(
        w.d.store().get(id).unwrap().due_at,
        crate::time::parse_rfc3339("2026-11-24T14:00:00Z").unwrap()
    );
    assert!(w.run_for(3 * 3_600_000 - 1).is_empty());
    let out = w.run_for(1);
    World::dial_port(&out);
    // A callee's own preference beats the sender's window.
    let mut pol = crate::config::Config::parse(
        "[[policy.callee]]\nnumber = \"+15550002\"\nwindow = { from = \"10:00\", to = \"11:00\", tz = \"UTC\" }\n",
        "t.toml",
    )
    .unwrap()
    .policy;
    let sender = crate::window::Window {
        from: "00:00".into(),
        to: "23:59".into(),
        tz: "UTC".into(),
    };
    assert_eq!(
        pol.window_for("+15550002", Some(&sender)).unwrap().from,
        "10:00"
    );
    assert_eq!(
        pol.window_for("+15550003", Some(&sender)).unwrap().from,
        "00:00"
    );
    pol.callee.clear();
    assert!(pol.window_for("+15550002", None).is_none());
}
