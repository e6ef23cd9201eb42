//! Text-to-speech through libespeak-ng (`outcall-espeak-sys`, no subprocess).
//!
//! libespeak-ng keeps global state and is not thread-safe, so one worker thread owns it and
//! serves a queue. Speech is synthesised at espeak's rate (22,050 Hz), resampled to 8 kHz, and
//! cached twice: in memory, and on disk as raw 16-bit little-endian 8 kHz files named by a hash
//! of (voice, rate, SSML, text), so each prompt is spoken once per host.
#![allow(unsafe_code)]

use crate::resample::resample;
use outcall_espeak_sys as sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// A TTS failure, naming what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TtsError {
    /// espeak_Initialize failed (no voice data: install the Debian package espeak-ng-data).
    #[error("libespeak-ng did not initialise (code {0}): is espeak-ng-data installed?")]
    Init(i32),
    /// The voice is unknown.
    #[error("espeak-ng has no voice {0:?} (see `espeak-ng --voices`)")]
    Voice(String),
    /// Synthesis failed.
    #[error("espeak-ng could not speak {text:?}: error {code}")]
    Synth {
        /// The text.
        text: String,
        /// espeak's error code.
        code: i32,
    },
    /// The text contains a NUL byte.
    #[error("text contains a NUL byte: {0:?}")]
    Nul(String),
    /// The cache directory failed.
    #[error("TTS cache {path}: {source}")]
    Cache {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The worker thread is gone.
    #[error("the TTS worker stopped")]
    Gone,
}

/// What to say and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Speech {
    /// The text (or SSML document).
    pub text: String,
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
    /// Words per minute (80–450).
    pub rate: u32,
    /// `text` is SSML.
    pub ssml: bool,
}

impl Speech {
    /// The cache key: FNV-1a 64 over the fields (stable across builds, unlike `DefaultHasher`).
    pub fn key(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let rate = self.rate.to_le_bytes();
        let parts: [&[u8]; 5] = [
            self.voice.as_bytes(),
            b"\0",
            &rate,
            &[u8::from(self.ssml)],
            self.text.as_bytes(),
        ];
        for b in parts.iter().flat_map(|p| p.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

/// Synthesised audio: 8 kHz 16-bit linear samples.
pub type Samples = Arc<Vec<i16>>;

struct Job {
    speech: Speech,
    reply: mpsc::Sender<Result<Samples, TtsError>>,
}

/// The TTS service: a handle to the worker thread and the caches. Cheap to clone.
#[derive(Clone)]
pub struct Tts {
    jobs: mpsc::Sender<Job>,
    memory: Arc<Mutex<HashMap<u64, Samples>>>,
    dir: PathBuf,
}

thread_local! {
    /// Samples espeak hands to the callback during one synthesis (worker thread only).
    static SPOKEN: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn on_samples(wav: *mut i16, n: i32, _events: *mut sys::espeak_EVENT) -> i32 {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak passes `n` valid samples at `wav` for the duration of this call.
        let s = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        SPOKEN.with(|b| b.borrow_mut().extend_from_slice(s));
    }
    0 // continue
}

impl Tts {
    /// Starts the worker and opens (creating it if needed) the cache directory.
    pub fn start(cache_dir: impl Into<PathBuf>) -> Result<Tts, TtsError> {
        let dir = cache_dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| TtsError::Cache {
            path: dir.clone(),
            source,
        })?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let worker_dir = dir.clone();
        std::thread::Builder::new()
            .name("tts".into())
            .spawn(move || worker(rx, ready_tx, worker_dir))
            .map_err(|source| TtsError::Cache {
                path: dir.clone(),
                source,
            })?;
        let rate = ready_rx.recv().map_err(|_| TtsError::Gone)??;
        tracing::debug!(rate, "libespeak-ng {} ready", sys::version());
        Ok(Tts {
            jobs,
            memory: Arc::default(),
            dir,
        })
    }

    fn path(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:016x}.sln"))
    }

    /// The cached audio of `speech`, if it was spoken before (memory or disk).
    pub fn cached(&self, speech: &Speech) -> Option<Samples> {
        let key = speech.key();
        if let Some(s) = self.memory.lock().expect("tts cache lock").get(&key) {
            return Some(s.clone());
        }
        let bytes = std::fs::read(self.path(key)).ok()?;
        let s: Samples = Arc::new(
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        );
        self.memory
            .lock()
            .expect("tts cache lock")
            .insert(key, s.clone());
        Some(s)
    }

    /// Queues `speech` without waiting; the result arrives on `reply`.
    pub fn submit(&self, speech: Speech, reply: mpsc::Sender<Result<Samples, TtsError>>) {
        if let Some(s) = self.cached(&speech) {
            let _ = reply.send(Ok(s));
            return;
        }
        if self
            .jobs
            .send(Job {
                speech,
                reply: reply.clone(),
            })
            .is_err()
        {
            let _ = reply.send(Err(TtsError::Gone));
        }
    }

    /// Speaks `speech`, waiting for the worker (or the cache).
    pub fn synth(&self, speech: &Speech) -> Result<Samples, TtsError> {
        let (tx, rx) = mpsc::channel();
        self.submit(speech.clone(), tx);
        let s = rx.recv().map_err(|_| TtsError::Gone)??;
        self.memory
            .lock()
            .expect("tts cache lock")
            .insert(speech.key(), s.clone());
        Ok(s)
    }
}

fn worker(jobs: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<i32, TtsError>>, dir: PathBuf) {
    // SAFETY: called once, on the only thread that ever calls into libespeak-ng; NULL path
    // means the default data directory. DONT_EXIT keeps espeak from calling exit() on error.
    let rate = unsafe {
        sys::espeak_Initialize(
            sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            std::ptr::null(),
            sys::espeakINITIALIZE_DONT_EXIT as i32,
        )
    };
    if rate <= 0 {
        let _ = ready.send(Err(TtsError::Init(rate)));
        return;
    }
    // SAFETY: on_samples has the callback's signature and only touches a thread-local buffer.
    unsafe { sys::espeak_SetSynthCallback(Some(on_samples)) };
    let _ = ready.send(Ok(rate));
    for job in jobs {
        let r = speak(&job.speech, rate as u32, &dir);
        let _ = job.reply.send(r);
    }
}

fn speak(sp: &Speech, rate: u32, dir: &Path) -> Result<Samples, TtsError> {
    let voice = CString::new(sp.voice.as_str()).map_err(|_| TtsError::Nul(sp.voice.clone()))?;
    // SAFETY: worker thread only; voice is a valid NUL-terminated string for the call.
    if unsafe { sys::espeak_SetVoiceByName(voice.as_ptr()) } != sys::espeak_ERROR_EE_OK {
        return Err(TtsError::Voice(sp.voice.clone()));
    }
    // SAFETY: worker thread only; plain integer parameters.
    unsafe {
        sys::espeak_SetParameter(
            sys::espeak_PARAMETER_espeakRATE,
            sp.rate.clamp(80, 450) as i32,
            0,
        )
    };
    let text = CString::new(sp.text.as_str()).map_err(|_| TtsError::Nul(sp.text.clone()))?;
    let mut flags = sys::espeakCHARS_UTF8;
    if sp.ssml {
        flags |= sys::espeakSSML;
    }
    SPOKEN.with(|b| b.borrow_mut().clear());
    // SAFETY: worker thread only; `text` outlives the synchronous call, size includes the NUL;
    // no unique id or user data is requested.
    let code = unsafe {
        sys::espeak_Synth(
            text.as_ptr().cast(),
            text.as_bytes_with_nul().len(),
            0,
            sys::espeak_POSITION_TYPE_POS_CHARACTER,
            0,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if code != sys::espeak_ERROR_EE_OK {
        return Err(TtsError::Synth {
            text: sp.text.clone(),
            code,
        });
    }
    let raw = SPOKEN.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let pcm = resample(&raw, rate, crate::RATE);
    let path = dir.join(format!("{:016x}.sln", sp.key()));
    let tmp = path.with_extension("tmp");
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| TtsError::Cache {
            path: path.clone(),
            source,
        })?;
    Ok(Arc::new(pcm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(text: &str) -> Speech {
        Speech {
            text: text.into(),
            voice: "en-us".into(),
            rate: 170,
            ssml: false,
        }
    }

    #[test]
    fn speaks_caches_and_reports_bad_voices() {
        let dir = std::env::temp_dir().join(format!("outcall-tts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tts = Tts::start(&dir).unwrap();
        let sp = speech("You were outbid. Press one to raise your bid by ten dollars.");
        let a = tts.synth(&sp).unwrap();
        let secs = a.len() as f64 / 8000.0;
        assert!(
            (1.5..8.0).contains(&secs),
            "{secs} s for a 12-word sentence"
        );
        let rms = (a.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!(rms > 300.0, "speech, not silence: rms {rms}");
        let file = dir.join(format!("{:016x}.sln", sp.key()));
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            2 * a.len() as u64,
            "cached on disk"
        );
        // A new service on the same directory reads the disk cache without speaking.
        let again = Tts {
            jobs: mpsc::channel().0,
            memory: Arc::default(),
            dir: dir.clone(),
        };
        assert_eq!(again.cached(&sp).unwrap(), a);
        // SSML is spoken, not read out.
        let ssml = Speech {
            ssml: true,
            ..speech("<speak>Hello <break time=\"500ms\"/> there</speak>")
        };
        let b = tts.synth(&ssml).unwrap();
        assert!(b.len() > 4000, "{} samples", b.len());
        let bad = Speech {
            voice: "no-such-voice".into(),
            ..speech("x")
        };
        assert!(matches!(tts.synth(&bad), Err(TtsError::Voice(v)) if v == "no-such-voice"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_differ_by_every_field() {
        let a = speech("hi");
        assert_ne!(
            a.key(),
            Speech {
                rate: 171,
                ..a.clone()
            }
            .key()
        );
        assert_ne!(
            a.key(),
            Speech {
                voice: "en-gb".into(),
                ..a.clone()
            }
            .key()
        );
        assert_ne!(
            a.key(),
            Speech {
                ssml: true,
                ..a.clone()
            }
            .key()
        );
        assert_ne!(a.key(), speech("hi!").key());
        assert_eq!(a.key(), speech("hi").key());
    }
}
