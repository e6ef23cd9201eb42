//! G.711 µ-law and A-law (ITU-T G.711), on 16-bit linear samples.
//!
//! Encoding uses the 16-bit formulation of the G.711 segment search (as in the ITU-T G.191
//! reference tools): µ-law on the 14 most significant bits with bias 0x84, A-law on the 13 most
//! significant bits. Decoding is a 256-entry table. `0xFF`/`0x7F` are µ-law's +0 and −0;
//! µ-law and A-law both invert bits as G.711 prescribes (µ-law all bits, A-law even bits).

/// One 20 ms frame of G.711 bytes.
pub type G711Frame = [u8; 160];

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one sample to µ-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut x = i32::from(sample);
    // As G.191's ulaw_compress: a negative sample's magnitude is its one's complement.
    let sign = if x < 0 {
        x = !x;
        0x80
    } else {
        0
    };
    x = x.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment: position of the highest set bit above bit 7 (x is in 0x84..=0x7FFF).
    let exponent = (31 - (x as u32).leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (x >> (exponent + 3)) & 0x0F;
    !(sign | ((exponent as i32) << 4) as u8 | mantissa as u8)
}

/// Encodes one sample to A-law.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    let x = i32::from(sample) >> 3; // 13-bit
    let (sign, mag) = if x >= 0 {
        (0x80u8, x)
    } else {
        (0x00u8, -x - 1)
    };
    let code = if mag < 32 {
        (mag >> 1) as u8
    } else {
        let mag = mag.min(0xFFF);
        let seg = (31 - (mag as u32).leading_zeros()) - 4; // 1..=7
        ((seg << 4) as u8) | ((mag >> seg) & 0x0F) as u8
    };
    (sign | code) ^ 0x55
}

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let mag = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -mag as i16
    } else {
        mag as i16
    }
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let seg = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let mag = if seg == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (seg - 1)
    };
    if a & 0x80 != 0 {
        mag as i16
    } else {
        -mag as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

/// µ-law code → linear.
pub static ULAW_TO_LINEAR: [i16; 256] = table(false);
/// A-law code → linear.
pub static ALAW_TO_LINEAR: [i16; 256] = table(true);

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// The companding law of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// µ-law (T1 spans, North America, Japan).
    Ulaw,
    /// A-law (E1 spans, Europe and most of the world).
    Alaw,
}

impl Law {
    /// Encodes a block of samples into `out` (same length).
    pub fn encode(self, samples: &[i16], out: &mut [u8]) {
        let f = match self {
            Law::Ulaw => linear_to_ulaw,
            Law::Alaw => linear_to_alaw,
        };
        for (o, &s) in out.iter_mut().zip(samples) {
            *o = f(s);
        }
    }

    /// Decodes a block of bytes into `out` (same length).
    pub fn decode(self, codes: &[u8], out: &mut [i16]) {
        let t = match self {
            Law::Ulaw => &ULAW_TO_LINEAR,
            Law::Alaw => &ALAW_TO_LINEAR,
        };
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = t[c as usize];
        }
    }

    /// The code for silence (+0).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 µ-law encoder written the long way, from the segment table of the Recommendation
    /// (14-bit magnitude, bias 33, eight segments), independent of the fast encoder.
    fn ref_ulaw(s: i16) -> u8 {
        let v = i32::from(s);
        // ITU-T G.191 ulaw_compress: magnitude (one's complement if negative) >> 2, plus 33.
        let (sign, mag) = if v < 0 {
            (0x80u8, (!v) >> 2)
        } else {
            (0u8, v >> 2)
        };
        let mag = (mag + 33).min(0x1FFF);
        let mut seg = 0;
        while seg < 8 && mag >= (64 << seg) {
            seg += 1;
        }
        let code = if seg >= 8 {
            0x7F
        } else {
            ((seg << 4) | ((mag >> (seg + 1)) & 0x0F)) as u8
        };
        !(sign | code)
    }

    /// G.711 A-law encoder the long way: 13-bit magnitude, segment end points 31, 63, …, 4095.
    fn ref_alaw(s: i16) -> u8 {
        let v = i32::from(s) >> 3;
        let (sign, mag) = if v >= 0 { (0x80u8, v) } else { (0u8, -v - 1) };
        let ends = [31, 63, 127, 255, 511, 1023, 2047, 4095];
        let seg = ends.iter().position(|&e| mag <= e).unwrap_or(8);
        let code = if seg >= 8 {
            0x7F
        } else if seg < 2 {
            (seg << 4) as u8 | ((mag >> 1) & 0x0F) as u8
        } else {
            (seg << 4) as u8 | ((mag >> seg) & 0x0F) as u8
        };
        (sign | code) ^ 0x55
    }

    #[test]
    fn every_code_round_trips() {
        for c in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(c));
            // 0x7F is µ-law's −0: it decodes to 0, which encodes as +0 (0xFF).
            let want = if c == 0x7F { 0xFF } else { c };
            assert_eq!(back, want, "µ-law {c:#04x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
        }
    }

    #[test]
    fn whole_16_bit_range_matches_the_reference_encoders() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_ulaw(s), ref_ulaw(s), "µ-law of {s}");
            assert_eq!(linear_to_alaw(s), ref_alaw(s), "A-law of {s}");
        }
    }

    #[test]
    fn known_points_of_the_recommendation() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
    }

    #[test]
    fn decoding_is_monotonic_within_each_sign() {
        // Codes sorted by decoded value must encode back in that order.
        let mut v: Vec<i16> = ULAW_TO_LINEAR.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 255, "255 distinct µ-law levels (two zeros)");
        let mut a: Vec<i16> = ALAW_TO_LINEAR.to_vec();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), 256);
    }

    #[test]
    fn frame_helpers() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
        for law in [Law::Ulaw, Law::Alaw] {
            let mut g = [0u8; 160];
            law.encode(&pcm, &mut g);
            let mut back = [0i16; 160];
            law.decode(&g, &mut back);
            for (a, b) in pcm.iter().zip(back.iter()) {
                // G.711 quantisation error is at most half a step: < 1/16 of the magnitude + 16.
                assert!(
                    (a - b).abs() <= (a.abs() / 16).max(16) + 8,
                    "{law:?}: {a} -> {b}"
                );
            }
        }
    }
}
