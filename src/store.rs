//! The shared Redis store (`rate_limit.store = "redis://..."`): one multiplexed connection per
//! instance (redis-rs `ConnectionManager`, which reconnects by itself), a timeout on every
//! command, and the store's health: whether Redis answered lately, with a backoff between
//! attempts while it does not.
//!
//! Owns: connecting, timing out, and counting store errors (`cpgate_store_errors_total`,
//! `cpgate_store_up`). Logs a lost store once (warn) and its return once (info), not per request.
//! Never: block an async worker (every call is async and bounded by [`COMMAND_TIMEOUT`]), put
//! the URL's password in a log line or error message.
//!
//! Users: `ratelimit::RedisStore` (the GCRA script) and `token::shared_revocations`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A parsed `redis://` or `rediss://` URL. It may carry a password, so `Debug` and `Display`
/// show it without one; [`RedisUrl::expose`] gives the full URL to the client only.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Parses a URL the Redis client accepts: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or
    /// `rediss://...` for TLS (rustls, system and webpki roots).
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err("expected a redis:// or rediss:// URL".into());
        }
        if url.contains('#') {
            return Err("a URL fragment (such as #insecure) is not accepted".into());
        }
        redis::Client::open(url)
            .map(|_| RedisUrl(url.to_owned()))
            .map_err(|_| "not a valid redis:// or rediss:// URL (HOST[:PORT][/DB])".into())
    }

    /// The whole URL, password included: for the Redis client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for `rediss://`.
    pub fn is_tls(&self) -> bool {
        self.0.starts_with("rediss://")
    }
}

impl std::fmt::Display for RedisUrl {
    /// The URL with any user info replaced by `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("redis", &self.0));
        match rest.rsplit_once('@') {
            Some((_, host)) => write!(f, "{scheme}://***@{host}"),
            None => write!(f, "{scheme}://{rest}"),
        }
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Time allowed to open a connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed for one command (or script) to answer, reconnection included.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// First wait after a failure before the request path tries Redis again; doubles per failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts while Redis is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a store operation failed. The text names the failure, never the URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Redis is in backoff after a failure: not tried this time.
    #[error("the Redis store is unavailable (backing off)")]
    BackingOff,
    #[error("the Redis store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // RedisError's Display carries the kind and server message, not the connection URL.
        StoreError::Redis(e.to_string())
    }
}

/// The store series of the metrics registry (see `metrics::Metrics::store`).
#[derive(Clone, Debug, Default)]
pub struct StoreMetrics {
    /// Failed store operations.
    pub errors: Counter,
    /// Rate-limit decisions made without the store (local fallback or 503).
    pub fallbacks: Counter,
    /// 1 while the store answers, 0 after a failure until it answers again.
    pub up: Gauge,
}

/// A connection to the shared store, cheap to share (`Arc`).
pub struct Shared {
    url: RedisUrl,
    client: redis::Client,
    manager: ConnectionManager,
    health: Mutex<Health>,
    metrics: StoreMetrics,
}

#[derive(Debug)]
struct Health {
    down: bool,
    failures: u32,
    /// While down: when the request path may try again.
    retry_at: Instant,
}

impl Shared {
    /// Prepares the connection without opening it (the first command connects), so an instance
    /// starts even while Redis is down. Must run inside a tokio runtime.
    pub fn connect(url: &RedisUrl, metrics: StoreMetrics) -> Result<Arc<Shared>, StoreError> {
        let client = redis::Client::open(url.expose())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        metrics.up.set(1);
        Ok(Arc::new(Shared {
            url: url.clone(),
            client,
            manager,
            health: Mutex::new(Health {
                down: false,
                failures: 0,
                retry_at: Instant::now(),
            }),
            metrics,
        }))
    }

    /// The URL without its password (for logs).
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// The client, for connections of their own (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// True while the store is considered down (after a failure, until a success).
    pub fn is_down(&self) -> bool {
        self.health.lock().map_or(true, |h| h.down)
    }

    /// Runs `op` on the shared connection within [`COMMAND_TIMEOUT`], recording the outcome in
    /// the store's health. While the store is down and in backoff, fails at once with
    /// [`StoreError::BackingOff`] without contacting Redis (so requests never queue behind a
    /// dead store); once the backoff ends, the next call is the probe.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.may_try() {
            return Err(StoreError::BackingOff);
        }
        self.attempt(op).await
    }

    /// Like [`Shared::run`] but ignores the backoff (background sync, which has its own pace).
    pub async fn attempt<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, op(self.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::from(e)),
            Err(_) => Err(StoreError::Timeout(COMMAND_TIMEOUT)),
        };
        match &result {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
        result
    }

    /// Whether the request path may contact Redis now; a probe pushes the next try back by a
    /// command timeout, so that only one request at a time waits on a store that is down.
    fn may_try(&self) -> bool {
        let Ok(mut h) = self.health.lock() else {
            return true;
        };
        if !h.down {
            return true;
        }
        let now = Instant::now();
        if now < h.retry_at {
            return false;
        }
        h.retry_at = now + COMMAND_TIMEOUT;
        true
    }

    /// Records a success: a store that was down is announced back (once).
    pub fn succeeded(&self) {
        let Ok(mut h) = self.health.lock() else { return };
        if h.down {
            tracing::info!(store = %self.url, "the Redis store answers again; shared limits are back in force");
            h.down = false;
            h.failures = 0;
            self.metrics.up.set(1);
        }
    }

    /// Records a failure: counted always, logged only when the store goes down.
    pub fn failed(&self, error: &StoreError) {
        if *error == StoreError::BackingOff {
            return;
        }
        self.metrics.errors.inc();
        let Ok(mut h) = self.health.lock() else { return };
        if !h.down {
            tracing::warn!(
                store = %self.url,
                %error,
                "the Redis store is unreachable; retrying with backoff (see rate_limit.on_store_error)"
            );
            h.down = true;
            self.metrics.up.set(0);
        } else {
            tracing::debug!(store = %self.url, %error, "the Redis store is still unreachable");
        }
        h.failures = h.failures.saturating_add(1);
        h.retry_at = Instant::now() + backoff(h.failures);
    }
}

/// The wait after `failures` consecutive failures: 100 ms doubling up to 5 s.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_5s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(7), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_fast_then_backs_off() {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let url = RedisUrl::parse("redis://127.0.0.1:1/0").unwrap();
        let shared = Shared::connect(&url, StoreMetrics::default()).unwrap();
        let started = Instant::now();
        let first = shared
            .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await;
        assert!(
            matches!(first, Err(StoreError::Redis(_) | StoreError::Timeout(_))),
            "{first:?}"
        );
        assert!(started.elapsed() <= COMMAND_TIMEOUT + Duration::from_millis(500));
        assert!(shared.is_down());
        assert_eq!(shared.metrics().up.get(), 0);
        let second = shared
            .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await;
        assert_eq!(second, Err(StoreError::BackingOff));
        assert_eq!(shared.metrics().errors.get(), 1, "a skipped attempt is not an error");
    }

    #[test]
    fn the_url_is_shown_without_its_password() {
        let url = RedisUrl::parse("redis://user:hunter2secret@cache.internal:6380/2").unwrap();
        assert_eq!(url.to_string(), "redis://***@cache.internal:6380/2");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "redis://user:hunter2secret@cache.internal:6380/2");
    }
}
