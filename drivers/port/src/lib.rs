//! The port model every outcall telephony driver speaks.
//!
//! A *port* is one bidirectional call slot: a B-channel of an ISDN PRI span (DAHDI hardware or
//! softspan) or a channel of a SIP trunk. Each driver exposes its ports through the same small
//! surface, so the daemon never knows which kind it drives: span and port ids, commands (dial,
//! answer, hang up with a Q.850 cause, send audio), events (incoming call, proceeding, alerting,
//! connected, audio, hangup with cause, alarms) and 20 ms audio frames of 160 samples at 8 kHz.
#![forbid(unsafe_code)]
