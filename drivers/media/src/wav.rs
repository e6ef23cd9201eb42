//! WAV files: 16-bit PCM write, and read of 8/16-bit PCM mono or stereo at any rate (converted
//! to mono 16-bit; resample with [`crate::resample`]).

use std::io::{self, Write};
use std::path::Path;

/// Writes mono 16-bit PCM at `rate` Hz.
pub fn write_mono16(path: &Path, rate: u32, samples: &[i16]) -> io::Result<()> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let tmp = path.with_extension("wav.tmp");
    std::fs::File::create(&tmp)?.write_all(&out)?;
    std::fs::rename(tmp, path)
}

/// Reads a PCM WAV (8-bit unsigned or 16-bit signed, mono or stereo): (rate, mono samples).
pub fn read(path: &Path) -> io::Result<(u32, Vec<i16>)> {
    let b = std::fs::read(path)?;
    let bad = |m: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {m}", path.display()),
        )
    };
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let (mut pos, mut fmt) = (12usize, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let body = b
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| bad("truncated chunk"))?;
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(bad("short fmt chunk"));
            }
            let le16 = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let (format, channels, bits) = (le16(0), le16(2), le16(14));
            let rate = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes"));
            if format != 1 || !(1..=2).contains(&channels) || !(bits == 8 || bits == 16) {
                return Err(bad(&format!(
                    "unsupported: format {format}, {channels} channels, {bits} bits"
                )));
            }
            fmt = Some((rate, channels as usize, bits));
        } else if id == b"data" {
            let (rate, ch, bits) = fmt.ok_or_else(|| bad("data before fmt"))?;
            let frame: Vec<i16> = if bits == 16 {
                body.chunks_exact(2)
                    .map(|x| i16::from_le_bytes([x[0], x[1]]))
                    .collect()
            } else {
                body.iter().map(|&x| (i16::from(x) - 128) << 8).collect()
            };
            let mono = frame
                .chunks_exact(ch)
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / ch as i32) as i16)
                .collect();
            return Ok((rate, mono));
        }
        pos += 8 + len + (len & 1);
    }
    Err(bad("no data chunk"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let p = std::env::temp_dir().join(format!("outcall-wav-{}.wav", std::process::id()));
        let s: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        super::write_mono16(&p, 8000, &s).unwrap();
        assert_eq!(super::read(&p).unwrap(), (8000, s));
        std::fs::write(&p, b"RIFF0000WAVEdata\xff\0\0\0abc").unwrap();
        assert!(super::read(&p)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        std::fs::remove_file(&p).unwrap();
    }
}
