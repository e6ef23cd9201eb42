use super::*;
use std::time::{Duration, Instant};

/// Drives both spans until `done` says so, waiting on their fds (no sleeps); fails past `limit`.
#[allow(clippy::disallowed_methods)] // libpri's timers run on the real clock: a bounded wait
pub(crate) fn pump(
    a: &mut Span,
    b: &mut Span,
    limit: Duration,
    mut done: impl FnMut(&[(char, Event)]) -> bool,
) -> Vec<(char, Event)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        a.poll();
        b.poll();
        while let Some(e) = a.poll_event() {
            seen.push(('a', e));
        }
        while let Some(e) = b.poll_event() {
            seen.push(('b', e));
        }
        if done(&seen) {
            return seen;
        }
        assert!(
            start.elapsed() < limit,
            "not done within {limit:?}; events: {seen:?}"
        );
        let t = [a.next_timer_ms(), b.next_timer_ms()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(50)
            .min(50);
        let mut fds = [
            libc::pollfd {
                fd: a.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, t as i32) };
    }
}

fn pair(switch: &str, e1: bool) -> (Span, Span) {
    let (x, y) = dchannel_pair().unwrap();
    let ch = if e1 { 30 } else { 23 };
    let mut cpe = Span::new(x, Node::Cpe, switch, ch, e1, e1).unwrap();
    let mut net = Span::new(y, Node::Network, switch, ch, e1, e1).unwrap();
    pump(&mut cpe, &mut net, Duration::from_secs(5), |s| {
        s.iter()
            .filter(|(_, e)| *e == Event::Span(SpanEvent::Up))
            .count()
            == 2
    });
    assert!(cpe.is_up() && net.is_up());
    (cpe, net)
}

fn has(seen: &[(char, Event)], side: char, ev: &Event) -> bool {
    seen.iter().any(|(s, e)| *s == side && e == ev)
}

#[test]
fn outbound_call_setup_to_disconnect_then_both_idle() {
    for (switch, e1, channel) in [
        ("ni2", false, 23),
        ("euroisdn_e1", true, 30),
        ("euroisdn_e1", true, 15),
    ] {
        let (mut cpe, mut net) = pair(switch, e1);
        cpe.dial(channel, "5550001", Some("5559999")).unwrap();
        let s = pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            s.iter()
                .any(|(w, e)| *w == 'b' && matches!(e, Event::Port(_, PortEvent::Incoming { .. })))
        });
        let incoming = Event::Port(
            channel,
            PortEvent::Incoming {
                dnis: "5550001".into(),
                ani: "5559999".into(),
            },
        );
        assert!(has(&s, 'b', &incoming), "{switch}: {s:?}");
        net.proceeding(channel).unwrap();
        net.alerting(channel).unwrap();
        net.answer(channel).unwrap();
        let s = pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            has(s, 'a', &Event::Port(channel, PortEvent::Connected))
        });
        assert!(
            has(&s, 'a', &Event::Port(channel, PortEvent::Proceeding)),
            "{s:?}"
        );
        assert!(
            has(&s, 'a', &Event::Port(channel, PortEvent::Alerting)),
            "{s:?}"
        );
        cpe.hangup(channel, CallDir::Outbound, Cause::NORMAL_CLEARING)
            .unwrap();
        let out = Event::Port(
            channel,
            PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
        );
        let inb = Event::Port(
            channel,
            PortEvent::Hangup(CallDir::Inbound, Cause::NORMAL_CLEARING),
        );
        pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            has(s, 'a', &out) && has(s, 'b', &inb)
        });
        // Both ends idle: the channel is free on both and takes a new call.
        pump(&mut cpe, &mut net, Duration::from_secs(2), |_| true);
        assert!(
            cpe.busy_channels().is_empty() && net.busy_channels().is_empty(),
            "{switch}: {:?} {:?}",
            cpe.busy_channels(),
            net.busy_channels()
        );
        cpe.dial(channel, "5550002", None).unwrap();
        pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            s.iter().any(|(w, e)| {
                *w == 'b'
                    && matches!(e, Event::Port(c, PortEvent::Incoming { .. }) if *c == channel)
            })
        });
    }
}

#[test]
fn busy_and_unallocated_causes_reach_the_caller() {
    let (mut cpe, mut net) = pair("ni2", false);
    for (ch, cause) in [
        (1u16, Cause::USER_BUSY),
        (2, Cause::UNALLOCATED),
        (3, Cause::NO_CIRCUIT_AVAILABLE),
    ] {
        cpe.dial(ch, "5550017", None).unwrap();
        pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            s.iter().any(|(w, e)| {
                *w == 'b' && matches!(e, Event::Port(c, PortEvent::Incoming { .. }) if *c == ch)
            })
        });
        // As carriers do: CALL PROCEEDING, then DISCONNECT with the cause. (A RELEASE COMPLETE
        // in the Call Present state is what the glare test below exercises.)
        net.proceeding(ch).unwrap();
        net.hangup(ch, CallDir::Inbound, cause).unwrap();
        let s = pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
            s.iter()
                .any(|(w, e)| *w == 'a' && matches!(e, Event::Port(_, PortEvent::Hangup(..))))
        });
        let want = Event::Port(ch, PortEvent::Hangup(CallDir::Outbound, cause));
        assert!(has(&s, 'a', &want), "{s:?}");
    }
    pump(&mut cpe, &mut net, Duration::from_secs(2), |_| true);
    assert!(cpe.busy_channels().is_empty(), "{:?}", cpe.busy_channels());
}

#[test]
fn the_network_hangs_up_an_answered_call() {
    let (mut cpe, mut net) = pair("ni2", false);
    cpe.dial(5, "5550001", None).unwrap();
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        s.iter()
            .any(|(w, e)| *w == 'b' && matches!(e, Event::Port(5, PortEvent::Incoming { .. })))
    });
    net.answer(5).unwrap();
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        has(s, 'a', &Event::Port(5, PortEvent::Connected))
    });
    net.hangup(5, CallDir::Inbound, Cause::NORMAL_CLEARING)
        .unwrap();
    let want = Event::Port(
        5,
        PortEvent::Hangup(CallDir::Outbound, Cause::NORMAL_CLEARING),
    );
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        has(s, 'a', &want)
    });
    pump(&mut cpe, &mut net, Duration::from_secs(2), |_| true);
    assert!(cpe.busy_channels().is_empty() && net.busy_channels().is_empty());
}

#[test]
fn inbound_call_from_the_network_is_answered() {
    let (mut cpe, mut net) = pair("ni2", false);
    net.dial(1, "5550100", Some("2125551212")).unwrap();
    let inc = Event::Port(
        1,
        PortEvent::Incoming {
            dnis: "5550100".into(),
            ani: "2125551212".into(),
        },
    );
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        has(s, 'a', &inc)
    });
    cpe.proceeding(1).unwrap();
    cpe.answer(1).unwrap();
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        has(s, 'b', &Event::Port(1, PortEvent::Connected))
    });
}

#[test]
fn both_ends_seize_one_channel_and_neither_libpri_resolves_it() {
    // The fact the port manager and the carrier are built on: glare reaches both as a RING.
    let (mut cpe, mut net) = pair("ni2", false);
    cpe.dial(7, "5550001", None).unwrap();
    net.dial(7, "5550100", None).unwrap();
    let s = pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        s.iter()
            .filter(|(_, e)| matches!(e, Event::Port(7, PortEvent::Incoming { .. })))
            .count()
            == 2
    });
    assert!(s.iter().any(|(w, _)| *w == 'a') && s.iter().any(|(w, _)| *w == 'b'));
    // The carrier's rule: its own call wins, ours is cleared with 44.
    net.hangup(7, CallDir::Inbound, Cause::REQUESTED_CHAN_UNAVAIL)
        .unwrap();
    let want = Event::Port(
        7,
        PortEvent::Hangup(CallDir::Outbound, Cause::REQUESTED_CHAN_UNAVAIL),
    );
    pump(&mut cpe, &mut net, Duration::from_secs(2), |s| {
        has(s, 'a', &want)
    });
    assert!(
        cpe.has_call(7, CallDir::Inbound),
        "the network's call is still offered to us"
    );
}
