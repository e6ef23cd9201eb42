//! ECMAScript for `cond`, `expr` and `<script>`, on QuickJS (rquickjs), with the VoiceXML scope
//! chain session → application → document → dialog → anonymous (VoiceXML 2.0 §5.1).
//!
//! Each scope is a plain object; code runs inside nested `with` statements, innermost scope last,
//! so a name resolves in the innermost scope that declares it. Each scope object also holds a
//! property with its own name (`session`, `application`, `document`, `dialog`), so
//! `document.x` works. Values cross to Rust as JSON. The engine was chosen by measurement
//! (docs/BENCHMARKS.md): one QuickJS runtime per session costs about 182 KiB.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rquickjs::{Context, Runtime};

/// Identifies a scope object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeId(u32);

/// An ECMAScript error, as `error.semantic` will report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsError(pub String);

impl std::fmt::Display for JsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result type of script operations.
pub type JsResult<T> = Result<T, JsError>;

const PRELUDE: &str = r##"
var __s = {};
var __tmp;
function __err(e) {
  if (e && e.name) return e.name + ": " + e.message;
  return String(e);
}
function __json(v) {
  if (v === undefined) return undefined;
  var seen = [];
  try {
    return JSON.stringify(v, function (k, x) {
      if (k === "parentNode" || k === "ownerDocument" || k === "__a") return undefined;
      if (typeof x === "function") return undefined;
      if (x && typeof x === "object") {
        if (seen.indexOf(x) >= 0) return undefined;
        seen.push(x);
      }
      return x;
    });
  } catch (e) {
    return JSON.stringify(String(v));
  }
}
function __declared(chain, name) {
  for (var i = chain.length - 1; i >= 0; i--) {
    if (name in __s[chain[i]]) return true;
  }
  return false;
}
function __assign(chain, name, v) {
  for (var i = chain.length - 1; i >= 0; i--) {
    if (name in __s[chain[i]]) { __s[chain[i]][name] = v; return; }
  }
  throw new ReferenceError(name + " is not declared");
}
var __DomProto = {
  getElementsByTagName: function (n) {
    var r = [];
    (function walk(x) {
      for (var i = 0; i < x.childNodes.length; i++) {
        var c = x.childNodes[i];
        if (c.nodeType === 1) { if (n === "*" || c.nodeName === n) r.push(c); walk(c); }
      }
    })(this);
    r.item = function (i) { return this[i] === undefined ? null : this[i]; };
    return r;
  },
  getAttribute: function (n) {
    return this.__a && Object.prototype.hasOwnProperty.call(this.__a, n) ? this.__a[n] : "";
  },
  hasAttribute: function (n) {
    return !!this.__a && Object.prototype.hasOwnProperty.call(this.__a, n);
  },
  hasChildNodes: function () { return this.childNodes.length > 0; },
  getAttributeNode: function (n) {
    return this.hasAttribute(n) ? { name: n, value: this.__a[n], nodeValue: this.__a[n] } : null;
  }
};
function __mk(j, parent, doc) {
  var n = Object.create(__DomProto);
  n.parentNode = parent; n.ownerDocument = doc; n.childNodes = [];
  n.childNodes.item = function (i) { return this[i] === undefined ? null : this[i]; };
  if (j.t === 3) { n.nodeType = 3; n.nodeName = "#text"; n.nodeValue = j.v; n.data = j.v; n.textContent = j.v; n.firstChild = null; n.lastChild = null; return n; }
  n.nodeType = 1; n.nodeName = n.tagName = n.localName = j.n; n.nodeValue = null; n.__a = j.a;
  var attrs = [];
  for (var k in j.a) attrs.push({ name: k, value: j.a[k], nodeName: k, nodeValue: j.a[k] });
  attrs.item = function (i) { return this[i] === undefined ? null : this[i]; };
  attrs.getNamedItem = function (k) { for (var i = 0; i < this.length; i++) if (this[i].name === k) return this[i]; return null; };
  n.attributes = attrs;
  var text = "";
  for (var i = 0; i < j.c.length; i++) { var c = __mk(j.c[i], n, doc); n.childNodes.push(c); text += c.textContent; }
  n.textContent = text;
  for (var i = 0; i < n.childNodes.length; i++) {
    n.childNodes[i].previousSibling = i > 0 ? n.childNodes[i - 1] : null;
    n.childNodes[i].nextSibling = i + 1 < n.childNodes.length ? n.childNodes[i + 1] : null;
  }
  n.firstChild = n.childNodes.length ? n.childNodes[0] : null;
  n.lastChild = n.childNodes.length ? n.childNodes[n.childNodes.length - 1] : null;
  return n;
}
function __dom(j) {
  var d = Object.create(__DomProto);
  d.nodeType = 9; d.nodeName = "#document"; d.childNodes = [];
  d.childNodes.item = function (i) { return this[i] === undefined ? null : this[i]; };
  var r = __mk(j, d, d);
  d.childNodes.push(r); d.documentElement = r; d.firstChild = r; d.lastChild = r;
  return d;
}
"##;

/// One session's ECMAScript engine and scope chain.
pub struct Js {
    _rt: Runtime,
    ctx: Context,
    next_id: u32,
    chain: Vec<ScopeId>,
    budget: Arc<AtomicU64>,
}

impl std::fmt::Debug for Js {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Js").field("chain", &self.chain).finish()
    }
}

/// How many interrupt checks one evaluation may take before it is stopped as a runaway loop.
const INTERRUPT_BUDGET: u64 = 1_000;

impl Js {
    /// Creates an engine with a memory cap in bytes.
    pub fn new(memory_limit: usize) -> Result<Js, crate::Error> {
        let rt = Runtime::new().map_err(|e| crate::Error::Engine(e.to_string()))?;
        rt.set_memory_limit(memory_limit);
        rt.set_max_stack_size(256 * 1024);
        let budget = Arc::new(AtomicU64::new(INTERRUPT_BUDGET));
        let b = budget.clone();
        let ctx = Context::full(&rt).map_err(|e| crate::Error::Engine(e.to_string()))?;
        // The handler is called every few thousand instructions; a finite budget per evaluation
        // stops `while(true){}` without reading any clock.
        // The "parallel" feature makes the runtime Send, so a session can move between threads.
        rt.set_interrupt_handler(Some(Box::new(move || {
            let left = b.load(Ordering::Relaxed);
            if left == 0 {
                return true;
            }
            b.store(left - 1, Ordering::Relaxed);
            false
        })));
        let js = Js {
            _rt: rt,
            ctx,
            next_id: 0,
            chain: Vec::new(),
            budget,
        };
        js.raw(PRELUDE).map_err(|e| crate::Error::Engine(e.0))?;
        Ok(js)
    }

    /// Runs code in the global scope; returns a string result or undefined.
    fn raw(&self, code: &str) -> JsResult<Option<String>> {
        self.budget.store(INTERRUPT_BUDGET, Ordering::Relaxed);
        self.ctx.with(|ctx| {
            // VoiceXML's ECMAScript is sloppy-mode ECMA-262 (the scope chain needs `with`).
            let mut opts = rquickjs::context::EvalOptions::default();
            opts.strict = false;
            let r: rquickjs::Result<rquickjs::Value> = ctx.eval_with_options(code, opts);
            match r {
                Ok(v) => Ok(v.as_string().and_then(|s| s.to_string().ok())),
                Err(rquickjs::Error::Exception) => {
                    let e = ctx.catch();
                    let msg = e
                        .as_exception()
                        .map(|x| x.message().unwrap_or_default())
                        .or_else(|| e.as_string().and_then(|s| s.to_string().ok()))
                        .unwrap_or_else(|| "uncaught exception".into());
                    Err(JsError(msg))
                }
                Err(e) => Err(JsError(e.to_string())),
            }
        })
    }

    /// Runs `body` (which must `return` a string or undefined) inside the scope chain, catching
    /// exceptions as [`JsError`].
    fn in_chain(&self, body: &str) -> JsResult<Option<String>> {
        let mut code = String::from("(function(){try{");
        for s in &self.chain {
            code.push_str(&format!("with(__s[{}])", s.0));
        }
        code.push_str("{\n");
        code.push_str(body);
        code.push_str("\n}}catch(e){return \"\\u0000\"+__err(e);}})()");
        match self.raw(&code)? {
            Some(s) if s.starts_with('\0') => Err(JsError(s[1..].to_string())),
            r => Ok(r),
        }
    }

    /// Creates a scope object; `name` is the property through which it refers to itself.
    pub fn new_scope(&mut self, name: Option<&str>) -> ScopeId {
        let id = ScopeId(self.next_id);
        self.next_id += 1;
        let code = match name {
            Some(n) => format!(
                "__s[{0}]={{}};__s[{0}][{1}]=__s[{0}];",
                id.0,
                crate::grammar::js_string(n)
            ),
            None => format!("__s[{}]={{}};", id.0),
        };
        self.raw(&code)
            .expect("creating an empty object cannot fail");
        id
    }

    /// Releases a scope object.
    pub fn drop_scope(&mut self, id: ScopeId) {
        let _ = self.raw(&format!("delete __s[{}];", id.0));
    }

    /// Sets the active chain, outermost first.
    pub fn set_chain(&mut self, chain: &[ScopeId]) {
        self.chain = chain.to_vec();
    }

    /// The active chain.
    #[must_use]
    pub fn chain(&self) -> &[ScopeId] {
        &self.chain
    }

    fn chain_array(&self) -> String {
        format!(
            "[{}]",
            self.chain
                .iter()
                .map(|s| s.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    /// Evaluates an expression to JSON (`None` = undefined).
    pub fn eval(&self, expr: &str) -> JsResult<Option<serde_json::Value>> {
        let r = self.in_chain(&format!("return __json(({expr}\n));"))?;
        Ok(r.map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)))
    }

    /// Evaluates an expression and converts it with `String()`.
    pub fn eval_string(&self, expr: &str) -> JsResult<String> {
        Ok(self
            .in_chain(&format!("return String(({expr}\n));"))?
            .unwrap_or_default())
    }

    /// Evaluates a condition with ECMAScript truthiness.
    pub fn eval_bool(&self, cond: &str) -> JsResult<bool> {
        Ok(self
            .in_chain(&format!("return (({cond}\n)) ? \"t\" : \"f\";"))?
            .as_deref()
            == Some("t"))
    }

    /// Whether a name is declared in any scope of the chain.
    pub fn is_declared(&self, name: &str) -> bool {
        let first = name.split(['.', '[']).next().unwrap_or(name);
        let code = format!(
            "__declared({}, {}) ? \"t\" : \"f\"",
            self.chain_array(),
            crate::grammar::js_string(first)
        );
        self.raw(&code).ok().flatten().as_deref() == Some("t")
    }

    /// Declares (or re-declares) `name` in `scope` with the value of `expr` (undefined if none).
    pub fn declare(&self, scope: ScopeId, name: &str, expr: Option<&str>) -> JsResult<()> {
        let v = expr.map_or_else(|| "undefined".to_string(), |e| format!("({e}\n)"));
        self.in_chain(&format!(
            "__s[{}][{}] = {v};",
            scope.0,
            crate::grammar::js_string(name)
        ))?;
        Ok(())
    }

    /// Declares `name` in `scope` with a JSON value.
    pub fn declare_json(
        &self,
        scope: ScopeId,
        name: &str,
        v: Option<&serde_json::Value>,
    ) -> JsResult<()> {
        let lit = v.map_or_else(|| "undefined".to_string(), json_literal);
        self.raw(&format!(
            "__s[{}][{}] = {lit};",
            scope.0,
            crate::grammar::js_string(name)
        ))?;
        Ok(())
    }

    /// Declares `name` in `scope` with the result of running ECMAScript `code` (an expression)
    /// in the global scope: semantic results of grammars.
    pub fn declare_code(&self, scope: ScopeId, name: &str, code: &str) -> JsResult<()> {
        self.in_chain(&format!(
            "__s[{}][{}] = ({code}\n);",
            scope.0,
            crate::grammar::js_string(name)
        ))?;
        Ok(())
    }

    /// Sets a property path under a scope's variable, e.g. `name$.utterance`.
    pub fn set_path_json(&self, scope: ScopeId, path: &str, v: &serde_json::Value) -> JsResult<()> {
        let mut target = format!("__s[{}]", scope.0);
        let parts: Vec<&str> = path.split('.').collect();
        let mut code = String::new();
        for (i, p) in parts.iter().enumerate() {
            target.push_str(&format!("[{}]", crate::grammar::js_string(p)));
            if i + 1 < parts.len() {
                code.push_str(&format!("if({target}===undefined||{target}===null||typeof {target}!==\"object\"){target}={{}};"));
            }
        }
        code.push_str(&format!("{target} = {};", json_literal(v)));
        self.raw(&code)?;
        Ok(())
    }

    /// Sets a DOM built from a JSON tree (see [`xml_to_json`]) as a variable of `scope`.
    pub fn declare_dom(
        &self,
        scope: ScopeId,
        name: &str,
        tree: &serde_json::Value,
    ) -> JsResult<()> {
        self.raw(&format!(
            "__s[{}][{}] = __dom({});",
            scope.0,
            crate::grammar::js_string(name),
            json_literal(tree)
        ))?;
        Ok(())
    }

    /// `<assign>`: the name must be declared in the chain (else ReferenceError → error.semantic).
    pub fn assign(&self, name: &str, expr: &str) -> JsResult<()> {
        let first = name.split(['.', '[']).next().unwrap_or(name).trim();
        if first == name.trim() {
            self.in_chain(&format!(
                "__assign({}, {}, ({expr}\n));",
                self.chain_array(),
                crate::grammar::js_string(first)
            ))?;
        } else {
            if !self.is_declared(first) {
                return Err(JsError(format!("ReferenceError: {first} is not declared")));
            }
            self.in_chain(&format!("{name} = ({expr}\n);"))?;
        }
        Ok(())
    }

    /// Assigns a JSON value to a declared name (form item variables, return values).
    pub fn assign_json(&self, name: &str, v: Option<&serde_json::Value>) -> JsResult<()> {
        let lit = v.map_or_else(|| "undefined".to_string(), json_literal);
        self.assign(name, &lit)
    }

    /// Runs a `<script>` so that its top-level `var` and `function` declarations land in
    /// `scope` (VoiceXML 2.0 §5.3.12).
    pub fn run_script(&self, scope: ScopeId, text: &str) -> JsResult<()> {
        let (vars, funcs) = top_level_declarations(text);
        let mut code = String::new();
        for v in &vars {
            let n = crate::grammar::js_string(v);
            code.push_str(&format!(
                "if(!({n} in __s[{0}]))__s[{0}][{n}]=undefined;",
                scope.0
            ));
        }
        let pre = code.clone();
        self.raw(&format!("{pre}undefined"))?;
        let mut body = String::from(text);
        body.push_str("\n;");
        for f in &funcs {
            body.push_str(&format!(
                "__s[{}][{}]={f};",
                scope.0,
                crate::grammar::js_string(f)
            ));
        }
        self.in_chain(&body)?;
        Ok(())
    }
}

/// A JSON value as an ECMAScript literal.
#[must_use]
pub fn json_literal(v: &serde_json::Value) -> String {
    // JSON is ECMAScript except for U+2028/9 in strings, which ES2019 accepts too.
    v.to_string()
}

/// Turns an XML document into the JSON tree that the `__dom` prelude function wraps
/// (`{t:1,n,a,c}` elements, `{t:3,v}` text).
pub fn xml_to_json(text: &str) -> Result<serde_json::Value, String> {
    let doc = roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    fn conv(n: roxmltree::Node<'_, '_>) -> Option<serde_json::Value> {
        if n.is_text() {
            let t = n.text().unwrap_or("");
            if t.trim().is_empty() {
                return None;
            }
            return Some(serde_json::json!({"t": 3, "v": t}));
        }
        if !n.is_element() {
            return None;
        }
        let attrs: serde_json::Map<String, serde_json::Value> = n
            .attributes()
            .map(|a| (a.name().to_string(), a.value().into()))
            .collect();
        let kids: Vec<_> = n.children().filter_map(conv).collect();
        Some(serde_json::json!({"t": 1, "n": n.tag_name().name(), "a": attrs, "c": kids}))
    }
    conv(doc.root_element()).ok_or_else(|| "empty document".to_string())
}

/// Names of `var` and `function` declarations at the top level of a script.
fn top_level_declarations(text: &str) -> (Vec<String>, Vec<String>) {
    let cs: Vec<char> = text.chars().collect();
    let mut vars = Vec::new();
    let mut funcs = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    let ident = |i: &mut usize| -> String {
        while *i < cs.len() && cs[*i].is_whitespace() {
            *i += 1;
        }
        let s = *i;
        while *i < cs.len() && (cs[*i].is_alphanumeric() || cs[*i] == '_' || cs[*i] == '$') {
            *i += 1;
        }
        cs[s..*i].iter().collect()
    };
    let mut in_var = false;
    let mut var_depth = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            '/' if cs.get(i + 1) == Some(&'/') => {
                while i < cs.len() && cs[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if cs.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < cs.len() && !(cs[i] == '*' && cs[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            '"' | '\'' | '`' => {
                i += 1;
                while i < cs.len() && cs[i] != c {
                    if cs[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ';' if depth == var_depth => in_var = false,
            ',' if in_var && depth == var_depth => {
                i += 1;
                let n = ident(&mut i);
                if !n.is_empty() {
                    vars.push(n);
                }
                continue;
            }
            _ => {}
        }
        let word_start = c.is_alphabetic()
            && (i == 0
                || !(cs[i - 1].is_alphanumeric()
                    || cs[i - 1] == '_'
                    || cs[i - 1] == '$'
                    || cs[i - 1] == '.'));
        if word_start && depth == 0 {
            let mut j = i;
            let w = ident(&mut j);
            if w == "var" {
                let n = ident(&mut j);
                if !n.is_empty() {
                    vars.push(n);
                    in_var = true;
                    var_depth = 0;
                }
                i = j;
                continue;
            } else if w == "function" {
                let n = ident(&mut j);
                if !n.is_empty() {
                    funcs.push(n);
                }
                i = j;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    (vars, funcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(js: &mut Js) -> (ScopeId, ScopeId, ScopeId) {
        let s = js.new_scope(Some("session"));
        let d = js.new_scope(Some("document"));
        let f = js.new_scope(Some("dialog"));
        js.set_chain(&[s, d, f]);
        (s, d, f)
    }

    #[test]
    fn scopes_shadow_and_resolve_by_name() {
        let mut js = Js::new(1 << 20).unwrap();
        let (_, d, f) = chain(&mut js);
        js.declare(d, "x", Some("1")).unwrap();
        js.declare(f, "x", Some("2")).unwrap();
        assert_eq!(js.eval("x").unwrap(), Some(serde_json::json!(2)));
        assert_eq!(js.eval("document.x").unwrap(), Some(serde_json::json!(1)));
        js.assign("x", "x + 40").unwrap();
        assert_eq!(js.eval("dialog.x").unwrap(), Some(serde_json::json!(42)));
        assert_eq!(js.eval("document.x").unwrap(), Some(serde_json::json!(1)));
    }

    #[test]
    fn assign_to_undeclared_is_an_error() {
        let mut js = Js::new(1 << 20).unwrap();
        chain(&mut js);
        let e = js.assign("nope", "1").unwrap_err();
        assert!(e.0.contains("nope"), "{e}");
        assert!(js.eval("undefinedThing + 1").is_err());
    }

    #[test]
    fn script_declarations_land_in_target_scope() {
        let mut js = Js::new(1 << 20).unwrap();
        let (_, d, f) = chain(&mut js);
        js.run_script(
            d,
            "var a = 5, b = 'x'; function twice(n) { return n * 2 * a; }",
        )
        .unwrap();
        assert_eq!(js.eval("document.a").unwrap(), Some(serde_json::json!(5)));
        assert_eq!(js.eval("document.b").unwrap(), Some(serde_json::json!("x")));
        assert_eq!(js.eval("twice(2)").unwrap(), Some(serde_json::json!(20)));
        js.run_script(f, "var a = 1;").unwrap();
        assert_eq!(js.eval("a").unwrap(), Some(serde_json::json!(1)));
        assert_eq!(js.eval("document.a").unwrap(), Some(serde_json::json!(5)));
        // nothing leaked into the global object
        assert!(js.raw("typeof globalThis.a").unwrap().as_deref() == Some("undefined"));
    }

    #[test]
    fn runaway_loop_is_stopped() {
        let mut js = Js::new(1 << 20).unwrap();
        chain(&mut js);
        assert!(js.eval("(function(){while(true){}})()").is_err());
        assert_eq!(js.eval("1+1").unwrap(), Some(serde_json::json!(2)));
    }

    #[test]
    fn dom_from_xml() {
        let mut js = Js::new(1 << 20).unwrap();
        let (_, d, _) = chain(&mut js);
        let t =
            xml_to_json("<quote><price cur='USD'>17.5</price><price cur='EUR'>16</price></quote>")
                .unwrap();
        js.declare_dom(d, "q", &t).unwrap();
        assert_eq!(
            js.eval_string(
                "q.documentElement.getElementsByTagName('price').item(1).getAttribute('cur')"
            )
            .unwrap(),
            "EUR"
        );
        assert_eq!(
            js.eval_string("q.documentElement.firstChild.firstChild.data")
                .unwrap(),
            "17.5"
        );
    }
}
