//! DAHDI ioctl request numbers and their raw wrappers.
//!
//! `dahdi/user.h` defines each request with `_IOR`/`_IOW`/`_IOWR(DAHDI_CODE, nr, type)`. The
//! constants below are built with nix's `request_code_*` macros from the same triple, and the
//! wrappers with `ioctl_*!`. Every "int" request is declared `ioctl_write_ptr!` /
//! `ioctl_read!`, never `ioctl_write_int!`: the DAHDI driver reads its argument through a pointer
//! (`get_user(j, (int __user *)data)`), and both forms compute the same number.
//!
//! The numbers are proven against gcc by `tests/layout.rs`.

use crate::bindings::{dahdi_bufferinfo, dahdi_params, dahdi_spaninfo};
use libc::c_int;
use nix::{ioctl_read, ioctl_readwrite, ioctl_write_ptr};
use nix::{request_code_read, request_code_readwrite, request_code_write};
use std::mem::size_of;

/// The ioctl "type" byte of every DAHDI request (`DAHDI_CODE`).
pub const DAHDI_CODE: u8 = 0xDA;

/// The integer type of an ioctl request number on this platform.
pub type Request = nix::sys::ioctl::ioctl_num_type;

/// `DAHDI_GET_BLOCKSIZE`: read the channel's block size in samples.
pub const DAHDI_GET_BLOCKSIZE: Request =
    request_code_read!(DAHDI_CODE, 1, size_of::<c_int>()) as Request;
/// `DAHDI_SET_BLOCKSIZE`: set the channel's block size in samples (160 = 20 ms at 8 kHz).
pub const DAHDI_SET_BLOCKSIZE: Request =
    request_code_write!(DAHDI_CODE, 1, size_of::<c_int>()) as Request;
/// `DAHDI_FLUSH`: flush read and/or write buffers (`DAHDI_FLUSH_*` bits).
pub const DAHDI_FLUSH: Request = request_code_write!(DAHDI_CODE, 3, size_of::<c_int>()) as Request;
/// `DAHDI_GET_PARAMS`: read the channel's parameters ([`dahdi_params`]).
pub const DAHDI_GET_PARAMS: Request =
    request_code_readwrite!(DAHDI_CODE, 5, size_of::<dahdi_params>()) as Request;
/// `DAHDI_SET_PARAMS`: write the channel's parameters ([`dahdi_params`]).
pub const DAHDI_SET_PARAMS: Request =
    request_code_write!(DAHDI_CODE, 5, size_of::<dahdi_params>()) as Request;
/// `DAHDI_HOOK`: on-hook/off-hook/wink/flash (`DAHDI_ONHOOK`, `DAHDI_OFFHOOK`, …).
pub const DAHDI_HOOK: Request = request_code_write!(DAHDI_CODE, 7, size_of::<c_int>()) as Request;
/// `DAHDI_GETEVENT`: read the next pending event (`DAHDI_EVENT_*`), e.g. HDLC abort or alarm.
pub const DAHDI_GETEVENT: Request =
    request_code_read!(DAHDI_CODE, 8, size_of::<c_int>()) as Request;
/// `DAHDI_IOMUX`: wait for read/write/event readiness.
pub const DAHDI_IOMUX: Request =
    request_code_readwrite!(DAHDI_CODE, 9, size_of::<c_int>()) as Request;
/// `DAHDI_SPANSTAT`: read a span's status and alarms ([`dahdi_spaninfo`]).
pub const DAHDI_SPANSTAT: Request =
    request_code_readwrite!(DAHDI_CODE, 10, size_of::<dahdi_spaninfo>()) as Request;
/// `DAHDI_GET_BUFINFO`: read the channel's buffer policy ([`dahdi_bufferinfo`]).
pub const DAHDI_GET_BUFINFO: Request =
    request_code_read!(DAHDI_CODE, 27, size_of::<dahdi_bufferinfo>()) as Request;
/// `DAHDI_SET_BUFINFO`: set the channel's buffer policy ([`dahdi_bufferinfo`]).
pub const DAHDI_SET_BUFINFO: Request =
    request_code_write!(DAHDI_CODE, 27, size_of::<dahdi_bufferinfo>()) as Request;
/// `DAHDI_CHANNO`: read the channel number the file descriptor is bound to.
pub const DAHDI_CHANNO: Request = request_code_read!(DAHDI_CODE, 34, size_of::<c_int>()) as Request;
/// `DAHDI_SPECIFY`: bind an fd of `/dev/dahdi/channel` to a channel number.
pub const DAHDI_SPECIFY: Request =
    request_code_write!(DAHDI_CODE, 38, size_of::<c_int>()) as Request;
/// `DAHDI_SETLAW`: set the channel's companding law (`DAHDI_LAW_MULAW`, `DAHDI_LAW_ALAW`, …).
pub const DAHDI_SETLAW: Request =
    request_code_write!(DAHDI_CODE, 39, size_of::<c_int>()) as Request;

/// Every request number this crate defines, by its C macro name (for the layout test and logs).
pub const ALL: &[(&str, Request)] = &[
    ("DAHDI_GET_BLOCKSIZE", DAHDI_GET_BLOCKSIZE),
    ("DAHDI_SET_BLOCKSIZE", DAHDI_SET_BLOCKSIZE),
    ("DAHDI_FLUSH", DAHDI_FLUSH),
    ("DAHDI_GET_PARAMS", DAHDI_GET_PARAMS),
    ("DAHDI_SET_PARAMS", DAHDI_SET_PARAMS),
    ("DAHDI_HOOK", DAHDI_HOOK),
    ("DAHDI_GETEVENT", DAHDI_GETEVENT),
    ("DAHDI_IOMUX", DAHDI_IOMUX),
    ("DAHDI_SPANSTAT", DAHDI_SPANSTAT),
    ("DAHDI_GET_BUFINFO", DAHDI_GET_BUFINFO),
    ("DAHDI_SET_BUFINFO", DAHDI_SET_BUFINFO),
    ("DAHDI_CHANNO", DAHDI_CHANNO),
    ("DAHDI_SPECIFY", DAHDI_SPECIFY),
    ("DAHDI_SETLAW", DAHDI_SETLAW),
];

ioctl_read!(
    /// `DAHDI_GET_BLOCKSIZE`.
    get_blocksize, DAHDI_CODE, 1, c_int
);
ioctl_write_ptr!(
    /// `DAHDI_SET_BLOCKSIZE`.
    set_blocksize, DAHDI_CODE, 1, c_int
);
ioctl_write_ptr!(
    /// `DAHDI_FLUSH`.
    flush, DAHDI_CODE, 3, c_int
);
ioctl_readwrite!(
    /// `DAHDI_GET_PARAMS`: the caller sets `channo` (0 = the fd's channel) before the call.
    get_params, DAHDI_CODE, 5, dahdi_params
);
ioctl_write_ptr!(
    /// `DAHDI_SET_PARAMS`.
    set_params, DAHDI_CODE, 5, dahdi_params
);
ioctl_write_ptr!(
    /// `DAHDI_HOOK`.
    hook, DAHDI_CODE, 7, c_int
);
ioctl_read!(
    /// `DAHDI_GETEVENT`.
    get_event, DAHDI_CODE, 8, c_int
);
ioctl_readwrite!(
    /// `DAHDI_IOMUX`.
    iomux, DAHDI_CODE, 9, c_int
);
ioctl_readwrite!(
    /// `DAHDI_SPANSTAT`: the caller sets `spanno` before the call.
    spanstat, DAHDI_CODE, 10, dahdi_spaninfo
);
ioctl_read!(
    /// `DAHDI_GET_BUFINFO`.
    get_bufinfo, DAHDI_CODE, 27, dahdi_bufferinfo
);
ioctl_write_ptr!(
    /// `DAHDI_SET_BUFINFO`.
    set_bufinfo, DAHDI_CODE, 27, dahdi_bufferinfo
);
ioctl_read!(
    /// `DAHDI_CHANNO`.
    channo, DAHDI_CODE, 34, c_int
);
ioctl_write_ptr!(
    /// `DAHDI_SPECIFY`.
    specify, DAHDI_CODE, 38, c_int
);
ioctl_write_ptr!(
    /// `DAHDI_SETLAW`.
    setlaw, DAHDI_CODE, 39, c_int
);
