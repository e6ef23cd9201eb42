//! Executable content (VoiceXML 2.0 §5.3) as a resumable stack of frames.

use super::*;

impl Interpreter {
    // ---------------------------------------------------------------- executable content

    pub(super) fn step(&mut self) {
        let frame = self.exec.last_mut().expect("step is called with a frame");
        if frame.pc >= frame.body.len() {
            if let Some(fe) = &mut frame.foreach {
                fe.idx += 1;
                if fe.idx < fe.len {
                    let (scope, item, tmp, idx) =
                        (frame.scope, fe.item.clone(), fe.tmp.clone(), fe.idx);
                    frame.pc = 0;
                    if let Err(e) = self
                        .js
                        .declare(scope, &item, Some(&format!("{tmp}[{idx}]")))
                    {
                        self.throw(Event::semantic(e.0));
                    }
                    return;
                }
            }
            self.exec.pop();
            return;
        }
        let stmt = frame.body[frame.pc].clone();
        let scope = frame.scope;
        frame.pc += 1;
        if let Err(ev) = self.exec_stmt(&stmt, scope).map(|_| ()) {
            self.throw(ev);
        }
    }

    pub(super) fn namelist_values(
        &mut self,
        names: &[String],
    ) -> Result<BTreeMap<String, Value>, Event> {
        let mut m = BTreeMap::new();
        for n in names {
            let v = self
                .js
                .eval(n)
                .map_err(|e| Event::semantic(format!("namelist {n}: {}", e.0)))?;
            m.insert(n.clone(), v.unwrap_or(Value::Null));
        }
        Ok(m)
    }

    pub(super) fn event_of(
        &mut self,
        event: &Option<String>,
        eventexpr: &Option<String>,
        message: &Option<String>,
        messageexpr: &Option<String>,
    ) -> Result<Event, Event> {
        let name = match (event, eventexpr) {
            (Some(e), _) => e.clone(),
            (None, Some(e)) => self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?,
            _ => return Err(Event::semantic("no event name")),
        };
        let message = match (message, messageexpr) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(e)) => Some(self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?),
            _ => None,
        };
        Ok(Event::new(name, message))
    }

    pub(super) fn exec_stmt(&mut self, stmt: &Stmt, scope: ScopeId) -> Result<Flow, Event> {
        let sem = |e: crate::script::JsError| Event::semantic(e.0);
        match stmt {
            Stmt::Var { name, expr, .. } => {
                if let Some(v) = self
                    .form
                    .params
                    .get(name)
                    .cloned()
                    .filter(|_| scope == self.dialog_scope)
                {
                    self.form.params.remove(name);
                    self.js.declare_json(scope, name, v.as_ref()).map_err(sem)?;
                } else {
                    self.js.declare(scope, name, expr.as_deref()).map_err(sem)?;
                }
            }
            Stmt::Assign { name, expr, .. } => self.js.assign(name, expr).map_err(sem)?,
            Stmt::Clear(names) => {
                let names: Vec<String> = if names.is_empty() {
                    self.dlg().items.iter().map(|i| i.name.clone()).collect()
                } else {
                    names.clone()
                };
                for n in names {
                    if !self.js.is_declared(&n) {
                        return Err(Event::semantic(format!("clear: {n} is not declared")));
                    }
                    self.js.assign(&n, "undefined").map_err(sem)?;
                    if let Some(i) = self.dlg().items.iter().position(|it| it.name == n) {
                        self.form.prompt_counts.remove(&i);
                        self.form.event_counts.retain(|(it, _), _| *it != Some(i));
                    }
                }
            }
            Stmt::Script {
                src, srcexpr, text, ..
            } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(e)) => Some(self.js.eval_string(e).map_err(sem)?),
                    _ => None,
                };
                match uri {
                    Some(u) => {
                        let url = self.resolve(&u);
                        self.fetch(
                            FetchKind::Script,
                            url,
                            Method::Get,
                            BTreeMap::new(),
                            FetchPurpose::Script { scope },
                        );
                        return Ok(Flow::Suspend);
                    }
                    None => self.js.run_script(scope, text).map_err(sem)?,
                }
            }
            Stmt::If(branches) => {
                for (cond, body) in branches {
                    let take = match cond {
                        None => true,
                        Some(c) => self.js.eval_bool(c).map_err(sem)?,
                    };
                    if take {
                        self.exec.push(Frame {
                            body: body.clone(),
                            pc: 0,
                            scope,
                            foreach: None,
                        });
                        break;
                    }
                }
            }
            Stmt::Goto {
                next,
                expr,
                nextitem,
                expritem,
            } => {
                if nextitem.is_some() || expritem.is_some() {
                    let name = match (nextitem, expritem) {
                        (Some(n), _) => n.clone(),
                        (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                        _ => unreachable!(),
                    };
                    let Some(i) = self.dlg().items.iter().position(|it| it.name == name) else {
                        return Err(Event::new(
                            "error.badfetch",
                            Some(format!("no form item {name:?}")),
                        ));
                    };
                    self.exec.clear();
                    self.form.next_item = Some(i);
                    self.phase = Phase::Fia;
                    return Ok(Flow::Suspend);
                }
                let uri = match (next, expr) {
                    (Some(n), _) => n.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                self.goto_uri(&uri);
                return Ok(Flow::Suspend);
            }
            Stmt::Submit {
                next,
                expr,
                namelist,
                method,
                enctype,
            } => {
                let uri = match (next, expr) {
                    (Some(n), _) => n.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                let names: Vec<String> = if namelist.is_empty() {
                    self.dlg()
                        .items
                        .iter()
                        .filter(|i| !i.anonymous && !matches!(i.kind, ItemKind::Block(_)))
                        .map(|i| i.name.clone())
                        .collect()
                } else {
                    namelist.clone()
                };
                let params = self.namelist_values(&names)?;
                let (base, frag) = split_fragment(&uri);
                let url = self.resolve(&base);
                self.exec.clear();
                self.flush_prompts();
                let id = FetchId(self.next_fetch);
                self.next_fetch += 1;
                self.out.push_back(Output::Submit {
                    id,
                    url,
                    method: *method,
                    enctype: enctype
                        .clone()
                        .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
                    params,
                    timeout_ms: self.prop_ms("fetchtimeout", super::DEFAULT_FETCHTIMEOUT_MS),
                });
                self.wait = Wait::Fetch(
                    id,
                    FetchPurpose::Goto {
                        dialog: frag,
                        subdialog: None,
                    },
                );
                return Ok(Flow::Suspend);
            }
            Stmt::Exit { expr, namelist } => {
                let v = if let Some(e) = expr {
                    self.js.eval(e).map_err(sem)?.unwrap_or(Value::Null)
                } else if !namelist.is_empty() {
                    Value::Object(self.namelist_values(namelist)?.into_iter().collect())
                } else {
                    Value::Null
                };
                self.stack.clear();
                self.end(v);
                return Ok(Flow::Suspend);
            }
            Stmt::Disconnect(namelist) => {
                let values = self.namelist_values(namelist)?;
                self.flush_prompts();
                self.out.push_back(Output::Hangup { values });
                self.disconnected = true;
                return Err(Event::new("connection.disconnect.hangup", None));
            }
            Stmt::Return {
                event,
                eventexpr,
                message,
                messageexpr,
                namelist,
            } => {
                if self.stack.is_empty() {
                    return Err(Event::semantic("<return> outside a subdialog"));
                }
                let ev = if event.is_some() || eventexpr.is_some() {
                    Some(self.event_of(event, eventexpr, message, messageexpr)?)
                } else {
                    None
                };
                let values = self.namelist_values(namelist)?;
                self.return_from_subdialog(ev, values);
                return Ok(Flow::Suspend);
            }
            Stmt::Reprompt => {
                self.reprompted = true;
            }
            Stmt::Throw {
                event,
                eventexpr,
                message,
                messageexpr,
            } => {
                let ev = self.event_of(event, eventexpr, message, messageexpr)?;
                return Err(ev);
            }
            Stmt::Log {
                label,
                expr,
                content,
            } => {
                let mut items = Vec::new();
                self.render(content, None, &mut items)?;
                let mut text = play_text(&items);
                if let Some(e) = expr {
                    let v = self.js.eval_string(e).map_err(sem)?;
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(&v);
                }
                self.out.push_back(Output::Log {
                    label: label.clone(),
                    text,
                });
            }
            Stmt::Prompt(p) => {
                if let Some(c) = &p.cond {
                    if !self.js.eval_bool(c).map_err(sem)? {
                        return Ok(Flow::Continue);
                    }
                }
                self.queue_prompt(p, None)?;
            }
            Stmt::Data {
                name,
                src,
                srcexpr,
                namelist,
                method,
                ..
            } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(sem)?,
                    _ => unreachable!(),
                };
                let params = self.namelist_values(namelist)?;
                if let Some(n) = name {
                    self.js.declare(scope, n, None).map_err(sem)?;
                }
                let url = self.resolve(&uri);
                self.fetch(
                    FetchKind::Data,
                    url,
                    *method,
                    params,
                    FetchPurpose::Data {
                        scope,
                        name: name.clone(),
                    },
                );
                return Ok(Flow::Suspend);
            }
            Stmt::Foreach { array, item, body } => {
                let len = self.js.eval(&format!("({array}).length")).map_err(sem)?;
                let Some(len) = len.and_then(|v| v.as_u64()) else {
                    return Err(Event::semantic(format!(
                        "foreach array {array} is not an array"
                    )));
                };
                if len == 0 {
                    return Ok(Flow::Continue);
                }
                let tmp = self.new_tmp();
                self.js.declare(scope, &tmp, Some(array)).map_err(sem)?;
                self.js
                    .declare(scope, item, Some(&format!("{tmp}[0]")))
                    .map_err(sem)?;
                self.exec.push(Frame {
                    body: body.clone(),
                    pc: 0,
                    scope,
                    foreach: Some(ForeachState {
                        tmp,
                        idx: 0,
                        len: len as usize,
                        item: item.clone(),
                    }),
                });
            }
        }
        Ok(Flow::Continue)
    }
}
