//! The `Authorization` forms: each accepted form, and every malformed variant refused.

use std::borrow::Cow;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;

use super::*;
use crate::principal::DeveloperId;
use crate::token::{check_claimed_developer, parse_authorization, Credential, MAX_AUTHORIZATION_LEN};

const JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

fn malformed(value: &[u8]) {
    match parse_authorization(value) {
        Err(AuthError::Malformed(_)) => {}
        other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(value)),
    }
}

#[test]
fn parses_bearer() {
    let value = format!("Bearer {JWT}");
    let c = parse_authorization(value.as_bytes()).unwrap();
    assert_eq!(
        c,
        Credential {
            developer: None,
            token: Cow::Borrowed(JWT)
        }
    );
}

#[test]
fn parses_cpanel_developer_and_token() {
    let value = format!("cpanel alice:{JWT}");
    let c = parse_authorization(value.as_bytes()).unwrap();
    assert_eq!(c.developer.as_deref(), Some("alice"));
    assert_eq!(c.token, JWT);
}

#[test]
fn parses_basic_developer_and_token() {
    let value = format!("Basic {}", STANDARD.encode(format!("team.a-b_c:{JWT}")));
    let c = parse_authorization(value.as_bytes()).unwrap();
    assert_eq!(c.developer.as_deref(), Some("team.a-b_c"));
    assert_eq!(c.token, JWT);
}

#[test]
fn scheme_is_case_insensitive() {
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        assert!(
            parse_authorization(format!("{scheme} {JWT}").as_bytes()).is_ok(),
            "{scheme}"
        );
    }
    for scheme in ["CPANEL", "Cpanel", "cPanel"] {
        assert!(
            parse_authorization(format!("{scheme} alice:{JWT}").as_bytes()).is_ok(),
            "{scheme}"
        );
    }
    let creds = STANDARD.encode(format!("alice:{JWT}"));
    for scheme in ["basic", "BASIC", "bAsIc"] {
        assert!(
            parse_authorization(format!("{scheme} {creds}").as_bytes()).is_ok(),
            "{scheme}"
        );
    }
}

#[test]
fn debug_never_shows_the_token() {
    let value = format!("cpanel alice:{JWT}");
    let c = parse_authorization(value.as_bytes()).unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("alice") && !shown.contains(JWT) && !shown.contains("c2ln"),
        "{shown}"
    );
}

#[test]
fn empty_value_is_missing() {
    assert_eq!(parse_authorization(b""), Err(AuthError::Missing));
}

#[test]
fn rejects_wrong_scheme() {
    for value in [
        format!("Token {JWT}"),
        format!("Digest {JWT}"),
        format!("Bearer: {JWT}"),
        format!("Bear {JWT}"),
        format!("whm alice:{JWT}"),
        format!("cpanel-token alice:{JWT}"),
        format!("Negotiate {JWT}"),
        JWT.to_string(),
    ] {
        malformed(value.as_bytes());
    }
}

#[test]
fn rejects_anything_but_exactly_one_space() {
    for value in [
        format!("Bearer  {JWT}"),
        format!("Bearer\t{JWT}"),
        format!("Bearer{JWT}"),
        format!(" Bearer {JWT}"),
        format!("Bearer {JWT} "),
        format!("Bearer {JWT} extra"),
        format!("cpanel alice: {JWT}"),
        format!("cpanel alice :{JWT}"),
        "Bearer ".into(),
        "Bearer".into(),
        " ".into(),
    ] {
        malformed(value.as_bytes());
    }
}

#[test]
fn rejects_control_and_non_ascii_bytes() {
    malformed(b"Bearer abc\x00def");
    malformed(b"Bearer abc\x7fdef");
    malformed(b"Bearer abc\xffdef");
    malformed("Bearer abcédef".as_bytes());
    malformed(b"cpanel alice:abc\r\nX-Evil: 1");
}

#[test]
fn rejects_no_colon() {
    malformed(format!("cpanel alice{JWT}").as_bytes());
    malformed(format!("Basic {}", STANDARD.encode(format!("alice{JWT}"))).as_bytes());
}

#[test]
fn rejects_empty_developer_or_token() {
    malformed(format!("cpanel :{JWT}").as_bytes());
    malformed(b"cpanel alice:");
    malformed(b"cpanel :");
    malformed(format!("Basic {}", STANDARD.encode(format!(":{JWT}"))).as_bytes());
    malformed(format!("Basic {}", STANDARD.encode("alice:")).as_bytes());
    malformed(b"Basic ");
}

#[test]
fn rejects_invalid_developer_id() {
    for developer in ["Alice", "../etc", "-a", "a/b", &"a".repeat(65)] {
        malformed(format!("cpanel {developer}:{JWT}").as_bytes());
        malformed(format!("Basic {}", STANDARD.encode(format!("{developer}:{JWT}"))).as_bytes());
    }
}

#[test]
fn rejects_bad_base64() {
    let good = STANDARD.encode(format!("alice:{JWT}"));
    assert!(good.ends_with('='), "the sample needs padding for this test");
    let unpadded = good.trim_end_matches('=');
    malformed(format!("Basic {unpadded}").as_bytes());
    malformed(format!("Basic {good}=").as_bytes());
    malformed(format!("Basic {good}x").as_bytes());
    malformed(b"Basic !!!!");
    // The URL-safe alphabet is not Basic's.
    let urlsafe = URL_SAFE.encode([0xfb, 0xff, b':', b'x']);
    malformed(format!("Basic {urlsafe}").as_bytes());
    // Non-canonical trailing bits: "YQ==" is "a"; "YR==" decodes to the same byte loosely.
    malformed(b"Basic YR==");
    // Not UTF-8 or not visible ASCII once decoded.
    malformed(format!("Basic {}", STANDARD.encode(b"alice:\xff\xfe")).as_bytes());
    malformed(format!("Basic {}", STANDARD.encode(b"alice:to ken")).as_bytes());
}

#[test]
fn rejects_oversize_before_decoding() {
    // Not base64 at all: only the length check can have refused it.
    let value = format!("Basic {}", "!".repeat(MAX_AUTHORIZATION_LEN));
    assert_eq!(
        parse_authorization(value.as_bytes()),
        Err(AuthError::Malformed("authorization value too long"))
    );
    let value = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
    assert_eq!(
        parse_authorization(value.as_bytes()),
        Err(AuthError::Malformed("authorization value too long"))
    );
    // The largest legitimate Basic value fits: 64-byte developer, 8 KiB token.
    let value = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            "a".repeat(64),
            "t".repeat(crate::token::MAX_TOKEN_LEN)
        ))
    );
    assert!(value.len() <= MAX_AUTHORIZATION_LEN);
    assert!(parse_authorization(value.as_bytes()).is_ok());
}

#[test]
fn errors_never_echo_the_credential() {
    let canary = "canary5e2f";
    for value in [
        format!("Token {canary}"),
        format!("cpanel {canary}"),
        format!("cpanel Bad{canary}:{canary}"),
        format!("Basic {canary}"),
        format!("Bearer  {canary}"),
        format!("Basic {}", STANDARD.encode(canary)),
    ] {
        let err = parse_authorization(value.as_bytes()).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(canary), "{err:?}");
    }
}

fn principal(developer: &str) -> Principal {
    Principal {
        developer: DeveloperId::parse(developer).unwrap(),
        jti: "j".into(),
        scope: None,
        issued_at: NOW,
        expires_at: NOW + 60,
    }
}

#[test]
fn claimed_developer_must_equal_sub() {
    let value = format!("cpanel mallory:{JWT}");
    let cred = parse_authorization(value.as_bytes()).unwrap();
    assert_eq!(
        check_claimed_developer(&cred, &principal("alice")),
        Err(AuthError::Rejected("claimed developer is not the token subject"))
    );
    assert_eq!(check_claimed_developer(&cred, &principal("mallory")), Ok(()));
    let basic = format!("Basic {}", STANDARD.encode(format!("mallory:{JWT}")));
    let cred = parse_authorization(basic.as_bytes()).unwrap();
    assert!(check_claimed_developer(&cred, &principal("alice")).is_err());
    let value = format!("Bearer {JWT}");
    let bearer = parse_authorization(value.as_bytes()).unwrap();
    assert_eq!(check_claimed_developer(&bearer, &principal("alice")), Ok(()));
}

#[test]
fn cpanel_form_end_to_end_with_a_real_token() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let token = fx.token_with(&claims());
    let header = format!("cpanel alice:{token}");
    let cred = parse_authorization(header.as_bytes()).unwrap();
    let p = fx.verify(&cred.token).unwrap();
    assert_eq!(check_claimed_developer(&cred, &p), Ok(()));
    let header = format!("Basic {}", STANDARD.encode(format!("bob:{token}")));
    let cred = parse_authorization(header.as_bytes()).unwrap();
    let p = fx.verify(&cred.token).unwrap();
    assert!(check_claimed_developer(&cred, &p).is_err());
}
