//! The real outcalld binary over its real control socket: bad input is answered and changes
//! nothing, the peer's uid is checked, an acknowledged request survives kill -9, SIGTERM stops
//! cleanly, and configuration errors name file, line and key.

use outcall_tests::{bin_path, Daemon};

fn code(v: &serde_json::Value) -> &str {
    assert_eq!(v["ok"], false, "{v}");
    v["error"]["code"].as_str().unwrap()
}

fn count(d: &Daemon) -> usize {
    let out = d.ctl(&["--json", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn bad_input_is_answered_and_changes_nothing() {
    let d = Daemon::start("bad-input", "", "");
    let mut input = Vec::new();
    input.extend_from_slice(b"garbage\n");
    input.extend_from_slice(&vec![b'x'; 2 * 1024 * 1024]);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"v\":1,\"op\":\"explode\"}\n");
    input.extend_from_slice(
        b"{\"v\":1,\"op\":\"submit\",\"request\":{\"app\":{\"say\":{\"text\":\"x\"}}}}\n",
    );
    input.extend_from_slice(b"{\"v\":1,\"op\":\"submit\",\"request\":{\"number\":\"+1555\",\"app\":{\"say\":{\"text\":\"x\"}},\"ring_timeout_s\":0}}\n");
    input.extend_from_slice(b"{\"v\":9,\"op\":\"version\"}\n");
    input.extend_from_slice(b"{\"v\":1,\"op\":\"submit\",\"request\":{\"number\":\"112\",\"app\":{\"say\":{\"text\":\"x\"}}}}\n");
    input.extend_from_slice(b"{\"v\":1,\"op\":\"version\"}\n");
    let r = d.raw(&input, 8);
    assert_eq!(code(&r[0]), "bad_json");
    assert_eq!(code(&r[1]), "line_too_long");
    assert_eq!(code(&r[2]), "unknown_op");
    assert!(r[2]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("explode"));
    assert_eq!(code(&r[3]), "bad_json");
    assert!(
        r[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("number"),
        "{}",
        r[3]
    );
    assert_eq!(code(&r[4]), "invalid");
    assert_eq!(r[4]["error"]["fields"][0]["field"], "ring_timeout_s");
    assert_eq!(code(&r[5]), "bad_version");
    assert_eq!(code(&r[6]), "policy");
    assert_eq!(
        r[7]["ok"], true,
        "the same connection still works: {}",
        r[7]
    );
    assert_eq!(count(&d), 0, "nothing was stored");
}

#[test]
fn a_peer_whose_uid_is_not_allowed_is_refused() {
    // Needs root to run the client as another user.
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1)
        != 0
    {
        eprintln!("skipped: not root");
        return;
    }
    use std::os::unix::process::CommandExt;
    let d = Daemon::start("uid", "allowed-uids = [65533]", "");
    // The build tree may be private (a 0700 checkout): run a copy the other users can execute.
    let ctl = d.dir.join("outcallctl");
    std::fs::copy(bin_path("outcallctl"), &ctl).unwrap();
    let as_user = |uid: u32| {
        std::process::Command::new(&ctl)
            .arg("--socket")
            .arg(&d.socket)
            .args(["call", "+15551234567", "--say", "hi"])
            .uid(uid)
            .gid(0) // the socket's group: the file mode lets it connect, outcalld decides
            .output()
            .unwrap()
    };
    let refused = as_user(65534);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains("65534"),
        "{stderr}"
    );
    assert_eq!(count(&d), 0);
    let allowed = as_user(65533);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(count(&d), 1);
}

#[test]
fn an_acknowledged_request_survives_kill_9() {
    let mut d = Daemon::start("kill9", "", "");
    let out = d.ctl(&[
        "--json",
        "call",
        "+15551234567",
        "--say",
        "hello",
        "--at",
        "+1h",
        "--user-data",
        "{\"room\":12}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_u64()
        .unwrap();
    d.kill9();
    d.restart();
    let out = d.ctl(&["--json", "status", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["state"], "queued");
    assert_eq!(rec["spec"]["user_data"]["room"], 12);
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = Daemon::start("term", "", "");
    let status = d.terminate();
    assert!(status.success(), "{status}; log:\n{}", d.log());
    assert!(!d.socket.exists(), "socket removed");
    assert!(d.log().contains("stopped"));
}

#[test]
fn check_config_lists_every_error_with_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("outcall-e2e-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[daemon]\nlog-level = \"loud\"\n\n[[span]]\nname = \"s\"\nkind = \"softspan\"\nchannels = 99\n").unwrap();
    for (bin, args) in [
        ("outcalld", vec!["--check-config"]),
        ("outcallctl", vec!["check-config"]),
    ] {
        let out = std::process::Command::new(bin_path(bin))
            .args(&args)
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{bin}");
        let err = String::from_utf8_lossy(&out.stderr);
        let path = f.display().to_string();
        assert!(
            err.contains(&format!("{path}:2: daemon.log-level")),
            "{bin}: {err}"
        );
        assert!(
            err.contains(&format!("{path}:7: span[1].channels")) && err.contains("99"),
            "{bin}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let f = outcall_tests::repo_root().join("examples/softspan.toml");
    let out = std::process::Command::new(bin_path("outcalld"))
        .arg("--check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
