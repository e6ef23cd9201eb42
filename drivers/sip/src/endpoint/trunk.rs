//! Trunk-level work of the endpoint: registration with refresh and the OPTIONS keep-alive.

use std::time::Instant;

use rand::Rng;

use super::{Endpoint, Output, TrunkEvent, REGISTER_RETRY};
use crate::msg::{self, Request, SipMessage};
use crate::register::{RegOutcome, TrunkState};
use crate::transaction::layer::Event;
use crate::transport;

impl Endpoint {
    /// Starts registration and keep-alive (both due at `now`).
    pub fn start_trunk(&mut self, now: Instant) {
        if let Some(r) = &mut self.registration {
            r.schedule(now);
        }
        if self.cfg.keepalive.is_some() {
            self.keepalive_at = Some(now);
        }
    }

    /// What the keep-alive last saw.
    #[must_use]
    pub fn trunk_state(&self) -> TrunkState {
        self.trunk
    }

    pub(super) fn send_register(&mut self, now: Instant) {
        let contact = self.contact();
        let (transport, local) = (self.cfg.transport, self.cfg.local);
        let Some(r) = &mut self.registration else {
            return;
        };
        let req = r.request(transport, local, &contact, &mut self.rng);
        self.send_register_request(now, req);
    }

    pub(super) fn send_register_request(&mut self, now: Instant, req: Request) {
        match self.layer.start_client(now, req.clone(), self.peer()) {
            Ok((tx, _)) => self.reg_tx = Some((tx, req)),
            Err(e) => tracing::warn!(%e, "REGISTER not sent"),
        }
    }

    pub(super) fn registration_failed(&mut self, now: Instant, code: u16) {
        self.reg_tx = None;
        if let Some(r) = &mut self.registration {
            r.schedule(now + REGISTER_RETRY);
        }
        self.out
            .push_back(Output::Trunk(TrunkEvent::RegistrationFailed(code)));
    }

    pub(super) fn send_keepalive(&mut self, now: Instant) {
        let Some(interval) = self.cfg.keepalive else {
            return;
        };
        self.keepalive_at = Some(now + interval);
        if self.ka_tx.is_some() {
            return; // the previous probe is still running (Timer F is 32 s)
        }
        let via = self.via();
        let tag = transport::new_tag(&mut self.rng);
        let call_id = format!("{:016x}@ka", self.rng.gen::<u64>());
        let text = format!(
            "OPTIONS sip:{proxy} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
From: <{contact}>;tag={tag}\r\nTo: <sip:{proxy}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n",
            proxy = self.cfg.proxy,
            contact = self.contact(),
        );
        let Ok(SipMessage::Request(req)) = msg::parse(text.as_bytes()) else {
            unreachable!("OPTIONS built from addresses parses")
        };
        match self.layer.start_client(now, req, self.peer()) {
            Ok((tx, _)) => self.ka_tx = Some(tx),
            Err(e) => tracing::warn!(%e, "OPTIONS not sent"),
        }
    }

    pub(super) fn set_trunk(&mut self, up: bool) {
        let new = if up { TrunkState::Up } else { TrunkState::Down };
        if new != self.trunk {
            self.trunk = new;
            self.out.push_back(Output::Trunk(if up {
                TrunkEvent::Up
            } else {
                TrunkEvent::Down
            }));
        }
    }

    /// Handles events of the registration and keep-alive transactions; false if not theirs.
    pub(super) fn on_trunk_event(&mut self, now: Instant, e: &Event) -> bool {
        let (tx, resp) = match e {
            Event::Response { tx, response } => (*tx, Some(response)),
            Event::Timeout { tx, .. } | Event::TransportError { tx } => (*tx, None),
            _ => return false,
        };
        if self.ka_tx == Some(tx) {
            match resp {
                Some(r) if r.status_code.code() < 200 => {}
                Some(_) => {
                    self.ka_tx = None;
                    self.set_trunk(true);
                }
                None => {
                    self.ka_tx = None;
                    self.set_trunk(false);
                }
            }
            return true;
        }
        let Some((rtx, req)) = self.reg_tx.clone() else {
            return false;
        };
        if rtx != tx {
            return false;
        }
        let Some(resp) = resp else {
            self.registration_failed(now, 408);
            return true;
        };
        let Some(r) = &mut self.registration else {
            return true;
        };
        match r.on_response(now, &req, resp, &mut self.rng) {
            RegOutcome::Pending => {}
            RegOutcome::Registered(d) => {
                self.reg_tx = None;
                self.out.push_back(Output::Trunk(TrunkEvent::Registered(d)));
            }
            RegOutcome::Resend(next) => self.send_register_request(now, next),
            RegOutcome::Failed(code) => self.registration_failed(now, code),
        }
        true
    }
}
