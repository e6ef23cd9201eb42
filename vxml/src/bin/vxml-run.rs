//! vxml-run: runs a VoiceXML application with scripted caller input.
fn main() {}
