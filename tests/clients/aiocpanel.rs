//! `aiocpanel` 0.1.0 (`CpanelClient`): GET with query parameters, `cpanel USER:TOKEN`, TLS
//! verified by the aiohttp session's SSL context against the test CA.

use cpgate::call::{Api, CpanelCall, Params};

use crate::stack::{driver, Run, Stack};

async fn aiocpanel(stack: &Stack, token: &str, args: &[&str]) -> Run {
    driver("aiocpanel_call.py", args, &stack.client_env(token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocpanel_fetches_the_certificate_over_verified_tls() {
    let stack = Stack::start().await;
    let run = aiocpanel(&stack, &stack.token(), &["fetch_certificate", "example.com"]).await;
    let cert = run.result();
    let call = CpanelCall::new(
        Api::Uapi,
        "SSL",
        "fetch_best_for_domain",
        Params::from_unique_pairs([("domain", "example.com")]),
    );
    let expected = stack.emulator.handle(&call).1["data"].clone();
    assert_eq!(cert["crt"], expected["crt"]);
    assert_eq!(cert["key"], expected["key"]);
    assert_eq!(cert["cab"], expected["cab"]);
    let requests = stack.upstream_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/execute/SSL/fetch_best_for_domain")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocpanel_creates_then_lists_a_dynamic_dns_record() {
    let stack = Stack::start().await;
    let token = stack.token();
    let created = aiocpanel(
        &stack,
        &token,
        &["create_dynamic_dns", "home.example.com", "NAS at home"],
    )
    .await
    .result();
    assert_eq!(created["domain"], "home.example.com");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    let listed = aiocpanel(&stack, &token, &["list_dynamic_dns"]).await.result();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["domain"], "home.example.com");
    assert_eq!(
        stack.upstream_paths(),
        ["/execute/DynamicDNS/create", "/execute/DynamicDNS/list"]
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocpanel_denied_call_raises_its_auth_error() {
    let stack = Stack::start().await;
    let run = aiocpanel(&stack, &stack.token(), &["start_autossl_check"]).await;
    assert_eq!(
        run.exception(),
        ("CpanelAuthError".to_owned(), "cPanel returned HTTP 403".to_owned())
    );
    let run = aiocpanel(&stack, "not-a-jwt", &["list_dynamic_dns"]).await;
    assert_eq!(
        run.exception(),
        ("CpanelAuthError".to_owned(), "cPanel returned HTTP 401".to_owned())
    );
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocpanel_refuses_a_gateway_certificate_it_does_not_trust() {
    let stack = Stack::start().await;
    let mut env = stack.client_env(&stack.token());
    env.retain(|(k, _)| k != "CPGATE_CA");
    env.push(("CPGATE_CA".into(), "system".into()));
    let run = driver("aiocpanel_call.py", &["list_dynamic_dns"], &env).await;
    let (class, message) = run.exception();
    assert_eq!(class, "CpanelConnectionError");
    assert!(message.contains("CERTIFICATE_VERIFY_FAILED"), "{message}");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocpanel_with_a_default_session_trusts_the_gateway_through_ssl_cert_file() {
    let stack = Stack::start().await;
    let mut env = stack.client_env(&stack.token());
    env.retain(|(k, _)| k != "CPGATE_CA");
    env.push(("CPGATE_CA".into(), "default".into()));
    env.push(("SSL_CERT_FILE".into(), stack.ca.display().to_string()));
    let listed = driver("aiocpanel_call.py", &["list_dynamic_dns"], &env).await.result();
    assert_eq!(listed, serde_json::json!([]));
    assert_eq!(stack.upstream_paths(), ["/execute/DynamicDNS/list"]);
    stack.stop().await;
}
