//! Matching of messages to transactions (RFC 3261 §17.1.3, §17.2.3).
