//! `outcalld`: the outcall telephony daemon (see `outcall_daemon::main_loop`).

use std::path::PathBuf;

const USAGE: &str = "usage: outcalld [--config FILE] | --check-config FILE | --version
  --config FILE        run with FILE (default /etc/outcall/outcall.toml)
  --check-config FILE  print every problem of FILE and exit (0 ok, 78 errors)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = PathBuf::from("/etc/outcall/outcall.toml");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["--version" | "-V"] => return println!("outcalld {}", outcall_daemon::VERSION),
        ["--help" | "-h"] => return println!("{USAGE}"),
        ["--config" | "-c", f] => config = f.into(),
        ["--check-config", f] => match outcall_daemon::config::Config::load(f.as_ref()) {
            Ok(_) => return println!("{f}: ok"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(78);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(64);
        }
    }
    outcall_daemon::logging::init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the tokio runtime");
    if let Err(e) = rt.block_on(outcall_daemon::main_loop::run(config)) {
        tracing::error!("{e}");
        eprintln!("outcalld: {e}");
        std::process::exit(e.exit_code());
    }
}
