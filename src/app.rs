//! The running gateway's state, built once from a [`Config`] and handed to the pipeline:
//! keys, the policy snapshot, the rate-limit store, the audit log and the upstream clients.
//!
//! With `rate_limit.store = "redis://..."` it also holds the shared store: the rate limiter
//! draws on Redis, and revocations flow both ways between this instance (its file) and Redis
//! (see `token::shared_revocations`): new file entries are pushed, entries learned from Redis
//! are applied, audited, and appended to the file (so that a restart while Redis is down still
//! refuses them).
//!
//! Invariant: the policy set, the verifier (with its key ring) and the revocation set are each
//! replaced whole (all-or-nothing reload); each request reads one snapshot of each. A failed
//! reload keeps what was in force. Revocation merges are serialized (one writer at a time), so
//! the file watch and the Redis follower never lose each other's entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::audit::{AuditLog, AuditOptions, Event, Record};
use crate::config::{Config, StoreKind};
use crate::forward::Upstream;
use crate::metrics::Metrics;
use crate::policy::{LoadOptions, PolicySet};
use crate::ratelimit::{Limit, MemoryStore, RateLimitStore, RedisStore};
use crate::store::Shared;
use crate::token::revocation::{self, Revocation, Target};
use crate::token::shared_revocations::SharedRevocations;
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
    /// Revocations in the shared store, when `rate_limit.store` is Redis.
    pub shared_revocations: Option<Arc<SharedRevocations>>,
    /// The shared store's connection and health (`/readyz`), when `rate_limit.store` is Redis.
    pub store: Option<Arc<Shared>>,
    /// Held while the revocation set is merged and swapped.
    revocation_merge: Mutex<()>,
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
    #[error("rate_limit.store: {0}")]
    Store(#[from] crate::store::StoreError),
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
        let mut entries = revocation::read(&t.revocations)?;
        let lifetime = revocation_lifetime(&config);
        let metrics = Metrics::new();
        let (limiter, shared_revocations, store): (Box<dyn RateLimitStore>, _, _) = match &config.rate_limit.store {
            StoreKind::Memory => (Box::new(MemoryStore::new()), None, None),
            StoreKind::Redis(url) => {
                let shared = Shared::connect(url, metrics.store())?;
                let limiter = RedisStore::new(shared.clone(), config.rate_limit.on_store_error);
                let revocations = Arc::new(SharedRevocations::new(shared.clone(), lifetime));
                entries.extend(initial_shared_revocations(&revocations, &entries, &t.revocations, lifetime).await);
                (Box::new(limiter), Some(revocations), Some(shared))
            }
        };
        let (revocations, _) = Revocations::default().merged(&entries, now_unix(), lifetime);
        let client_auth = ClientAuth::new().map_err(StartError::ClientAuth)?;
        let policies = load_policies(&config).map_err(StartError::Policies)?;
        let options = AuditOptions {
            fsync: config.audit.fsync,
            max_file_size: config.audit.max_file_size,
        };
        let audit = AuditLog::open_with(&config.audit.file, options).await?;
        let mut upstreams = HashMap::new();
        for (name, up) in &config.upstreams {
            upstreams.insert(name.clone(), Upstream::new(up, config.server.workers)?);
        }
        Ok(App {
            policies: ArcSwap::from_pointee(policies),
            verifier: ArcSwap::from_pointee(verifier),
            revocations: ArcSwap::from_pointee(revocations),
            client_auth,
            limiter,
            shared_revocations,
            store,
            revocation_merge: Mutex::new(()),
            audit,
            upstreams,
            metrics,
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
    /// expires, whatever the file says); writes a `token_revoked` record for each new entry and
    /// shares the new entries through the Redis store, when there is one. Returns the number of
    /// new entries.
    pub async fn reload_revocations(&self) -> Result<usize, String> {
        let entries = revocation::read(&self.config.tokens.revocations).map_err(|e| e.to_string())?;
        let fresh = self.apply_revocations(&entries, "file").await;
        if let (Some(shared), false) = (&self.shared_revocations, fresh.is_empty()) {
            if let Err(e) = shared.push(&fresh).await {
                // The follower pushes them when Redis is back (it resyncs after reconnecting).
                tracing::warn!(error = %e, "could not share new revocations yet; they are in force here");
            }
        }
        Ok(fresh.len())
    }

    /// Applies revocations learned from the shared store: merged, audited, and appended to this
    /// instance's revocation file so that they survive a restart while Redis is unreachable.
    pub async fn apply_shared_revocations(&self, entries: Vec<Revocation>) {
        let fresh = self.apply_revocations(&entries, "redis").await;
        if fresh.is_empty() {
            return;
        }
        let path = self.config.tokens.revocations.clone();
        let lifetime = revocation_lifetime(&self.config);
        let written =
            tokio::task::spawn_blocking(move || revocation::append_all(&path, &fresh, now_unix(), lifetime)).await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not keep shared revocations in the file (in force here)"),
            Err(e) => tracing::error!(error = %e, "could not keep shared revocations in the file (in force here)"),
        }
    }

    /// Starts following the shared revocations (when the store is Redis); abort the task to stop.
    pub fn follow_shared_revocations(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let shared = self.shared_revocations.clone()?;
        let (local, apply) = (self.clone(), self.clone());
        Some(tokio::spawn(shared.follow(
            move || local.revocations.load().entries(),
            move |entries| {
                let app = apply.clone();
                async move { app.apply_shared_revocations(entries).await }
            },
        )))
    }

    /// Merges `entries` into the set in force and audits each new one; returns the new ones.
    async fn apply_revocations(&self, entries: &[Revocation], source: &'static str) -> Vec<Revocation> {
        let lifetime = revocation_lifetime(&self.config);
        let fresh = {
            let _merging = self
                .revocation_merge
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (set, fresh) = self.revocations.load().merged(entries, now_unix(), lifetime);
            if !fresh.is_empty() {
                self.revocations.store(Arc::new(set));
            }
            fresh
        };
        for entry in &fresh {
            let (developer, jti) = match &entry.target {
                Target::Jti(jti) => (None, Some(jti.clone())),
                Target::Developer(dev) => (Some(dev.to_string()), None),
            };
            tracing::info!(
                developer = developer.as_deref().unwrap_or("-"),
                jti = jti.as_deref().unwrap_or("-"),
                source,
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
        fresh
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

/// At start-up: the shared store's revocations that the file lacks, appended to the file (so
/// the file alone protects a restart while Redis is down). Bounded by the store's timeouts; an
/// unreachable store leaves the file's entries only, with a warning.
async fn initial_shared_revocations(
    shared: &SharedRevocations,
    known: &[Revocation],
    file: &std::path::Path,
    lifetime: u64,
) -> Vec<Revocation> {
    let remote = match shared.pull().await {
        Ok((_, remote)) => remote,
        Err(e) => {
            tracing::warn!(error = %e, "shared revocations unavailable at start; the file's are in force until Redis answers");
            return Vec::new();
        }
    };
    let (_, new) = Revocations::default()
        .merged(known, now_unix(), lifetime)
        .0
        .merged(&remote, now_unix(), lifetime);
    if !new.is_empty() {
        let (path, entries) = (file.to_owned(), new.clone());
        let written =
            tokio::task::spawn_blocking(move || revocation::append_all(&path, &entries, now_unix(), lifetime)).await;
        if !matches!(written, Ok(Ok(_))) {
            tracing::error!("could not keep shared revocations in the file (in force here)");
        }
    }
    new
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
