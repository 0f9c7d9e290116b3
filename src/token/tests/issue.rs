//! Issuance: round trips for every algorithm, and every refusal.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::*;
use crate::principal::DeveloperId;
use crate::token::{issue, IssueError, MAX_TOKEN_LEN};

fn alice() -> DeveloperId {
    DeveloperId::parse("alice").unwrap()
}

fn part(token: &str, i: usize) -> Value {
    let segment = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn round_trip(alg: Algorithm) {
    let fx = Fixture::new(alg);
    let scope = "Email::list_pops api2:ZoneEdit::fetchzone_records";
    let issued = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(900), Some(scope), NOW).unwrap();
    assert_eq!(issued.expires_at, NOW + 900);
    let header = part(&issued.token, 0);
    assert_eq!(
        header,
        serde_json::json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": KID })
    );
    let claims = part(&issued.token, 1);
    assert_eq!(
        claims,
        serde_json::json!({
            "iss": "cpgate", "aud": "cpanel", "sub": "alice", "iat": NOW, "nbf": NOW,
            "exp": NOW + 900, "jti": issued.jti, "scope": scope,
        })
    );
    let shown = format!("{issued:?}");
    assert!(
        shown.contains(&issued.jti) && !shown.contains(&issued.token[..40]),
        "{shown}"
    );
    let p = fx.verify(&issued.token).unwrap();
    assert_eq!(p.developer, alice());
    assert_eq!(p.jti, issued.jti);
    assert_eq!((p.issued_at, p.expires_at), (NOW, NOW + 900));
    assert_eq!(p.scope.unwrap().len(), 2);
    // Without scope, no `scope` claim at all (no narrowing).
    let issued = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(60), None, NOW).unwrap();
    assert!(part(&issued.token, 1).get("scope").is_none());
    assert_eq!(fx.verify(&issued.token).unwrap().scope, None);
    // And it expires when it says.
    assert!(fx.verifier.verify(&issued.token, NOW + 60 + LEEWAY).is_err());
}

#[test]
fn round_trip_eddsa() {
    round_trip(Algorithm::EdDSA);
}

#[test]
fn round_trip_es256() {
    round_trip(Algorithm::ES256);
}

#[test]
fn round_trip_rs256() {
    round_trip(Algorithm::RS256);
}

#[test]
fn round_trip_hs256() {
    round_trip(Algorithm::HS256);
}

#[test]
fn issue_refuses_ttl_over_max_ttl() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let ttl = Duration::from_secs(MAX_TTL + 1);
    assert_eq!(
        issue(&fx.ring, &rules(), &alice(), ttl, None, NOW).unwrap_err(),
        IssueError::TtlTooLong {
            requested: ttl,
            max: Duration::from_secs(MAX_TTL)
        }
    );
    assert!(issue(
        &fx.ring,
        &rules(),
        &alice(),
        Duration::from_millis(MAX_TTL * 1000 + 1),
        None,
        NOW
    )
    .is_err());
    assert!(issue(&fx.ring, &rules(), &alice(), Duration::from_secs(MAX_TTL), None, NOW).is_ok());
}

#[test]
fn issue_refuses_zero_or_subsecond_ttl() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for ttl in [Duration::ZERO, Duration::from_millis(999)] {
        assert_eq!(
            issue(&fx.ring, &rules(), &alice(), ttl, None, NOW).unwrap_err(),
            IssueError::TtlTooShort
        );
    }
}

#[test]
fn issue_refuses_ttl_overflowing_the_clock() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let err = issue(
        &fx.ring,
        &rules(),
        &alice(),
        Duration::from_secs(60),
        None,
        u64::MAX - 10,
    )
    .unwrap_err();
    assert_eq!(err, IssueError::TtlOverflow);
}

#[test]
fn issue_refuses_invalid_scope() {
    let fx = Fixture::new(Algorithm::EdDSA);
    for scope in [
        "",
        "Email",
        "Email::a.b",
        "Email::x  Email::y",
        " Email::x",
        "Email::x\tEmail::y",
    ] {
        let err = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(60), Some(scope), NOW).unwrap_err();
        assert!(matches!(err, IssueError::InvalidScope(_)), "{scope:?}: {err:?}");
    }
}

#[test]
fn issue_refuses_a_token_longer_than_8kib() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let scope = vec!["VeryLongModuleName::very_long_function_name_0"; 150].join(" ");
    let err = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(60), Some(&scope), NOW).unwrap_err();
    assert_eq!(err, IssueError::TooLong);
    assert!(
        scope.len() < MAX_TOKEN_LEN,
        "the scope alone fits; the encoded token does not"
    );
}

#[test]
fn issued_jti_is_a_fresh_uuid_v4() {
    let fx = Fixture::new(Algorithm::HS256);
    let a = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(60), None, NOW).unwrap();
    let b = issue(&fx.ring, &rules(), &alice(), Duration::from_secs(60), None, NOW).unwrap();
    assert_ne!(a.jti, b.jti);
    let uuid = uuid::Uuid::parse_str(&a.jti).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(a.jti.len(), 36);
}

#[test]
fn issued_token_respects_a_smaller_developer_max() {
    // The caller enforces a policy's `max_token_ttl` by passing rules with that maximum.
    let fx = Fixture::new(Algorithm::EdDSA);
    let mut dev_rules = rules();
    dev_rules.max_ttl = Duration::from_secs(900);
    let err = issue(&fx.ring, &dev_rules, &alice(), Duration::from_secs(901), None, NOW).unwrap_err();
    assert!(matches!(err, IssueError::TtlTooLong { .. }));
}
