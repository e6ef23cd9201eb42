//! `outcalld`: the outcall telephony daemon (see the `outcall_daemon` library).

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") => println!("outcalld {}", outcall_daemon::VERSION),
        _ => {
            eprintln!(
                "outcalld {}: the daemon is not built yet (see the project's issues)",
                outcall_daemon::VERSION
            );
            std::process::exit(64);
        }
    }
}
