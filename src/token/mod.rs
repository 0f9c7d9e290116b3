//! Credentials: the `Authorization` header forms, JWT verification and issuance, signing keys.
//!
//! Never: decode claims into a map, follow a `kid` anywhere but the in-memory key ring, log a
//! token. STUB: owned by the token work; signatures are the contract with the rest of the crate.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::principal::{DeveloperId, Principal};

/// The configured signing algorithm; verification is pinned to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Algorithm {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

/// Why a credential was refused. Every variant is a 401 `unauthenticated`; the text is for logs
/// (never contains the token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credential")]
    Missing,
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    #[error("token rejected: {0}")]
    Rejected(&'static str),
}

/// Why keys could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the configured key cannot sign (a public key is verify-only)")]
    CannotSign,
    #[error("ttl {requested:?} is above the allowed maximum {max:?}")]
    TtlTooLong { requested: Duration, max: Duration },
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A credential as sent: the token and, for `cpanel DEV:JWT` and `Basic`, the claimed developer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    pub developer: Option<Cow<'a, str>>,
    pub token: Cow<'a, str>,
}

/// Parses one `Authorization` header value (`Bearer`, `cpanel DEV:JWT`, `Basic`).
pub fn parse_authorization(value: &[u8]) -> Result<Credential<'_>, AuthError> {
    let _ = value;
    Err(AuthError::Malformed("not built yet"))
}

/// The signing key and every accepted verification key, by `kid`.
pub struct KeyRing {
    algorithm: Algorithm,
}

impl KeyRing {
    /// Loads `key_file` (kid `key_id`) and every `verify_keys` file (kid = file name up to its
    /// first dot). HS256: a key file of >= 32 bytes, else an error.
    pub fn load(
        algorithm: Algorithm,
        key_file: &Path,
        key_id: &str,
        verify_keys: &[PathBuf],
    ) -> Result<Self, KeyError> {
        let _ = (key_file, key_id, verify_keys);
        Ok(Self { algorithm })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The claim rules from `[tokens]`.
#[derive(Clone, Debug)]
pub struct TokenRules {
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
    pub max_ttl: Duration,
}

/// Verifies access tokens against a key ring and the rules.
pub struct Verifier {
    keys: Arc<KeyRing>,
    rules: TokenRules,
}

impl Verifier {
    pub fn new(keys: Arc<KeyRing>, rules: TokenRules) -> Self {
        Self { keys, rules }
    }

    /// Verifies `token` at `now_unix` (seconds): every rule of contract §3 except those that need
    /// the policy set (developer known, its `max_token_ttl`) or the revocation list.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Principal, AuthError> {
        let _ = (token, now_unix, &self.keys, &self.rules);
        Err(AuthError::Rejected("not built yet"))
    }
}

/// A freshly signed token.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub expires_at: u64,
}

/// Signs an access token for `developer` valid `ttl` from `now_unix`, with optional `scope`.
pub fn issue(
    keys: &KeyRing,
    rules: &TokenRules,
    developer: &DeveloperId,
    ttl: Duration,
    scope: Option<&str>,
    now_unix: u64,
) -> Result<IssuedToken, IssueError> {
    let _ = (keys, rules, developer, ttl, scope, now_unix);
    Err(IssueError::CannotSign)
}

/// A key written by [`generate_key`].
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    pub kid: String,
    pub private_key: PathBuf,
    pub public_key: Option<PathBuf>,
}

/// Writes a new private key (PKCS#8 PEM, mode 0600; HS256: 32 random bytes) and its public key
/// into `dir`, named by a fresh `kid` without dots.
pub fn generate_key(algorithm: Algorithm, dir: &Path) -> Result<GeneratedKey, KeyError> {
    let _ = (algorithm, dir);
    Err(KeyError {
        path: dir.to_path_buf(),
        message: "not built yet".into(),
    })
}
