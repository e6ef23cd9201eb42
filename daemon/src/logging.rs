//! Logging for the binaries: tracing to stderr; no timestamps under journald (it adds its own),
//! colours only on a terminal; `RUST_LOG` overrides the level.

/// Installs the subscriber. Call once, from `main`.
pub fn init() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = !journald && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    if journald {
        b.without_time().init();
    } else {
        b.init();
    }
}
