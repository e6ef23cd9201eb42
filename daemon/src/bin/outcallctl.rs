//! `outcallctl`: the control client of outcalld (see `outcall_daemon::ctl`).

fn main() {
    let cli = <outcall_daemon::ctl::Cli as clap::Parser>::parse();
    std::process::exit(outcall_daemon::ctl::main(cli));
}
