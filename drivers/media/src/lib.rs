//! Everything a caller hears and every key they press: G.711 µ-law and A-law, the in-band DTMF
//! detector (ITU-T Q.24), DTMF and call-progress tone generation, WAV and raw audio files,
//! resampling to and from 8 kHz, Opus, and text-to-speech through libespeak-ng.
//!
//! The signal code is pure: functions and small structs that take `&mut self, &[i16]`; time is a
//! sample count, never a clock.
#![forbid(unsafe_code)]
