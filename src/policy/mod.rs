//! Developer policies: load one TOML file per developer, compile into a fast matcher, decide.
//!
//! Knows calls and principals, not HTTP; reads files only in its loader. Default deny.
//! STUB: owned by the policy work; signatures are the contract with the rest of the crate.

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
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// A grant worth a human look (escape-hatch functions), printed as `FILE:LINE: warning: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWarning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Per-developer rate limit from the policy's `[rate_limit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

/// One developer's compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub developer: DeveloperId,
    /// File name (`alice.toml`), used to name rules.
    pub file_name: Arc<str>,
    pub description: Option<String>,
    pub enabled: bool,
    pub expires: Option<OffsetDateTime>,
    pub source_ips: Option<Vec<ipnet::IpNet>>,
    pub client_secret_hash: Option<String>,
    pub max_token_ttl: Option<Duration>,
    pub account: String,
    pub rate_limit: Option<RateLimit>,
}

/// The inputs of one decision.
#[derive(Clone, Copy, Debug)]
pub struct DecisionRequest<'a> {
    pub call: &'a CpanelCall,
    pub method: Method,
    pub client_ip: IpAddr,
    /// The token's scope; `None` = no narrowing.
    pub scope: Option<&'a [CallPattern]>,
    pub now: OffsetDateTime,
}

/// A rule, named by file and 0-based index: `alice.toml allow[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub file: Arc<str>,
    pub kind: RuleKind,
    pub index: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Allow,
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
    Allow { rule: RuleRef },
    Deny { rule: Option<RuleRef>, why: String },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

impl Policy {
    /// Decides one call (and, for `Batch::strict`, every inner command).
    pub fn decide(&self, req: &DecisionRequest<'_>) -> Decision {
        let _ = req;
        Decision::Deny {
            rule: None,
            why: "policy engine not built yet".into(),
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
    pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<PolicySet, Vec<PolicyError>> {
        let _ = (dir, opts);
        Ok(PolicySet::default())
    }

    pub fn get(&self, developer: &str) -> Option<&Arc<Policy>> {
        self.by_developer.get(developer)
    }

    pub fn len(&self) -> usize {
        self.by_developer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_developer.is_empty()
    }

    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }
}
