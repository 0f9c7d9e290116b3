//! The policy loader: a folder of TOML files -> validated, compiled [`Policy`] values.
//!
//! Owns: the file format (raw structs with `deny_unknown_fields`), every validation rule of
//! contract §4, the `FILE:LINE: message` errors and the escape-hatch warnings.
//! Never: returns a partial set (any error anywhere = `Err` with every error found); echoes a
//! `client_secret_hash` into a message; follows sub-folders.
//! Invariants: every error carries the file and a 1-based line taken from the TOML spans; a
//! returned [`Policy`] has non-empty `calls` in every rule, valid patterns, known methods, an
//! account from the config and a `max_token_ttl` within `tokens.max_ttl`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use toml::Spanned;

use crate::call::{family_name, Api, CallPattern, Method};
use crate::principal::DeveloperId;

use super::compile::{AllowRule, DenyRule, Methods, ParamConstraint, RuleCalls, Rules};
use super::hatches::is_escape_hatch;
use super::{LoadOptions, Policy, PolicyError, PolicyWarning, RateLimit};

/// Policy files are hand-written and short; anything larger is a mistake (or an attack on the
/// reload path).
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

type Strings = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    description: Option<String>,
    enabled: Option<bool>,
    expires: Option<Spanned<toml::value::Datetime>>,
    source_ips: Option<Strings>,
    client_secret_hash: Option<Spanned<String>>,
    max_token_ttl: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    allow: Vec<RawAllow>,
    #[serde(default)]
    deny: Vec<RawDeny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_minute: Spanned<i64>,
    burst: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    api: Option<Spanned<String>>,
    calls: Strings,
    methods: Option<Strings>,
    params: Option<BTreeMap<Spanned<String>, Strings>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeny {
    api: Option<Spanned<String>>,
    calls: Strings,
    methods: Option<Strings>,
    /// Accepted by the parser only to say clearly that deny rules take no params.
    params: Option<Spanned<toml::Value>>,
}

/// Loads every policy file of `dir` (see [`super::PolicySet::load_dir`]).
pub(super) fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<(Vec<Policy>, Vec<PolicyWarning>), Vec<PolicyError>> {
    let whole_file = |file: &Path, message: String| PolicyError {
        file: file.to_path_buf(),
        line: 1,
        message,
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| vec![whole_file(dir, format!("cannot read policy folder: {e}"))])?;
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                if let Some(path) = policy_file(&entry.path()) {
                    paths.push(path);
                }
            }
            Err(e) => errors.push(whole_file(dir, format!("cannot list policy folder: {e}"))),
        }
    }
    paths.sort();

    let mut policies = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let text = match read_text(&path) {
            Ok(text) => text,
            Err(message) => {
                errors.push(whole_file(&path, message));
                continue;
            }
        };
        match parse_policy(&path, &text, opts) {
            Ok((policy, mut w)) => {
                policies.push(policy);
                warnings.append(&mut w);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok((policies, warnings))
    } else {
        Err(errors)
    }
}

/// `Some(path)` for a policy file: `*.toml`, not hidden (editor lock and swap files start with
/// `.`, and no developer id does), and a regular file (symlinks followed), not a folder.
fn policy_file(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str();
    if name.is_some_and(|n| n.starts_with('.')) || path.extension()? != "toml" {
        return None;
    }
    std::fs::metadata(path).ok()?.is_file().then(|| path.to_path_buf())
}

fn read_text(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read policy file: {e}"))?;
    if meta.len() > MAX_POLICY_BYTES {
        return Err(format!("policy file larger than {MAX_POLICY_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read policy file: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "policy file is not valid UTF-8".to_owned())
}

/// Parses and validates one policy (see [`Policy::from_toml`]).
pub(super) fn parse_policy(
    path: &Path,
    text: &str,
    opts: &LoadOptions,
) -> Result<(Policy, Vec<PolicyWarning>), Vec<PolicyError>> {
    let mut cx = Checker {
        path,
        text,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let file_name: Arc<str> = path
        .file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let developer = match DeveloperId::parse(stem) {
        Ok(id) => Some(id),
        Err(e) => {
            cx.error_at_line(1, format!("file name: {e}"));
            None
        }
    };
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(1, |s| cx.line(s.start));
            cx.error_at_line(line, e.message().trim_end().to_owned());
            return Err(cx.errors);
        }
    };
    let policy = cx.policy(raw, opts, file_name, developer);
    cx.errors.sort_by_key(|e| e.line);
    cx.warnings.sort_by_key(|w| w.line);
    match policy {
        Some(policy) if cx.errors.is_empty() => Ok((policy, cx.warnings)),
        _ => Err(cx.errors),
    }
}

/// Collects the errors and warnings of one file while validating it.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<PolicyError>,
    warnings: Vec<PolicyWarning>,
}

impl Checker<'_> {
    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let upto = self.text.as_bytes().get(..offset).unwrap_or(self.text.as_bytes());
        upto.iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn error_at_line(&mut self, line: usize, message: String) {
        self.errors.push(PolicyError {
            file: self.path.to_path_buf(),
            line,
            message,
        });
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        let line = self.line(span.start);
        self.error_at_line(line, message);
    }

    fn warn(&mut self, span: Range<usize>, message: String) {
        self.warnings.push(PolicyWarning {
            file: self.path.to_path_buf(),
            line: self.line(span.start),
            message,
        });
    }

    /// Validates every field (collecting every problem in `self.errors`); the result is only
    /// meaningful when there are none.
    fn policy(
        &mut self,
        raw: RawPolicy,
        opts: &LoadOptions,
        file_name: Arc<str>,
        developer: Option<DeveloperId>,
    ) -> Option<Policy> {
        let allow = raw
            .allow
            .into_iter()
            .enumerate()
            .filter_map(|(i, rule)| self.allow_rule(i, rule))
            .collect();
        let deny = raw.deny.into_iter().filter_map(|rule| self.deny_rule(rule)).collect();
        let expires = raw.expires.and_then(|e| self.expires(e));
        let source_ips = raw.source_ips.and_then(|s| self.source_ips(s));
        let client_secret_hash = raw.client_secret_hash.and_then(|h| self.secret_hash(h));
        let max_token_ttl = raw.max_token_ttl.and_then(|t| self.max_token_ttl(t, opts));
        let account = self.account(raw.account, opts);
        let rate_limit = raw.rate_limit.and_then(|r| self.rate_limit(r));
        Some(Policy {
            developer: developer?,
            file_name,
            description: raw.description,
            enabled: raw.enabled.unwrap_or(true),
            expires,
            source_ips,
            client_secret_hash,
            max_token_ttl,
            account,
            rate_limit,
            rules: Rules::new(allow, deny),
        })
    }

    fn expires(&mut self, raw: Spanned<toml::value::Datetime>) -> Option<OffsetDateTime> {
        let span = raw.span();
        let dt = raw.into_inner();
        let parsed = match (dt.date, dt.time, dt.offset) {
            (Some(_), Some(_), Some(_)) => OffsetDateTime::parse(&dt.to_string(), &Rfc3339).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                span,
                format!("expires = {dt}: expected a date-time with an offset, like 2027-03-31T00:00:00Z"),
            );
        }
        parsed
    }

    fn source_ips(&mut self, raw: Strings) -> Option<Vec<ipnet::IpNet>> {
        if raw.get_ref().is_empty() {
            self.error(raw.span(), "source_ips is empty; remove it to allow any address".into());
            return None;
        }
        let mut nets = Vec::new();
        for entry in raw.into_inner() {
            let s = entry.get_ref().trim();
            let net = s
                .parse::<ipnet::IpNet>()
                .ok()
                .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from));
            match net {
                Some(net) => nets.push(net.trunc()),
                None => self.error(
                    entry.span(),
                    format!("source_ips: {s:?} is not an IP address or CIDR block (like 203.0.113.0/24)"),
                ),
            }
        }
        Some(nets)
    }

    fn secret_hash(&mut self, raw: Spanned<String>) -> Option<String> {
        let parts: Vec<&str> = raw.get_ref().split('$').collect();
        // `$argon2id$v=19$m=..,t=..,p=..$SALT$HASH`: the version field is optional in PHC.
        let shaped = matches!(parts.as_slice(), ["", "argon2id", rest @ ..] if (3..=4).contains(&rest.len()))
            && parts.iter().skip(2).all(|p| !p.is_empty());
        if shaped {
            Some(raw.into_inner())
        } else {
            self.error(
                raw.span(),
                "client_secret_hash must be an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH)".into(),
            );
            None
        }
    }

    fn max_token_ttl(&mut self, raw: Spanned<String>, opts: &LoadOptions) -> Option<Duration> {
        let text = raw.get_ref().trim();
        let message = match humantime::parse_duration(text) {
            Err(_) => format!("max_token_ttl: {text:?} is not a duration (like 30s, 15m, 1h)"),
            Ok(d) if d.is_zero() => "max_token_ttl must be longer than zero".into(),
            Ok(d) if d > opts.max_ttl => format!(
                "max_token_ttl {} exceeds tokens.max_ttl {}",
                humantime::format_duration(d),
                humantime::format_duration(opts.max_ttl)
            ),
            Ok(d) => return Some(d),
        };
        self.error(raw.span(), message);
        None
    }

    fn account(&mut self, raw: Option<Spanned<String>>, opts: &LoadOptions) -> String {
        let Some(raw) = raw else {
            let default = "default".to_owned();
            if !opts.accounts.contains(&default) {
                self.error_at_line(
                    1,
                    "no account given and the config has no [upstream] (account \"default\")".into(),
                );
            }
            return default;
        };
        if !opts.accounts.contains(raw.get_ref()) {
            self.error(
                raw.span(),
                format!(
                    "unknown account {:?} (known: {})",
                    raw.get_ref(),
                    opts.accounts.join(", ")
                ),
            );
        }
        raw.into_inner()
    }

    fn rate_limit(&mut self, raw: RawRateLimit) -> Option<RateLimit> {
        let per_minute = self.positive("rate_limit.per_minute", raw.per_minute);
        let burst = self.positive("rate_limit.burst", raw.burst);
        Some(RateLimit {
            per_minute: per_minute?,
            burst: burst?,
        })
    }

    fn positive(&mut self, what: &str, raw: Spanned<i64>) -> Option<NonZeroU32> {
        let value = u32::try_from(*raw.get_ref()).ok().and_then(NonZeroU32::new);
        if value.is_none() {
            self.error(raw.span(), format!("{what} must be between 1 and {}", u32::MAX));
        }
        value
    }

    fn api(&mut self, raw: Option<Spanned<String>>) -> Option<Api> {
        let Some(raw) = raw else {
            return Some(Api::Uapi);
        };
        match raw.get_ref().as_str() {
            "uapi" => Some(Api::Uapi),
            "api2" => Some(Api::Api2),
            other => {
                self.error(
                    raw.span(),
                    format!("unknown api {other:?}: expected \"uapi\" or \"api2\""),
                );
                None
            }
        }
    }

    fn methods(&mut self, raw: Option<Strings>) -> Methods {
        let Some(raw) = raw else {
            return Methods::ALL;
        };
        if raw.get_ref().is_empty() {
            self.error(
                raw.span(),
                "methods is empty; remove it to allow both GET and POST".into(),
            );
        }
        let mut methods = Methods::NONE;
        for m in raw.into_inner() {
            match m.get_ref().as_str() {
                "GET" => methods = methods.with(Method::Get),
                "POST" => methods = methods.with(Method::Post),
                other => self.error(
                    m.span(),
                    format!("unknown method {other:?}: expected \"GET\" or \"POST\" (upper case)"),
                ),
            }
        }
        methods
    }

    /// Validates `calls` and warns for exact escape-hatch grants (allow rules only).
    fn calls(&mut self, api: Option<Api>, raw: Strings, warn_hatches: Option<usize>) -> Option<RuleCalls> {
        if raw.get_ref().is_empty() {
            self.error(raw.span(), "calls is empty; list at least one Module::function".into());
            return None;
        }
        let mut patterns = Vec::new();
        for entry in raw.into_inner() {
            let Some(api) = api else { continue };
            match CallPattern::parse(api, entry.get_ref()) {
                Ok(p) => {
                    if let Some(index) = warn_hatches {
                        if p.is_exact() && is_escape_hatch(p.api, p.module(), p.function()) {
                            self.warn(
                                entry.span(),
                                format!(
                                    "grants escape hatch {p} in allow[{index}]: this function amounts \
                                     to full control of the account"
                                ),
                            );
                        }
                    }
                    patterns.push(p);
                }
                Err(e) => {
                    let hint = if entry.get_ref().starts_with("api2:") {
                        " (write api = \"api2\" in the rule instead of the api2: prefix)"
                    } else {
                        ""
                    };
                    self.error(entry.span(), format!("calls: {e}{hint}"));
                }
            }
        }
        Some(RuleCalls::new(api?, patterns))
    }

    fn params(&mut self, raw: Option<BTreeMap<Spanned<String>, Strings>>) -> Vec<ParamConstraint> {
        let mut out = Vec::new();
        for (name, globs) in raw.unwrap_or_default() {
            let n = name.get_ref();
            if n.is_empty() {
                self.error(name.span(), "params: empty parameter name".into());
                continue;
            }
            if family_name(n) != n {
                self.error(
                    name.span(),
                    format!(
                        "params: {n:?} is a member of the family {:?}; constrain {:?} (it covers every member)",
                        family_name(n),
                        family_name(n)
                    ),
                );
                continue;
            }
            if globs.get_ref().is_empty() {
                self.error(
                    globs.span(),
                    format!("params: {n:?} has no globs; list at least one (\"*\" allows any value)"),
                );
                continue;
            }
            out.push(ParamConstraint {
                name: n.as_str().into(),
                globs: globs.into_inner().into_iter().map(|g| g.into_inner().into()).collect(),
            });
        }
        out
    }

    fn allow_rule(&mut self, index: usize, raw: RawAllow) -> Option<AllowRule> {
        let api = self.api(raw.api);
        let calls = self.calls(api, raw.calls, Some(index));
        let methods = self.methods(raw.methods);
        let params = self.params(raw.params);
        Some(AllowRule {
            calls: calls?,
            methods,
            params,
        })
    }

    fn deny_rule(&mut self, raw: RawDeny) -> Option<DenyRule> {
        if let Some(params) = raw.params {
            self.error(
                params.span(),
                "deny rules take no params: a deny matches api, calls and methods only".into(),
            );
        }
        let api = self.api(raw.api);
        let calls = self.calls(api, raw.calls, None);
        let methods = self.methods(raw.methods);
        Some(DenyRule { calls: calls?, methods })
    }
}
