//! Raw request -> [`CpanelCall`]: cPanel's path and parameter rules (cpanel-wire.md §2-§5),
//! exactly, rejecting whatever cPanel could read differently from cpgate.
//!
//! Pure: no I/O, no other pipeline step imported. Never panics on any input.
//! STUB: owned by the classify work; signatures are the contract with the rest of the crate.

use crate::call::{CpanelCall, Method};

/// The parts of an HTTP request classification looks at. `path` is the raw (undecoded) path
/// of an origin-form target, `query` the raw query string without `?`.
#[derive(Clone, Copy, Debug)]
pub struct RawRequest<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The `Content-Type` header value, if exactly one was sent (several are rejected earlier).
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a request is not a classifiable cPanel call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// Ambiguous or malformed: 400 `bad_request`. The text is safe to show the client.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Plainly another document or API 1/3: 403 `not_an_api_call`.
    #[error("not an API call: {0}")]
    NotAnApiCall(String),
}

/// Classifies a request as cPanel would read it.
pub fn classify(req: &RawRequest<'_>) -> Result<CpanelCall, ClassifyError> {
    let _ = req;
    Err(ClassifyError::NotAnApiCall("classification not built yet".into()))
}
