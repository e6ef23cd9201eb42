//! Throwing events and selecting catch handlers (VoiceXML 2.0 §5.2).

use super::*;

impl Interpreter {
    // ---------------------------------------------------------------- events

    pub(super) fn throw(&mut self, ev: Event) {
        self.exec.clear();
        if let Wait::Collect(_) = self.wait {
            self.out.push_back(Output::StopListening);
        }
        if !matches!(self.wait, Wait::Ended) {
            self.wait = Wait::None;
        }
        self.timer = None;
        self.events.push_back(ev);
    }

    pub(super) fn handle_event(&mut self, ev: Event) {
        self.out.push_back(Output::Event {
            name: ev.name.clone(),
            message: ev.message.clone(),
        });
        if self.doc.is_none() {
            return self.end(Value::Null);
        }
        let item = self.current_item().map(|(i, _)| i);
        let key = (item, ev.name.clone());
        let count = {
            let c = self.form.event_counts.entry(key).or_insert(0);
            *c += 1;
            *c
        };
        // Candidate catches: innermost scope first, document order within a scope.
        let mut cands: Vec<Catch> = Vec::new();
        if let Some(i) = item {
            cands.extend(self.item(i).catches.iter().cloned());
        }
        if self.dialog < self.docu().dialogs.len() {
            cands.extend(self.dlg().catches.iter().cloned());
        }
        cands.extend(self.docu().catches.iter().cloned());
        if let Some(a) = &self.app {
            cands.extend(a.doc.catches.iter().cloned());
        }
        let matching: Vec<Catch> = cands
            .into_iter()
            .filter(|c| c.events.is_empty() || c.events.iter().any(|e| event_matches(e, &ev.name)))
            .collect();
        let anon = self.new_anon();
        let _ = self.js.declare_json(anon, "_event", Some(&json!(ev.name)));
        let _ = self.js.declare_json(
            anon,
            "_message",
            Some(&ev.message.clone().map(Value::String).unwrap_or(Value::Null)),
        );
        let mut with_cond = Vec::new();
        for c in matching {
            if let Some(cond) = &c.cond {
                match self.js.eval_bool(cond) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => continue,
                }
            }
            with_cond.push(c);
        }
        let best = with_cond
            .iter()
            .map(|c| c.count)
            .filter(|&c| c <= count)
            .max();
        let chosen = best.and_then(|b| with_cond.into_iter().find(|c| c.count == b));
        self.reprompted = false;
        self.in_catch = true;
        match chosen {
            Some(c) => {
                self.exec.push(Frame {
                    body: c.body.clone(),
                    pc: 0,
                    scope: anon,
                    foreach: None,
                });
            }
            None => self.default_handler(&ev),
        }
    }

    /// Platform default handlers (VoiceXML 2.0 §5.2.5).
    pub(super) fn default_handler(&mut self, ev: &Event) {
        let n = ev.name.as_str();
        if n == "cancel" {
            return;
        }
        if ["noinput", "nomatch", "help", "maxspeechtimeout"]
            .iter()
            .any(|p| event_matches(p, n))
        {
            if self.disconnected {
                return self.end(Value::Null);
            }
            self.reprompted = true;
            return;
        }
        if n.starts_with("connection.disconnect") {
            return self.end(Value::Null);
        }
        // error.* and application events: exit.
        self.end(Value::Null)
    }
}
