//! Token attack suite (security.md §1) through the gateway: every malicious token is sent as a
//! real request and must get 401 `unauthenticated` with `WWW-Authenticate: Bearer`, with nothing
//! forwarded to cPanel. Tokens are crafted by hand (base64url of header and payload JSON, signed
//! with whatever key the attack needs); each test's control is a hand-signed valid token.
//!
//! Unit-level versions of the same rows live in `src/token/tests/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm as Jwa, EncodingKey};
use proptest::prelude::*;
use serde_json::{json, Value};

use cpgate::token::Algorithm;
use support::{assert_nothing_forwarded, Answer, Gateway};

const LIST: &str = "/execute/Email/list_pops";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The gateway's own signing key, read from its key file, for hand-crafted tokens.
struct Forge {
    alg: Jwa,
    key: EncodingKey,
    kid: String,
    /// The public key PEM (asymmetric algorithms).
    public_pem: Option<Vec<u8>>,
}

impl Forge {
    fn of(gw: &Gateway) -> Self {
        let tokens = &gw.app.config.tokens;
        let private = std::fs::read(&tokens.key_file).unwrap();
        let kid = tokens.key_id.clone();
        let public = tokens.key_file.with_file_name(format!("{kid}.pub.pem"));
        let (alg, key) = match tokens.algorithm {
            Algorithm::EdDSA => (Jwa::EdDSA, EncodingKey::from_ed_pem(&private).unwrap()),
            Algorithm::ES256 => (Jwa::ES256, EncodingKey::from_ec_pem(&private).unwrap()),
            Algorithm::RS256 => (Jwa::RS256, EncodingKey::from_rsa_pem(&private).unwrap()),
            Algorithm::HS256 => (Jwa::HS256, EncodingKey::from_secret(&private)),
        };
        Forge {
            alg,
            key,
            kid,
            public_pem: std::fs::read(public).ok(),
        }
    }

    /// The header cpgate issues.
    fn header(&self) -> Value {
        json!({ "alg": jwa_name(self.alg), "typ": "at+jwt", "kid": self.kid })
    }

    /// Signs raw header and payload text with the real key.
    fn sign_raw(&self, header: &str, payload: &str) -> String {
        sign_with(self.alg, &self.key, header, payload)
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A valid token with these claims.
    fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

fn jwa_name(alg: Jwa) -> &'static str {
    match alg {
        Jwa::EdDSA => "EdDSA",
        Jwa::ES256 => "ES256",
        Jwa::RS256 => "RS256",
        Jwa::HS256 => "HS256",
        _ => unreachable!(),
    }
}

/// `b64(header).b64(payload).sig`, signed with `key` under `alg` whatever the header says.
fn sign_with(alg: Jwa, key: &EncodingKey, header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// `b64(header).b64(payload).b64(signature)` with arbitrary signature bytes.
fn with_signature(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// Claims valid right now for alice.
fn claims() -> Value {
    let now = now();
    json!({
        "iss": "cpgate",
        "aud": "cpanel",
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "5f0c7a1e-1d2b-4c3d-9e8f-0a1b2c3d4e5f",
    })
}

fn claims_with(key: &str, value: Option<Value>) -> Value {
    let mut c = claims();
    let map = c.as_object_mut().unwrap();
    match value {
        Some(v) => map.insert(key.into(), v),
        None => map.remove(key),
    };
    c
}

async fn call(gw: &Gateway, authorization: &str) -> Answer {
    gw.send("GET", LIST, &[("authorization", authorization)], "").await
}

/// 401 `unauthenticated` + `WWW-Authenticate: Bearer`, nothing forwarded.
async fn assert_rejected(gw: &Gateway, token: &str) {
    let a = call(gw, &format!("Bearer {token}")).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.code(), "unauthenticated");
    assert!(a.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_nothing_forwarded(gw);
}

/// The control: the same forging path with nothing wrong is accepted.
async fn assert_accepted(gw: &Gateway, token: &str) {
    let a = call(gw, &format!("Bearer {token}")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

// --- Algorithms and signatures ------------------------------------------------------------------

#[tokio::test]
async fn hand_signed_valid_token_is_accepted() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    assert_accepted(&gw, &f.token(&claims())).await;
}

#[tokio::test]
async fn alg_none_every_spelling_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": none, "typ": "at+jwt", "kid": f.kid });
        assert_rejected(&gw, &with_signature(&header, &claims(), b"")).await;
        assert_rejected(&gw, &with_signature(&header, &claims(), b"x")).await;
        let unsigned = with_signature(&header, &claims(), b"");
        assert_rejected(&gw, unsigned.trim_end_matches('.')).await;
    }
}

#[tokio::test]
async fn alg_missing_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let header = json!({ "typ": "at+jwt", "kid": f.kid });
    assert_rejected(&gw, &f.sign(&header, &claims())).await;
}

#[tokio::test]
async fn hs256_signed_with_the_eddsa_public_key_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let hmac = EncodingKey::from_secret(f.public_pem.as_deref().unwrap());
    for alg in ["HS256", jwa_name(f.alg)] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid });
        let forged = sign_with(Jwa::HS256, &hmac, &header.to_string(), &claims().to_string());
        assert_rejected(&gw, &forged).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rs256_public_key_is_401() {
    let gw = Gateway::start_with(|s| s.algorithm = Algorithm::RS256).await;
    let f = Forge::of(&gw);
    assert_accepted(&gw, &f.token(&claims())).await;
    gw.upstream.requests.lock().unwrap().clear();
    let pem = f.public_pem.clone().unwrap();
    let hmac = EncodingKey::from_secret(&pem);
    for alg in ["HS256", "RS256"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid });
        assert_rejected(
            &gw,
            &sign_with(Jwa::HS256, &hmac, &header.to_string(), &claims().to_string()),
        )
        .await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_es256_public_key_is_401() {
    let gw = Gateway::start_with(|s| s.algorithm = Algorithm::ES256).await;
    let f = Forge::of(&gw);
    let hmac = EncodingKey::from_secret(f.public_pem.as_deref().unwrap());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": f.kid });
    assert_rejected(
        &gw,
        &sign_with(Jwa::HS256, &hmac, &header.to_string(), &claims().to_string()),
    )
    .await;
}

/// An attacker's own key of another family, with the gateway's kid.
#[tokio::test]
async fn es256_and_rs256_tokens_on_an_eddsa_gateway_are_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    for (alg, key) in [
        (
            Jwa::ES256,
            EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
        ),
        (
            Jwa::RS256,
            EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap(),
        ),
    ] {
        let header = json!({ "alg": jwa_name(alg), "typ": "at+jwt", "kid": f.kid });
        assert_rejected(&gw, &sign_with(alg, &key, &header.to_string(), &claims().to_string())).await;
    }
}

#[tokio::test]
async fn ecdsa_zero_signature_is_401_cve_2022_21449() {
    let gw = Gateway::start_with(|s| s.algorithm = Algorithm::ES256).await;
    let f = Forge::of(&gw);
    assert_accepted(&gw, &f.token(&claims())).await;
    gw.upstream.requests.lock().unwrap().clear();
    assert_rejected(&gw, &with_signature(&f.header(), &claims(), &[0u8; 64])).await;
    // r = s = 0 in DER, for libraries that accept DER signatures.
    assert_rejected(
        &gw,
        &with_signature(
            &f.header(),
            &claims(),
            &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
    )
    .await;
}

#[tokio::test]
async fn stripped_signature_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let token = f.token(&claims());
    let (message, _) = token.rsplit_once('.').unwrap();
    assert_rejected(&gw, &format!("{message}.")).await;
    assert_rejected(&gw, message).await;
    assert_rejected(&gw, &format!("{message}.AAAA")).await;
}

#[tokio::test]
async fn signature_by_another_key_of_the_same_algorithm_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).unwrap();
    assert_rejected(
        &gw,
        &sign_with(Jwa::EdDSA, &key, &f.header().to_string(), &claims().to_string()),
    )
    .await;
}

#[tokio::test]
async fn tampered_payload_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let token = f.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let evil = b64(claims_with("sub", Some(json!("limited"))).to_string().as_bytes());
    assert_rejected(&gw, &format!("{}.{evil}.{}", parts[0], parts[2])).await;
}

#[tokio::test]
async fn non_canonical_base64_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let token = f.token(&claims());
    let (message, sig) = token.rsplit_once('.').unwrap();
    // Padding, standard-alphabet characters, and flipped unused trailing bits.
    assert_rejected(&gw, &format!("{token}==")).await;
    assert_rejected(&gw, &format!("{message}.+{}", &sig[1..])).await;
    assert_rejected(&gw, &format!("{message}./{}", &sig[1..])).await;
    let mut bytes = sig.as_bytes().to_vec();
    let last = bytes.last_mut().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let i = alphabet.iter().position(|c| c == last).unwrap();
    *last = alphabet[i ^ 1];
    assert_rejected(&gw, &format!("{message}.{}", String::from_utf8(bytes).unwrap())).await;
}

#[tokio::test]
async fn wrong_number_of_parts_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let token = f.token(&claims());
    assert_rejected(&gw, &format!("{token}.x")).await;
    assert_rejected(&gw, &format!("a.{token}")).await;
    assert_rejected(&gw, "..").await;
}

// --- Header parameters -----------------------------------------------------------------------

async fn assert_header_parameter_rejected(name: &str, value: Value) {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let mut header = f.header();
    header[name] = value;
    assert_rejected(&gw, &f.sign(&header, &claims())).await;
}

#[tokio::test]
async fn crit_header_is_401() {
    assert_header_parameter_rejected("crit", json!(["exp"])).await;
}

#[tokio::test]
async fn jku_header_is_401() {
    assert_header_parameter_rejected("jku", json!("https://evil.example/jwks.json")).await;
}

/// The attacker embeds their own public key and signs with its private half.
#[tokio::test]
async fn embedded_jwk_header_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let attacker = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = EncodingKey::from_ed_pem(attacker.serialize_pem().as_bytes()).unwrap();
    let raw = attacker.public_key_raw();
    let mut header = f.header();
    header["jwk"] = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(raw) });
    assert_rejected(
        &gw,
        &sign_with(Jwa::EdDSA, &key, &header.to_string(), &claims().to_string()),
    )
    .await;
    // Even signed with the real key, the parameter alone refuses it.
    assert_rejected(&gw, &f.sign(&header, &claims())).await;
}

#[tokio::test]
async fn x5u_header_is_401() {
    assert_header_parameter_rejected("x5u", json!("https://evil.example/cert.pem")).await;
}

#[tokio::test]
async fn x5c_header_is_401() {
    assert_header_parameter_rejected("x5c", json!(["MIIB"])).await;
}

#[tokio::test]
async fn cty_header_is_401() {
    assert_header_parameter_rejected("cty", json!("JWT")).await;
}

#[tokio::test]
async fn null_valued_forbidden_header_is_401() {
    assert_header_parameter_rejected("jku", Value::Null).await;
}

#[tokio::test]
async fn unknown_header_parameter_is_401() {
    assert_header_parameter_rejected("b64", json!(false)).await;
}

#[tokio::test]
async fn kid_path_traversal_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let empty = EncodingKey::from_secret(b"");
    for kid in [
        "../../../../../../dev/null",
        "/dev/null",
        "../keys/../keys/x",
        "file:///etc/passwd",
        "https://evil.example/key.pem",
        "x' OR '1'='1",
        &format!("{}/../{}", f.kid, f.kid),
        &format!("./{}", f.kid),
    ] {
        let header = json!({ "alg": jwa_name(f.alg), "typ": "at+jwt", "kid": kid });
        assert_rejected(&gw, &f.sign(&header, &claims())).await;
        // The /dev/null trick: an HMAC over an empty key file.
        let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
        assert_rejected(
            &gw,
            &sign_with(Jwa::HS256, &empty, &header.to_string(), &claims().to_string()),
        )
        .await;
    }
}

#[tokio::test]
async fn missing_or_unknown_kid_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    assert_rejected(
        &gw,
        &f.sign(&json!({ "alg": jwa_name(f.alg), "typ": "at+jwt" }), &claims()),
    )
    .await;
    assert_rejected(
        &gw,
        &f.sign(
            &json!({ "alg": jwa_name(f.alg), "typ": "at+jwt", "kid": "2020-01-01-000000" }),
            &claims(),
        ),
    )
    .await;
    assert_rejected(
        &gw,
        &f.sign(&json!({ "alg": jwa_name(f.alg), "typ": "at+jwt", "kid": 1 }), &claims()),
    )
    .await;
}

#[tokio::test]
async fn wrong_or_missing_typ_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for typ in [json!("JWT"), json!("id_token+jwt"), json!(null), json!(1)] {
        let mut header = f.header();
        header["typ"] = typ;
        assert_rejected(&gw, &f.sign(&header, &claims())).await;
    }
    let mut header = f.header();
    header.as_object_mut().unwrap().remove("typ");
    assert_rejected(&gw, &f.sign(&header, &claims())).await;
}

#[tokio::test]
async fn duplicate_header_keys_are_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let header = format!(
        r#"{{"alg":"none","alg":"{}","typ":"at+jwt","kid":"{}"}}"#,
        jwa_name(f.alg),
        f.kid
    );
    assert_rejected(&gw, &f.sign_raw(&header, &claims().to_string())).await;
}

// --- Claims ----------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_typed_claims_are_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let n = now();
    let cases = [
        ("aud", json!(1)),
        ("aud", json!(["cpanel"])),
        ("aud", json!({})),
        ("iss", json!({})),
        ("iss", json!(["cpgate"])),
        ("sub", json!(7)),
        ("sub", json!(null)),
        ("exp", json!((n + 600).to_string())),
        ("exp", json!(n as f64 + 600.5)),
        ("exp", json!(-1)),
        ("iat", json!(-1)),
        ("iat", json!(true)),
        ("nbf", json!(null)),
        ("nbf", json!([n])),
        ("jti", json!(5)),
        ("scope", json!(null)),
        ("scope", json!(["Email::list_pops"])),
    ];
    for (key, value) in cases {
        assert_rejected(&gw, &f.token(&claims_with(key, Some(value)))).await;
    }
}

#[tokio::test]
async fn missing_required_claims_are_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for key in ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"] {
        assert_rejected(&gw, &f.token(&claims_with(key, None))).await;
    }
}

#[tokio::test]
async fn unknown_claim_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    assert_rejected(&gw, &f.token(&claims_with("admin", Some(json!(true))))).await;
}

#[tokio::test]
async fn wrong_issuer_or_audience_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    assert_rejected(&gw, &f.token(&claims_with("iss", Some(json!("evil"))))).await;
    assert_rejected(&gw, &f.token(&claims_with("aud", Some(json!("whm"))))).await;
}

#[tokio::test]
async fn duplicate_claim_keys_are_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let text = claims().to_string();
    let dup = format!("{},\"sub\":\"limited\"}}", &text[..text.len() - 1]);
    assert_rejected(&gw, &f.sign_raw(&f.header().to_string(), &dup)).await;
    let escaped = format!("{},\"\\u0073ub\":\"limited\"}}", &text[..text.len() - 1]);
    assert_rejected(&gw, &f.sign_raw(&f.header().to_string(), &escaped)).await;
}

#[tokio::test]
async fn subject_that_is_not_a_developer_id_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for sub in ["../alice", "alice\n", "", "ALICE/x"] {
        assert_rejected(&gw, &f.token(&claims_with("sub", Some(json!(sub))))).await;
    }
}

#[tokio::test]
async fn invalid_jti_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for jti in ["", "a b", "a\"b", &"x".repeat(129)] {
        assert_rejected(&gw, &f.token(&claims_with("jti", Some(json!(jti))))).await;
    }
}

#[tokio::test]
async fn expired_token_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let n = now();
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":n - 700,"nbf":n - 700,"exp":n - 100,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
}

#[tokio::test]
async fn token_issued_in_the_future_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let n = now();
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":n + 300,"nbf":n,"exp":n + 600,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
}

#[tokio::test]
async fn token_not_yet_valid_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let n = now();
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":n,"nbf":n + 300,"exp":n + 600,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
}

#[tokio::test]
async fn lifetime_over_max_ttl_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let n = now();
    let max = gw.app.config.tokens.max_ttl.as_secs();
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":n,"nbf":n,"exp":n + max + 1,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":n,"nbf":n,"exp":u64::MAX,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"alice","iat":0,"nbf":0,"exp":u64::MAX,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
}

#[tokio::test]
async fn lifetime_over_the_developers_max_token_ttl_is_401() {
    let gw = Gateway::start_with(|s| {
        s.policies.push((
            "brief.toml".into(),
            "max_token_ttl = \"5m\"\n[[allow]]\ncalls = [\"Email::list_pops\"]\n".into(),
        ))
    })
    .await;
    let f = Forge::of(&gw);
    let n = now();
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"brief","iat":n,"nbf":n,"exp":n + 301,"jti":"a"});
    assert_rejected(&gw, &f.token(&c)).await;
    let c = json!({"iss":"cpgate","aud":"cpanel","sub":"brief","iat":n,"nbf":n,"exp":n + 300,"jti":"a"});
    assert_accepted(&gw, &f.token(&c)).await;
}

#[tokio::test]
async fn scope_that_is_empty_or_malformed_is_401() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    for scope in [
        "",
        " ",
        "Email::list_pops  Email::add_pop",
        "Email::list pops",
        "::",
        "Email::list_pops ",
    ] {
        assert_rejected(&gw, &f.token(&claims_with("scope", Some(json!(scope))))).await;
    }
}

// --- Sizes -----------------------------------------------------------------------------------

#[tokio::test]
async fn token_just_over_8_kib_is_401_without_decoding() {
    let gw = Gateway::start().await;
    let f = Forge::of(&gw);
    let padding = "p".repeat(8 * 1024);
    let token = f.token(&claims_with("pad", Some(json!(padding))));
    assert!(token.len() > 8 * 1024 && token.len() < 14 * 1024);
    assert_rejected(&gw, &token).await;
}

#[tokio::test]
async fn huge_8_mib_token_is_refused_before_any_decoding() {
    let gw = Gateway::start().await;
    let token = format!("{}.{}.{}", "e".repeat(16), "A".repeat(8 << 20), "s".repeat(86));
    let request = format!("GET {LIST} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    let started = Instant::now();
    let mut conn = support::RawConn::open(gw.addr).await;
    let _ = tokio::io::AsyncWriteExt::write_all(&mut conn.stream, request.as_bytes()).await;
    let answer = conn.response().await;
    if let Some(r) = answer {
        assert_eq!(r.status, 431, "{r:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_nothing_forwarded(&gw);
}

// --- Credential forms ------------------------------------------------------------------------

#[tokio::test]
async fn basic_credential_naming_another_developer_is_401() {
    let gw = Gateway::start().await;
    let token = gw.token("alice");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("limited:{token}"));
    let a = call(&gw, &format!("Basic {basic}")).await;
    assert_eq!(a.status, 401);
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn malformed_authorization_values_are_401() {
    let gw = Gateway::start().await;
    let token = gw.token("alice");
    for value in [
        format!("Bearer  {token}"),
        format!("Bearer\t{token}"),
        format!("Token {token}"),
        format!("cpanel alice {token}"),
        format!("cpanel :{token}"),
        "Bearer".to_owned(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("alice:{token}x"))
        ),
    ] {
        let a = call(&gw, &value).await;
        assert_eq!(a.status, 401, "{}", &value[..value.len().min(12)]);
        assert_eq!(a.code(), "unauthenticated");
    }
    assert_nothing_forwarded(&gw);
}

#[test]
fn hmac_key_shorter_than_32_bytes_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, [7u8; 31]).unwrap();
    assert!(cpgate::token::KeyRing::load(Algorithm::HS256, &short, "k", &[]).is_err());
    let ok = dir.path().join("ok.key");
    std::fs::write(&ok, [7u8; 32]).unwrap();
    assert!(cpgate::token::KeyRing::load(Algorithm::HS256, &ok, "k", &[]).is_ok());
}

// --- Property: accepted iff every claim is well-typed and in range ------------------------------

/// A numeric time claim: absent, wrong-typed, or `now + offset`. Offsets avoid the exact
/// boundaries by more than a second, so the test and the gateway clocks may differ by one.
#[derive(Clone, Debug)]
enum Num {
    Absent,
    Wrong(Value),
    At(i64),
}

/// A string claim: absent, wrong-typed, the right value, or a well-typed wrong value.
#[derive(Clone, Debug)]
enum Text {
    Absent,
    Wrong(Value),
    Good,
    Bad(&'static str),
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        1 => Just(Num::Absent),
        1 => prop_oneof![Just(json!("1")), Just(json!(1.5)), Just(json!(-5)), Just(json!(null)), Just(json!([1]))].prop_map(Num::Wrong),
        8 => prop::sample::select(vec![-4000i64, -3700, -700, -100, -60, -10, 0, 10, 60, 100, 600, 3590, 3610, 4000]).prop_map(Num::At),
    ]
}

fn text(bad: &'static [&'static str]) -> impl Strategy<Value = Text> {
    prop_oneof![
        1 => Just(Text::Absent),
        1 => prop_oneof![Just(json!(1)), Just(json!(null)), Just(json!({})), Just(json!(["x"]))].prop_map(Text::Wrong),
        1 => prop::sample::select(bad).prop_map(Text::Bad),
        6 => Just(Text::Good),
    ]
}

#[derive(Clone, Debug)]
struct ClaimSet {
    iss: Text,
    aud: Text,
    sub: Text,
    jti: Text,
    iat: Num,
    nbf: Num,
    exp: Num,
}

fn claim_set() -> impl Strategy<Value = ClaimSet> {
    (
        text(&["evil", "CPGATE"]),
        text(&["whm", "cpanel "]),
        text(&["ghost", "../x"]),
        text(&["a b", ""]),
        num(),
        num(),
        num(),
    )
        .prop_map(|(iss, aud, sub, jti, iat, nbf, exp)| ClaimSet {
            iss,
            aud,
            sub,
            jti,
            iat,
            nbf,
            exp,
        })
}

impl ClaimSet {
    fn json(&self, now: u64) -> Value {
        let mut m = serde_json::Map::new();
        let good = [
            ("iss", "cpgate"),
            ("aud", "cpanel"),
            ("sub", "alice"),
            ("jti", "prop-1"),
        ];
        for ((name, good), t) in good.iter().zip([&self.iss, &self.aud, &self.sub, &self.jti]) {
            match t {
                Text::Absent => {}
                Text::Wrong(v) => drop(m.insert((*name).into(), v.clone())),
                Text::Good => drop(m.insert((*name).into(), json!(good))),
                Text::Bad(s) => drop(m.insert((*name).into(), json!(s))),
            }
        }
        for (name, n) in [("iat", &self.iat), ("nbf", &self.nbf), ("exp", &self.exp)] {
            match n {
                Num::Absent => {}
                Num::Wrong(v) => drop(m.insert(name.into(), v.clone())),
                Num::At(off) => drop(m.insert(name.into(), json!(now.checked_add_signed(*off).unwrap()))),
            }
        }
        Value::Object(m)
    }

    /// The model (leeway 30 s, max_ttl 3600 s, alice has a policy, the other subjects not).
    fn acceptable(&self) -> bool {
        let texts_ok = [&self.iss, &self.aud, &self.sub, &self.jti]
            .iter()
            .all(|t| matches!(t, Text::Good));
        let (Num::At(iat), Num::At(nbf), Num::At(exp)) = (&self.iat, &self.nbf, &self.exp) else {
            return false;
        };
        texts_ok && exp > iat && exp - iat <= 3600 && nbf < exp && *iat <= 30 && *nbf <= 30 && 0 < exp + 30
    }
}

struct Shared {
    runtime: tokio::runtime::Runtime,
    gw: Gateway,
    forge: Forge,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let gw = runtime.block_on(Gateway::start_with(|s| s.rate_limit = (100_000, 10_000)));
        let forge = Forge::of(&gw);
        Shared { runtime, gw, forge }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn token_is_accepted_iff_every_claim_is_well_typed_and_in_range(set in claim_set()) {
        let s = shared();
        let token = s.forge.token(&set.json(now()));
        let answer = s.runtime.block_on(call(&s.gw, &format!("Bearer {token}")));
        let accepted = answer.status == 200;
        prop_assert!(answer.status == 200 || answer.status == 401, "status {}", answer.status);
        prop_assert_eq!(accepted, set.acceptable(), "claims {}", set.json(now()));
    }
}
