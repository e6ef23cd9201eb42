//! The shipped udev rules: every DAHDI device node goes to group outcall with mode 0660.
//!
//! Debian 12's udevadm has no `verify` verb (systemd 254 added it): where it exists the test runs
//! it; the rules are always parsed here with udev's own syntax rules.

use outcall_tests::{have, repo_root};
use std::process::Command;

/// One parsed rule: its match keys (`==`) and its assignments (`=`).
#[derive(Debug, Default)]
struct Rule {
    matches: Vec<(String, String)>,
    assigns: Vec<(String, String)>,
}

/// Parses udev rules text: comma-separated `KEY op "value"` terms, op one of == != = += -= :=.
fn parse(text: &str) -> Result<Vec<Rule>, String> {
    const MATCH_KEYS: &[&str] = &["SUBSYSTEM", "KERNEL", "ACTION", "DEVPATH", "DRIVER"];
    const ASSIGN_KEYS: &[&str] = &["OWNER", "GROUP", "MODE", "SYMLINK", "TAG"];
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rule = Rule::default();
        for term in line.split(',').map(str::trim) {
            let key_end = term
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .ok_or(format!("line {n}: no operator in {term:?}"))?;
            let (key, rest) = term.split_at(key_end);
            let (op, value) = ["==", "!=", "+=", "-=", ":=", "="]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
                .ok_or(format!("line {n}: bad operator in {term:?}"))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.contains('"'))
                .ok_or(format!(
                    "line {n}: value of {key} is not one quoted string: {term:?}"
                ))?;
            match op {
                "==" | "!=" if MATCH_KEYS.contains(&key) => {
                    rule.matches.push((key.into(), value.into()))
                }
                "=" | ":=" | "+=" if ASSIGN_KEYS.contains(&key) => {
                    rule.assigns.push((key.into(), value.into()))
                }
                _ => return Err(format!("line {n}: unexpected {key}{op} in {term:?}")),
            }
        }
        if rule.matches.is_empty() {
            return Err(format!(
                "line {n}: a rule with no match applies to every device"
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn rules_text() -> String {
    std::fs::read_to_string(repo_root().join("udev/60-outcall-dahdi.rules")).unwrap()
}

#[test]
fn every_dahdi_node_goes_to_group_outcall_mode_0660() {
    let rules = parse(&rules_text()).unwrap();
    for subsystem in ["dahdi", "dahdi_channels"] {
        let rule = rules
            .iter()
            .find(|r| r.matches.contains(&("SUBSYSTEM".into(), subsystem.into())))
            .unwrap_or_else(|| panic!("no rule for SUBSYSTEM=={subsystem}"));
        let get = |k: &str| {
            rule.assigns
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("GROUP"), Some("outcall"), "{subsystem}: GROUP");
        assert_eq!(get("MODE"), Some("0660"), "{subsystem}: MODE");
    }
    // Nothing may widen access beyond the group.
    for r in &rules {
        for (k, v) in &r.assigns {
            if k == "MODE" {
                let mode = u32::from_str_radix(v, 8).unwrap();
                assert_eq!(mode & 0o007, 0, "MODE {v} gives others access");
            }
        }
    }
}

#[test]
fn the_parser_rejects_what_udev_rejects() {
    assert!(
        parse("SUBSYSTEM==\"dahdi\", GROUP=outcall").is_err(),
        "unquoted value"
    );
    assert!(parse("GROUP=\"outcall\"").is_err(), "no match key");
    assert!(
        parse("SUBSYSTEM==\"dahdi\" GROUP=\"x\"").is_err(),
        "missing comma"
    );
    assert!(
        parse("SUBSYSTEM=\"dahdi\", GROUP=\"x\"").is_err(),
        "assignment to a match key"
    );
}

#[test]
fn udevadm_verify_accepts_the_rules_where_it_exists() {
    if !have("udevadm") {
        eprintln!("skipped: udevadm is not installed");
        return;
    }
    let probe = Command::new("udevadm")
        .args(["verify", "--help"])
        .output()
        .unwrap();
    if !probe.status.success() {
        eprintln!("skipped: this udevadm has no verify verb (systemd < 254); rules parsed instead");
        return;
    }
    let out = Command::new("udevadm")
        .arg("verify")
        .arg(repo_root().join("udev/60-outcall-dahdi.rules"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
