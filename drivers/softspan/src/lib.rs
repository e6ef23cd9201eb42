//! softspan: a loopback ISDN PRI span with a simulated carrier on the far end.
//!
//! Our side is exactly the PRI stack of `outcall-pri` as CPE; the far side is a second libpri
//! instance as NETWORK, reached over a `socketpair(AF_UNIX, SOCK_SEQPACKET)` D-channel.
//! B-channels carry 160-byte G.711 frames every 20 ms on one clock per span, the way DAHDI
//! delivers them. The carrier's callees, inbound traffic and faults are scripted, so CI and any
//! laptop run the whole stack without telephony hardware.
#![forbid(unsafe_code)]
