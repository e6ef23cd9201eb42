//! Tone generation: DTMF digits and call-progress tones (dial, ringback, busy, congestion, SIT)
//! for the US and ETSI tone plans. Oscillators are phase-continuous across calls of
//! [`Tone::fill`], so a tone can be produced frame by frame.

use crate::{amplitude, RATE};

/// DTMF row (low group) frequencies, Hz.
pub const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// DTMF column (high group) frequencies, Hz.
pub const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad, row by row.
pub const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The (row, column) frequencies of a DTMF digit.
pub fn dtmf_freqs(digit: char) -> Option<(f64, f64)> {
    let d = digit.to_ascii_uppercase();
    KEYS.iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&k| k == d).map(|c| (ROWS[r], COLS[c])))
}

/// A tone plan's call-progress tones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// North America (ANSI T1.401).
    Us,
    /// ETSI (ES 201 970 / most of Europe).
    Etsi,
}

/// A call-progress signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Dial tone.
    Dial,
    /// Ringback (audible ringing).
    Ringback,
    /// Busy.
    Busy,
    /// Congestion (reorder / fast busy).
    Congestion,
    /// Special information tone (three rising tones: 913.8, 1370.6, 1776.7 Hz, ITU-T E.180).
    Sit,
}

/// One segment of a cadence: frequencies (empty = silence) for `ms` milliseconds.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    freqs: Vec<f64>,
    ms: u32,
}

/// A repeating tone with its cadence.
#[derive(Clone, Debug)]
pub struct Tone {
    segments: Vec<Segment>,
    amp: f64,
    seg: usize,
    pos: u32,
    phases: Vec<f64>,
    repeat: bool,
    done: bool,
}

impl Tone {
    fn new(segments: Vec<Segment>, dbm0_per_freq: f64, repeat: bool) -> Tone {
        let n = segments.iter().map(|s| s.freqs.len()).max().unwrap_or(0);
        Tone {
            segments,
            amp: amplitude(dbm0_per_freq),
            seg: 0,
            pos: 0,
            phases: vec![0.0; n],
            repeat,
            done: false,
        }
    }

    /// A DTMF digit of `on_ms` followed by `off_ms` of silence, each tone at `dbm0`.
    pub fn dtmf(digit: char, dbm0: f64, on_ms: u32, off_ms: u32) -> Option<Tone> {
        let (r, c) = dtmf_freqs(digit)?;
        Some(Tone::new(
            vec![
                Segment {
                    freqs: vec![r, c],
                    ms: on_ms,
                },
                Segment {
                    freqs: vec![],
                    ms: off_ms,
                },
            ],
            dbm0,
            false,
        ))
    }

    /// A DTMF digit with a twist: the row tone at `low_dbm0`, the column tone at `high_dbm0`, and
    /// both frequencies scaled by the given factors (for testing detectors at the limits).
    pub fn dtmf_skewed(
        digit: char,
        low_dbm0: f64,
        high_dbm0: f64,
        low_factor: f64,
        high_factor: f64,
        on_ms: u32,
    ) -> Option<Vec<i16>> {
        let (r, c) = dtmf_freqs(digit)?;
        let (r, c) = (r * low_factor, c * high_factor);
        let (al, ah) = (amplitude(low_dbm0), amplitude(high_dbm0));
        let n = (on_ms * RATE / 1000) as usize;
        Some(
            (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(RATE);
                    let v = al * (2.0 * std::f64::consts::PI * r * t).sin()
                        + ah * (2.0 * std::f64::consts::PI * c * t).sin();
                    v.round().clamp(-32768.0, 32767.0) as i16
                })
                .collect(),
        )
    }

    /// A call-progress tone of a plan, repeating its cadence.
    pub fn progress(plan: Plan, which: Progress) -> Tone {
        let s = |freqs: &[f64], ms| Segment {
            freqs: freqs.to_vec(),
            ms,
        };
        let (segs, level) = match (plan, which) {
            (Plan::Us, Progress::Dial) => (vec![s(&[350.0, 440.0], 1000)], -13.0),
            (Plan::Us, Progress::Ringback) => (vec![s(&[440.0, 480.0], 2000), s(&[], 4000)], -19.0),
            (Plan::Us, Progress::Busy) => (vec![s(&[480.0, 620.0], 500), s(&[], 500)], -24.0),
            (Plan::Us, Progress::Congestion) => (vec![s(&[480.0, 620.0], 250), s(&[], 250)], -24.0),
            (Plan::Etsi, Progress::Dial) => (vec![s(&[425.0], 1000)], -10.0),
            (Plan::Etsi, Progress::Ringback) => (vec![s(&[425.0], 1000), s(&[], 4000)], -10.0),
            (Plan::Etsi, Progress::Busy) => (vec![s(&[425.0], 500), s(&[], 500)], -10.0),
            (Plan::Etsi, Progress::Congestion) => (vec![s(&[425.0], 250), s(&[], 250)], -10.0),
            (_, Progress::Sit) => (
                vec![
                    s(&[913.8], 330),
                    s(&[1370.6], 330),
                    s(&[1776.7], 330),
                    s(&[], 1000),
                ],
                -24.0,
            ),
        };
        Tone::new(segs, level, true)
    }

    /// Whether a non-repeating tone has played to its end.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Fills `out` with the next samples (silence once a one-shot tone is done).
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            if self.done {
                *o = 0;
                continue;
            }
            let seg = &self.segments[self.seg];
            let mut v = 0.0;
            for (i, f) in seg.freqs.iter().enumerate() {
                v += self.amp * self.phases[i].sin();
                self.phases[i] = (self.phases[i]
                    + 2.0 * std::f64::consts::PI * f / f64::from(RATE))
                    % (2.0 * std::f64::consts::PI);
            }
            *o = v.round().clamp(-32768.0, 32767.0) as i16;
            self.pos += 1;
            if self.pos >= seg.ms * RATE / 1000 {
                self.pos = 0;
                self.seg += 1;
                if self.seg == self.segments.len() {
                    self.seg = 0;
                    self.done = !self.repeat;
                }
            }
        }
    }

    /// The whole of a one-shot tone as samples.
    pub fn samples(mut self) -> Vec<i16> {
        let n: u32 = self.segments.iter().map(|s| s.ms * RATE / 1000).sum();
        let mut v = vec![0; n as usize];
        self.fill(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn every_digit_has_its_pair() {
        assert_eq!(dtmf_freqs('5'), Some((770.0, 1336.0)));
        assert_eq!(dtmf_freqs('d'), Some((941.0, 1633.0)));
        assert_eq!(dtmf_freqs('x'), None);
    }

    #[test]
    fn levels_and_durations() {
        let s = Tone::dtmf('1', -10.0, 50, 50).unwrap().samples();
        assert_eq!(s.len(), 800);
        // Two tones at -10 dBm0 each: RMS = amp * sqrt(2) / sqrt(2) = amp.
        let want = amplitude(-10.0);
        let got = rms(&s[..400]);
        assert!((got / want - 1.0).abs() < 0.02, "rms {got} want {want}");
        assert!(s[400..].iter().all(|&x| x == 0));
    }

    #[test]
    fn busy_cadence_repeats() {
        let mut t = Tone::progress(Plan::Us, Progress::Busy);
        let mut v = vec![0i16; 16000];
        t.fill(&mut v);
        assert!(rms(&v[0..4000]) > 100.0);
        assert_eq!(rms(&v[4000..8000]), 0.0);
        assert!(rms(&v[8000..12000]) > 100.0, "the cadence repeats");
        assert!(!t.is_done());
    }
}
