//! spandsp's DTMF receiver (`dtmf_rx`), linked from the system libspandsp, for side-by-side
//! measurements in `dtmf-bench`. Only with the `spandsp` feature.
#![allow(unsafe_code)]

use std::os::raw::{c_char, c_int, c_void};

#[repr(C)]
struct DtmfRxState {
    _opaque: [u8; 0],
}

#[link(name = "spandsp")]
extern "C" {
    fn dtmf_rx_init(s: *mut DtmfRxState, cb: *const c_void, user: *mut c_void) -> *mut DtmfRxState;
    fn dtmf_rx(s: *mut DtmfRxState, amp: *const i16, samples: c_int) -> c_int;
    fn dtmf_rx_get(s: *mut DtmfRxState, digits: *mut c_char, max: c_int) -> usize;
    fn dtmf_rx_free(s: *mut DtmfRxState) -> c_int;
}

/// One spandsp DTMF receiver with its default parameters.
pub struct SpandspDtmf {
    s: *mut DtmfRxState,
}

impl Default for SpandspDtmf {
    fn default() -> Self {
        Self::new()
    }
}

impl SpandspDtmf {
    /// A receiver (spandsp allocates its state).
    pub fn new() -> SpandspDtmf {
        // SAFETY: NULL state asks spandsp to allocate; no callback, digits are read with get.
        let s =
            unsafe { dtmf_rx_init(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut()) };
        assert!(!s.is_null(), "dtmf_rx_init failed");
        SpandspDtmf { s }
    }

    /// Feeds samples; returns the digits recognised so far (and clears them).
    pub fn process(&mut self, samples: &[i16]) -> String {
        // SAFETY: s is live; the slice is valid for its length.
        unsafe { dtmf_rx(self.s, samples.as_ptr(), samples.len() as c_int) };
        let mut buf = [0 as c_char; 128];
        // SAFETY: buf has room for 127 digits and a NUL.
        let n = unsafe { dtmf_rx_get(self.s, buf.as_mut_ptr(), 127) };
        buf[..n].iter().map(|&c| c as u8 as char).collect()
    }
}

impl Drop for SpandspDtmf {
    fn drop(&mut self) {
        // SAFETY: s was allocated by dtmf_rx_init and is freed once.
        unsafe { dtmf_rx_free(self.s) };
    }
}
