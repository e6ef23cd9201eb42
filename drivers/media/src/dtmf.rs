//! In-band DTMF detection (ITU-T Q.24) on 8 kHz linear audio.
//!
//! Goertzel filters run sample by sample over blocks of [`BLOCK`] samples (12.75 ms) at the
//! eight DTMF frequencies and at their second harmonics. At each block's end a digit is a
//! candidate when:
//! - the strongest row and column tones are each above the sensitivity floor (about
//!   −33 dBm0 per tone at the nominal frequencies);
//! - twist, the column (high group) level minus the row (low group) level, is within −8 dB
//!   (reverse) … +4 dB (normal);
//! - each is at least 8 dB above every other tone of its group (relative peak);
//! - the two tones carry most of the block's energy (speech and noise spread theirs);
//! - the column tone has no strong second harmonic (vowels do; DTMF does not).
//!
//! A digit starts when two consecutive blocks give the same candidate and ends after two blocks
//! without it: tones and pauses of 40 ms are always seen, 10 ms bursts never.
//! One detector per channel; [`DtmfDetector::process`] allocates nothing.

use crate::tone::{COLS, ROWS};

/// Samples per analysis block (12.75 ms at 8 kHz).
pub const BLOCK: usize = 102;

/// A digit seen on the line, with sample positions counted from the detector's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A digit began at this sample.
    Start {
        /// The digit.
        digit: char,
        /// First sample of the first block that carried it.
        at: u64,
    },
    /// The digit ended at this sample.
    End {
        /// The digit.
        digit: char,
        /// First sample of the first block without it.
        at: u64,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Goertzel {
    coeff: f32,
    s1: f32,
    s2: f32,
}

impl Goertzel {
    fn new(freq: f64) -> Goertzel {
        Goertzel {
            coeff: (2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos()) as f32,
            s1: 0.0,
            s2: 0.0,
        }
    }

    #[inline]
    fn push(&mut self, x: f32) {
        let s = x + self.coeff * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s;
    }

    fn energy_and_reset(&mut self) -> f32 {
        let e = self.s1 * self.s1 + self.s2 * self.s2 - self.coeff * self.s1 * self.s2;
        self.s1 = 0.0;
        self.s2 = 0.0;
        e
    }
}

/// The Goertzel energy of one on-frequency tone of amplitude 1 over a block: (N/2)².
const UNIT: f32 = (BLOCK as f32 / 2.0) * (BLOCK as f32 / 2.0);
/// Per-tone floor: amplitude 500 (about −33 dBm0).
const FLOOR: f32 = 500.0 * 500.0 * UNIT;
/// Twist limits, high minus low, as power ratios: −9 dB and +5 dB, midway between the levels that
/// must be accepted (−8, +4 dB) and those that must be refused (−10, +6 dB), so µ-law
/// quantisation and Goertzel leakage do not move a digit across.
const TWIST_REVERSE: f32 = 0.125_892_54;
const TWIST_NORMAL: f32 = 3.162_277_7;
/// Consecutive agreeing blocks that start a digit. Only well-filled blocks agree: a block that
/// is part tone and part silence is a shorter window with a wider main lobe, and fails the
/// relative-peak test against the neighbouring row 73 Hz away. A 40 ms tone (320 samples)
/// always contains two full blocks; a 10 ms burst never fills one. Between the two, 20 ms and
/// 30 ms bursts start a digit only when their alignment gives two well-filled blocks: the
/// benchmark measures how often.
const START_BLOCKS: u8 = 2;
/// Relative peak within a group: 8 dB.
const RELATIVE_PEAK: f32 = 6.309_573;
/// Share of the block's energy the two tones must carry.
const TONE_SHARE: f32 = 0.55;
/// Largest second-harmonic level relative to its fundamental: −12 dB.
const HARMONIC: f32 = 0.063_095_73;

/// One channel's DTMF detector.
#[derive(Clone, Debug)]
pub struct DtmfDetector {
    /// Rows, columns, then the columns' second harmonics (the rows' are not used).
    filters: [Goertzel; 12],
    energy: f32,
    pos: usize,
    block_start: u64,
    last: Option<char>,
    last_start: u64,
    run: u8,
    current: Option<char>,
    misses: u8,
    miss_start: u64,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector at sample 0.
    pub fn new() -> DtmfDetector {
        let mut filters = [Goertzel::default(); 12];
        for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
            filters[i] = Goertzel::new(*f);
        }
        for (i, f) in COLS.iter().enumerate() {
            filters[8 + i] = Goertzel::new(2.0 * f);
        }
        DtmfDetector {
            filters,
            energy: 0.0,
            pos: 0,
            block_start: 0,
            last: None,
            last_start: 0,
            run: 0,
            current: None,
            misses: 0,
            miss_start: 0,
        }
    }

    /// The digit being pressed, if any.
    pub fn current(&self) -> Option<char> {
        self.current
    }

    /// Feeds samples; calls `on_event` for every digit start and end.
    pub fn process(&mut self, samples: &[i16], mut on_event: impl FnMut(DtmfEvent)) {
        for &s in samples {
            let x = f32::from(s);
            self.energy += x * x;
            for f in &mut self.filters {
                f.push(x);
            }
            self.pos += 1;
            if self.pos == BLOCK {
                let hit = self.decide();
                self.step(hit, &mut on_event);
                self.pos = 0;
                self.energy = 0.0;
                self.block_start += BLOCK as u64;
            }
        }
    }

    fn decide(&mut self) -> Option<char> {
        let mut e = [0f32; 12];
        for (i, f) in self.filters.iter_mut().enumerate() {
            e[i] = f.energy_and_reset();
        }
        let best = |es: &[f32]| -> usize {
            (0..4)
                .max_by(|&a, &b| es[a].total_cmp(&es[b]))
                .expect("four entries")
        };
        let (r, c) = (best(&e[0..4]), 4 + best(&e[4..8]));
        let (row, col) = (e[r], e[c]);
        if row < FLOOR || col < FLOOR {
            return None;
        }
        let twist = col / row;
        if !(TWIST_REVERSE..=TWIST_NORMAL).contains(&twist) {
            return None;
        }
        for i in 0..4 {
            if i != r && e[i] * RELATIVE_PEAK > row {
                return None;
            }
            if 4 + i != c && e[4 + i] * RELATIVE_PEAK > col {
                return None;
            }
        }
        // Goertzel energy of a tone ≈ (N/2)·(its energy over the block); compare like with like.
        let tones = (row + col) * 2.0 / BLOCK as f32;
        if tones < TONE_SHARE * self.energy {
            return None;
        }
        // Only the column tone's harmonic is checked: 2 × 697…941 Hz lies within a block's main
        // lobe of the column tones themselves, while 2 × 1209…1633 Hz is clear of every DTMF tone.
        if e[4 + c] > HARMONIC * col {
            return None;
        }
        Some(crate::tone::KEYS[r][c - 4])
    }

    fn step(&mut self, hit: Option<char>, on_event: &mut impl FnMut(DtmfEvent)) {
        let start = self.block_start;
        if hit != self.last {
            self.last_start = start;
            self.run = 0;
        }
        self.last = hit;
        self.run = self.run.saturating_add(1);
        match hit {
            Some(d) if Some(d) == self.current => self.misses = 0,
            Some(d) if self.run >= START_BLOCKS => {
                if let Some(old) = self.current.take() {
                    on_event(DtmfEvent::End {
                        digit: old,
                        at: self.last_start,
                    });
                }
                self.current = Some(d);
                self.misses = 0;
                on_event(DtmfEvent::Start {
                    digit: d,
                    at: self.last_start,
                });
            }
            _ => {
                if let Some(cur) = self.current {
                    if self.misses == 0 {
                        self.miss_start = start;
                    }
                    self.misses += 1;
                    if self.misses >= 2 {
                        on_event(DtmfEvent::End {
                            digit: cur,
                            at: self.miss_start,
                        });
                        self.current = None;
                        self.misses = 0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::{linear_to_ulaw, ulaw_to_linear};
    use crate::tone::Tone;

    /// Through µ-law and back, as on a T1 B-channel.
    fn line(x: &[i16]) -> Vec<i16> {
        x.iter()
            .map(|&s| ulaw_to_linear(linear_to_ulaw(s)))
            .collect()
    }

    fn detect(x: &[i16]) -> Vec<char> {
        let mut d = DtmfDetector::new();
        let mut out = Vec::new();
        // Feed in 20 ms frames, as channels deliver them.
        for chunk in x.chunks(160) {
            d.process(chunk, |e| {
                if let DtmfEvent::Start { digit, .. } = e {
                    out.push(digit)
                }
            });
        }
        d.process(&[0; 400], |e| {
            if let DtmfEvent::Start { digit, .. } = e {
                out.push(digit)
            }
        });
        out
    }

    fn digits(s: &str, dbm0: f64, on: u32, off: u32) -> Vec<i16> {
        let mut v = vec![0i16; 400];
        for d in s.chars() {
            v.extend(Tone::dtmf(d, dbm0, on, off).unwrap().samples());
        }
        line(&v)
    }

    #[test]
    fn all_sixteen_digits() {
        let keys = "123A456B789C*0#D";
        assert_eq!(
            detect(&digits(keys, -10.0, 50, 50))
                .iter()
                .collect::<String>(),
            keys
        );
    }

    #[test]
    fn levels_down_to_minus_30_dbm0() {
        for dbm0 in [0.0, -10.0, -20.0, -26.0, -30.0] {
            assert_eq!(detect(&digits("5", dbm0, 50, 50)), vec!['5'], "{dbm0} dBm0");
        }
        assert!(
            detect(&digits("5", -45.0, 50, 50)).is_empty(),
            "far below the floor"
        );
    }

    #[test]
    fn twist_limits() {
        // twist = high - low: -8..+4 dB accepted, -10 and +6 rejected.
        for (twist, want) in [
            (-8.0, true),
            (-6.0, true),
            (0.0, true),
            (4.0, true),
            (-10.0, false),
            (6.0, false),
        ] {
            let x = line(&Tone::dtmf_skewed('8', -10.0, -10.0 + twist, 1.0, 1.0, 60).unwrap());
            assert_eq!(!detect(&x).is_empty(), want, "twist {twist} dB");
        }
    }

    #[test]
    fn frequency_offsets_of_1_5_percent_are_accepted() {
        for (lf, hf) in [
            (1.015, 1.015),
            (0.985, 0.985),
            (1.015, 0.985),
            (0.985, 1.015),
        ] {
            for d in ['1', '5', '9', 'D'] {
                let x = line(&Tone::dtmf_skewed(d, -10.0, -10.0, lf, hf, 60).unwrap());
                assert_eq!(detect(&x), vec![d], "{d} at {lf}/{hf}");
            }
        }
    }

    #[test]
    fn durations_40_ms_tone_and_pause_work_10_ms_bursts_do_not() {
        for lead in [0usize, 17, 51, 88] {
            // Every alignment of the digits against the blocks.
            let mut x = vec![0i16; lead];
            x.extend(digits("1212", -10.0, 40, 40));
            assert_eq!(detect(&x).iter().collect::<String>(), "1212", "lead {lead}");
            let mut y = vec![0i16; lead];
            y.extend(digits("12121212", -10.0, 10, 10));
            assert!(detect(&y).is_empty(), "10 ms bursts, lead {lead}");
        }
    }

    #[test]
    fn start_and_end_positions() {
        let x = digits("7", -10.0, 100, 100); // 400 samples of silence, then 800 of tone
        let mut d = DtmfDetector::new();
        let mut ev = Vec::new();
        d.process(&x, |e| ev.push(e));
        d.process(&[0; 400], |e| ev.push(e));
        let (DtmfEvent::Start { at: s, .. }, DtmfEvent::End { at: e, .. }) = (ev[0], ev[1]) else {
            panic!("{ev:?}")
        };
        assert!((400..400 + BLOCK as u64).contains(&s), "start {s}");
        assert!((1200..1200 + 2 * BLOCK as u64).contains(&e), "end {e}");
    }

    #[test]
    fn silence_noise_and_a_single_tone_give_nothing() {
        let mut seed = 12345u32;
        let noise: Vec<i16> = (0..80_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((seed >> 16) as i16) / 4
            })
            .collect();
        assert!(detect(&line(&noise)).is_empty());
        let single: Vec<i16> = (0..8000)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 697.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(detect(&line(&single)).is_empty());
    }

    #[test]
    fn digits_survive_white_noise_at_15_db_snr() {
        let clean = digits("159#", -10.0, 60, 60);
        let sig_rms = crate::amplitude(-10.0); // two tones at amp each: RMS = amp
        let noise_rms = sig_rms / 10f64.powf(15.0 / 20.0);
        let mut seed = 7u64;
        let noisy: Vec<i16> = clean
            .iter()
            .map(|&s| {
                // Sum of 12 uniforms: approximately Gaussian with unit variance.
                let g: f64 = (0..12)
                    .map(|_| {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (seed >> 11) as f64 / (1u64 << 53) as f64
                    })
                    .sum::<f64>()
                    - 6.0;
                (f64::from(s) + g * noise_rms).clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        assert_eq!(detect(&noisy).iter().collect::<String>(), "159#");
    }
}
