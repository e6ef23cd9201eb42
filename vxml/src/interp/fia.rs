//! The FIA proper (VoiceXML 2.0 Appendix C): select and collect, DTMF collection and its timers, filling items, `<filled>`, menus and links.

use super::*;

impl Interpreter {
    // ---------------------------------------------------------------- FIA

    pub(super) fn fia_iteration(&mut self, now: Instant) {
        // Select phase
        let sel = match self.form.next_item.take() {
            Some(i) => Some(i),
            None => {
                let n = self.dlg().items.len();
                let mut found = None;
                for i in 0..n {
                    let it = self.item(i).clone_head();
                    match self.js.eval(&it.0) {
                        Ok(None) => {}
                        Ok(Some(_)) => continue,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    }
                    if let Some(c) = &it.1 {
                        match self.js.eval_bool(c) {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => return self.throw(Event::semantic(e.0)),
                        }
                    }
                    found = Some(i);
                    break;
                }
                found
            }
        };
        let Some(i) = sel else {
            // No form item left: the form, and the document, are done (Appendix C).
            if !self.stack.is_empty() {
                return self.throw(Event::semantic("subdialog ended without <return>"));
            }
            return self.end(Value::Null);
        };
        let changed_item = self.form.current != Some(i);
        self.form.current = Some(i);
        if changed_item {
            // prompt suppression only applies when the same item is revisited after a catch
        }
        let item = self.dlg().items[i].clone();
        // Collect phase: prompts
        if !matches!(item.kind, ItemKind::Block(_)) {
            if self.form.suppress_prompts && !changed_item {
                self.form.suppress_prompts = false;
            } else {
                self.form.suppress_prompts = false;
                let c = self.form.prompt_counts.entry(i).or_insert(0);
                *c += 1;
                let count = *c;
                self.queue_item_prompts(&item, count);
            }
        }
        self.form.suppress_prompts = false;
        match &item.kind {
            ItemKind::Block(body) => {
                self.set_item_var(&item.name, Some(&Value::Bool(true)));
                let anon = self.new_anon();
                self.exec.push(Frame {
                    body: body.clone(),
                    pc: 0,
                    scope: anon,
                    foreach: None,
                });
            }
            ItemKind::Field(_) | ItemKind::Initial => self.listen(now, i),
            ItemKind::Record(r) => {
                if self.disconnected {
                    return self.end(Value::Null);
                }
                self.flush_prompts();
                self.out.push_back(Output::Record {
                    item: item.name.clone(),
                    beep: r.beep,
                    maxtime_ms: r.maxtime_ms,
                    finalsilence_ms: r.finalsilence_ms,
                    dtmfterm: r.dtmfterm,
                    media_type: r.media_type.clone(),
                });
                self.wait = Wait::Record(i);
            }
            ItemKind::Transfer(t) => {
                if self.disconnected {
                    return self.end(Value::Null);
                }
                let dest = match (&t.dest, &t.destexpr) {
                    (Some(d), _) => d.clone(),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(d) => d,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    (None, None) => {
                        return self.throw(Event::new(
                            "error.badfetch",
                            Some("transfer without dest".into()),
                        ))
                    }
                };
                let aai = match (&t.aai, &t.aaiexpr) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(a) => Some(a),
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    _ => None,
                };
                let ttype = t.transfer_type.clone().unwrap_or_else(|| {
                    if t.bridge {
                        "bridge".into()
                    } else {
                        "blind".into()
                    }
                });
                if ttype == "consultation" {
                    return self.throw(Event::new("error.unsupported.transfer.consultation", None));
                }
                if !(dest.starts_with("tel:")
                    || dest.starts_with("sip:")
                    || dest.starts_with("sips:"))
                {
                    return self.throw(Event::new("error.connection.baddestination", Some(dest)));
                }
                self.flush_prompts();
                self.out.push_back(Output::Transfer {
                    item: item.name.clone(),
                    dest,
                    transfer_type: ttype.clone(),
                    connecttimeout_ms: t.connecttimeout_ms.unwrap_or(30_000),
                    maxtime_ms: t.maxtime_ms.unwrap_or(0),
                    aai,
                });
                self.wait = Wait::Transfer(i, ttype == "bridge");
            }
            ItemKind::Subdialog(s) => {
                let src = match (&s.src, &s.srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => match self.js.eval_string(e) {
                        Ok(s) => s,
                        Err(e) => return self.throw(Event::semantic(e.0)),
                    },
                    _ => unreachable!("the parser requires src or srcexpr"),
                };
                let mut params = Vec::new();
                for p in &s.params {
                    let v = match (&p.expr, &p.value) {
                        (Some(e), _) => match self.js.eval(e) {
                            Ok(v) => v,
                            Err(e) => return self.throw(Event::semantic(e.0)),
                        },
                        (None, Some(v)) => Some(Value::String(v.clone())),
                        _ => None,
                    };
                    params.push((p.name.clone(), v));
                }
                let query = match self.namelist_values(&s.namelist) {
                    Ok(q) => q,
                    Err(e) => return self.throw(e),
                };
                let (base, frag) = split_fragment(&src);
                let call = SubCall { params };
                if base.is_empty() {
                    // A dialog of this document: reuse the parsed document.
                    let leaf = self.doc.clone().expect("document loaded");
                    let app = self.app.clone();
                    return self.load(app, leaf, frag, Some(call), false);
                }
                let url = self.resolve(&base);
                self.fetch(
                    FetchKind::Document,
                    url,
                    s.method,
                    query,
                    FetchPurpose::Goto {
                        dialog: frag,
                        subdialog: Some(call),
                    },
                );
            }
            ItemKind::Object => self.throw(Event::new(
                "error.unsupported.objectname",
                Some("<object> is not supported".into()),
            )),
        }
    }

    pub(super) fn listen(&mut self, now: Instant, i: usize) {
        if self.disconnected {
            return self.end(Value::Null);
        }
        let item = self.item(i).clone();
        let mut refs: Vec<(GrammarRef, Target)> = Vec::new();
        let modal = matches!(&item.kind, ItemKind::Field(f) if f.modal);
        if !matches!(item.kind, ItemKind::Initial) {
            refs.extend(item.grammars.iter().cloned().map(|g| (g, Target::Item(i))));
        }
        if !modal {
            refs.extend(
                self.dlg()
                    .grammars
                    .iter()
                    .cloned()
                    .map(|g| (g, Target::Form)),
            );
            let mut links: Vec<Link> = self.dlg().links.clone();
            links.extend(self.docu().links.iter().cloned());
            if let Some(a) = &self.app {
                links.extend(a.doc.links.iter().cloned());
            }
            for l in links {
                for g in &l.grammars {
                    refs.push((g.clone(), Target::Link(l.clone())));
                }
            }
        }
        let mut grammars = Vec::new();
        for (g, target) in refs {
            match self.grammar_of(&g) {
                Ok(Some(grammar)) => grammars.push(Active { grammar, target }),
                Ok(None) => {}
                Err(e) if e.name == "__fetch_grammar" => {
                    let url = e.message.expect("url");
                    // fetch, then come back to this item without re-queuing its prompts
                    self.form.next_item = Some(i);
                    self.form.suppress_prompts = true;
                    self.form.current = Some(i);
                    return self.fetch(
                        FetchKind::Grammar,
                        url.clone(),
                        Method::Get,
                        BTreeMap::new(),
                        FetchPurpose::Grammar { url },
                    );
                }
                Err(e) => return self.throw(e),
            }
        }
        if grammars.is_empty() {
            let voice = item.grammars.iter().any(|g| matches!(g, GrammarRef::Voice));
            let (name, why) = if voice {
                (
                    "error.unsupported.format",
                    "has only voice grammars; outcall recognises DTMF",
                )
            } else {
                ("error.semantic", "has no grammar")
            };
            return self.throw(Event::new(
                name,
                Some(format!("<{}> {} {why}", item.tag, item.name)),
            ));
        }
        let had_prompts = !self.queue.is_empty();
        let bargein = self.queue_bargein;
        self.flush_prompts();
        let timeout = self
            .queue_timeout
            .take()
            .unwrap_or_else(|| self.prop_ms("timeout", DEFAULT_TIMEOUT_MS));
        let termchar = match self.property("termchar") {
            None => Some('#'),
            Some(s) if s.is_empty() => None,
            Some(s) => s.chars().next(),
        };
        let c = Collect {
            item: i,
            grammars,
            keys: String::new(),
            playing: had_prompts,
            bargein,
            timeout: Duration::from_millis(timeout),
            interdigit: Duration::from_millis(
                self.prop_ms("interdigittimeout", DEFAULT_INTERDIGIT_MS),
            ),
            termtimeout: Duration::from_millis(self.prop_ms("termtimeout", DEFAULT_TERMTIMEOUT_MS)),
            termchar,
        };
        self.out.push_back(Output::Listen {
            item: item.name.clone(),
            grammars: c.grammars.iter().map(|a| describe(&a.grammar)).collect(),
            timeout_ms: timeout,
            interdigit_ms: c.interdigit.as_millis() as u64,
            termtimeout_ms: c.termtimeout.as_millis() as u64,
            termchar,
            bargein,
        });
        if !had_prompts {
            self.timer = Some((now + c.timeout, TimerKind::NoInput));
        }
        self.wait = Wait::Collect(c);
        let typeahead = std::mem::take(&mut self.typeahead);
        for k in typeahead.chars() {
            if matches!(self.wait, Wait::Collect(_)) {
                self.on_key(now, k);
            }
        }
    }

    pub(super) fn on_key(&mut self, now: Instant, k: char) {
        // A termchar typed after input that was already complete belongs to that input.
        if self.absorb_termchar.take() == Some(k) {
            return;
        }
        let Wait::Collect(c) = &mut self.wait else {
            if !self.disconnected {
                self.typeahead.push(k);
            }
            return;
        };
        if c.playing {
            if !c.bargein {
                return;
            }
            c.playing = false;
        }
        if Some(k) == c.termchar && !c.keys.is_empty() {
            // The termchar ends the input, unless a grammar takes it as a key.
            let with = format!("{}{k}", c.keys);
            let wanted = c.grammars.iter().any(|a| {
                let s = a.grammar.check(&with);
                s.complete || s.extendable
            });
            if !wanted {
                self.timer = None;
                return self.finish_keys();
            }
        }
        c.keys.push(k);
        let mut complete = false;
        let mut extendable = false;
        for a in &c.grammars {
            let s = a.grammar.check(&c.keys);
            complete |= s.complete;
            extendable |= s.extendable;
        }
        if !complete && !extendable {
            self.timer = None;
            return self.finish_keys();
        }
        if complete && !extendable {
            if c.termchar.is_some() && !c.termtimeout.is_zero() {
                self.timer = Some((now + c.termtimeout, TimerKind::TermTimeout));
                return;
            }
            self.timer = None;
            self.absorb_termchar = c.termchar;
            return self.finish_keys();
        }
        self.timer = Some((now + c.interdigit, TimerKind::InterDigit));
    }

    /// The keys so far are final: match or nomatch.
    pub(super) fn finish_keys(&mut self) {
        let Wait::Collect(c) = std::mem::replace(&mut self.wait, Wait::None) else {
            return;
        };
        self.timer = None;
        self.out.push_back(Output::StopListening);
        let hit = c.grammars.iter().find_map(|a| {
            let s = a.grammar.check(&c.keys);
            s.complete.then_some((a.clone(), s.semantics))
        });
        let Some((active, semantics)) = hit else {
            let _ = self.set_lastresult(&c.keys, None);
            return self.throw(Event::new("nomatch", None));
        };
        let interp = match self.set_lastresult(&c.keys, semantics.as_deref()) {
            Ok(v) => v,
            Err(e) => return self.throw(e),
        };
        match active.target {
            Target::Link(l) => self.follow_link(&l),
            Target::Item(i) => self.fill_item(i, &c.keys, &interp),
            Target::Form => self.fill_form(&c.keys, &interp, c.item),
        }
    }

    /// Sets `application.lastresult$`; returns the ECMAScript expression of the interpretation.
    pub(super) fn set_lastresult(
        &mut self,
        keys: &str,
        semantics: Option<&str>,
    ) -> Result<String, Event> {
        let tmp = "__interp";
        let code = semantics.map_or_else(|| js_string(keys), str::to_string);
        self.js
            .declare_code(self.app_scope, tmp, &code)
            .map_err(|e| Event::semantic(e.0))?;
        let set = format!(
            "application.lastresult$ = [{{utterance: {u}, confidence: 1.0, inputmode: 'dtmf', interpretation: application.{tmp}}}]; \
             application.lastresult$.utterance = {u}; application.lastresult$.confidence = 1.0; \
             application.lastresult$.inputmode = 'dtmf'; application.lastresult$.interpretation = application.{tmp};",
            u = js_string(keys)
        );
        let scope = self.app_scope;
        self.js
            .run_script(scope, &set)
            .map_err(|e| Event::semantic(e.0))?;
        Ok(format!("application.{tmp}"))
    }

    pub(super) fn fill_item(&mut self, i: usize, keys: &str, interp: &str) {
        let item = self.item(i).clone();
        if let ItemKind::Field(Field { menu: Some(m), .. }) = &item.kind {
            let idx = self
                .js
                .eval_string(interp)
                .ok()
                .and_then(|s| s.parse::<usize>().ok());
            let Some(choice) = idx.and_then(|k| m.choices.get(k)).cloned() else {
                return self.throw(Event::new("nomatch", None));
            };
            return self.follow_choice(&choice);
        }
        let slot = match &item.kind {
            ItemKind::Field(f) => f.slot.clone().unwrap_or_else(|| item.name.clone()),
            _ => item.name.clone(),
        };
        let value = format!(
            "(function(v){{ if (v !== null && typeof v === 'object' && !Array.isArray(v) && ({s} in v)) return v[{s}]; return v; }})({interp})",
            s = js_string(&slot)
        );
        if let Err(e) = self.js.declare_code(self.dialog_scope, &item.name, &value) {
            return self.throw(Event::semantic(e.0));
        }
        let shadow = format!(
            "({{utterance: {u}, inputmode: 'dtmf', confidence: 1.0, interpretation: {interp}}})",
            u = js_string(keys)
        );
        let _ = self
            .js
            .declare_code(self.dialog_scope, &format!("{}$", item.name), &shadow);
        self.filled(vec![i]);
    }

    pub(super) fn fill_form(&mut self, keys: &str, interp: &str, listening: usize) {
        let items: Vec<(usize, String, String)> = self
            .dlg()
            .items
            .iter()
            .enumerate()
            .filter_map(|(k, it)| match &it.kind {
                ItemKind::Field(f) => Some((
                    k,
                    it.name.clone(),
                    f.slot.clone().unwrap_or_else(|| it.name.clone()),
                )),
                _ => None,
            })
            .collect();
        let mut filled = Vec::new();
        for (k, name, slot) in items {
            let code = format!(
                "(function(v){{ return (v !== null && typeof v === 'object' && ({s} in v)) ? 't' : 'f'; }})({interp})",
                s = js_string(&slot)
            );
            if self.js.eval_string(&code).as_deref() == Ok("t") {
                let _ = self.js.declare_code(
                    self.dialog_scope,
                    &name,
                    &format!("({interp})[{}]", js_string(&slot)),
                );
                let shadow = format!("({{utterance: {u}, inputmode: 'dtmf', confidence: 1.0, interpretation: {interp}}})", u = js_string(keys));
                let _ = self
                    .js
                    .declare_code(self.dialog_scope, &format!("{name}$"), &shadow);
                filled.push(k);
            }
        }
        if filled.is_empty() {
            // A non-object result fills the item that was listening, if it is a field.
            if matches!(self.item(listening).kind, ItemKind::Field(_)) {
                return self.fill_item(listening, keys, interp);
            }
            return self.throw(Event::new("nomatch", None));
        }
        // Filling any field through a form-level grammar sets the <initial>s (Appendix C).
        let initials: Vec<String> = self
            .dlg()
            .items
            .iter()
            .filter(|it| matches!(it.kind, ItemKind::Initial))
            .map(|it| it.name.clone())
            .collect();
        for n in initials {
            self.set_item_var(&n, Some(&Value::Bool(true)));
        }
        self.filled(filled);
    }

    /// Runs `<filled>` actions after items were filled (VoiceXML 2.0 §2.4).
    pub(super) fn filled(&mut self, just: Vec<usize>) {
        let mut bodies: Vec<Arc<[Stmt]>> = Vec::new();
        for &i in &just {
            for f in &self.item(i).filled {
                bodies.push(f.body.clone());
            }
        }
        let names: Vec<String> = just.iter().map(|&i| self.item(i).name.clone()).collect();
        let form_filled = self.dlg().filled.clone();
        for f in form_filled {
            let list: Vec<String> = if f.namelist.is_empty() {
                self.dlg()
                    .items
                    .iter()
                    .filter(|it| !matches!(it.kind, ItemKind::Block(_)))
                    .map(|it| it.name.clone())
                    .collect()
            } else {
                f.namelist.clone()
            };
            if !list.iter().any(|n| names.contains(n)) {
                continue;
            }
            let ok = if f.any {
                true
            } else {
                list.iter()
                    .all(|n| self.js.eval(n).ok().flatten().is_some())
            };
            if ok {
                bodies.push(f.body.clone());
            }
        }
        let anon = self.new_anon();
        for b in bodies.into_iter().rev() {
            self.exec.push(Frame {
                body: b,
                pc: 0,
                scope: anon,
                foreach: None,
            });
        }
    }

    pub(super) fn follow_choice(&mut self, c: &Choice) {
        if let Some(e) = &c.event {
            let msg = c.message.clone().or_else(|| {
                c.messageexpr
                    .as_ref()
                    .and_then(|m| self.js.eval_string(m).ok())
            });
            return self.throw(Event::new(e.clone(), msg));
        }
        if let Some(e) = &c.eventexpr {
            return match self.js.eval_string(e) {
                Ok(name) => self.throw(Event::new(name, None)),
                Err(e) => self.throw(Event::semantic(e.0)),
            };
        }
        let target = match (&c.next, &c.expr) {
            (Some(n), _) => n.clone(),
            (None, Some(e)) => match self.js.eval_string(e) {
                Ok(t) => t,
                Err(e) => return self.throw(Event::semantic(e.0)),
            },
            _ => return self.throw(Event::semantic("choice without target")),
        };
        self.goto_uri(&target);
    }

    pub(super) fn follow_link(&mut self, l: &Link) {
        let c = Choice {
            dtmf: None,
            text: Vec::new(),
            next: l.next.clone(),
            expr: l.expr.clone(),
            event: l.event.clone(),
            eventexpr: l.eventexpr.clone(),
            message: None,
            messageexpr: None,
        };
        self.follow_choice(&c)
    }

    pub(super) fn goto_uri(&mut self, uri: &str) {
        let (base, frag) = split_fragment(uri);
        self.exec.clear();
        if base.is_empty() {
            let Some(id) = frag else {
                return self.throw(Event::new("error.badfetch", Some("empty URI".into())));
            };
            if self.docu().dialog(&id).is_none() {
                return self.throw(Event::new(
                    "error.badfetch",
                    Some(format!("no dialog {id:?}")),
                ));
            }
            self.phase = Phase::DocInit(Some(id));
            return;
        }
        let url = self.resolve(&base);
        self.fetch(
            FetchKind::Document,
            url,
            Method::Get,
            BTreeMap::new(),
            FetchPurpose::Goto {
                dialog: frag,
                subdialog: None,
            },
        );
    }
}
