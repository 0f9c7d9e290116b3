//! Every refusal class of contract §5: status, stable code, cPanel-shaped body, and nothing
//! reaching cPanel.

use crate::support::{send_to, Gateway, Reply};

/// Asserts status and code of a UAPI-shaped refusal and that cPanel saw nothing.
fn assert_refused(gw: &Gateway, answer: &crate::support::Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{:?}", answer.body);
    let v = answer.json();
    assert_eq!(v["status"], 0);
    assert!(v["data"].is_null());
    assert!(v["errors"][0].is_string());
    assert_eq!(v["metadata"]["cpgate"]["code"], code);
    assert_eq!(
        v["metadata"]["cpgate"]["request_id"].as_str().unwrap(),
        answer.headers["x-request-id"].to_str().unwrap()
    );
    assert!(gw.upstream.received().is_empty(), "cPanel must receive nothing");
}

#[tokio::test]
async fn missing_credential_is_401_with_www_authenticate() {
    let gw = Gateway::start().await;
    let a = gw.send("GET", "/execute/Email/list_pops", &[], "").await;
    assert_refused(&gw, &a, 401, "unauthenticated");
    assert!(a.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn forged_signature_is_401() {
    let gw = Gateway::start().await;
    let mut token = gw.token("alice");
    let last = token.pop().unwrap();
    token.push(if last == 'A' { 'B' } else { 'A' });
    let a = gw
        .send(
            "GET",
            "/execute/Email/list_pops",
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    assert_refused(&gw, &a, 401, "unauthenticated");
}

#[tokio::test]
async fn token_of_developer_without_policy_is_401() {
    let gw = Gateway::start().await;
    let a = gw.get_as("ghost", "/execute/Email/list_pops").await;
    assert_refused(&gw, &a, 401, "unauthenticated");
}

#[tokio::test]
async fn credential_user_name_must_match_token_subject() {
    let gw = Gateway::start().await;
    let auth = format!("cpanel limited:{}", gw.token("alice"));
    let a = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    assert_refused(&gw, &a, 401, "unauthenticated");
}

#[tokio::test]
async fn policy_denials_are_403_forbidden() {
    let gw = Gateway::start().await;
    let cases = [
        (
            "alice",
            "POST",
            "/execute/Email/delete_pop",
            "email=a&domain=example.com",
        ),
        ("alice", "POST", "/execute/Email/add_pop", "email=a&domain=evil.example"),
        ("alice", "GET", "/execute/Email/add_pop?email=a&domain=example.com", ""),
        ("alice", "GET", "/execute/Tokens/create_full_access?name=x", ""),
        ("disabled", "GET", "/execute/Email/list_pops", ""),
        ("expired", "GET", "/execute/Email/list_pops", ""),
        ("office", "GET", "/execute/Email/list_pops", ""),
    ];
    for (dev, method, target, body) in cases {
        let auth = gw.bearer(dev);
        let ct = ("content-type", "application/x-www-form-urlencoded");
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            vec![("authorization", &auth)]
        } else {
            vec![("authorization", &auth), ct]
        };
        let a = gw.send(method, target, &headers, body).await;
        assert_refused(&gw, &a, 403, "forbidden");
    }
}

#[tokio::test]
async fn token_scope_narrows_the_policy() {
    let gw = Gateway::start().await;
    let auth = format!("Bearer {}", gw.token_with("alice", Some("DomainInfo::list_domains")));
    let a = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    assert_refused(&gw, &a, 403, "forbidden");
    let a = gw
        .send(
            "GET",
            "/execute/DomainInfo/list_domains",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn api2_refusal_uses_the_cpanelresult_shape() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let target = "/json-api/cpanel?cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=add_zone_record&cpanel_jsonapi_apiversion=2";
    let a = gw.send("GET", target, &[("authorization", &auth)], "").await;
    assert_eq!(a.status, 403);
    let r = &a.json()["cpanelresult"];
    assert_eq!(r["apiversion"], 2);
    assert_eq!(r["module"], "ZoneEdit");
    assert_eq!(r["func"], "add_zone_record");
    assert_eq!(r["event"]["result"], 0);
    assert_eq!(r["cpgate"]["code"], "forbidden");
    assert!(r["error"].is_string());
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn other_documents_and_api1_are_not_an_api_call() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    for target in [
        "/frontend/jupiter/index.html",
        "/json-api/cpanel?cpanel_jsonapi_module=Email&cpanel_jsonapi_func=listpops&cpanel_jsonapi_apiversion=1",
    ] {
        let a = gw.send("GET", target, &[("authorization", &auth)], "").await;
        assert_eq!(a.status, 403, "{target}");
        assert_eq!(a.code(), "not_an_api_call");
    }
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn ambiguous_requests_are_400() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    for target in [
        "/execute/Email/list_pops%3Fjunk",
        "/execute/Email/../Email/list_pops",
        "/execute/Email//list_pops",
        "/cpsess123/execute/Email/list_pops",
    ] {
        let a = gw.send("GET", target, &[("authorization", &auth)], "").await;
        assert_refused(&gw, &a, 400, "bad_request");
    }
    let a = gw
        .send(
            "GET",
            "/execute/Email/list_pops",
            &[("authorization", &auth), ("x_forwarded_for", "1.2.3.4")],
            "",
        )
        .await;
    assert_refused(&gw, &a, 400, "bad_request");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let body = format!("email=a&domain=example.com&x={}", "a".repeat(1 << 20));
    let a = gw
        .send(
            "POST",
            "/execute/Email/add_pop",
            &[
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &body,
        )
        .await;
    assert_refused(&gw, &a, 413, "too_large");
}

#[tokio::test]
async fn burst_exhausted_is_429_with_retry_after() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("limited");
    for _ in 0..2 {
        assert_eq!(
            gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
    let a = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.code(), "rate_limited");
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(gw.upstream.received().len(), 2);
}

#[tokio::test]
async fn methods_other_than_get_post_are_405() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    for m in ["PUT", "DELETE", "TRACE", "OPTIONS", "PATCH"] {
        let a = gw
            .send(m, "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await;
        assert_refused(&gw, &a, 405, "method_not_allowed");
    }
}

#[tokio::test]
async fn upstream_unreachable_is_502_upstream_error() {
    // A bound socket that never listens: connections are refused, and no other test can take
    // the port while this one runs.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let gw = Gateway::start_with(|s| s.upstream_url = format!("http://127.0.0.1:{port}")).await;
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 502);
    assert_eq!(a.code(), "upstream_error");
    let body = String::from_utf8_lossy(&a.body);
    assert!(
        !body.contains(&port.to_string()) && !body.contains("acctuser"),
        "upstream details leaked: {body}"
    );
}

#[tokio::test]
async fn upstream_rejecting_master_credential_opens_the_circuit() {
    let gw = Gateway::start().await;
    gw.upstream.set_reply(Reply::Json(401, "{}".into()));
    let auth = gw.bearer("alice");
    let a = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    assert_eq!(a.status, 502);
    assert_eq!(a.code(), "upstream_auth_failed");
    gw.upstream.set_reply(Reply::Json(200, "{}".into()));
    let a = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    assert_eq!(a.code(), "upstream_auth_failed");
    assert_eq!(
        gw.upstream.received().len(),
        1,
        "no call while the circuit is open, no retry"
    );
}

#[tokio::test]
async fn upstream_hanging_is_504() {
    let gw = Gateway::start_with(|s| s.upstream_timeout = "300ms").await;
    gw.upstream.set_reply(Reply::Hang);
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 504);
    assert_eq!(a.code(), "upstream_timeout");
}

#[tokio::test]
async fn response_containing_the_master_token_is_not_relayed() {
    let gw = Gateway::start().await;
    gw.upstream
        .set_reply(Reply::Json(200, format!("{{\"data\":\"{}\"}}", crate::support::MASTER)));
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 502);
    assert_eq!(a.code(), "upstream_error");
    assert!(!String::from_utf8_lossy(&a.body).contains(crate::support::MASTER));
}

#[tokio::test]
async fn every_refusal_is_audited_as_denied_with_its_code() {
    let gw = Gateway::start().await;
    gw.send("GET", "/execute/Email/list_pops", &[], "").await;
    gw.get_as("alice", "/execute/Tokens/list").await;
    let denied: Vec<_> = gw
        .audit_lines()
        .into_iter()
        .filter(|r| r["event"] == "denied")
        .collect();
    let codes: Vec<_> = denied.iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect();
    assert_eq!(codes, vec!["unauthenticated", "forbidden"]);
    assert_eq!(denied[1]["developer"], "alice");
    assert_eq!(denied[1]["call"], "Tokens::list");
}

#[tokio::test]
async fn raw_absolute_form_target_for_foreign_host_is_400() {
    let gw = Gateway::start().await;
    let a = send_to(
        gw.addr,
        "GET",
        "http://evil.example/execute/Email/list_pops",
        &[("authorization", &gw.bearer("alice"))],
        "",
    )
    .await;
    assert_refused(&gw, &a, 400, "bad_request");
}
