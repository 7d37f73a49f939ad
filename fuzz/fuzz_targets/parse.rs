//! Fuzzes the parse entry point an upload goes through: content sniffing, then the parser for the
//! sniffed type (PDF, UTF-8/UTF-16 text), with and without a password.
//!
//! pdf-extract panics on much malformed content; docent catches those per page and per file, so a
//! caught panic is handled input, not a finding. Findings are what the server cannot absorb:
//! aborts, stack overflows, hangs (`-timeout`) and memory blow-ups (`-rss_limit_mb`).
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/error.rs"]
mod error;
#[path = "../../src/domain/mod.rs"]
mod domain;
#[path = "../../src/parse/mod.rs"]
mod parse;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    // libfuzzer-sys makes every panic an abort; docent's parser catches panics itself.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let (password, bytes) = match data.split_first() {
        Some((&b'P', rest)) => (Some("openpassword"), rest),
        _ => (None, data),
    };
    for name in ["upload.pdf", "notes.txt"] {
        if let Ok(media) = parse::sniff(name, bytes) {
            let _ = parse::parse(media, bytes, password);
        }
    }
});
