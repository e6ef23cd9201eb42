//! Documents: fetch results, loading a document and its application root, entering dialogs, subdialog returns.

use super::*;

impl Interpreter {
    // ---------------------------------------------------------------- documents

    pub(super) fn on_fetched(&mut self, purpose: FetchPurpose, result: FetchResult) {
        let (url, body) = match result {
            FetchResult::Ok { url, body } => (url, body),
            FetchResult::Err { status, message } => {
                let name = match status {
                    Some(s) => format!("error.badfetch.http.{s}"),
                    None => "error.badfetch".to_string(),
                };
                return self.fetch_failed(Event::new(name, Some(message)));
            }
        };
        match purpose {
            FetchPurpose::Goto { dialog, subdialog } => match crate::parse::parse_document(&body) {
                Ok(doc) => {
                    let leaf = Loaded {
                        doc: Arc::new(doc),
                        url,
                    };
                    if let Some(app) = leaf.doc.application.clone() {
                        let app_url = resolve(&leaf.url, &app);
                        if self.app.as_ref().map(|a| a.url.as_str()) != Some(app_url.as_str()) {
                            return self.fetch(
                                FetchKind::Document,
                                app_url,
                                Method::Get,
                                BTreeMap::new(),
                                FetchPurpose::AppRoot {
                                    leaf,
                                    dialog,
                                    subdialog,
                                },
                            );
                        }
                        let app = self.app.clone();
                        return self.load(app, leaf, dialog, subdialog, false);
                    }
                    self.load(None, leaf, dialog, subdialog, true)
                }
                Err(e) => {
                    self.fetch_failed(Event::new("error.badfetch", Some(format!("{url}: {e}"))))
                }
            },
            FetchPurpose::AppRoot {
                leaf,
                dialog,
                subdialog,
            } => match crate::parse::parse_document(&body) {
                Ok(doc) => self.load(
                    Some(Loaded {
                        doc: Arc::new(doc),
                        url,
                    }),
                    leaf,
                    dialog,
                    subdialog,
                    true,
                ),
                Err(e) => {
                    self.fetch_failed(Event::new("error.badfetch", Some(format!("{url}: {e}"))))
                }
            },
            FetchPurpose::Script { scope } => {
                if let Err(e) = self.js.run_script(scope, &body) {
                    self.throw(Event::semantic(format!("script {url}: {e}")));
                }
            }
            FetchPurpose::Data { scope, name } => match crate::script::xml_to_json(&body) {
                Ok(tree) => {
                    if let Some(n) = name {
                        if let Err(e) = self.js.declare_dom(scope, &n, &tree) {
                            self.throw(Event::semantic(e.0));
                        }
                    }
                }
                Err(e) => self.throw(Event::new("error.badfetch", Some(format!("{url}: {e}")))),
            },
            FetchPurpose::Grammar { url: gurl } => match crate::parse::parse_grammar_text(&body) {
                Ok(g) => {
                    self.grammar_cache.insert(gurl, Arc::new(g));
                }
                Err(e) => self.throw(Event::new(
                    "error.badfetch",
                    Some(format!("grammar {gurl}: {e}")),
                )),
            },
        }
    }

    pub(super) fn fetch_failed(&mut self, ev: Event) {
        if self.doc.is_none() {
            self.out.push_back(Output::Event {
                name: ev.name,
                message: ev.message,
            });
            self.end(Value::Null);
        } else {
            self.throw(ev);
        }
    }

    /// Installs a newly fetched document (and application root) and runs its initialisation.
    pub(super) fn load(
        &mut self,
        app: Option<Loaded>,
        leaf: Loaded,
        dialog: Option<String>,
        subdialog: Option<SubCall>,
        new_app: bool,
    ) {
        if let Some(call) = subdialog {
            // Save the caller; the subdialog gets fresh document and dialog scopes.
            let item = self.stack_item();
            let saved = Context {
                app: self.app.clone(),
                doc: self
                    .doc
                    .clone()
                    .expect("a subdialog is called from a document"),
                app_scope: self.app_scope,
                doc_scope: self.doc_scope,
                dialog_scope: self.dialog_scope,
                dialog: self.dialog,
                form: std::mem::take(&mut self.form),
                item,
            };
            self.stack.push(saved);
            self.form.params = call.params.into_iter().collect();
            if new_app {
                self.app_scope = self.js.new_scope(Some("application"));
            }
            self.doc_scope = self.js.new_scope(Some("document"));
            // enter_dialog releases the current dialog scope: give it one that is not the caller's
            self.dialog_scope = self.js.new_scope(Some("dialog"));
        } else {
            if new_app || app.is_none() {
                self.js.drop_scope(self.app_scope);
                self.app_scope = self.js.new_scope(Some("application"));
            }
            self.js.drop_scope(self.doc_scope);
            self.doc_scope = self.js.new_scope(Some("document"));
        }
        let app_changed = new_app || (app.is_none() && self.app.is_some());
        self.app = app;
        self.doc = Some(leaf);
        self.dialog = 0;
        self.form.current = None;
        self.exec.clear();
        self.set_chain(None);
        let mut init: Vec<Arc<[Stmt]>> = Vec::new();
        if app_changed
            || self
                .js
                .eval("application.lastresult$")
                .ok()
                .flatten()
                .is_none()
        {
            let _ = self
                .js
                .declare_json(self.app_scope, "lastresult$", Some(&json!([])));
            if let Some(a) = &self.app {
                init.push(a.doc.init.clone());
            }
        }
        let doc_init = self.docu().init.clone();
        self.phase = Phase::DocInit(dialog);
        self.exec.push(Frame {
            body: doc_init,
            pc: 0,
            scope: self.doc_scope,
            foreach: None,
        });
        if let Some(a) = init.pop() {
            self.exec.push(Frame {
                body: a,
                pc: 0,
                scope: self.app_scope,
                foreach: None,
            });
        }
    }

    pub(super) fn stack_item(&self) -> usize {
        self.form.current.unwrap_or(0)
    }

    pub(super) fn enter_dialog(&mut self, id: Option<&str>) {
        let idx = match id {
            Some(id) => match self.docu().dialog(id) {
                Some(i) => i,
                None => {
                    self.phase = Phase::Fia;
                    return self.throw(Event::new(
                        "error.badfetch",
                        Some(format!("no dialog {id:?} in {}", self.base_url())),
                    ));
                }
            },
            None => {
                if self.docu().dialogs.is_empty() {
                    self.phase = Phase::Fia;
                    self.doc = None;
                    return;
                }
                0
            }
        };
        self.dialog = idx;
        let params = std::mem::take(&mut self.form.params);
        self.form = FormState {
            params,
            ..FormState::default()
        };
        self.js.drop_scope(self.dialog_scope);
        self.dialog_scope = self.js.new_scope(Some("dialog"));
        self.set_chain(None);
        // Form item variables are declared by the dialog init, in document order with the
        // <var>s (the parser puts a Var for each item there).
        let init = self.dlg().init.clone();
        self.phase = Phase::Fia;
        self.exec.push(Frame {
            body: init,
            pc: 0,
            scope: self.dialog_scope,
            foreach: None,
        });
    }

    pub(super) fn return_from_subdialog(
        &mut self,
        ev: Option<Event>,
        values: BTreeMap<String, Value>,
    ) {
        let ctx = self.stack.pop().expect("checked by the caller");
        self.exec.clear();
        self.flush_prompts();
        if ctx.app_scope != self.app_scope {
            self.js.drop_scope(self.app_scope);
        }
        self.js.drop_scope(self.doc_scope);
        self.js.drop_scope(self.dialog_scope);
        self.app = ctx.app;
        self.doc = Some(ctx.doc);
        self.app_scope = ctx.app_scope;
        self.doc_scope = ctx.doc_scope;
        self.dialog_scope = ctx.dialog_scope;
        self.dialog = ctx.dialog;
        self.form = ctx.form;
        self.form.current = Some(ctx.item);
        self.phase = Phase::Fia;
        self.set_chain(None);
        match ev {
            Some(e) => self.throw(e),
            None => {
                let name = self.item(ctx.item).name.clone();
                self.set_item_var(&name, Some(&Value::Object(values.into_iter().collect())));
                self.filled(vec![ctx.item]);
            }
        }
    }
}
