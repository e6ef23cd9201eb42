use super::*;

const GOOD: &str = r#"
[daemon]
socket = "/tmp/x.sock"
store = "/tmp/store"
allowed-gids = [1234]

[[span]]
name = "soft1"
kind = "softspan"

[span.carrier]
[[span.carrier.callee]]
number = "+15550001"
rings = 2
script = ["wait-prompt", "dtmf 1", "wait 1s", "hangup"]

[[span.carrier.callee]]
number = "+15550002"
behaviour = "busy"

[[inbound]]
did = "*"
say = "Hello"
"#;

#[test]
fn good_file_parses_with_defaults() {
    let c = Config::parse(GOOD, "good.toml").unwrap();
    assert_eq!(c.daemon.socket_mode(), 0o660);
    assert_eq!(c.daemon.drain_timeout, 60);
    let s = c.span[0].get_ref();
    assert_eq!(s.channels(), 23);
    assert_eq!(s.law(), Law::Mulaw);
    assert_eq!(s.switch_type(), "ni2");
    let callees = &s.carrier.as_ref().unwrap().callee;
    assert_eq!(callees[1].get_ref().behaviour, CalleeBehaviour::Busy);
    assert!(c.inbound_for("5551234").is_some());
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let text = "[daemon]\nsocket = \"/x\"\nsockett = \"/y\"\n";
    let e = Config::parse(text, "f.toml").unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, Some(3), "{e}");
    assert!(e.0[0].message.contains("sockett"), "{e}");
    assert!(e.to_string().starts_with("f.toml:3:"), "{e}");
}

#[test]
fn every_semantic_error_is_reported_with_file_line_and_key() {
    let text = r#"
[daemon]
socket-mode = "0666"
log-level = "loud"

[tts]
rate = 20

[[span]]
name = "a"
kind = "softspan"
type = "e1"
channels = 31
switch-type = "att"

[[span]]
name = "a"
kind = "dahdi"

[span.carrier]
[[span.carrier.callee]]
number = "12-34"
script = ["dance"]
"#;
    let e = Config::parse(text, "bad.toml").unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "daemon.socket-mode",
        "daemon.log-level",
        "tts.rate",
        "span[1].channels",
        "span[1].switch-type",
        "span[2].name",
        "span[2].carrier",
        "span[2]",
    ] {
        assert!(keys.contains(&k), "{k} missing from:\n{e}");
    }
    let channels = e.0.iter().find(|e| e.key == "span[1].channels").unwrap();
    assert_eq!(channels.line, Some(13));
    assert!(channels.message.contains("31"));
    let mode = e.0.iter().find(|e| e.key == "daemon.socket-mode").unwrap();
    assert_eq!(mode.line, Some(3));
}

#[test]
fn script_steps() {
    use span::ScriptStep;
    assert_eq!(ScriptStep::parse("wait 2s"), Ok(ScriptStep::Wait(2000)));
    assert_eq!(ScriptStep::parse("wait 250ms"), Ok(ScriptStep::Wait(250)));
    assert_eq!(
        ScriptStep::parse("dtmf 1#"),
        Ok(ScriptStep::Dtmf("1#".into()))
    );
    assert!(ScriptStep::parse("dtmf x").is_err());
    assert!(ScriptStep::parse("wait soon").is_err());
    assert!(ScriptStep::parse("hangup now").is_err());
}

#[test]
fn syntax_error_names_the_line() {
    let e = Config::parse("[daemon]\nsocket = \n", "s.toml").unwrap_err();
    assert_eq!(e.0[0].line, Some(2), "{e}");
}
