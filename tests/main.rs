//! outcall's end-to-end tests: one test binary (STYLE.md §3), one module per subject.

mod calls;
mod daemon_socket;
mod systemd;
mod udev;
