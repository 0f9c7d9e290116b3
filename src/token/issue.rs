//! Access token issuance: the exact header and claims the verifier accepts.
//!
//! Owns: the token format (header `alg`, `typ: "at+jwt"`, `kid`; claims `iss`, `aud`, `sub`,
//! `iat`, `nbf = iat`, `exp`, `jti`, optional `scope`). Never: issue a token the verifier would
//! refuse (ttl over `max_ttl`, invalid scope, over 8 KiB), sign with anything but the ring's
//! signing key and algorithm.

use std::time::Duration;

use rand::TryRngCore as _;
use serde::Serialize;

use super::keys::KeyRing;
use super::verify::{parse_scope, TokenRules};
use super::{IssueError, MAX_TOKEN_LEN};
use crate::principal::DeveloperId;

/// A freshly signed token. `Debug` shows the `jti` and expiry, never the token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti` (a random UUID v4), for audit records and revocation.
    pub jti: String,
    /// Its `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Signs an access token for `developer` valid `ttl` from `now_unix`, with optional `scope`
/// (space-separated call patterns, each checked with `CallPattern::parse_scope`).
///
/// The ttl is counted in whole seconds; under one second, or over `rules.max_ttl`, is an error.
/// A caller enforcing a developer's smaller `max_token_ttl` passes rules with that `max_ttl`.
pub fn issue(
    keys: &KeyRing,
    rules: &TokenRules,
    developer: &DeveloperId,
    ttl: Duration,
    scope: Option<&str>,
    now_unix: u64,
) -> Result<IssuedToken, IssueError> {
    let signing = keys.signing_key().ok_or(IssueError::CannotSign)?;
    if ttl > rules.max_ttl {
        return Err(IssueError::TtlTooLong {
            requested: ttl,
            max: rules.max_ttl,
        });
    }
    let ttl_secs = ttl.as_secs();
    if ttl_secs == 0 {
        return Err(IssueError::TtlTooShort);
    }
    let exp = now_unix.checked_add(ttl_secs).ok_or(IssueError::TtlOverflow)?;
    if let Some(scope) = scope {
        parse_scope(scope).map_err(|reason| IssueError::InvalidScope(reason.to_owned()))?;
    }
    let jti = random_uuid()?;
    let mut header = jsonwebtoken::Header::new(keys.algorithm().jwt());
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(keys.kid().to_owned());
    let claims = Claims {
        iss: &rules.issuer,
        aud: &rules.audience,
        sub: developer.as_str(),
        iat: now_unix,
        nbf: now_unix,
        exp,
        jti: &jti,
        scope,
    };
    let token = jsonwebtoken::encode(&header, &claims, signing).map_err(|_| IssueError::Signing("signing failed"))?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(IssueError::TooLong);
    }
    Ok(IssuedToken {
        token,
        jti,
        expires_at: exp,
    })
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// A UUID v4 from the operating system's generator; an error (not a panic) if it fails.
fn random_uuid() -> Result<String, IssueError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| IssueError::Signing("no randomness for the jti"))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}
