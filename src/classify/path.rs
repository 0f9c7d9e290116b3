//! The request path (cpanel-wire.md §2): exactly `/execute/Module/function` or exactly
//! `/json-api/cpanel`, judged on the raw, undecoded bytes.
//!
//! Owns the name grammars for modules and functions. Never decodes, normalises or resolves
//! anything: a path cpsrvd would rewrite (percent-decoding, `//`, dot segments, `cpsess`
//! prefixes, trailing slashes) is refused, so what cpgate checks is what cpsrvd runs.

use super::{bad, ClassifyError};

/// What the path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// `/execute/Module/function`
    Uapi { module: String, function: String },
    /// `/json-api/cpanel` (the API version is decided by the parameters)
    Api2,
}

/// `[A-Za-z][A-Za-z0-9_]{0,63}`: a UAPI or API 2 module name.
pub fn is_module_name(s: &str) -> bool {
    name_matches(s, 64, |b| b.is_ascii_alphabetic())
}

/// `[A-Za-z0-9][A-Za-z0-9_]{0,127}`: a UAPI or API 2 function name.
pub fn is_function_name(s: &str) -> bool {
    name_matches(s, 128, |b| b.is_ascii_alphanumeric())
}

fn name_matches(s: &str, max: usize, first_ok: impl Fn(u8) -> bool) -> bool {
    let mut bytes = s.bytes();
    let first = bytes.next().is_some_and(first_ok);
    first && s.len() <= max && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads the raw path. 400 for anything malformed or that cpsrvd would rewrite; 403 for a
/// clean path that is plainly another document.
pub(super) fn classify_path(path: &str) -> Result<Target, ClassifyError> {
    check_characters(path)?;
    if path == "/" {
        return Err(other_document());
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.ends_with('/') {
        return Err(bad("the path must not end with '/'"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    check_segments(&segments)?;
    match segments.as_slice() {
        ["execute", module, function] => uapi_target(module, function),
        ["json-api", "cpanel"] => Ok(Target::Api2),
        [first, ..] if first.eq_ignore_ascii_case("execute") => Err(bad("expected /execute/Module/function")),
        [first, second, ..] if first.eq_ignore_ascii_case("json-api") && second.eq_ignore_ascii_case("cpanel") => {
            Err(bad("expected exactly /json-api/cpanel"))
        }
        _ => Err(other_document()),
    }
}

fn other_document() -> ClassifyError {
    ClassifyError::NotAnApiCall("only /execute/Module/function and /json-api/cpanel are API calls".into())
}

fn uapi_target(module: &str, function: &str) -> Result<Target, ClassifyError> {
    if !is_module_name(module) {
        return Err(bad("invalid module name in the path"));
    }
    if !is_function_name(function) {
        return Err(bad("invalid function name in the path"));
    }
    Ok(Target::Uapi {
        module: module.to_owned(),
        function: function.to_owned(),
    })
}

/// Origin-form only, and only RFC 3986 path characters minus `%` and `;` (cpsrvd decodes the
/// former and some servers treat the latter as a parameter separator).
fn check_characters(path: &str) -> Result<(), ClassifyError> {
    if !path.starts_with('/') {
        return Err(bad("the request target must be a path starting with '/'"));
    }
    if path.contains('%') {
        return Err(bad("percent-encoding is not allowed in the path"));
    }
    let clean = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b);
    if !path.bytes().all(clean) {
        return Err(bad("invalid character in the path"));
    }
    Ok(())
}

/// Segment rules: no empty (`//`) or dot segments, no session or cache-busting prefixes, and
/// no API keyword out of place (cpsrvd strips some prefixes; cpgate strips none).
fn check_segments(segments: &[&str]) -> Result<(), ClassifyError> {
    for (i, seg) in segments.iter().enumerate() {
        let lower = seg.to_ascii_lowercase();
        if seg.is_empty() {
            return Err(bad("empty path segment"));
        }
        if *seg == "." || *seg == ".." {
            return Err(bad("dot segments are not allowed in the path"));
        }
        if lower.starts_with("cpsess") || lower.starts_with("cpanel_magic_revision_") {
            return Err(bad("session and revision prefixes are not allowed in the path"));
        }
        if i > 0 && (lower == "execute" || lower == "json-api") {
            return Err(bad("expected /execute/Module/function or /json-api/cpanel"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar() {
        assert!(is_module_name("Email"));
        assert!(is_module_name(&"M".repeat(64)));
        assert!(!is_module_name(&"M".repeat(65)));
        assert!(!is_module_name("_Email"));
        assert!(!is_module_name("1Email"));
        assert!(!is_module_name(""));
        assert!(is_function_name("2fa_status"));
        assert!(is_function_name(&"f".repeat(128)));
        assert!(!is_function_name(&"f".repeat(129)));
        assert!(!is_function_name("_private"));
        assert!(!is_function_name("list-pops"));
    }
}
