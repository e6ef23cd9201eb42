//! The shipped systemd files: the unit is accepted by `systemd-analyze verify`, the sysusers and
//! tmpfiles snippets really create the user and directories (in a scratch root), and the unit
//! keeps the settings the daemon relies on.

use outcall_tests::{bin_path, have, repo_root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `Key=Value` lines of the unit's sections, values of repeated keys joined by a space.
fn unit_keys(text: &str) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not Key=Value: {line}"));
        keys.entry(k.to_string())
            .and_modify(|old| {
                old.push(' ');
                old.push_str(v);
            })
            .or_insert_with(|| v.to_string());
    }
    keys
}

fn unit_text() -> String {
    std::fs::read_to_string(repo_root().join("systemd/outcalld.service")).unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("outcall-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn unit_keeps_the_settings_the_daemon_relies_on() {
    let k = unit_keys(&unit_text());
    let want = [
        ("Type", "notify"),
        ("User", "outcall"),
        ("Group", "outcall"),
        ("RuntimeDirectory", "outcall"),
        ("StateDirectory", "outcall"),
        ("Restart", "on-failure"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("DevicePolicy", "closed"),
    ];
    for (key, value) in want {
        assert_eq!(
            k.get(key).map(String::as_str),
            Some(value),
            "{key}= in outcalld.service"
        );
    }
    assert!(k.contains_key("WatchdogSec"), "WatchdogSec= is set");
    let caps: Vec<&str> = k["AmbientCapabilities"].split_whitespace().collect();
    assert!(caps.contains(&"CAP_NET_BIND_SERVICE") && caps.contains(&"CAP_SYS_NICE"));
    assert!(
        k["DeviceAllow"].contains("char-dahdi") && k["DeviceAllow"].ends_with("rw"),
        "DeviceAllow= lets the daemon read and write /dev/dahdi/*"
    );
    assert!(
        !k.contains_key("PrivateDevices"),
        "PrivateDevices= would hide /dev/dahdi from the daemon"
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if !have("systemd-analyze") {
        eprintln!("skipped: systemd-analyze is not installed (scripts/setup.sh installs systemd)");
        return;
    }
    // verify insists that ExecStart's program exists: point it at the binary just built and check
    // the rest of the unit exactly as shipped.
    let outcalld = bin_path("outcalld");
    let text = unit_text().replace("/usr/bin/outcalld", outcalld.to_str().unwrap());
    assert!(
        text.contains(outcalld.to_str().unwrap()),
        "ExecStart names /usr/bin/outcalld"
    );
    let dir = scratch("unit");
    let unit = dir.join("outcalld.service");
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about other units on this host (and "dahdi.service not found") are not ours.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("outcalld.service") && !l.contains("dahdi.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sysusers_and_tmpfiles_create_the_user_and_directories() {
    if !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        eprintln!("skipped: systemd-sysusers/systemd-tmpfiles are not installed");
        return;
    }
    let root = scratch("sysroot");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let run = |cmd: &str, args: &[&str], file: &Path| {
        let out = Command::new(cmd)
            .arg(format!("--root={}", root.display()))
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd} {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "systemd-sysusers",
        &[],
        &repo_root().join("systemd/outcall.sysusers"),
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let entry = passwd
        .lines()
        .find(|l| l.starts_with("outcall:"))
        .unwrap_or_else(|| panic!("no outcall user in {passwd}"));
    let fields: Vec<&str> = entry.split(':').collect();
    assert_eq!(fields[5], "/var/lib/outcall", "home");
    assert_eq!(fields[6], "/usr/sbin/nologin", "shell");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system uid, got {uid}");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.lines().any(|l| l.starts_with("outcall:")),
        "group outcall: {group}"
    );

    run(
        "systemd-tmpfiles",
        &["--create"],
        &repo_root().join("systemd/outcall.tmpfiles"),
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for dir in [
        "etc/outcall",
        "run/outcall",
        "var/lib/outcall",
        "var/cache/outcall",
    ] {
        let md = std::fs::metadata(root.join(dir)).unwrap_or_else(|e| panic!("/{dir}: {e}"));
        assert!(md.is_dir(), "/{dir} is a directory");
        assert_eq!(md.permissions().mode() & 0o7777, 0o750, "/{dir} mode");
        assert_eq!(
            md.gid(),
            fields[3].parse::<u32>().unwrap(),
            "/{dir} group is outcall"
        );
    }
    std::fs::remove_dir_all(&root).ok();
}
