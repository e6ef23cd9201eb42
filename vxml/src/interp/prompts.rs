//! Prompt selection (count, cond) and rendering to play items; grammar resolution.

use super::*;

impl Interpreter {
    pub(super) fn queue_item_prompts(&mut self, item: &Item, count: u32) {
        let mut eligible = Vec::new();
        for p in &item.prompts {
            if let Some(c) = &p.cond {
                match self.js.eval_bool(c) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.events.push_back(Event::semantic(e.0));
                        return;
                    }
                }
            }
            eligible.push(p);
        }
        let best = eligible
            .iter()
            .map(|p| p.count)
            .filter(|&c| c <= count)
            .max();
        let Some(best) = best else { return };
        let chosen: Vec<Prompt> = eligible
            .into_iter()
            .filter(|p| p.count == best)
            .cloned()
            .collect();
        let menu = match &item.kind {
            ItemKind::Field(Field { menu: Some(m), .. }) => Some(m.choices.clone()),
            ItemKind::Field(f) if !f.options.is_empty() => Some(
                f.options
                    .iter()
                    .map(|(d, v)| Choice {
                        dtmf: (!d.is_empty()).then(|| d.clone()),
                        text: vec![PromptPart::Text(v.clone())],
                        next: None,
                        expr: None,
                        event: None,
                        eventexpr: None,
                        message: None,
                        messageexpr: None,
                    })
                    .collect(),
            ),
            _ => None,
        };
        for p in chosen {
            if let Err(e) = self.queue_prompt(&p, menu.as_deref()) {
                self.events.push_back(e);
                return;
            }
        }
    }

    pub(super) fn queue_prompt(
        &mut self,
        p: &Prompt,
        choices: Option<&[Choice]>,
    ) -> Result<(), Event> {
        let mut items = Vec::new();
        self.render(&p.content, choices, &mut items)?;
        if let Some(b) = p.bargein {
            self.queue_bargein = b;
        } else {
            self.queue_bargein = self.property("bargein").as_deref() != Some("false");
        }
        if let Some(t) = p.timeout_ms {
            self.queue_timeout = Some(t);
        }
        self.queue.extend(items);
        Ok(())
    }

    pub(super) fn render(
        &mut self,
        parts: &[PromptPart],
        choices: Option<&[Choice]>,
        out: &mut Vec<PlayItem>,
    ) -> Result<(), Event> {
        for part in parts {
            match part {
                PromptPart::Text(t) => out.push(PlayItem::Text(t.clone())),
                PromptPart::Value(e) => {
                    let s = self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?;
                    out.push(PlayItem::Text(s));
                }
                PromptPart::Audio {
                    src,
                    expr,
                    fallback,
                } => {
                    let url = match (src, expr) {
                        (Some(s), _) => Some(self.resolve(s)),
                        (None, Some(e)) => {
                            match self.js.eval(e).map_err(|e| Event::semantic(e.0))? {
                                None | Some(Value::Null) => None,
                                Some(Value::String(s)) => Some(self.resolve(&s)),
                                Some(v) => Some(self.resolve(&v.to_string())),
                            }
                        }
                        _ => None,
                    };
                    let mut fb = Vec::new();
                    self.render(fallback, choices, &mut fb)?;
                    match url {
                        Some(url) => out.push(PlayItem::Audio { url, fallback: fb }),
                        None => out.extend(fb),
                    }
                }
                PromptPart::Break(ms) => out.push(PlayItem::Break(*ms)),
                PromptPart::Mark { name, nameexpr } => {
                    let n = match (name, nameexpr) {
                        (Some(n), _) => n.clone(),
                        (None, Some(e)) => {
                            self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?
                        }
                        _ => String::new(),
                    };
                    out.push(PlayItem::Mark(n));
                }
                PromptPart::Group(inner) => self.render(inner, choices, out)?,
                PromptPart::Enumerate(template) => {
                    let Some(choices) = choices else {
                        return Err(Event::semantic(
                            "<enumerate> outside a menu or a field with options",
                        ));
                    };
                    for c in choices {
                        let mut text = Vec::new();
                        self.render(&c.text, None, &mut text)?;
                        let spoken = play_text(&text);
                        let dtmf = c.dtmf.clone().unwrap_or_default();
                        if template.is_empty() {
                            out.push(PlayItem::Text(if dtmf.is_empty() {
                                spoken
                            } else {
                                format!("For {spoken}, press {dtmf}.")
                            }));
                        } else {
                            let anon = self.js.new_scope(None);
                            let saved: Vec<ScopeId> = self.js.chain().to_vec();
                            let mut chain = saved.clone();
                            chain.push(anon);
                            self.js.set_chain(&chain);
                            let _ = self.js.declare_json(anon, "_prompt", Some(&json!(spoken)));
                            let _ = self.js.declare_json(anon, "_dtmf", Some(&json!(dtmf)));
                            let r = self.render(template, None, out);
                            self.js.set_chain(&saved);
                            self.js.drop_scope(anon);
                            r?;
                        }
                    }
                }
                PromptPart::Foreach { array, item, body } => {
                    let len = self
                        .js
                        .eval(&format!("({array}).length"))
                        .map_err(|e| Event::semantic(e.0))?;
                    let len = len.and_then(|v| v.as_u64()).ok_or_else(|| {
                        Event::semantic(format!("foreach array {array} is not an array"))
                    })?;
                    let tmp = self.new_tmp();
                    let anon = self.js.new_scope(None);
                    let saved: Vec<ScopeId> = self.js.chain().to_vec();
                    self.js
                        .declare(anon, &tmp, Some(array))
                        .map_err(|e| Event::semantic(e.0))?;
                    let mut chain = saved.clone();
                    chain.push(anon);
                    self.js.set_chain(&chain);
                    let mut r = Ok(());
                    for k in 0..len {
                        if let Err(e) = self.js.declare(anon, item, Some(&format!("{tmp}[{k}]"))) {
                            r = Err(Event::semantic(e.0));
                            break;
                        }
                        if let Err(e) = self.render(body, choices, out) {
                            r = Err(e);
                            break;
                        }
                    }
                    self.js.set_chain(&saved);
                    self.js.drop_scope(anon);
                    r?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn grammar_of(&mut self, g: &GrammarRef) -> Result<Option<Arc<Grammar>>, Event> {
        match g {
            GrammarRef::Inline(g) => Ok(Some(g.clone())),
            GrammarRef::Voice => Ok(None),
            GrammarRef::Src { src, srcexpr } => {
                let uri = match (src, srcexpr) {
                    (Some(s), _) => s.clone(),
                    (None, Some(e)) => self.js.eval_string(e).map_err(|e| Event::semantic(e.0))?,
                    _ => return Ok(None),
                };
                if let Some(b) = uri.strip_prefix("builtin:") {
                    return crate::grammar::Builtin::parse(b)
                        .map(|b| Some(Arc::new(Grammar::builtin(b))))
                        .map_err(|e| Event::new("error.unsupported.builtin", Some(e.to_string())));
                }
                let url = self.resolve(&uri);
                let (base, frag) = split_fragment(&url);
                match self.grammar_cache.get(&base) {
                    Some(g) => {
                        if let Some(f) = frag {
                            let mut g2 = (**g).clone();
                            if let Some(r) = g2.rules.iter().position(|(n, _)| *n == f) {
                                g2.root = r;
                            }
                            return Ok(Some(Arc::new(g2)));
                        }
                        Ok(Some(g.clone()))
                    }
                    None => Err(Event::new("__fetch_grammar", Some(base))),
                }
            }
        }
    }
}
