//! Revocations shared through the Redis store, so that a revocation made on any instance (or
//! by `cpgate token revoke` on any host) reaches every instance within a second.
//!
//! In Redis: a sorted set `cpgate:revocations` (member `jti:ID` or `dev:ID`, score = revoked_at
//! in Unix seconds), a counter `cpgate:revocations:version` bumped by every change, and a
//! pub/sub channel `cpgate:revocations` carrying `MEMBER REVOKED_AT` per new entry. One Lua
//! script adds entries atomically (a developer entry only moves forward), drops entries older
//! than the longest token lifetime, publishes, bumps the version, and gives both keys that
//! lifetime as their TTL: nothing outlives the last token it could refuse.
//!
//! Each instance ([`SharedRevocations::follow`]) applies what the channel announces at once,
//! and every second compares the version counter: when it moved (a missed message) or after a
//! reconnection, it pulls the whole set, and pushes back whatever it knows that Redis lacks (a
//! Redis restarted without persistence is thus repopulated by the instances).
//!
//! Invariant: nothing here removes an entry from an instance's set; an unreachable Redis leaves
//! each instance with its last synced set plus its own file (revocations never fail open).
//! Never: block an async worker ([`push_blocking`] is for the CLI, outside any runtime).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::revocation::{check_jti, Revocation, Target};
use crate::config::RedisUrl;
use crate::principal::DeveloperId;
use crate::store::{backoff, Shared, StoreError, COMMAND_TIMEOUT, CONNECT_TIMEOUT};

/// The sorted set of revocations.
pub const SET_KEY: &str = "cpgate:revocations";
/// Bumped by every change of the set.
pub const VERSION_KEY: &str = "cpgate:revocations:version";
/// Where new entries are announced.
pub const CHANNEL: &str = "cpgate:revocations";
/// How often an instance compares the version counter.
pub const RESYNC_EVERY: Duration = Duration::from_secs(1);

/// KEYS[1]: the set; KEYS[2]: the version. ARGV[1]: lifetime (s); ARGV[2]: the channel;
/// ARGV[3..]: member, revoked_at pairs. Returns the number of entries added or moved forward.
const PUSH: &str = r"
local now = tonumber(redis.call('TIME')[1])
local lifetime = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - lifetime))
local added = 0
for i = 3, #ARGV, 2 do
  local member = ARGV[i]
  local at = tonumber(ARGV[i + 1])
  if at and at + lifetime > now then
    local old = tonumber(redis.call('ZSCORE', KEYS[1], member))
    if old == nil or at > old then
      redis.call('ZADD', KEYS[1], at, member)
      redis.call('PUBLISH', ARGV[2], member .. ' ' .. ARGV[i + 1])
      added = added + 1
    end
  end
end
if added > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[1], lifetime)
  redis.call('EXPIRE', KEYS[2], lifetime)
end
return added
";

/// The revocations part of the shared store.
pub struct SharedRevocations {
    shared: Arc<Shared>,
    push: redis::Script,
    /// Seconds a revocation matters (`max_ttl` + 2 x `leeway`).
    lifetime: u64,
}

/// What the pub/sub listener hands to the follower.
enum Event {
    /// (Re)subscribed: messages may have been missed, pull everything.
    Subscribed,
    Entry(Revocation),
}

impl SharedRevocations {
    /// Revocations on `shared`, each mattering `lifetime` seconds after its `revoked_at`.
    pub fn new(shared: Arc<Shared>, lifetime: u64) -> Self {
        Self {
            shared,
            push: redis::Script::new(PUSH),
            lifetime,
        }
    }

    /// Adds `entries` to the shared set and announces the new ones; returns how many were new.
    pub async fn push(&self, entries: &[Revocation]) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let invocation = invocation(&self.push, entries, self.lifetime);
        self.shared
            .attempt(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// The version counter and the whole set (entries that do not parse are skipped).
    pub async fn pull(&self) -> Result<(Option<i64>, Vec<Revocation>), StoreError> {
        let (version, members): (Option<i64>, Vec<(String, f64)>) = self
            .shared
            .attempt(|mut conn| async move {
                redis::pipe()
                    .get(VERSION_KEY)
                    .zrange_withscores(SET_KEY, 0, -1)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let entries = members
            .iter()
            .filter_map(|(member, at)| parse_member(member, *at as u64))
            .collect();
        Ok((version, entries))
    }

    async fn version(&self) -> Result<Option<i64>, StoreError> {
        self.shared
            .attempt(|mut conn| async move { redis::cmd("GET").arg(VERSION_KEY).query_async(&mut conn).await })
            .await
    }

    /// Runs until dropped (abort its task): applies announced entries at once, resyncs when the
    /// version moved or after a reconnection, and pushes back what `local()` holds that Redis
    /// lacks. `apply` receives entries that may already be known (it merges).
    pub async fn follow<L, A, Fut>(self: Arc<Self>, local: L, apply: A)
    where
        L: Fn() -> Vec<Revocation>,
        A: Fn(Vec<Revocation>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let _listener = AbortOnDrop(tokio::spawn(listen(self.shared.client().clone(), tx)));
        let mut tick = tokio::time::interval(RESYNC_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut synced: Option<Option<i64>> = None;
        // A whole pull is owed: after a (re)subscription or a failed check, until one succeeds.
        let mut owed = true;
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(Event::Entry(entry)) => {
                        apply(vec![entry]).await;
                        continue;
                    }
                    Some(Event::Subscribed) => owed = true,
                    // The listener ended (it only does when this task is going away).
                    None => return,
                },
                _ = tick.tick() => {}
            }
            match self.version().await {
                Ok(version) if owed || synced != Some(version) => {
                    synced = self.resync(&local, &apply).await;
                    owed = synced.is_none();
                }
                Ok(_) => {}
                Err(_) => owed = true,
            }
        }
    }

    /// Pulls the set, applies it, pushes back what is missing; returns the version synced.
    async fn resync<L, A, Fut>(&self, local: &L, apply: &A) -> Option<Option<i64>>
    where
        L: Fn() -> Vec<Revocation>,
        A: Fn(Vec<Revocation>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (version, remote) = self.pull().await.ok()?;
        let missing: Vec<Revocation> = local()
            .into_iter()
            .filter(|mine| {
                !remote
                    .iter()
                    .any(|theirs| theirs.target == mine.target && theirs.revoked_at >= mine.revoked_at)
            })
            .collect();
        apply(remote).await;
        if !missing.is_empty() {
            match self.push(&missing).await {
                Ok(n) => tracing::info!(entries = n, "pushed revocations the shared store lacked"),
                Err(e) => tracing::debug!(error = %e, "could not push revocations to the shared store"),
            }
            // The push moved the version: pull again at the next tick.
            return None;
        }
        Some(version)
    }
}

/// Adds `entries` to the shared set from outside a runtime (the CLI): one connection, bounded
/// by the connect and command timeouts. Returns how many were new.
pub fn push_blocking(url: &RedisUrl, entries: &[Revocation], lifetime: u64) -> Result<usize, StoreError> {
    let client = redis::Client::open(url.expose())?;
    let mut conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    conn.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    let script = redis::Script::new(PUSH);
    Ok(invocation(&script, entries, lifetime).invoke(&mut conn)?)
}

fn invocation<'a>(script: &'a redis::Script, entries: &[Revocation], lifetime: u64) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.key(SET_KEY);
    invocation.key(VERSION_KEY).arg(lifetime).arg(CHANNEL);
    for entry in entries {
        invocation.arg(member(&entry.target)).arg(entry.revoked_at);
    }
    invocation
}

/// Subscribes to the channel and forwards what it carries; reconnects with backoff.
async fn listen(client: redis::Client, tx: mpsc::Sender<Event>) {
    let mut failures = 0u32;
    loop {
        if let Ok(Ok(mut pubsub)) = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            if let Ok(Ok(())) = tokio::time::timeout(COMMAND_TIMEOUT, pubsub.subscribe(CHANNEL)).await {
                failures = 0;
                if tx.send(Event::Subscribed).await.is_err() {
                    return;
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    match parse_message(&payload) {
                        Some(entry) => {
                            if tx.send(Event::Entry(entry)).await.is_err() {
                                return;
                            }
                        }
                        None => tracing::warn!("ignored an invalid message on the revocation channel"),
                    }
                }
                tracing::debug!("revocation channel lost; resubscribing");
            }
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff(failures)).await;
    }
}

fn member(target: &Target) -> String {
    match target {
        Target::Jti(jti) => format!("jti:{jti}"),
        Target::Developer(dev) => format!("dev:{dev}"),
    }
}

fn parse_member(member: &str, revoked_at: u64) -> Option<Revocation> {
    let target = if let Some(jti) = member.strip_prefix("jti:") {
        check_jti(jti).ok()?;
        Target::Jti(jti.to_owned())
    } else {
        Target::Developer(DeveloperId::parse(member.strip_prefix("dev:")?).ok()?)
    };
    Some(Revocation { target, revoked_at })
}

fn parse_message(payload: &str) -> Option<Revocation> {
    let (member, at) = payload.split_once(' ')?;
    parse_member(member, at.parse().ok()?)
}

/// Aborts the task when dropped (the listener dies with its follower).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_messages_round_trip_and_bad_ones_are_refused() {
        let jti = Revocation {
            target: Target::Jti("abc-1".into()),
            revoked_at: 1700,
        };
        let dev = Revocation {
            target: Target::Developer(DeveloperId::parse("alice").unwrap()),
            revoked_at: 1800,
        };
        assert_eq!(parse_member(&member(&jti.target), 1700), Some(jti.clone()));
        assert_eq!(parse_message("dev:alice 1800"), Some(dev));
        for bad in ["jti:bad jti 1", "dev:Alice 1", "who:x 1", "jti:x", "jti:x -1", ""] {
            assert_eq!(parse_message(bad), None, "{bad:?}");
        }
    }
}
