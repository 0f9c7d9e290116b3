//! Raw request -> [`CpanelCall`]: cPanel's path and parameter rules (cpanel-wire.md §2-§5),
//! exactly, rejecting whatever cPanel could read differently from cpgate.
//!
//! Owns: which targets are API calls ([`path`]), how parameters are read and merged
//! ([`params`]), which bodies are accepted ([`input`], [`json`], [`multipart`]), API 2
//! selectors ([`api2`]) and `Batch::strict` expansion ([`batch`]).
//!
//! Never: performs I/O, imports another pipeline step, normalises a path, guesses at an
//! ambiguous request (that is a 400), echoes large client input in an error, or panics on any
//! input.
//!
//! Invariant: every [`CpanelCall`] returned holds valid module and function names, unique
//! parameter keys with no NUL and no empty key, and (for `Batch::strict`) inner calls obeying
//! the same rules, at most [`MAX_BATCH_DEPTH`] batches deep.

mod api2;
mod batch;
mod input;
mod json;
mod multipart;
mod params;
mod path;

#[cfg(test)]
mod model;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use crate::call::{Api, CpanelCall, Method, Params, UploadFile};

pub use batch::{MAX_BATCH_COMMANDS, MAX_BATCH_DEPTH};
pub use params::{parse_form, MAX_PARAMS};
pub use path::{is_function_name, is_module_name};

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
///
/// Order: path (§2), then body and query (§3), then the API-specific rules: UAPI meta
/// parameters and `Batch::strict` (§5), or API 2 selectors (§4).
pub fn classify(req: &RawRequest<'_>) -> Result<CpanelCall, ClassifyError> {
    let target = path::classify_path(req.path)?;
    let gathered = input::gather(req, &target)?;
    let params = params::merge(gathered.pairs)?;
    match target {
        path::Target::Uapi { module, function } => uapi_call(module, function, params, gathered.files),
        path::Target::Api2 => api2::call(params),
    }
}

/// Builds a UAPI call (top level or batch command) from validated names and merged params.
fn uapi_call(
    module: String,
    function: String,
    params: Params,
    files: Vec<UploadFile>,
) -> Result<CpanelCall, ClassifyError> {
    let mut budget = batch::Budget::new();
    uapi_call_at(module, function, params, files, 1, &mut budget)
}

/// [`uapi_call`] at batch nesting `level` (1 = the request itself).
fn uapi_call_at(
    module: String,
    function: String,
    params: Params,
    files: Vec<UploadFile>,
    level: usize,
    budget: &mut batch::Budget,
) -> Result<CpanelCall, ClassifyError> {
    check_uapi_meta(&params)?;
    let mut call = CpanelCall::new(Api::Uapi, module, function, params);
    call.files = files;
    if call.is_batch() {
        batch::expand(&mut call, level, budget)?;
    }
    Ok(call)
}

/// `api.output` selects the response format; cpgate relays JSON only.
fn check_uapi_meta(params: &Params) -> Result<(), ClassifyError> {
    if params.family("api.output").any(|(_, v)| v != "json") {
        return Err(bad("api.output must be json"));
    }
    Ok(())
}

/// A 400 with a fixed, client-safe message.
fn bad(msg: &str) -> ClassifyError {
    ClassifyError::BadRequest(msg.to_owned())
}

/// A client-chosen string shortened for an error message (at most 64 characters, debug-quoted).
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}...", s.get(..at).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}
