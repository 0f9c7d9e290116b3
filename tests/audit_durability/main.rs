//! Audit durability against a real `cpgate serve` process: kill -9 in a loop under load, a full
//! disk, SIGHUP reopen after an external logrotate, and redaction end to end.

// Test fixtures may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod full_disk;
mod kill9;
mod redaction;
mod reopen;
mod support;
