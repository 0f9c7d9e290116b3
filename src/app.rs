//! The running gateway's state, built once from a [`Config`] and handed to the pipeline:
//! keys, the policy snapshot, the rate-limit store, the audit log and the upstream clients.
//!
//! Invariant: the policy set, the verifier (with its key ring) and the revocation set are each
//! replaced whole (all-or-nothing reload); each request reads one snapshot of each. A failed
//! reload keeps what was in force.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::{AuditLog, AuditOptions, Event, Record};
use crate::config::Config;
use crate::forward::Upstream;
use crate::metrics::Metrics;
use crate::policy::{LoadOptions, PolicySet};
use crate::ratelimit::{Limit, MemoryStore, RateLimitStore};
use crate::token::revocation::{self, Target};
use crate::token::{ClientAuth, KeyRing, Revocations, TokenRules, Verifier};

/// Everything a request needs, shared by all connections.
pub struct App {
    pub config: Config,
    pub policies: ArcSwap<PolicySet>,
    /// The verifier and its key ring; swapped whole when keys are reloaded (SIGHUP).
    pub verifier: ArcSwap<Verifier>,
    /// Revoked tokens; swapped whole when the revocation file changes.
    pub revocations: ArcSwap<Revocations>,
    /// The throttled client-secret check of `POST /oauth/token`.
    pub client_auth: ClientAuth,
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
    #[error("{0}")]
    Revocations(#[from] crate::token::revocation::RevocationError),
    #[error("token endpoint: {0}")]
    ClientAuth(String),
}

impl App {
    /// Loads keys, policies, the audit log and the upstream clients.
    pub async fn build(config: Config) -> Result<App, StartError> {
        let t = &config.tokens;
        let keys = Arc::new(KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys)?);
        let verifier = Verifier::new(keys, token_rules(&config));
        if let Some(dir) = t.revocations.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| revocation::RevocationError {
                path: dir.to_owned(),
                message: format!("cannot create folder: {e}"),
            })?;
        }
        let entries = revocation::read(&t.revocations)?;
        let (revocations, _) = Revocations::default().merged(&entries, now_unix(), revocation_lifetime(&config));
        let client_auth = ClientAuth::new().map_err(StartError::ClientAuth)?;
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
            verifier: ArcSwap::from_pointee(verifier),
            revocations: ArcSwap::from_pointee(revocations),
            client_auth,
            limiter: Box::new(MemoryStore::new()),
            audit,
            upstreams,
            metrics: Metrics::new(),
            config,
        })
    }

    /// The key ring in force (issue with it; it changes on a key reload).
    pub fn keys(&self) -> Arc<KeyRing> {
        self.verifier.load().keys().clone()
    }

    /// Re-reads `[tokens]` `key_file`, `key_id` and `verify_keys` from the config file and
    /// swaps in a new key ring (key rotation without a restart). All-or-nothing: on any error
    /// the keys in force stay. Other settings of the file are not reloaded; changing
    /// `tokens.algorithm` needs a restart. Returns the accepted kids.
    pub fn reload_keys(&self) -> Result<Vec<String>, String> {
        let fresh = Config::load(&self.config.path).map_err(|e| e.to_string())?;
        let t = &fresh.tokens;
        if t.algorithm != self.config.tokens.algorithm {
            return Err(format!(
                "tokens.algorithm changed from {} to {}: restart to change the algorithm",
                self.config.tokens.algorithm, t.algorithm
            ));
        }
        let keys = KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys).map_err(|e| e.to_string())?;
        let mut kids: Vec<String> = keys.kids().map(str::to_owned).collect();
        kids.sort_unstable();
        self.verifier
            .store(Arc::new(Verifier::new(Arc::new(keys), token_rules(&self.config))));
        Ok(kids)
    }

    /// Re-reads the revocation file and adds what is new (nothing is forgotten before it
    /// expires, whatever the file says); writes a `token_revoked` record for each new entry.
    /// Returns the number of new entries.
    pub async fn reload_revocations(&self) -> Result<usize, String> {
        let entries = revocation::read(&self.config.tokens.revocations).map_err(|e| e.to_string())?;
        let lifetime = revocation_lifetime(&self.config);
        let (set, fresh) = self.revocations.load().merged(&entries, now_unix(), lifetime);
        self.revocations.store(Arc::new(set));
        for entry in &fresh {
            let (developer, jti) = match &entry.target {
                Target::Jti(jti) => (None, Some(jti.clone())),
                Target::Developer(dev) => (Some(dev.to_string()), None),
            };
            tracing::info!(
                developer = developer.as_deref().unwrap_or("-"),
                jti = jti.as_deref().unwrap_or("-"),
                "revocation picked up"
            );
            let record = Record {
                event: Some(Event::TokenRevoked),
                developer,
                jti,
                decision: Some("deny"),
                reason: Some(match entry.target {
                    Target::Jti(_) => format!("token revoked at {}", entry.revoked_at),
                    Target::Developer(_) => format!("every token issued at or before {} revoked", entry.revoked_at),
                }),
                ..Record::default()
            };
            if let Err(e) = self.audit.append(record).await {
                tracing::error!(error = %e, "could not audit a revocation (it is in force)");
            }
        }
        Ok(fresh.len())
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

/// How long a revocation entry matters (seconds): the longest a token issued before it can
/// still be accepted, `max_ttl` + 2 x `leeway` (its `iat` may be a leeway ahead, its `exp` is
/// accepted a leeway late).
pub fn revocation_lifetime(config: &Config) -> u64 {
    let t = &config.tokens;
    t.max_ttl.as_secs().saturating_add(t.leeway.as_secs().saturating_mul(2))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
