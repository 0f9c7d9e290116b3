//! The raw HTTP/1 framing tracker: split invariance (see `harness::framing`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::framing(data));
