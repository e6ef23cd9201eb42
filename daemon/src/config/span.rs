//! `[[span]]`: PRI spans, DAHDI hardware or softspan, and softspan's simulated carrier.

use super::Problems;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// Where a span's D-channel and B-channels come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanKind {
    /// A DAHDI hardware span.
    Dahdi,
    /// The loopback span with a simulated carrier.
    Softspan,
}

/// T1 (23 B-channels, µ-law) or E1 (30 B-channels, A-law).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanType {
    /// T1 PRI: 23B+D.
    #[default]
    T1,
    /// E1 PRI: 30B+D.
    E1,
}

impl SpanType {
    /// B-channels of a full span.
    pub fn b_channels(self) -> u16 {
        match self {
            SpanType::T1 => 23,
            SpanType::E1 => 30,
        }
    }
}

/// G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Law {
    /// µ-law (North America, Japan).
    Mulaw,
    /// A-law (Europe and most of the world).
    Alaw,
}

/// The order in which free B-channels are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hunting {
    /// Lowest free channel first.
    Ascending,
    /// Highest free channel first.
    Descending,
    /// The channel after the last one taken.
    RoundRobin,
}

/// How a simulated callee answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalleeBehaviour {
    /// Rings, answers, runs its script.
    #[default]
    Answer,
    /// Cause 17.
    Busy,
    /// Rings until the caller gives up.
    NoAnswer,
    /// Cause 1.
    Unallocated,
    /// Cause 34.
    Congestion,
}

/// A simulated callee of the softspan carrier.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CalleeConfig {
    /// The number it answers to.
    pub number: String,
    /// What it does.
    #[serde(default)]
    pub behaviour: CalleeBehaviour,
    /// Rings before answering (one ring ≈ 6 s in the US cadence; softspan counts ALERTING).
    #[serde(default = "one")]
    pub rings: u32,
    /// After answering: steps like `"wait-prompt"`, `"dtmf 1"`, `"wait 2s"`, `"hangup"`.
    #[serde(default)]
    pub script: Vec<Spanned<String>>,
    /// Records everything the callee hears to this WAV file.
    #[serde(default)]
    pub record: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

/// softspan's simulated carrier.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CarrierConfig {
    /// How the carrier hunts B-channels for inbound calls (real carriers: ascending).
    #[serde(default)]
    pub hunting: Option<Hunting>,
    /// The callees it simulates; other numbers are unallocated.
    #[serde(default)]
    pub callee: Vec<Spanned<CalleeConfig>>,
    /// Calls the carrier places to us.
    #[serde(default)]
    pub inbound: Vec<Spanned<CarrierInbound>>,
    /// Random inbound traffic: calls arriving as a Poisson process.
    #[serde(default)]
    pub poisson: Option<Spanned<CarrierPoisson>>,
}

/// Inbound calls arriving as a Poisson process (exponential gaps), from a seeded generator so
/// that a run can be repeated.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CarrierPoisson {
    /// Mean arrivals per minute.
    pub per_minute: f64,
    /// The called number.
    pub did: String,
    /// The caller's number.
    #[serde(default)]
    pub ani: String,
    /// What each caller does once answered.
    #[serde(default)]
    pub script: Vec<Spanned<String>>,
    /// Random seed.
    #[serde(default)]
    pub seed: u64,
}

/// A call the simulated carrier places to our span.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CarrierInbound {
    /// The called number (our DID).
    pub did: String,
    /// The caller's number.
    #[serde(default)]
    pub ani: String,
    /// Milliseconds after the span comes up.
    #[serde(default = "second")]
    pub after_ms: u64,
    /// What the caller does once we answer (same steps as a callee's script).
    #[serde(default)]
    pub script: Vec<Spanned<String>>,
    /// Write what the caller heard to this WAV file.
    #[serde(default)]
    pub record: Option<PathBuf>,
}

fn second() -> u64 {
    1000
}

/// One `[[span]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SpanConfig {
    /// Unique name, used in port names (`NAME/CHANNEL`).
    pub name: String,
    /// `dahdi` or `softspan`.
    pub kind: SpanKind,
    /// `t1` (default) or `e1`.
    #[serde(rename = "type", default)]
    pub span_type: SpanType,
    /// B-channels in use (default: all of the span type).
    #[serde(default)]
    pub channels: Option<Spanned<u16>>,
    /// libpri switch type: ni2, national, dms100, 4ess, 5ess, euroisdn_e1, qsig.
    #[serde(default)]
    pub switch_type: Option<Spanned<String>>,
    /// `cpe` (default) or `network`.
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// Law (default: µ-law on T1, A-law on E1).
    #[serde(default)]
    pub law: Option<Law>,
    /// Our hunting order for outbound calls (default descending: opposite to the carrier).
    #[serde(default)]
    pub hunting: Option<Hunting>,
    /// Outbound call attempts per second the carrier accepts on this span.
    #[serde(default = "default_cps")]
    pub calls_per_second: Spanned<f64>,
    /// Milliseconds a channel rests after an inbound call before we dial on it.
    #[serde(default = "default_guard")]
    pub guard_ms: u32,
    /// Channels kept free for inbound calls.
    #[serde(default)]
    pub inbound_reserve: u16,
    /// DAHDI: the first B-channel's DAHDI channel number.
    #[serde(default)]
    pub first_channel: Option<u32>,
    /// DAHDI: the D-channel's DAHDI channel number.
    #[serde(default)]
    pub dchannel: Option<u32>,
    /// softspan: the simulated carrier.
    #[serde(default)]
    pub carrier: Option<CarrierConfig>,
}

fn default_cps() -> Spanned<f64> {
    Spanned::new(0..0, 5.0)
}

fn default_guard() -> u32 {
    500
}

/// libpri's switch type names we accept.
pub const SWITCH_TYPES: &[&str] = &[
    "ni2",
    "national",
    "dms100",
    "4ess",
    "5ess",
    "euroisdn_e1",
    "euroisdn_t1",
    "qsig",
    "ni1",
];

impl SpanConfig {
    /// B-channels in use.
    pub fn channels(&self) -> u16 {
        self.channels
            .as_ref()
            .map_or(self.span_type.b_channels(), |c| *c.get_ref())
    }

    /// The law in use.
    pub fn law(&self) -> Law {
        self.law.unwrap_or(match self.span_type {
            SpanType::T1 => Law::Mulaw,
            SpanType::E1 => Law::Alaw,
        })
    }

    /// The switch type in use.
    pub fn switch_type(&self) -> &str {
        self.switch_type.as_ref().map_or(
            match self.span_type {
                SpanType::T1 => "ni2",
                SpanType::E1 => "euroisdn_e1",
            },
            |s| s.get_ref().as_str(),
        )
    }

    pub(super) fn validate(&self, at: std::ops::Range<usize>, key: &str, p: &mut Problems<'_>) {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.at(
                at.clone(),
                format!("{key}.name"),
                format!("{:?}: use letters, digits, - and _", self.name),
            );
        }
        let max = self.span_type.b_channels();
        if let Some(c) = &self.channels {
            if *c.get_ref() == 0 || *c.get_ref() > max {
                p.at(
                    c.span(),
                    format!("{key}.channels"),
                    format!(
                        "{} is outside 1..={max} for a {:?} span",
                        c.get_ref(),
                        self.span_type
                    ),
                );
            }
        }
        if let Some(s) = &self.switch_type {
            if !SWITCH_TYPES.contains(&s.get_ref().as_str()) {
                p.at(
                    s.span(),
                    format!("{key}.switch-type"),
                    format!(
                        "{:?} is not one of {}",
                        s.get_ref(),
                        SWITCH_TYPES.join(", ")
                    ),
                );
            }
        }
        if let Some(n) = &self.node {
            if !matches!(n.get_ref().as_str(), "cpe" | "network") {
                p.at(
                    n.span(),
                    format!("{key}.node"),
                    format!("{:?} is not cpe or network", n.get_ref()),
                );
            }
        }
        let cps = *self.calls_per_second.get_ref();
        if !(cps > 0.0 && cps <= 1000.0) {
            p.at(
                self.calls_per_second.span(),
                format!("{key}.calls-per-second"),
                format!("{cps} is outside (0, 1000]"),
            );
        }
        if self.inbound_reserve >= self.channels() {
            p.at(
                at.clone(),
                format!("{key}.inbound-reserve"),
                format!(
                    "{} leaves no channel for outbound calls of {}",
                    self.inbound_reserve,
                    self.channels()
                ),
            );
        }
        match self.kind {
            SpanKind::Dahdi => {
                if self.carrier.is_some() {
                    p.at(
                        at.clone(),
                        format!("{key}.carrier"),
                        "only a softspan has a simulated carrier",
                    );
                }
                if self.first_channel.is_none() || self.dchannel.is_none() {
                    p.at(at, key.to_string(), "a dahdi span needs first-channel and dchannel (see /etc/dahdi/system.conf)");
                }
            }
            SpanKind::Softspan => {
                if self.first_channel.is_some() || self.dchannel.is_some() {
                    p.at(
                        at.clone(),
                        key.to_string(),
                        "first-channel and dchannel are for dahdi spans",
                    );
                }
                for (j, c) in self
                    .carrier
                    .iter()
                    .flat_map(|c| c.callee.iter())
                    .enumerate()
                {
                    let ckey = format!("{key}.carrier.callee[{}]", j + 1);
                    if let Err(e) = crate::request::check_number("number", &c.get_ref().number) {
                        p.at(c.span(), format!("{ckey}.number"), e.message);
                    }
                    for step in &c.get_ref().script {
                        if let Err(m) = ScriptStep::parse(step.get_ref()) {
                            p.at(step.span(), format!("{ckey}.script"), m);
                        }
                    }
                }
            }
        }
    }
}

/// One step of a simulated callee's script.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptStep {
    /// Wait until the prompt starts (energy on the B-channel), then until it ends (silence).
    WaitPrompt,
    /// Send DTMF digits as in-band tones.
    Dtmf(String),
    /// Do nothing for this many milliseconds.
    Wait(u32),
    /// Play a WAV file.
    Play(PathBuf),
    /// Hang up (cause 16).
    Hangup,
}

impl ScriptStep {
    /// Parses `"wait-prompt"`, `"dtmf 12#"`, `"wait 2s"`/`"wait 500ms"`, `"play FILE"`, `"hangup"`.
    pub fn parse(s: &str) -> Result<ScriptStep, String> {
        let (verb, arg) = s
            .trim()
            .split_once(' ')
            .map_or((s.trim(), ""), |(v, a)| (v, a.trim()));
        match (verb, arg) {
            ("wait-prompt", "") => Ok(ScriptStep::WaitPrompt),
            ("hangup", "") => Ok(ScriptStep::Hangup),
            ("dtmf", d) if !d.is_empty() && d.chars().all(|c| "0123456789*#ABCD".contains(c)) => {
                Ok(ScriptStep::Dtmf(d.into()))
            }
            ("wait", t) => parse_duration_ms(t)
                .map(ScriptStep::Wait)
                .ok_or_else(|| format!("{s:?}: wait takes a duration like 2s or 500ms")),
            ("play", f) if !f.is_empty() => Ok(ScriptStep::Play(f.into())),
            _ => Err(format!(
                "{s:?} is not a step: wait-prompt, dtmf DIGITS, wait 2s, play FILE, hangup"
            )),
        }
    }
}

fn parse_duration_ms(t: &str) -> Option<u32> {
    if let Some(ms) = t.strip_suffix("ms") {
        ms.parse().ok()
    } else {
        t.strip_suffix('s')?.parse::<u32>().ok()?.checked_mul(1000)
    }
}
