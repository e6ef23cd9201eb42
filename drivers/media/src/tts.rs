//! Text-to-speech (next commit).
