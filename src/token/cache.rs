//! The verified-token cache: a bounded map from the SHA-256 of a whole token to the
//! [`Principal`] its verification produced, kept until the token's `exp` (plus the leeway), so
//! that a developer's repeated calls skip signature verification (20-100 µs per call for the
//! asymmetric algorithms).
//!
//! Owns: only the outcome of [`Verifier::verify`](super::Verifier::verify), a pure function of
//! (token, keys, rules, now). Each cache lives inside one `Verifier`, so a key reload (which
//! builds a new verifier) starts with an empty cache.
//!
//! Never: caches a refusal (a refused token is verified again each time); caches anything that
//! depends on the policy set or the revocation list (the caller checks those on every request,
//! so a revocation or a policy change takes effect at once); holds a token's text (only its
//! digest); grows past its capacity.
//!
//! Invariants: a hit is only returned while `now < exp + leeway`, the same rule `verify`
//! applies; every other time rule (`iat`, `nbf` not in the future) only turns from refusal to
//! acceptance as time passes, so a token accepted once stays acceptable until then. A hit is
//! keyed by the full 256-bit digest, so a different token cannot share an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::principal::Principal;

/// Shards (separate locks), to keep the worker threads off each other's lock.
const SHARDS: usize = 16;

/// Entries kept by default: a busy gateway's live tokens (about 200 bytes each).
pub const DEFAULT_CAPACITY: usize = 16_384;

/// A bounded cache of verified tokens; see the module docs.
pub struct TokenCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

type Shard = HashMap<[u8; 32], Entry>;

struct Entry {
    principal: Arc<Principal>,
    /// Unix seconds from which the token is refused (`exp` + leeway).
    valid_until: u64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

/// A token's cache key: the SHA-256 of its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    fn shard(&self) -> usize {
        usize::from(self.0[0]) % SHARDS
    }
}

impl TokenCache {
    /// A cache of at most `capacity` entries (rounded up to a multiple of the shard count;
    /// 0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    /// The principal cached for `key`, if it is still valid at `now_unix`. An entry found
    /// expired is dropped.
    pub fn get(&self, key: &TokenKey, now_unix: u64) -> Option<Arc<Principal>> {
        let mut shard = self.lock(key);
        let entry = shard.get(&key.0)?;
        if now_unix < entry.valid_until {
            return Some(Arc::clone(&entry.principal));
        }
        shard.remove(&key.0);
        None
    }

    /// Remembers a verified principal until `valid_until` (Unix seconds, exclusive). When the
    /// shard is full, expired entries go first, then an arbitrary one.
    pub fn insert(&self, key: TokenKey, principal: Arc<Principal>, valid_until: u64, now_unix: u64) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.lock(&key);
        if shard.len() >= self.per_shard && !shard.contains_key(&key.0) {
            shard.retain(|_, e| now_unix < e.valid_until);
            if shard.len() >= self.per_shard {
                // HashMap order is randomly seeded: an arbitrary victim, not an attacker's pick.
                if let Some(victim) = shard.keys().next().copied() {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(key.0, Entry { principal, valid_until });
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Number of entries (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, key: &TokenKey) -> std::sync::MutexGuard<'_, Shard> {
        // A shard is a plain map; a panic elsewhere cannot leave it half-updated in a way that
        // matters (at worst an entry is missing), so a poisoned lock is used as is.
        self.shards[key.shard()].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::DeveloperId;

    fn principal(jti: &str) -> Arc<Principal> {
        Arc::new(Principal {
            developer: DeveloperId::parse("alice").unwrap(),
            jti: jti.into(),
            scope: None,
            issued_at: 100,
            expires_at: 200,
        })
    }

    #[test]
    fn hits_until_valid_until_then_forgets() {
        let cache = TokenCache::new(64);
        let key = TokenKey::of("a.b.c");
        cache.insert(key, principal("j1"), 205, 150);
        assert_eq!(cache.get(&key, 204).unwrap().jti, "j1");
        assert!(cache.get(&key, 205).is_none());
        assert!(cache.is_empty(), "the expired entry is dropped");
        assert!(cache.get(&TokenKey::of("a.b.d"), 150).is_none());
    }

    #[test]
    fn stays_within_capacity() {
        let cache = TokenCache::new(SHARDS * 2);
        for i in 0..1000 {
            cache.insert(TokenKey::of(&format!("t{i}")), principal("j"), 10_000, 0);
        }
        assert!(cache.len() <= SHARDS * 2, "{}", cache.len());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = TokenCache::new(SHARDS);
        // Find two keys of the same shard.
        let first = TokenKey::of("t0");
        let second = (1..)
            .map(|i| TokenKey::of(&format!("t{i}")))
            .find(|k| k.shard() == first.shard())
            .unwrap();
        cache.insert(first, principal("old"), 50, 0);
        cache.insert(second, principal("new"), 500, 100);
        assert!(cache.get(&first, 100).is_none());
        assert_eq!(cache.get(&second, 100).unwrap().jti, "new");
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::new(0);
        let key = TokenKey::of("x");
        cache.insert(key, principal("j"), 500, 0);
        assert!(cache.get(&key, 1).is_none());
    }
}
