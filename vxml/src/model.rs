//! The validated document model (VoiceXML 2.0 §1.5, 2.1).
//!
//! [`crate::parse`] builds it from XML; the interpreter only reads it. Executable content is kept
//! in `Arc<[Stmt]>` so that the interpreter can suspend in the middle of a block (for a `<data>` or
//! `<script src>` fetch) by holding a cheap reference and an index.

use std::sync::Arc;

use crate::grammar::Grammar;

/// Where an element starts in its document: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// A parsed `<vxml>` document.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// `application` attribute: the URI of the application root document.
    pub application: Option<String>,
    /// `xml:base` attribute, if any.
    pub base: Option<String>,
    /// Document-level `<var>` and `<script>` in document order.
    pub init: Arc<[Stmt]>,
    /// Document-level `<catch>` handlers (and their shorthands).
    pub catches: Vec<Catch>,
    /// Document-level `<property>` settings.
    pub properties: Vec<Property>,
    /// Document-level `<link>` elements (DTMF grammars only).
    pub links: Vec<Link>,
    /// The dialogs, forms and menus, in document order.
    pub dialogs: Vec<Dialog>,
}

impl Document {
    /// The index of the dialog with this id.
    #[must_use]
    pub fn dialog(&self, id: &str) -> Option<usize> {
        self.dialogs.iter().position(|d| d.id == id)
    }
}

/// A `<link>`: a document- or dialog-scoped grammar that transitions or throws when matched.
#[derive(Debug, Clone)]
pub struct Link {
    /// `next` URI.
    pub next: Option<String>,
    /// `expr` URI expression.
    pub expr: Option<String>,
    /// `event` to throw.
    pub event: Option<String>,
    /// `eventexpr`.
    pub eventexpr: Option<String>,
    /// `dtmf` shorthand and child grammars, compiled.
    pub grammars: Vec<GrammarRef>,
}

/// A dialog: `<form>` or `<menu>` (a menu is compiled into a form with one choice field).
#[derive(Debug, Clone)]
pub struct Dialog {
    /// `id` attribute (generated when absent).
    pub id: String,
    /// Where the element starts.
    pub pos: Pos,
    /// Dialog-scope `<var>` and `<script>` in document order.
    pub init: Arc<[Stmt]>,
    /// The form items in document order.
    pub items: Vec<Item>,
    /// Form-level `<filled>`.
    pub filled: Vec<Filled>,
    /// Form-level catch handlers.
    pub catches: Vec<Catch>,
    /// Form-level properties.
    pub properties: Vec<Property>,
    /// Form-level grammars (used by `<initial>` and mixed-initiative forms).
    pub grammars: Vec<GrammarRef>,
    /// Dialog-scoped links.
    pub links: Vec<Link>,
    /// `scope="document"` on the form or menu: its grammars stay active in the whole document.
    pub document_scope: bool,
}

/// The kinds of form item.
#[derive(Debug, Clone)]
pub enum ItemKind {
    /// `<block>`: executable content.
    Block(Arc<[Stmt]>),
    /// `<field>` (also the compiled `<menu>`).
    Field(Field),
    /// `<initial>`: mixed-initiative prompts over form-level grammars.
    Initial,
    /// `<record>`.
    Record(Record),
    /// `<transfer>`.
    Transfer(Transfer),
    /// `<subdialog>`.
    Subdialog(Subdialog),
    /// `<object>`: not supported; throws `error.unsupported.objecttype`.
    Object,
}

/// A form item with its common attributes and children.
#[derive(Debug, Clone)]
pub struct Item {
    /// `name`: the form item variable (generated when absent).
    pub name: String,
    /// Whether the name was generated (anonymous items are not submitted).
    pub anonymous: bool,
    /// `expr`: the initial value of the form item variable.
    pub expr: Option<String>,
    /// `cond`: guard condition.
    pub cond: Option<String>,
    /// Where the element starts.
    pub pos: Pos,
    /// Element name, for messages.
    pub tag: &'static str,
    /// `<prompt>`s (and bare audio/text, as a prompt) in document order.
    pub prompts: Vec<Prompt>,
    /// Item-level catch handlers.
    pub catches: Vec<Catch>,
    /// Item-level `<filled>`.
    pub filled: Vec<Filled>,
    /// Item-level properties.
    pub properties: Vec<Property>,
    /// Item-level grammars.
    pub grammars: Vec<GrammarRef>,
    /// What kind of item.
    pub kind: ItemKind,
}

/// A `<field>`.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// The builtin type, from `type=` (e.g. `digits?minlength=3`).
    pub builtin: Option<crate::grammar::Builtin>,
    /// `slot`: the grammar slot that fills this field.
    pub slot: Option<String>,
    /// `modal`: only this field's grammars are active.
    pub modal: bool,
    /// `<option>`s: value and DTMF sequence.
    pub options: Vec<(String, String)>,
    /// For a compiled `<menu>`: the choices.
    pub menu: Option<Menu>,
}

/// The part of a `<menu>` that the interpreter needs after input.
#[derive(Debug, Clone)]
pub struct Menu {
    /// The choices in order.
    pub choices: Vec<Choice>,
}

/// A `<choice>`.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The DTMF sequence that selects it.
    pub dtmf: Option<String>,
    /// Its text (for `<enumerate>`).
    pub text: Vec<PromptPart>,
    /// `next` URI.
    pub next: Option<String>,
    /// `expr` URI expression.
    pub expr: Option<String>,
    /// `event` to throw.
    pub event: Option<String>,
    /// `eventexpr`.
    pub eventexpr: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `messageexpr`.
    pub messageexpr: Option<String>,
}

/// A `<record>`.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// `beep`.
    pub beep: bool,
    /// `maxtime` in milliseconds.
    pub maxtime_ms: Option<u64>,
    /// `finalsilence` in milliseconds.
    pub finalsilence_ms: Option<u64>,
    /// `dtmfterm`.
    pub dtmfterm: bool,
    /// `type` (media type).
    pub media_type: Option<String>,
}

/// A `<transfer>`.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    /// `dest`.
    pub dest: Option<String>,
    /// `destexpr`.
    pub destexpr: Option<String>,
    /// `bridge` (true) or blind (false); `type` wins when present.
    pub bridge: bool,
    /// `type`: "bridge", "blind" or "consultation".
    pub transfer_type: Option<String>,
    /// `connecttimeout` in milliseconds.
    pub connecttimeout_ms: Option<u64>,
    /// `maxtime` in milliseconds (0 = unlimited).
    pub maxtime_ms: Option<u64>,
    /// `aai`.
    pub aai: Option<String>,
    /// `aaiexpr`.
    pub aaiexpr: Option<String>,
}

/// A `<subdialog>`.
#[derive(Debug, Clone, Default)]
pub struct Subdialog {
    /// `src`.
    pub src: Option<String>,
    /// `srcexpr`.
    pub srcexpr: Option<String>,
    /// `namelist`: variables submitted when src is fetched with a method.
    pub namelist: Vec<String>,
    /// `method`.
    pub method: Method,
    /// `enctype`.
    pub enctype: Option<String>,
    /// `<param>`s.
    pub params: Vec<Param>,
}

/// HTTP method of a fetch or submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// GET (default).
    #[default]
    Get,
    /// POST.
    Post,
}

impl Method {
    /// "GET" or "POST".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A `<param>`.
#[derive(Debug, Clone)]
pub struct Param {
    /// `name`.
    pub name: String,
    /// `expr`.
    pub expr: Option<String>,
    /// `value` (literal).
    pub value: Option<String>,
}

/// A `<filled>`.
#[derive(Debug, Clone)]
pub struct Filled {
    /// `mode="any"` (true) or `"all"` (false, default).
    pub any: bool,
    /// `namelist` (form-level only; empty = all items).
    pub namelist: Vec<String>,
    /// The executable content.
    pub body: Arc<[Stmt]>,
}

/// A `<catch>` or one of its shorthands (`<error>`, `<noinput>`, `<nomatch>`, `<help>`).
#[derive(Debug, Clone)]
pub struct Catch {
    /// Event names; empty catches every event.
    pub events: Vec<String>,
    /// `count` (default 1).
    pub count: u32,
    /// `cond`.
    pub cond: Option<String>,
    /// The executable content.
    pub body: Arc<[Stmt]>,
}

/// A `<property>`.
#[derive(Debug, Clone)]
pub struct Property {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
}

/// A `<grammar>` or a `dtmf=` shorthand.
#[derive(Debug, Clone)]
pub enum GrammarRef {
    /// Compiled inline (or shorthand) DTMF grammar.
    Inline(Arc<Grammar>),
    /// External grammar fetched before listening.
    Src {
        /// `src` URI.
        src: Option<String>,
        /// `srcexpr` (2.1).
        srcexpr: Option<String>,
    },
    /// A voice-mode grammar: kept for completeness, never matches DTMF.
    Voice,
}

/// A prompt: `<prompt>` or bare audio/text/value in a form item.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    /// `count` (default 1).
    pub count: u32,
    /// `cond`.
    pub cond: Option<String>,
    /// `bargein` (None = property).
    pub bargein: Option<bool>,
    /// `timeout` in milliseconds (None = property).
    pub timeout_ms: Option<u64>,
    /// Content.
    pub content: Vec<PromptPart>,
}

/// One piece of prompt content (SSML subset, VoiceXML 2.0 §4.1).
#[derive(Debug, Clone)]
pub enum PromptPart {
    /// Literal text (whitespace normalised).
    Text(String),
    /// `<value expr>`.
    Value(String),
    /// `<audio src|expr>` with fallback content.
    Audio {
        /// `src`.
        src: Option<String>,
        /// `expr`.
        expr: Option<String>,
        /// Fallback content played when the audio cannot be fetched.
        fallback: Vec<PromptPart>,
    },
    /// `<break time>` in milliseconds.
    Break(u64),
    /// `<mark name|nameexpr>` (2.1).
    Mark {
        /// `name`.
        name: Option<String>,
        /// `nameexpr`.
        nameexpr: Option<String>,
    },
    /// `<enumerate>` with optional template content.
    Enumerate(Vec<PromptPart>),
    /// `<foreach array item>` inside a prompt (2.1).
    Foreach {
        /// `array` expression.
        array: String,
        /// `item` variable.
        item: String,
        /// Content per element.
        body: Vec<PromptPart>,
    },
    /// Any other SSML element (emphasis, say-as, s, p, prosody…): its content.
    Group(Vec<PromptPart>),
}

/// Executable content (VoiceXML 2.0 §5.3).
#[derive(Debug, Clone)]
pub enum Stmt {
    /// `<var name expr>`.
    Var {
        /// `name`.
        name: String,
        /// `expr`.
        expr: Option<String>,
        /// Where.
        pos: Pos,
    },
    /// `<assign name expr>`.
    Assign {
        /// `name`.
        name: String,
        /// `expr`.
        expr: String,
        /// Where.
        pos: Pos,
    },
    /// `<clear namelist>`.
    Clear(Vec<String>),
    /// `<script>`: inline text or `src`/`srcexpr`.
    Script {
        /// `src`.
        src: Option<String>,
        /// `srcexpr` (2.1).
        srcexpr: Option<String>,
        /// Inline text.
        text: String,
        /// Where.
        pos: Pos,
    },
    /// `<if>/<elseif>/<else>`: (condition, body) pairs; `None` is else.
    If(Vec<(Option<String>, Arc<[Stmt]>)>),
    /// `<goto>`.
    Goto {
        /// `next`.
        next: Option<String>,
        /// `expr`.
        expr: Option<String>,
        /// `nextitem`.
        nextitem: Option<String>,
        /// `expritem`.
        expritem: Option<String>,
    },
    /// `<submit>`.
    Submit {
        /// `next`.
        next: Option<String>,
        /// `expr`.
        expr: Option<String>,
        /// `namelist`.
        namelist: Vec<String>,
        /// `method`.
        method: Method,
        /// `enctype`.
        enctype: Option<String>,
    },
    /// `<exit expr namelist>`.
    Exit {
        /// `expr`.
        expr: Option<String>,
        /// `namelist`.
        namelist: Vec<String>,
    },
    /// `<return>`.
    Return {
        /// `event`.
        event: Option<String>,
        /// `eventexpr`.
        eventexpr: Option<String>,
        /// `message`.
        message: Option<String>,
        /// `messageexpr`.
        messageexpr: Option<String>,
        /// `namelist`.
        namelist: Vec<String>,
    },
    /// `<disconnect namelist>` (namelist: 2.1).
    Disconnect(Vec<String>),
    /// `<reprompt>`.
    Reprompt,
    /// `<throw>`.
    Throw {
        /// `event`.
        event: Option<String>,
        /// `eventexpr`.
        eventexpr: Option<String>,
        /// `message`.
        message: Option<String>,
        /// `messageexpr`.
        messageexpr: Option<String>,
    },
    /// `<log label expr>` with content.
    Log {
        /// `label`.
        label: Option<String>,
        /// `expr`.
        expr: Option<String>,
        /// Content (text and `<value>`).
        content: Vec<PromptPart>,
    },
    /// A `<prompt>` (or bare `<audio>`, `<value>`, text) queued for play.
    Prompt(Prompt),
    /// `<data>` (2.1).
    Data {
        /// `name`.
        name: Option<String>,
        /// `src`.
        src: Option<String>,
        /// `srcexpr`.
        srcexpr: Option<String>,
        /// `namelist`.
        namelist: Vec<String>,
        /// `method`.
        method: Method,
        /// `enctype`.
        enctype: Option<String>,
    },
    /// `<foreach array item>` (2.1).
    Foreach {
        /// `array` expression.
        array: String,
        /// `item` variable.
        item: String,
        /// Body.
        body: Arc<[Stmt]>,
    },
}
