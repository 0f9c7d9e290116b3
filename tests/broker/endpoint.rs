//! `POST /oauth/token`: client authentication, RFC 6749 §5.2 errors, scope, policy state, and
//! that issued tokens work on the proxy within their scope.

use crate::support::Answer;
use crate::{basic, decode, logs, Broker, ALICE_SECRET, BOB_SECRET};

const GRANT: &str = "grant_type=client_credentials";

/// Every answer of the endpoint: JSON, `no-store`, `no-cache`.
fn assert_no_store(a: &Answer) {
    assert_eq!(a.headers["cache-control"], "no-store", "{a:?}");
    assert_eq!(a.headers["pragma"], "no-cache", "{a:?}");
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

/// An RFC 6749 §5.2 error answer.
fn assert_error(a: &Answer, status: u16, error: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_no_store(a);
    let body = a.json();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn basic_client_auth_issues_a_token_that_works_on_the_proxy() {
    let gw = Broker::start().await;
    let a = gw
        .token_request(&[("authorization", &basic("alice", ALICE_SECRET))], GRANT)
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_no_store(&a);
    let body = a.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600, "min(max_token_ttl 10m, default_ttl 15m)");
    assert!(body.get("scope").is_none(), "no scope asked, none granted: {body}");
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = decode(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], gw.app.keys().kid());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 600);

    assert_eq!(gw.call(token).await.status, 200);
    assert_eq!(gw.upstream.received().len(), 1);

    let audit = gw.audit_lines();
    let issued = audit.iter().find(|r| r["event"] == "token_issued").unwrap();
    assert_eq!(issued["developer"], "alice");
    assert_eq!(issued["jti"], claims["jti"]);
    assert!(issued["reason"].as_str().unwrap().contains("expires"));
    let raw_audit = std::fs::read_to_string(&gw.files.audit).unwrap();
    let log = logs();
    for secret in [ALICE_SECRET, token, "$argon2id$"] {
        assert!(!raw_audit.contains(secret), "audit contains a secret");
        assert!(!log.contains(secret), "logs contain a secret");
    }
}

#[tokio::test]
async fn form_field_client_auth_issues_a_token() {
    let gw = Broker::start().await;
    let body = format!("{GRANT}&client_id=bob&client_secret={BOB_SECRET}");
    let a = gw.token_request(&[], &body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_no_store(&a);
    assert_eq!(a.json()["expires_in"], 900, "default_ttl");
    let token = a.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(gw.call(&token).await.status, 200);
}

#[tokio::test]
async fn wrong_secret_unknown_client_and_missing_hash_are_the_same_invalid_client() {
    let gw = Broker::start().await;
    let cases = [
        basic("alice", BOB_SECRET),
        basic("nobody", ALICE_SECRET),
        basic("nohash", ALICE_SECRET),
        basic("Not A Developer", ALICE_SECRET),
        "Bearer abc".to_owned(),
    ];
    let mut bodies = Vec::new();
    for auth in &cases {
        let a = gw.token_request(&[("authorization", auth)], GRANT).await;
        assert_error(&a, 401, "invalid_client");
        assert_eq!(a.headers["www-authenticate"], "Basic realm=\"cpgate\"");
        bodies.push(a.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "indistinguishable answers");
    let no_auth = gw.token_request(&[], GRANT).await;
    assert_error(&no_auth, 401, "invalid_client");
    let form = gw
        .token_request(&[], &format!("{GRANT}&client_id=alice&client_secret=wrong"))
        .await;
    assert_error(&form, 401, "invalid_client");
    let denied = gw
        .audit_lines()
        .into_iter()
        .filter(|r| r["event"] == "denied" && r["code"] == "invalid_client")
        .count();
    assert_eq!(denied, cases.len() + 2, "every failed attempt is audited");
}

#[tokio::test]
async fn unsupported_or_missing_grant_type_is_refused_before_client_auth() {
    let gw = Broker::start().await;
    let auth = basic("alice", ALICE_SECRET);
    let a = gw
        .token_request(&[("authorization", &auth)], "grant_type=password&username=a&password=b")
        .await;
    assert_error(&a, 400, "unsupported_grant_type");
    let a = gw
        .token_request(&[("authorization", &auth)], "scope=Email::list_pops")
        .await;
    assert_error(&a, 400, "invalid_request");
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let gw = Broker::start().await;
    let auth = basic("alice", ALICE_SECRET);
    // Both authentication methods at once.
    let a = gw
        .token_request(
            &[("authorization", &auth)],
            &format!("{GRANT}&client_id=alice&client_secret={ALICE_SECRET}"),
        )
        .await;
    assert_error(&a, 400, "invalid_request");
    // A repeated parameter.
    let a = gw
        .token_request(&[("authorization", &auth)], &format!("{GRANT}&{GRANT}"))
        .await;
    assert_error(&a, 400, "invalid_request");
    // Parameters in the query string (a secret in a URL ends up in logs).
    let a = crate::send_from(
        [127, 0, 0, 1].into(),
        gw.addr,
        "POST",
        "/oauth/token?client_secret=x",
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        GRANT,
    )
    .await;
    assert_error(&a, 400, "invalid_request");
    // Not a form.
    let a = crate::send_from(
        [127, 0, 0, 1].into(),
        gw.addr,
        "POST",
        "/oauth/token",
        &[("authorization", &auth), ("content-type", "application/json")],
        "{\"grant_type\":\"client_credentials\"}",
    )
    .await;
    assert_error(&a, 400, "invalid_request");
}

#[tokio::test]
async fn any_method_but_post_gets_405() {
    let gw = Broker::start().await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let a = crate::send_from([127, 0, 0, 1].into(), gw.addr, method, "/oauth/token", &[], "").await;
        assert_eq!(a.status, 405, "{method}");
        assert_no_store(&a);
        assert_eq!(a.headers["allow"], "POST");
    }
}

#[tokio::test]
async fn a_scoped_token_can_call_only_its_scope() {
    let gw = Broker::start().await;
    let auth = basic("alice", ALICE_SECRET);
    let a = gw
        .token_request(
            &[("authorization", &auth)],
            &format!("{GRANT}&scope=Email%3A%3Alist_pops"),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.json()["scope"], "Email::list_pops");
    let token = a.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(decode(&token).1["scope"], "Email::list_pops");
    assert_eq!(gw.call_fn("Email/list_pops", &token).await.status, 200);
    let outside = gw.call_fn("DomainInfo/list_domains", &token).await;
    assert_eq!(outside.status, 403, "the policy allows it, the scope does not");
    let unscoped = gw.oauth_token("alice", ALICE_SECRET, None).await;
    assert_eq!(gw.call_fn("DomainInfo/list_domains", &unscoped).await.status, 200);
}

#[tokio::test]
async fn a_scope_the_policy_can_never_allow_is_invalid_scope() {
    let gw = Broker::start().await;
    let auth = basic("alice", ALICE_SECRET);
    for scope in [
        "Email::delete_pop",          // denied by a deny rule
        "Email::list_pops Tokens::*", // one entry outside every allow rule
        "api2:Email::listpops",       // the wrong API
        "not-a-pattern",              // not a call pattern
        "Email::list_pops  DomainInfo::list_domains",
    ] {
        let body = format!("{GRANT}&scope={}", crate::urlencode(scope));
        let a = gw.token_request(&[("authorization", &auth)], &body).await;
        assert_error(&a, 400, "invalid_scope");
    }
}

#[tokio::test]
async fn disabled_expired_and_out_of_network_clients_get_no_token() {
    let gw = Broker::start().await;
    for client in ["disabled", "expired", "office"] {
        let a = gw
            .token_request(&[("authorization", &basic(client, ALICE_SECRET))], GRANT)
            .await;
        assert_error(&a, 400, "unauthorized_client");
    }
    // With a wrong secret they are just unknown to the caller.
    let a = gw
        .token_request(&[("authorization", &basic("disabled", BOB_SECRET))], GRANT)
        .await;
    assert_error(&a, 401, "invalid_client");
}
