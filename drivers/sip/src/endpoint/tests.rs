//! Endpoint flows against a scripted peer, with an injected clock.

use super::*;
use crate::transaction::testkit::epoch;

const PROXY: &str = "198.51.100.7:5060";

fn endpoint(creds: bool) -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            local: "192.0.2.10:5060".parse().unwrap(),
            transport: Transport::Udp,
            proxy: PROXY.parse().unwrap(),
            contact_user: "outcall".into(),
            credentials: creds.then(|| Credentials {
                username: "100".into(),
                password: "pw".into(),
            }),
            timers: LayerConfig::default(),
            register: None,
            keepalive: None,
        },
        42,
    )
}

fn proxy() -> Target {
    Target {
        transport: Transport::Udp,
        addr: PROXY.parse().unwrap(),
    }
}

/// Drains outputs: (requests/responses sent, call events).
fn drain(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<CallEvent>) {
    let (mut sent, mut evs) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit { to, bytes } => {
                assert_eq!(to, proxy());
                sent.push(msg::parse(&bytes).expect("we send valid SIP"));
            }
            Output::Call { handle, event } => {
                assert_eq!(handle, CallHandle(1));
                evs.push(event);
            }
            Output::Trunk(t) => panic!("unexpected trunk event {t:?}"),
        }
    }
    (sent, evs)
}

fn req_of(m: &SipMessage) -> &Request {
    match m {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("expected a request, got {}", r.status_code),
    }
}

fn names(sent: &[SipMessage]) -> Vec<String> {
    sent.iter()
        .map(|m| match m {
            SipMessage::Request(r) => r.method.to_string(),
            SipMessage::Response(r) => r.status_code.code().to_string(),
        })
        .collect()
}

/// The peer's answer to `req`: To tag "peer", Contact, optional body.
fn reply(req: &Request, code: u16, body: &[u8]) -> Vec<u8> {
    let mut r = msg::response_to(req, code, Some("peer"));
    if (101..300).contains(&code) {
        r.headers.push(Header::Contact(rsip::headers::Contact::new(
            "<sip:gw@198.51.100.7>",
        )));
    }
    if !body.is_empty() {
        r.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
        r.headers
            .push(Header::ContentLength(rsip::headers::ContentLength::new(
                body.len().to_string(),
            )));
        r.body = body.to_vec();
    }
    msg::to_bytes(&SipMessage::Response(r))
}

fn dial(ep: &mut Endpoint, now: Instant) -> Request {
    ep.handle_command(
        now,
        CallHandle(1),
        Command::Dial {
            to: "sip:+15551234567@carrier.example".into(),
            from: "sip:100@carrier.example".into(),
            offer: b"v=0\r\n".to_vec(),
            ring_timeout: Duration::from_secs(30),
        },
    )
    .unwrap();
    let (sent, evs) = drain(ep);
    assert_eq!(names(&sent), ["INVITE"]);
    assert!(evs.is_empty());
    let invite = req_of(&sent[0]).clone();
    assert_eq!(invite.body, b"v=0\r\n");
    invite
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn answered_call_acked_and_hung_up_with_bye() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = dial(&mut ep, t0);
    ep.handle_input(at(t0, 50), proxy(), reply(&invite, 100, b""));
    ep.handle_input(at(t0, 100), proxy(), reply(&invite, 180, b""));
    assert_eq!(drain(&mut ep), (vec![], vec![CallEvent::Ringing]));
    ep.handle_input(at(t0, 2000), proxy(), reply(&invite, 200, b"v=0 answer"));
    let (sent, evs) = drain(&mut ep);
    assert_eq!(evs, [CallEvent::Answered(b"v=0 answer".to_vec())]);
    assert_eq!(names(&sent), ["ACK"]);
    let ack = req_of(&sent[0]);
    assert_eq!(msg::cseq(ack).unwrap().seq, 1);
    assert_ne!(
        msg::branch(ack).unwrap(),
        msg::branch(&invite).unwrap(),
        "2xx ACK: new branch"
    );
    assert_eq!(ack.uri.to_string(), "sip:gw@198.51.100.7");
    // The 2xx is retransmitted: ACKed again, no second Answered.
    ep.handle_input(at(t0, 2500), proxy(), reply(&invite, 200, b"v=0 answer"));
    let (sent2, evs) = drain(&mut ep);
    assert_eq!((names(&sent2), evs), (vec!["ACK".to_owned()], vec![]));
    assert_eq!(sent2[0], sent[0], "the same ACK");
    ep.handle_command(at(t0, 10_000), CallHandle(1), Command::Hangup)
        .unwrap();
    let (sent, _) = drain(&mut ep);
    assert_eq!(names(&sent), ["BYE"]);
    let bye = req_of(&sent[0]).clone();
    assert_eq!(msg::cseq(&bye).unwrap().seq, 2);
    ep.handle_input(at(t0, 10_100), proxy(), reply(&bye, 200, b""));
    assert_eq!(drain(&mut ep).1, [CallEvent::Ended(EndReason::LocalHangup)]);
    assert_eq!(ep.calls(), 0);
}

#[test]
fn ring_timeout_cancels_and_487_ends_call() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = dial(&mut ep, t0);
    ep.handle_input(at(t0, 1000), proxy(), reply(&invite, 180, b""));
    drain(&mut ep);
    // Nothing happens before 30 s (the ICT is in Proceeding: no retransmissions).
    assert_eq!(ep.poll_timeout(), Some(at(t0, 30_000)));
    ep.handle_timeout(at(t0, 30_000));
    let (sent, evs) = drain(&mut ep);
    assert_eq!((names(&sent), evs), (vec!["CANCEL".to_owned()], vec![]));
    let cancel = req_of(&sent[0]).clone();
    assert_eq!(msg::branch(&cancel).unwrap(), msg::branch(&invite).unwrap());
    ep.handle_input(at(t0, 30_050), proxy(), reply(&cancel, 200, b""));
    ep.handle_input(at(t0, 30_060), proxy(), reply(&invite, 487, b""));
    let (sent, evs) = drain(&mut ep);
    assert_eq!(names(&sent), ["ACK"], "the ICT ACKs the 487");
    assert_eq!(evs, [CallEvent::Ended(EndReason::Cancelled)]);
}

#[test]
fn cancel_waits_for_a_provisional() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = dial(&mut ep, t0);
    ep.handle_command(at(t0, 100), CallHandle(1), Command::Hangup)
        .unwrap();
    assert!(drain(&mut ep).0.is_empty(), "§9.1: no CANCEL before a 1xx");
    ep.handle_input(at(t0, 200), proxy(), reply(&invite, 100, b""));
    let (sent, _) = drain(&mut ep);
    assert_eq!(
        names(&sent),
        ["CANCEL"],
        "a 100 is a provisional: CANCEL now"
    );
    let cancel = req_of(&sent[0]).clone();
    ep.handle_input(at(t0, 300), proxy(), reply(&cancel, 200, b""));
    ep.handle_input(at(t0, 310), proxy(), reply(&invite, 487, b""));
    assert_eq!(drain(&mut ep).1, [CallEvent::Ended(EndReason::Cancelled)]);
}

#[test]
fn proxy_challenge_is_answered_once_then_busy() {
    let t0 = epoch();
    let mut ep = endpoint(true);
    let invite = dial(&mut ep, t0);
    let mut challenge = msg::response_to(&invite, 407, Some("p"));
    challenge.headers.push(Header::ProxyAuthenticate(
        rsip::headers::ProxyAuthenticate::new(
            "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256",
        ),
    ));
    ep.handle_input(
        at(t0, 100),
        proxy(),
        msg::to_bytes(&SipMessage::Response(challenge.clone())),
    );
    let (sent, evs) = drain(&mut ep);
    assert!(evs.is_empty());
    assert_eq!(names(&sent), ["ACK", "INVITE"]);
    let invite2 = req_of(&sent[1]).clone();
    assert_eq!(msg::cseq(&invite2).unwrap().seq, 2);
    let text = String::from_utf8(msg::to_bytes(&sent[1])).unwrap();
    assert!(
        text.contains("Proxy-Authorization: Digest username=\"100\""),
        "{text}"
    );
    ep.handle_input(at(t0, 200), proxy(), reply(&invite2, 486, b""));
    let (sent, evs) = drain(&mut ep);
    assert_eq!(names(&sent), ["ACK"]);
    assert_eq!(evs, [CallEvent::Ended(EndReason::Rejected(486))]);
    // Without credentials, a 407 ends the call.
    let mut ep = endpoint(false);
    let invite = dial(&mut ep, t0);
    challenge = msg::response_to(&invite, 407, Some("p"));
    ep.handle_input(
        at(t0, 100),
        proxy(),
        msg::to_bytes(&SipMessage::Response(challenge)),
    );
    assert!(matches!(
        drain(&mut ep).1[..],
        [CallEvent::Ended(EndReason::AuthFailed(_))]
    ));
}

fn answered(ep: &mut Endpoint, t0: Instant) -> Request {
    let invite = dial(ep, t0);
    ep.handle_input(at(t0, 100), proxy(), reply(&invite, 200, b"sdp"));
    drain(ep);
    invite
}

#[test]
fn remote_bye_is_answered_200() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = answered(&mut ep, t0);
    let bye = format!(
        "BYE sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKpb\r\n\
From: <sip:+15551234567@carrier.example>;tag=peer\r\nTo: <sip:100@carrier.example>;tag={}\r\n\
Call-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        msg::from_tag(&invite).unwrap().unwrap(),
        msg::call_id(&invite).unwrap()
    );
    ep.handle_input(at(t0, 5000), proxy(), bye.into_bytes());
    let (sent, evs) = drain(&mut ep);
    assert_eq!(names(&sent), ["200"]);
    assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteHangup)]);
}

#[test]
fn glare_491_backs_off_per_section_14_1_then_retries() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    answered(&mut ep, t0);
    ep.handle_command(
        at(t0, 1000),
        CallHandle(1),
        Command::Reinvite {
            offer: b"hold".to_vec(),
        },
    )
    .unwrap();
    let (sent, _) = drain(&mut ep);
    assert_eq!(names(&sent), ["INVITE"]);
    let re1 = req_of(&sent[0]).clone();
    assert_eq!(msg::cseq(&re1).unwrap().seq, 2);
    assert_eq!(re1.body, b"hold");
    ep.handle_input(at(t0, 1100), proxy(), reply(&re1, 491, b""));
    let (sent, evs) = drain(&mut ep);
    assert_eq!((names(&sent), evs), (vec!["ACK".to_owned()], vec![]));
    // The retry deadline lies in [2.1 s, 4 s] after the 491 (we own the Call-ID).
    let mut now;
    let retry = loop {
        let next = ep.poll_timeout().expect("the glare timer is armed");
        assert!(
            next - at(t0, 1100) <= Duration::from_secs(4),
            "no retry within 4 s"
        );
        now = next;
        ep.handle_timeout(now);
        let (sent, _) = drain(&mut ep);
        if let Some(m) = sent
            .iter()
            .find(|m| matches!(m, SipMessage::Request(r) if r.method == Method::Invite))
        {
            break req_of(m).clone();
        }
    };
    let waited = now - at(t0, 1100);
    assert!(waited >= Duration::from_millis(2100), "waited {waited:?}");
    assert_eq!(msg::cseq(&retry).unwrap().seq, 3);
    assert_eq!(retry.body, b"hold");
    ep.handle_input(now, proxy(), reply(&retry, 200, b"held"));
    let (sent, evs) = drain(&mut ep);
    assert_eq!(names(&sent), ["ACK"]);
    assert_eq!(evs, [CallEvent::Reinvited(b"held".to_vec())]);
}

#[test]
fn glare_backoff_is_reproducible_from_the_seed() {
    let run = || {
        let t0 = epoch();
        let mut ep = endpoint(false);
        answered(&mut ep, t0);
        ep.handle_command(
            at(t0, 1000),
            CallHandle(1),
            Command::Reinvite { offer: vec![] },
        )
        .unwrap();
        let re = req_of(&drain(&mut ep).0[0]).clone();
        ep.handle_input(at(t0, 1100), proxy(), reply(&re, 491, b""));
        drain(&mut ep);
        ep.poll_timeout().map(|t| t - t0)
    };
    assert_eq!(run(), run());
}

#[test]
fn peer_reinvite_during_ours_gets_491_and_strangers_get_answers() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = answered(&mut ep, t0);
    ep.handle_command(
        at(t0, 1000),
        CallHandle(1),
        Command::Reinvite { offer: vec![] },
    )
    .unwrap();
    drain(&mut ep);
    let theirs = format!(
        "INVITE sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKpr\r\n\
From: <sip:+15551234567@carrier.example>;tag=peer\r\nTo: <sip:100@carrier.example>;tag={}\r\n\
Call-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@198.51.100.7>\r\nContent-Length: 0\r\n\r\n",
        msg::from_tag(&invite).unwrap().unwrap(),
        msg::call_id(&invite).unwrap()
    );
    ep.handle_input(at(t0, 1001), proxy(), theirs.clone().into_bytes());
    assert_eq!(names(&drain(&mut ep).0), ["100", "491"]);
    let stranger = theirs
        .replace("Call-ID: ", "Call-ID: x")
        .replace("z9hG4bKpr", "z9hG4bKps");
    ep.handle_input(at(t0, 1002), proxy(), stranger.into_bytes());
    assert_eq!(
        names(&drain(&mut ep).0),
        ["100", "481"],
        "To tag but no dialog: 481 (§12.2.2)"
    );
    let options = String::from(
        "OPTIONS sip:outcall@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKo\r\n\
From: <sip:p@carrier.example>;tag=o\r\nTo: <sip:outcall@192.0.2.10>\r\nCall-ID: o1\r\n\
CSeq: 5 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    ep.handle_input(at(t0, 1003), proxy(), options.into_bytes());
    assert_eq!(names(&drain(&mut ep).0), ["200"]);
}

#[test]
fn no_answer_at_all_times_out_with_timer_b() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    dial(&mut ep, t0);
    let mut invites = 1;
    let mut end = None;
    for _ in 0..50 {
        let Some(next) = ep.poll_timeout() else { break };
        ep.handle_timeout(next);
        let (sent, evs) = drain(&mut ep);
        invites += names(&sent).iter().filter(|n| *n == "INVITE").count();
        if !evs.is_empty() {
            end = Some((next - t0, evs));
        }
    }
    // The ring timeout (30 s) comes first but a CANCEL must wait for a 1xx; Timer B ends it.
    assert_eq!(
        end,
        Some((
            Duration::from_secs(32),
            vec![CallEvent::Ended(EndReason::Timeout)]
        ))
    );
    assert_eq!(invites, 7);
}

fn trunk_endpoint() -> Endpoint {
    let mut ep = endpoint(true);
    ep.cfg.register = Some(RegisterConfig {
        registrar: "sip:carrier.example".into(),
        aor: "sip:100@carrier.example".into(),
        expires: Duration::from_secs(600),
    });
    ep.cfg.keepalive = Some(Duration::from_secs(30));
    let creds = ep.cfg.credentials.clone();
    ep.registration = ep
        .cfg
        .register
        .clone()
        .map(|r| Registration::new(r, creds, &mut ep.rng));
    ep
}

fn drain_trunk(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<TrunkEvent>) {
    let (mut sent, mut evs) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit { bytes, .. } => sent.push(msg::parse(&bytes).unwrap()),
            Output::Trunk(t) => evs.push(t),
            Output::Call { .. } => panic!("no calls here"),
        }
    }
    (sent, evs)
}

#[test]
fn registration_with_challenge_and_refresh() {
    let t0 = epoch();
    let mut ep = trunk_endpoint();
    ep.start_trunk(t0);
    ep.handle_timeout(t0);
    let (sent, _) = drain_trunk(&mut ep);
    assert_eq!(names(&sent), ["REGISTER", "OPTIONS"]);
    let reg = req_of(&sent[0]).clone();
    let options = req_of(&sent[1]).clone();
    let mut ch = msg::response_to(&reg, 401, Some("r"));
    ch.headers.push(Header::WwwAuthenticate(
        rsip::headers::WwwAuthenticate::new("Digest realm=\"carrier\", nonce=\"n\", qop=\"auth\""),
    ));
    ep.handle_input(
        at(t0, 50),
        proxy(),
        msg::to_bytes(&SipMessage::Response(ch)),
    );
    let (sent, evs) = drain_trunk(&mut ep);
    assert_eq!(names(&sent), ["REGISTER"]);
    assert!(evs.is_empty());
    let reg2 = req_of(&sent[0]).clone();
    assert!(String::from_utf8(msg::to_bytes(&sent[0]))
        .unwrap()
        .contains("Authorization: Digest"));
    let mut ok = msg::response_to(&reg2, 200, Some("r"));
    ok.headers
        .push(Header::Expires(rsip::headers::Expires::new("600")));
    ep.handle_input(
        at(t0, 100),
        proxy(),
        msg::to_bytes(&SipMessage::Response(ok)),
    );
    ep.handle_input(at(t0, 120), proxy(), reply(&options, 200, b""));
    let (_, evs) = drain_trunk(&mut ep);
    assert_eq!(
        evs,
        [
            TrunkEvent::Registered(Duration::from_secs(600)),
            TrunkEvent::Up
        ]
    );
    assert_eq!(ep.trunk_state(), TrunkState::Up);
    // Refresh 60 s before expiry: at 100 ms + 540 s.
    let mut now;
    let refresh = loop {
        now = ep.poll_timeout().unwrap();
        assert!(now <= at(t0, 540_100));
        ep.handle_timeout(now);
        let (sent, _) = drain_trunk(&mut ep);
        // Answer keep-alives so the trunk stays up.
        for m in &sent {
            if let SipMessage::Request(r) = m {
                if r.method == Method::Options {
                    ep.handle_input(now, proxy(), reply(r, 200, b""));
                }
            }
        }
        if let Some(r) = sent
            .iter()
            .find(|m| matches!(m, SipMessage::Request(r) if r.method == Method::Register))
        {
            break req_of(r).clone();
        }
        drain_trunk(&mut ep);
    };
    assert_eq!(now, at(t0, 540_100));
    assert!(msg::cseq(&refresh).unwrap().seq > msg::cseq(&reg2).unwrap().seq);
    assert_eq!(msg::call_id(&refresh).unwrap(), msg::call_id(&reg).unwrap());
}

#[test]
fn keepalive_marks_trunk_down_and_up() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    ep.cfg.keepalive = Some(Duration::from_secs(30));
    ep.start_trunk(t0);
    ep.handle_timeout(t0);
    let (sent, _) = drain_trunk(&mut ep);
    assert_eq!(names(&sent), ["OPTIONS"]);
    // Nobody answers: Timer F at 32 s marks the trunk down.
    let mut down_at = None;
    for _ in 0..40 {
        let now = ep.poll_timeout().unwrap();
        ep.handle_timeout(now);
        let (_, evs) = drain_trunk(&mut ep);
        if evs == [TrunkEvent::Down] {
            down_at = Some(now - t0);
            break;
        }
    }
    assert_eq!(down_at, Some(Duration::from_secs(32)));
    // The next probe (due at 30 s, skipped while the first ran) goes at 60 s; answer it.
    let now = ep.poll_timeout().unwrap();
    assert_eq!(now - t0, Duration::from_secs(60));
    ep.handle_timeout(now);
    let (sent, _) = drain_trunk(&mut ep);
    assert_eq!(names(&sent), ["OPTIONS"]);
    ep.handle_input(now, proxy(), reply(req_of(&sent[0]), 404, b""));
    assert_eq!(
        drain_trunk(&mut ep).1,
        [TrunkEvent::Up],
        "any response means the trunk is up"
    );
}

const INBOUND: &str = "INVITE sip:+15550001111@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKin1\r\n\
Max-Forwards: 69\r\n\
From: <sip:+15559998888@carrier.example>;tag=caller\r\n\
To: <sip:+15550001111@192.0.2.10>\r\n\
Call-ID: in-1@carrier.example\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:gw@198.51.100.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\r\noffer";

fn resp_of(m: &SipMessage) -> &Response {
    match m {
        SipMessage::Response(r) => r,
        SipMessage::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// Drains outputs of an inbound call (handle INBOUND_HANDLE_BASE).
fn drain_in(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<CallEvent>) {
    let (mut sent, mut evs) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit { to, bytes } => {
                assert_eq!(to, proxy());
                sent.push(msg::parse(&bytes).unwrap());
            }
            Output::Call { handle, event } => {
                assert_eq!(handle, CallHandle(INBOUND_HANDLE_BASE));
                evs.push(event);
            }
            Output::Trunk(t) => panic!("{t:?}"),
        }
    }
    (sent, evs)
}

fn incoming(ep: &mut Endpoint, t0: Instant) -> Request {
    ep.handle_input(t0, proxy(), INBOUND.as_bytes().to_vec());
    let (sent, evs) = drain_in(ep);
    assert_eq!(names(&sent), ["100"]);
    assert_eq!(
        evs,
        [CallEvent::Incoming {
            from: "sip:+15559998888@carrier.example".into(),
            to: "sip:+15550001111@192.0.2.10:5060".into(),
            offer: b"offer".to_vec(),
        }]
    );
    match msg::parse(INBOUND.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn ack_for(invite: &Request, ok: &Response, branch: &str) -> Vec<u8> {
    let tag = msg::to_tag(ok).unwrap().unwrap();
    let text = format!(
        "ACK sip:outcall@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch={branch}\r\n\
From: <sip:+15559998888@carrier.example>;tag=caller\r\nTo: <sip:+15550001111@192.0.2.10>;tag={tag}\r\n\
Call-ID: {}\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
        msg::call_id(invite).unwrap()
    );
    text.into_bytes()
}

#[test]
fn inbound_call_ring_answer_ack_and_remote_bye() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = incoming(&mut ep, t0);
    let h = CallHandle(INBOUND_HANDLE_BASE);
    ep.handle_command(at(t0, 10), h, Command::Ring).unwrap();
    let (sent, _) = drain_in(&mut ep);
    assert_eq!(names(&sent), ["180"]);
    let tag = msg::to_tag(resp_of(&sent[0]))
        .unwrap()
        .expect("180 carries our tag");
    ep.handle_command(
        at(t0, 20),
        h,
        Command::Answer {
            sdp: b"answer".to_vec(),
        },
    )
    .unwrap();
    let (sent, _) = drain_in(&mut ep);
    assert_eq!(names(&sent), ["200"]);
    let ok = resp_of(&sent[0]).clone();
    assert_eq!(
        msg::to_tag(&ok).unwrap(),
        Some(tag),
        "same tag on 180 and 200"
    );
    assert_eq!(ok.body, b"answer");
    // §13.3.1.4: retransmitted at T1, then 2·T1 later, until the ACK.
    for (ms, want) in [(519, 0), (520, 1), (1519, 0), (1520, 1)] {
        ep.handle_timeout(at(t0, ms));
        let (sent, _) = drain_in(&mut ep);
        assert_eq!(sent.len(), want, "at {ms} ms");
    }
    ep.handle_input(at(t0, 2000), proxy(), ack_for(&invite, &ok, "z9hG4bKack1"));
    assert_eq!(drain_in(&mut ep), (vec![], vec![CallEvent::Established]));
    ep.handle_timeout(at(t0, 3520));
    assert!(
        drain_in(&mut ep).0.is_empty(),
        "no retransmission after the ACK"
    );
    let bye = String::from_utf8(ack_for(&invite, &ok, "z9hG4bKbye1"))
        .unwrap()
        .replace("ACK sip", "BYE sip")
        .replace("CSeq: 7 ACK", "CSeq: 8 BYE");
    ep.handle_input(at(t0, 9000), proxy(), bye.into_bytes());
    let (sent, evs) = drain_in(&mut ep);
    assert_eq!(names(&sent), ["200"]);
    assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteHangup)]);
}

#[test]
fn inbound_cancel_gets_200_and_487() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = incoming(&mut ep, t0);
    let cancel = msg::cancel_for(&invite);
    ep.handle_input(
        at(t0, 100),
        proxy(),
        msg::to_bytes(&SipMessage::Request(cancel)),
    );
    let (sent, evs) = drain_in(&mut ep);
    assert_eq!(names(&sent), ["200", "487"]);
    assert_eq!(msg::cseq(resp_of(&sent[0])).unwrap().method, Method::Cancel);
    assert_eq!(evs, [CallEvent::Ended(EndReason::RemoteCancelled)]);
    // The caller ACKs the 487 in the INVITE's transaction: absorbed by the IST.
    let ack = msg::ack_for_non_2xx(&invite, resp_of(&sent[1]));
    ep.handle_input(
        at(t0, 150),
        proxy(),
        msg::to_bytes(&SipMessage::Request(ack)),
    );
    assert_eq!(drain_in(&mut ep), (vec![], vec![]));
}

#[test]
fn inbound_answer_without_ack_gives_up_after_64_t1() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    incoming(&mut ep, t0);
    let h = CallHandle(INBOUND_HANDLE_BASE);
    ep.handle_command(t0, h, Command::Answer { sdp: b"a".to_vec() })
        .unwrap();
    let mut oks = drain_in(&mut ep).0.len();
    let mut end = None;
    for _ in 0..100 {
        let Some(next) = ep.poll_timeout() else { break };
        ep.handle_timeout(next);
        let (sent, evs) = drain_in(&mut ep);
        oks += names(&sent).iter().filter(|n| *n == "200").count();
        if !evs.is_empty() {
            assert_eq!(names(&sent), ["BYE"]);
            end = Some((next - t0, evs));
            break;
        }
    }
    assert_eq!(
        end,
        Some((
            Duration::from_secs(32),
            vec![CallEvent::Ended(EndReason::NoAck)]
        ))
    );
    // 0, 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s: 1 + 3 + 7 (every T2 = 4 s from 7.5 s).
    assert_eq!(oks, 11);
}

#[test]
fn inbound_reject_and_misuse() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    incoming(&mut ep, t0);
    let h = CallHandle(INBOUND_HANDLE_BASE);
    assert!(ep
        .handle_command(t0, h, Command::Reject { status: 200 })
        .is_err());
    ep.handle_command(t0, h, Command::Reject { status: 603 })
        .unwrap();
    let (sent, evs) = drain_in(&mut ep);
    assert_eq!(names(&sent), ["603"]);
    assert_eq!(evs, [CallEvent::Ended(EndReason::Rejected(603))]);
    assert!(
        ep.handle_command(t0, h, Command::Ring).is_err(),
        "the call is gone"
    );
}

/// Figure for NOTES.md: `cargo test -p outcall-sip --release --lib -- --ignored --nocapture
/// call_throughput` (dial, 180, 200, ACK, BYE, 200 per call, all in process).
#[test]
#[ignore = "measurement, not a check"]
fn call_throughput() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let n = 20_000u32;
    #[allow(clippy::disallowed_methods)] // a measurement reads the clock; cores never do
    let start = std::time::Instant::now();
    for i in 0..n {
        let now = at(t0, u64::from(i) * 10);
        let invite = dial(&mut ep, now);
        ep.handle_input(now, proxy(), reply(&invite, 180, b""));
        ep.handle_input(now, proxy(), reply(&invite, 200, b"sdp"));
        drain(&mut ep);
        ep.handle_command(now, CallHandle(1), Command::Hangup)
            .unwrap();
        let (sent, _) = drain(&mut ep);
        assert_eq!(names(&sent), ["BYE"], "call {i}");
        ep.handle_input(now, proxy(), reply(req_of(&sent[0]), 200, b""));
        assert_eq!(
            drain(&mut ep).1,
            [CallEvent::Ended(EndReason::LocalHangup)],
            "call {i}"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.0} complete calls/s through endpoint + transactions",
        f64::from(n) / secs
    );
}

#[test]
fn the_trunk_proxy_is_not_flood_limited() {
    // 150 calls in the same instant: 300 messages from the proxy, above the default burst of
    // 200 that applies to any other source.
    let t0 = epoch();
    let mut ep = endpoint(false);
    for i in 0..150 {
        let invite = dial(&mut ep, t0);
        ep.handle_input(t0, proxy(), reply(&invite, 180, b""));
        ep.handle_input(t0, proxy(), reply(&invite, 486, b""));
        let (_, evs) = drain(&mut ep);
        assert_eq!(
            evs,
            [
                CallEvent::Ringing,
                CallEvent::Ended(EndReason::Rejected(486))
            ],
            "call {i}"
        );
    }
}

#[test]
fn second_fork_2xx_is_acked_and_released() {
    let t0 = epoch();
    let mut ep = endpoint(false);
    let invite = answered(&mut ep, t0);
    let mut fork = msg::response_to(&invite, 200, Some("fork2"));
    fork.headers
        .push(Header::Contact(rsip::headers::Contact::new(
            "<sip:other@198.51.100.9>",
        )));
    ep.handle_input(
        at(t0, 200),
        proxy(),
        msg::to_bytes(&SipMessage::Response(fork)),
    );
    let (sent, evs) = drain(&mut ep);
    assert!(evs.is_empty(), "the call is not affected");
    assert_eq!(names(&sent), ["ACK", "BYE"]);
    for m in &sent {
        assert_eq!(msg::to_tag(req_of(m)).unwrap().as_deref(), Some("fork2"));
        assert_eq!(req_of(m).uri.to_string(), "sip:other@198.51.100.9");
    }
    // Our own call still hangs up towards the first dialog.
    ep.handle_command(at(t0, 300), CallHandle(1), Command::Hangup)
        .unwrap();
    let (sent, _) = drain(&mut ep);
    assert_eq!(names(&sent), ["BYE"]);
    assert_eq!(
        msg::to_tag(req_of(&sent[0])).unwrap().as_deref(),
        Some("peer")
    );
}
