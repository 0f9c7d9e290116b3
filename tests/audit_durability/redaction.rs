//! Redaction end to end: secret parameters sent through the proxy reach cPanel unchanged but
//! appear in the audit file only as `[redacted]`: plain names, `name-N` members, `Batch`
//! commands, and the query string of a GET.

use crate::support::{Client, Setup, Upstream};

/// Every secret family of cpanel-wire.md §7.
const FAMILIES: [&str; 21] = [
    "pass",
    "passwd",
    "password",
    "passphrase",
    "pass_hash",
    "password_hash",
    "oldpass",
    "newpass",
    "secret",
    "token",
    "api_token",
    "access_token",
    "login_token",
    "tfa_token",
    "key",
    "key_data",
    "private",
    "crt",
    "cert",
    "cabundle",
    "content",
];

fn secret(family: &str, n: usize) -> String {
    format!("S3CR3T{n}x{family}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sent_through_the_proxy_are_redacted_in_the_audit_file() {
    let upstream = Upstream::start().await;
    let setup = Setup::new(&upstream, "batch");
    let proxy = setup.spawn().await;
    let mut client = Client::connect(setup.addr).await.unwrap();

    // POST form: each family plain and as a `-N` member.
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("email", "box").append_pair("domain", "example.com");
    form.append_pair("marker", "post");
    for family in FAMILIES {
        form.append_pair(family, &secret(family, 0));
        form.append_pair(&format!("{family}-1"), &secret(family, 1));
    }
    let form = form.finish();
    let answer = client
        .send("POST", "/execute/Email/add_pop", &setup.bearer, &form)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));

    // GET with the secrets in the query string.
    let target = format!("/execute/Email/list_pops?marker=get&password={}", secret("query", 2));
    let answer = client.send("GET", &target, &setup.bearer, "").await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));

    // Batch: every family inside a command, and inside a nested batch.
    let args: serde_json::Map<String, serde_json::Value> = FAMILIES
        .iter()
        .map(|f| (f.to_string(), secret(f, 3).into()))
        .chain([
            ("email".to_string(), "inner".into()),
            ("domain".to_string(), "example.com".into()),
        ])
        .collect();
    let inner = serde_json::json!(["Email", "add_pop", args]).to_string();
    let nested = serde_json::json!(["Batch", "strict", {"command": inner.clone()}]).to_string();
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("command-0", &inner).append_pair("command-1", &nested);
    let answer = client
        .send("POST", "/execute/Batch/strict", &setup.bearer, &form.finish())
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    drop(client);
    proxy.stop().await;

    // cPanel got the real values ...
    let bodies: Vec<String> = upstream
        .bodies()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(bodies[0].contains(&secret("password", 0)));
    // ... the audit file never did.
    let text = std::fs::read_to_string(&setup.files.audit).unwrap();
    assert!(
        !text.contains("S3CR3T"),
        "a secret value reached the audit file:\n{text}"
    );
    let records = Setup::records(&setup.files.audit);
    let requests: Vec<&serde_json::Value> = records.iter().filter(|r| r["event"] == "request").collect();
    assert_eq!(requests.len(), 3);

    let post = &requests[0]["params"];
    assert_eq!(post["email"], "box");
    for family in FAMILIES {
        assert_eq!(post[family], "[redacted]", "{family}");
        assert_eq!(post[format!("{family}-1")], "[redacted]", "{family}-1");
    }
    assert_eq!(requests[1]["params"]["password"], "[redacted]");
    assert_eq!(requests[1]["params"]["marker"], "get");

    let batch = &requests[2]["params"];
    let first = &batch["command-0"][2];
    let deep = &batch["command-1"][2]["command-0"][2];
    for params in [first, deep] {
        assert_eq!(params["email"], "inner");
        for family in FAMILIES {
            assert_eq!(params[family], "[redacted]", "{family} in a batch command: {batch}");
        }
    }
}
