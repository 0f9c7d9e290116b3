//! The cPanel call model: what a request *is* once classified, shared by classification,
//! policy, audit and the rebuilt upstream request.
//!
//! Invariants: a [`Params`] holds unique keys in first-seen order (cPanel's merged view, with
//! duplicates already renamed `name-0`, `name-1`, ...); a [`CpanelCall`] is only ever built by
//! `classify` (or by tests), so holding one means the request was unambiguous.

use std::fmt;

use bytes::Bytes;

/// Which of cPanel's two token-reachable APIs a call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/execute/Module/function`
    Uapi,
    /// `/json-api/cpanel` with `cpanel_jsonapi_apiversion=2`
    Api2,
}

impl Api {
    /// The name used in policies, scopes and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Uapi => "uapi",
            Api::Api2 => "api2",
        }
    }
}

/// The only two methods cpgate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Parameters as cPanel sees them after merging query and body: unique keys, first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    entries: Vec<(String, String)>,
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from already-unique pairs (tests, rebuilt batch arguments). A repeated key keeps
    /// its first value, as cPanel's plain-name reader would.
    pub fn from_unique_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Self::new();
        for (k, v) in pairs {
            let k = k.into();
            if params.get(&k).is_none() {
                params.entries.push((k, v.into()));
            }
        }
        params
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing an existing value in place (keeps its position).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every member of the family `name`, `name-0`, `name-1`, ... (in stored order).
    pub fn family<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.iter().filter(move |(k, _)| family_name(k) == name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The family a key belongs to: `email-12` -> `email`, `email` -> `email`, `a-b` -> `a-b`.
pub fn family_name(key: &str) -> &str {
    match key.rsplit_once('-') {
        Some((base, n)) if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

/// A file part of a `multipart/form-data` upload (`Fileman::upload_files` only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFile {
    /// The form field name (`file-1`, ...).
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// One classified cPanel call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpanelCall {
    pub api: Api,
    pub module: String,
    pub function: String,
    /// The call's parameters. API 2 selectors (`cpanel_jsonapi_*`) are not in here: they are
    /// the call's identity, rebuilt on forwarding. For `Batch::strict` the `command*` family is
    /// not in here either: it is [`CpanelCall::batch`].
    pub params: Params,
    /// `Batch::strict` inner commands in order (`command`, `command-0`, ...), each classified as
    /// if called alone.
    pub batch: Vec<CpanelCall>,
    /// Multipart file parts (only ever non-empty for `Fileman::upload_files`).
    pub files: Vec<UploadFile>,
}

impl CpanelCall {
    /// A call without batch commands or files.
    pub fn new(api: Api, module: impl Into<String>, function: impl Into<String>, params: Params) -> Self {
        Self {
            api,
            module: module.into(),
            function: function.into(),
            params,
            batch: Vec::new(),
            files: Vec::new(),
        }
    }

    /// `Module::function`
    pub fn name(&self) -> String {
        format!("{}::{}", self.module, self.function)
    }

    pub fn is_batch(&self) -> bool {
        self.api == Api::Uapi && self.module == "Batch" && self.function == "strict"
    }
}

impl fmt::Display for CpanelCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.api {
            Api::Uapi => write!(f, "{}::{}", self.module, self.function),
            Api::Api2 => write!(f, "api2:{}::{}", self.module, self.function),
        }
    }
}

/// A call pattern from a policy's `calls` or a token's `scope`: `Module::function` with `*`
/// matching any run (possibly empty) of `[A-Za-z0-9_]`; `api2:` prefix for API 2 in scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPattern {
    pub api: Api,
    module: String,
    function: String,
}

/// Why a call pattern could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid call pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl CallPattern {
    /// Parses `Module::function` for the given api (policy `calls` entries).
    pub fn parse(api: Api, pattern: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let (module, function) = pattern.split_once("::").ok_or(err("expected Module::function"))?;
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*')
        };
        if !valid(module) || !valid(function) {
            return Err(err("names may contain only letters, digits, '_' and '*'"));
        }
        Ok(Self {
            api,
            module: module.to_owned(),
            function: function.to_owned(),
        })
    }

    /// Parses one scope entry: `Module::function` (UAPI) or `api2:Module::function`.
    pub fn parse_scope(entry: &str) -> Result<Self, PatternError> {
        match entry.strip_prefix("api2:") {
            Some(rest) => Self::parse(Api::Api2, rest),
            None => Self::parse(Api::Uapi, entry),
        }
    }

    /// True when the pattern contains no `*`.
    pub fn is_exact(&self) -> bool {
        !self.module.contains('*') && !self.function.contains('*')
    }

    pub fn module(&self) -> &str {
        &self.module
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    pub fn matches(&self, api: Api, module: &str, function: &str) -> bool {
        self.api == api && name_glob(&self.module, module) && name_glob(&self.function, function)
    }

    pub fn matches_call(&self, call: &CpanelCall) -> bool {
        self.matches(call.api, &call.module, &call.function)
    }
}

impl fmt::Display for CallPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.api {
            Api::Uapi => write!(f, "{}::{}", self.module, self.function),
            Api::Api2 => write!(f, "api2:{}::{}", self.module, self.function),
        }
    }
}

/// `*` matches any run (possibly empty) of `[A-Za-z0-9_]`; everything else literally.
fn name_glob(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes(), |b| {
        b.is_ascii_alphanumeric() || b == b'_'
    })
}

/// A parameter-value glob: `*` matches any run of characters, the glob matches the whole value.
pub fn value_glob(pattern: &str, value: &str) -> bool {
    glob(pattern.as_bytes(), value.as_bytes(), |_| true)
}

/// Iterative wildcard match with single backtrack point: linear in practice, no recursion, so
/// attacker-chosen values cannot blow the stack or time.
fn glob(pattern: &[u8], text: &[u8], star_may_eat: impl Fn(u8) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            if !star_may_eat(text[st]) {
                return false;
            }
            p = sp + 1;
            t = st + 1;
            star = Some((sp, t));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_name_strips_only_numeric_suffixes() {
        assert_eq!(family_name("email"), "email");
        assert_eq!(family_name("email-0"), "email");
        assert_eq!(family_name("email-12"), "email");
        assert_eq!(family_name("a-b"), "a-b");
        assert_eq!(family_name("-1"), "-1");
        assert_eq!(family_name("x-"), "x-");
    }

    #[test]
    fn call_globs_match_identifier_runs_only() {
        let p = CallPattern::parse(Api::Uapi, "Email::list_*").unwrap();
        assert!(p.matches(Api::Uapi, "Email", "list_pops"));
        assert!(p.matches(Api::Uapi, "Email", "list_"));
        assert!(!p.matches(Api::Uapi, "Email", "add_pop"));
        assert!(!p.matches(Api::Api2, "Email", "list_pops"));
        assert!(!p.matches(Api::Uapi, "email", "list_pops"));
        let any = CallPattern::parse(Api::Uapi, "*::*").unwrap();
        assert!(any.matches(Api::Uapi, "Email", "x"));
        assert!(!any.matches(Api::Uapi, "Email", "x.y"));
    }

    #[test]
    fn value_globs_match_whole_values() {
        assert!(value_glob("*@example.com", "a@example.com"));
        assert!(value_glob("*@example.com", "@example.com"));
        assert!(!value_glob("*@example.com", "a@example.com.evil"));
        assert!(value_glob("a*b*c", "aXbYc"));
        assert!(!value_glob("a*b*c", "aXbY"));
        assert!(value_glob("exact", "exact"));
        assert!(!value_glob("exact", "exactly"));
    }

    #[test]
    fn scope_entries_parse_with_api_prefix() {
        let p = CallPattern::parse_scope("api2:ZoneEdit::fetchzone_records").unwrap();
        assert_eq!(p.api, Api::Api2);
        assert!(p.is_exact());
        assert!(CallPattern::parse_scope("Email").is_err());
        assert!(CallPattern::parse_scope("Email::a.b").is_err());
    }

    #[test]
    fn params_keep_first_value_and_order() {
        let mut p = Params::from_unique_pairs([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(p.get("a"), Some("1"));
        p.set("a-0", "x");
        p.set("b", "9");
        let all: Vec<_> = p.iter().collect();
        assert_eq!(all, vec![("a", "1"), ("b", "9"), ("a-0", "x")]);
        assert_eq!(p.family("a").count(), 2);
    }
}
