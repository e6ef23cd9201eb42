//! Inbound calls (UAS, RFC 3261 §13.3): the Incoming event, provisional and final responses,
//! and the ACK that confirms our 2xx.

use std::time::Instant;

use rsip::headers::UntypedHeader;
use rsip::Header;

use super::{Call, CallEvent, CallHandle, EndReason, Endpoint, State};
use crate::dialog::Dialog;
use crate::error::Error;
use crate::msg::{self, Request, Response};
use crate::transaction::layer::{Input as LayerInput, TxId};
use crate::transport;

impl Endpoint {
    pub(super) fn uas_response(
        &mut self,
        h: CallHandle,
        code: u16,
        body: Vec<u8>,
    ) -> Result<Response, Error> {
        let contact = self.contact();
        let c = self.call(h)?;
        let tag = c.dialog.as_ref().map(|d| d.id.local_tag.clone());
        let mut r = msg::response_to(&c.invite, code, tag.as_deref());
        r.headers
            .push(Header::Contact(rsip::headers::Contact::new(format!(
                "<{contact}>"
            ))));
        if !body.is_empty() {
            r.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
            r.headers
                .push(Header::ContentType(rsip::headers::ContentType::new(
                    "application/sdp",
                )));
            r.headers
                .push(Header::ContentLength(rsip::headers::ContentLength::new(
                    body.len().to_string(),
                )));
            r.body = body;
        }
        Ok(r)
    }

    pub(super) fn reject(&mut self, now: Instant, h: CallHandle, status: u16) -> Result<(), Error> {
        let resp = self.uas_response(h, status, Vec::new())?;
        let tx = self.call(h)?.invite_tx;
        self.layer
            .handle_input(now, LayerInput::Respond { tx, response: resp })?;
        self.emit(h, CallEvent::Ended(EndReason::Rejected(status)));
        Ok(())
    }

    pub(super) fn on_incoming_invite(&mut self, now: Instant, tx: TxId, req: Request) {
        let tag = transport::new_tag(&mut self.rng);
        let dialog = match Dialog::uas(&req, &tag) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%e, "inbound INVITE unusable");
                return self.respond(now, tx, &req, 400);
            }
        };
        let h = CallHandle(self.next_inbound);
        self.next_inbound += 1;
        let from = req
            .headers
            .iter()
            .find_map(|h| match h {
                Header::From(v) => Some(crate::dialog::uri_of(v.value())),
                _ => None,
            })
            .unwrap_or_default();
        let event = CallEvent::Incoming {
            from,
            to: req.uri.to_string(),
            offer: req.body.clone(),
        };
        self.tx_calls.insert(tx, h);
        self.calls.insert(
            h,
            Call {
                state: State::Incoming,
                invite: req,
                invite_tx: tx,
                dialog: Some(dialog),
                ack: None,
                provisional: false,
                cancel_pending: false,
                ring_deadline: None,
                auth: None,
                reinvite: None,
                reinvite_offer: None,
                glare_deadline: None,
                owner: false,
                ok: None,
                ack_deadline: None,
            },
        );
        self.emit(h, event);
    }

    pub(super) fn on_ack(&mut self, req: &Request) {
        let found = self
            .calls
            .iter()
            .find(|(_, c)| {
                c.state == State::Answering
                    && c.dialog.as_ref().is_some_and(|d| d.matches_request(req))
            })
            .map(|(h, _)| *h);
        if let Some(h) = found {
            let c = self.calls.get_mut(&h).expect("found above");
            c.state = State::Confirmed;
            c.ok = None;
            c.ack_deadline = None;
            self.emit(h, CallEvent::Established);
        }
    }
}
