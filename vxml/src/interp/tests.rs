//! FIA tests: in-memory documents, an injected clock, outputs as compact strings.

use super::*;

const BASE: &str = "http://app.test/";

struct H {
    i: Interpreter,
    now: Instant,
    t0: Instant,
    docs: HashMap<String, String>,
    log: Vec<String>,
}

fn vxml(body: &str) -> String {
    format!("<?xml version=\"1.0\"?><vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">{body}</vxml>")
}

impl H {
    fn new(docs: &[(&str, &str)]) -> H {
        H::with(docs, Config::default())
    }

    fn with(docs: &[(&str, &str)], cfg: Config) -> H {
        #[allow(clippy::disallowed_methods)] // tests need an arbitrary origin for the fake clock
        let t0 = Instant::now();
        let mut h = H {
            i: Interpreter::new(cfg).unwrap(),
            now: t0,
            t0,
            docs: docs
                .iter()
                .map(|(u, d)| (format!("{BASE}{u}"), d.to_string()))
                .collect(),
            log: Vec::new(),
        };
        h.i.start(h.now, &format!("{BASE}{}", docs[0].0));
        h.drain();
        h
    }

    /// Drains outputs, answering fetches and prompts; listening stops the drain.
    fn drain(&mut self) {
        for _ in 0..1000 {
            let Some(o) = self.i.poll_output() else {
                return;
            };
            match o {
                Output::Play { items, bargein } => {
                    let mut s = format!("play:{}", play_text(&items));
                    for it in &items {
                        if let PlayItem::Audio { url, .. } = it {
                            s.push_str(&format!(" [audio {url}]"));
                        }
                    }
                    if !bargein {
                        s.push_str(" (nobargein)");
                    }
                    self.log.push(s);
                }
                Output::Listen { item, .. } => self.log.push(format!("listen:{item}")),
                Output::StopListening => {}
                Output::Fetch {
                    id, url, params, ..
                } => {
                    self.log.push(format!(
                        "fetch:{url}{}",
                        if params.is_empty() {
                            String::new()
                        } else {
                            format!(" {}", serde_json::to_string(&params).unwrap())
                        }
                    ));
                    let r = self.answer(&url);
                    self.i
                        .handle_input(self.now, Input::Fetched { id, result: r })
                        .unwrap();
                }
                Output::Submit {
                    id,
                    url,
                    method,
                    params,
                    ..
                } => {
                    self.log.push(format!(
                        "submit:{} {url} {}",
                        method.as_str(),
                        serde_json::to_string(&params).unwrap()
                    ));
                    let r = self.answer(&url);
                    self.i
                        .handle_input(self.now, Input::Fetched { id, result: r })
                        .unwrap();
                }
                Output::Record { item, .. } => self.log.push(format!("record:{item}")),
                Output::Transfer {
                    dest,
                    transfer_type,
                    ..
                } => self.log.push(format!("transfer:{transfer_type} {dest}")),
                Output::Log { text, .. } => self.log.push(format!("log:{text}")),
                Output::Event { name, .. } => self.log.push(format!("event:{name}")),
                Output::Hangup { values } => self.log.push(format!(
                    "hangup:{}",
                    serde_json::to_string(&values).unwrap()
                )),
                Output::Exit { values } => self.log.push(format!("exit:{values}")),
            }
        }
        panic!("too many outputs");
    }

    fn answer(&self, url: &str) -> FetchResult {
        match self.docs.get(url) {
            Some(d) => FetchResult::Ok {
                url: url.to_string(),
                body: d.clone(),
            },
            None => FetchResult::Err {
                status: Some(404),
                message: "not found".into(),
            },
        }
    }

    fn input(&mut self, i: Input) {
        self.i.handle_input(self.now, i).unwrap();
        self.drain();
    }

    fn prompts_done(&mut self) {
        self.input(Input::PromptsDone);
    }

    fn keys(&mut self, k: &str) {
        for c in k.chars() {
            self.input(Input::Dtmf(c));
        }
    }

    /// Advances the clock to the next deadline and fires it; returns the delay.
    fn fire(&mut self) -> Duration {
        let t = self.i.poll_timeout().expect("a timer is armed");
        let d = t - self.now;
        self.now = t;
        self.i.handle_timeout(self.now);
        self.drain();
        d
    }

    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

fn field_doc() -> String {
    vxml(
        r##"<form id="f"><field name="pin" type="digits?length=4">
             <prompt>Enter PIN.</prompt><prompt count="3">Last chance.</prompt>
             <noinput>No input. <reprompt/></noinput>
             <nomatch>Bad. <reprompt/></nomatch>
             <nomatch count="2">Bad again. <reprompt/></nomatch>
             <filled><exit expr="'pin ' + pin"/></filled>
           </field></form>"##,
    )
}

#[test]
fn noinput_timer_starts_when_prompts_finish() {
    let mut h = H::new(&[("a.vxml", &field_doc())]);
    assert_eq!(
        h.take(),
        [
            "fetch:http://app.test/a.vxml",
            "play:Enter PIN.",
            "listen:pin"
        ]
    );
    assert_eq!(h.i.poll_timeout(), None, "no timer while the prompt plays");
    h.now += Duration::from_secs(2);
    h.prompts_done();
    assert_eq!(h.i.poll_timeout(), Some(h.t0 + Duration::from_secs(7)));
    assert_eq!(h.fire(), Duration::from_secs(5));
    assert_eq!(
        h.take(),
        ["event:noinput", "play:No input. Enter PIN.", "listen:pin"]
    );
}

#[test]
fn nomatch_counts_select_handlers_and_prompt_counts() {
    let mut h = H::new(&[("a.vxml", &field_doc())]);
    h.prompts_done();
    h.take();
    h.keys("12#");
    assert_eq!(
        h.take(),
        ["event:nomatch", "play:Bad. Enter PIN.", "listen:pin"]
    );
    h.prompts_done();
    h.keys("9#");
    assert_eq!(
        h.take(),
        [
            "event:nomatch",
            "play:Bad again. Last chance.",
            "listen:pin"
        ]
    );
    h.prompts_done();
    h.keys("4321");
    assert_eq!(h.take(), ["exit:\"pin 4321\""]);
    assert!(h.i.is_ended());
}

#[test]
fn interdigit_and_termchar() {
    let doc = vxml(
        r##"<property name="interdigittimeout" value="2s"/>
           <form><field name="n" type="digits"><filled><exit expr="n"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(
        h.i.poll_timeout(),
        Some(h.t0 + Duration::from_secs(5)),
        "no prompts: noinput timer at once"
    );
    h.keys("42");
    assert_eq!(h.fire(), Duration::from_secs(2));
    assert_eq!(h.take().last().unwrap(), "exit:\"42\"");
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("7#");
    assert_eq!(h.take().last().unwrap(), "exit:\"7\"");
    assert_eq!(h.i.poll_timeout(), None);
}

#[test]
fn termtimeout_and_custom_termchar() {
    let doc = vxml(
        r##"<form><property name="termtimeout" value="1s"/><property name="termchar" value="*"/>
           <field name="b" type="boolean"><filled><exit expr="b"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("2");
    assert_eq!(h.fire(), Duration::from_secs(1));
    assert_eq!(h.take().last().unwrap(), "exit:false");
}

#[test]
fn bargein_false_discards_keys_during_prompt() {
    let doc = vxml(
        r##"<form><field name="d" type="digits?length=1"><prompt bargein="false" timeout="3s">Wait.</prompt>
           <filled><exit expr="d"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1], "play:Wait. (nobargein)");
    h.keys("5");
    assert!(!h.i.is_ended());
    h.prompts_done();
    assert_eq!(
        h.i.poll_timeout(),
        Some(h.now + Duration::from_secs(3)),
        "prompt timeout wins"
    );
    h.keys("6");
    assert_eq!(h.take().last().unwrap(), "exit:\"6\"");
}

#[test]
fn menu_enumerate_and_choices() {
    let doc = vxml(
        r##"<menu id="m" dtmf="true"><prompt>Choose. <enumerate/></prompt>
             <choice next="#a">sales</choice><choice next="#b">support</choice>
             <choice dtmf="0" event="operator">operator</choice>
           </menu>
           <form id="a"><block><exit expr="'a'"/></block></form>
           <form id="b"><block><exit expr="'b'"/></block></form>
           <catch event="operator"><exit expr="'op'"/></catch>"##,
    );
    let mut h = H::new(&[("m.vxml", &doc)]);
    assert_eq!(
        h.take()[1],
        "play:Choose. For sales, press 1. For support, press 2. For operator, press 0."
    );
    h.keys("2");
    assert_eq!(h.take().last().unwrap(), "exit:\"b\"");
    let mut h = H::new(&[("m.vxml", &doc)]);
    h.keys("0");
    assert_eq!(h.take()[3..], ["event:operator", "exit:\"op\""]);
    let mut h = H::new(&[("m.vxml", &doc)]);
    h.keys("7");
    assert_eq!(h.take()[3], "event:nomatch");
}

#[test]
fn enumerate_template_and_options() {
    let doc = vxml(
        r##"<form><field name="c"><prompt><enumerate>Press <value expr="_dtmf"/> for <value expr="_prompt"/>.</enumerate></prompt>
             <option dtmf="1" value="red">Red</option><option dtmf="2" value="blue">Blue</option>
             <filled><exit expr="c"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1], "play:Press 1 for red. Press 2 for blue.");
    h.keys("2");
    assert_eq!(h.take().last().unwrap(), "exit:\"blue\"");
}

#[test]
fn block_var_assign_if_log_value() {
    let doc = vxml(
        r##"<var name="x" expr="2"/>
           <form><var name="y"/><block>
             <assign name="y" expr="x * 10"/>
             <if cond="y &gt; 100"><log>big</log><elseif cond="y == 20"/><log>twenty <value expr="y"/></log><else/><log>small</log></if>
             You have <value expr="y"/> points.
             <assign name="document.x" expr="3"/><log expr="'x=' + x"/>
           </block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(
        h.take()[1..],
        [
            "log:twenty 20",
            "log:x=3",
            "play:You have 20 points.",
            "exit:null"
        ]
    );
}

#[test]
fn undeclared_assign_is_error_semantic_caught_by_document_catch() {
    let doc = vxml(
        r##"<error><log expr="_event + ': ' + (_message != null)"/><exit/></error>
           <form><block><assign name="nope" expr="1"/><log>not reached</log></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(
        h.take()[1..],
        [
            "event:error.semantic",
            "log:error.semantic: true",
            "exit:null"
        ]
    );
}

#[test]
fn scripts_inline_src_and_srcexpr() {
    let doc = vxml(
        r##"<script>function sq(n) { return n * n; } var k = 4;</script>
           <script src="lib.js"/>
           <form><block><script srcexpr="'more' + '.js'"/><log expr="sq(k) + twice(k) + extra"/></block></form>"##,
    );
    let mut h = H::new(&[
        ("a.vxml", &doc),
        ("lib.js", "function twice(n) { return 2 * n; }"),
        ("more.js", "var extra = 100;"),
    ]);
    assert_eq!(
        h.take(),
        [
            "fetch:http://app.test/a.vxml",
            "fetch:http://app.test/lib.js",
            "fetch:http://app.test/more.js",
            "log:124",
            "exit:null"
        ]
    );
}

#[test]
fn goto_documents_dialogs_and_items() {
    let a = vxml(r##"<form id="one"><block name="b1"><goto next="b.vxml#two"/></block></form>"##);
    let b = vxml(
        r##"<form id="x"><block><exit expr="'wrong'"/></block></form>
           <form id="two"><var name="n" expr="0"/>
             <block name="p"><assign name="n" expr="n + 1"/><if cond="n &lt; 3"><goto nextitem="p"/></if><goto expritem="'q'"/></block>
             <block name="skipped"><exit expr="'skipped'"/></block>
             <block name="q"><log expr="'n=' + n"/><goto next="#three"/></block></form>
           <form id="three"><block><exit expr="'three'"/></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a), ("b.vxml", &b)]);
    assert_eq!(
        h.take()[1..],
        ["fetch:http://app.test/b.vxml", "log:n=3", "exit:\"three\""]
    );
}

#[test]
fn badfetch_carries_http_status() {
    let a = vxml(
        r##"<catch event="error.badfetch.http.404"><log expr="_event"/><exit expr="'caught'"/></catch>
           <form><block><goto next="missing.vxml"/></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a)]);
    assert_eq!(
        h.take()[1..],
        [
            "fetch:http://app.test/missing.vxml",
            "event:error.badfetch.http.404",
            "log:error.badfetch.http.404",
            "exit:\"caught\""
        ]
    );
    // a first document that cannot be fetched ends the session with the event
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut i = Interpreter::new(Config::default()).unwrap();
    i.start(now, "http://app.test/none.vxml");
    let Some(Output::Fetch { id, .. }) = i.poll_output() else {
        panic!()
    };
    i.handle_input(
        now,
        Input::Fetched {
            id,
            result: FetchResult::Err {
                status: Some(500),
                message: "boom".into(),
            },
        },
    )
    .unwrap();
    assert_eq!(
        i.poll_output(),
        Some(Output::Event {
            name: "error.badfetch.http.500".into(),
            message: Some("boom".into())
        })
    );
    assert!(matches!(i.poll_output(), Some(Output::Exit { .. })));
}

#[test]
fn submit_sends_namelist_and_runs_the_answer() {
    let a = vxml(
        r##"<form><field name="bid" type="number"><filled><var name="cur" expr="'USD'"/><submit next="bid.vxml" method="post" namelist="bid cur"/></filled></field></form>"##,
    );
    let b = vxml(r##"<form><block>Thanks.<exit/></block></form>"##);
    let mut h = H::new(&[("a.vxml", &a), ("bid.vxml", &b)]);
    h.keys("12*5#");
    assert_eq!(
        h.take()[2..],
        [
            "submit:POST http://app.test/bid.vxml {\"bid\":12.5,\"cur\":\"USD\"}",
            "play:Thanks.",
            "exit:null"
        ]
    );
}

#[test]
fn submit_without_namelist_sends_named_items() {
    let a = vxml(
        r##"<form><field name="a" type="boolean"/><block><submit next="s.vxml"/></block></form>"##,
    );
    let mut h = H::new(&[
        ("a.vxml", &a),
        ("s.vxml", &vxml("<form><block><exit/></block></form>")),
    ]);
    h.keys("1");
    assert_eq!(
        h.take()[2],
        "submit:GET http://app.test/s.vxml {\"a\":true}"
    );
}

#[test]
fn exit_namelist_and_disconnect_namelist() {
    let a = vxml(
        r##"<catch event="connection.disconnect.hangup"><log>bye</log><exit namelist="r"/></catch>
           <form><var name="r" expr="'done'"/><block>Goodbye.<disconnect namelist="r"/></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a)]);
    assert_eq!(
        h.take()[1..],
        [
            "play:Goodbye.",
            "hangup:{\"r\":\"done\"}",
            "event:connection.disconnect.hangup",
            "log:bye",
            "exit:{\"r\":\"done\"}"
        ]
    );
}

#[test]
fn caller_hangup_ends_the_session_and_runs_the_handler() {
    let mut h = H::new(&[("a.vxml", &field_doc())]);
    h.take();
    h.input(Input::Hangup);
    assert_eq!(
        h.take(),
        ["event:connection.disconnect.hangup", "exit:null"]
    );
    assert_eq!(h.i.handle_input(h.now, Input::Dtmf('1')), Err(Error::Ended));
}

#[test]
fn subdialog_params_and_return() {
    let a = vxml(
        r##"<form><subdialog name="r" src="sub.vxml#ask"><param name="greeting" expr="'Hi'"/>
             <filled><exit expr="r.answer + '/' + r.how"/></filled></subdialog></form>"##,
    );
    let sub = vxml(
        r##"<form id="ask"><var name="greeting" expr="'default'"/><var name="how" expr="'dtmf'"/>
             <field name="answer" type="digits?length=2"><prompt><value expr="greeting"/></prompt>
             <filled><return namelist="answer how"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a), ("sub.vxml", &sub)]);
    assert_eq!(
        h.take()[1..],
        ["fetch:http://app.test/sub.vxml", "play:Hi", "listen:answer"]
    );
    h.keys("42");
    assert_eq!(h.take(), ["exit:\"42/dtmf\""]);
}

#[test]
fn subdialog_return_event_is_thrown_in_caller() {
    let a = vxml(
        r##"<form><subdialog name="r" src="#s"><catch event="sub.failed"><exit expr="_message"/></catch></subdialog></form>
           <form id="s"><block><return event="sub.failed" messageexpr="'why'"/></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a)]);
    assert_eq!(h.take()[1..], ["event:sub.failed", "exit:\"why\""]);
}

#[test]
fn record_fills_and_noinput() {
    let a = vxml(
        r##"<form><record name="msg" beep="true" maxtime="10s" dtmfterm="true"><prompt>Speak.</prompt>
             <noinput><exit expr="'silent'"/></noinput>
             <filled><exit expr="msg + ' ' + msg$.duration + ' ' + msg$.termchar"/></filled></record></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a)]);
    assert_eq!(h.take()[1..], ["play:Speak.", "record:msg"]);
    h.input(Input::RecordDone {
        url: Some("file:///r.wav".into()),
        duration_ms: 1500,
        size: 100,
        termchar: Some('#'),
        maxtime: false,
    });
    assert_eq!(h.take(), ["exit:\"file:///r.wav 1500 #\""]);
    let mut h = H::new(&[("a.vxml", &a)]);
    h.input(Input::RecordDone {
        url: None,
        duration_ms: 0,
        size: 0,
        termchar: None,
        maxtime: false,
    });
    assert_eq!(h.take()[3..], ["event:noinput", "exit:\"silent\""]);
}

#[test]
fn transfer_bridge_outcome_and_blind() {
    let a = vxml(
        r##"<form><transfer name="t" destexpr="'tel:+15551234'" bridge="true" connecttimeout="20s">
             <filled><exit expr="t"/></filled></transfer></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &a)]);
    assert_eq!(h.take()[1], "transfer:bridge tel:+15551234");
    h.input(Input::TransferDone {
        outcome: TransferOutcome::Busy,
        duration_ms: 0,
    });
    assert_eq!(h.take(), ["exit:\"busy\""]);
    let b = vxml(r##"<form><transfer name="t" dest="sip:x@y" type="blind"/></form>"##);
    let mut h = H::new(&[("b.vxml", &b)]);
    h.input(Input::TransferDone {
        outcome: TransferOutcome::Blind,
        duration_ms: 0,
    });
    assert_eq!(
        h.take()[2..],
        ["event:connection.disconnect.transfer", "exit:null"]
    );
    let c = vxml(r##"<form><transfer name="t" dest="mailto:x"/></form>"##);
    let mut h = H::new(&[("c.vxml", &c)]);
    assert_eq!(
        h.take()[1..],
        ["event:error.connection.baddestination", "exit:null"]
    );
}

#[test]
fn catch_inheritance_from_application_root_and_throw() {
    let root = vxml(
        r##"<var name="appvar" expr="'root'"/><catch event="custom"><log expr="'app caught ' + _message + ' ' + appvar"/><exit/></catch>"##,
    );
    let leaf = r##"<?xml version="1.0"?><vxml version="2.1" application="root.vxml"><form>
        <block><throw event="custom.deep" message="m1"/></block></form></vxml>"##;
    let mut h = H::new(&[("leaf.vxml", leaf), ("root.vxml", &root)]);
    assert_eq!(
        h.take()[1..],
        [
            "fetch:http://app.test/root.vxml",
            "event:custom.deep",
            "log:app caught m1 root",
            "exit:null"
        ]
    );
}

#[test]
fn catch_cond_and_form_level_and_no_reprompt() {
    let doc = vxml(
        r##"<form><var name="lim" expr="1"/>
             <catch event="noinput" cond="lim == 0"><exit expr="'never'"/></catch>
             <catch event="noinput">Hello? <assign name="lim" expr="lim + 1"/></catch>
             <field name="f" type="digits"><prompt>Number?</prompt><filled><exit expr="lim"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.prompts_done();
    h.fire();
    // without <reprompt>, the field's prompt is not queued again
    assert_eq!(h.take()[3..], ["event:noinput", "play:Hello?", "listen:f"]);
    h.prompts_done();
    h.keys("1#");
    assert_eq!(h.take().last().unwrap(), "exit:2");
}

#[test]
fn clear_resets_items_and_counters() {
    let doc = vxml(
        r##"<form><var name="round" expr="0"/>
             <field name="d" type="digits?length=1"><prompt>Digit?</prompt><prompt count="2">Again?</prompt>
               <filled><assign name="round" expr="round + 1"/><if cond="round &lt; 2"><clear namelist="d"/><else/><exit expr="d + round"/></if></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("1");
    // cleared: the prompt counter restarted, so the count=1 prompt plays again
    assert_eq!(h.take()[3..], ["play:Digit?", "listen:d"]);
    h.keys("7");
    assert_eq!(h.take().last().unwrap(), "exit:\"72\"");
}

#[test]
fn form_filled_mode_all_and_any() {
    let doc = vxml(
        r##"<form><field name="a" type="digits?length=1"/><field name="b" type="digits?length=1"/>
             <filled mode="any" namelist="a"><log expr="'any ' + a"/></filled>
             <filled><exit expr="a + b"/></filled></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("1");
    assert_eq!(h.take()[2..], ["log:any 1", "listen:b"]);
    h.keys("2");
    assert_eq!(h.take(), ["exit:\"12\""]);
}

#[test]
fn srgs_inline_grammar_with_tags_and_slot() {
    let doc = vxml(
        r##"<form><field name="drink" slot="kind">
             <grammar mode="dtmf" root="r" version="1.0" xmlns="http://www.w3.org/2001/06/grammar"><rule id="r"><one-of>
               <item>1<tag>out.kind="coffee"; out.size="big";</tag></item><item>2<tag>out.kind="tea"</tag></item></one-of></rule></grammar>
             <filled><exit expr="drink + ' ' + application.lastresult$.interpretation.size + ' ' + drink$.utterance"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("1");
    assert_eq!(h.take().last().unwrap(), "exit:\"coffee big 1\"");
}

#[test]
fn abnf_inline_and_external_grammar() {
    let doc = vxml(
        r##"<form><field name="a"><grammar mode="dtmf" type="application/srgs">#ABNF 1.0; mode dtmf; root $r; $r = 1 2 | 3;</grammar>
             <filled><goto nextitem="b"/></filled></field>
             <field name="b"><grammar src="g.grxml"/><filled><exit expr="a + '-' + b"/></filled></field></form>"##,
    );
    let g = r##"<grammar mode="dtmf" root="r" xmlns="http://www.w3.org/2001/06/grammar" version="1.0"><rule id="r"><item repeat="2">9</item></rule></grammar>"##;
    let mut h = H::new(&[("a.vxml", &doc), ("g.grxml", g)]);
    h.keys("12");
    assert_eq!(h.take()[2..], ["fetch:http://app.test/g.grxml", "listen:b"]);
    h.keys("99");
    assert_eq!(h.take(), ["exit:\"12-99\""]);
}

#[test]
fn data_foreach_and_mark() {
    let doc = vxml(
        r##"<form><block><data name="q" src="items.xml" namelist="who"/>
             <var name="total" expr="0"/>
             <foreach item="it" array="q.documentElement.getElementsByTagName('item')">
               <assign name="total" expr="total + Number(it.getAttribute('price'))"/>
             </foreach>
             <prompt><mark name="m1"/>Total <value expr="total"/>.</prompt>
             <log expr="total"/></block></form>"##,
    )
    .replace("<form>", "<var name=\"who\" expr=\"'me'\"/><form>");
    let data = "<items><item price='2'/><item price='3.5'/></items>";
    let mut h = H::new(&[("a.vxml", &doc), ("items.xml", data)]);
    assert_eq!(
        h.take()[1..],
        [
            "fetch:http://app.test/items.xml {\"who\":\"me\"}",
            "log:5.5",
            "play:Total 5.5.",
            "exit:null"
        ]
    );
}

#[test]
fn foreach_in_prompt_and_audio_fallback() {
    let doc = vxml(
        r##"<var name="names" expr="['ann', 'bob']"/>
           <form><block><prompt><foreach item="n" array="names"><value expr="n"/>,</foreach>
             <audio src="hello.wav">hello</audio><audio expr="null">only fallback</audio></prompt></block></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(
        h.take()[1],
        "play:ann, bob, only fallback [audio http://app.test/hello.wav]"
    );
}

#[test]
fn initial_and_form_level_grammar_fill_many_fields() {
    let doc = vxml(
        r##"<form><grammar mode="dtmf" root="r"><rule id="r">1 <tag>out.a="x"; out.b="y";</tag></rule></grammar>
             <initial name="i"><prompt>Say both.</prompt></initial>
             <field name="a"><grammar mode="dtmf" root="r"><rule id="r">5</rule></grammar></field>
             <field name="b"><grammar mode="dtmf" root="r"><rule id="r">6</rule></grammar></field>
             <filled><exit expr="a + b + i"/></filled></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1..], ["play:Say both.", "listen:i"]);
    h.keys("1");
    assert_eq!(h.take(), ["exit:\"xytrue\""]);
}

#[test]
fn link_matches_anywhere_in_the_document() {
    let doc = vxml(
        r##"<link dtmf="0" event="help"/>
           <help><exit expr="'helped'"/></help>
           <form><field name="f" type="boolean"/></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("0");
    assert_eq!(h.take()[2..], ["event:help", "exit:\"helped\""]);
}

#[test]
fn session_variables_and_object_unsupported() {
    let cfg = Config {
        session: SessionInfo {
            local_uri: "tel:+1555".into(),
            remote_uri: "tel:+1666".into(),
            protocol: crate::session::Protocol::Sip,
            user_data: json!({"lot": 7}),
            ..Default::default()
        },
        ..Config::default()
    };
    let doc = vxml(
        r##"<form><block><log expr="session.connection.protocol.name + ' ' + session.connection.remote.uri + ' ' + session.outcall.user.lot"/></block>
             <object name="o" classid="x"/></form>"##,
    );
    let mut h = H::with(&[("a.vxml", &doc)], cfg);
    assert_eq!(
        h.take()[1..],
        [
            "log:sip tel:+1666 7",
            "event:error.unsupported.objectname",
            "exit:null"
        ]
    );
}

#[test]
fn runaway_loop_ends_the_session() {
    let doc = vxml(r##"<form id="a"><block><goto next="#a"/></block></form>"##);
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1..], ["event:error.semantic", "exit:null"]);
}

#[test]
fn typeahead_is_kept_for_the_next_field() {
    let doc = vxml(
        r##"<form><field name="a" type="digits?length=1"/><block><prompt>Next.</prompt></block>
             <field name="b" type="digits?length=1"><filled><exit expr="a + b"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("1");
    h.take();
    // "2" is typed while "Next." plays; bargein lets it through at once
    h.keys("2");
    assert_eq!(h.take(), ["exit:\"12\""]);
}

#[test]
fn termchar_after_complete_input_is_not_typeahead() {
    let doc = vxml(
        r##"<form><field name="a" type="digits?length=1"/>
             <field name="b" type="digits?length=1"><filled><exit expr="a + b"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("1#");
    assert_eq!(h.take()[2..], ["listen:b"]);
    h.keys("2");
    assert_eq!(h.take(), ["exit:\"12\""]);
}

#[test]
fn prompt_cond_and_grammar_srcexpr() {
    let doc = vxml(
        r##"<var name="vip" expr="true"/><var name="g" expr="'yes.grxml'"/>
           <form><field name="f"><prompt cond="vip">Welcome back.</prompt><prompt cond="!vip">Hello.</prompt>
             <grammar srcexpr="g"/><filled><exit expr="f"/></filled></field></form>"##,
    );
    let g = r##"<grammar mode="dtmf" root="r" version="1.0"><rule id="r">1<tag>out="yes"</tag></rule></grammar>"##;
    let mut h = H::new(&[("a.vxml", &doc), ("yes.grxml", g)]);
    assert_eq!(
        h.take()[1..],
        [
            "play:Welcome back.",
            "fetch:http://app.test/yes.grxml",
            "listen:f"
        ]
    );
    h.keys("1");
    assert_eq!(h.take(), ["exit:\"yes\""]);
}

#[test]
fn consultation_transfer_and_bad_srcexpr_are_errors() {
    let doc = vxml(r##"<form><transfer name="t" dest="tel:+1" type="consultation"/></form>"##);
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1], "event:error.unsupported.transfer.consultation");
    let doc = vxml(r##"<form><field name="f"><grammar srcexpr="nope + 1"/></field></form>"##);
    let mut h = H::new(&[("a.vxml", &doc)]);
    assert_eq!(h.take()[1], "event:error.semantic");
}

#[test]
fn interpreter_is_send() {
    fn send<T: Send>() {}
    send::<Interpreter>();
}

#[test]
fn inline_first_document_and_voice_only_field() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut i = Interpreter::new(Config::default()).unwrap();
    let doc = vxml(
        r##"<form><field name="f"><grammar><rule id="r">yes</rule></grammar></field></form>"##,
    );
    i.start_inline(now, "http://app.test/inline.vxml", &doc);
    let mut out = Vec::new();
    while let Some(o) = i.poll_output() {
        out.push(o);
    }
    assert!(
        matches!(&out[0], Output::Event { name, .. } if name == "error.unsupported.format"),
        "{out:?}"
    );
    assert!(matches!(out.last(), Some(Output::Exit { .. })));
}

#[test]
fn items_and_vars_initialise_in_document_order_and_termchar_in_grammar() {
    let doc = vxml(
        r##"<form><var name="base" expr="40"/><field name="n" expr="base + 2"/><var name="after" expr="n + 1"/>
             <field name="code"><grammar mode="dtmf" type="application/srgs">#ABNF 1.0; mode dtmf; root $r; $r = 7 8 #;</grammar>
             <filled><exit expr="after + '/' + code"/></filled></field></form>"##,
    );
    let mut h = H::new(&[("a.vxml", &doc)]);
    h.keys("78#");
    assert_eq!(h.take().last().unwrap(), "exit:\"43/78#\"");
}

/// Mutated example documents and arbitrary inputs never panic or hang the interpreter.
#[test]
fn mutated_documents_and_inputs_do_not_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vxml/");
    let docs = [
        "outbid.vxml",
        "appointment.vxml",
        "wakeup.vxml",
        "survey.vxml",
    ];
    let inputs: &[&str] = &["1", "2", "3", "#", "*", "12*5#", "20261201", "1430", "9"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for name in docs {
        let text = std::fs::read_to_string(format!("{dir}{name}")).unwrap();
        for round in 0..12 {
            let mut t: Vec<char> = text.chars().collect();
            // delete a few random spans (round 0: the document as is)
            for _ in 0..round {
                let at = rnd(t.len());
                let len = rnd(12).min(t.len() - at);
                t.drain(at..at + len);
            }
            let t: String = t.into_iter().collect();
            let mut h = H::with(&[("x.vxml", &t)], Config::default());
            for _ in 0..8 {
                if h.i.is_ended() {
                    break;
                }
                if h.i.poll_timeout().is_some() && rnd(3) == 0 {
                    h.fire();
                    continue;
                }
                h.input(Input::PromptsDone);
                for c in inputs[rnd(inputs.len())].chars() {
                    if !h.i.is_ended() {
                        h.input(Input::Dtmf(c));
                    }
                }
            }
            if !h.i.is_ended() {
                h.input(Input::Hangup);
            }
            // after a hangup every session ends (possibly after a submit answered with 404)
            assert!(h.i.is_ended(), "{name} round {round}: {:?}", h.log);
        }
    }
}

#[test]
fn fetchtimeout_property_reaches_the_shell() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut i = Interpreter::new(Config::default()).unwrap();
    let doc = vxml(
        r##"<property name="fetchtimeout" value="2s"/><form><block><goto next="b.vxml"/></block></form>"##,
    );
    i.start_inline(now, "http://app.test/a.vxml", &doc);
    match i.poll_output() {
        Some(Output::Fetch {
            url, timeout_ms, ..
        }) => {
            assert_eq!(url, "http://app.test/b.vxml");
            assert_eq!(timeout_ms, 2000);
        }
        o => panic!("{o:?}"),
    }
}
