//! Integration tests: cpgate and a recording mock cPanel in-process on port 0.

// Test fixtures may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod canary;
mod cli;
mod forwarding;
mod listener;
mod perf;
mod refusals;
mod support;
mod workers;
