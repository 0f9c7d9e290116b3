//! Failure throttles for the token endpoint: a keyed GCRA that counts only *failed* client
//! authentications, and can be asked "is this key throttled?" without spending anything.
//!
//! Why not governor: governor has no way to look at a key's state without consuming a cell, so
//! every attempt (successful ones too) would count, or a second "blocked until" map would be
//! needed anyway. This is the same algorithm (GCRA: a theoretical arrival time per key), with
//! an explicit clock so the tests need no sleeps.
//!
//! Never: grow without bound (at most `capacity` keys; when full, keys that have fully
//! recovered are dropped first, and a key that still does not fit is not tracked, which only
//! weakens the per-address limit: the per-client limit, keyed by known developers, always fits),
//! panic on a poisoned lock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Allows `burst` failures at once, then one per `interval`, per key.
pub struct Throttle<K> {
    interval: Duration,
    burst: u32,
    capacity: usize,
    /// Per key, the theoretical arrival time of the next failure (GCRA's TAT).
    state: Mutex<HashMap<K, Instant>>,
}

impl<K: Eq + Hash + Clone> Throttle<K> {
    /// A throttle of `burst` failures at once, refilled one per `interval`, tracking at most
    /// `capacity` keys.
    pub fn new(burst: u32, interval: Duration, capacity: usize) -> Self {
        Self {
            interval,
            burst: burst.max(1),
            capacity: capacity.max(1),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when one more failure for `key` would exceed the allowance at `now`: the
    /// caller refuses the attempt (429, `Retry-After: wait`) without checking the secret.
    pub fn throttled(&self, key: &K, now: Instant) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let tat = *state.get(key)?;
        let ahead = tat.checked_duration_since(now)?;
        let tolerance = self.interval * (self.burst - 1);
        ahead.checked_sub(tolerance).filter(|wait| !wait.is_zero())
    }

    /// Records one failure for `key` at `now`.
    pub fn fail(&self, key: &K, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.contains_key(key) && state.len() >= self.capacity {
            state.retain(|_, tat| *tat > now);
            if state.len() >= self.capacity {
                tracing::warn!("token endpoint failure throttle is full; a new key is not tracked");
                return;
            }
        }
        let tat = state.entry(key.clone()).or_insert(now);
        *tat = (*tat).max(now) + self.interval;
    }

    /// Number of keys tracked.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The throttle key of a client address: an IPv4 address, or the /64 of an IPv6 address (one
/// host usually owns a whole /64, so per-address keys would be free to rotate).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_failures_then_throttled_until_one_refills() {
        let t = Throttle::new(3, Duration::from_secs(10), 16);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.throttled(&"a", now), None);
            t.fail(&"a", now);
        }
        let wait = t.throttled(&"a", now).unwrap();
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(t.throttled(&"b", now), None, "keys are separate");
        assert_eq!(t.throttled(&"a", now + Duration::from_secs(10)), None);
    }

    #[test]
    fn peeking_spends_nothing() {
        let t = Throttle::new(1, Duration::from_secs(10), 16);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(t.throttled(&"a", now), None);
        }
        t.fail(&"a", now);
        assert!(t.throttled(&"a", now).is_some());
    }

    #[test]
    fn the_key_map_stays_bounded_and_drops_recovered_keys_first() {
        let t = Throttle::new(1, Duration::from_secs(10), 2);
        let now = Instant::now();
        t.fail(&1, now);
        t.fail(&2, now);
        t.fail(&3, now);
        assert_eq!(t.len(), 2, "a third active key is not tracked");
        let later = now + Duration::from_secs(11);
        t.fail(&3, later);
        assert_eq!(t.len(), 1, "recovered keys were dropped to make room");
        assert!(t.throttled(&3, later).is_some());
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
