//! The whole proxy over a byte stream with a recording cPanel (see `harness::proxy`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::proxy::proxy(data));
