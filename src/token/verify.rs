//! Access token verification: one function from (token, keys, rules, now) to a `Principal`.
//!
//! Owns: every token rule of contract §3 and security.md §1 that needs no policy or revocation
//! list. Never: decode before the length check, let the header pick the algorithm or a key
//! location, look at claims before the signature verified, read the system clock, put a token
//! or claim value into an error.
//!
//! Order: length cap -> compact syntax (three non-empty base64url parts) -> our own strict header
//! parse (`alg` pinned, `typ`, `kid` known, no `crit`/`jku`/`jwk`/`x5u`/`x5c`/`cty`, nothing
//! else) -> signature and `iss`/`aud`/required claims by `jsonwebtoken` into a strict claims
//! struct -> lifetime, time, `sub`, `jti` and `scope` rules against `now_unix`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde::{Deserialize, Deserializer};

use super::cache::{TokenCache, TokenKey, DEFAULT_CAPACITY};
use super::keys::KeyRing;
use super::{AuthError, MAX_TOKEN_LEN};
use crate::call::CallPattern;
use crate::principal::{DeveloperId, Principal};

/// The longest `jti` accepted (bytes); issued ones are 36-character UUIDs.
pub const MAX_JTI_LEN: usize = 128;

/// The most entries a `scope` may have.
pub const MAX_SCOPE_ENTRIES: usize = 256;

/// The claims every token must carry, listed to `jsonwebtoken` so that it checks their presence
/// and JSON type (it ignores `iat` and `jti`; the strict [`Claims`] struct covers them).
const REQUIRED_CLAIMS: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];

/// The claim rules from `[tokens]`.
#[derive(Clone, Debug)]
pub struct TokenRules {
    /// `iss` written and required.
    pub issuer: String,
    /// `aud` written and required (a single string).
    pub audience: String,
    /// Clock skew tolerated on `iat`, `nbf` and `exp` (whole seconds count).
    pub leeway: Duration,
    /// The longest lifetime (`exp - iat`) issued or accepted (whole seconds count).
    pub max_ttl: Duration,
}

/// Verifies access tokens against a key ring and the rules, remembering verified tokens in a
/// [`TokenCache`] that lives and dies with this verifier (a key reload builds a new one).
pub struct Verifier {
    keys: Arc<KeyRing>,
    rules: TokenRules,
    pub(super) validation: Validation,
    cache: TokenCache,
}

impl Verifier {
    /// A verifier pinned to `keys.algorithm()`.
    pub fn new(keys: Arc<KeyRing>, rules: TokenRules) -> Self {
        let mut validation = Validation::new(keys.algorithm().jwt());
        validation.set_required_spec_claims(&REQUIRED_CLAIMS);
        validation.set_issuer(&[rules.issuer.as_str()]);
        validation.set_audience(&[rules.audience.as_str()]);
        validation.leeway = rules.leeway.as_secs();
        // The crate's `exp`/`nbf` checks read the system clock (`get_current_timestamp`), which
        // would make the outcome depend on two clocks. Every time rule (`exp`, `nbf`, `iat`,
        // lifetime) is enforced in `check_claims` against the caller's `now_unix`, with the same
        // explicit leeway; presence and type of `exp`/`nbf` stay required above.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = true;
        Self {
            keys,
            rules,
            validation,
            cache: TokenCache::new(DEFAULT_CAPACITY),
        }
    }

    /// [`Verifier::verify`] through the verified-token cache: a token verified before and still
    /// within `exp` + leeway is accepted without checking its signature again. Refusals are
    /// never cached. The caller still checks revocation and the policy on every call.
    pub fn verify_cached(&self, token: &str, now_unix: u64) -> Result<Arc<Principal>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("token longer than 8 KiB"));
        }
        let key = TokenKey::of(token);
        if let Some(principal) = self.cache.get(&key, now_unix) {
            return Ok(principal);
        }
        let principal = Arc::new(self.verify(token, now_unix)?);
        let valid_until = principal.expires_at.saturating_add(self.rules.leeway.as_secs());
        self.cache.insert(key, Arc::clone(&principal), valid_until, now_unix);
        Ok(principal)
    }

    /// The verified-token cache (for tests and metrics).
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The key ring this verifier uses.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The rules this verifier applies.
    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }

    /// Verifies `token` at `now_unix` (seconds): every rule of contract §3 except those that need
    /// the policy set (developer known, its `max_token_ttl`) or the revocation list.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("token longer than 8 KiB"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not a compact JWS (three dot-separated parts)"));
        };
        if header.is_empty() || payload.is_empty() {
            return Err(AuthError::Malformed("empty header or payload"));
        }
        if signature.is_empty() {
            return Err(AuthError::Malformed("missing signature"));
        }
        let key = self.check_header(header)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| map_jwt_error(e.kind()))?
            .claims;
        self.check_claims(claims, now_unix)
    }

    /// Parses the header strictly and returns the key its `kid` names.
    fn check_header(&self, encoded: &str) -> Result<&jsonwebtoken::DecodingKey, AuthError> {
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| AuthError::Malformed("header is not canonical base64url"))?;
        let header: Header =
            serde_json::from_slice(&json).map_err(|_| AuthError::Rejected("malformed or unknown header parameter"))?;
        let forbidden = [
            (header.crit, "crit header not allowed"),
            (header.jku, "jku header not allowed"),
            (header.jwk, "jwk header not allowed"),
            (header.x5u, "x5u header not allowed"),
            (header.x5c, "x5c header not allowed"),
            (header.cty, "cty header not allowed"),
        ];
        if let Some((_, reason)) = forbidden.iter().find(|(present, _)| *present) {
            return Err(AuthError::Rejected(reason));
        }
        if header.alg != self.keys.algorithm().as_str() {
            return Err(AuthError::Rejected("algorithm not allowed"));
        }
        match header.typ.as_deref() {
            Some(typ) if typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt") => {}
            Some(_) => return Err(AuthError::Rejected("typ is not at+jwt")),
            None => return Err(AuthError::Rejected("missing typ")),
        }
        let kid = header.kid.ok_or(AuthError::Rejected("missing kid"))?;
        self.keys.decoding_key(&kid).ok_or(AuthError::Rejected("unknown kid"))
    }

    /// The rules the crate does not apply, all against `now`.
    fn check_claims(&self, claims: Claims, now: u64) -> Result<Principal, AuthError> {
        let leeway = self.rules.leeway.as_secs();
        // Defence in depth: the crate checked these already.
        if claims.iss != self.rules.issuer {
            return Err(AuthError::Rejected("wrong issuer"));
        }
        if claims.aud != self.rules.audience {
            return Err(AuthError::Rejected("wrong audience"));
        }
        // Lifetime first, so that absurd times (`exp = u64::MAX`) are named for what they are.
        if claims.exp <= claims.iat {
            return Err(AuthError::Rejected("exp not after iat"));
        }
        if claims.exp - claims.iat > self.rules.max_ttl.as_secs() {
            return Err(AuthError::Rejected("lifetime over max_ttl"));
        }
        if claims.nbf >= claims.exp {
            return Err(AuthError::Rejected("nbf not before exp"));
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(AuthError::Rejected("iat in the future"));
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(AuthError::Rejected("not yet valid (nbf)"));
        }
        // Valid while now < exp (RFC 7519 §4.1.4), stretched by the leeway.
        if now >= claims.exp.saturating_add(leeway) {
            return Err(AuthError::Rejected("expired"));
        }
        let developer =
            DeveloperId::parse(&claims.sub).map_err(|_| AuthError::Rejected("sub is not a developer id"))?;
        if !valid_jti(&claims.jti) {
            return Err(AuthError::Rejected("invalid jti"));
        }
        let scope = match &claims.scope {
            Some(scope) => Some(parse_scope(scope).map_err(AuthError::Rejected)?),
            None => None,
        };
        Ok(Principal {
            developer,
            jti: claims.jti,
            scope,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }
}

/// Parses a `scope`: entries separated by single spaces, each a call pattern (`api2:` prefix for
/// API 2). Empty scopes, empty entries and more than [`MAX_SCOPE_ENTRIES`] are refused.
pub(super) fn parse_scope(scope: &str) -> Result<Vec<CallPattern>, &'static str> {
    if scope.is_empty() {
        return Err("empty scope");
    }
    let mut patterns = Vec::new();
    for entry in scope.split(' ') {
        if entry.is_empty() {
            return Err("empty scope entry (scope entries are separated by single spaces)");
        }
        if patterns.len() == MAX_SCOPE_ENTRIES {
            return Err("too many scope entries");
        }
        patterns.push(CallPattern::parse_scope(entry).map_err(|e| e.reason)?);
    }
    Ok(patterns)
}

/// A `jti` is `[A-Za-z0-9_.-]{1,128}`: safe in audit records and the revocation list.
pub(super) fn valid_jti(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI_LEN
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::Rejected("bad signature"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::Rejected("algorithm not allowed")
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            AuthError::Rejected("missing or wrong-typed claim")
        }
        ErrorKind::InvalidIssuer => AuthError::Rejected("wrong issuer"),
        ErrorKind::InvalidAudience => AuthError::Rejected("wrong audience"),
        ErrorKind::InvalidSubject => AuthError::Rejected("wrong subject"),
        ErrorKind::ExpiredSignature => AuthError::Rejected("expired"),
        ErrorKind::ImmatureSignature => AuthError::Rejected("not yet valid (nbf)"),
        // Our strict struct refused the claims: missing, duplicate, unknown or wrong-typed.
        ErrorKind::Json(_) => AuthError::Rejected("malformed claims (missing, duplicate, unknown or wrong-typed)"),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => AuthError::Malformed("not canonical base64url"),
        ErrorKind::InvalidToken => AuthError::Malformed("not a compact JWS (three dot-separated parts)"),
        _ => AuthError::Rejected("verification failed"),
    }
}

/// The JOSE header, parsed by us before anything else. Only `alg`, `typ` and `kid` may appear;
/// the forbidden parameters are named so that the refusal says which one (present at all, even
/// `null`, counts); anything else is an unknown parameter and refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default, deserialize_with = "non_null")]
    typ: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    kid: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    #[serde(default, deserialize_with = "present")]
    cty: bool,
}

/// The claims, with strict JSON types: integer seconds (no floats, no negatives, no strings),
/// a single-string `aud`, and nothing unknown. Derived, so duplicate keys are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    #[serde(default, deserialize_with = "non_null")]
    scope: Option<String>,
}

/// An optional field that, when present, must hold a value of type `T` (`null` is refused).
fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// True when the field is present, whatever its value (including `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}
