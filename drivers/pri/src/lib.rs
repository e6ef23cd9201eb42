//! A safe wrapper over libpri (`outcall-pri-sys`): one [`Span`] is one D-channel and its
//! B-channels (23 on a T1 PRI, 30 on an E1).
//!
//! A span owns its `struct pri`, created with `pri_new_cb` so that every D-channel frame passes
//! through our read/write callbacks: to a DAHDI HDLC channel, or to one end of a softspan
//! `SOCK_SEQPACKET` socketpair. libpri writes each frame with two trailing CRC bytes and strips
//! two from what it reads, so a plain read/write carries them through. The transport can be
//! *cut* (frames dropped both ways) to simulate a D-channel failure.
//!
//! libpri is not thread-safe per instance: a `Span` is `!Send` and has exactly one owner.
//! Drive it with [`Span::poll`] whenever its fd is readable and when [`Span::next_timer`]
//! passes; read its events with [`Span::poll_event`]. libpri's own timers (T303, T305, T308,
//! T309, T310, T313, Q.921 T200/T203) run on the system clock.
//!
//! Call clearing follows Q.931 §5.3 as libpri presents it: the side that receives DISCONNECT
//! gets `HANGUP_REQ`, the side that receives RELEASE gets `HANGUP`, and each must be answered
//! with `pri_hangup`, which this wrapper does; the upper layer sees one
//! [`PortEvent::Hangup`] per call, when the channel is free again.
#![allow(unsafe_code)]

use outcall_port::{CallDir, Cause, PortEvent, SpanEvent};
use outcall_pri_sys as sys;
use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use tracing::{debug, trace, warn};

/// A libpri wrapper error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libpri refused to create the span.
    #[error("libpri could not create a {node:?} span with switch type {switch:?}")]
    New {
        /// Node type.
        node: Node,
        /// Switch type name.
        switch: String,
    },
    /// Unknown switch type name.
    #[error("unknown switch type {0:?}: use ni2, national, ni1, dms100, 4ess, 5ess, euroisdn_e1, euroisdn_t1 or qsig")]
    SwitchType(String),
    /// A B-channel outside the span.
    #[error("B-channel {channel} outside 1..={max}")]
    Channel {
        /// The channel.
        channel: u16,
        /// The span's last B-channel.
        max: u16,
    },
    /// A number contained a NUL byte.
    #[error("number {0:?} contains a NUL byte")]
    Number(String),
    /// libpri refused a call operation.
    #[error("libpri refused {what} on B-channel {channel}")]
    Refused {
        /// The operation.
        what: &'static str,
        /// The channel.
        channel: u16,
    },
    /// No call in the required state on the channel.
    #[error("no {dir:?} call on B-channel {channel}")]
    NoCall {
        /// The channel.
        channel: u16,
        /// Which call.
        dir: CallDir,
    },
}

/// Which Q.931 side the span plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// User side (PRI_CPE): us, towards a carrier.
    Cpe,
    /// Network side (PRI_NETWORK): the simulated carrier, or us towards a PBX.
    Network,
}

/// The libpri switch type for a configuration name.
pub fn switch_type(name: &str) -> Result<i32, Error> {
    Ok(match name {
        "ni2" | "national" => sys::PRI_SWITCH_NI2,
        "ni1" => sys::PRI_SWITCH_NI1,
        "dms100" => sys::PRI_SWITCH_DMS100,
        "4ess" => sys::PRI_SWITCH_ATT4ESS,
        "5ess" => sys::PRI_SWITCH_LUCENT5E,
        "euroisdn_e1" => sys::PRI_SWITCH_EUROISDN_E1,
        "euroisdn_t1" => sys::PRI_SWITCH_EUROISDN_T1,
        "qsig" => sys::PRI_SWITCH_QSIG,
        other => return Err(Error::SwitchType(other.into())),
    } as i32)
}

/// The D-channel transport: one fd carrying whole HDLC frames (with libpri's 2 CRC bytes).
struct Io {
    fd: OwnedFd,
    cut: bool,
}

unsafe extern "C" fn io_read(
    pri: *mut sys::pri,
    buf: *mut libc::c_void,
    len: libc::c_int,
) -> libc::c_int {
    // SAFETY: libpri passes the span it was created with; its userdata is the boxed Io that
    // the owning Span keeps alive for the lifetime of the `struct pri`.
    let io = unsafe { &*(sys::pri_get_userdata(pri) as *const Io) };
    // SAFETY: buf has room for len bytes (libpri's own buffer); fd is open.
    let n = unsafe { libc::read(io.fd.as_raw_fd(), buf, len as usize) };
    if n <= 0 || io.cut {
        return 0; // nothing (or the link is cut: the frame is lost)
    }
    n as libc::c_int
}

unsafe extern "C" fn io_write(
    pri: *mut sys::pri,
    buf: *mut libc::c_void,
    len: libc::c_int,
) -> libc::c_int {
    // SAFETY: as in io_read.
    let io = unsafe { &*(sys::pri_get_userdata(pri) as *const Io) };
    if io.cut {
        return len; // sent into a dead line
    }
    // SAFETY: buf holds len bytes prepared by libpri; fd is open.
    let n = unsafe { libc::write(io.fd.as_raw_fd(), buf, len as usize) };
    if n < 0 {
        return 0;
    }
    n as libc::c_int
}

#[derive(Debug)]
struct Call {
    channel: u16,
    dir: CallDir,
    ptr: *mut sys::q931_call,
    /// We called pri_hangup on it.
    hung_up: bool,
    /// The cause to report when it is gone.
    cause: Cause,
    reported: bool,
}

/// One libpri span.
pub struct Span {
    pri: NonNull<sys::pri>,
    io: Box<Io>,
    node: Node,
    layer1: i32,
    channels: u16,
    e1: bool,
    calls: Vec<Call>,
    port_events: VecDeque<(u16, PortEvent)>,
    span_events: VecDeque<SpanEvent>,
    up: bool,
}

/// What [`Span::poll_event`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About a B-channel.
    Port(u16, PortEvent),
    /// About the span.
    Span(SpanEvent),
}

impl Span {
    /// A span on the D-channel `fd` (non-blocking, one frame per read/write).
    /// `channels` is 23 (T1) or 30 (E1); on E1 B-channel n is timeslot n for n ≤ 15 and n+1
    /// above (timeslot 16 is the D-channel). `alaw` selects the bearer's layer-1 law.
    pub fn new(
        fd: OwnedFd,
        node: Node,
        switch: &str,
        channels: u16,
        e1: bool,
        alaw: bool,
    ) -> Result<Span, Error> {
        let st = switch_type(switch)?;
        let io = Box::new(Io { fd, cut: false });
        let nodetype = match node {
            Node::Cpe => sys::PRI_CPE,
            Node::Network => sys::PRI_NETWORK,
        } as i32;
        // SAFETY: the callbacks match pri_io_cb; userdata points into a Box that the Span owns
        // and drops only after the `struct pri` is gone (it is never freed: libpri has no
        // destructor, see Drop). fd is passed only for libpri's bookkeeping.
        let pri = unsafe {
            sys::pri_new_cb(
                io.fd.as_raw_fd(),
                nodetype,
                st,
                Some(io_read),
                Some(io_write),
                (&*io as *const Io).cast_mut().cast(),
            )
        };
        let pri = NonNull::new(pri).ok_or(Error::New {
            node,
            switch: switch.into(),
        })?;
        let layer1 = if alaw {
            sys::PRI_LAYER_1_ALAW
        } else {
            sys::PRI_LAYER_1_ULAW
        } as i32;
        Ok(Span {
            pri,
            io,
            node,
            layer1,
            channels,
            e1,
            calls: Vec::new(),
            port_events: VecDeque::new(),
            span_events: VecDeque::new(),
            up: false,
        })
    }

    /// Sets libpri's debug flags (`PRI_DEBUG_*`); libpri prints to stdout.
    pub fn set_debug(&mut self, flags: i32) {
        // SAFETY: pri is valid; plain integer flags.
        unsafe { sys::pri_set_debug(self.pri.as_ptr(), flags) };
    }

    /// The D-channel fd (poll it for readability).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.io.fd.as_raw_fd()
    }

    /// Whether the D-channel is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Cuts (true) or restores the D-channel link: frames are dropped both ways while cut.
    pub fn set_cut(&mut self, cut: bool) {
        self.io.cut = cut;
    }

    fn timeslot(&self, channel: u16) -> Result<i32, Error> {
        if channel == 0 || channel > self.channels {
            return Err(Error::Channel {
                channel,
                max: self.channels,
            });
        }
        Ok(i32::from(if self.e1 && channel > 15 {
            channel + 1
        } else {
            channel
        }))
    }

    fn channel_of(&self, pri_channel: i32) -> u16 {
        let ts = (pri_channel & 0xFF) as u16;
        if self.e1 && ts > 16 {
            ts - 1
        } else {
            ts
        }
    }

    fn find(&self, channel: u16, dir: CallDir) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.channel == channel && c.dir == dir && !c.hung_up)
    }

    /// Places a call on `channel` (exclusive), speech bearer.
    pub fn dial(&mut self, channel: u16, called: &str, calling: Option<&str>) -> Result<(), Error> {
        let ts = self.timeslot(channel)?;
        let called_c = CString::new(called).map_err(|_| Error::Number(called.into()))?;
        let calling_c = CString::new(calling.unwrap_or(""))
            .map_err(|_| Error::Number(calling.unwrap_or("").into()))?;
        let pri = self.pri.as_ptr();
        // SAFETY: pri is valid; libpri allocates the call and the setup request, copies the
        // strings during the calls, and the request is freed right after pri_setup.
        let ok = unsafe {
            let call = sys::pri_new_call(pri);
            if call.is_null() {
                return Err(Error::Refused {
                    what: "a new call",
                    channel,
                });
            }
            let sr = sys::pri_sr_new();
            sys::pri_sr_set_channel(sr, ts, 1, 0);
            sys::pri_sr_set_bearer(sr, sys::PRI_TRANS_CAP_SPEECH as i32, self.layer1);
            sys::pri_sr_set_called(sr, called_c.as_ptr().cast_mut(), sys::PRI_UNKNOWN as i32, 1);
            if calling.is_some() {
                sys::pri_sr_set_caller(
                    sr,
                    calling_c.as_ptr().cast_mut(),
                    std::ptr::null_mut(),
                    sys::PRI_UNKNOWN as i32,
                    (sys::PRI_PRES_ALLOWED | sys::PRI_PRES_USER_NUMBER_UNSCREENED) as i32,
                );
            }
            let r = sys::pri_setup(pri, call, sr);
            sys::pri_sr_free(sr);
            if r != 0 {
                sys::pri_destroycall(pri, call);
                None
            } else {
                Some(call)
            }
        };
        let ptr = ok.ok_or(Error::Refused {
            what: "SETUP",
            channel,
        })?;
        debug!(node = ?self.node, channel, called, "SETUP");
        self.track(Call {
            channel,
            dir: CallDir::Outbound,
            ptr,
            hung_up: false,
            cause: Cause::NORMAL_CLEARING,
            reported: false,
        });
        Ok(())
    }

    fn inbound(&self, channel: u16) -> Result<*mut sys::q931_call, Error> {
        self.find(channel, CallDir::Inbound)
            .map(|i| self.calls[i].ptr)
            .ok_or(Error::NoCall {
                channel,
                dir: CallDir::Inbound,
            })
    }

    /// Sends CALL PROCEEDING for the incoming call on `channel`.
    pub fn proceeding(&mut self, channel: u16) -> Result<(), Error> {
        let (call, ts) = (self.inbound(channel)?, self.timeslot(channel)?);
        // SAFETY: pri and call are live (the call is in our table until libpri reports it gone).
        let r = unsafe { sys::pri_proceeding(self.pri.as_ptr(), call, ts, 0) };
        (r == 0).then_some(()).ok_or(Error::Refused {
            what: "CALL PROCEEDING",
            channel,
        })
    }

    /// Sends ALERTING for the incoming call on `channel`.
    pub fn alerting(&mut self, channel: u16) -> Result<(), Error> {
        let (call, ts) = (self.inbound(channel)?, self.timeslot(channel)?);
        // SAFETY: as in proceeding.
        let r = unsafe { sys::pri_acknowledge(self.pri.as_ptr(), call, ts, 1) };
        (r == 0).then_some(()).ok_or(Error::Refused {
            what: "ALERTING",
            channel,
        })
    }

    /// Answers (CONNECT) the incoming call on `channel`.
    pub fn answer(&mut self, channel: u16) -> Result<(), Error> {
        let (call, ts) = (self.inbound(channel)?, self.timeslot(channel)?);
        // SAFETY: as in proceeding.
        let r = unsafe { sys::pri_answer(self.pri.as_ptr(), call, ts, 0) };
        (r == 0).then_some(()).ok_or(Error::Refused {
            what: "CONNECT",
            channel,
        })
    }

    /// Clears the `dir` call on `channel` with `cause` (DISCONNECT, or RELEASE COMPLETE before
    /// answer). Its [`PortEvent::Hangup`] follows once libpri has released it.
    pub fn hangup(&mut self, channel: u16, dir: CallDir, cause: Cause) -> Result<(), Error> {
        let i = self
            .find(channel, dir)
            .ok_or(Error::NoCall { channel, dir })?;
        let call = &mut self.calls[i];
        call.hung_up = true;
        call.cause = cause;
        // SAFETY: pri and call are live; after pri_hangup libpri owns the call's teardown.
        unsafe { sys::pri_hangup(self.pri.as_ptr(), call.ptr, i32::from(cause.0)) };
        debug!(node = ?self.node, channel, ?dir, %cause, "hangup");
        Ok(())
    }

    /// Sends RESTART for one B-channel (`pri_reset`): the far end clears any call on it.
    pub fn restart_channel(&mut self, channel: u16) -> Result<(), Error> {
        let ts = self.timeslot(channel)?;
        // SAFETY: pri is valid; plain integer channel.
        let r = unsafe { sys::pri_reset(self.pri.as_ptr(), ts) };
        if r != 0 {
            return Err(Error::Refused {
                what: "RESTART",
                channel,
            });
        }
        // Q.931 §5.5: a restart releases every call on the channel, at this end too.
        while let Some(i) = self.calls.iter().position(|c| c.channel == channel) {
            self.gone(i, Cause::NORMAL_UNSPECIFIED);
        }
        Ok(())
    }

    /// Runs libpri on whatever the D-channel delivered and on expired timers.
    pub fn poll(&mut self) {
        let pri = self.pri.as_ptr();
        for _ in 0..64 {
            let mut fds = libc::pollfd {
                fd: self.io.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let ready =
                unsafe { libc::poll(&mut fds, 1, 0) } > 0 && fds.revents & libc::POLLIN != 0;
            if !ready {
                break;
            }
            // SAFETY: pri is valid; the returned event (if any) is valid until the next libpri
            // call, and handle() copies what it needs before calling libpri again.
            let ev = unsafe { sys::pri_check_event(pri) };
            if let Some(ev) = NonNull::new(ev) {
                self.handle(ev);
            }
        }
        loop {
            // SAFETY: pri is valid; pri_schedule_next returns NULL or a pointer into pri.
            let next = unsafe { sys::pri_schedule_next(pri) };
            if next.is_null() {
                break;
            }
            // SAFETY: non-null pointer to libpri's `struct timeval` (bindgen leaves it opaque;
            // it is the C library's, the same as libc::timeval).
            let tv = unsafe { *next.cast::<libc::timeval>() };
            let mut now = libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            };
            // SAFETY: valid out-pointer.
            unsafe { libc::gettimeofday(&mut now, std::ptr::null_mut()) };
            if (tv.tv_sec, tv.tv_usec) > (now.tv_sec, now.tv_usec) {
                break;
            }
            // SAFETY: pri is valid; as for pri_check_event.
            let ev = unsafe { sys::pri_schedule_run(pri) };
            if let Some(ev) = NonNull::new(ev) {
                self.handle(ev);
            }
        }
    }

    /// Milliseconds until libpri's next timer, if any.
    pub fn next_timer_ms(&self) -> Option<u64> {
        // SAFETY: pri is valid; NULL or a pointer to a timeval owned by libpri.
        let next = unsafe { sys::pri_schedule_next(self.pri.as_ptr()) };
        if next.is_null() {
            return None;
        }
        // SAFETY: non-null, libpri's `struct timeval` (the C library's), read at once.
        let tv = unsafe { *next.cast::<libc::timeval>() };
        let mut now = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: valid out-pointer.
        unsafe { libc::gettimeofday(&mut now, std::ptr::null_mut()) };
        let ms = (tv.tv_sec - now.tv_sec) * 1000 + (tv.tv_usec - now.tv_usec) / 1000;
        Some(ms.max(0) as u64)
    }

    fn by_ptr(&self, ptr: *mut sys::q931_call) -> Option<usize> {
        self.calls.iter().position(|c| c.ptr == ptr)
    }

    /// Records a call libpri just handed out. libpri reuses call memory: a pointer handed out
    /// again proves that any older call we hold at that address is gone (libpri destroyed it
    /// without a further event), so such a stale entry is retired first. Without this a stale
    /// entry would shadow the new call in [`Span::by_ptr`].
    fn track(&mut self, call: Call) {
        while let Some(i) = self.by_ptr(call.ptr) {
            let cause = self.calls[i].cause;
            self.gone(i, cause);
        }
        self.calls.push(call);
    }

    fn gone(&mut self, i: usize, cause: Cause) {
        let c = self.calls.remove(i);
        if !c.reported {
            let cause = if c.hung_up { c.cause } else { cause };
            self.port_events
                .push_back((c.channel, PortEvent::Hangup(c.dir, cause)));
        }
    }

    fn handle(&mut self, ev: NonNull<sys::pri_event>) {
        let pri = self.pri.as_ptr();
        // SAFETY: libpri hands a valid event; `e` selects the union member read below, each
        // read happening before the next libpri call.
        let e = unsafe { ev.as_ref().e } as u32;
        trace!(node = ?self.node, e, "pri event");
        match e {
            sys::PRI_EVENT_DCHAN_UP => {
                self.up = true;
                self.span_events.push_back(SpanEvent::Up);
            }
            sys::PRI_EVENT_DCHAN_DOWN => {
                self.up = false;
                // Every call on the span is lost with the D-channel.
                while !self.calls.is_empty() {
                    self.gone(0, Cause::NETWORK_OUT_OF_ORDER);
                }
                self.span_events.push_back(SpanEvent::Down);
            }
            sys::PRI_EVENT_RESTART => {
                // SAFETY: restart member for PRI_EVENT_RESTART.
                let ch = unsafe { ev.as_ref().restart.channel };
                let channel = if ch < 0 {
                    None
                } else {
                    Some(self.channel_of(ch))
                };
                let hit: Vec<usize> = (0..self.calls.len())
                    .rev()
                    .filter(|&i| channel.is_none_or(|c| self.calls[i].channel == c))
                    .collect();
                for i in hit {
                    self.gone(i, Cause::NORMAL_UNSPECIFIED);
                }
                self.span_events.push_back(SpanEvent::Restart(channel));
            }
            sys::PRI_EVENT_RING => {
                // SAFETY: ring member for PRI_EVENT_RING; the strings are NUL-terminated arrays.
                let (ch, call, dnis, ani) = unsafe {
                    let r = &ev.as_ref().ring;
                    (
                        r.channel,
                        r.call,
                        std::ffi::CStr::from_ptr(r.callednum.as_ptr())
                            .to_string_lossy()
                            .into_owned(),
                        std::ffi::CStr::from_ptr(r.callingnum.as_ptr())
                            .to_string_lossy()
                            .into_owned(),
                    )
                };
                let channel = self.channel_of(ch);
                if channel == 0 || channel > self.channels {
                    warn!(node = ?self.node, ch, "SETUP without a usable B-channel: cause 44");
                    // SAFETY: the call was handed to us by libpri with this event.
                    unsafe { sys::pri_hangup(pri, call, 44) };
                    return;
                }
                self.track(Call {
                    channel,
                    dir: CallDir::Inbound,
                    ptr: call,
                    hung_up: false,
                    cause: Cause::NORMAL_CLEARING,
                    reported: false,
                });
                self.port_events
                    .push_back((channel, PortEvent::Incoming { dnis, ani }));
            }
            sys::PRI_EVENT_PROCEEDING
            | sys::PRI_EVENT_RINGING
            | sys::PRI_EVENT_ANSWER
            | sys::PRI_EVENT_CONNECT_ACK => {
                // SAFETY: proceeding/ringing/answer/connect_ack all start with e, channel, …,
                // and carry the call pointer; read through the matching member.
                let call = unsafe {
                    match e {
                        sys::PRI_EVENT_PROCEEDING => ev.as_ref().proceeding.call,
                        sys::PRI_EVENT_RINGING => ev.as_ref().ringing.call,
                        sys::PRI_EVENT_ANSWER => ev.as_ref().answer.call,
                        _ => ev.as_ref().connect_ack.call,
                    }
                };
                if let Some(i) = self.by_ptr(call) {
                    let channel = self.calls[i].channel;
                    let pe = match e {
                        sys::PRI_EVENT_PROCEEDING => PortEvent::Proceeding,
                        sys::PRI_EVENT_RINGING => PortEvent::Alerting,
                        _ => PortEvent::Connected,
                    };
                    self.port_events.push_back((channel, pe));
                }
            }
            sys::PRI_EVENT_HANGUP_REQ | sys::PRI_EVENT_HANGUP => {
                // SAFETY: hangup member for both events.
                let (call, cause) = unsafe { (ev.as_ref().hangup.call, ev.as_ref().hangup.cause) };
                let cause = Cause(cause.clamp(0, 127) as u8);
                match self.by_ptr(call) {
                    Some(i) => {
                        let c = &mut self.calls[i];
                        if !c.hung_up {
                            c.hung_up = true;
                            c.cause = cause;
                            // SAFETY: a live call of ours: answer DISCONNECT/RELEASE.
                            unsafe { sys::pri_hangup(pri, call, i32::from(cause.0)) };
                        } else if e == sys::PRI_EVENT_HANGUP {
                            // RELEASE after our DISCONNECT: complete the clearing.
                            // SAFETY: as above; libpri expects pri_hangup to free it.
                            unsafe { sys::pri_hangup(pri, call, i32::from(c.cause.0)) };
                        }
                        if e == sys::PRI_EVENT_HANGUP {
                            self.gone(i, cause);
                        } else {
                            // Report the far end's cause at once; the channel frees when the
                            // RELEASE exchange completes.
                            let c = &mut self.calls[i];
                            if !c.reported {
                                c.reported = true;
                                self.port_events
                                    .push_back((c.channel, PortEvent::Hangup(c.dir, cause)));
                            }
                        }
                    }
                    None => {
                        // SAFETY: a call libpri still knows and we no longer track: free it.
                        unsafe { sys::pri_hangup(pri, call, i32::from(cause.0)) };
                    }
                }
            }
            sys::PRI_EVENT_HANGUP_ACK => {
                // SAFETY: hangup member.
                let call = unsafe { ev.as_ref().hangup.call };
                if let Some(i) = self.by_ptr(call) {
                    let cause = self.calls[i].cause;
                    self.gone(i, cause);
                }
            }
            _ => {}
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(s) = self.span_events.pop_front() {
            return Some(Event::Span(s));
        }
        self.port_events
            .pop_front()
            .map(|(ch, e)| Event::Port(ch, e))
    }

    /// Channels with a call (any direction, including calls being cleared).
    pub fn busy_channels(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.calls.iter().map(|c| c.channel).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether `channel` carries a call in `dir` that is not being cleared.
    pub fn has_call(&self, channel: u16, dir: CallDir) -> bool {
        self.find(channel, dir).is_some()
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        // libpri 1.6 has no pri_destroy: the `struct pri` and its calls are leaked with the span
        // (spans live as long as the daemon). Cut the link so nothing more is sent.
        self.io.cut = true;
        let _ = self.node;
    }
}

/// Waits up to `timeout_ms` for any of `fds` to become readable; true if one is.
pub fn wait_readable(fds: &[std::os::fd::RawFd], timeout_ms: u64) -> bool {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: p is a valid array of p.len() pollfds for the duration of the call.
    let n = unsafe {
        libc::poll(
            p.as_mut_ptr(),
            p.len() as libc::nfds_t,
            timeout_ms.min(i32::MAX as u64) as i32,
        )
    };
    n > 0
}

/// A connected pair of D-channel ends for a loopback span (softspan, tests).
pub fn dchannel_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid out-array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

use std::os::fd::FromRawFd;

#[cfg(test)]
mod tests;
