//! Starts a thread per configured span and returns their command channels.

use crate::config::{Config, SpanKind};
use crate::lines::{LineReport, Lines};
use std::path::Path;
use tokio::sync::mpsc::UnboundedSender;
use tracing::error;

/// Starts every span's thread. A span whose driver cannot start stays down (its ports are
/// never offered) and the reason is logged.
pub fn start(config: &Config, _config_path: &Path, _reports: UnboundedSender<LineReport>) -> Lines {
    let mut lines = Lines::default();
    for (i, s) in config.span.iter().enumerate() {
        let s = s.get_ref();
        match s.kind {
            SpanKind::Softspan | SpanKind::Dahdi => {
                error!(span = %s.name, "the {:?} driver is not built into this outcalld yet: span stays down", s.kind);
                lines.set(i, None);
            }
        }
    }
    lines
}
