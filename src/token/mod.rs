//! Credentials: the `Authorization` header forms, JWT verification and issuance, signing keys.
//!
//! Owns: parsing the three `Authorization` forms ([`parse_authorization`]), the key ring
//! ([`KeyRing`]: the signing key and every accepted verification key, by `kid`), access token
//! verification ([`Verifier`]) and issuance ([`issue`]), key generation ([`generate_key`]) and the
//! public JWK set ([`KeyRing::jwks`]); the broker side: the `POST /oauth/token` and JWKS routes
//! ([`endpoint`]), the verified-token cache ([`cache`]), client secrets and the throttled
//! verification gate ([`client_auth`]), and
//! the revocation file and set ([`revocation`]).
//!
//! Never: decode claims or headers into a map or `serde_json::Value`; follow a `kid` anywhere but
//! the in-memory key ring (it is never a path, URL or query); put a token, a claim value or key
//! material into an error, a log line or a `Debug` output; let the token choose the algorithm.
//!
//! Invariants:
//! - a token longer than [`MAX_TOKEN_LEN`] is refused before any decoding, and an `Authorization`
//!   value longer than [`MAX_AUTHORIZATION_LEN`] before any base64 decoding;
//! - verification is pinned to the configured [`Algorithm`]; every key in a [`KeyRing`] belongs
//!   to that algorithm and was checked when loaded (curve, RSA size, HMAC length);
//! - a [`principal::Principal`](crate::principal::Principal) only comes out of
//!   [`Verifier::verify`] after the signature, every header rule and every claim rule held;
//! - all time rules use the caller's clock (`now_unix`), never the system clock, so verification
//!   is a pure function of (token, keys, rules, now).
//!
//! What the caller still checks (it needs the policy set or the revocation list): the developer
//! has a policy, the lifetime is within its `max_token_ttl`, the `jti` is not revoked, and, for
//! `cpanel DEV:JWT` and `Basic`, [`check_claimed_developer`].

#![warn(missing_docs)]

mod authorization;
pub mod cache;
pub mod client_auth;
pub mod endpoint;
mod generate;
mod issue;
mod keys;
pub mod revocation;
pub mod shared_revocations;
mod spki;
mod throttle;
mod verify;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use authorization::{check_claimed_developer, parse_authorization, Credential, MAX_AUTHORIZATION_LEN};
pub use client_auth::{generate_client_secret, hash_client_secret, verify_client_secret, ClientAuth};
pub use endpoint::check_scope;
pub use generate::{generate_key, GeneratedKey};
pub use issue::{issue, IssuedToken};
pub use keys::{KeyRing, MIN_HMAC_KEY_LEN};
pub use revocation::{Revocation, Revocations};
pub use verify::{TokenRules, Verifier, MAX_JTI_LEN, MAX_SCOPE_ENTRIES};

/// The longest access token accepted (bytes), checked before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The configured signing algorithm; verification is pinned to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Algorithm {
    /// Ed25519.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 to 8192 bits.
    RS256,
    /// HMAC-SHA-256 with a shared secret of at least 32 bytes.
    HS256,
}

impl Algorithm {
    /// The JOSE name, as written in the `alg` header and in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }

    /// True for the algorithms with a public key (everything but HS256).
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Algorithm::HS256)
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a credential was refused. Every variant is a 401 `unauthenticated`; the reason is a fixed
/// string for logs and tests (it never contains the token, a claim value or key material).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential at all (no or empty `Authorization` value).
    #[error("no credential")]
    Missing,
    /// The `Authorization` value or the token's outer syntax is broken.
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// The token is well-formed but a header, signature or claim rule refused it.
    #[error("token rejected: {0}")]
    Rejected(&'static str),
}

/// Why keys could not be loaded or generated. Names the file, never the key material.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    /// The file (or folder) concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl KeyError {
    fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a token could not be issued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The key ring holds only public keys.
    #[error("the configured key cannot sign (a public key is verify-only)")]
    CannotSign,
    /// The requested lifetime exceeds `max_ttl` (or the developer's `max_token_ttl`).
    #[error("ttl {requested:?} is above the allowed maximum {max:?}")]
    TtlTooLong {
        /// The ttl asked for.
        requested: Duration,
        /// The maximum in force.
        max: Duration,
    },
    /// A lifetime under one second.
    #[error("ttl must be at least one second")]
    TtlTooShort,
    /// `now + ttl` does not fit a JWT time.
    #[error("ttl overflows the clock")]
    TtlOverflow,
    /// The scope is empty, has an empty entry, or an entry that is not a call pattern.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The token would exceed [`MAX_TOKEN_LEN`] (too long a scope).
    #[error("the token would be longer than 8 KiB (scope too long)")]
    TooLong,
    /// The signature could not be produced (or random bytes could not be drawn).
    #[error("signing failed: {0}")]
    Signing(&'static str),
}
