//! Developer policies: load one TOML file per developer, compile into a fast matcher, decide.
//!
//! Owns: the policy file format (contract §4), its loading and validation ([`PolicySet::load_dir`],
//! all-or-nothing, every error with its `FILE:LINE`), the compiled rules, the escape-hatch
//! table ([`is_escape_hatch`]) and the decision ([`Policy::decide`]).
//! Never: knows HTTP, tokens or the network; reads files outside its loader; reads a clock
//! (`now` is part of the [`DecisionRequest`]); panics on any input.
//! Invariants: default deny; deny rules beat allow rules; an escape hatch is allowed only by
//! an exact name; a token scope only narrows; a [`PolicySet`] is immutable once built (reload
//! builds a new one and swaps it whole).
//!
//! Layout: `load` (TOML -> validated [`Policy`]), `compile` (rule index), `decide` (checks and
//! the `why` text), `hatches` (escape-hatch table).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::call::{CallPattern, CpanelCall, Method};
use crate::principal::DeveloperId;

mod compile;
mod decide;
mod hatches;
mod load;
#[cfg(test)]
mod tests_decide;
#[cfg(test)]
mod tests_load;

pub use hatches::is_escape_hatch;

/// What the loader needs from the config to validate policies.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `tokens.max_ttl`: a policy's `max_token_ttl` may not exceed it.
    pub max_ttl: Duration,
    /// Known upstream account names (`default` for `[upstream]`, NAME for `[upstreams.NAME]`).
    pub accounts: Vec<String>,
}

/// One problem in one policy file, printed as `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct PolicyError {
    /// The policy file (or the folder, for a folder that cannot be read).
    pub file: PathBuf,
    /// 1-based line; 1 for problems of the file as a whole.
    pub line: usize,
    pub message: String,
}

/// A grant worth a human look (escape-hatch functions), printed as `FILE:LINE: warning: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWarning {
    pub file: PathBuf,
    /// 1-based line of the grant.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.file.display(), self.line, self.message)
    }
}

/// Per-developer rate limit from the policy's `[rate_limit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute.
    pub per_minute: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
}

/// One developer's compiled policy. Built only by the loader ([`PolicySet::load_dir`],
/// [`Policy::from_toml`]), so holding one means it was valid. `Debug` leaves out the
/// `client_secret_hash` (an offline-crackable verifier) and the compiled rules.
pub struct Policy {
    pub developer: DeveloperId,
    /// File name (`alice.toml`), used to name rules.
    pub file_name: Arc<str>,
    /// `description`, for people.
    pub description: Option<String>,
    /// `enabled` (default true): a disabled policy refuses every call and token request.
    pub enabled: bool,
    /// `expires`: from this instant on, every call and token request is refused.
    pub expires: Option<OffsetDateTime>,
    /// `source_ips`: client addresses allowed (`None` = any).
    pub source_ips: Option<Vec<ipnet::IpNet>>,
    /// `client_secret_hash`: an argon2id PHC string; enables `POST /oauth/token`.
    pub client_secret_hash: Option<String>,
    /// `max_token_ttl`, already checked to be <= `tokens.max_ttl`.
    pub max_token_ttl: Option<Duration>,
    /// `account` (default `default`): which upstream this developer acts on.
    pub account: String,
    /// `[rate_limit]`, or `None` for the config defaults.
    pub rate_limit: Option<RateLimit>,
    rules: compile::Rules,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("developer", &self.developer)
            .field("file_name", &self.file_name)
            .field("description", &self.description)
            .field("enabled", &self.enabled)
            .field("expires", &self.expires)
            .field("source_ips", &self.source_ips)
            .field(
                "client_secret_hash",
                &self.client_secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("max_token_ttl", &self.max_token_ttl)
            .field("account", &self.account)
            .field("rate_limit", &self.rate_limit)
            .field("allow_rules", &self.rules.allow.len())
            .field("deny_rules", &self.rules.deny.len())
            .finish()
    }
}

/// The inputs of one decision.
#[derive(Clone, Copy, Debug)]
pub struct DecisionRequest<'a> {
    /// The classified call (with its batch commands, if any).
    pub call: &'a CpanelCall,
    /// The request method (kept when forwarding).
    pub method: Method,
    /// The client's address; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub client_ip: IpAddr,
    /// The token's scope; `None` = no narrowing.
    pub scope: Option<&'a [CallPattern]>,
    /// The instant of the decision (compared with `expires`).
    pub now: OffsetDateTime,
}

/// A rule, named by file and 0-based index: `alice.toml allow[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// The policy's file name (`alice.toml`).
    pub file: Arc<str>,
    pub kind: RuleKind,
    /// 0-based position among the file's rules of that kind.
    pub index: usize,
}

/// Which list a rule is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `[[allow]]`
    Allow,
    /// `[[deny]]`
    Deny,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
        };
        write!(f, "{} {kind}[{}]", self.file, self.index)
    }
}

/// The outcome of a decision. `why` is a sentence for people (explain, logs, audit `reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this allow rule (for a batch: the rule granting `Batch::strict`).
    Allow { rule: RuleRef },
    /// Denied. `rule` is the deny rule that matched, or `None` for a default deny and the
    /// policy-wide checks (disabled, expired, address, scope).
    Deny { rule: Option<RuleRef>, why: String },
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

impl Policy {
    /// Decides one call (and, for `Batch::strict`, every inner command), in the order of
    /// contract §4.1: disabled, expired, source address, token scope, deny rules, allow rules.
    pub fn decide(&self, req: &DecisionRequest<'_>) -> Decision {
        decide::decide(self, req)
    }

    /// For token scope validation: true if some allow rule could allow a call matching
    /// `pattern` and no deny rule denies every such call. Ignores parameters, time and address;
    /// may answer `true` where wildcard overlap is subtle (a scope can only narrow anyway).
    pub fn may_allow(&self, pattern: &CallPattern) -> bool {
        decide::may_allow(self, pattern)
    }

    /// Parses and validates one policy from its text, as the loader does for `path` (whose
    /// file stem is the developer id). Returns the policy and its warnings, or every error.
    pub fn from_toml(
        path: &Path,
        text: &str,
        opts: &LoadOptions,
    ) -> Result<(Policy, Vec<PolicyWarning>), Vec<PolicyError>> {
        load::parse_policy(path, text, opts)
    }

    fn rule_ref(&self, kind: RuleKind, index: usize) -> RuleRef {
        RuleRef {
            file: Arc::clone(&self.file_name),
            kind,
            index,
        }
    }
}

/// All policies, immutable once built; reload builds a new set and swaps it whole.
#[derive(Debug, Default)]
pub struct PolicySet {
    by_developer: HashMap<DeveloperId, Arc<Policy>>,
    warnings: Vec<PolicyWarning>,
}

impl PolicySet {
    /// Loads every `*.toml` in `dir`. All-or-nothing: any error anywhere returns every error
    /// found (for `cpgate check`), and no set.
    /// Files are the `*.toml` regular files directly in `dir` (names starting with `.` and
    /// sub-folders are ignored); each file stem must be a valid developer id.
    pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<PolicySet, Vec<PolicyError>> {
        let (policies, warnings) = load::load_dir(dir, opts)?;
        let mut set = PolicySet::from_policies(policies);
        set.warnings = warnings;
        Ok(set)
    }

    /// A set from already-built policies (tests, embedding); a later policy for the same
    /// developer replaces an earlier one. No warnings.
    pub fn from_policies(policies: impl IntoIterator<Item = Policy>) -> PolicySet {
        let by_developer = policies
            .into_iter()
            .map(|p| (p.developer.clone(), Arc::new(p)))
            .collect();
        PolicySet {
            by_developer,
            warnings: Vec::new(),
        }
    }

    /// Every policy, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.by_developer.values()
    }

    /// The policy of `developer`, if it has a file.
    pub fn get(&self, developer: &str) -> Option<&Arc<Policy>> {
        self.by_developer.get(developer)
    }

    /// Number of developers with a policy.
    pub fn len(&self) -> usize {
        self.by_developer.len()
    }

    /// True when there is no policy at all.
    pub fn is_empty(&self) -> bool {
        self.by_developer.is_empty()
    }

    /// Warnings found while loading (exact escape-hatch grants), for `cpgate check` and logs.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }
}
