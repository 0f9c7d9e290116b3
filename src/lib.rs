//! cpgate: an authenticating reverse proxy and token broker for the cPanel API.
//!
//! cPanel API tokens are all-or-nothing. cpgate hands developers scoped, short-lived JWTs
//! instead and forwards each allowed call with the account's master token. Every request goes
//! through the same steps, in one direction (see `pipeline`):
//!
//! ```text
//!  client ──▶ 1 admit ──▶ 2 authenticate ──▶ 3 classify ──▶ 4 authorize ──▶ 5 rate_limit
//!                                                                               │
//!  client ◀── 8 respond ◀──────────── 7 forward (rebuilt request) ◀── 6 audit ◀─┘
//! ```
//!
//! 1. `admit`: request id, method, target form, header and body limits.
//! 2. `authenticate`: credential -> [`principal::Principal`].
//! 3. `classify`: raw request -> [`call::CpanelCall`], cPanel's parser exactly (pure).
//! 4. `authorize`: policy x principal x call -> allow(rule) or deny(reason) (pure).
//! 5. `rate_limit`: per developer.
//! 6. `audit`: the `request` record reaches the kernel before anything is forwarded.
//! 7. `forward`: the upstream request rebuilt from the authorized view, master credential inserted.
//! 8. `respond`: the `response` or `denied` record; errors become cPanel-shaped responses.

pub mod admin;
pub mod admit;
pub mod app;
pub mod audit;
pub mod body;
pub mod call;
pub mod classify;
pub mod cli;
pub mod config;
pub mod connio;
pub mod emulate;
pub mod error;
pub mod forward;
pub mod framing;
pub mod idle;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod principal;
pub mod ratelimit;
pub mod rebuild;
pub mod respond;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod store;
pub mod tls;
pub mod token;
pub mod worker;
