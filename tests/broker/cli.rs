//! `cpgate token secret` and `cpgate token issue` (the real binary): a written secret hash works
//! on the endpoint, the policy file is otherwise unchanged, and `token issue` refuses what the
//! endpoint would refuse.

use crate::{basic, cpgate, Broker};

#[tokio::test]
async fn token_secret_write_puts_a_working_hash_into_the_policy_and_nothing_else() {
    let gw = Broker::start().await;
    let config = gw.files.config.to_str().unwrap().to_owned();
    let policy = gw.dir.join("policies/carol.toml");
    let before = std::fs::read_to_string(&policy).unwrap();

    let (ok, stdout, stderr) = cpgate(&[
        "token",
        "secret",
        "--config",
        &config,
        "--developer",
        "carol",
        "--write",
    ]);
    assert!(ok, "{stderr}");
    let secret = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "only the secret on stdout");
    assert!(secret.len() >= 43);
    let after = std::fs::read_to_string(&policy).unwrap();
    let hash_line = after.lines().find(|l| l.starts_with("client_secret_hash")).unwrap();
    assert!(hash_line.contains("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(
        after.replace(&format!("{hash_line}\n"), ""),
        before,
        "everything else byte for byte"
    );
    assert!(!stderr.contains(&secret) && !stderr.contains("$argon2id$"));

    gw.app.reload_policies().await.unwrap();
    let a = gw
        .token_request(
            &[("authorization", &basic("carol", &secret))],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);

    // A second --write replaces the line: the old secret stops working.
    let (ok, second, _) = cpgate(&[
        "token",
        "secret",
        "--config",
        &config,
        "--developer",
        "carol",
        "--write",
    ]);
    assert!(ok);
    let replaced = std::fs::read_to_string(&policy).unwrap();
    assert_eq!(replaced.matches("client_secret_hash").count(), 1);
    gw.app.reload_policies().await.unwrap();
    let old = gw
        .token_request(
            &[("authorization", &basic("carol", &secret))],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(old.status, 401);
    let new = gw
        .token_request(
            &[("authorization", &basic("carol", second.trim()))],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn token_secret_without_write_prints_the_secret_and_its_hash_line() {
    let (ok, stdout, stderr) = cpgate(&["token", "secret", "--developer", "dave"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    let hash = lines[1]
        .strip_prefix("client_secret_hash = \"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    assert!(cpgate::token::verify_client_secret(hash, lines[0].as_bytes()));
}

#[tokio::test]
async fn token_issue_refuses_a_ttl_above_the_maximum_and_a_scope_the_policy_never_allows() {
    let gw = Broker::start().await;
    let config = gw.files.config.to_str().unwrap().to_owned();
    let issue = |extra: &[&str]| {
        let mut args = vec!["token", "issue", "--config", &config, "--developer", "alice"];
        args.extend_from_slice(extra);
        cpgate(&args)
    };
    let (ok, stdout, _) = issue(&["--ttl", "5m", "--scope", "Email::list_pops"]);
    assert!(ok);
    let token = stdout.trim();
    assert_eq!(crate::decode(token).1["scope"], "Email::list_pops");
    assert_eq!(gw.call(token).await.status, 200);
    let (ok, _, stderr) = issue(&["--ttl", "11m"]);
    assert!(
        !ok && stderr.contains("maximum"),
        "alice's max_token_ttl is 10m: {stderr}"
    );
    let (ok, _, stderr) = issue(&["--scope", "Email::delete_pop"]);
    assert!(!ok && stderr.contains("--scope"), "{stderr}");
    let (ok, _, _) = cpgate(&["token", "issue", "--config", &config, "--developer", "expired"]);
    assert!(!ok);
}
