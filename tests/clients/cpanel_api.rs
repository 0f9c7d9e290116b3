//! `cpanel-api` 0.3.0 (`CPanelApi`): UAPI and API 2, `utoken` (`cpanel USER:TOKEN`) and
//! `password` (HTTP Basic) modes, POST form bodies, API 2 selectors in the body, TLS verified
//! with `verify=CA_FILE`.

use serde_json::{json, Value};

use cpgate::call::{Api, CpanelCall, Params};

use crate::stack::{driver, Run, Stack};

async fn cpanel_api(stack: &Stack, token: &str, args: &[&str]) -> Run {
    driver("cpanel_api_call.py", args, &stack.client_env(token)).await
}

/// What the emulator itself answers for a call, to compare with what the client received.
fn emulator_answer(stack: &Stack, api: Api, module: &str, function: &str, params: &[(&str, &str)]) -> Value {
    let call = CpanelCall::new(api, module, function, Params::from_unique_pairs(params.iter().copied()));
    stack.emulator.handle(&call).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utoken_uapi_call_returns_the_emulators_answer_unchanged() {
    let stack = Stack::start().await;
    let run = cpanel_api(&stack, &stack.token(), &["utoken", "uapi", "Email", "list_pops"]).await;
    let expected = emulator_answer(&stack, Api::Uapi, "Email", "list_pops", &[]);
    assert_eq!(run.result(), expected);
    assert_eq!(stack.upstream_paths(), ["/execute/Email/list_pops"]);
    assert_eq!(stack.upstream_requests()[0].method, "POST");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_post_with_allowed_params_creates_the_mailbox() {
    let stack = Stack::start().await;
    let run = cpanel_api(
        &stack,
        &stack.token(),
        &[
            "password",
            "uapi",
            "Email",
            "add_pop",
            "email=newbox",
            "domain=example.com",
            "password=Correct-Horse-42",
        ],
    )
    .await;
    let result = run.result();
    assert_eq!(result["status"], 1, "{run:#?}");
    assert_eq!(result["data"], "newbox+example.com");
    let pops = emulator_answer(&stack, Api::Uapi, "Email", "list_pops", &[]);
    assert!(pops["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["email"] == "newbox@example.com"));
    assert_eq!(stack.upstream_paths(), ["/execute/Email/add_pop"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api2_call_with_selectors_in_the_body_returns_the_emulators_answer() {
    let stack = Stack::start().await;
    let args = [
        "utoken",
        "cpanel2",
        "ZoneEdit",
        "fetchzone_records",
        "domain=example.com",
    ];
    let run = cpanel_api(&stack, &stack.token(), &args).await;
    let expected = emulator_answer(
        &stack,
        Api::Api2,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com")],
    );
    assert_eq!(run.result(), expected);
    assert_eq!(run.result()["cpanelresult"]["event"]["result"], 1);
    assert_eq!(stack.upstream_paths(), ["/json-api/cpanel"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_uapi_call_comes_back_as_a_uapi_error_result() {
    let stack = Stack::start().await;
    let args = [
        "utoken",
        "uapi",
        "Email",
        "delete_pop",
        "email=info",
        "domain=example.com",
    ];
    let run = cpanel_api(&stack, &stack.token(), &args).await;
    let result = run.result();
    assert_eq!(result["status"], 0);
    assert_eq!(result["data"], Value::Null);
    assert_eq!(result["metadata"]["cpgate"]["code"], "forbidden");
    assert!(!result["errors"][0].as_str().unwrap().is_empty());
    assert!(stack.upstream_paths().is_empty());
    let pops = emulator_answer(&stack, Api::Uapi, "Email", "list_pops", &[]);
    assert!(pops["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["email"] == "info@example.com"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_api2_call_comes_back_as_a_cpanelresult_error() {
    let stack = Stack::start().await;
    let args = [
        "password",
        "cpanel2",
        "Email",
        "addpop",
        "email=x",
        "domain=example.com",
        "password=p",
    ];
    let run = cpanel_api(&stack, &stack.token(), &args).await;
    let result = &run.result()["cpanelresult"];
    assert_eq!(
        (&result["apiversion"], &result["module"], &result["func"]),
        (&json!(2), &json!("Email"), &json!("addpop"))
    );
    assert_eq!(result["event"]["result"], 0);
    assert_eq!(result["cpgate"]["code"], "forbidden");
    assert!(!result["error"].as_str().unwrap().is_empty());
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_raises_the_clients_unauthorized_in_both_modes() {
    let stack = Stack::start().await;
    for mode in ["utoken", "password"] {
        let run = cpanel_api(&stack, "not-a-jwt", &[mode, "uapi", "Email", "list_pops"]).await;
        assert_eq!(run.exception().0, "Unauthorized", "{mode}");
    }
    // A valid token presented under another developer's name is refused too.
    let other = stack.token_with("someone-else", None);
    let run = cpanel_api(&stack, &other, &["utoken", "uapi", "Email", "list_pops"]).await;
    assert_eq!(run.exception().0, "Unauthorized");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_verification_fails_without_the_gateways_ca() {
    let stack = Stack::start().await;
    let mut env = stack.client_env(&stack.token());
    env.retain(|(k, _)| k != "CPGATE_CA");
    env.push(("CPGATE_CA".into(), "system".into()));
    let run = driver("cpanel_api_call.py", &["utoken", "uapi", "Email", "list_pops"], &env).await;
    assert_eq!(run.exception().0, "SSLError", "{run:#?}");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}
