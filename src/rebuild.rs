//! [`CpanelCall`] -> the bytes of the upstream request: canonical path, parameters re-encoded
//! with a real serializer, API 2 selectors and `Batch` commands rebuilt from the authorized view.
//!
//! Pure. The client's raw path, query and body never pass through here.
//! STUB: owned by the classify work; signatures are the contract with the rest of the crate.

use bytes::Bytes;

use crate::call::{CpanelCall, Method};

/// The upstream request, minus headers other than the content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Path and query, e.g. `/execute/Email/list_pops?domain=example.com`.
    pub path_and_query: String,
    /// `application/x-www-form-urlencoded` or `multipart/form-data; boundary=...`; `None` for GET.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Rebuilds `call` for `method`: GET puts parameters in the query, POST in a form body (or a
/// multipart body when the call carries files). `upstream_user` replaces `cpanel_jsonapi_user`.
pub fn rebuild(call: &CpanelCall, method: Method, upstream_user: &str) -> Rebuilt {
    let _ = (call, method, upstream_user);
    Rebuilt {
        path_and_query: String::new(),
        content_type: None,
        body: Bytes::new(),
    }
}
