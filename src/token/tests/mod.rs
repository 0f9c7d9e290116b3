//! Token tests: one test per attack of security.md §1 and per rule of contract §3, named after
//! what it stops. Malicious tokens are crafted by hand: base64url of header and payload JSON
//! plus whatever signature bytes the attack needs.
//!
//! Every test runs at the fixed instant [`NOW`] (the verifier never reads the system clock).

mod authorization;
mod claims;
mod envelope;
mod issue;
mod keys;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};

use super::{Algorithm, AuthError, KeyRing, TokenRules, Verifier};
use crate::principal::Principal;

/// The instant every test runs at (2030-03-17).
pub(super) const NOW: u64 = 1_900_000_000;
/// The configured signing kid.
pub(super) const KID: &str = "2026-11";
/// Leeway and max ttl of the test rules.
pub(super) const LEEWAY: u64 = 30;
pub(super) const MAX_TTL: u64 = 3600;

pub(super) fn rules() -> TokenRules {
    TokenRules {
        issuer: "cpgate".into(),
        audience: "cpanel".into(),
        leeway: Duration::from_secs(LEEWAY),
        max_ttl: Duration::from_secs(MAX_TTL),
    }
}

/// A PKCS#8 private key PEM and its public key PEM, generated once per algorithm per run.
pub(super) fn key_pair(alg: &'static rcgen::SignatureAlgorithm) -> &'static (String, String) {
    static ED: OnceLock<(String, String)> = OnceLock::new();
    static EC: OnceLock<(String, String)> = OnceLock::new();
    static EC384: OnceLock<(String, String)> = OnceLock::new();
    static RSA: OnceLock<(String, String)> = OnceLock::new();
    let cell = if alg == &rcgen::PKCS_ED25519 {
        &ED
    } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        &EC
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        &EC384
    } else {
        &RSA
    };
    cell.get_or_init(|| fresh_key_pair(alg))
}

/// A new key pair (not cached): for "another key of the same algorithm".
pub(super) fn fresh_key_pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let pair = if alg == &rcgen::PKCS_RSA_SHA256 {
        rcgen::KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        rcgen::KeyPair::generate_for(alg).unwrap()
    };
    (pair.serialize_pem(), pair.public_key_pem())
}

pub(super) fn rcgen_alg(alg: Algorithm) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::RS256 => &rcgen::PKCS_RSA_SHA256,
        Algorithm::HS256 => unreachable!("HS256 has no key pair"),
    }
}

/// The HMAC secret of the HS256 fixture.
pub(super) const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

/// An encoding key for `alg` from a private key PEM (or an HMAC secret).
pub(super) fn encoding_key(alg: Algorithm, private_pem: &[u8]) -> EncodingKey {
    match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem).unwrap(),
        Algorithm::HS256 => EncodingKey::from_secret(private_pem),
    }
}

/// A key folder, a key ring loaded from it, and a verifier, for one algorithm.
pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub alg: Algorithm,
    pub ring: Arc<KeyRing>,
    pub verifier: Verifier,
    /// The private key PEM (asymmetric) or the HMAC secret.
    pub private: Vec<u8>,
    /// The public key PEM (asymmetric only).
    pub public_pem: Option<String>,
}

impl Fixture {
    pub fn new(alg: Algorithm) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (private, public_pem) = match alg {
            Algorithm::HS256 => (HMAC_SECRET.to_vec(), None),
            _ => {
                let (private, public) = key_pair(rcgen_alg(alg));
                (private.clone().into_bytes(), Some(public.clone()))
            }
        };
        let key_file = dir.path().join("signing.pem");
        std::fs::write(&key_file, &private).unwrap();
        let ring = Arc::new(KeyRing::load(alg, &key_file, KID, &[]).unwrap());
        let verifier = Verifier::new(ring.clone(), rules());
        Self {
            dir,
            alg,
            ring,
            verifier,
            private,
            public_pem,
        }
    }

    /// Writes `contents` into the fixture folder as `name` and returns the path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verifier.verify(token, NOW)
    }

    /// The header cpgate issues.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg.as_str(), "typ": "at+jwt", "kid": KID })
    }

    /// Signs header and claims (any JSON values) with the fixture's own key and algorithm.
    pub fn token(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A valid token with these claims.
    pub fn token_with(&self, claims: &Value) -> String {
        self.token(&self.header(), claims)
    }

    /// Signs raw header and payload JSON text (for duplicate keys and odd syntax).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let key = encoding_key(self.alg, &self.private);
        sign_with(self.alg.jwt(), &key, header, payload)
    }
}

/// `b64(header).b64(payload).sig`, signed with `key` under `alg` whatever the header says.
pub(super) fn sign_with(alg: jsonwebtoken::Algorithm, key: &EncodingKey, header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// `b64(header).b64(payload).` with the given raw signature bytes.
pub(super) fn with_signature(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Claims that verify at [`NOW`].
pub(super) fn claims() -> Value {
    json!({
        "iss": "cpgate",
        "aud": "cpanel",
        "sub": "alice",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": "5f0c7a1e-1d2b-4c3d-9e8f-0a1b2c3d4e5f",
    })
}

/// `claims()` with `key` set to `value` (or removed when `value` is `None`).
pub(super) fn claims_with(key: &str, value: Option<Value>) -> Value {
    let mut c = claims();
    let map = c.as_object_mut().unwrap();
    match value {
        Some(v) => map.insert(key.into(), v),
        None => map.remove(key),
    };
    c
}

/// The refusal `verify` gives for `reason`.
pub(super) fn rejected(reason: &'static str) -> Result<Principal, AuthError> {
    Err(AuthError::Rejected(reason))
}

/// What the strict claims struct says about missing, duplicate, unknown or wrong-typed claims.
pub(super) const MALFORMED_CLAIMS: &str = "malformed claims (missing, duplicate, unknown or wrong-typed)";

/// Every algorithm, for table tests.
pub(super) const ALL: [Algorithm; 4] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::HS256];

#[test]
fn crafted_baseline_token_is_accepted_for_every_algorithm() {
    // The crafting helpers must produce valid tokens, or every rejection test below proves nothing.
    for alg in ALL {
        let fx = Fixture::new(alg);
        let p = fx
            .verify(&fx.token_with(&claims()))
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(p.developer.as_str(), "alice");
        assert_eq!(p.jti, "5f0c7a1e-1d2b-4c3d-9e8f-0a1b2c3d4e5f");
        assert_eq!((p.issued_at, p.expires_at), (NOW, NOW + 600));
        assert_eq!(p.scope, None);
    }
}
