//! `outcallctl`: the control client of outcalld (see the `outcall_daemon` library).

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") | Some("version") => {
            println!("outcallctl {}", outcall_daemon::VERSION)
        }
        _ => {
            eprintln!(
                "outcallctl {}: the control client is not built yet (see the project's issues)",
                outcall_daemon::VERSION
            );
            std::process::exit(64);
        }
    }
}
