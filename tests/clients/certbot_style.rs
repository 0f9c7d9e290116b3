//! The request certbot-dns-cpanel makes to install a certificate, replayed with `requests`:
//! API 2 `SSL::installssl` by GET, with the certificate, private key and CA bundle in the query
//! string (cpanel-wire.md §7, §10). The key must reach cPanel intact and never the audit log.

use cpgate::call::{Api, CpanelCall, Params};

use crate::stack::{driver, Stack};

const CRT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfakeLEAF+/=\n-----END CERTIFICATE-----\n";
const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/=SECRETKEYBODY\n-----END PRIVATE KEY-----\n";
const CAB: &str = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA+/=\n-----END CERTIFICATE-----\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installssl_with_the_key_in_the_query_installs_it_and_keeps_it_out_of_the_audit() {
    let stack = Stack::start().await;
    let mut files = Vec::new();
    for (name, text) in [("crt.pem", CRT), ("key.pem", KEY), ("cab.pem", CAB)] {
        let path = stack.scratch.join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["example.com"];
    args.extend(files.iter().map(String::as_str));
    let run = driver("certbot_style_installssl.py", &args, &stack.client_env(&stack.token())).await;
    let out = run.json();
    assert_eq!(out["status"], 200, "{run:#?}");
    let result = &out["result"]["cpanelresult"];
    assert_eq!(result["data"][0]["result"], 1, "{run:#?}");

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
    let mut files = Vec::new();
    for (name, text) in [("crt.pem", CRT), ("key.pem", KEY), ("cab.pem", CAB)] {
        let path = stack.scratch.join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["example.net"];
    args.extend(files.iter().map(String::as_str));
    let run = driver("certbot_style_installssl.py", &args, &stack.client_env(&stack.token())).await;
    let out = run.json();
    assert_eq!(out["status"], 403, "{run:#?}");
    let result = &out["result"]["cpanelresult"];
    assert_eq!(
        (result["module"].as_str(), result["func"].as_str()),
        (Some("SSL"), Some("installssl"))
    );
    assert_eq!(result["cpgate"]["code"], "forbidden");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}
