//! DTMF as RTP events (RFC 4733): the 4-byte event payload, a sender that turns one digit into
//! the packet sequence of §2.5.1, and a receiver that reports each digit once however many
//! packets (and end retransmissions) carry it. Time is RTP timestamp units (8 kHz samples);
//! nothing here reads a clock.

use thiserror::Error;

/// Event codes 0–15 (RFC 4733 §3.2: 0–9, `*`, `#`, A–D) and 16 (flash).
pub const FLASH: u8 = 16;

/// Packets per 20 ms at 8 kHz: the sender's step in timestamp units.
pub const SAMPLES_PER_PACKET: u32 = 160;

/// How often the final (E bit) packet is sent (RFC 4733 §2.5.1.4: "three times").
pub const END_REPEATS: usize = 3;

/// Why a payload is not a DTMF event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// Fewer than 4 bytes.
    #[error("event payload of {0} bytes, need 4")]
    Short(usize),
    /// An event code outside 0–16 (not DTMF).
    #[error("event code {0} is not DTMF")]
    NotDtmf(u8),
    /// A character that has no DTMF event.
    #[error("{0:?} is not a DTMF digit")]
    BadDigit(char),
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event code.
    pub event: u8,
    /// E bit: the end of the event.
    pub end: bool,
    /// Volume in -dBm0, 0–63.
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl Event {
    /// Decodes the first 4 bytes of an RTP payload (further events, RFC 4733 §2.5.1.5
    /// redundancy, are ignored).
    ///
    /// # Errors
    /// [`EventError::Short`] for a short payload; [`EventError::NotDtmf`] for codes above 16.
    pub fn decode(payload: &[u8]) -> Result<Self, EventError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(EventError::Short(payload.len()));
        };
        if event > FLASH {
            return Err(EventError::NotDtmf(event));
        }
        Ok(Event {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Encodes to the 4-byte payload (R bit zero).
    #[must_use]
    pub fn encode(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// The event code of a DTMF character.
///
/// # Errors
/// [`EventError::BadDigit`] for anything but `0-9*#A-D` (either case).
pub fn digit_to_event(c: char) -> Result<u8, EventError> {
    Ok(match c {
        '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => c as u8 - b'A' + 12,
        'a'..='d' => c as u8 - b'a' + 12,
        _ => return Err(EventError::BadDigit(c)),
    })
}

/// The DTMF character of an event code 0–15.
#[must_use]
pub fn event_to_digit(e: u8) -> Option<char> {
    Some(match e {
        0..=9 => (b'0' + e) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + e - 12) as char,
        _ => return None,
    })
}

/// One packet the sender wants on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// RTP marker bit (set on the first packet of an event, §2.5.1.3).
    pub marker: bool,
    /// RTP timestamp: the event's start, the same in every packet of it (§2.5.1.2).
    pub timestamp: u32,
    /// The payload.
    pub event: Event,
}

/// Sends one digit as RFC 4733 packets, one per 20 ms tick.
#[derive(Debug, Clone)]
pub struct DigitSender {
    event: u8,
    volume: u8,
    start: u32,
    total: u16,
    elapsed: u16,
    ends_sent: usize,
}

impl DigitSender {
    /// A digit starting at RTP timestamp `start` lasting `duration` units (e.g. 800 = 100 ms).
    ///
    /// # Errors
    /// [`EventError::BadDigit`] if `digit` is not DTMF.
    pub fn new(digit: char, start: u32, duration: u16, volume: u8) -> Result<Self, EventError> {
        Ok(Self {
            event: digit_to_event(digit)?,
            volume: volume.min(63),
            start,
            total: duration.max(1),
            elapsed: 0,
            ends_sent: 0,
        })
    }

    /// The packet for the next 20 ms tick, or `None` once the end was sent three times.
    pub fn next_packet(&mut self) -> Option<Packet> {
        if self.ends_sent >= END_REPEATS {
            return None;
        }
        let first = self.elapsed == 0;
        self.elapsed = self
            .elapsed
            .saturating_add(SAMPLES_PER_PACKET as u16)
            .min(self.total);
        let end = self.elapsed >= self.total;
        if end {
            self.ends_sent += 1;
        }
        Some(Packet {
            marker: first,
            timestamp: self.start,
            event: Event {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.elapsed,
            },
        })
    }
}

/// Reports each received DTMF event once (RFC 4733 §2.5.2): an event is identified by its RTP
/// timestamp; retransmitted end packets and later updates of a reported event are ignored.
#[derive(Debug, Clone, Default)]
pub struct DigitReceiver {
    last: Option<u32>,
}

impl DigitReceiver {
    /// Feeds one telephone-event payload with its RTP timestamp. Returns the digit the first
    /// time an event (a new timestamp) is seen; flash and non-DTMF codes are ignored.
    pub fn handle_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = Event::decode(payload).ok()?;
        if self.last == Some(timestamp) {
            return None;
        }
        self.last = Some(timestamp);
        event_to_digit(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout_rfc4733_figure_1() {
        // Event 5, E=1, volume 10, duration 800 (100 ms at 8 kHz).
        let e = Event {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(e.encode(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(Event::decode(&[5, 0x8a, 0x03, 0x20]), Ok(e));
        // R bit set by the sender is ignored on decode.
        assert!(!Event::decode(&[11, 0x4a, 0, 160]).unwrap().end);
        assert_eq!(Event::decode(&[1, 2, 3]), Err(EventError::Short(3)));
        assert_eq!(Event::decode(&[17, 0, 0, 0]), Err(EventError::NotDtmf(17)));
    }

    #[test]
    fn every_digit_round_trips() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(c), Ok(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(c));
        }
        assert_eq!(digit_to_event('d'), Ok(15));
        assert_eq!(digit_to_event('E'), Err(EventError::BadDigit('E')));
        assert_eq!(event_to_digit(FLASH), None);
    }

    #[test]
    fn sender_packet_sequence() {
        // 100 ms digit: durations 160, 320, 480, 640, 800(E) x3; marker on the first only.
        let mut s = DigitSender::new('7', 12_345, 800, 10).unwrap();
        let packets: Vec<Packet> = std::iter::from_fn(|| s.next_packet()).take(100).collect();
        let durs: Vec<(u16, bool)> = packets
            .iter()
            .map(|p| (p.event.duration, p.event.end))
            .collect();
        assert_eq!(
            durs,
            [
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (800, true),
                (800, true),
                (800, true)
            ]
        );
        assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
        assert!(packets
            .iter()
            .all(|p| p.timestamp == 12_345 && p.event.event == 7));
    }

    #[test]
    fn receiver_reports_each_event_once() {
        let mut r = DigitReceiver::default();
        let mut s = DigitSender::new('#', 1000, 480, 10).unwrap();
        let mut got = Vec::new();
        while let Some(p) = s.next_packet() {
            got.extend(r.handle_packet(p.timestamp, &p.event.encode()));
        }
        // Start lost: the next event is still reported from a middle packet.
        let e = Event {
            event: 3,
            end: false,
            volume: 10,
            duration: 320,
        };
        got.extend(r.handle_packet(2000, &e.encode()));
        got.extend(r.handle_packet(2000, &Event { end: true, ..e }.encode()));
        // The same digit again is a new event (new timestamp).
        got.extend(r.handle_packet(3000, &e.encode()));
        got.extend(r.handle_packet(4000, &[1, 2]));
        assert_eq!(got, ['#', '3', '3']);
    }
}
