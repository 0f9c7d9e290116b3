//! The decision: one policy x one request -> allow (naming the rule) or deny (saying why).
//!
//! Owns: the order of checks of contract §4.1 (disabled, expired, source address, token scope,
//! deny rules, allow rules), the escape-hatch exact-grant rule, `Batch::strict` recursion, the
//! `why` text that `cpgate explain` prints, and the scope check `may_allow`.
//! Never: allocates on the allow path beyond cloning the rule name (`Arc<str>`); reads a clock
//! (`now` is an input); prints parameter values into `why` (they may be secrets).
//! Invariants: default deny; a deny rule beats every allow rule; a scope only narrows; a
//! wildcard never grants an escape hatch; every inner batch command is decided as if called
//! alone, with the same method, address and scope.

use std::net::IpAddr;

use crate::call::{family_name, value_glob, Api, CallPattern, CpanelCall, Params};

use super::compile::{AllowRule, RuleCalls};
use super::hatches::is_escape_hatch;
use super::{Decision, DecisionRequest, Policy, RuleKind, RuleRef};

/// Nesting allowed for `Batch::strict` (contract §4.3): a batch inside a batch inside a batch.
pub(crate) const MAX_BATCH_DEPTH: usize = 3;

pub(crate) fn decide(policy: &Policy, req: &DecisionRequest<'_>) -> Decision {
    if !policy.enabled {
        return deny(None, "the policy is disabled".into());
    }
    if let Some(expires) = policy.expires {
        if req.now >= expires {
            return deny(None, format!("the policy expired at {expires}"));
        }
    }
    if let Some(nets) = &policy.source_ips {
        if !address_allowed(nets, req.client_ip) {
            return deny(
                None,
                format!("client address {} is outside source_ips", req.client_ip.to_canonical()),
            );
        }
    }
    decide_call(policy, req, req.call, 0)
}

/// True when `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address) is in one of `nets`.
fn address_allowed(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let canonical = ip.to_canonical();
    nets.iter().any(|net| net.contains(&canonical) || net.contains(&ip))
}

/// Everything after the policy-wide checks, for one call at one batch depth.
fn decide_call(policy: &Policy, req: &DecisionRequest<'_>, call: &CpanelCall, depth: usize) -> Decision {
    if let Some(scope) = req.scope {
        if !scope.iter().any(|p| p.matches_call(call)) {
            return deny(None, format!("{call} is outside the token's scope"));
        }
    }
    if let Some(index) = matching_deny(policy, req, call) {
        let rule = policy.rule_ref(RuleKind::Deny, index);
        let why = format!("{call} is denied by {rule}");
        return deny(Some(rule), why);
    }
    let Some(index) = matching_allow(policy, req, call) else {
        return deny(None, explain_no_allow(policy, req, call));
    };
    if call.is_batch() || !call.batch.is_empty() {
        if depth >= MAX_BATCH_DEPTH && !call.batch.is_empty() {
            return deny(None, format!("batch nested deeper than {MAX_BATCH_DEPTH} levels"));
        }
        for (n, inner) in call.batch.iter().enumerate() {
            if let Decision::Deny { rule, why } = decide_call(policy, req, inner, depth + 1) {
                return deny(rule, format!("batch command {n} ({inner}): {why}"));
            }
        }
    }
    Decision::Allow {
        rule: policy.rule_ref(RuleKind::Allow, index),
    }
}

fn deny(rule: Option<RuleRef>, why: String) -> Decision {
    Decision::Deny { rule, why }
}

fn matching_deny(policy: &Policy, req: &DecisionRequest<'_>, call: &CpanelCall) -> Option<usize> {
    let (api, module, function) = (call.api, call.module.as_str(), call.function.as_str());
    policy
        .rules
        .deny_index
        .candidates(api, module, function)
        .find(|&(i, exact)| {
            policy.rules.deny.get(i).is_some_and(|rule| {
                rule.methods.contains(req.method) && (exact || rule.calls.matches_wildcard(api, module, function))
            })
        })
        .map(|(i, _)| i)
}

fn matching_allow(policy: &Policy, req: &DecisionRequest<'_>, call: &CpanelCall) -> Option<usize> {
    let (api, module, function) = (call.api, call.module.as_str(), call.function.as_str());
    let hatch = is_escape_hatch(api, module, function);
    policy
        .rules
        .allow_index
        .candidates(api, module, function)
        .find(|&(i, exact)| {
            policy.rules.allow.get(i).is_some_and(|rule| {
                (exact || (!hatch && rule.calls.matches_wildcard(api, module, function)))
                    && rule.methods.contains(req.method)
                    && check_params(rule, &call.params).is_ok()
            })
        })
        .map(|(i, _)| i)
}

/// Why a rule's parameter constraints reject a call.
enum ParamMiss<'a> {
    /// The plain name is absent (cPanel's single-value readers would see nothing).
    Missing(&'a str),
    /// This family member (`email-1`) matches none of the globs of constraint `name`.
    Mismatch { key: &'a str, globs: &'a [Box<str>] },
}

fn check_params<'a>(rule: &'a AllowRule, params: &'a Params) -> Result<(), ParamMiss<'a>> {
    for constraint in &rule.params {
        let name: &str = &constraint.name;
        if params.get(name).is_none() {
            return Err(ParamMiss::Missing(name));
        }
        for (key, value) in params.iter() {
            if family_name(key) == name && !constraint.globs.iter().any(|g| value_glob(g, value)) {
                return Err(ParamMiss::Mismatch {
                    key,
                    globs: &constraint.globs,
                });
            }
        }
    }
    Ok(())
}

/// How far an allow rule got with a call; larger is closer. Used only to explain a deny.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Nothing,
    OtherApi,
    HatchByWildcard,
    Method,
    Params,
}

fn reach(rule: &AllowRule, req: &DecisionRequest<'_>, call: &CpanelCall, hatch: bool) -> Reach {
    let (module, function) = (call.module.as_str(), call.function.as_str());
    let names = |calls: &RuleCalls, api: Api| {
        calls.matches_exact(api, module, function) || calls.matches_wildcard(api, module, function)
    };
    if rule.calls.api != call.api {
        return if names(&rule.calls, rule.calls.api) {
            Reach::OtherApi
        } else {
            Reach::Nothing
        };
    }
    if !rule.calls.matches_exact(call.api, module, function) {
        if !rule.calls.matches_wildcard(call.api, module, function) {
            return Reach::Nothing;
        }
        if hatch {
            return Reach::HatchByWildcard;
        }
    }
    if !rule.methods.contains(req.method) {
        return Reach::Method;
    }
    Reach::Params
}

/// The `why` of a default deny: which rule came closest and what stopped it.
fn explain_no_allow(policy: &Policy, req: &DecisionRequest<'_>, call: &CpanelCall) -> String {
    let hatch = is_escape_hatch(call.api, &call.module, &call.function);
    let mut best: Option<(Reach, usize)> = None;
    for (i, rule) in policy.rules.allow.iter().enumerate() {
        let r = reach(rule, req, call, hatch);
        if r > Reach::Nothing && best.is_none_or(|(b, _)| r > b) {
            best = Some((r, i));
        }
    }
    let head = format!("no allow rule matches {call}");
    let Some((reach, i)) = best else {
        return if policy.rules.allow.is_empty() {
            format!("{head} (the policy has no allow rules)")
        } else {
            head
        };
    };
    let rule_name = policy.rule_ref(RuleKind::Allow, i);
    let Some(rule) = policy.rules.allow.get(i) else {
        return head;
    };
    let detail = match reach {
        Reach::Nothing => return head,
        Reach::OtherApi => format!(
            "{rule_name} names it for {} only; {} is a separate namespace",
            rule.calls.api.as_str(),
            call.api.as_str()
        ),
        Reach::HatchByWildcard => format!(
            "{rule_name} matches it only through a wildcard, and {call} is an escape hatch that \
             is granted only by its exact name"
        ),
        Reach::Method => format!("{rule_name} does not allow the {} method", req.method.as_str()),
        Reach::Params => match check_params(rule, &call.params) {
            Err(ParamMiss::Missing(name)) => {
                format!("{rule_name} requires the parameter `{name}`, which is missing")
            }
            Err(ParamMiss::Mismatch { key, globs }) => {
                format!("{rule_name}: parameter `{key}` matches none of {globs:?}")
            }
            // Unreachable in practice: a rule passing every check would have allowed the call.
            Ok(()) => return head,
        },
    };
    format!("{head}; closest: {detail}")
}

/// True when some call matching `pattern` could be allowed by this policy's rules (ignoring
/// parameters, method, address, time): used to validate requested token scopes. Errs on the
/// side of `true` where pattern overlap is hard to decide; the decision itself is exact.
pub(crate) fn may_allow(policy: &Policy, pattern: &CallPattern) -> bool {
    let denied_whole = policy
        .rules
        .deny_all_methods_patterns()
        .any(|d| d.api == pattern.api && covers(d, pattern));
    if denied_whole {
        return false;
    }
    let exact_hatch = pattern.is_exact() && is_escape_hatch(pattern.api, pattern.module(), pattern.function());
    policy.rules.allow_patterns().any(|a| {
        a.api == pattern.api
            && if a.is_exact() {
                pattern.matches(a.api, a.module(), a.function())
            } else {
                !exact_hatch && overlaps(a, pattern)
            }
    })
}

/// True when every call `inner` matches is matched by `outer` (sure cases only).
fn covers(outer: &CallPattern, inner: &CallPattern) -> bool {
    if inner.is_exact() {
        return outer.matches(inner.api, inner.module(), inner.function());
    }
    let all = |s: &str| s.bytes().all(|b| b == b'*');
    (all(outer.module()) || outer.module() == inner.module())
        && (all(outer.function()) || outer.function() == inner.function())
}

/// True when some name matches both patterns.
fn overlaps(a: &CallPattern, b: &CallPattern) -> bool {
    globs_overlap(a.module().as_bytes(), b.module().as_bytes())
        && globs_overlap(a.function().as_bytes(), b.function().as_bytes())
}

/// Whether two name globs (`*` = any run of `[A-Za-z0-9_]`, other bytes literal) share a match.
/// Dynamic programming over positions: names are at most 128 bytes, so at most ~16k states.
fn globs_overlap(a: &[u8], b: &[u8]) -> bool {
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    // reach[i * width + j]: some string is matched by both a[..i] and b[..j]. Every index
    // written below is in bounds: `i + 1` only when `a[i]` exists, `j + 1` only when `b[j]` does.
    let mut reach = vec![false; (n + 1) * width];
    reach[0] = true;
    for i in 0..=n {
        for j in 0..=m {
            if !reach[i * width + j] {
                continue;
            }
            let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
            // A star may stop matching.
            if ca == Some(b'*') {
                reach[(i + 1) * width + j] = true;
            }
            if cb == Some(b'*') {
                reach[i * width + j + 1] = true;
            }
            match (ca, cb) {
                // A star eats the other side's literal (patterns hold only identifier bytes).
                (Some(b'*'), Some(c)) if c != b'*' => reach[i * width + j + 1] = true,
                (Some(c), Some(b'*')) if c != b'*' => reach[(i + 1) * width + j] = true,
                (Some(x), Some(y)) if x == y && x != b'*' => reach[(i + 1) * width + j + 1] = true,
                _ => {}
            }
        }
    }
    reach[n * width + m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_globs_overlap_when_some_name_matches_both() {
        let cases = [
            ("*", "Email", true),
            ("Email", "Email", true),
            ("Email", "Emails", false),
            ("list_*", "*_pops", true),
            ("list_*", "add_*", false),
            ("a*c", "*b*", true),
            ("*x", "y*", true),
            ("ab*", "a*c", true),
            ("abc", "a*d", false),
            ("**", "*", true),
        ];
        for (a, b, want) in cases {
            assert_eq!(globs_overlap(a.as_bytes(), b.as_bytes()), want, "{a} vs {b}");
            assert_eq!(globs_overlap(b.as_bytes(), a.as_bytes()), want, "{b} vs {a}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_clients_count_as_their_ipv4_address() {
        let nets: Vec<ipnet::IpNet> = vec!["203.0.113.0/24".parse().unwrap()];
        assert!(address_allowed(&nets, "::ffff:203.0.113.9".parse().unwrap()));
        assert!(address_allowed(&nets, "203.0.113.9".parse().unwrap()));
        assert!(!address_allowed(&nets, "::ffff:198.51.100.1".parse().unwrap()));
        assert!(!address_allowed(&nets, "2001:db8::1".parse().unwrap()));
    }
}
