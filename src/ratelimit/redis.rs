//! The Redis store: governor's GCRA, computed atomically in Redis so that every instance draws
//! on one allowance per developer.
//!
//! Decisions are coalesced: a decision that arrives while a script call is in flight waits for
//! it, and all decisions that queued meanwhile go to Redis together in the next call (at most
//! [`MAX_BATCH`]), like the audit log's group commit. At low load every decision is a call of
//! its own (no added delay); under load one round trip and one script run serve many decisions.
//! The script decides them one after the other, atomically, on one reading of Redis's clock:
//! exactly as if they had reached Redis one by one within the same microsecond, so limits stay
//! exact across instances (a developer twice in one batch is decided twice, in order).
//!
//! One Lua script per batch, sent as `EVALSHA` (redis-rs `Script`: loaded once and reloaded
//! when Redis answers `NOSCRIPT`, e.g. after a restart). The script reads Redis's own clock
//! (`TIME`), so instances with skewed clocks still agree, and stores one key per developer,
//! `cpgate:rl:DEVELOPER`, holding the theoretical arrival time in microseconds, with an expiry at
//! that time (plus a second): an idle developer leaves nothing behind. A batch touches several
//! keys in one script, so the store needs one Redis (or a primary with replicas), not a
//! Redis Cluster (which `redis://` does not speak anyway).
//!
//! When Redis cannot decide (unreachable, timeout, backing off): `on_store_error = "local"`
//! decides with this instance's [`MemoryStore`] (limits then hold per instance, not in total);
//! `"deny"` refuses with [`Refusal::StoreUnavailable`]. Either way the decision is counted
//! (`cpgate_store_fallbacks_total`) and the store's loss is logged once (see `store`).
//! Never: waits longer than [`COMMAND_TIMEOUT`] for a decision; leaves a decision waiting on a
//! batch whose sender went away (the batch runs in its own task, not in a caller's future).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Check, Limit, MemoryStore, RateLimitStore, Refusal};
use crate::config::OnStoreError;
use crate::principal::DeveloperId;
use crate::store::{Shared, StoreError, COMMAND_TIMEOUT};

/// GCRA as governor does it (`gcra.rs`), in microseconds of Redis time, for each key in turn.
/// KEYS[i]: a developer's key. ARGV[2i-1]: its emission interval T; ARGV[2i]: its tolerance
/// tau = T x (burst - 1). Returns {allowed_1, wait_1, allowed_2, wait_2, ...}: {1, 0} when
/// allowed, {0, wait} when not.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local out = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local earliest = tat - tolerance
  if now < earliest then
    out[2 * i - 1] = 0
    out[2 * i] = earliest - now
  else
    local next_tat = tat + interval
    local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
    redis.call('SET', KEYS[i], string.format('%.0f', next_tat), 'PX', ttl_ms)
    out[2 * i - 1] = 1
    out[2 * i] = 0
  end
end
return out
";

/// Prefix of the rate-limit keys.
pub const KEY_PREFIX: &str = "cpgate:rl:";

/// Most decisions sent in one script call (keeps each script run short for Redis).
pub const MAX_BATCH: usize = 128;

/// Rate limits shared through Redis, with a per-instance fallback.
pub struct RedisStore {
    batcher: Arc<Batcher>,
    on_error: OnStoreError,
    fallback: MemoryStore,
}

/// The decisions waiting for Redis, and whether a task is sending them.
struct Batcher {
    shared: Arc<Shared>,
    script: ::redis::Script,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A flush task is running; it takes whatever is waiting until nothing is.
    flushing: bool,
}

/// One decision waiting for its batch.
struct Pending {
    key: String,
    interval: u64,
    tolerance: u64,
    answer: oneshot::Sender<Result<Result<(), Refusal>, StoreError>>,
}

impl RedisStore {
    pub fn new(shared: Arc<Shared>, on_error: OnStoreError) -> Self {
        Self {
            batcher: Arc::new(Batcher {
                shared,
                script: ::redis::Script::new(GCRA),
                queue: Mutex::new(Queue::default()),
            }),
            on_error,
            fallback: MemoryStore::new(),
        }
    }

    /// One decision: Redis's, else the fallback's per `on_store_error`.
    pub async fn decide(&self, developer: &DeveloperId, limit: Limit) -> Result<(), Refusal> {
        match self.shared_decision(developer, limit).await {
            Ok(decision) => decision,
            Err(error) => {
                self.batcher.shared.metrics().fallbacks.inc();
                tracing::debug!(developer = %developer, %error, "rate limit decided without the Redis store");
                match self.on_error {
                    OnStoreError::Local => self.fallback.check_now(developer, limit).map_err(Refusal::Limited),
                    OnStoreError::Deny => Err(Refusal::StoreUnavailable),
                }
            }
        }
    }

    /// Queues the decision, starts a flush task when none runs, and waits for the answer (at
    /// most [`COMMAND_TIMEOUT`]: a decision behind a slow batch gives up like a slow command).
    async fn shared_decision(&self, developer: &DeveloperId, limit: Limit) -> Result<Result<(), Refusal>, StoreError> {
        let (interval, tolerance) = limit.gcra_micros();
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            key: format!("{KEY_PREFIX}{developer}"),
            interval,
            tolerance,
            answer,
        };
        let start = {
            let mut queue = self.batcher.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(pending);
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start {
            tokio::spawn(Arc::clone(&self.batcher).flush());
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, answered).await {
            Ok(Ok(decision)) => decision,
            Ok(Err(_)) => Err(StoreError::Redis("the decision's batch was dropped".into())),
            Err(_) => Err(StoreError::Timeout(COMMAND_TIMEOUT)),
        }
    }
}

impl Batcher {
    /// Sends what is waiting, batch after batch, until nothing is.
    async fn flush(self: Arc<Self>) {
        // Should this task end early (dropped with the runtime), the next decision starts a
        // new one.
        let mut early = Early(Some(&self.queue));
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.flushing = false;
                    early.0 = None;
                    return;
                }
                let n = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..n).collect()
            };
            let answers = self.send(&batch).await;
            for (pending, answer) in batch.into_iter().zip(answers) {
                // A caller that gave up (timeout, request dropped) is not waiting any more.
                let _ = pending.answer.send(answer);
            }
        }
    }

    /// One script call for `batch`; one answer per decision, in order.
    async fn send(&self, batch: &[Pending]) -> Vec<Result<Result<(), Refusal>, StoreError>> {
        let mut invocation = self.script.prepare_invoke();
        for pending in batch {
            invocation.key(&pending.key);
        }
        for pending in batch {
            invocation.arg(pending.interval).arg(pending.tolerance);
        }
        let result: Result<Vec<i64>, StoreError> = self
            .shared
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await;
        match result {
            Ok(flat) if flat.len() == 2 * batch.len() => flat
                .chunks_exact(2)
                .map(|pair| Ok(decision(pair[0], pair[1])))
                .collect(),
            Ok(flat) => {
                let error = StoreError::Redis(format!(
                    "the rate-limit script answered {} values for {} decisions",
                    flat.len(),
                    batch.len()
                ));
                self.shared.failed(&error);
                vec![Err(error); batch.len()]
            }
            Err(error) => vec![Err(error); batch.len()],
        }
    }
}

/// The script's `{allowed, wait}` as a decision.
fn decision(allowed: i64, wait: i64) -> Result<(), Refusal> {
    if allowed == 1 {
        Ok(())
    } else {
        Err(Refusal::Limited(Duration::from_micros(
            u64::try_from(wait).unwrap_or(0),
        )))
    }
}

/// Clears `flushing` when a flush task ends before it emptied the queue.
struct Early<'a>(Option<&'a Mutex<Queue>>);

impl Drop for Early<'_> {
    fn drop(&mut self) {
        if let Some(queue) = self.0 {
            queue.lock().unwrap_or_else(PoisonError::into_inner).flushing = false;
        }
    }
}

impl RateLimitStore for RedisStore {
    fn check<'a>(&'a self, developer: &'a DeveloperId, limit: Limit) -> Check<'a> {
        Box::pin(self.decide(developer, limit))
    }
}
