//! Everything a caller hears and every key they press: G.711 µ-law and A-law, the in-band DTMF
//! detector (ITU-T Q.24), DTMF and call-progress tone generation, text-to-speech through
//! libespeak-ng with resampling to 8 kHz and an on-disk prompt cache.
//!
//! The signal code is pure: functions and small structs that take `&mut self, &[i16]`; time is a
//! sample count, never a clock.
#![deny(unsafe_code)]

pub mod dtmf;
pub mod g711;
pub mod resample;
#[cfg(feature = "spandsp")]
pub mod spandsp;
pub mod tone;
pub mod tts;
pub mod wav;

/// Samples per second of telephone audio.
pub const RATE: u32 = 8000;

/// The amplitude of a 0 dBm0 sine in 16-bit linear samples. G.711's full-scale sine is
/// +3.17 dBm0 (µ-law; +3.14 A-law), i.e. 0 dBm0 is 3.17 dB below the µ-law peak of 32124.
pub const DBM0_AMPLITUDE: f64 = 22_255.0;

/// The amplitude of a sine at `dbm0`.
pub fn amplitude(dbm0: f64) -> f64 {
    DBM0_AMPLITUDE * 10f64.powf(dbm0 / 20.0)
}
