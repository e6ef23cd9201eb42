//! DAHDI hardware spans: opens `/dev/dahdi/channel`, binds it with `DAHDI_SPECIFY`, sets the
//! block size to 160 samples and the companding law, wires the D-channel in HDLC mode to libpri
//! (`outcall-pri`) and reads span alarms with `DAHDI_SPANSTAT`.
//!
//! Every ioctl goes through the request numbers of `outcall-dahdi-sys`, which are proven against
//! the C header by that crate's layout test.
#![allow(unsafe_code)]
