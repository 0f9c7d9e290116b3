//! certbot-dns-cpanel 0.4.0, replayed request for request (`py/certbot_dns_cpanel_replay.py`):
//! API 2 by GET with everything in the query string — `ZoneEdit` for the dns-01 challenge, and
//! `SSL::installssl` with the certificate, private key and CA bundle (cpanel-wire.md §7, §10).
//! The CA comes from `SSL_CERT_FILE`, as it would for the plugin.

use cpgate::call::{Api, CpanelCall, Params};

use crate::stack::{driver, Run, Stack};

const CRT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfakeLEAF+/=\n-----END CERTIFICATE-----\n";
const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/=SECRETKEYBODY\n-----END PRIVATE KEY-----\n";
const CAB: &str = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA+/=\n-----END CERTIFICATE-----\n";

async fn replay(stack: &Stack, args: &[&str]) -> Run {
    let mut env = stack.client_env(&stack.token());
    env.push(("SSL_CERT_FILE".into(), stack.ca.display().to_string()));
    driver("certbot_dns_cpanel_replay.py", args, &env).await
}

/// Writes the certificate files and returns `install DOMAIN CRT KEY CHAIN` arguments.
fn install_args(stack: &Stack, domain: &str) -> Vec<String> {
    let mut args = vec!["install".to_owned(), domain.to_owned()];
    for (name, text) in [("crt.pem", CRT), ("key.pem", KEY), ("chain.pem", CAB)] {
        let path = stack.scratch.join(name);
        std::fs::write(&path, text).unwrap();
        args.push(path.display().to_string());
    }
    args
}

fn txt_records(stack: &Stack) -> serde_json::Value {
    let params = Params::from_unique_pairs([("domain", "example.com"), ("type", "TXT")]);
    let call = CpanelCall::new(Api::Api2, "ZoneEdit", "fetchzone_records", params);
    stack.emulator.handle(&call).1["cpanelresult"]["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_challenge_record_is_added_then_removed_through_cpgate() {
    let stack = Stack::start().await;
    let before = txt_records(&stack);
    let run = replay(&stack, &["dns01", "_acme-challenge.example.com", "token-value-123"]).await;
    let results = run.result();
    let funcs: Vec<_> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["func"].as_str().unwrap())
        .collect();
    assert_eq!(
        funcs,
        [
            "fetchzones",
            "add_zone_record",
            "fetchzones",
            "fetchzone_records",
            "remove_zone_record"
        ]
    );
    let found = &results[3]["data"];
    assert_eq!(found.as_array().unwrap().len(), 1, "{run:#?}");
    assert_eq!(found[0]["txtdata"], "token-value-123");
    assert_eq!(results[4]["data"][0]["result"]["status"], 1, "{run:#?}");
    assert_eq!(txt_records(&stack), before);
    let requests = stack.upstream_requests();
    assert_eq!(requests.len(), 5);
    assert!(requests
        .iter()
        .all(|r| r.method == "GET" && r.path == "/json-api/cpanel"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_record_outside_the_challenge_name_is_refused_with_http_error() {
    let stack = Stack::start().await;
    let run = replay(&stack, &["dns01", "www.example.com", "hijack"]).await;
    let out = run.json();
    assert_eq!(out["exception"], "HTTPError", "{run:#?}");
    assert_eq!(out["status"], 403);
    let refusal = &out["body"]["cpanelresult"];
    assert_eq!(
        (refusal["module"].as_str(), refusal["func"].as_str()),
        (Some("ZoneEdit"), Some("add_zone_record"))
    );
    assert_eq!(refusal["cpgate"]["code"], "forbidden");
    // Only the zone listing before it reached cPanel.
    assert_eq!(stack.upstream_paths(), ["/json-api/cpanel"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installssl_with_the_key_in_the_query_installs_it_and_keeps_it_out_of_the_audit() {
    let stack = Stack::start().await;
    let args = install_args(&stack, "example.com");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = replay(&stack, &args).await;
    let results = run.result();
    assert_eq!(results[0]["data"][0]["result"], 1, "{run:#?}");

    let call = CpanelCall::new(
        Api::Uapi,
        "SSL",
        "fetch_best_for_domain",
        Params::from_unique_pairs([("domain", "example.com")]),
    );
    let installed = stack.emulator.handle(&call).1["data"].clone();
    assert_eq!(
        (installed["crt"].as_str(), installed["key"].as_str()),
        (Some(CRT), Some(KEY))
    );
    assert_eq!(installed["cab"].as_str(), Some(CAB));

    let requests = stack.upstream_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/json-api/cpanel")
    );
    let audit = std::fs::read_to_string(&stack.audit).unwrap();
    assert!(
        !audit.contains("SECRETKEYBODY"),
        "the private key reached the audit log"
    );
    let request = stack
        .audit_records()
        .into_iter()
        .find(|r| r["event"] == "request")
        .unwrap();
    assert_eq!(request["call"], "SSL::installssl");
    assert_eq!(request["params"]["key"], "[redacted]");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installssl_for_a_domain_outside_the_policy_is_refused_in_api2_shape() {
    let stack = Stack::start().await;
    let args = install_args(&stack, "example.net");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = replay(&stack, &args).await.json();
    assert_eq!(
        (out["exception"].as_str(), out["status"].as_u64()),
        (Some("HTTPError"), Some(403))
    );
    let refusal = &out["body"]["cpanelresult"];
    assert_eq!(
        (refusal["module"].as_str(), refusal["func"].as_str()),
        (Some("SSL"), Some("installssl"))
    );
    assert_eq!(refusal["cpgate"]["code"], "forbidden");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}
