//! Resampling to and from 8 kHz with a windowed-sinc (Blackman) low-pass, for prompts and audio
//! files. Offline use (whole buffers): 32 taps per output sample.

/// Resamples `input` at `from` Hz to `to` Hz. The low-pass cut-off is 0.45 × the lower of the
/// two rates (3.6 kHz when either side is 8 kHz), so nothing aliases into the telephone band.
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = f64::from(from) / f64::from(to);
    let cutoff = 0.45 * f64::from(from.min(to)) / f64::from(from); // in cycles per input sample
    let half = (16.0 * ratio.max(1.0)).ceil() as i64; // taps on each side, in input samples
    let n_out = (input.len() as f64 / ratio).floor() as usize;
    let mut out = Vec::with_capacity(n_out);
    for n in 0..n_out {
        let t = n as f64 * ratio;
        let centre = t.floor() as i64;
        let (mut acc, mut wsum) = (0.0f64, 0.0f64);
        for k in (centre - half + 1)..=(centre + half) {
            if k < 0 || k as usize >= input.len() {
                continue;
            }
            let x = k as f64 - t;
            let sinc = if x.abs() < 1e-9 {
                1.0
            } else {
                (2.0 * std::f64::consts::PI * cutoff * x).sin()
                    / (std::f64::consts::PI * x)
                    / (2.0 * cutoff)
            };
            let w = 0.42
                + 0.5 * (std::f64::consts::PI * x / half as f64).cos()
                + 0.08 * (2.0 * std::f64::consts::PI * x / half as f64).cos();
            let h = sinc * w;
            acc += f64::from(input[k as usize]) * h;
            wsum += h;
        }
        out.push((acc / wsum.max(1e-9)).round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, secs: f64) -> Vec<i16> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| {
                (10000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn in_band_passes_and_above_the_band_is_removed() {
        let pass = resample(&tone(1000.0, 22050, 0.5), 22050, 8000);
        assert_eq!(pass.len(), 4000);
        let r = rms(&pass[100..3900]);
        assert!(
            (r / (10000.0 / 2f64.sqrt()) - 1.0).abs() < 0.05,
            "1 kHz kept: {r}"
        );
        // 6 kHz would alias to 2 kHz at 8 kHz: it must be gone (> 40 dB down).
        let stop = resample(&tone(6000.0, 22050, 0.5), 22050, 8000);
        assert!(
            rms(&stop[100..3900]) < 70.0,
            "6 kHz removed: {}",
            rms(&stop[100..3900])
        );
    }

    #[test]
    fn up_and_identity() {
        let up = resample(&tone(500.0, 8000, 0.1), 8000, 16000);
        assert_eq!(up.len(), 1600);
        let x = tone(500.0, 8000, 0.01);
        assert_eq!(resample(&x, 8000, 8000), x);
    }
}
