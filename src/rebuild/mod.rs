//! [`CpanelCall`] -> the bytes of the upstream request: canonical path, parameters re-encoded
//! with a real serializer, API 2 selectors and `Batch` commands rebuilt from the authorized view.
//!
//! Pure. The client's raw path, query and body never pass through here. Invariants: the path
//! is `/execute/M/F` or `/json-api/cpanel`; outside multipart framing the output never holds a
//! raw CR or LF (the form serializer percent-encodes them); parameters go out in the call's
//! order, each key once, so cPanel's parser reads back exactly `call.params`.

mod multipart;

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::call::{Api, CpanelCall, Method};

/// The upstream request, minus headers other than the content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Path and query, e.g. `/execute/Email/list_pops?domain=example.com`.
    pub path_and_query: String,
    /// `application/x-www-form-urlencoded` or `multipart/form-data; boundary=...`; `None` for GET.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The form content type of rebuilt POST bodies.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Rebuilds `call` for `method`: GET puts parameters in the query, POST in a form body (or a
/// multipart body when the call carries files). `upstream_user` replaces `cpanel_jsonapi_user`.
///
/// A call with files always gets a multipart body (classification only produces files for
/// POST requests).
pub fn rebuild(call: &CpanelCall, method: Method, upstream_user: &str) -> Rebuilt {
    let path = canonical_path(call);
    let pairs = wire_pairs(call, upstream_user);
    if !call.files.is_empty() {
        return multipart::build(path, &pairs, &call.files);
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    match method {
        Method::Get if encoded.is_empty() => Rebuilt {
            path_and_query: path,
            content_type: None,
            body: Bytes::new(),
        },
        Method::Get => Rebuilt {
            path_and_query: format!("{path}?{encoded}"),
            content_type: None,
            body: Bytes::new(),
        },
        Method::Post => Rebuilt {
            path_and_query: path,
            content_type: Some(FORM_CONTENT_TYPE.to_owned()),
            body: Bytes::from(encoded),
        },
    }
}

/// Every parameter as it goes on the wire, in order: API 2 selectors first, then the call's
/// parameters, then (for `Batch::strict`) `command`, `command-0`, ... as JSON arrays.
pub fn wire_pairs(call: &CpanelCall, upstream_user: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(call.params.len() + call.batch.len() + 4);
    if call.api == Api::Api2 {
        pairs.push(("cpanel_jsonapi_user".to_owned(), upstream_user.to_owned()));
        pairs.push(("cpanel_jsonapi_apiversion".to_owned(), "2".to_owned()));
        pairs.push(("cpanel_jsonapi_module".to_owned(), call.module.clone()));
        pairs.push(("cpanel_jsonapi_func".to_owned(), call.function.clone()));
    }
    pairs.extend(uapi_args(call));
    pairs
}

/// The canonical path. Names from `classify` are `[A-Za-z0-9_]`; anything else is
/// percent-encoded so that a hand-built call can never add a segment.
fn canonical_path(call: &CpanelCall) -> String {
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_');
    match call.api {
        Api::Uapi => format!(
            "/execute/{}/{}",
            utf8_percent_encode(&call.module, SEGMENT),
            utf8_percent_encode(&call.function, SEGMENT)
        ),
        Api::Api2 => "/json-api/cpanel".to_owned(),
    }
}

/// A UAPI call's arguments: its parameters, then its batch commands.
fn uapi_args(call: &CpanelCall) -> Vec<(String, String)> {
    let params = call.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
    let commands = call.batch.iter().enumerate().map(|(i, inner)| {
        let key = match i {
            0 => "command".to_owned(),
            n => format!("command-{}", n - 1),
        };
        (key, command_json(inner))
    });
    params.chain(commands).collect()
}

/// One batch command as `["Module","function",{args}]` (2 items without arguments), the
/// arguments in the call's order (written by hand: serde_json maps would sort them).
pub fn command_json(call: &CpanelCall) -> String {
    let mut out = String::from("[");
    push_json_string(&mut out, &call.module);
    out.push(',');
    push_json_string(&mut out, &call.function);
    let args = uapi_args(call);
    if !args.is_empty() {
        out.push_str(",{");
        for (i, (k, v)) in args.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, k);
            out.push(':');
            push_json_string(&mut out, v);
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
