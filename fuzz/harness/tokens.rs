//! `Authorization` parsing plus token verification, with an independent model of which tokens
//! must be accepted.

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use cpgate::call::CallPattern;
use cpgate::principal::DeveloperId;
use cpgate::token::{parse_authorization, Algorithm, KeyRing, TokenRules, Verifier, MAX_TOKEN_LEN};

use super::{fields, SEP};

/// The instant every verification runs at.
pub const NOW: u64 = 1_900_000_000;
/// The kid of the fuzz key ring (fixed, so corpus files can name it).
pub const KID: &str = "fuzz-kid";
pub const LEEWAY: u64 = 30;
pub const MAX_TTL: u64 = 3600;

struct Keys {
    verifier: Verifier,
    signer: EncodingKey,
    _dir: tempfile::TempDir,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let generated = cpgate::token::generate_key(Algorithm::EdDSA, dir.path()).unwrap();
        let ring = KeyRing::load(Algorithm::EdDSA, &generated.private_key, KID, &[]).unwrap();
        let rules = TokenRules {
            issuer: "cpgate".into(),
            audience: "cpanel".into(),
            leeway: Duration::from_secs(LEEWAY),
            max_ttl: Duration::from_secs(MAX_TTL),
        };
        let signer = EncodingKey::from_ed_pem(&std::fs::read(&generated.private_key).unwrap()).unwrap();
        Keys {
            verifier: Verifier::new(std::sync::Arc::new(ring), rules),
            signer,
            _dir: dir,
        }
    })
}

/// Signs `header` and `payload` (raw bytes, base64url-encoded as they are) with the fuzz key.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &keys().signer, jsonwebtoken::Algorithm::EdDSA).unwrap();
    format!("{message}.{signature}")
}

/// Verifies `token` at [`NOW`].
pub fn verify(token: &str) -> bool {
    keys().verifier.verify(token, NOW).is_ok()
}

/// Two modes, both on every input:
/// 1. the bytes as an `Authorization` value: parsed, then its token verified; nothing the
///    fuzzer writes can carry a valid signature, so acceptance is a finding;
/// 2. `header 0xff payload`: signed with the real key and verified; cpgate must accept exactly
///    when the independent model [`should_accept`] does.
pub fn authorization(data: &[u8]) {
    if let Ok(credential) = parse_authorization(data) {
        assert!(!credential.token.is_empty(), "empty token parsed");
        assert!(
            !verify(&credential.token),
            "a token without a valid signature was accepted"
        );
    }
    let parts = fields(data, 2);
    if let [header, payload] = parts.as_slice() {
        if payload.contains(&SEP) {
            return;
        }
        let token = sign(header, payload);
        let accepted = verify(&token);
        let expected = token.len() <= MAX_TOKEN_LEN && should_accept(header, payload);
        assert_eq!(
            accepted,
            expected,
            "cpgate {} a token the model {}: header {:?} payload {:?}",
            if accepted { "accepted" } else { "refused" },
            if expected { "accepts" } else { "refuses" },
            String::from_utf8_lossy(header),
            String::from_utf8_lossy(payload),
        );
    }
}

/// The model: a JSON object without duplicate keys, exactly the allowed members, every claim
/// well-typed and in range (security.md §1, contract §3).
pub fn should_accept(header: &[u8], payload: &[u8]) -> bool {
    let (Some(header), Some(claims)) = (object(header), object(payload)) else {
        return false;
    };
    let h = |k: &str| header.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    if header.iter().any(|(k, _)| !["alg", "typ", "kid"].contains(&k.as_str())) {
        return false;
    }
    let typ_ok = h("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if h("alg").and_then(Value::as_str) != Some("EdDSA") || !typ_ok || h("kid").and_then(Value::as_str) != Some(KID) {
        return false;
    }
    const CLAIMS: [&str; 8] = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope"];
    if claims.iter().any(|(k, _)| !CLAIMS.contains(&k.as_str())) {
        return false;
    }
    let c = |k: &str| claims.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let s = |k: &str| c(k).and_then(Value::as_str);
    let n = |k: &str| c(k).and_then(Value::as_u64);
    let (Some(iat), Some(nbf), Some(exp)) = (n("iat"), n("nbf"), n("exp")) else {
        return false;
    };
    let times_ok = exp > iat
        && exp - iat <= MAX_TTL
        && nbf < exp
        && iat <= NOW + LEEWAY
        && nbf <= NOW + LEEWAY
        && NOW < exp.saturating_add(LEEWAY);
    let jti_ok = s("jti").is_some_and(|j| {
        !j.is_empty() && j.len() <= 128 && j.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    });
    let scope_ok = match c("scope") {
        None => true,
        Some(Value::String(scope)) => {
            !scope.is_empty()
                && scope.split(' ').count() <= 256
                && scope
                    .split(' ')
                    .all(|e| !e.is_empty() && CallPattern::parse_scope(e).is_ok())
        }
        Some(_) => false,
    };
    s("iss") == Some("cpgate")
        && s("aud") == Some("cpanel")
        && s("sub").is_some_and(|d| DeveloperId::parse(d).is_ok())
        && times_ok
        && jti_ok
        && scope_ok
}

/// The members of a JSON object in order, or `None` if `bytes` is not exactly one JSON object
/// or repeats a key.
fn object(bytes: &[u8]) -> Option<Vec<(String, Value)>> {
    let Entries(entries) = serde_json::from_slice(bytes).ok()?;
    let mut names: Vec<&String> = entries.iter().map(|(k, _)| k).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    (n == names.len()).then_some(entries)
}

struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}
