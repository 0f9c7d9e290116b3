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
//!              └─ email, domain, zone, mysql, fileman  (one cPanel module each, on `state`)
//! ```
//!
//! Invariants: nothing here panics on network input; the master token is compared in constant
//! time and never logged or echoed; every answer has cPanel's exact key set (`reply`).

mod dispatch;
mod domain;
mod email;
mod fileman;
mod mysql;
mod reply;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod zone;

use std::sync::{Mutex, PoisonError};

use http::StatusCode;
use serde_json::Value;

use crate::call::CpanelCall;

pub use server::{run, serve, serve_emulator, MAX_BODY, TOKEN_ONLY_TEXT};

/// The emulated account and its dispatcher; what the HTTP server calls once a request is
/// authenticated and classified. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Emulator {
    user: String,
    account: Mutex<state::Account>,
}

impl Emulator {
    /// An emulator for cPanel user `user`, seeded with `example.com` (main), `blog.example.com`
    /// (sub-domain), `example.net` (addon), mailboxes `info@` and `sales@example.com` and
    /// `admin@example.net`, a forwarder `sales@` -> `info@example.com`, a zone per domain, the
    /// database and database user `USER_wp`, and `public_html/index.html`.
    pub fn new(user: impl Into<String>) -> Self {
        let user = user.into();
        let account = Mutex::new(state::Account::seeded(&user));
        Self { user, account }
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
