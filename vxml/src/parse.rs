//! Parses VoiceXML text into the validated [`Document`] model.
//!
//! Every error names the line, the column and the element (VoiceXML 2.0 §1.5 document structure,
//! plus the 2.1 elements). Voice-mode grammars are accepted and ignored: outcall recognises DTMF.

use std::collections::HashSet;
use std::sync::Arc;

use roxmltree::Node;

use crate::error::ParseError;
use crate::grammar::{self, Builtin, Exp, Grammar};
use crate::model::*;

/// Parses a VoiceXML document.
pub fn parse_document(text: &str) -> Result<Document, ParseError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| {
        let p = e.pos();
        ParseError {
            line: p.row,
            col: p.col,
            element: "?".into(),
            message: e.to_string(),
        }
    })?;
    let mut p = Parser { doc: &doc, anon: 0 };
    p.document(doc.root_element())
}

/// Parses an external grammar (SRGS XML or ABNF), by content or media type.
pub fn parse_grammar_text(text: &str) -> Result<Grammar, ParseError> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let err = |m: String| ParseError {
        line: 1,
        col: 1,
        element: "grammar".into(),
        message: m,
    };
    if t.starts_with('<') {
        let doc = roxmltree::Document::parse_with_options(
            t,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .map_err(|e| err(e.to_string()))?;
        let root = doc.root_element();
        if root.attribute("mode") != Some("dtmf") {
            return Err(err("voice-mode grammar: only DTMF is recognised".into()));
        }
        grammar::from_xml(root).map_err(|e| err(e.to_string()))
    } else {
        grammar::from_abnf(t).map_err(|e| err(e.to_string()))
    }
}

/// Parses a duration such as `3s`, `500ms` or `1.5s` into milliseconds.
#[must_use]
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v >= 0.0).then(|| (v * mult).round() as u64)
}

struct Parser<'a, 'i> {
    doc: &'a roxmltree::Document<'i>,
    anon: u32,
}

fn name<'a>(n: Node<'a, '_>) -> &'a str {
    n.tag_name().name()
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn attr(n: Node<'_, '_>, a: &str) -> Option<String> {
    n.attribute(a).map(str::to_string)
}

const CATCHES: &[&str] = &["catch", "error", "noinput", "nomatch", "help"];

impl<'a, 'i> Parser<'a, 'i> {
    fn pos(&self, n: Node<'_, '_>) -> Pos {
        let p = self.doc.text_pos_at(n.range().start);
        Pos {
            line: p.row,
            col: p.col,
        }
    }

    fn err(&self, n: Node<'_, '_>, message: impl Into<String>) -> ParseError {
        let p = self.pos(n);
        ParseError {
            line: p.line,
            col: p.col,
            element: name(n).to_string(),
            message: message.into(),
        }
    }

    fn gen_name(&mut self, prefix: &str) -> String {
        self.anon += 1;
        format!("_{prefix}{}", self.anon)
    }

    fn req(&self, n: Node<'_, '_>, a: &str) -> Result<String, ParseError> {
        attr(n, a).ok_or_else(|| self.err(n, format!("missing required attribute {a}")))
    }

    /// Exactly one of the attributes must be present.
    fn one_of(&self, n: Node<'_, '_>, attrs: &[&str]) -> Result<(), ParseError> {
        let present: Vec<_> = attrs
            .iter()
            .filter(|a| n.attribute(**a).is_some())
            .collect();
        match present.len() {
            1 => Ok(()),
            0 => Err(self.err(n, format!("needs one of {}", attrs.join(", ")))),
            _ => Err(self.err(
                n,
                format!(
                    "attributes {} are mutually exclusive",
                    present
                        .iter()
                        .map(|a| **a)
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            )),
        }
    }

    fn duration(&self, n: Node<'_, '_>, a: &str) -> Result<Option<u64>, ParseError> {
        match n.attribute(a) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .ok_or_else(|| self.err(n, format!("{a}={v:?} is not a time designation"))),
        }
    }

    fn boolean(&self, n: Node<'_, '_>, a: &str, default: bool) -> Result<bool, ParseError> {
        match n.attribute(a) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(self.err(n, format!("{a}={v:?} is not true or false"))),
        }
    }

    fn method(&self, n: Node<'_, '_>) -> Result<Method, ParseError> {
        match n
            .attribute("method")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("get") => Ok(Method::Get),
            Some("post") => Ok(Method::Post),
            Some(v) => Err(self.err(n, format!("method={v:?} is not get or post"))),
        }
    }

    fn count(&self, n: Node<'_, '_>) -> Result<u32, ParseError> {
        match n.attribute("count") {
            None => Ok(1),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(c) if c >= 1 => Ok(c),
                _ => Err(self.err(n, format!("count={v:?} is not a positive integer"))),
            },
        }
    }

    fn document(&mut self, root: Node<'_, '_>) -> Result<Document, ParseError> {
        if name(root) != "vxml" {
            return Err(self.err(root, "the root element must be <vxml>"));
        }
        match root.attribute("version") {
            Some("2.0" | "2.1") => {}
            Some(v) => return Err(self.err(root, format!("version={v:?}: only 2.0 and 2.1"))),
            None => return Err(self.err(root, "missing required attribute version")),
        }
        let mut d = Document {
            application: attr(root, "application"),
            base: root
                .attribute(("http://www.w3.org/XML/1998/namespace", "base"))
                .map(str::to_string),
            ..Default::default()
        };
        let mut init = Vec::new();
        let mut ids = HashSet::new();
        for c in root.children().filter(Node::is_element) {
            match name(c) {
                "form" => d.dialogs.push(self.form(c)?),
                "menu" => d.dialogs.push(self.menu(c)?),
                "var" | "script" => {
                    init.push(self.stmt(c)?.expect("var and script are statements"))
                }
                "property" => d.properties.push(self.property(c)?),
                "link" => d.links.push(self.link(c)?),
                "meta" | "metadata" => {}
                n if CATCHES.contains(&n) => d.catches.push(self.catch(c)?),
                _ => return Err(self.err(c, "not allowed in <vxml>")),
            }
        }
        for (dl, c) in d.dialogs.iter().zip(
            root.children()
                .filter(|c| matches!(name(*c), "form" | "menu")),
        ) {
            if !ids.insert(dl.id.clone()) {
                return Err(self.err(c, format!("duplicate dialog id {:?}", dl.id)));
            }
        }
        d.init = init.into();
        Ok(d)
    }

    fn property(&self, n: Node<'_, '_>) -> Result<Property, ParseError> {
        Ok(Property {
            name: self.req(n, "name")?,
            value: self.req(n, "value")?,
        })
    }

    fn link(&mut self, n: Node<'_, '_>) -> Result<Link, ParseError> {
        let mut grammars = Vec::new();
        if let Some(d) = n.attribute("dtmf") {
            grammars.push(GrammarRef::Inline(Arc::new(Grammar::alternatives(&[(
                d.to_string(),
                "true".into(),
            )]))));
        }
        for c in n.children().filter(Node::is_element) {
            match name(c) {
                "grammar" => grammars.push(self.grammar(c)?),
                _ => return Err(self.err(c, "not allowed in <link>")),
            }
        }
        Ok(Link {
            next: attr(n, "next"),
            expr: attr(n, "expr"),
            event: attr(n, "event"),
            eventexpr: attr(n, "eventexpr"),
            grammars,
        })
    }

    fn catch(&mut self, n: Node<'_, '_>) -> Result<Catch, ParseError> {
        let events = match name(n) {
            "catch" => split_list(n.attribute("event")),
            other => vec![other.to_string()],
        };
        Ok(Catch {
            events,
            count: self.count(n)?,
            cond: attr(n, "cond"),
            body: self.block(n)?.into(),
        })
    }

    fn filled(&mut self, n: Node<'_, '_>) -> Result<Filled, ParseError> {
        let any = match n.attribute("mode") {
            None | Some("all") => false,
            Some("any") => true,
            Some(v) => return Err(self.err(n, format!("mode={v:?} is not all or any"))),
        };
        Ok(Filled {
            any,
            namelist: split_list(n.attribute("namelist")),
            body: self.block(n)?.into(),
        })
    }

    fn form(&mut self, n: Node<'_, '_>) -> Result<Dialog, ParseError> {
        let id = attr(n, "id").unwrap_or_else(|| self.gen_name("form"));
        let mut dl = Dialog {
            id,
            pos: self.pos(n),
            init: Arc::from(Vec::new()),
            items: Vec::new(),
            filled: Vec::new(),
            catches: Vec::new(),
            properties: Vec::new(),
            grammars: Vec::new(),
            links: Vec::new(),
            document_scope: n.attribute("scope") == Some("document"),
        };
        let mut init = Vec::new();
        let mut names = HashSet::new();
        for c in n.children().filter(Node::is_element) {
            match name(c) {
                "var" | "script" => init.push(self.stmt(c)?.expect("statement")),
                "filled" => {
                    let f = self.filled(c)?;
                    dl.filled.push(f);
                }
                "property" => dl.properties.push(self.property(c)?),
                "grammar" => dl.grammars.push(self.grammar(c)?),
                "link" => dl.links.push(self.link(c)?),
                "block" | "field" | "initial" | "record" | "transfer" | "subdialog" | "object" => {
                    let item = self.item(c)?;
                    if !names.insert(item.name.clone()) {
                        return Err(
                            self.err(c, format!("duplicate form item name {:?}", item.name))
                        );
                    }
                    // the form item variable, initialised in document order (Appendix C)
                    init.push(Stmt::Var {
                        name: item.name.clone(),
                        expr: item.expr.clone(),
                        pos: item.pos,
                    });
                    dl.items.push(item);
                }
                x if CATCHES.contains(&x) => dl.catches.push(self.catch(c)?),
                _ => return Err(self.err(c, "not allowed in <form>")),
            }
        }
        for f in &dl.filled {
            for nm in &f.namelist {
                if !names.contains(nm) {
                    return Err(self.err(
                        n,
                        format!("<filled namelist> names {nm:?}, which is not a form item"),
                    ));
                }
            }
        }
        dl.init = init.into();
        Ok(dl)
    }

    fn item(&mut self, n: Node<'_, '_>) -> Result<Item, ParseError> {
        let tag: &'static str = match name(n) {
            "block" => "block",
            "field" => "field",
            "initial" => "initial",
            "record" => "record",
            "transfer" => "transfer",
            "subdialog" => "subdialog",
            _ => "object",
        };
        let (item_name, anonymous) = match attr(n, "name") {
            Some(v) => (v, false),
            None => (self.gen_name(tag), true),
        };
        let mut item = Item {
            name: item_name,
            anonymous,
            expr: attr(n, "expr"),
            cond: attr(n, "cond"),
            pos: self.pos(n),
            tag,
            prompts: Vec::new(),
            catches: Vec::new(),
            filled: Vec::new(),
            properties: Vec::new(),
            grammars: Vec::new(),
            kind: ItemKind::Initial,
        };
        if tag == "block" {
            item.kind = ItemKind::Block(self.block(n)?.into());
            return Ok(item);
        }
        let mut params = Vec::new();
        let mut options = Vec::new();
        for c in n.children() {
            if c.is_text() {
                let t = norm_ws(c.text().unwrap_or(""));
                if !t.is_empty() {
                    item.prompts.push(Prompt {
                        count: 1,
                        content: vec![PromptPart::Text(t)],
                        ..Default::default()
                    });
                }
                continue;
            }
            if !c.is_element() {
                continue;
            }
            match name(c) {
                "prompt" => item.prompts.push(self.prompt(c)?),
                "audio" | "value" | "enumerate" | "break" | "mark" => item.prompts.push(Prompt {
                    count: 1,
                    content: self.prompt_parts_of(&[c])?,
                    ..Default::default()
                }),
                "grammar" => item.grammars.push(self.grammar(c)?),
                "filled" => item.filled.push(self.filled(c)?),
                "property" => item.properties.push(self.property(c)?),
                "param" if tag == "subdialog" || tag == "object" => params.push(Param {
                    name: self.req(c, "name")?,
                    expr: attr(c, "expr"),
                    value: attr(c, "value"),
                }),
                "option" if tag == "field" => {
                    let text = norm_ws(c.text().unwrap_or_default());
                    let value = attr(c, "value").unwrap_or_else(|| text.clone());
                    match c.attribute("dtmf") {
                        Some(d) => options.push((d.to_string(), value)),
                        None => options.push((String::new(), value)),
                    }
                }
                "link" => {}
                x if CATCHES.contains(&x) => item.catches.push(self.catch(c)?),
                _ => return Err(self.err(c, format!("not allowed in <{tag}>"))),
            }
        }
        item.kind = match tag {
            "field" => {
                let builtin = match n.attribute("type") {
                    Some(t) => Some(Builtin::parse(t).map_err(|e| self.err(n, e.to_string()))?),
                    None => None,
                };
                if let Some(b) = builtin {
                    item.grammars
                        .push(GrammarRef::Inline(Arc::new(Grammar::builtin(b))));
                }
                if !options.is_empty() {
                    // options without dtmf get none; values are literals
                    let alts: Vec<(String, String)> = options
                        .iter()
                        .filter(|(d, _)| !d.is_empty())
                        .cloned()
                        .collect();
                    item.grammars
                        .push(GrammarRef::Inline(Arc::new(Grammar::alternatives(&alts))));
                }
                if n.attribute("name").is_none() {
                    return Err(self.err(n, "missing required attribute name"));
                }
                ItemKind::Field(Field {
                    builtin,
                    slot: attr(n, "slot"),
                    modal: self.boolean(n, "modal", false)?,
                    options,
                    menu: None,
                })
            }
            "initial" => ItemKind::Initial,
            "record" => ItemKind::Record(Record {
                beep: self.boolean(n, "beep", false)?,
                maxtime_ms: self.duration(n, "maxtime")?,
                finalsilence_ms: self.duration(n, "finalsilence")?,
                dtmfterm: self.boolean(n, "dtmfterm", true)?,
                media_type: attr(n, "type"),
            }),
            "transfer" => {
                if n.attribute("dest").is_some() && n.attribute("destexpr").is_some() {
                    return Err(self.err(n, "attributes dest and destexpr are mutually exclusive"));
                }
                let ttype = attr(n, "type");
                if let Some(t) = &ttype {
                    if !matches!(t.as_str(), "bridge" | "blind" | "consultation") {
                        return Err(self.err(
                            n,
                            format!("type={t:?} is not bridge, blind or consultation"),
                        ));
                    }
                    if n.attribute("bridge").is_some() {
                        return Err(
                            self.err(n, "attributes bridge and type are mutually exclusive")
                        );
                    }
                }
                ItemKind::Transfer(Transfer {
                    dest: attr(n, "dest"),
                    destexpr: attr(n, "destexpr"),
                    bridge: self.boolean(n, "bridge", false)?,
                    transfer_type: ttype,
                    connecttimeout_ms: self.duration(n, "connecttimeout")?,
                    maxtime_ms: self.duration(n, "maxtime")?,
                    aai: attr(n, "aai"),
                    aaiexpr: attr(n, "aaiexpr"),
                })
            }
            "subdialog" => {
                self.one_of(n, &["src", "srcexpr"])?;
                ItemKind::Subdialog(Subdialog {
                    src: attr(n, "src"),
                    srcexpr: attr(n, "srcexpr"),
                    namelist: split_list(n.attribute("namelist")),
                    method: self.method(n)?,
                    enctype: attr(n, "enctype"),
                    params,
                })
            }
            _ => ItemKind::Object,
        };
        Ok(item)
    }

    fn menu(&mut self, n: Node<'_, '_>) -> Result<Dialog, ParseError> {
        let id = attr(n, "id").unwrap_or_else(|| self.gen_name("menu"));
        let auto_dtmf = self.boolean(n, "dtmf", false)?;
        let mut item = Item {
            name: "_menu".into(),
            anonymous: true,
            expr: None,
            cond: None,
            pos: self.pos(n),
            tag: "menu",
            prompts: Vec::new(),
            catches: Vec::new(),
            filled: Vec::new(),
            properties: Vec::new(),
            grammars: Vec::new(),
            kind: ItemKind::Initial,
        };
        let mut choices = Vec::new();
        let mut alts = Vec::new();
        let auto_keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#'];
        let mut next_auto = 0;
        let mut used = HashSet::new();
        for c in n.children().filter(Node::is_element) {
            match name(c) {
                "prompt" => item.prompts.push(self.prompt(c)?),
                "audio" | "value" | "enumerate" => item.prompts.push(Prompt {
                    count: 1,
                    content: self.prompt_parts_of(&[c])?,
                    ..Default::default()
                }),
                "property" => item.properties.push(self.property(c)?),
                "choice" => {
                    self.one_of(c, &["next", "expr", "event", "eventexpr"])?;
                    let idx = choices.len();
                    let mut dtmf = attr(c, "dtmf");
                    for g in c.children().filter(|g| name(*g) == "grammar") {
                        if let GrammarRef::Inline(g) = self.grammar(g)? {
                            let root = Exp::Ref(g.root);
                            // inline a choice grammar by copying its rules into one grammar is
                            // not needed for DTMF menus: accept its root when it is flat keys.
                            if let Some(keys) = flat_keys(&g, &root) {
                                dtmf.get_or_insert(keys);
                            }
                        }
                    }
                    if dtmf.is_none() && auto_dtmf {
                        while next_auto < auto_keys.len()
                            && used.contains(&auto_keys[next_auto].to_string())
                        {
                            next_auto += 1;
                        }
                        if let Some(k) = auto_keys.get(next_auto) {
                            dtmf = Some(k.to_string());
                            next_auto += 1;
                        }
                    }
                    if let Some(d) = &dtmf {
                        if !used.insert(d.clone()) {
                            return Err(self.err(c, format!("dtmf {d:?} is used by two choices")));
                        }
                        alts.push((d.clone(), idx.to_string()));
                    }
                    let parts: Vec<Node> = c
                        .children()
                        .filter(|x| x.is_text() || !matches!(name(*x), "grammar"))
                        .collect();
                    choices.push(Choice {
                        dtmf,
                        text: self.prompt_parts_of(&parts)?,
                        next: attr(c, "next"),
                        expr: attr(c, "expr"),
                        event: attr(c, "event"),
                        eventexpr: attr(c, "eventexpr"),
                        message: attr(c, "message"),
                        messageexpr: attr(c, "messageexpr"),
                    });
                }
                x if CATCHES.contains(&x) => item.catches.push(self.catch(c)?),
                "meta" | "metadata" => {}
                _ => return Err(self.err(c, "not allowed in <menu>")),
            }
        }
        if choices.is_empty() {
            return Err(self.err(n, "a <menu> needs at least one <choice>"));
        }
        item.grammars
            .push(GrammarRef::Inline(Arc::new(Grammar::alternatives(&alts))));
        item.kind = ItemKind::Field(Field {
            menu: Some(Menu { choices }),
            ..Default::default()
        });
        let menu_var = Stmt::Var {
            name: item.name.clone(),
            expr: None,
            pos: item.pos,
        };
        Ok(Dialog {
            id,
            pos: self.pos(n),
            init: Arc::from(vec![menu_var]),
            items: vec![item],
            filled: Vec::new(),
            catches: Vec::new(),
            properties: Vec::new(),
            grammars: Vec::new(),
            links: Vec::new(),
            document_scope: n.attribute("scope") == Some("document"),
        })
    }

    fn grammar(&mut self, n: Node<'_, '_>) -> Result<GrammarRef, ParseError> {
        let src = attr(n, "src");
        let srcexpr = attr(n, "srcexpr");
        let has_content = n
            .children()
            .any(|c| c.is_element() || c.text().is_some_and(|t| !t.trim().is_empty()));
        if src.is_some() || srcexpr.is_some() {
            if src.is_some() && srcexpr.is_some() {
                return Err(self.err(n, "attributes src and srcexpr are mutually exclusive"));
            }
            if has_content {
                return Err(self.err(n, "a grammar with src must be empty"));
            }
            if n.attribute("mode") == Some("voice") {
                return Ok(GrammarRef::Voice);
            }
            return Ok(GrammarRef::Src { src, srcexpr });
        }
        if !has_content {
            return Err(self.err(n, "a grammar needs src, srcexpr or inline content"));
        }
        let ty = n.attribute("type").unwrap_or("");
        if ty.contains("abnf") || (!n.children().any(|c| c.is_element()) && has_content) {
            let text = n.text().unwrap_or("");
            return match grammar::from_abnf(text) {
                Ok(g) => Ok(GrammarRef::Inline(Arc::new(g))),
                Err(crate::error::GrammarError::VoiceMode) => Ok(GrammarRef::Voice),
                Err(e) => Err(self.err(n, e.to_string())),
            };
        }
        if n.attribute("mode") != Some("dtmf") {
            return Ok(GrammarRef::Voice);
        }
        grammar::from_xml(n)
            .map(|g| GrammarRef::Inline(Arc::new(g)))
            .map_err(|e| self.err(n, e.to_string()))
    }

    fn prompt(&mut self, n: Node<'_, '_>) -> Result<Prompt, ParseError> {
        let kids: Vec<Node> = n.children().collect();
        Ok(Prompt {
            count: self.count(n)?,
            cond: attr(n, "cond"),
            bargein: match n.attribute("bargein") {
                None => None,
                Some(_) => Some(self.boolean(n, "bargein", true)?),
            },
            timeout_ms: self.duration(n, "timeout")?,
            content: self.prompt_parts_of(&kids)?,
        })
    }

    fn prompt_parts_of(&mut self, nodes: &[Node<'_, '_>]) -> Result<Vec<PromptPart>, ParseError> {
        let mut out = Vec::new();
        for &c in nodes {
            if c.is_text() {
                let t = norm_ws(c.text().unwrap_or(""));
                if !t.is_empty() {
                    out.push(PromptPart::Text(t));
                }
                continue;
            }
            if !c.is_element() {
                continue;
            }
            let kids: Vec<Node> = c.children().collect();
            out.push(match name(c) {
                "value" => PromptPart::Value(self.req(c, "expr")?),
                "audio" => {
                    self.one_of(c, &["src", "expr"])?;
                    PromptPart::Audio {
                        src: attr(c, "src"),
                        expr: attr(c, "expr"),
                        fallback: self.prompt_parts_of(&kids)?,
                    }
                }
                "break" => {
                    let ms = match c.attribute("time") {
                        Some(_) => self.duration(c, "time")?.unwrap_or(0),
                        None => match c.attribute("strength").unwrap_or("medium") {
                            "none" => 0,
                            "x-weak" => 100,
                            "weak" => 250,
                            "medium" => 500,
                            "strong" => 750,
                            _ => 1000,
                        },
                    };
                    PromptPart::Break(ms)
                }
                "mark" => PromptPart::Mark {
                    name: attr(c, "name"),
                    nameexpr: attr(c, "nameexpr"),
                },
                "enumerate" => PromptPart::Enumerate(self.prompt_parts_of(&kids)?),
                "foreach" => PromptPart::Foreach {
                    array: self.req(c, "array")?,
                    item: self.req(c, "item")?,
                    body: self.prompt_parts_of(&kids)?,
                },
                "sub" => PromptPart::Text(c.attribute("alias").unwrap_or_default().to_string()),
                "desc" | "meta" | "metadata" | "lexicon" => continue,
                "speak" | "p" | "paragraph" | "s" | "sentence" | "emphasis" | "prosody"
                | "say-as" | "voice" | "phoneme" => PromptPart::Group(self.prompt_parts_of(&kids)?),
                _ => return Err(self.err(c, "not allowed in a prompt")),
            });
        }
        Ok(out)
    }

    /// Executable content of an element.
    fn block(&mut self, n: Node<'_, '_>) -> Result<Vec<Stmt>, ParseError> {
        let mut out = Vec::new();
        let mut pending_text: Vec<Node> = Vec::new();
        let kids: Vec<Node> = n.children().collect();
        for c in kids {
            let is_prompt_part = c.is_text()
                || (c.is_element()
                    && matches!(name(c), "audio" | "value" | "enumerate" | "break" | "mark"));
            if is_prompt_part {
                pending_text.push(c);
                continue;
            }
            if !c.is_element() {
                continue;
            }
            self.flush_text(&mut pending_text, &mut out)?;
            if let Some(s) = self.stmt(c)? {
                out.push(s);
            }
        }
        self.flush_text(&mut pending_text, &mut out)?;
        Ok(out)
    }

    fn flush_text(
        &mut self,
        pending: &mut Vec<Node<'_, '_>>,
        out: &mut Vec<Stmt>,
    ) -> Result<(), ParseError> {
        if pending.is_empty() {
            return Ok(());
        }
        let parts = self.prompt_parts_of(pending)?;
        pending.clear();
        if !parts.is_empty() {
            out.push(Stmt::Prompt(Prompt {
                count: 1,
                content: parts,
                ..Default::default()
            }));
        }
        Ok(())
    }

    fn stmt(&mut self, c: Node<'_, '_>) -> Result<Option<Stmt>, ParseError> {
        let pos = self.pos(c);
        Ok(Some(match name(c) {
            "var" => {
                let name = self.req(c, "name")?;
                check_ident(&name).map_err(|m| self.err(c, m))?;
                Stmt::Var {
                    name,
                    expr: attr(c, "expr"),
                    pos,
                }
            }
            "assign" => Stmt::Assign {
                name: self.req(c, "name")?,
                expr: self.req(c, "expr")?,
                pos,
            },
            "clear" => Stmt::Clear(split_list(c.attribute("namelist"))),
            "script" => {
                if c.attribute("src").is_some() && c.attribute("srcexpr").is_some() {
                    return Err(self.err(c, "attributes src and srcexpr are mutually exclusive"));
                }
                let text: String = c.children().filter_map(|t| t.text()).collect();
                if (c.attribute("src").is_some() || c.attribute("srcexpr").is_some())
                    && !text.trim().is_empty()
                {
                    return Err(self.err(c, "a script with src must be empty"));
                }
                Stmt::Script {
                    src: attr(c, "src"),
                    srcexpr: attr(c, "srcexpr"),
                    text,
                    pos,
                }
            }
            "if" => {
                let mut branches: Vec<(Option<String>, Vec<Stmt>)> =
                    vec![(Some(self.req(c, "cond")?), Vec::new())];
                let mut pending: Vec<Node> = Vec::new();
                let mut seen_else = false;
                for k in c.children() {
                    if k.is_element() && matches!(name(k), "elseif" | "else") {
                        let last = &mut branches.last_mut().expect("at least the if branch").1;
                        self.flush_text(&mut pending, last)?;
                        if seen_else {
                            return Err(self.err(k, "nothing may follow <else> in an <if>"));
                        }
                        if name(k) == "else" {
                            seen_else = true;
                            branches.push((None, Vec::new()));
                        } else {
                            branches.push((Some(self.req(k, "cond")?), Vec::new()));
                        }
                        continue;
                    }
                    if k.is_text()
                        || (k.is_element()
                            && matches!(
                                name(k),
                                "audio" | "value" | "enumerate" | "break" | "mark"
                            ))
                    {
                        pending.push(k);
                        continue;
                    }
                    if !k.is_element() {
                        continue;
                    }
                    let last = &mut branches.last_mut().expect("at least the if branch").1;
                    self.flush_text(&mut pending, last)?;
                    if let Some(s) = self.stmt(k)? {
                        branches.last_mut().expect("branch").1.push(s);
                    }
                }
                let last = &mut branches.last_mut().expect("at least the if branch").1;
                self.flush_text(&mut pending, last)?;
                Stmt::If(
                    branches
                        .into_iter()
                        .map(|(c, b)| (c, Arc::from(b)))
                        .collect(),
                )
            }
            "goto" => {
                self.one_of(c, &["next", "expr", "nextitem", "expritem"])?;
                Stmt::Goto {
                    next: attr(c, "next"),
                    expr: attr(c, "expr"),
                    nextitem: attr(c, "nextitem"),
                    expritem: attr(c, "expritem"),
                }
            }
            "submit" => {
                self.one_of(c, &["next", "expr"])?;
                Stmt::Submit {
                    next: attr(c, "next"),
                    expr: attr(c, "expr"),
                    namelist: split_list(c.attribute("namelist")),
                    method: self.method(c)?,
                    enctype: attr(c, "enctype"),
                }
            }
            "exit" => {
                if c.attribute("expr").is_some() && c.attribute("namelist").is_some() {
                    return Err(self.err(c, "attributes expr and namelist are mutually exclusive"));
                }
                Stmt::Exit {
                    expr: attr(c, "expr"),
                    namelist: split_list(c.attribute("namelist")),
                }
            }
            "return" => Stmt::Return {
                event: attr(c, "event"),
                eventexpr: attr(c, "eventexpr"),
                message: attr(c, "message"),
                messageexpr: attr(c, "messageexpr"),
                namelist: split_list(c.attribute("namelist")),
            },
            "disconnect" => Stmt::Disconnect(split_list(c.attribute("namelist"))),
            "reprompt" => Stmt::Reprompt,
            "throw" => {
                self.one_of(c, &["event", "eventexpr"])?;
                Stmt::Throw {
                    event: attr(c, "event"),
                    eventexpr: attr(c, "eventexpr"),
                    message: attr(c, "message"),
                    messageexpr: attr(c, "messageexpr"),
                }
            }
            "log" => {
                let kids: Vec<Node> = c.children().collect();
                Stmt::Log {
                    label: attr(c, "label"),
                    expr: attr(c, "expr"),
                    content: self.prompt_parts_of(&kids)?,
                }
            }
            "prompt" => Stmt::Prompt(self.prompt(c)?),
            "data" => {
                self.one_of(c, &["src", "srcexpr"])?;
                Stmt::Data {
                    name: attr(c, "name"),
                    src: attr(c, "src"),
                    srcexpr: attr(c, "srcexpr"),
                    namelist: split_list(c.attribute("namelist")),
                    method: self.method(c)?,
                    enctype: attr(c, "enctype"),
                }
            }
            "foreach" => Stmt::Foreach {
                array: self.req(c, "array")?,
                item: self.req(c, "item")?,
                body: self.block(c)?.into(),
            },
            "meta" | "metadata" => return Ok(None),
            _ => return Err(self.err(c, "not executable content")),
        }))
    }
}

/// If a grammar's root is a plain key sequence, returns it.
fn flat_keys(g: &Grammar, e: &Exp) -> Option<String> {
    match e {
        Exp::Key(c) => Some(c.to_string()),
        Exp::Seq(v) => v.iter().map(|x| flat_keys(g, x)).collect(),
        Exp::Ref(r) => flat_keys(g, &g.rules[*r].1),
        _ => None,
    }
}

fn check_ident(n: &str) -> Result<(), String> {
    let ok = n
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && n.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(format!("name {n:?} is not a valid variable name"))
    }
}

/// Collapses whitespace runs to one space and trims.
#[must_use]
pub fn norm_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        parse_document(text).unwrap_err()
    }

    #[test]
    fn errors_name_line_column_and_element() {
        let e = err("<vxml version=\"2.1\">\n<form>\n  <block><goto/></block>\n</form></vxml>");
        assert_eq!((e.line, e.col, e.element.as_str()), (3, 10, "goto"));
        assert!(e.message.contains("next"), "{e}");
        let e =
            err("<vxml version=\"2.1\"><form><field name=\"a\" type=\"colour\"/></form></vxml>");
        assert_eq!(e.element, "field");
        assert!(e.message.contains("colour"));
        let e = err("<vxml version=\"2.1\"><form><block/><block name=\"x\"/><field name=\"x\"/></form></vxml>");
        assert!(e.message.contains("duplicate"), "{e}");
        let e = err("<vxml version=\"2.1\"><form><bogus/></form></vxml>");
        assert_eq!(e.element, "bogus");
        let e = err("<vxml version=\"2.1\"><form>");
        assert_eq!(e.line, 1);
        let e =
            err("<vxml version=\"2.1\"><form><field name=\"f\"><grammar/></field></form></vxml>");
        assert_eq!(e.element, "grammar");
        let e = err("<vxml version=\"3.0\"/>");
        assert_eq!(e.element, "vxml");
        let e = err("<vxml version=\"2.1\"><form><field name=\"f\"><prompt timeout=\"soon\"/></field></form></vxml>");
        assert!(e.message.contains("soon"));
    }

    #[test]
    fn model_of_a_small_document() {
        let d = parse_document(r##"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" application="root.vxml">
  <var name="greeting" expr="'hi'"/>
  <catch event="error.badfetch"><exit/></catch>
  <form id="main">
    <field name="pin" type="digits?length=4">
      <prompt count="2" bargein="false" timeout="3s">Enter <value expr="greeting"/> PIN</prompt>
      <noinput count="2"><reprompt/></noinput>
      <filled><if cond="pin == '1234'"><goto next="#ok"/><elseif cond="false"/>x<else/><throw event="bad"/></if></filled>
    </field>
  </form>
  <menu id="m" dtmf="true"><choice next="#a">A</choice><choice dtmf="9" next="#b">B</choice></menu>
</vxml>"##).unwrap();
        assert_eq!(d.application.as_deref(), Some("root.vxml"));
        assert_eq!(d.init.len(), 1);
        assert_eq!(d.catches[0].events, vec!["error.badfetch"]);
        let f = &d.dialogs[0].items[0];
        assert_eq!(f.name, "pin");
        assert_eq!(f.prompts[0].count, 2);
        assert_eq!(f.prompts[0].bargein, Some(false));
        assert_eq!(f.prompts[0].timeout_ms, Some(3000));
        assert_eq!(f.catches[0].count, 2);
        match &f.filled[0].body[0] {
            Stmt::If(branches) => {
                assert_eq!(branches.len(), 3);
                assert!(branches[2].0.is_none());
                assert!(matches!(branches[1].1[0], Stmt::Prompt(_)));
            }
            s => panic!("{s:?}"),
        }
        let m = &d.dialogs[1];
        let ItemKind::Field(Field {
            menu: Some(menu), ..
        }) = &m.items[0].kind
        else {
            panic!()
        };
        assert_eq!(menu.choices[0].dtmf.as_deref(), Some("1"));
        assert_eq!(menu.choices[1].dtmf.as_deref(), Some("9"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s"), Some(3000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("1.5s"), Some(1500));
        assert_eq!(parse_duration("3"), None);
    }
}
