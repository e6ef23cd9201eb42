//! DTMF grammars: SRGS 1.0 (XML and ABNF forms, DTMF mode) and the VoiceXML builtin types.
//!
//! Input is matched as a whole string of keys. A match reports whether the keys are a complete
//! sentence of the grammar and whether the grammar could take more keys (VoiceXML 2.0 §6.3.3 uses
//! both to decide between `interdigittimeout` and `termtimeout`).

use std::collections::HashMap;

use crate::error::GrammarError;

/// The result of matching keys against a grammar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchStatus {
    /// The keys form a complete sentence.
    pub complete: bool,
    /// The keys are a prefix of a longer sentence.
    pub extendable: bool,
    /// For a complete match: the semantic result as ECMAScript source, or `None` to use the
    /// utterance text.
    pub semantics: Option<String>,
}

/// One expansion of an SRGS rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Exp {
    /// One DTMF key.
    Key(char),
    /// A sequence.
    Seq(Vec<Exp>),
    /// Alternatives.
    Alt(Vec<Exp>),
    /// `repeat="min-max"` (max `None` = unbounded).
    Repeat(Box<Exp>, u32, Option<u32>),
    /// A reference to a rule of this grammar by index.
    Ref(usize),
    /// A semantic tag (ECMAScript, or a literal under `semantics/1.0-literals`).
    Tag(String),
    /// `$NULL`: matches nothing.
    Null,
    /// `$VOID`: never matches.
    Void,
}

/// A compiled DTMF grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct Grammar {
    /// The rules; names index into it.
    pub rules: Vec<(String, Exp)>,
    /// The root rule.
    pub root: usize,
    /// Tags are literals (`semantics/1.0-literals`) rather than script.
    pub literal_tags: bool,
    /// A builtin type instead of rules.
    pub builtin: Option<Builtin>,
}

/// The builtin field types (VoiceXML 2.0 Appendix P), DTMF forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    /// `digits`.
    Digits,
    /// `boolean`: 1 = true, 2 = false.
    Boolean,
    /// `number`: `*` is the decimal point.
    Number,
    /// `currency`: `*` is the decimal point.
    Currency,
    /// `date`: yyyymmdd.
    Date,
    /// `time`: hhmm.
    Time,
    /// `phone`: `*` marks an extension.
    Phone,
}

/// A builtin type with its parameters (`digits?minlength=3;maxlength=5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// Which type.
    pub kind: BuiltinKind,
    /// `minlength` / `length`.
    pub min: Option<u32>,
    /// `maxlength` / `length`.
    pub max: Option<u32>,
    /// `boolean?y=..;n=..` keys.
    pub yes: char,
    /// The key for false.
    pub no: char,
}

impl Builtin {
    /// Parses a `type` attribute value such as `digits?length=4` or
    /// `builtin:dtmf/boolean?y=7`.
    pub fn parse(spec: &str) -> Result<Builtin, GrammarError> {
        let spec = spec.trim();
        let spec = spec
            .strip_prefix("builtin:dtmf/")
            .or_else(|| spec.strip_prefix("builtin:grammar/"))
            .or_else(|| spec.strip_prefix("builtin:"))
            .unwrap_or(spec);
        let (name, params) = spec.split_once('?').unwrap_or((spec, ""));
        let kind = match name {
            "digits" => BuiltinKind::Digits,
            "boolean" => BuiltinKind::Boolean,
            "number" => BuiltinKind::Number,
            "currency" => BuiltinKind::Currency,
            "date" => BuiltinKind::Date,
            "time" => BuiltinKind::Time,
            "phone" => BuiltinKind::Phone,
            _ => return Err(GrammarError::UnknownBuiltin(name.to_string())),
        };
        let mut b = Builtin {
            kind,
            min: None,
            max: None,
            yes: '1',
            no: '2',
        };
        for p in params.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let num = || {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| GrammarError::BadParameter(p.to_string()))
            };
            match k.trim() {
                "minlength" => b.min = Some(num()?),
                "maxlength" => b.max = Some(num()?),
                "length" => {
                    let n = num()?;
                    b.min = Some(n);
                    b.max = Some(n);
                }
                "y" => b.yes = v.chars().next().unwrap_or('1'),
                "n" => b.no = v.chars().next().unwrap_or('2'),
                _ => return Err(GrammarError::BadParameter(p.to_string())),
            }
        }
        if let (Some(lo), Some(hi)) = (b.min, b.max) {
            if lo > hi {
                return Err(GrammarError::BadParameter(params.to_string()));
            }
        }
        Ok(b)
    }

    /// Matches keys; the semantics are a JSON literal.
    #[must_use]
    pub fn check(&self, keys: &str) -> MatchStatus {
        let no = MatchStatus::default();
        if keys.is_empty() {
            return MatchStatus {
                extendable: true,
                ..no
            };
        }
        let digits_only = keys.chars().all(|c| c.is_ascii_digit());
        let len = keys.chars().count() as u32;
        let json_str = |s: &str| format!("\"{s}\"");
        match self.kind {
            BuiltinKind::Digits => {
                if !digits_only {
                    return no;
                }
                let min = self.min.unwrap_or(1);
                let fits = self.max.is_none_or(|m| len <= m);
                MatchStatus {
                    complete: len >= min && fits,
                    extendable: self.max.is_none_or(|m| len < m),
                    semantics: Some(json_str(keys)),
                }
            }
            BuiltinKind::Boolean => {
                let c = keys.chars().next().expect("keys is not empty");
                if len != 1 || (c != self.yes && c != self.no) {
                    return no;
                }
                MatchStatus {
                    complete: true,
                    extendable: false,
                    semantics: Some((c == self.yes).to_string()),
                }
            }
            BuiltinKind::Number | BuiltinKind::Currency | BuiltinKind::Phone => {
                let mut parts = keys.split('*');
                let int = parts.next().unwrap_or("");
                let frac = parts.next();
                let ok = parts.next().is_none()
                    && !int.is_empty()
                    && int.chars().all(|c| c.is_ascii_digit())
                    && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    return no;
                }
                let complete = frac.is_none_or(|f| !f.is_empty());
                let semantics = match (self.kind, frac) {
                    (BuiltinKind::Number, None) => int.trim_start_matches('0').to_string(),
                    (BuiltinKind::Number, Some(f)) => {
                        format!("{}.{}", int, if f.is_empty() { "0" } else { f })
                    }
                    (BuiltinKind::Currency, None) => json_str(&format!("{int}.00")),
                    (BuiltinKind::Currency, Some(f)) => json_str(&format!("{int}.{f}")),
                    (_, None) => json_str(int),
                    (_, Some(f)) => json_str(&format!("{int}x{f}")),
                };
                let semantics = if semantics.is_empty() {
                    "0".to_string()
                } else {
                    semantics
                };
                let too_long = self.max.is_some_and(|m| len > m);
                MatchStatus {
                    complete: complete && !too_long && self.min.is_none_or(|m| len >= m),
                    extendable: !too_long,
                    semantics: Some(semantics),
                }
            }
            BuiltinKind::Date | BuiltinKind::Time => {
                let want = if self.kind == BuiltinKind::Date { 8 } else { 4 };
                if !digits_only || len > want {
                    return no;
                }
                if len < want {
                    return MatchStatus {
                        extendable: true,
                        ..no
                    };
                }
                let n = |a: usize, b: usize| keys[a..b].parse::<u32>().unwrap_or(99);
                let valid = if want == 8 {
                    (1..=12).contains(&n(4, 6)) && (1..=31).contains(&n(6, 8))
                } else {
                    n(0, 2) < 24 && n(2, 4) < 60
                };
                if !valid {
                    return no;
                }
                let v = if want == 8 {
                    keys.to_string()
                } else {
                    format!("{keys}h")
                };
                MatchStatus {
                    complete: true,
                    extendable: false,
                    semantics: Some(json_str(&v)),
                }
            }
        }
    }
}

/// Characters that are DTMF keys.
#[must_use]
pub fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

/// Turns token text (`"1 2"`, `"12"`, `"dtmf-star"`) into keys.
fn keys_of(text: &str) -> Result<Vec<char>, GrammarError> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        let tok = tok.trim_matches('"');
        let tok = tok.strip_prefix("dtmf-").unwrap_or(tok);
        match tok {
            "star" => out.push('*'),
            "pound" | "hash" => out.push('#'),
            _ => {
                for c in tok.chars() {
                    if !is_dtmf(c) {
                        return Err(GrammarError::NotDtmf(tok.to_string()));
                    }
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

fn seq_of_keys(keys: Vec<char>) -> Exp {
    match keys.len() {
        0 => Exp::Null,
        1 => Exp::Key(keys[0]),
        _ => Exp::Seq(keys.into_iter().map(Exp::Key).collect()),
    }
}

/// Parses an SRGS `repeat` attribute: `n`, `n-m`, `n-`.
pub fn parse_repeat(r: &str) -> Result<(u32, Option<u32>), GrammarError> {
    let bad = || GrammarError::BadRepeat(r.to_string());
    let r = r.trim();
    if let Some((a, b)) = r.split_once('-') {
        let lo = a.trim().parse().map_err(|_| bad())?;
        let hi = if b.trim().is_empty() {
            None
        } else {
            Some(b.trim().parse().map_err(|_| bad())?)
        };
        if hi.is_some_and(|h| h < lo) {
            return Err(bad());
        }
        Ok((lo, hi))
    } else {
        let n = r.parse().map_err(|_| bad())?;
        Ok((n, Some(n)))
    }
}

/// Builds a grammar from an SRGS XML `<grammar>` element.
pub fn from_xml(node: roxmltree::Node<'_, '_>) -> Result<Grammar, GrammarError> {
    let literal_tags = node
        .attribute("tag-format")
        .is_some_and(|f| f.contains("literals"));
    let mut names: HashMap<String, usize> = HashMap::new();
    let rules: Vec<_> = node
        .children()
        .filter(|n| n.has_tag_name("rule") || n.tag_name().name() == "rule")
        .collect();
    for (i, r) in rules.iter().enumerate() {
        let id = r.attribute("id").ok_or(GrammarError::RuleWithoutId)?;
        names.insert(id.to_string(), i);
    }
    let mut out = Vec::new();
    for r in &rules {
        let exp = xml_seq(*r, &names)?;
        out.push((r.attribute("id").unwrap_or_default().to_string(), exp));
    }
    let root = match node.attribute("root") {
        Some(r) => *names
            .get(r)
            .ok_or_else(|| GrammarError::UnknownRule(r.to_string()))?,
        None if !out.is_empty() => 0,
        None => {
            // A grammar with only inline items: treat its content as the root rule.
            out.push(("root".to_string(), xml_seq(node, &names)?));
            0
        }
    };
    Ok(Grammar {
        rules: out,
        root,
        literal_tags,
        builtin: None,
    })
}

fn xml_seq(
    node: roxmltree::Node<'_, '_>,
    names: &HashMap<String, usize>,
) -> Result<Exp, GrammarError> {
    let mut seq = Vec::new();
    for c in node.children() {
        if c.is_text() {
            let keys = keys_of(c.text().unwrap_or(""))?;
            seq.extend(keys.into_iter().map(Exp::Key));
            continue;
        }
        if !c.is_element() {
            continue;
        }
        let e = match c.tag_name().name() {
            "item" => {
                let inner = xml_seq(c, names)?;
                match c.attribute("repeat") {
                    Some(r) => {
                        let (lo, hi) = parse_repeat(r)?;
                        Exp::Repeat(Box::new(inner), lo, hi)
                    }
                    None => inner,
                }
            }
            "one-of" => {
                let alts = c
                    .children()
                    .filter(|n| n.is_element())
                    .map(|n| {
                        xml_seq(n, names).map(|e| match n.attribute("repeat") {
                            Some(r) => parse_repeat(r)
                                .map(|(lo, hi)| Exp::Repeat(Box::new(e.clone()), lo, hi))
                                .unwrap_or(e),
                            None => e,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Exp::Alt(alts)
            }
            "ruleref" => {
                if let Some(s) = c.attribute("special") {
                    match s {
                        "NULL" => Exp::Null,
                        "VOID" => Exp::Void,
                        _ => return Err(GrammarError::Unsupported(format!("special={s}"))),
                    }
                } else {
                    let uri = c.attribute("uri").unwrap_or("");
                    let name = uri.strip_prefix('#').ok_or_else(|| {
                        GrammarError::Unsupported(format!("external ruleref uri={uri}"))
                    })?;
                    Exp::Ref(
                        *names
                            .get(name)
                            .ok_or_else(|| GrammarError::UnknownRule(name.to_string()))?,
                    )
                }
            }
            "tag" => Exp::Tag(c.text().unwrap_or("").to_string()),
            "token" => seq_of_keys(keys_of(c.text().unwrap_or(""))?),
            "example" | "meta" | "metadata" | "lexicon" => continue,
            "rule" => continue,
            other => return Err(GrammarError::Unsupported(format!("<{other}>"))),
        };
        seq.push(e);
    }
    Ok(if seq.len() == 1 {
        seq.pop().expect("len is 1")
    } else {
        Exp::Seq(seq)
    })
}

impl Grammar {
    /// A grammar that is exactly one of the given key sequences (menus, options, `dtmf=`),
    /// each yielding the given value literal.
    #[must_use]
    pub fn alternatives(choices: &[(String, String)]) -> Grammar {
        let alts = choices
            .iter()
            .filter_map(|(keys, value)| {
                let k = keys_of(keys).ok()?;
                Some(Exp::Seq(vec![seq_of_keys(k), Exp::Tag(value.clone())]))
            })
            .collect();
        Grammar {
            rules: vec![("choices".into(), Exp::Alt(alts))],
            root: 0,
            literal_tags: true,
            builtin: None,
        }
    }

    /// A builtin type as a grammar.
    #[must_use]
    pub fn builtin(b: Builtin) -> Grammar {
        Grammar {
            rules: Vec::new(),
            root: 0,
            literal_tags: false,
            builtin: Some(b),
        }
    }

    /// Matches the whole key string.
    #[must_use]
    pub fn check(&self, keys: &str) -> MatchStatus {
        if let Some(b) = &self.builtin {
            return b.check(keys);
        }
        let input: Vec<char> = keys.chars().collect();
        let mut m = Matcher {
            g: self,
            input: &input,
            complete: None,
            extendable: false,
            budget: 200_000,
        };
        let root = Exp::Ref(self.root);
        let mut trail = Vec::new();
        m.walk(&root, 0, &mut trail, &mut |m, pos, trail| {
            if pos == m.input.len() && m.complete.is_none() {
                m.complete = Some(trail.clone());
            }
        });
        let semantics = m.complete.as_ref().and_then(|t| self.semantics(t, keys));
        MatchStatus {
            complete: m.complete.is_some(),
            extendable: m.extendable,
            semantics,
        }
    }

    /// Builds the ECMAScript for the semantic result of a parse (SISR 1.0 subset: `out`,
    /// `rules.NAME`, `rules.latest()`, literal tags), or `None` when the parse has no tags.
    fn semantics(&self, trail: &[Ev], utterance: &str) -> Option<String> {
        if !trail.iter().any(|e| matches!(e, Ev::Tag(_))) {
            return None;
        }
        if self.literal_tags {
            let last = trail.iter().rev().find_map(|e| match e {
                Ev::Tag(t) => Some(t.trim().to_string()),
                _ => None,
            })?;
            return Some(js_string(&last));
        }
        // trail[0] is the Enter of the root rule.
        let mut pos = 1;
        let mut js = String::new();
        self.rule_js(trail, &mut pos, &mut js, utterance);
        Some(js)
    }

    fn rule_js(&self, trail: &[Ev], pos: &mut usize, js: &mut String, text: &str) {
        // Called just after an Enter (or at the start for the root).
        let start = *pos;
        // Find the extent and whether a tag mentions `out.`
        let mut depth = 0;
        let mut end = start;
        let mut uses_out_member = false;
        while end < trail.len() {
            match &trail[end] {
                Ev::Enter(_) => depth += 1,
                Ev::Exit if depth == 0 => break,
                Ev::Exit => depth -= 1,
                Ev::Tag(t) if depth == 0 && t.contains("out.") => uses_out_member = true,
                _ => {}
            }
            end += 1;
        }
        let own_text: String = trail[start..end]
            .iter()
            .filter_map(|e| match e {
                Ev::Key(c) => Some(*c),
                _ => None,
            })
            .collect();
        js.push_str("(function(){var rules={};rules.latest=function(){return rules.__latest;};");
        js.push_str(if uses_out_member {
            "var out={};"
        } else {
            "var out;"
        });
        while *pos < end {
            match &trail[*pos] {
                Ev::Key(_) => *pos += 1,
                Ev::Tag(t) => {
                    js.push_str(t);
                    js.push_str(";\n");
                    *pos += 1;
                }
                Ev::Enter(r) => {
                    *pos += 1;
                    let name = &self.rules[*r].0;
                    js.push_str(&format!("rules.__latest=rules[{}]=", js_string(name)));
                    let mut sub = String::new();
                    self.rule_js(trail, pos, &mut sub, text);
                    js.push_str(&sub);
                    js.push_str(";\n");
                }
                Ev::Exit => {
                    *pos += 1;
                    break;
                }
            }
        }
        let _ = text;
        js.push_str(&format!(
            "return out===undefined?{}:out;}})()",
            js_string(&own_text)
        ));
        if *pos < trail.len() && matches!(trail[*pos], Ev::Exit) {
            *pos += 1;
        }
    }
}

/// An ECMAScript string literal.
#[must_use]
pub fn js_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialise")
}

#[derive(Debug, Clone)]
enum Ev {
    Key(char),
    Tag(String),
    Enter(usize),
    Exit,
}

struct Matcher<'a> {
    g: &'a Grammar,
    input: &'a [char],
    complete: Option<Vec<Ev>>,
    extendable: bool,
    budget: u32,
}

type Cont<'k, 'a> = dyn FnMut(&mut Matcher<'a>, usize, &mut Vec<Ev>) + 'k;

impl<'a> Matcher<'a> {
    fn walk(&mut self, e: &Exp, pos: usize, trail: &mut Vec<Ev>, k: &mut Cont<'_, 'a>) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        match e {
            Exp::Key(c) => {
                if pos == self.input.len() {
                    self.extendable = true;
                } else if self.input[pos] == *c {
                    trail.push(Ev::Key(*c));
                    k(self, pos + 1, trail);
                    trail.pop();
                }
            }
            Exp::Null => k(self, pos, trail),
            Exp::Void => {}
            Exp::Tag(t) => {
                trail.push(Ev::Tag(t.clone()));
                k(self, pos, trail);
                trail.pop();
            }
            Exp::Alt(alts) => {
                for a in alts {
                    self.walk(a, pos, trail, k);
                }
            }
            Exp::Seq(items) => self.seq(items, 0, pos, trail, k),
            Exp::Ref(r) => {
                if trail.len() > 4 * self.input.len() + 64 {
                    return; // runaway recursion
                }
                let g = self.g;
                trail.push(Ev::Enter(*r));
                self.walk(&g.rules[*r].1, pos, trail, &mut |m, p, t| {
                    t.push(Ev::Exit);
                    k(m, p, t);
                    t.pop();
                });
                trail.pop();
            }
            Exp::Repeat(inner, lo, hi) => self.repeat(inner, *lo, *hi, 0, pos, trail, k),
        }
    }

    fn seq(
        &mut self,
        items: &[Exp],
        i: usize,
        pos: usize,
        trail: &mut Vec<Ev>,
        k: &mut Cont<'_, 'a>,
    ) {
        if i == items.len() {
            return k(self, pos, trail);
        }
        self.walk(&items[i], pos, trail, &mut |m, p, t| {
            m.seq(items, i + 1, p, t, k)
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &mut self,
        inner: &Exp,
        lo: u32,
        hi: Option<u32>,
        n: u32,
        pos: usize,
        trail: &mut Vec<Ev>,
        k: &mut Cont<'_, 'a>,
    ) {
        if n >= lo {
            k(self, pos, trail);
        }
        if hi.is_some_and(|h| n >= h) {
            return;
        }
        self.walk(inner, pos, trail, &mut |m, p, t| {
            if p > pos || n < lo {
                if p == pos && n >= lo {
                    return;
                }
                m.repeat(inner, lo, hi, n + 1, p, t, k);
            }
        });
    }
}

/// Parses an SRGS ABNF grammar in DTMF mode.
pub fn from_abnf(text: &str) -> Result<Grammar, GrammarError> {
    let toks = abnf_tokens(text)?;
    let mut p = Abnf {
        toks,
        i: 0,
        names: HashMap::new(),
        rules: Vec::new(),
    };
    p.parse()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Rule(String),
    Tag(String),
    Repeat(String),
    Sym(char),
}

fn abnf_tokens(text: &str) -> Result<Vec<Tok>, GrammarError> {
    let mut out = Vec::new();
    let cs: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && cs.get(i + 1) == Some(&'/') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && cs.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < cs.len() && !(cs[i] == '*' && cs[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '/' {
            // weight: /n/
            i += 1;
            while i < cs.len() && cs[i] != '/' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            let bang = cs.get(i + 1) == Some(&'!');
            let start = i + if bang { 2 } else { 1 };
            let mut j = start;
            let mut depth = 0;
            loop {
                if j >= cs.len() {
                    return Err(GrammarError::Abnf("unterminated tag".into()));
                }
                if bang && cs[j] == '!' && cs.get(j + 1) == Some(&'}') {
                    break;
                }
                if !bang && cs[j] == '{' {
                    depth += 1;
                }
                if !bang && cs[j] == '}' {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                j += 1;
            }
            out.push(Tok::Tag(cs[start..j].iter().collect()));
            i = j + if bang { 2 } else { 1 };
        } else if c == '<' {
            let j = cs[i..]
                .iter()
                .position(|&x| x == '>')
                .map(|p| p + i)
                .ok_or_else(|| GrammarError::Abnf("unterminated <".into()))?;
            out.push(Tok::Repeat(cs[i + 1..j].iter().collect()));
            i = j + 1;
        } else if c == '"' {
            let j = cs[i + 1..]
                .iter()
                .position(|&x| x == '"')
                .map(|p| p + i + 1)
                .ok_or_else(|| GrammarError::Abnf("unterminated string".into()))?;
            out.push(Tok::Word(cs[i + 1..j].iter().collect()));
            i = j + 1;
        } else if c == '$' {
            let mut j = i + 1;
            while j < cs.len()
                && (cs[j].is_alphanumeric() || matches!(cs[j], '_' | '-' | '.' | '#' | ':'))
            {
                j += 1;
            }
            out.push(Tok::Rule(cs[i + 1..j].iter().collect()));
            i = j;
        } else if matches!(c, '|' | '(' | ')' | '[' | ']' | ';' | '=') {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            let mut j = i;
            while j < cs.len()
                && !cs[j].is_whitespace()
                && !matches!(
                    cs[j],
                    '|' | '(' | ')' | '[' | ']' | ';' | '=' | '{' | '<' | '"' | '$' | '/'
                )
            {
                j += 1;
            }
            out.push(Tok::Word(cs[i..j].iter().collect()));
            i = j;
        }
    }
    Ok(out)
}

struct Abnf {
    toks: Vec<Tok>,
    i: usize,
    names: HashMap<String, usize>,
    rules: Vec<(String, Option<Exp>)>,
}

impl Abnf {
    fn rule_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        self.rules.push((name.to_string(), None));
        self.names.insert(name.to_string(), self.rules.len() - 1);
        self.rules.len() - 1
    }

    fn parse(&mut self) -> Result<Grammar, GrammarError> {
        let mut root = None;
        let mut literal_tags = false;
        let mut mode_dtmf = false;
        // header and declarations
        while self.i < self.toks.len() {
            match self.toks[self.i].clone() {
                Tok::Word(w)
                    if w.starts_with('#')
                        || [
                            "mode",
                            "root",
                            "tag-format",
                            "language",
                            "base",
                            "lexicon",
                            "meta",
                            "http-equiv",
                        ]
                        .contains(&w.as_str()) =>
                {
                    let mut words = Vec::new();
                    self.i += 1;
                    while self.i < self.toks.len() && self.toks[self.i] != Tok::Sym(';') {
                        words.push(self.toks[self.i].clone());
                        self.i += 1;
                    }
                    self.i += 1;
                    match w.as_str() {
                        "mode" => mode_dtmf = words.first() == Some(&Tok::Word("dtmf".into())),
                        "root" => {
                            if let Some(Tok::Rule(r)) = words.first() {
                                root = Some(r.clone());
                            }
                        }
                        "tag-format" => {
                            literal_tags = words
                                .iter()
                                .any(|t| matches!(t, Tok::Repeat(s) if s.contains("literals")))
                        }
                        _ => {}
                    }
                }
                Tok::Word(w) if w == "public" || w == "private" => self.i += 1,
                Tok::Rule(name) => {
                    if !mode_dtmf {
                        return Err(GrammarError::VoiceMode);
                    }
                    self.i += 1;
                    if self.toks.get(self.i) != Some(&Tok::Sym('=')) {
                        return Err(GrammarError::Abnf(format!("expected = after ${name}")));
                    }
                    self.i += 1;
                    let e = self.alt()?;
                    if self.toks.get(self.i) != Some(&Tok::Sym(';')) {
                        return Err(GrammarError::Abnf(format!("expected ; ending ${name}")));
                    }
                    self.i += 1;
                    let idx = self.rule_index(&name);
                    self.rules[idx].1 = Some(e);
                    if root.is_none() {
                        root = Some(name);
                    }
                }
                t => return Err(GrammarError::Abnf(format!("unexpected {t:?}"))),
            }
        }
        if !mode_dtmf {
            return Err(GrammarError::VoiceMode);
        }
        let root = root.ok_or_else(|| GrammarError::Abnf("no rules".into()))?;
        let root = *self
            .names
            .get(&root)
            .ok_or(GrammarError::UnknownRule(root))?;
        let rules = std::mem::take(&mut self.rules)
            .into_iter()
            .map(|(n, e)| {
                e.map(|e| (n.clone(), e))
                    .ok_or(GrammarError::UnknownRule(n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Grammar {
            rules,
            root,
            literal_tags,
            builtin: None,
        })
    }

    fn alt(&mut self) -> Result<Exp, GrammarError> {
        let mut alts = vec![self.seq()?];
        while self.toks.get(self.i) == Some(&Tok::Sym('|')) {
            self.i += 1;
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().expect("one")
        } else {
            Exp::Alt(alts)
        })
    }

    fn seq(&mut self) -> Result<Exp, GrammarError> {
        let mut items = Vec::new();
        loop {
            let e = match self.toks.get(self.i).cloned() {
                Some(Tok::Word(w)) => {
                    self.i += 1;
                    seq_of_keys(keys_of(&w)?)
                }
                Some(Tok::Rule(r)) => {
                    self.i += 1;
                    match r.as_str() {
                        "NULL" => Exp::Null,
                        "VOID" => Exp::Void,
                        "GARBAGE" => return Err(GrammarError::Unsupported("$GARBAGE".into())),
                        _ => Exp::Ref(self.rule_index(&r)),
                    }
                }
                Some(Tok::Tag(t)) => {
                    self.i += 1;
                    Exp::Tag(t)
                }
                Some(Tok::Sym('(')) => {
                    self.i += 1;
                    let e = self.alt()?;
                    self.expect(')')?;
                    e
                }
                Some(Tok::Sym('[')) => {
                    self.i += 1;
                    let e = self.alt()?;
                    self.expect(']')?;
                    Exp::Repeat(Box::new(e), 0, Some(1))
                }
                _ => break,
            };
            let e = if let Some(Tok::Repeat(r)) = self.toks.get(self.i).cloned() {
                self.i += 1;
                let r = r.split('/').next().unwrap_or("");
                let (lo, hi) = parse_repeat(r)?;
                Exp::Repeat(Box::new(e), lo, hi)
            } else {
                e
            };
            items.push(e);
        }
        Ok(match items.len() {
            0 => Exp::Null,
            1 => items.pop().expect("one"),
            _ => Exp::Seq(items),
        })
    }

    fn expect(&mut self, c: char) -> Result<(), GrammarError> {
        if self.toks.get(self.i) == Some(&Tok::Sym(c)) {
            self.i += 1;
            Ok(())
        } else {
            Err(GrammarError::Abnf(format!("expected {c}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(text: &str) -> Grammar {
        let d = roxmltree::Document::parse(text).unwrap();
        from_xml(d.root_element()).unwrap()
    }

    #[test]
    fn builtin_digits_lengths() {
        let b = Builtin::parse("digits?minlength=2;maxlength=3").unwrap();
        assert_eq!(
            b.check("1"),
            MatchStatus {
                complete: false,
                extendable: true,
                semantics: Some("\"1\"".into())
            }
        );
        assert!(b.check("12").complete && b.check("12").extendable);
        assert!(b.check("123").complete && !b.check("123").extendable);
        assert!(!b.check("1234").complete);
        assert!(!b.check("1*").complete && !b.check("1*").extendable);
        assert!(Builtin::parse("digits?minlength=4;maxlength=2").is_err());
        assert!(Builtin::parse("colour").is_err());
    }

    #[test]
    fn builtin_values() {
        let sem = |t: &str, k: &str| Builtin::parse(t).unwrap().check(k).semantics;
        assert_eq!(sem("boolean", "1").as_deref(), Some("true"));
        assert_eq!(sem("boolean", "2").as_deref(), Some("false"));
        assert_eq!(sem("boolean?y=7;n=9", "9").as_deref(), Some("false"));
        assert!(!Builtin::parse("boolean").unwrap().check("3").complete);
        assert_eq!(sem("number", "12*5").as_deref(), Some("12.5"));
        assert_eq!(sem("currency", "12*50").as_deref(), Some("\"12.50\""));
        assert_eq!(
            sem("phone", "5551234*12").as_deref(),
            Some("\"5551234x12\"")
        );
        assert_eq!(sem("date", "20261124").as_deref(), Some("\"20261124\""));
        assert!(!Builtin::parse("date").unwrap().check("20261324").complete);
        assert_eq!(sem("time", "0730").as_deref(), Some("\"0730h\""));
        assert!(!Builtin::parse("time").unwrap().check("2460").complete);
    }

    #[test]
    fn srgs_xml_repeat_and_alternatives() {
        let g = xml(
            r##"<grammar mode="dtmf" root="pin" xmlns="http://www.w3.org/2001/06/grammar">
            <rule id="digit"><one-of><item>1</item><item>2</item><item>3</item></one-of></rule>
            <rule id="pin"><item repeat="2-3"><ruleref uri="#digit"/></item><item repeat="0-1">*</item></rule>
        </grammar>"##,
        );
        assert!(!g.check("1").complete && g.check("1").extendable);
        let s = g.check("12");
        assert!(s.complete && s.extendable);
        assert!(g.check("123*").complete && !g.check("123*").extendable);
        assert!(!g.check("14").complete && !g.check("14").extendable);
        assert_eq!(g.check("12").semantics, None);
    }

    #[test]
    fn srgs_tags_build_semantics() {
        let g = xml(r##"<grammar mode="dtmf" root="r"><rule id="r"><one-of>
            <item>1 <tag>out.choice="yes"</tag></item><item>2 2<tag>out="no"</tag></item></one-of></rule></grammar>"##);
        let js = g.check("1").semantics.unwrap();
        assert!(js.contains("out.choice=\"yes\""), "{js}");
        assert!(g.check("22").semantics.unwrap().contains("out=\"no\""));
    }

    #[test]
    fn abnf_dtmf() {
        let g = from_abnf("#ABNF 1.0; mode dtmf; root $main; $main = 1 {out=\"a\"} | 2 [3] | $d <2> # ; $d = 7|8;").unwrap();
        assert!(g.check("1").complete);
        let s = g.check("2");
        assert!(s.complete && s.extendable);
        assert!(g.check("23").complete);
        assert!(g.check("78#").complete);
        assert!(!g.check("7#").complete);
        assert_eq!(
            from_abnf("#ABNF 1.0; root $a; $a = yes;"),
            Err(GrammarError::VoiceMode)
        );
    }
}
