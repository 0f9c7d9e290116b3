//! Per-developer rate limits (GCRA: a per-minute rate plus a burst) behind one small trait,
//! [`RateLimitStore`], with two stores:
//!
//! - [`MemoryStore`]: governor limiters in this process (`rate_limit.store = "memory"`);
//! - [`RedisStore`]: the same GCRA computed atomically in Redis by one Lua script, so that
//!   several instances share one allowance per developer (`store = "redis://..."`); when Redis
//!   cannot answer it decides per `on_store_error` (this instance's memory store, or a 503).
//!
//! Keyed only by authenticated, known developers, so an attacker cannot grow the state.
//! Never: block the async workers (the Redis store awaits a multiplexed connection with a
//! timeout), let a store failure escape as anything but a [`Refusal`] or a local decision.

mod memory;
mod redis;

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use crate::principal::DeveloperId;

/// A developer's allowance: `per_minute` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Limit {
    /// GCRA's emission interval (one cell per this) and delay tolerance (`burst - 1` cells),
    /// in microseconds, as governor computes them (`Quota::per_minute(n).allow_burst(b)`).
    pub fn gcra_micros(self) -> (u64, u64) {
        let interval = (60_000_000 / u64::from(self.per_minute.get())).max(1);
        (interval, interval.saturating_mul(u64::from(self.burst.get()) - 1))
    }
}

/// Why a call may not go on now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit: the next cell is available after this wait (429 `rate_limited`).
    Limited(Duration),
    /// The shared store could not decide and `on_store_error = "deny"` (503 `store_unavailable`).
    StoreUnavailable,
}

/// A decision in the making (boxed so that stores can sit behind `dyn`).
pub type Check<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// Where rate-limit state lives.
pub trait RateLimitStore: Send + Sync {
    /// Takes one cell for `developer` under `limit`, or says why not.
    fn check<'a>(&'a self, developer: &'a DeveloperId, limit: Limit) -> Check<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_parameters_match_governors_quota() {
        let l = |per_minute, burst| Limit {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        };
        assert_eq!(l(60, 10).gcra_micros(), (1_000_000, 9_000_000));
        assert_eq!(l(120, 1).gcra_micros(), (500_000, 0));
        assert_eq!(l(u32::MAX, 2).gcra_micros(), (1, 1));
    }
}
