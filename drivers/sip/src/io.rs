//! The tokio UDP shell around [`Endpoint`] (feature `io`, on by default).
//!
//! It holds no protocol state: one `select!` over the socket, the command channel, the
//! endpoint's next deadline and the shutdown future; after every input it drains
//! `poll_output` (STYLE.md §2). TCP targets (the §18.1.1 size rule) are not served by this shell
//! yet: such datagrams are dropped with a warning and the transaction times out.

use std::future::Future;
use std::io;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::endpoint::{CallEvent, CallHandle, Command, Endpoint, Output};
use crate::transport::{Target, Transport};

/// Largest datagram read.
const RECV_BUF: usize = 65_535;

/// The shell's notion of now, as a std `Instant` (follows tokio's paused clock in tests).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn flush(
    endpoint: &mut Endpoint,
    socket: &UdpSocket,
    events: &mpsc::Sender<(CallHandle, CallEvent)>,
) -> io::Result<()> {
    while let Some(o) = endpoint.poll_output() {
        match o {
            Output::Transmit {
                to:
                    Target {
                        transport: Transport::Udp,
                        addr,
                    },
                bytes,
            } => {
                if let Err(e) = socket.send_to(&bytes, addr).await {
                    tracing::warn!(%addr, %e, "SIP send failed");
                }
            }
            Output::Transmit { to, .. } => {
                tracing::warn!(transport = %to.transport, addr = %to.addr, "no stream transport in the UDP shell");
            }
            Output::Trunk(event) => tracing::info!(?event, "trunk"),
            Output::Call { handle, event } => {
                if events.send((handle, event)).await.is_err() {
                    tracing::debug!("event receiver gone");
                }
            }
        }
    }
    Ok(())
}

/// Runs `endpoint` on `socket` until `shutdown` resolves or the command sender is dropped;
/// returns the endpoint (so a caller can inspect or hand it on).
///
/// # Errors
/// An I/O error of the socket other than a send failure (which is logged and left to the
/// transactions' retransmission and timers).
pub async fn run(
    mut endpoint: Endpoint,
    socket: UdpSocket,
    mut commands: mpsc::Receiver<(CallHandle, Command)>,
    events: mpsc::Sender<(CallHandle, CallEvent)>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<Endpoint> {
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        flush(&mut endpoint, &socket, &events).await?;
        let deadline = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            () = &mut shutdown => return Ok(endpoint),
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                endpoint.handle_input(now(), Target { transport: Transport::Udp, addr: from }, buf[..n].to_vec());
            }
            cmd = commands.recv() => {
                let Some((handle, cmd)) = cmd else { return Ok(endpoint) };
                if let Err(e) = endpoint.handle_command(now(), handle, cmd) {
                    tracing::warn!(call = handle.0, %e, "command refused");
                }
            }
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => endpoint.handle_timeout(now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credentials;
    use crate::endpoint::{EndReason, EndpointConfig};
    use crate::msg::{self, Method, SipMessage};
    use crate::transaction::layer::LayerConfig;
    use rsip::headers::UntypedHeader;
    use std::time::Duration;

    /// A scripted UAS on 127.0.0.1: 180 + 200 to INVITE, 200 to BYE.
    async fn uas(sock: UdpSocket) {
        let mut buf = vec![0u8; RECV_BUF];
        for _ in 0..50 {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(SipMessage::Request(req)) = msg::parse(&buf[..n]) else {
                continue;
            };
            let codes: &[u16] = match req.method {
                Method::Invite => &[180, 200],
                Method::Bye => &[200],
                _ => &[],
            };
            for code in codes {
                let mut r = msg::response_to(&req, *code, Some("uas"));
                r.headers
                    .push(rsip::Header::Contact(rsip::headers::Contact::new(format!(
                        "<sip:uas@{}>",
                        sock.local_addr().unwrap()
                    ))));
                let _ = sock
                    .send_to(&msg::to_bytes(&SipMessage::Response(r)), from)
                    .await;
            }
            if req.method == Method::Bye {
                return;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn udp_call_answered_and_hung_up() {
        let uas_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uas_addr = uas_sock.local_addr().unwrap();
        let ua = tokio::spawn(uas(uas_sock));
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ep = Endpoint::new(
            EndpointConfig {
                local: sock.local_addr().unwrap(),
                transport: Transport::Udp,
                proxy: uas_addr,
                contact_user: "outcall".into(),
                credentials: None,
                timers: LayerConfig::default(),
                register: None,
                keepalive: None,
            },
            9,
        );
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, mut ev_rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shell = tokio::spawn(run(ep, sock, cmd_rx, ev_tx, async {
            let _ = stop_rx.await;
        }));
        cmd_tx
            .send((
                CallHandle(1),
                Command::Dial {
                    to: format!("sip:123@{uas_addr}"),
                    from: "sip:100@127.0.0.1".into(),
                    offer: Vec::new(),
                    ring_timeout: Duration::from_secs(30),
                },
            ))
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let ev = tokio::time::timeout(Duration::from_secs(60), ev_rx.recv())
                .await
                .unwrap()
                .unwrap();
            seen.push(ev.1.clone());
            match ev.1 {
                CallEvent::Answered(_) => {
                    cmd_tx.send((CallHandle(1), Command::Hangup)).await.unwrap()
                }
                CallEvent::Ended(_) => break,
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                CallEvent::Ringing,
                CallEvent::Answered(Vec::new()),
                CallEvent::Ended(EndReason::LocalHangup)
            ]
        );
        stop_tx.send(()).unwrap();
        let ep = shell.await.unwrap().unwrap();
        assert_eq!(ep.calls(), 0);
        ua.await.unwrap();
    }

    fn sipp_installed() -> bool {
        let ok = std::process::Command::new("sipp")
            .arg("-v")
            .output()
            .is_ok();
        if !ok {
            eprintln!("sipp not installed: skipped");
        }
        ok
    }

    /// Places one call from the UDP shell to a sipp UAS started with `scenario` arguments,
    /// hangs up once answered, and returns the call's events. Real time, bounded by timeouts.
    async fn call_sipp_uas(scenario: &[&str], credentials: Option<Credentials>) -> Vec<CallEvent> {
        call_sipp_uas_with(
            scenario,
            credentials,
            Duration::from_secs(10),
            AfterAnswer::Hangup,
        )
        .await
    }

    /// What the test does once the call is answered.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum AfterAnswer {
        Hangup,
        Reinvite,
        Wait,
    }

    /// As [`call_sipp_uas`], with a ring timeout and a choice of what to do once answered
    /// (a re-INVITE is followed by the hang-up once it succeeds).
    async fn call_sipp_uas_with(
        scenario: &[&str],
        credentials: Option<Credentials>,
        ring_timeout: Duration,
        after: AfterAnswer,
    ) -> Vec<CallEvent> {
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut sipp = std::process::Command::new("sipp")
            .args(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
            .args(["-timeout", "20s", "-nostdin"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sipp starts");
        let uas_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ep = Endpoint::new(
            EndpointConfig {
                local: sock.local_addr().unwrap(),
                transport: Transport::Udp,
                proxy: uas_addr,
                contact_user: "outcall".into(),
                credentials,
                timers: LayerConfig::default(),
                register: None,
                keepalive: None,
            },
            11,
        );
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, mut ev_rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shell = tokio::spawn(run(ep, sock, cmd_rx, ev_tx, async {
            let _ = stop_rx.await;
        }));
        // sipp needs a moment to bind; our INVITE retransmissions (Timer A) cover that.
        cmd_tx
            .send((
                CallHandle(1),
                Command::Dial {
                    to: format!("sip:service@{uas_addr}"),
                    from: "sip:100@127.0.0.1".into(),
                    offer: Vec::new(),
                    ring_timeout,
                },
            ))
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let Ok(Some((_, ev))) =
                tokio::time::timeout(Duration::from_secs(15), ev_rx.recv()).await
            else {
                break;
            };
            seen.push(ev.clone());
            match ev {
                CallEvent::Answered(_) if after == AfterAnswer::Wait => {}
                CallEvent::Answered(_) if after == AfterAnswer::Reinvite => {
                    let offer = b"v=0\r\n".to_vec();
                    cmd_tx
                        .send((CallHandle(1), Command::Reinvite { offer }))
                        .await
                        .unwrap();
                }
                CallEvent::Answered(_) | CallEvent::Reinvited(_) => {
                    cmd_tx.send((CallHandle(1), Command::Hangup)).await.unwrap();
                }
                CallEvent::Ended(_) => break,
                _ => {}
            }
        }
        stop_tx.send(()).unwrap();
        let _ = shell.await;
        let _ = sipp.kill();
        let _ = sipp.wait();
        seen
    }

    /// Interop with a real peer: sipp's built-in `uas` scenario (180, 200, waits for ACK and
    /// BYE) on 127.0.0.1. Skipped when sipp is not installed.
    #[tokio::test]
    async fn sipp_uas_interop() {
        if !sipp_installed() {
            return;
        }
        let seen = call_sipp_uas(&["-sn", "uas"], None).await;
        assert!(
            matches!(seen.first(), Some(CallEvent::Ringing)),
            "events: {seen:?}"
        );
        assert!(
            matches!(seen.get(1), Some(CallEvent::Answered(_))),
            "events: {seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&CallEvent::Ended(EndReason::LocalHangup)),
            "{seen:?}"
        );
    }

    /// A sipp UAS that challenges the INVITE with 401 (MD5, qop=auth) and checks our digest
    /// with its `verifyauth` action (testdata/sipp/uas_401.xml): a wrong answer gets 403.
    /// (sipp's verifyauth reads only `Authorization`, so 407 is covered by the unit tests.)
    #[tokio::test]
    async fn sipp_uas_401_interop() {
        if !sipp_installed() {
            return;
        }
        let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sipp/uas_401.xml");
        let creds = Credentials {
            username: "100".into(),
            password: "secret".into(),
        };
        let seen = call_sipp_uas(&["-sf", scenario], Some(creds)).await;
        assert!(
            matches!(seen.first(), Some(CallEvent::Answered(_))),
            "events: {seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&CallEvent::Ended(EndReason::LocalHangup)),
            "{seen:?}"
        );
        // The same scenario with a wrong password: sipp answers 403.
        let wrong = Credentials {
            username: "100".into(),
            password: "wrong".into(),
        };
        let seen = call_sipp_uas(&["-sf", scenario], Some(wrong)).await;
        assert_eq!(seen, [CallEvent::Ended(EndReason::Rejected(403))]);
    }

    /// A callee that never answers: the ring timeout CANCELs; sipp answers 200 + 487 and gets
    /// the ACK (testdata/sipp/uas_no_answer.xml).
    #[tokio::test]
    async fn sipp_ring_timeout_cancel_interop() {
        if !sipp_installed() {
            return;
        }
        let scenario = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sipp/uas_no_answer.xml"
        );
        let seen = call_sipp_uas_with(
            &["-sf", scenario],
            None,
            Duration::from_secs(2),
            AfterAnswer::Hangup,
        )
        .await;
        // Ringing is reported unless sipp started so slowly that the CANCEL was already pending.
        assert_eq!(
            seen.last(),
            Some(&CallEvent::Ended(EndReason::Cancelled)),
            "{seen:?}"
        );
        assert!(
            seen.len() <= 2
                && seen[..seen.len() - 1]
                    .iter()
                    .all(|e| *e == CallEvent::Ringing)
        );
    }

    /// Our re-INVITE is refused with 491; the retry after the §14.1 back-off (2.1–4 s, real
    /// time here) succeeds (testdata/sipp/uas_glare_491.xml).
    #[tokio::test]
    async fn sipp_glare_interop() {
        if !sipp_installed() {
            return;
        }
        let scenario = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sipp/uas_glare_491.xml"
        );
        let seen = call_sipp_uas_with(
            &["-sf", scenario],
            None,
            Duration::from_secs(10),
            AfterAnswer::Reinvite,
        )
        .await;
        assert!(
            matches!(seen.first(), Some(CallEvent::Answered(_))),
            "events: {seen:?}"
        );
        assert!(
            matches!(seen.get(1), Some(CallEvent::Reinvited(_))),
            "events: {seen:?}"
        );
        assert_eq!(
            seen.get(2),
            Some(&CallEvent::Ended(EndReason::LocalHangup)),
            "{seen:?}"
        );
    }

    /// A busy callee (testdata/sipp/uas_busy.xml): 486 ends the call with Q.850 cause 17.
    #[tokio::test]
    async fn sipp_busy_interop() {
        if !sipp_installed() {
            return;
        }
        let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sipp/uas_busy.xml");
        let seen = call_sipp_uas(&["-sf", scenario], None).await;
        assert_eq!(seen, [CallEvent::Ended(EndReason::Rejected(486))]);
        assert_eq!(EndReason::Rejected(486).q850(false), 17);
    }

    /// A callee that hangs up mid-call (testdata/sipp/uas_hangs_up.xml): its BYE gets 200.
    #[tokio::test]
    async fn sipp_remote_bye_interop() {
        if !sipp_installed() {
            return;
        }
        let scenario = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sipp/uas_hangs_up.xml"
        );
        let seen = call_sipp_uas_with(
            &["-sf", scenario],
            None,
            Duration::from_secs(10),
            AfterAnswer::Wait,
        )
        .await;
        assert!(
            matches!(seen.first(), Some(CallEvent::Answered(_))),
            "events: {seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&CallEvent::Ended(EndReason::RemoteHangup)),
            "{seen:?}"
        );
    }

    /// Inbound interop: sipp's built-in `uac` scenario calls us (INVITE, ACK, BYE); the test
    /// answers the Incoming event. Skipped when sipp is not installed.
    #[tokio::test]
    async fn sipp_uac_inbound_interop() {
        if std::process::Command::new("sipp")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("sipp not installed: skipped");
            return;
        }
        let sipp_port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ours = sock.local_addr().unwrap();
        let ep = Endpoint::new(
            EndpointConfig {
                local: ours,
                transport: Transport::Udp,
                proxy: format!("127.0.0.1:{sipp_port}").parse().unwrap(),
                contact_user: "outcall".into(),
                credentials: None,
                timers: LayerConfig::default(),
                register: None,
                keepalive: None,
            },
            12,
        );
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, mut ev_rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shell = tokio::spawn(run(ep, sock, cmd_rx, ev_tx, async {
            let _ = stop_rx.await;
        }));
        let mut sipp = std::process::Command::new("sipp")
            .arg(ours.to_string())
            .args([
                "-sn",
                "uac",
                "-i",
                "127.0.0.1",
                "-p",
                &sipp_port.to_string(),
                "-m",
                "1",
            ])
            .args(["-timeout", "20s", "-nostdin", "-d", "100"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sipp starts");
        let mut seen = Vec::new();
        for _ in 0..10 {
            let Ok(Some((h, ev))) =
                tokio::time::timeout(Duration::from_secs(15), ev_rx.recv()).await
            else {
                break;
            };
            seen.push(ev.clone());
            match ev {
                CallEvent::Incoming { .. } => {
                    cmd_tx.send((h, Command::Ring)).await.unwrap();
                    cmd_tx
                        .send((
                            h,
                            Command::Answer {
                                sdp: b"v=0\r\n".to_vec(),
                            },
                        ))
                        .await
                        .unwrap();
                }
                CallEvent::Ended(_) => break,
                _ => {}
            }
        }
        stop_tx.send(()).unwrap();
        let _ = shell.await;
        // sipp ends by itself after its one call (-m 1), or at its own -timeout of 20 s.
        let status = tokio::time::timeout(
            Duration::from_secs(25),
            tokio::task::spawn_blocking(move || sipp.wait().ok()),
        )
        .await
        .expect("sipp exits within its own timeout")
        .unwrap();
        assert!(
            matches!(seen.first(), Some(CallEvent::Incoming { .. })),
            "events: {seen:?}"
        );
        assert_eq!(
            seen[1..],
            [
                CallEvent::Established,
                CallEvent::Ended(EndReason::RemoteHangup)
            ],
            "events: {seen:?}"
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "sipp saw a successful call: {status:?}"
        );
    }
}
