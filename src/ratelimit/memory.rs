//! The in-memory store: one governor GCRA limiter per developer, in this process. Also the
//! Redis store's local fallback.
//!
//! Keyed only by authenticated, known developers, so an attacker cannot grow the map.
//! Invariant: a developer's limiter is replaced only when their quota changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Check, Limit, RateLimitStore, Refusal};
use crate::principal::DeveloperId;

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Each known developer's quota and limiter.
type Limiters<C> = HashMap<DeveloperId, (Limit, Arc<Direct<C>>)>;

/// One governor limiter per developer, in this process.
pub struct MemoryStore<C: Clock = DefaultClock> {
    clock: C,
    limiters: RwLock<Limiters<C>>,
}

impl MemoryStore<DefaultClock> {
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for MemoryStore<DefaultClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock + Clone> MemoryStore<C> {
    /// A store on an explicit clock (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            limiters: RwLock::new(HashMap::new()),
        }
    }

    fn limiter(&self, developer: &DeveloperId, limit: Limit) -> Arc<Direct<C>> {
        if let Ok(map) = self.limiters.read() {
            if let Some((l, limiter)) = map.get(developer.as_str()) {
                if *l == limit {
                    return limiter.clone();
                }
            }
        }
        let quota = Quota::per_minute(limit.per_minute).allow_burst(limit.burst);
        let fresh = Arc::new(RateLimiter::direct_with_clock(quota, self.clock.clone()));
        match self.limiters.write() {
            Ok(mut map) => {
                let entry = map.entry(developer.clone()).or_insert_with(|| (limit, fresh.clone()));
                if entry.0 != limit {
                    *entry = (limit, fresh);
                }
                entry.1.clone()
            }
            // A poisoned lock only means another thread panicked mid-insert; the limiter is
            // still correct to use, just not remembered.
            Err(_) => fresh,
        }
    }

    /// Forgets developers that are no longer known (after a policy reload).
    pub fn retain(&self, known: impl Fn(&DeveloperId) -> bool) {
        if let Ok(mut map) = self.limiters.write() {
            map.retain(|d, _| known(d));
        }
    }
}

impl<C: Clock + Clone> MemoryStore<C> {
    /// Takes one cell for `developer`; `Err(wait)` when over the limit. Never waits.
    pub fn check_now(&self, developer: &DeveloperId, limit: Limit) -> Result<(), Duration> {
        let limiter = self.limiter(developer, limit);
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl<C> RateLimitStore for MemoryStore<C>
where
    C: Clock + Clone + Send + Sync,
    C::Instant: Send + Sync,
{
    fn check<'a>(&'a self, developer: &'a DeveloperId, limit: Limit) -> Check<'a> {
        Box::pin(std::future::ready(
            self.check_now(developer, limit).map_err(Refusal::Limited),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::num::NonZeroU32;

    fn limit(per_minute: u32, burst: u32) -> Limit {
        Limit {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn burst_then_refill_at_the_per_minute_rate() {
        let clock = FakeRelativeClock::default();
        let store = MemoryStore::with_clock(clock.clone());
        let alice = DeveloperId::parse("alice").unwrap();
        let l = limit(60, 3);
        for _ in 0..3 {
            assert!(store.check_now(&alice, l).is_ok());
        }
        let wait = store.check_now(&alice, l).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        clock.advance(Duration::from_secs(1));
        assert!(store.check_now(&alice, l).is_ok());
        assert!(store.check_now(&alice, l).is_err());
    }

    #[test]
    fn developers_have_separate_allowances() {
        let store = MemoryStore::with_clock(FakeRelativeClock::default());
        let (a, b) = (DeveloperId::parse("a").unwrap(), DeveloperId::parse("b").unwrap());
        let l = limit(1, 1);
        assert!(store.check_now(&a, l).is_ok());
        assert!(store.check_now(&a, l).is_err());
        assert!(store.check_now(&b, l).is_ok());
    }

    #[test]
    fn a_changed_quota_takes_effect_immediately() {
        let store = MemoryStore::with_clock(FakeRelativeClock::default());
        let a = DeveloperId::parse("a").unwrap();
        assert!(store.check_now(&a, limit(1, 1)).is_ok());
        assert!(store.check_now(&a, limit(1, 1)).is_err());
        assert!(store.check_now(&a, limit(60, 5)).is_ok());
    }
}
