//! The configuration file (`/etc/outcall/outcall.toml`), documented key by key in
//! docs/CONFIG.md.
//!
//! Parsing refuses unknown keys; [`Config::load`] then validates the whole file and returns
//! *every* problem, each as `FILE:LINE: KEY: message` naming the offending value.

mod span;

pub use span::{
    CalleeBehaviour, CalleeConfig, CarrierConfig, Hunting, Law, ScriptStep, SpanConfig, SpanKind,
    SpanType,
};

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key, dotted (`span[1].channels`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}: {}", self.file, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// All the problems of one file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[tts]`.
    #[serde(default)]
    pub tts: TtsConfig,
    /// `[policy]`.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[[span]]`, in file order.
    #[serde(default)]
    pub span: Vec<Spanned<SpanConfig>>,
    /// `[[inbound]]`: applications for inbound calls by DID.
    #[serde(default)]
    pub inbound: Vec<Spanned<InboundConfig>>,
}

/// `[daemon]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Control socket path.
    pub socket: PathBuf,
    /// Control socket mode, octal string.
    pub socket_mode: Spanned<String>,
    /// Users (uids) allowed on the socket besides root and the daemon's own user.
    pub allowed_uids: Vec<u32>,
    /// Groups (gids) allowed on the socket.
    pub allowed_gids: Vec<u32>,
    /// The sled store directory.
    pub store: PathBuf,
    /// Log level: error, warn, info, debug, trace (RUST_LOG overrides).
    pub log_level: Spanned<String>,
    /// Seconds calls may go on after SIGTERM before they are hung up.
    pub drain_timeout: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: "/run/outcall/outcalld.sock".into(),
            socket_mode: Spanned::new(0..0, "0660".into()),
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            store: "/var/lib/outcall/store".into(),
            log_level: Spanned::new(0..0, "info".into()),
            drain_timeout: 60,
        }
    }
}

impl DaemonConfig {
    /// The socket mode as a number (validated by [`Config::load`]).
    pub fn socket_mode(&self) -> u32 {
        u32::from_str_radix(self.socket_mode.get_ref(), 8).unwrap_or(0o660)
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most requests queued at once; submissions beyond are refused (`unavailable`).
    pub max_queued: usize,
    /// Most outbound calls at once across all spans (0 = every port).
    pub max_calls: usize,
    /// Most attempts to one number per rolling 24 hours.
    pub per_callee_per_day: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_queued: 100_000,
            max_calls: 0,
            per_callee_per_day: 10,
        }
    }
}

/// `[tts]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TtsConfig {
    /// espeak-ng voice.
    pub voice: String,
    /// Words per minute (80–450).
    pub rate: Spanned<u32>,
    /// Directory of cached synthesised prompts.
    pub cache: PathBuf,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            voice: "en-us".into(),
            rate: Spanned::new(0..0, 160),
            cache: "/var/cache/outcall/tts".into(),
        }
    }
}

/// `[policy]`: calling windows, callee preferences, more emergency numbers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Numbers refused besides the built-in emergency numbers.
    #[serde(default)]
    pub emergency_numbers: Vec<String>,
    /// The window used when neither the callee nor the request names one.
    #[serde(default)]
    pub window: Option<Spanned<crate::window::Window>>,
    /// `[[policy.callee]]`: callees' own preferences, which beat the sender's.
    #[serde(default)]
    pub callee: Vec<Spanned<CalleePolicy>>,
}

/// A callee's own preference.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CalleePolicy {
    /// The callee's number, as requests give it.
    pub number: String,
    /// Never call this number.
    #[serde(default)]
    pub do_not_call: bool,
    /// The callee's window.
    #[serde(default)]
    pub window: Option<crate::window::Window>,
}

impl PolicyConfig {
    /// The callee's own preference, if any.
    pub fn callee(&self, number: &str) -> Option<&CalleePolicy> {
        self.callee
            .iter()
            .map(Spanned::get_ref)
            .find(|c| c.number == number)
    }

    /// The window that applies: the callee's, else the request's, else the default.
    pub fn window_for<'a>(
        &'a self,
        number: &str,
        requested: Option<&'a crate::window::Window>,
    ) -> Option<&'a crate::window::Window> {
        self.callee(number)
            .and_then(|c| c.window.as_ref())
            .or(requested)
            .or(self.window.as_ref().map(Spanned::get_ref))
    }
}

/// `[[inbound]]`: what an inbound call to `did` runs.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InboundConfig {
    /// The called number (DNIS), or `*` for any.
    pub did: String,
    /// A VoiceXML URL.
    #[serde(default)]
    pub vxml_url: Option<String>,
    /// A VoiceXML file, relative to the config file.
    #[serde(default)]
    pub vxml_file: Option<PathBuf>,
    /// Shorthand: text to speak.
    #[serde(default)]
    pub say: Option<String>,
    /// With `say`: digits to collect.
    #[serde(default)]
    pub collect: u8,
}

/// Maps byte offsets of a file to 1-based lines.
pub(crate) struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    pub(crate) fn line_of(&self, offset: usize) -> Option<usize> {
        (offset > 0 || self.text.is_empty()).then(|| {
            self.text[..offset.min(self.text.len())]
                .bytes()
                .filter(|&b| b == b'\n')
                .count()
                + 1
        })
    }
}

/// Collects the problems of one file.
pub(crate) struct Problems<'a> {
    file: String,
    lines: Lines<'a>,
    pub(crate) list: Vec<ConfigError>,
}

impl Problems<'_> {
    pub(crate) fn at(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.list.push(ConfigError {
            file: self.file.clone(),
            line: self.lines.line_of(span.start),
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.display().to_string(),
                line: None,
                key: "(file)".into(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `text`, read from `file`.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let mut p = Problems {
            file: file.into(),
            lines: Lines { text },
            list: Vec::new(),
        };
        let cfg: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                p.at(span, "(syntax)", msg);
                return Err(ConfigErrors(p.list));
            }
        };
        cfg.validate(&mut p);
        if p.list.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(p.list))
        }
    }

    fn validate(&self, p: &mut Problems<'_>) {
        let d = &self.daemon;
        match u32::from_str_radix(d.socket_mode.get_ref(), 8) {
            Ok(m) if m <= 0o777 && m & 0o007 == 0 => {}
            Ok(m) if m <= 0o777 => p.at(
                d.socket_mode.span(),
                "daemon.socket-mode",
                format!(
                    "{:?} lets every local user submit calls; use 0660",
                    d.socket_mode.get_ref()
                ),
            ),
            _ => p.at(
                d.socket_mode.span(),
                "daemon.socket-mode",
                format!(
                    "{:?} is not an octal mode like \"0660\"",
                    d.socket_mode.get_ref()
                ),
            ),
        }
        if !matches!(
            d.log_level.get_ref().as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            p.at(
                d.log_level.span(),
                "daemon.log-level",
                format!(
                    "{:?} is not one of error, warn, info, debug, trace",
                    d.log_level.get_ref()
                ),
            );
        }
        let rate = *self.tts.rate.get_ref();
        if !(80..=450).contains(&rate) {
            p.at(
                self.tts.rate.span(),
                "tts.rate",
                format!("{rate} words per minute is outside 80..=450"),
            );
        }
        if let Some(w) = &self.policy.window {
            if let Err(m) = w.get_ref().validate() {
                p.at(w.span(), "policy.window", m);
            }
        }
        for (i, c) in self.policy.callee.iter().enumerate() {
            let key = format!("policy.callee[{}]", i + 1);
            if let Err(e) = crate::request::check_number("number", &c.get_ref().number) {
                p.at(c.span(), format!("{key}.number"), e.message);
            }
            if let Some(Err(m)) = c
                .get_ref()
                .window
                .as_ref()
                .map(crate::window::Window::validate)
            {
                p.at(c.span(), format!("{key}.window"), m);
            }
        }
        let mut names = std::collections::HashMap::new();
        for (i, s) in self.span.iter().enumerate() {
            let key = format!("span[{}]", i + 1);
            s.get_ref().validate(s.span(), &key, p);
            if let Some(first) = names.insert(s.get_ref().name.clone(), i + 1) {
                p.at(
                    s.span(),
                    format!("{key}.name"),
                    format!(
                        "{:?} is already the name of span[{first}]",
                        s.get_ref().name
                    ),
                );
            }
        }
        for (i, ib) in self.inbound.iter().enumerate() {
            let key = format!("inbound[{}]", i + 1);
            let ib_ref = ib.get_ref();
            let apps = [
                ib_ref.vxml_url.is_some(),
                ib_ref.vxml_file.is_some(),
                ib_ref.say.is_some(),
            ];
            if apps.iter().filter(|x| **x).count() != 1 {
                p.at(
                    ib.span(),
                    key.clone(),
                    "give exactly one of vxml-url, vxml-file, say",
                );
            }
            if ib_ref.did != "*" {
                if let Err(e) = crate::request::check_number("did", &ib_ref.did) {
                    p.at(ib.span(), format!("{key}.did"), e.message);
                }
            }
        }
    }

    /// The inbound application for a called number: an exact DID match, else `*`.
    pub fn inbound_for(&self, dnis: &str) -> Option<&InboundConfig> {
        let all = || self.inbound.iter().map(Spanned::get_ref);
        all()
            .find(|i| i.did == dnis)
            .or_else(|| all().find(|i| i.did == "*"))
    }
}

#[cfg(test)]
mod tests;
