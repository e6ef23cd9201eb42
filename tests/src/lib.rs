//! Helpers shared by outcall's end-to-end test binary (`tests/main.rs`): where the repository
//! and the built binaries are.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// The path of a workspace binary (`outcalld`, `outcallctl`) built beside the running test.
///
/// `make test` builds every binary before the tests run; a missing one fails with the command
/// that builds it.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (make test does)",
        p.display()
    );
    p
}

/// Whether an external program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A running outcalld on a scratch directory, killed (SIGKILL) on drop if still running.
pub struct Daemon {
    /// The scratch directory (config, socket, store).
    pub dir: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    child: Option<std::process::Child>,
}

impl Daemon {
    /// Writes a config whose `[daemon]` section points into a fresh scratch directory, with
    /// `extra` appended (more `[daemon]` keys first, then other tables), and starts outcalld.
    pub fn start(name: &str, daemon_keys: &str, extra: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("outcall-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("outcalld.sock");
        let config = dir.join("outcall.toml");
        std::fs::write(
            &config,
            format!(
                "[daemon]\nsocket = {:?}\nstore = {:?}\n{daemon_keys}\n{extra}\n",
                socket,
                dir.join("store")
            ),
        )
        .unwrap();
        let mut d = Daemon {
            dir,
            config,
            socket,
            child: None,
        };
        d.restart();
        d
    }

    /// Starts outcalld again on the same directory and waits (bounded) for its socket.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("outcalld.log"))
            .unwrap();
        let child = std::process::Command::new(bin_path("outcalld"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "debug")
            .stderr(log)
            .spawn()
            .expect("outcalld starts");
        self.child = Some(child);
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("outcalld exited with {status}; log:\n{}", self.log());
            }
            poll_pause();
        }
        panic!(
            "outcalld did not open {} within 5 s; log:\n{}",
            self.socket.display(),
            self.log()
        );
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("outcalld.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        for _ in 0..400 {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            poll_pause();
        }
        c.kill().ok();
        panic!(
            "outcalld did not stop within 10 s of SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// Runs outcallctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(bin_path("outcallctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("outcallctl runs")
    }

    /// Sends raw bytes on a fresh connection, then reads `replies` lines (bounded by a timeout).
    pub fn raw(&self, bytes: &[u8], replies: usize) -> Vec<serde_json::Value> {
        use std::io::{BufRead, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(bytes).unwrap();
        let mut r = std::io::BufReader::new(s);
        (0..replies)
            .map(|_| {
                let mut l = String::new();
                r.read_line(&mut l).expect("a reply line within 10 s");
                serde_json::from_str(&l).unwrap_or_else(|e| panic!("reply {l:?}: {e}"))
            })
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The pause between two polls of a real child process (bounded loops only). End-to-end tests
/// wait on real processes, whose time is real: this is the one sleep the suite allows.
#[allow(clippy::disallowed_methods)]
fn poll_pause() {
    std::thread::sleep(std::time::Duration::from_millis(25));
}

/// A deadline `limit` from now (bounded waits on real processes).
#[allow(clippy::disallowed_methods)] // end-to-end tests wait on real processes and real time
pub fn deadline(limit: std::time::Duration) -> std::time::Instant {
    std::time::Instant::now() + limit
}

/// Whether `deadline` has passed.
#[allow(clippy::disallowed_methods)] // see deadline()
pub fn passed(deadline: std::time::Instant) -> bool {
    std::time::Instant::now() >= deadline
}

/// The pause between two polls of a daemon's state.
pub fn pause() {
    poll_pause();
}
