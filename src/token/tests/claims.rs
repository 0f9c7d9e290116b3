//! Verification attacks on the claims: presence, types, duplicates, issuer and audience, time,
//! lifetime, `sub`, `jti`, `scope`; key rotation; errors that leak nothing.

use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};

use super::*;
use crate::token::{Algorithm, AuthError, KeyRing, Verifier};

// ---- claims: presence, types, duplicates -----------------------------------------------------

#[test]
fn rejects_missing_each_required_claim() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for claim in ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"] {
        let token = fx.token_with(&claims_with(claim, None));
        assert_eq!(fx.verify(&token), rejected(MALFORMED_CLAIMS), "missing {claim}");
    }
}

#[test]
fn rejects_wrong_typed_claims() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let cases: Vec<(&str, Value)> = vec![
        ("aud", json!(1)),
        ("aud", json!({})),
        ("aud", json!(null)),
        ("aud", json!(["cpanel"])), // arrays are refused: cpgate issues a single string
        ("aud", json!(["cpanel", "other"])),
        ("iss", json!({})),
        ("iss", json!(1)),
        ("iss", json!(["cpgate"])),
        ("sub", json!(1)),
        ("sub", json!(null)),
        ("sub", json!(["alice"])),
        ("exp", json!((NOW + 600).to_string())),
        ("exp", json!((NOW + 600) as f64 + 0.5)),
        ("exp", json!(-1)),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("iat", json!(NOW.to_string())),
        ("iat", json!(-5)),
        ("iat", json!(NOW as f64)),
        ("nbf", json!(true)),
        ("nbf", json!({})),
        ("jti", json!(1)),
        ("jti", json!(null)),
        ("scope", json!(1)),
        ("scope", json!(null)),
        ("scope", json!(["Email::list_pops"])),
    ];
    for (claim, value) in cases {
        let token = fx.token_with(&claims_with(claim, Some(value.clone())));
        assert_eq!(fx.verify(&token), rejected(MALFORMED_CLAIMS), "{claim} = {value}");
    }
    // Numbers beyond u64 and exponent notation are refused too (no float coercion).
    let body = claims().to_string();
    for (from, to) in [
        (
            format!("\"exp\":{}", NOW + 600),
            "\"exp\":18446744073709551616".to_string(),
        ),
        (format!("\"exp\":{}", NOW + 600), "\"exp\":1.9000006e9".to_string()),
    ] {
        let token = fx.sign_raw(&fx.header().to_string(), &body.replace(&from, &to));
        assert_eq!(fx.verify(&token), rejected(MALFORMED_CLAIMS), "{to}");
    }
}

#[test]
fn rejects_wrong_typed_aud_iss_sub_with_the_crate_required_claims() {
    // `"aud":1` and `"iss":{}` are exactly what the crate accepts silently without
    // `required_spec_claims`; both layers (crate + strict struct) refuse them.
    let fx = Fixture::new(Algorithm::HS256);
    let required = &fx.verifier.validation.required_spec_claims;
    for claim in ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"] {
        assert!(required.contains(claim), "{claim} not required");
    }
    assert_eq!(fx.verifier.validation.leeway, LEEWAY);
    assert_eq!(fx.verifier.validation.algorithms, [jsonwebtoken::Algorithm::HS256]);
    let key = fx.ring.decoding_key(KID).unwrap();
    for (claim, value) in [
        ("aud", json!(1)),
        ("iss", json!({})),
        ("sub", json!(7)),
        ("exp", json!("x")),
    ] {
        let token = fx.token_with(&claims_with(claim, Some(value)));
        assert_eq!(fx.verify(&token), rejected(MALFORMED_CLAIMS), "{claim}");
        // The crate layer alone (claims decoded into nothing) refuses it as well.
        let crate_only = jsonwebtoken::decode::<serde::de::IgnoredAny>(&token, key, &fx.verifier.validation);
        assert!(crate_only.is_err(), "{claim}: the crate accepted it");
    }
    let crate_only =
        jsonwebtoken::decode::<serde::de::IgnoredAny>(&fx.token_with(&claims()), key, &fx.verifier.validation);
    assert!(crate_only.is_ok());
}

#[test]
fn rejects_duplicate_claim_keys() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let header = fx.header().to_string();
    let base = r#""iss":"cpgate","aud":"cpanel","iat":1900000000,"nbf":1900000000,"exp":1900000600,"jti":"j1""#;
    for payload in [
        format!(r#"{{{base},"sub":"alice","sub":"root"}}"#),
        format!(r#"{{{base},"sub":"alice","exp":99999999999}}"#),
        format!(r#"{{{base},"sub":"alice","aud":"other"}}"#),
        format!(r#"{{{base},"sub":"alice","scope":"Email::list_pops","scope":"*::*"}}"#),
    ] {
        assert_eq!(
            fx.verify(&fx.sign_raw(&header, &payload)),
            rejected(MALFORMED_CLAIMS),
            "{payload}"
        );
    }
    // The control: the same text without a duplicate is accepted.
    let ok = format!(r#"{{{base},"sub":"alice"}}"#);
    assert!(fx.verify(&fx.sign_raw(&header, &ok)).is_ok());
}

#[test]
fn rejects_unknown_claims() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for (name, value) in [("admin", json!(true)), ("scp", json!("*::*")), ("azp", json!("x"))] {
        let token = fx.token_with(&claims_with(name, Some(value)));
        assert_eq!(fx.verify(&token), rejected(MALFORMED_CLAIMS), "{name}");
    }
    let fx = Fixture::new(Algorithm::EdDSA);
    assert!(fx.verify(&fx.sign_raw(&fx.header().to_string(), "[]")).is_err());
    assert!(fx.verify(&fx.sign_raw(&fx.header().to_string(), "\"alice\"")).is_err());
}

#[test]
fn rejects_wrong_issuer() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for iss in ["cpgate2", "CPGATE", "", "cpgate "] {
        let token = fx.token_with(&claims_with("iss", Some(json!(iss))));
        assert_eq!(fx.verify(&token), rejected("wrong issuer"), "{iss:?}");
    }
}

#[test]
fn rejects_wrong_audience() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for aud in ["cpanel2", "CPANEL", "", "whm"] {
        let token = fx.token_with(&claims_with("aud", Some(json!(aud))));
        assert_eq!(fx.verify(&token), rejected("wrong audience"), "{aud:?}");
    }
}

// ---- claims: time ----------------------------------------------------------------------------

fn times(iat: u64, nbf: u64, exp: u64) -> Value {
    let mut c = claims();
    let m = c.as_object_mut().unwrap();
    m.insert("iat".into(), json!(iat));
    m.insert("nbf".into(), json!(nbf));
    m.insert("exp".into(), json!(exp));
    c
}

#[test]
fn rejects_exp_u64_max_lifetime() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&times(NOW, NOW, u64::MAX));
    assert_eq!(fx.verify(&token), rejected("lifetime over max_ttl"));
    let token = fx.token_with(&times(0, 0, u64::MAX));
    assert_eq!(fx.verify(&token), rejected("lifetime over max_ttl"));
    let token = fx.token_with(&times(u64::MAX - 1, u64::MAX - 1, u64::MAX));
    assert_eq!(fx.verify(&token), rejected("iat in the future"));
}

#[test]
fn rejects_lifetime_over_max_ttl() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&times(NOW, NOW, NOW + MAX_TTL + 1));
    assert_eq!(fx.verify(&token), rejected("lifetime over max_ttl"));
    let token = fx.token_with(&times(NOW, NOW, NOW + MAX_TTL));
    assert!(fx.verify(&token).is_ok(), "exactly max_ttl is allowed");
}

#[test]
fn rejects_exp_not_after_iat() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for (iat, exp) in [(NOW, NOW), (NOW, NOW - 1), (NOW + 10, NOW + 5)] {
        let token = fx.token_with(&times(iat, iat.min(exp), exp));
        assert_eq!(fx.verify(&token), rejected("exp not after iat"), "{iat} {exp}");
    }
}

#[test]
fn rejects_nbf_not_before_exp() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&times(NOW - 10, NOW + 20, NOW + 20));
    assert_eq!(fx.verify(&token), rejected("nbf not before exp"));
}

#[test]
fn rejects_iat_in_future_beyond_leeway() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let iat = NOW + LEEWAY + 1;
    let token = fx.token_with(&times(iat, NOW, iat + 60));
    assert_eq!(fx.verify(&token), rejected("iat in the future"));
}

#[test]
fn rejects_nbf_in_future() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&times(NOW, NOW + LEEWAY + 1, NOW + 600));
    assert_eq!(fx.verify(&token), rejected("not yet valid (nbf)"));
}

#[test]
fn accepts_within_leeway() {
    let fx = Fixture::new(Algorithm::EdDSA);
    // Issued by a clock up to `leeway` ahead.
    let token = fx.token_with(&times(NOW + LEEWAY, NOW + LEEWAY, NOW + LEEWAY + 60));
    assert!(fx.verify(&token).is_ok());
    // Expired less than `leeway` ago.
    let token = fx.token_with(&times(NOW - 600, NOW - 600, NOW - LEEWAY + 1));
    assert!(fx.verify(&token).is_ok());
}

#[test]
fn rejects_expired() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for exp in [NOW - LEEWAY, NOW - LEEWAY - 1, NOW - 3000] {
        let token = fx.token_with(&times(exp - 60, exp - 60, exp));
        assert_eq!(fx.verify(&token), rejected("expired"), "exp {exp}");
    }
    // Without leeway, a token is valid strictly before exp (RFC 7519 §4.1.4).
    let mut strict = rules();
    strict.leeway = std::time::Duration::ZERO;
    let verifier = Verifier::new(fx.ring.clone(), strict);
    let at_exp = fx.token_with(&times(NOW - 60, NOW - 60, NOW));
    assert_eq!(verifier.verify(&at_exp, NOW), rejected("expired"));
    let before_exp = fx.token_with(&times(NOW - 60, NOW - 60, NOW + 1));
    assert!(verifier.verify(&before_exp, NOW).is_ok());
}

#[test]
fn time_rules_use_the_callers_clock_not_the_system_clock() {
    // A token valid in 2030 only: accepted at that instant, refused at the real now.
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&claims());
    assert!(fx.verifier.verify(&token, NOW).is_ok());
    let real_now = jsonwebtoken::get_current_timestamp();
    assert!(fx.verifier.verify(&token, real_now).is_err());
}

// ---- claims: sub, jti, scope -----------------------------------------------------------------

#[test]
fn rejects_sub_that_is_not_a_developer_id() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for sub in ["", "Alice", "../alice", "alice/x", "a b", &"a".repeat(65), "alice\n"] {
        let token = fx.token_with(&claims_with("sub", Some(json!(sub))));
        assert_eq!(fx.verify(&token), rejected("sub is not a developer id"), "{sub:?}");
    }
}

#[test]
fn rejects_empty_or_unbounded_jti() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for jti in [
        "".to_string(),
        "a".repeat(129),
        "a b".into(),
        "a\nb".into(),
        "ü".into(),
        "a\"b".into(),
    ] {
        let token = fx.token_with(&claims_with("jti", Some(json!(jti))));
        assert_eq!(fx.verify(&token), rejected("invalid jti"), "{jti:?}");
    }
    let token = fx.token_with(&claims_with("jti", Some(json!("a".repeat(128)))));
    assert!(fx.verify(&token).is_ok());
}

#[test]
fn rejects_invalid_scope_syntax() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for scope in [
        "",
        " ",
        "Email",
        "Email::a.b",
        "Email::list_pops  Email::add_pop",
        " Email::list_pops",
        "Email::list_pops ",
        "Email::list_pops\tEmail::add_pop",
        "api3:Email::list_pops",
        "api2:",
        "::",
        "Email::",
    ] {
        let token = fx.token_with(&claims_with("scope", Some(json!(scope))));
        assert!(
            matches!(fx.verify(&token), Err(AuthError::Rejected(_))),
            "{scope:?} accepted"
        );
    }
    let too_many = vec!["Email::list_pops"; crate::token::MAX_SCOPE_ENTRIES + 1].join(" ");
    let token = fx.token_with(&claims_with("scope", Some(json!(too_many))));
    assert_eq!(fx.verify(&token), rejected("too many scope entries"));
}

#[test]
fn accepts_scope_and_parses_it() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let scope = "Email::list_pops api2:ZoneEdit::fetchzone_records DomainInfo::*";
    let token = fx.token_with(&claims_with("scope", Some(json!(scope))));
    let principal = fx.verify(&token).unwrap();
    let parsed: Vec<String> = principal.scope.unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        parsed,
        ["Email::list_pops", "api2:ZoneEdit::fetchzone_records", "DomainInfo::*"]
    );
}

// ---- rotation --------------------------------------------------------------------------------

#[test]
fn accepts_token_signed_by_verify_key_kid() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let dir = tempfile::tempdir().unwrap();
        let (new_private, _) = key_pair(rcgen_alg(alg));
        let (old_private, old_public) = fresh_key_pair(rcgen_alg(alg));
        let key_file = dir.path().join("2026-11.pem");
        std::fs::write(&key_file, new_private).unwrap();
        let old_file = dir.path().join("2026-10.pub.pem");
        std::fs::write(&old_file, &old_public).unwrap();
        let ring = Arc::new(KeyRing::load(alg, &key_file, KID, &[old_file]).unwrap());
        let verifier = Verifier::new(ring, rules());
        let old_key = encoding_key(alg, old_private.as_bytes());
        let old_header = json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": "2026-10" });
        let token = sign_with(alg.jwt(), &old_key, &old_header.to_string(), &claims().to_string());
        assert!(verifier.verify(&token, NOW).is_ok(), "{alg}: old key under its kid");
        // The old key under the new kid, and the new key under the old kid, do not verify.
        let wrong = json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": KID });
        let token = sign_with(alg.jwt(), &old_key, &wrong.to_string(), &claims().to_string());
        assert_eq!(verifier.verify(&token, NOW), rejected("bad signature"));
        let new_key = encoding_key(alg, new_private.as_bytes());
        let token = sign_with(alg.jwt(), &new_key, &old_header.to_string(), &claims().to_string());
        assert_eq!(verifier.verify(&token, NOW), rejected("bad signature"));
    }
}

#[test]
fn accepts_hs256_token_signed_by_verify_secret_kid() {
    let fx = Fixture::new(Algorithm::HS256);
    let old_secret = b"an older secret, still at least 32 bytes long";
    let old_file = fx.file("2026-10.key", old_secret);
    let ring = Arc::new(KeyRing::load(Algorithm::HS256, &fx.dir.path().join("signing.pem"), KID, &[old_file]).unwrap());
    let verifier = Verifier::new(ring, rules());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": "2026-10" });
    let key = EncodingKey::from_secret(old_secret);
    let token = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &key,
        &header.to_string(),
        &claims().to_string(),
    );
    assert!(verifier.verify(&token, NOW).is_ok());
}

// ---- errors ----------------------------------------------------------------------------------

#[test]
fn errors_never_contain_the_token_or_claim_values() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let canary = "canary7d1e";
    let mut bad_tokens = vec![
        fx.token_with(&claims_with("sub", Some(json!(format!("{canary}/x"))))),
        fx.token_with(&claims_with("iss", Some(json!(canary)))),
        fx.token_with(&claims_with("aud", Some(json!(canary)))),
        fx.token_with(&claims_with("exp", Some(json!(canary)))),
        fx.token_with(&claims_with("scope", Some(json!(format!("{canary}.x"))))),
        fx.token_with(&claims_with(canary, Some(json!(canary)))),
        fx.token(&json!({ "alg": canary, "typ": "at+jwt", "kid": KID }), &claims()),
        fx.token(&json!({ "alg": "EdDSA", "typ": canary, "kid": KID }), &claims()),
        fx.token(&json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": canary }), &claims()),
        format!("{canary}.{canary}.{canary}"),
    ];
    bad_tokens.push(bad_tokens[0].replace('.', "!"));
    for token in bad_tokens {
        let err = fx.verify(&token).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(canary), "{shown}");
        assert!(!shown.contains(&token[..20.min(token.len())]), "{shown}");
    }
}
