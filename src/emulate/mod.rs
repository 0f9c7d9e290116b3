//! The emulated cPanel server (`cpgate emulate`): UAPI and API 2 on cPanel's wire rules, with
//! in-memory state, for demos, docker-compose and tests.
//!
//! Shares only the wire model (`classify`) with the proxy: every request is classified exactly as
//! the proxy classifies it, then dispatched. Layers, each testable alone:
//!
//! ```text
//!  server  (HTTP/1.1, master-token check: 401, path whitelist: 403, body cap, classify)
//!    └─ Emulator::handle  (lock the account, dispatch, cPanel-shaped JSON)
//!         └─ dispatch  (tables: (module, function) -> handler; Batch::strict)
//!              └─ email, domain, zone, mysql, fileman, ssl, dyndns  (one cPanel module each)
//! ```
//!
//! Invariants: nothing here panics on network input; the master token is compared in constant
//! time and never logged, echoed or recorded; every answer has cPanel's exact key set (`reply`).
//!
//! For tests that must show what reached cPanel, the server records the method, path and
//! credential kind of the last [`SEEN_LIMIT`] requests ([`Emulator::seen`]): the master credential
//! is recorded only as [`SeenAuth::Master`], any other `Authorization` value verbatim.

mod dispatch;
mod domain;
mod dyndns;
mod email;
mod fileman;
mod mysql;
mod reply;
mod server;
mod ssl;
mod state;
#[cfg(test)]
mod tests;
mod zone;

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use crate::call::CpanelCall;

pub use server::{run, serve, serve_emulator, spawn, Spawned, MAX_BODY, TOKEN_ONLY_TEXT};

/// The emulated account and its dispatcher; what the HTTP server calls once a request is
/// authenticated and classified. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Emulator {
    user: String,
    account: Mutex<state::Account>,
    seen: Mutex<VecDeque<SeenRequest>>,
}

/// How many received requests [`Emulator::seen`] remembers (the oldest are dropped).
pub const SEEN_LIMIT: usize = 1024;

/// One request as the emulator's HTTP server received it, before any check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// One entry per `Authorization` header (empty when none was sent).
    pub authorization: Vec<SeenAuth>,
}

/// What an `Authorization` header held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeenAuth {
    /// Exactly the configured master credential (`cpanel USER:TOKEN`); never stored.
    Master,
    /// Anything else, verbatim (lossy UTF-8).
    Other(String),
}

impl Emulator {
    /// An emulator for cPanel user `user`, seeded with `example.com` (main), `blog.example.com`
    /// (sub-domain), `example.net` (addon), mailboxes `info@` and `sales@example.com` and
    /// `admin@example.net`, a forwarder `sales@` -> `info@example.com`, a zone per domain, the
    /// database and database user `USER_wp`, and `public_html/index.html`.
    pub fn new(user: impl Into<String>) -> Self {
        let user = user.into();
        let account = Mutex::new(state::Account::seeded(&user));
        Self {
            user,
            account,
            seen: Mutex::default(),
        }
    }

    /// The requests received so far (at most the last [`SEEN_LIMIT`]), oldest first.
    pub fn seen(&self) -> Vec<SeenRequest> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().cloned().collect()
    }

    /// Remembers one received request.
    pub(crate) fn record(&self, request: SeenRequest) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() == SEEN_LIMIT {
            seen.pop_front();
        }
        seen.push_back(request);
    }

    /// The contents of the stored file `name` in `dir` (relative to the home directory, e.g.
    /// `public_html`), for tests that check an upload arrived intact.
    pub fn file(&self, dir: &str, name: &str) -> Option<Bytes> {
        let account = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = dir.trim_matches('/');
        account.files.get(dir)?.get(name).map(|f| f.data.clone())
    }

    /// The cPanel user this emulator answers for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs one classified call and returns the HTTP status and the JSON body cPanel would
    /// answer. Like cPanel, function-level failures are HTTP 200 with `status: 0` (UAPI) or an
    /// `error` (API 2). A `Batch::strict` runs under one lock, so it is atomic to other callers.
    pub fn handle(&self, call: &CpanelCall) -> (StatusCode, Value) {
        // A handler never panics, so a poisoned lock still guards consistent state.
        let mut account = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        (StatusCode::OK, dispatch::dispatch(&mut account, call))
    }

    /// Every function answered, as `Module::function` (UAPI) and `api2:Module::function`.
    pub fn functions() -> Vec<String> {
        dispatch::functions().collect()
    }
}
