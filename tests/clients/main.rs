//! Compatibility tests with the cPanel clients people already use, installed unchanged from PyPI
//! (pinned in `tests/clients/requirements.txt`) into a throwaway virtual environment by
//! `scripts/test.sh`: `cpanel-api`, `cpanel-cli` and `aiocpanel`, plus a replay of the request
//! certbot-dns-cpanel makes.
//!
//! Each test starts the emulated cPanel and cpgate (TLS, test CA) in-process on ephemeral
//! 127.0.0.1 ports (`stack`), runs a client through a small Python driver in `tests/clients/py`
//! (or the client's own command), and checks three things: an allowed call returns the
//! emulator's answer; a denied call surfaces cpgate's refusal through the client's own error
//! handling; the emulator received only the master credential.

// Test fixtures may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aiocpanel;
mod certbot_dns_cpanel;
mod cpanel_api;
mod cpanel_cli;
mod stack;
