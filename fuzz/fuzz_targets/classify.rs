//! The request classifier and the rebuild round trip (see `harness::classify_input`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::classify_input(data));
