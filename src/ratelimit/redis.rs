//! The Redis store: governor's GCRA, computed atomically in Redis so that every instance draws
//! on one allowance per developer.
//!
//! One Lua script per decision, sent as `EVALSHA` (redis-rs `Script`: the script is loaded once
//! and reloaded when Redis answers `NOSCRIPT`, e.g. after a restart). The script reads Redis's
//! own clock (`TIME`), so instances with skewed clocks still agree, and stores one key per
//! developer, `cpgate:rl:DEVELOPER`, holding the theoretical arrival time in microseconds, with
//! an expiry at that time (plus a second): an idle developer leaves nothing behind.
//!
//! When Redis cannot decide (unreachable, timeout, backing off): `on_store_error = "local"`
//! decides with this instance's [`MemoryStore`] (limits then hold per instance, not in total);
//! `"deny"` refuses with [`Refusal::StoreUnavailable`]. Either way the decision is counted
//! (`cpgate_store_fallbacks_total`) and the store's loss is logged once (see `store`).

use std::sync::Arc;
use std::time::Duration;

use super::{Check, Limit, MemoryStore, RateLimitStore, Refusal};
use crate::config::OnStoreError;
use crate::principal::DeveloperId;
use crate::store::{Shared, StoreError};

/// GCRA as governor does it (`gcra.rs`), in microseconds of Redis time.
/// KEYS[1]: the developer's key. ARGV[1]: emission interval T. ARGV[2]: tolerance tau =
/// T x (burst - 1). Returns {1, 0} when allowed, {0, wait} when not.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local earliest = tat - tolerance
if now < earliest then
  return {0, earliest - now}
end
local next_tat = tat + interval
local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl_ms)
return {1, 0}
";

/// Prefix of the rate-limit keys.
pub const KEY_PREFIX: &str = "cpgate:rl:";

/// Rate limits shared through Redis, with a per-instance fallback.
pub struct RedisStore {
    shared: Arc<Shared>,
    script: ::redis::Script,
    on_error: OnStoreError,
    fallback: MemoryStore,
}

impl RedisStore {
    pub fn new(shared: Arc<Shared>, on_error: OnStoreError) -> Self {
        Self {
            shared,
            script: ::redis::Script::new(GCRA),
            on_error,
            fallback: MemoryStore::new(),
        }
    }

    /// One decision: Redis's, else the fallback's per `on_store_error`.
    pub async fn decide(&self, developer: &DeveloperId, limit: Limit) -> Result<(), Refusal> {
        match self.shared_decision(developer, limit).await {
            Ok(decision) => decision,
            Err(error) => {
                self.shared.metrics().fallbacks.inc();
                tracing::debug!(developer = %developer, %error, "rate limit decided without the Redis store");
                match self.on_error {
                    OnStoreError::Local => self.fallback.check_now(developer, limit).map_err(Refusal::Limited),
                    OnStoreError::Deny => Err(Refusal::StoreUnavailable),
                }
            }
        }
    }

    async fn shared_decision(&self, developer: &DeveloperId, limit: Limit) -> Result<Result<(), Refusal>, StoreError> {
        let (interval, tolerance) = limit.gcra_micros();
        let key = format!("{KEY_PREFIX}{developer}");
        let script = &self.script;
        let (allowed, wait): (i64, i64) = self
            .shared
            .run(|mut conn| async move {
                let mut invocation = script.key(key);
                invocation.arg(interval).arg(tolerance);
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(if allowed == 1 {
            Ok(())
        } else {
            let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
            Err(Refusal::Limited(wait))
        })
    }
}

impl RateLimitStore for RedisStore {
    fn check<'a>(&'a self, developer: &'a DeveloperId, limit: Limit) -> Check<'a> {
        Box::pin(self.decide(developer, limit))
    }
}
