//! The running gateway's state, built once from a [`Config`] and handed to the pipeline:
//! keys, the policy snapshot, the rate-limit store, the audit log and the upstream clients.
//!
//! Invariant: the policy set is replaced whole (all-or-nothing reload); each request reads one
//! snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::{AuditLog, AuditOptions, Event, Record};
use crate::config::Config;
use crate::forward::Upstream;
use crate::metrics::Metrics;
use crate::policy::{LoadOptions, PolicySet};
use crate::ratelimit::{Limit, MemoryStore, RateLimitStore};
use crate::token::{KeyRing, TokenRules, Verifier};

/// Everything a request needs, shared by all connections.
pub struct App {
    pub config: Config,
    pub policies: ArcSwap<PolicySet>,
    pub keys: Arc<KeyRing>,
    pub verifier: Verifier,
    pub limiter: Box<dyn RateLimitStore>,
    pub audit: AuditLog,
    /// By account name (`default` for `[upstream]`).
    pub upstreams: HashMap<String, Upstream>,
    pub metrics: Metrics,
}

/// Why the gateway could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("signing keys: {0}")]
    Keys(#[from] crate::token::KeyError),
    #[error("policies are invalid:\n{0}")]
    Policies(String),
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("upstream TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl App {
    /// Loads keys, policies, the audit log and the upstream clients.
    pub async fn build(config: Config) -> Result<App, StartError> {
        let t = &config.tokens;
        let keys = Arc::new(KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys)?);
        let verifier = Verifier::new(keys.clone(), token_rules(&config));
        let policies = load_policies(&config).map_err(StartError::Policies)?;
        let options = AuditOptions {
            fsync: config.audit.fsync,
            max_file_size: config.audit.max_file_size,
        };
        let audit = AuditLog::open_with(&config.audit.file, options).await?;
        let mut upstreams = HashMap::new();
        for (name, up) in &config.upstreams {
            upstreams.insert(name.clone(), Upstream::new(up)?);
        }
        Ok(App {
            policies: ArcSwap::from_pointee(policies),
            keys,
            verifier,
            limiter: Box::new(MemoryStore::new()),
            audit,
            upstreams,
            metrics: Metrics::new(),
            config,
        })
    }

    /// The rate limit for a developer: the policy's, else the config defaults.
    pub fn limit_for(&self, policy: &crate::policy::Policy) -> Limit {
        match policy.rate_limit {
            Some(r) => Limit {
                per_minute: r.per_minute,
                burst: r.burst,
            },
            None => Limit {
                per_minute: self.config.rate_limit.default_per_minute,
                burst: self.config.rate_limit.default_burst,
            },
        }
    }

    /// Reloads the policy folder: all-or-nothing, the old set stays on any error. Audited.
    pub async fn reload_policies(&self) -> Result<usize, String> {
        let result = load_policies(&self.config);
        let record = Record {
            event: Some(Event::PolicyReload),
            decision: Some(if result.is_ok() { "ok" } else { "error" }),
            reason: result.as_ref().err().cloned(),
            ..Record::default()
        };
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(error = %e, "could not audit the policy reload");
        }
        self.metrics.policy_reload(result.is_ok());
        let set = result?;
        let count = set.len();
        self.policies.store(Arc::new(set));
        Ok(count)
    }
}

/// The token rules of a config.
pub fn token_rules(config: &Config) -> TokenRules {
    TokenRules {
        issuer: config.tokens.issuer.clone(),
        audience: config.tokens.audience.clone(),
        leeway: config.tokens.leeway,
        max_ttl: config.tokens.max_ttl,
    }
}

/// The loader options a config implies.
pub fn load_options(config: &Config) -> LoadOptions {
    LoadOptions {
        max_ttl: config.tokens.max_ttl,
        accounts: config.upstreams.keys().cloned().collect(),
    }
}

/// Loads the policy folder, joining every problem into one `FILE:LINE: message` per line.
pub fn load_policies(config: &Config) -> Result<PolicySet, String> {
    PolicySet::load_dir(&config.policies_dir, &load_options(config))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}
