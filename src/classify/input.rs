//! Where parameters come from (cpanel-wire.md §3): the query string and the body, chosen by
//! method and `Content-Type`, before merging.
//!
//! Owns the body rules: GET has no body; a form body (no `Content-Type`, or
//! `application/x-www-form-urlencoded`); exactly `application/json` (and then no query); a
//! `multipart/form-data` body only for `Fileman::upload_files`; every other JSON-ish type, and
//! any other body containing CRLF (cPanel would read it as multipart), is refused.
//! Never merges or interprets parameters.

use memchr::memmem;

use crate::call::{Method, UploadFile};

use super::params::{parse_urlencoded, Pair};
use super::path::Target;
use super::{bad, json, multipart, ClassifyError, RawRequest};

/// Unmerged parameters in wire order (query first, then body) and any uploaded files.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub pairs: Vec<Pair>,
    pub files: Vec<UploadFile>,
}

/// How the body is to be read, from the `Content-Type` header.
#[derive(Debug, PartialEq, Eq)]
enum BodyKind<'a> {
    Form,
    Json,
    /// `application/json` in another spelling or with parameters: not JSON to cPanel.
    JsonLike,
    /// The raw parameter section of a `multipart/form-data` content type.
    Multipart(&'a str),
    Other,
}

/// Reads the query and body of `req` for `target`.
pub(super) fn gather(req: &RawRequest<'_>, target: &Target) -> Result<Gathered, ClassifyError> {
    let kind = body_kind(req.content_type);
    match req.method {
        Method::Get => gather_get(req, &kind),
        Method::Post => gather_post(req, &kind, target),
    }
}

fn body_kind(content_type: Option<&str>) -> BodyKind<'_> {
    let Some(ct) = content_type else {
        return BodyKind::Form;
    };
    if ct == "application/json" {
        return BodyKind::Json;
    }
    let (media, params) = ct.split_once(';').unwrap_or((ct, ""));
    let media = media.trim_matches(|c: char| c == ' ' || c == '\t');
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if media.eq_ignore_ascii_case("application/json") {
        BodyKind::JsonLike
    } else if media.eq_ignore_ascii_case("multipart/form-data") {
        BodyKind::Multipart(params)
    } else {
        BodyKind::Other
    }
}

fn gather_get(req: &RawRequest<'_>, kind: &BodyKind<'_>) -> Result<Gathered, ClassifyError> {
    if !req.body.is_empty() {
        return Err(bad("a GET request must not have a body"));
    }
    // Whether cPanel ignores the query of a GET declared as JSON is unverified: refuse.
    if matches!(kind, BodyKind::Json | BodyKind::JsonLike) {
        return Err(bad("a GET request must not declare a JSON body"));
    }
    query_pairs(req.query)
}

fn gather_post(req: &RawRequest<'_>, kind: &BodyKind<'_>, target: &Target) -> Result<Gathered, ClassifyError> {
    if let BodyKind::Multipart(params) = kind {
        return gather_multipart(req, params, target);
    }
    if memmem::find(req.body, b"\r\n").is_some() {
        return Err(bad("the body contains CRLF (cPanel would read it as multipart)"));
    }
    match kind {
        BodyKind::Json => gather_json(req),
        BodyKind::JsonLike => Err(bad("JSON bodies need Content-Type exactly application/json")),
        BodyKind::Form => {
            let mut gathered = query_pairs(req.query)?;
            parse_urlencoded(req.body, &mut gathered.pairs)?;
            Ok(gathered)
        }
        BodyKind::Other | BodyKind::Multipart(_) if req.body.is_empty() => query_pairs(req.query),
        BodyKind::Other | BodyKind::Multipart(_) => Err(bad("unsupported Content-Type for a body")),
    }
}

/// cPanel ignores the query entirely with a JSON body, so a query there is ambiguous.
fn gather_json(req: &RawRequest<'_>) -> Result<Gathered, ClassifyError> {
    if req.query.is_some_and(|q| !q.is_empty()) {
        return Err(bad(
            "a JSON body cannot be combined with a query string (cPanel ignores it)",
        ));
    }
    Ok(Gathered {
        pairs: json::parse_object(req.body, "JSON body")?,
        files: Vec::new(),
    })
}

fn gather_multipart(req: &RawRequest<'_>, params: &str, target: &Target) -> Result<Gathered, ClassifyError> {
    let is_upload =
        matches!(target, Target::Uapi { module, function } if module == "Fileman" && function == "upload_files");
    if !is_upload {
        return Err(bad("multipart bodies are accepted only for Fileman::upload_files"));
    }
    let mut gathered = query_pairs(req.query)?;
    let parts = multipart::parse(params, req.body, gathered.pairs.len())?;
    multipart::check_field_names(&gathered.pairs, &parts)?;
    gathered.pairs.extend(parts.fields);
    gathered.files = parts.files;
    Ok(gathered)
}

/// The raw query must be printable ASCII (an HTTP request target cannot carry anything else).
fn query_pairs(query: Option<&str>) -> Result<Gathered, ClassifyError> {
    let query = query.unwrap_or_default();
    if !query.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("invalid character in the query string"));
    }
    let mut gathered = Gathered::default();
    parse_urlencoded(query.as_bytes(), &mut gathered.pairs)?;
    Ok(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_body_kinds() {
        assert_eq!(body_kind(None), BodyKind::Form);
        assert_eq!(body_kind(Some("application/json")), BodyKind::Json);
        assert_eq!(body_kind(Some("Application/JSON")), BodyKind::JsonLike);
        assert_eq!(body_kind(Some("application/json; charset=utf-8")), BodyKind::JsonLike);
        assert_eq!(body_kind(Some("application/json ")), BodyKind::JsonLike);
        assert_eq!(
            body_kind(Some("APPLICATION/x-www-form-urlencoded; charset=UTF-8")),
            BodyKind::Form
        );
        assert_eq!(
            body_kind(Some("multipart/form-data; boundary=x")),
            BodyKind::Multipart(" boundary=x")
        );
        assert_eq!(body_kind(Some("text/plain")), BodyKind::Other);
        assert_eq!(body_kind(Some("application/vnd.api+json")), BodyKind::Other);
    }
}
