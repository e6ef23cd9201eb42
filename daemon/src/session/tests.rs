use super::*;
use std::time::Duration;

#[allow(clippy::disallowed_methods)] // tests own the clock: one real Instant as the origin
fn t0() -> Instant {
    Instant::now()
}

fn info() -> outcall_vxml::SessionInfo {
    outcall_vxml::SessionInfo {
        remote_uri: "tel:+15550001".into(),
        outbound: true,
        ..Default::default()
    }
}

fn outputs(s: &mut Session) -> Vec<SessionOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// Renders every Render request with a 1 kHz-ish square wave of `ms` milliseconds.
fn render_all(s: &mut Session, out: &[SessionOutput], ms: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for o in out {
        if let SessionOutput::Render { id, item } = o {
            if let PlayItem::Text(t) = item {
                texts.push(t.clone());
            }
            let samples: Vec<i16> = (0..ms * 8)
                .map(|i| if i % 8 < 4 { 8000 } else { -8000 })
                .collect();
            s.handle_rendered(*id, Some(samples));
        }
    }
    texts
}

/// Plays frames until the prompt ends (bounded); returns how many were non-silent.
fn play_out(s: &mut Session, now: &mut Instant) -> usize {
    let mut loud = 0;
    for _ in 0..1000 {
        let f = s.next_frame(*now);
        *now += Duration::from_millis(20);
        if f.iter().any(|&x| x != 0) {
            loud += 1;
        }
        if !s.is_playing() {
            return loud;
        }
    }
    panic!("the prompt never ended");
}

#[test]
fn say_and_collect_one_digit() {
    let mut now = t0();
    let app = App::Say {
        text: "You were outbid. Press 1 to raise your bid.".into(),
        collect: 1,
    };
    let mut s = Session::start(now, &app, info()).unwrap();
    let out = outputs(&mut s);
    let texts = render_all(&mut s, &out, 1000);
    assert_eq!(texts.len(), 1, "{out:?}");
    assert!(texts[0].contains("outbid"), "{texts:?}");
    assert_eq!(
        play_out(&mut s, &mut now),
        50,
        "1000 ms of prompt = 50 frames"
    );
    assert!(outputs(&mut s).is_empty(), "listening now");
    s.handle_dtmf(now, '1');
    assert_eq!(outputs(&mut s), vec![SessionOutput::Hangup]);
    assert!(s.is_ended());
    assert_eq!(s.digits(), "1");
    assert_eq!(s.submitted().unwrap()["digits"], "1");
}

#[test]
fn barge_in_cuts_the_prompt() {
    let mut now = t0();
    let app = App::Say {
        text: "A long prompt".into(),
        collect: 2,
    };
    let mut s = Session::start(now, &app, info()).unwrap();
    let out = outputs(&mut s);
    render_all(&mut s, &out, 5000);
    for _ in 0..10 {
        assert!(s.next_frame(now).iter().any(|&x| x != 0));
        now += Duration::from_millis(20);
    }
    s.handle_dtmf(now, '4');
    assert!(!s.is_playing());
    assert!(
        s.next_frame(now).iter().all(|&x| x == 0),
        "silence after barge-in"
    );
    s.handle_dtmf(now, '2');
    assert_eq!(outputs(&mut s), vec![SessionOutput::Hangup]);
    assert_eq!(s.submitted().unwrap()["digits"], "42");
}

#[test]
fn no_input_reprompts_then_gives_up() {
    let mut now = t0();
    let app = App::Say {
        text: "Press 1".into(),
        collect: 1,
    };
    let mut s = Session::start(now, &app, info()).unwrap();
    let mut prompts = 0;
    for _ in 0..10 {
        let out = outputs(&mut s);
        if out.contains(&SessionOutput::Hangup) {
            break;
        }
        prompts += render_all(&mut s, &out, 200).len();
        play_out(&mut s, &mut now);
        // Nothing pressed: the no-input timer (5 s by default) fires.
        let t = s
            .poll_timeout()
            .expect("a no-input timer runs while listening");
        assert!(
            t > now && t <= now + Duration::from_secs(6),
            "timeout in {:?}",
            t - now
        );
        now = t;
        s.handle_timeout(now);
    }
    assert_eq!(prompts, 3, "the prompt and two reprompts");
    assert!(s.is_ended());
    assert_eq!(s.digits(), "");
}

#[test]
fn the_final_prompt_plays_before_the_hangup() {
    let mut now = t0();
    let app = App::Say {
        text: "Your wake-up call. Good morning.".into(),
        collect: 0,
    };
    let mut s = Session::start(now, &app, info()).unwrap();
    let out = outputs(&mut s);
    assert!(
        !out.contains(&SessionOutput::Hangup),
        "not before the prompt: {out:?}"
    );
    render_all(&mut s, &out, 400);
    assert_eq!(play_out(&mut s, &mut now), 20);
    assert_eq!(outputs(&mut s), vec![SessionOutput::Hangup]);
}

#[test]
fn inline_vxml_submit_goes_to_the_shell_and_is_recorded() {
    let now = t0();
    let doc = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <var name="bid" expr="session.outcall.user.bid"/>
  <form><field name="choice" type="digits?length=1">
    <prompt>Press 1 to raise</prompt>
    <filled><submit next="http://127.0.0.1:9/bid" method="post" namelist="choice bid"/></filled>
  </field></form></vxml>"#;
    let mut inf = info();
    inf.user_data = serde_json::json!({"bid": 42});
    let mut s = Session::start(now, &App::Vxml(doc.into()), inf).unwrap();
    let out = outputs(&mut s);
    render_all(&mut s, &out, 100);
    let mut now2 = now;
    play_out(&mut s, &mut now2);
    s.handle_dtmf(now2, '1');
    let out = outputs(&mut s);
    let SessionOutput::Submit {
        url,
        post,
        params,
        id,
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(url, "http://127.0.0.1:9/bid");
    assert!(*post);
    assert_eq!(params["choice"], "1");
    assert_eq!(params["bid"], 42);
    assert_eq!(s.submitted().unwrap()["choice"], "1");
    // The server answers with a document that says thanks and ends.
    let body = r#"<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml"><form><block><prompt>Thanks</prompt></block></form></vxml>"#;
    s.handle_fetched(
        now2,
        *id,
        FetchResult::Ok {
            url: url.clone(),
            body: body.into(),
        },
    );
    let out = outputs(&mut s);
    assert_eq!(render_all(&mut s, &out, 100), vec!["Thanks".to_string()]);
}

#[test]
fn say_text_is_escaped() {
    let d = say_document("Tom & Jerry <3", 0);
    assert!(d.contains("Tom &amp; Jerry &lt;3"));
    assert!(outcall_vxml::parse_document(&d).is_ok());
}
