//! OAuth client authentication for `POST /oauth/token`: client secrets, their argon2id hashes,
//! and a [`ClientAuth`] gate that keeps the endpoint from being used to burn CPU or guess
//! secrets.
//!
//! Owns: secret generation ([`generate_client_secret`]), hashing ([`hash_client_secret`],
//! argon2id with the crate's default parameters), and verification: off the async workers
//! (`spawn_blocking`), at most one per CPU at once (a semaphore), with
//! failed attempts throttled per client id and per source address before any hashing.
//!
//! Never: put a secret or a hash into an error, a log line or a `Debug` output; answer an
//! unknown client faster than a known one (it is checked against a dummy hash of the same
//! cost); hash an attempt that is already throttled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::throttle::{address_key, Throttle};

/// Random bytes in a generated client secret (256 bits).
const SECRET_BYTES: usize = 32;

/// The longest client secret looked at; longer ones are refused without hashing.
pub const MAX_CLIENT_SECRET_LEN: usize = 256;

/// Failed authentications allowed at once per client id, then one per 12 s (5 a minute).
const PER_CLIENT: (u32, Duration) = (5, Duration::from_secs(12));
/// Failed authentications allowed at once per source address, then one per 6 s (10 a minute).
const PER_ADDRESS: (u32, Duration) = (10, Duration::from_secs(6));
/// Addresses tracked at most (the per-client throttle only ever holds known ids + 1).
const MAX_TRACKED_ADDRESSES: usize = 65_536;
/// How long an attempt may wait for a hashing slot before it is told to come back.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// Why client authentication did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuthError {
    /// Unknown client, no secret configured, or a wrong secret (401 `invalid_client`).
    Invalid,
    /// Too many recent failures for this client id or address (429, `Retry-After`).
    Throttled(Duration),
    /// Every hashing slot stayed busy (503, `Retry-After: 1`).
    Busy,
}

/// Which throttle bucket a client id falls into: its own when it names a known developer,
/// otherwise one shared bucket, so that made-up ids cannot grow the map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A developer with a policy file.
    Known(String),
    /// Any id without a policy (or not a valid developer id).
    Unknown,
}

/// The gate in front of secret verification; one per running gateway.
pub struct ClientAuth {
    slots: Arc<Semaphore>,
    by_client: Throttle<ClientKey>,
    by_address: Throttle<IpAddr>,
    /// Verified against when the client is unknown or has no hash, to take the same time.
    dummy_hash: Arc<str>,
}

impl ClientAuth {
    /// A gate allowing as many concurrent verifications as there are CPUs (at least one).
    pub fn new() -> Result<Self, String> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let dummy = generate_client_secret()?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(cpus)),
            by_client: Throttle::new(PER_CLIENT.0, PER_CLIENT.1, 4096),
            by_address: Throttle::new(PER_ADDRESS.0, PER_ADDRESS.1, MAX_TRACKED_ADDRESSES),
            dummy_hash: hash_client_secret(&dummy)?.into(),
        })
    }

    /// Checks `secret` against `hash` (the policy's `client_secret_hash`; `None` = unknown
    /// client or no secret configured, always [`ClientAuthError::Invalid`] after the same work).
    pub async fn verify(
        &self,
        client: &ClientKey,
        ip: IpAddr,
        hash: Option<&str>,
        secret: Zeroizing<String>,
    ) -> Result<(), ClientAuthError> {
        let address = address_key(ip);
        let now = Instant::now();
        let wait = [
            self.by_client.throttled(client, now),
            self.by_address.throttled(&address, now),
        ];
        if let Some(wait) = wait.into_iter().flatten().max() {
            return Err(ClientAuthError::Throttled(wait));
        }
        let known = hash.is_some();
        let ok = if secret.len() > MAX_CLIENT_SECRET_LEN || secret.is_empty() {
            false
        } else {
            let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
            let permit = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned()).await;
            let Ok(Ok(permit)) = permit else {
                return Err(ClientAuthError::Busy);
            };
            let verified = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                verify_client_secret(&hash, secret.as_bytes())
            })
            .await;
            // A panicked or cancelled verification is a failure, never a success.
            verified.unwrap_or(false) && known
        };
        if ok {
            return Ok(());
        }
        let now = Instant::now();
        self.by_client.fail(client, now);
        self.by_address.fail(&address, now);
        Err(ClientAuthError::Invalid)
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("slots", &self.slots.available_permits())
            .field("clients_tracked", &self.by_client.len())
            .field("addresses_tracked", &self.by_address.len())
            .finish_non_exhaustive()
    }
}

/// A fresh client secret: 256 random bits, base64url without padding (43 characters, safe in
/// a form field and in HTTP Basic without any encoding).
pub fn generate_client_secret() -> Result<Zeroizing<String>, String> {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rngs::OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|_| "no randomness available".to_owned())?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
}

/// The argon2id PHC string of `secret` (argon2 crate defaults: m=19456 KiB, t=2, p=1, a random
/// 128-bit salt), for a policy's `client_secret_hash`.
pub fn hash_client_secret(secret: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| "no randomness available".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| "salt encoding failed".to_owned())?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| "hashing failed".to_owned())
}

/// True when `secret` matches the argon2id PHC string `hash` (constant-time comparison inside
/// the argon2 crate). A malformed hash never matches.
pub fn verify_client_secret(hash: &str, secret: &[u8]) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) if parsed.algorithm.as_str() == "argon2id" => {
            Argon2::default().verify_password(secret, &parsed).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_url_safe_and_distinct() {
        let a = generate_client_secret().unwrap();
        let b = generate_client_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(*a, *b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn a_hash_verifies_its_secret_only() {
        let hash = hash_client_secret("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_client_secret(&hash, b"s3cret"));
        assert!(!verify_client_secret(&hash, b"s3creT"));
        assert!(!verify_client_secret("$argon2id$garbage", b"s3cret"));
        assert!(!verify_client_secret("", b""));
    }

    #[tokio::test]
    async fn unknown_clients_fail_and_repeated_failures_are_throttled_before_hashing() {
        let gate = ClientAuth::new().unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let secret = || Zeroizing::new("guess".to_owned());
        let mut outcomes = Vec::new();
        for _ in 0..PER_CLIENT.0 + 1 {
            outcomes.push(gate.verify(&ClientKey::Unknown, ip, None, secret()).await);
        }
        assert!(outcomes[..PER_CLIENT.0 as usize]
            .iter()
            .all(|o| *o == Err(ClientAuthError::Invalid)));
        assert!(matches!(outcomes.last(), Some(Err(ClientAuthError::Throttled(_)))));
    }

    #[tokio::test]
    async fn the_right_secret_passes_and_counts_nothing() {
        let gate = ClientAuth::new().unwrap();
        let hash = hash_client_secret("right").unwrap();
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let key = ClientKey::Known("alice".into());
        for _ in 0..PER_CLIENT.0 + 2 {
            let got = gate.verify(&key, ip, Some(&hash), Zeroizing::new("right".into())).await;
            assert_eq!(got, Ok(()));
        }
    }
}
