//! DAHDI hardware spans: opens `/dev/dahdi/channel`, binds it with `DAHDI_SPECIFY`, sets the
//! block size to 160 samples (20 ms) and reads the companding law with `DAHDI_GET_PARAMS`; the
//! D-channel gets an HDLC buffer policy for libpri (`outcall-pri`), and span alarms come from
//! `DAHDI_SPANSTAT` on `/dev/dahdi/ctl`.
//!
//! Every ioctl goes through the request numbers of `outcall-dahdi-sys`, proven against the C
//! header by that crate's layout test. There is no DAHDI hardware on the development and CI
//! machines: the tests cover every argument this crate builds and every error it reports, and
//! run the real ioctl path against a non-DAHDI descriptor.
#![allow(unsafe_code)]

use outcall_dahdi_sys::{self as sys, ioctl};
use outcall_media::g711::Law;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Samples per read/write on a B-channel: 20 ms at 8 kHz.
pub const BLOCKSIZE: libc::c_int = 160;

/// A DAHDI error, naming the device and the likely cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device node is missing.
    #[error("{path}: no such device: is the dahdi kernel module loaded (modprobe dahdi plus the card's driver) and the span configured (dahdi_cfg)?")]
    NoDevice {
        /// The node.
        path: PathBuf,
    },
    /// Permission denied on the node.
    #[error("{path}: permission denied: run outcalld as a member of group outcall and install udev/60-outcall-dahdi.rules")]
    Permission {
        /// The node.
        path: PathBuf,
    },
    /// Another open failure.
    #[error("{path}: {source}")]
    Open {
        /// The node.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An ioctl failed.
    #[error("{request} on {what}: {errno}{hint}")]
    Ioctl {
        /// The request's name.
        request: &'static str,
        /// Channel or span.
        what: String,
        /// The error.
        errno: nix::errno::Errno,
        /// What it probably means.
        hint: &'static str,
    },
    /// The channel uses a law outcall does not speak.
    #[error("DAHDI channel {0}: law {1} is neither µ-law nor A-law")]
    Law(u32, i32),
}

fn ioctl_err(request: &'static str, what: String, errno: nix::errno::Errno) -> Error {
    let hint = match errno {
        nix::errno::Errno::ENOTTY => " (not a DAHDI device)",
        nix::errno::Errno::EINVAL => " (no such channel or span in the DAHDI configuration)",
        nix::errno::Errno::EBUSY => {
            " (the channel is open elsewhere: another outcalld or Asterisk?)"
        }
        _ => "",
    };
    Error::Ioctl {
        request,
        what,
        errno,
        hint,
    }
}

fn open(path: &Path) -> Result<OwnedFd, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NoDevice { path: path.into() },
            std::io::ErrorKind::PermissionDenied => Error::Permission { path: path.into() },
            _ => Error::Open {
                path: path.into(),
                source,
            },
        })
}

/// An open, bound DAHDI channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// The DAHDI channel number.
    pub number: u32,
    /// Its law.
    pub law: Law,
}

impl Channel {
    /// The fd (read/write 160-byte frames; poll for readiness).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Gives the fd away (the D-channel fd goes to libpri's callbacks).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// The `DAHDI_SPECIFY` argument for a channel number.
pub fn specify_arg(number: u32) -> libc::c_int {
    number as libc::c_int
}

/// The buffer policy of a D-channel for libpri: immediate, 16 buffers of 1024 bytes (HDLC frames
/// are at most 260 bytes; Asterisk's chan_dahdi uses the same shape).
pub fn dchannel_bufinfo() -> sys::dahdi_bufferinfo {
    sys::dahdi_bufferinfo {
        txbufpolicy: sys::DAHDI_POLICY_IMMEDIATE as i32,
        rxbufpolicy: sys::DAHDI_POLICY_IMMEDIATE as i32,
        numbufs: 16,
        bufsize: 1024,
        ..Default::default()
    }
}

/// The law of `DAHDI_GET_PARAMS.curlaw`.
pub fn law_of(number: u32, curlaw: i32) -> Result<Law, Error> {
    match curlaw as u32 {
        sys::DAHDI_LAW_MULAW => Ok(Law::Ulaw),
        sys::DAHDI_LAW_ALAW => Ok(Law::Alaw),
        _ => Err(Error::Law(number, curlaw)),
    }
}

/// Opens `dev` (normally `/dev/dahdi/channel`) and binds it to DAHDI channel `number`. A
/// B-channel gets a 160-sample block size; a D-channel (`dchannel`) the HDLC buffer policy.
pub fn open_channel(dev: &Path, number: u32, dchannel: bool) -> Result<Channel, Error> {
    let fd = open(dev)?;
    let raw = fd.as_raw_fd();
    let what = format!("DAHDI channel {number} ({})", dev.display());
    let arg = specify_arg(number);
    // SAFETY: raw is an open fd; the argument is read by the driver through the pointer.
    unsafe { ioctl::specify(raw, &arg) }
        .map_err(|e| ioctl_err("DAHDI_SPECIFY", what.clone(), e))?;
    if dchannel {
        let bi = dchannel_bufinfo();
        // SAFETY: raw is a bound DAHDI fd; bi is a valid dahdi_bufferinfo.
        unsafe { ioctl::set_bufinfo(raw, &bi) }
            .map_err(|e| ioctl_err("DAHDI_SET_BUFINFO", what.clone(), e))?;
    } else {
        // SAFETY: as above, reading one int.
        unsafe { ioctl::set_blocksize(raw, &BLOCKSIZE) }
            .map_err(|e| ioctl_err("DAHDI_SET_BLOCKSIZE", what.clone(), e))?;
    }
    let mut p = sys::dahdi_params::default();
    // SAFETY: raw is bound; p is a valid dahdi_params (channo 0 = this fd's channel).
    unsafe { ioctl::get_params(raw, &mut p) }
        .map_err(|e| ioctl_err("DAHDI_GET_PARAMS", what.clone(), e))?;
    let law = if dchannel {
        Law::Ulaw
    } else {
        law_of(number, p.curlaw)?
    };
    Ok(Channel { fd, number, law })
}

/// A span's alarms, by name.
pub fn alarm_names(bits: u32) -> Vec<&'static str> {
    [
        (sys::DAHDI_ALARM_RECOVER, "recovering"),
        (sys::DAHDI_ALARM_LOOPBACK, "loopback"),
        (sys::DAHDI_ALARM_YELLOW, "yellow (remote alarm)"),
        (sys::DAHDI_ALARM_RED, "red (no signal)"),
        (sys::DAHDI_ALARM_BLUE, "blue (AIS)"),
        (sys::DAHDI_ALARM_NOTOPEN, "not open"),
        (sys::DAHDI_ALARM_LOS, "loss of signal"),
        (sys::DAHDI_ALARM_LFA, "loss of frame alignment"),
        (sys::DAHDI_ALARM_LMFA, "loss of multiframe alignment"),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| n)
    .collect()
}

/// Reads span `spanno`'s status through `ctl` (normally `/dev/dahdi/ctl`): its alarm bits.
pub fn span_alarms(ctl: &Path, spanno: i32) -> Result<u32, Error> {
    let fd = open(ctl)?;
    let mut si = sys::dahdi_spaninfo {
        spanno,
        ..Default::default()
    };
    // SAFETY: fd is open; si is a valid dahdi_spaninfo with spanno set.
    unsafe { ioctl::spanstat(fd.as_raw_fd(), &mut si) }
        .map_err(|e| ioctl_err("DAHDI_SPANSTAT", format!("span {spanno}"), e))?;
    Ok(si.alarms as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_names_the_path_and_the_likely_cause() {
        let p = Path::new("/nonexistent/dahdi/channel");
        let e = open_channel(p, 1, false).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("/nonexistent/dahdi/channel") && m.contains("modprobe dahdi"),
            "{m}"
        );
    }

    #[test]
    fn the_real_ioctl_path_on_a_non_dahdi_device_says_so() {
        // /dev/null opens, and DAHDI_SPECIFY reaches the kernel, which answers ENOTTY.
        let e = open_channel(Path::new("/dev/null"), 1, false).unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with("DAHDI_SPECIFY on DAHDI channel 1 (/dev/null)"),
            "{m}"
        );
        assert!(m.contains("not a DAHDI device"), "{m}");
        let e = span_alarms(Path::new("/dev/null"), 1).unwrap_err();
        assert!(e.to_string().contains("DAHDI_SPANSTAT on span 1"), "{e}");
    }

    #[test]
    fn arguments_the_driver_reads() {
        assert_eq!(specify_arg(47), 47);
        let bi = dchannel_bufinfo();
        assert_eq!(
            (bi.numbufs, bi.bufsize, bi.txbufpolicy, bi.rxbufpolicy),
            (16, 1024, 0, 0)
        );
        assert_eq!(law_of(1, sys::DAHDI_LAW_MULAW as i32).unwrap(), Law::Ulaw);
        assert_eq!(law_of(1, sys::DAHDI_LAW_ALAW as i32).unwrap(), Law::Alaw);
        assert!(law_of(3, 0).unwrap_err().to_string().contains("channel 3"));
        assert_eq!(
            alarm_names(sys::DAHDI_ALARM_RED | sys::DAHDI_ALARM_LOS),
            vec!["red (no signal)", "loss of signal"]
        );
        assert!(alarm_names(0).is_empty());
    }
}
