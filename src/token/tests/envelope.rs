//! Verification attacks on the envelope: algorithm, signature, encoding, size and header
//! (security.md §1, contract §3).

use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};

use super::*;
use crate::token::{Algorithm, AuthError, KeyRing, Verifier, MAX_TOKEN_LEN};

// ---- algorithm ----------------------------------------------------------------------------

#[test]
fn rejects_alg_none_every_spelling() {
    for alg in ALL {
        let fx = Fixture::new(alg);
        for none in ["none", "None", "NONE", "nOnE"] {
            let header = json!({ "alg": none, "typ": "at+jwt", "kid": KID });
            let unsigned = with_signature(&header, &claims(), b"");
            assert!(fx.verify(&unsigned).is_err(), "{alg} {none} empty signature");
            let signed = with_signature(&header, &claims(), b"not a signature");
            assert_eq!(fx.verify(&signed), rejected("algorithm not allowed"), "{alg} {none}");
            // Stripped signature with the configured alg: refused before any crypto.
            let stripped = with_signature(&fx.header(), &claims(), b"");
            assert_eq!(fx.verify(&stripped), Err(AuthError::Malformed("missing signature")));
        }
    }
}

/// The classic confusion: the attacker HMACs the token with the public key as secret.
fn assert_hs256_with_public_key_rejected(alg: Algorithm) {
    let fx = Fixture::new(alg);
    let public = fx.public_pem.clone().unwrap();
    let hmac = EncodingKey::from_secret(public.as_bytes());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": KID });
    let forged = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &hmac,
        &header.to_string(),
        &claims().to_string(),
    );
    assert_eq!(fx.verify(&forged), rejected("algorithm not allowed"));
    // Same HMAC, but the header claims the configured algorithm: the signature cannot verify.
    let forged = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &hmac,
        &fx.header().to_string(),
        &claims().to_string(),
    );
    assert_eq!(fx.verify(&forged), rejected("bad signature"));
    // A verify-only ring (public key as key_file) refuses it just the same.
    let public_file = fx.file("public.pem", public.as_bytes());
    let ring = Arc::new(KeyRing::load(alg, &public_file, KID, &[]).unwrap());
    let verifier = Verifier::new(ring, rules());
    let forged = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &hmac,
        &header.to_string(),
        &claims().to_string(),
    );
    assert_eq!(verifier.verify(&forged, NOW), rejected("algorithm not allowed"));
}

#[test]
fn rejects_hs256_signed_with_public_key_when_configured_for_rs256() {
    assert_hs256_with_public_key_rejected(Algorithm::RS256);
}

#[test]
fn rejects_hs256_signed_with_public_key_when_configured_for_es256() {
    assert_hs256_with_public_key_rejected(Algorithm::ES256);
}

#[test]
fn rejects_hs256_signed_with_public_key_when_configured_for_eddsa() {
    assert_hs256_with_public_key_rejected(Algorithm::EdDSA);
}

#[test]
fn jsonwebtoken_itself_refuses_hmac_with_an_asymmetric_registry_key() {
    // The crate fact security.md relies on, pinned here so an upgrade that loses it fails loudly.
    let (_, public) = key_pair(&rcgen::PKCS_RSA_SHA256);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
    let hmac = EncodingKey::from_secret(public.as_bytes());
    let header = json!({ "alg": "HS256" });
    let forged = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &hmac,
        &header.to_string(),
        &claims().to_string(),
    );
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    assert!(jsonwebtoken::decode::<serde::de::IgnoredAny>(&forged, &key, &validation).is_err());
}

#[test]
fn rejects_other_algorithms_in_the_header() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for alg in [
        "RS256", "ES256", "HS256", "HS512", "ES384", "PS256", "Ed25519", "eddsa", "EdDSA ", "",
    ] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": KID });
        let token = fx.token(&header, &claims());
        assert_eq!(fx.verify(&token), rejected("algorithm not allowed"), "{alg:?}");
    }
}

#[test]
fn rejects_key_of_other_algorithm_family() {
    // A token genuinely signed by an ES256 key, presented to an EdDSA ring under the same kid.
    let fx = Fixture::new(Algorithm::EdDSA);
    let (ec_private, _) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let ec = encoding_key(Algorithm::ES256, ec_private.as_bytes());
    for header_alg in ["ES256", "EdDSA"] {
        let header = json!({ "alg": header_alg, "typ": "at+jwt", "kid": KID });
        let token = sign_with(
            jsonwebtoken::Algorithm::ES256,
            &ec,
            &header.to_string(),
            &claims().to_string(),
        );
        assert!(fx.verify(&token).is_err(), "{header_alg}");
    }
    // Loading a key of another family is refused: see keys::refuses_keys_of_another_family.
}

// ---- signature -----------------------------------------------------------------------------

#[test]
fn rejects_ecdsa_zero_signature_cve_2022_21449() {
    let fx = Fixture::new(Algorithm::ES256);
    // r = s = 0 in the fixed-width JWS form, and in DER form, and the all-0xff variant.
    let der_zero = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00];
    for signature in [&[0u8; 64][..], &der_zero[..], &[0xffu8; 64][..]] {
        let token = with_signature(&fx.header(), &claims(), signature);
        assert_eq!(fx.verify(&token), rejected("bad signature"));
    }
}

#[test]
fn rejects_stripped_or_null_signature() {
    for alg in ALL {
        let fx = Fixture::new(alg);
        let token = fx.token_with(&claims());
        let (message, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            fx.verify(&format!("{message}.")),
            Err(AuthError::Malformed("missing signature"))
        );
        assert!(
            matches!(fx.verify(message), Err(AuthError::Malformed(_))),
            "{alg}: two parts"
        );
        let zeros = with_signature(&fx.header(), &claims(), &[0u8; 64]);
        assert_eq!(fx.verify(&zeros), rejected("bad signature"), "{alg}");
    }
}

#[test]
fn rejects_signature_by_another_key_of_the_same_algorithm() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let fx = Fixture::new(alg);
        let (other, _) = fresh_key_pair(rcgen_alg(alg));
        let key = encoding_key(alg, other.as_bytes());
        let token = sign_with(alg.jwt(), &key, &fx.header().to_string(), &claims().to_string());
        assert_eq!(fx.verify(&token), rejected("bad signature"), "{alg}");
    }
    let fx = Fixture::new(Algorithm::HS256);
    let key = EncodingKey::from_secret(b"another secret of at least thirty-two bytes");
    let token = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &key,
        &fx.header().to_string(),
        &claims().to_string(),
    );
    assert_eq!(fx.verify(&token), rejected("bad signature"));
}

#[test]
fn rejects_tampered_payload() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let evil = b64(claims_with("sub", Some(json!("root"))).to_string().as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_eq!(fx.verify(&tampered), rejected("bad signature"));
}

// ---- syntax and encoding -------------------------------------------------------------------

#[test]
fn rejects_token_over_8kib_before_decoding() {
    let fx = Fixture::new(Algorithm::HS256);
    // Not even base64: refused by the length check, not by a decoder.
    let junk = "!".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(fx.verify(&junk), Err(AuthError::Malformed("token longer than 8 KiB")));
    let junk = "!".repeat(MAX_TOKEN_LEN);
    assert_ne!(fx.verify(&junk), Err(AuthError::Malformed("token longer than 8 KiB")));
    // A genuinely signed token that is too long is refused just the same.
    let big = claims_with("scope", Some(json!(vec!["Email::list_pops"; 500].join(" "))));
    let token = fx.token_with(&big);
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(fx.verify(&token), Err(AuthError::Malformed("token longer than 8 KiB")));
    let eight_mib = "a".repeat(8 << 20);
    assert_eq!(
        fx.verify(&eight_mib),
        Err(AuthError::Malformed("token longer than 8 KiB"))
    );
}

#[test]
fn rejects_non_canonical_base64() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&claims());
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let join = |p: &[String]| p.join(".");
    // Padding, the standard alphabet, whitespace, in each part.
    for i in 0..3 {
        for mutate in [
            |s: &str| format!("{s}="),
            |s: &str| format!("{s}=="),
            |s: &str| format!(" {s}"),
            |s: &str| format!("{}\n{}", &s[..4], &s[4..]),
            |s: &str| s.replace('-', "+").replace('_', "/") + "+/",
        ] {
            let mut p = parts.clone();
            p[i] = mutate(&p[i]);
            assert!(fx.verify(&join(&p)).is_err(), "part {i}: {}", p[i]);
        }
    }
    // Non-canonical trailing bits: an Ed25519 signature is 64 bytes = 86 chars with 4 unused
    // bits; flipping them gives another spelling of the same bytes, which must be refused.
    let sig = &parts[2];
    let last = sig.as_bytes()[sig.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let twin = alphabet[idx ^ 0b0001] as char;
    let mut p = parts.clone();
    p[2] = format!("{}{twin}", &sig[..sig.len() - 1]);
    assert_eq!(
        fx.verify(&join(&p)),
        Err(AuthError::Malformed("not canonical base64url"))
    );
    // The same for the header: `{"alg":"EdDSA","typ":"at+jwt","kid":"2026-11"}` has 44 bytes,
    // 59 chars, 2 unused bits.
    let h = &parts[0];
    let last = h.as_bytes()[h.len() - 1];
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let mut p = parts.clone();
    p[0] = format!("{}{}", &h[..h.len() - 1], alphabet[idx ^ 0b01] as char);
    assert_eq!(
        fx.verify(&join(&p)),
        Err(AuthError::Malformed("header is not canonical base64url"))
    );
}

#[test]
fn rejects_wrong_number_of_parts() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&claims());
    for bad in [
        String::new(),
        ".".into(),
        "..".into(),
        format!("{token}."),
        format!("{token}.AAAA.BBBB"),
        format!(".{token}"),
        token.replacen('.', "..", 1),
    ] {
        assert!(matches!(fx.verify(&bad), Err(AuthError::Malformed(_))), "{bad}");
    }
}

// ---- header --------------------------------------------------------------------------------

fn assert_header_parameter_rejected(name: &str, value: Value, reason: &'static str) {
    let fx = Fixture::new(Algorithm::EdDSA);
    for value in [value, Value::Null] {
        let mut header = fx.header();
        header.as_object_mut().unwrap().insert(name.into(), value.clone());
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected(reason),
            "{name}: {value}"
        );
    }
}

#[test]
fn rejects_crit_header() {
    assert_header_parameter_rejected("crit", json!(["exp"]), "crit header not allowed");
}

#[test]
fn rejects_jku_header() {
    assert_header_parameter_rejected("jku", json!("https://evil.example/jwks.json"), "jku header not allowed");
}

#[test]
fn rejects_jwk_header() {
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
    assert_header_parameter_rejected("jwk", jwk, "jwk header not allowed");
}

#[test]
fn rejects_x5u_header() {
    assert_header_parameter_rejected("x5u", json!("https://evil.example/cert.pem"), "x5u header not allowed");
}

#[test]
fn rejects_x5c_header() {
    assert_header_parameter_rejected("x5c", json!(["MIIB"]), "x5c header not allowed");
}

#[test]
fn rejects_cty_header() {
    assert_header_parameter_rejected("cty", json!("JWT"), "cty header not allowed");
}

#[test]
fn rejects_unknown_header_parameters() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for (name, value) in [
        ("b64", json!(false)),
        ("x5t", json!("abc")),
        ("zip", json!("DEF")),
        ("foo", json!(1)),
    ] {
        let mut header = fx.header();
        header.as_object_mut().unwrap().insert(name.into(), value);
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected("malformed or unknown header parameter"),
            "{name}"
        );
    }
}

#[test]
fn rejects_duplicate_header_keys() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let payload = claims().to_string();
    for header in [
        r#"{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"2026-11"}"#,
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"2026-11","kid":"other"}"#,
        r#"{"alg":"EdDSA","typ":"JWT","typ":"at+jwt","kid":"2026-11"}"#,
    ] {
        assert_eq!(
            fx.verify(&fx.sign_raw(header, &payload)),
            rejected("malformed or unknown header parameter")
        );
    }
    assert!(fx.verify(&fx.sign_raw("[1,2]", &payload)).is_err());
    assert!(fx.verify(&fx.sign_raw("not json", &payload)).is_err());
}

#[test]
fn rejects_missing_or_wrong_typ() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let mut header = fx.header();
    header.as_object_mut().unwrap().remove("typ");
    assert_eq!(fx.verify(&fx.token(&header, &claims())), rejected("missing typ"));
    for typ in ["JWT", "jwt", "at+jwt ", "at+jwt2", "application/jwt", "", "at+JWT;q=1"] {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": KID });
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected("typ is not at+jwt"),
            "{typ:?}"
        );
    }
    for typ in [Value::Null, json!(1), json!(["at+jwt"])] {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": KID });
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected("malformed or unknown header parameter")
        );
    }
}

#[test]
fn accepts_typ_case_insensitive() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for typ in ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT"] {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": KID });
        assert!(fx.verify(&fx.token(&header, &claims())).is_ok(), "{typ}");
    }
}

#[test]
fn rejects_unknown_or_missing_kid() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for kid in ["2026-10", "2026-11 ", "2026-1", "", "signing"] {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected("unknown kid"),
            "{kid:?}"
        );
    }
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt" });
    assert_eq!(fx.verify(&fx.token(&header, &claims())), rejected("missing kid"));
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": 1 });
    assert!(fx.verify(&fx.token(&header, &claims())).is_err());
}

#[test]
fn rejects_kid_path_traversal() {
    let fx = Fixture::new(Algorithm::EdDSA);
    // Files that exist: the kid must never be read as a path (nor a URL, nor a query).
    let key_path = fx.dir.path().join("signing.pem");
    for kid in [
        "../../../../../../dev/null",
        "/dev/null",
        key_path.to_str().unwrap(),
        "signing.pem",
        "./2026-11",
        "2026-11/../2026-11",
        "2026-11\u{0}",
        "https://evil.example/key.pem",
        "' OR '1'='1",
    ] {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        assert_eq!(
            fx.verify(&fx.token(&header, &claims())),
            rejected("unknown kid"),
            "{kid:?}"
        );
    }
    // HS256 with an empty-secret file as the "key": still only the map counts.
    let fx = Fixture::new(Algorithm::HS256);
    let empty = EncodingKey::from_secret(b"");
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": "../../../../dev/null" });
    let token = sign_with(
        jsonwebtoken::Algorithm::HS256,
        &empty,
        &header.to_string(),
        &claims().to_string(),
    );
    assert_eq!(fx.verify(&token), rejected("unknown kid"));
}
