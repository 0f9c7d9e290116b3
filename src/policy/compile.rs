//! Compiled rules: a policy's `allow` and `deny` rules in a shape that decides in time
//! independent of how many rules list exact names.
//!
//! Owns: [`Rules`] (built once per policy by the loader) and the call index that maps an exact
//! `(api, module, function)` to the rules naming it, beside the short list of rules that use
//! wildcards.
//! Never: reads files or parses TOML (the loader hands over validated patterns); allocates on
//! lookup.
//! Invariants: rule indices are the 0-based positions in the file (`allow[3]`), index lists are
//! sorted ascending and free of duplicates, and an exact pattern only ever sits in the exact
//! index, a wildcard pattern only in its rule's `wildcard` list.

use std::collections::HashMap;

use crate::call::{Api, CallPattern, Method};

/// The methods a rule applies to, as a two-bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Methods(u8);

impl Methods {
    pub(crate) const NONE: Methods = Methods(0);
    pub(crate) const ALL: Methods = Methods(0b11);

    fn bit(method: Method) -> u8 {
        match method {
            Method::Get => 0b01,
            Method::Post => 0b10,
        }
    }

    pub(crate) fn with(self, method: Method) -> Methods {
        Methods(self.0 | Self::bit(method))
    }

    pub(crate) fn contains(self, method: Method) -> bool {
        self.0 & Self::bit(method) != 0
    }
}

/// The call patterns of one rule, split by kind.
#[derive(Debug)]
pub(crate) struct RuleCalls {
    pub(crate) api: Api,
    /// Patterns without `*`; the index finds these, they are kept for `may_allow` and explain.
    pub(crate) exact: Vec<CallPattern>,
    /// Patterns with `*`: checked one by one, and never for an escape hatch in an allow rule.
    pub(crate) wildcard: Vec<CallPattern>,
}

impl RuleCalls {
    pub(crate) fn new(api: Api, patterns: Vec<CallPattern>) -> RuleCalls {
        let (exact, wildcard) = patterns.into_iter().partition(CallPattern::is_exact);
        RuleCalls { api, exact, wildcard }
    }

    pub(crate) fn matches_exact(&self, api: Api, module: &str, function: &str) -> bool {
        self.exact.iter().any(|p| p.matches(api, module, function))
    }

    pub(crate) fn matches_wildcard(&self, api: Api, module: &str, function: &str) -> bool {
        self.wildcard.iter().any(|p| p.matches(api, module, function))
    }

    fn all(&self) -> impl Iterator<Item = &CallPattern> {
        self.exact.iter().chain(&self.wildcard)
    }
}

/// One parameter constraint: the plain name must be present and every family member match.
#[derive(Debug)]
pub(crate) struct ParamConstraint {
    pub(crate) name: Box<str>,
    pub(crate) globs: Vec<Box<str>>,
}

/// A compiled `[[allow]]` rule.
#[derive(Debug)]
pub(crate) struct AllowRule {
    pub(crate) calls: RuleCalls,
    pub(crate) methods: Methods,
    pub(crate) params: Vec<ParamConstraint>,
}

/// A compiled `[[deny]]` rule (no parameter constraints, by contract).
#[derive(Debug)]
pub(crate) struct DenyRule {
    pub(crate) calls: RuleCalls,
    pub(crate) methods: Methods,
}

/// module -> function -> indices of the rules naming `module::function` exactly. Nested so
/// that a lookup borrows the call's `&str`s instead of building a key.
type ByName = HashMap<Box<str>, HashMap<Box<str>, Vec<u32>>>;

/// Exact names -> rule indices, per api, plus the rules that have wildcard patterns.
#[derive(Debug, Default)]
pub(crate) struct CallIndex {
    exact: [ByName; 2],
    wildcard: [Vec<u32>; 2],
}

fn slot(api: Api) -> usize {
    match api {
        Api::Uapi => 0,
        Api::Api2 => 1,
    }
}

impl CallIndex {
    fn build<'a>(rules: impl Iterator<Item = &'a RuleCalls>) -> CallIndex {
        let mut index = CallIndex::default();
        for (i, calls) in rules.enumerate() {
            // Policies are small files; more than u32::MAX rules cannot be loaded.
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let s = slot(calls.api);
            for p in &calls.exact {
                let list = index.exact[s]
                    .entry(p.module().into())
                    .or_default()
                    .entry(p.function().into())
                    .or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            if !calls.wildcard.is_empty() {
                index.wildcard[s].push(i);
            }
        }
        index
    }

    /// Candidate rules for a call in ascending rule order, each with whether it names the call
    /// exactly. A rule reached only through `wildcard` must still match one of its wildcard
    /// patterns.
    pub(crate) fn candidates<'a>(&'a self, api: Api, module: &str, function: &str) -> Candidates<'a> {
        let s = slot(api);
        let exact = self.exact[s]
            .get(module)
            .and_then(|by_function| by_function.get(function))
            .map_or(&[][..], Vec::as_slice);
        Candidates {
            exact,
            wildcard: &self.wildcard[s],
        }
    }
}

/// A merge of two sorted index lists; a rule in both is yielded once, as exact.
pub(crate) struct Candidates<'a> {
    exact: &'a [u32],
    wildcard: &'a [u32],
}

impl Iterator for Candidates<'_> {
    /// `(rule index, named exactly)`
    type Item = (usize, bool);

    fn next(&mut self) -> Option<(usize, bool)> {
        match (self.exact.split_first(), self.wildcard.split_first()) {
            (Some((&e, e_rest)), Some((&w, w_rest))) => {
                if e <= w {
                    self.exact = e_rest;
                    if e == w {
                        self.wildcard = w_rest;
                    }
                    Some((e as usize, true))
                } else {
                    self.wildcard = w_rest;
                    Some((w as usize, false))
                }
            }
            (Some((&e, rest)), None) => {
                self.exact = rest;
                Some((e as usize, true))
            }
            (None, Some((&w, rest))) => {
                self.wildcard = rest;
                Some((w as usize, false))
            }
            (None, None) => None,
        }
    }
}

/// Every rule of one policy, compiled.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    pub(crate) allow: Vec<AllowRule>,
    pub(crate) deny: Vec<DenyRule>,
    pub(crate) allow_index: CallIndex,
    pub(crate) deny_index: CallIndex,
}

impl Rules {
    pub(crate) fn new(allow: Vec<AllowRule>, deny: Vec<DenyRule>) -> Rules {
        let allow_index = CallIndex::build(allow.iter().map(|r| &r.calls));
        let deny_index = CallIndex::build(deny.iter().map(|r| &r.calls));
        Rules {
            allow,
            deny,
            allow_index,
            deny_index,
        }
    }

    /// Every pattern of every allow rule, with the rule's methods (for `may_allow`).
    pub(crate) fn allow_patterns(&self) -> impl Iterator<Item = &CallPattern> {
        self.allow.iter().flat_map(|r| r.calls.all())
    }

    /// Every pattern of every deny rule that covers both methods.
    pub(crate) fn deny_all_methods_patterns(&self) -> impl Iterator<Item = &CallPattern> {
        self.deny
            .iter()
            .filter(|r| r.methods == Methods::ALL)
            .flat_map(|r| r.calls.all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(api: Api, patterns: &[&str]) -> RuleCalls {
        RuleCalls::new(
            api,
            patterns.iter().map(|p| CallPattern::parse(api, p).unwrap()).collect(),
        )
    }

    #[test]
    fn candidates_merge_exact_and_wildcard_rules_in_file_order() {
        let rules = [
            calls(Api::Uapi, &["Email::*"]),
            calls(Api::Uapi, &["Email::add_pop", "Email::list_*"]),
            calls(Api::Uapi, &["DomainInfo::list_domains"]),
            calls(Api::Uapi, &["Email::add_pop", "Email::add_pop"]),
            calls(Api::Api2, &["Email::add_pop", "*::*"]),
        ];
        let index = CallIndex::build(rules.iter());
        let got: Vec<_> = index.candidates(Api::Uapi, "Email", "add_pop").collect();
        assert_eq!(got, vec![(0, false), (1, true), (3, true)]);
        let got: Vec<_> = index.candidates(Api::Uapi, "Nothing", "here").collect();
        assert_eq!(got, vec![(0, false), (1, false)]);
        let got: Vec<_> = index.candidates(Api::Api2, "Email", "add_pop").collect();
        assert_eq!(got, vec![(4, true)]);
    }

    #[test]
    fn methods_set_holds_what_was_added() {
        let m = Methods::NONE.with(Method::Get);
        assert!(m.contains(Method::Get));
        assert!(!m.contains(Method::Post));
        assert_eq!(m.with(Method::Post), Methods::ALL);
    }
}
