//! `cpgate token revoke` (the real binary) against a running gateway: the next call within
//! about a second gets 401, other tokens keep working, the server audits `token_revoked`, and
//! the revocation survives a restart.

use std::time::Duration;

use crate::{cpgate, decode, eventually, Broker};

/// How long a revocation may take to reach the running server. The contract says 1 s; the file
/// watch usually takes milliseconds, the 1 s poll is the fallback; the margin absorbs a loaded CI.
const PICKUP: Duration = Duration::from_millis(1500);

async fn revoked_within(gw: &Broker, token: &str) -> Duration {
    let took = eventually(PICKUP, || async { gw.call(token).await.status == 401 }).await;
    took.unwrap_or_else(|| panic!("the revocation was not in force within {PICKUP:?}"))
}

#[tokio::test]
async fn revoking_a_jti_refuses_that_token_within_a_second_and_after_a_restart() {
    let mut gw = Broker::start().await;
    let revoked = gw.oauth_token("alice", crate::ALICE_SECRET, None).await;
    let other = gw.token("alice");
    assert_eq!(gw.call(&revoked).await.status, 200);
    let jti = decode(&revoked).1["jti"].as_str().unwrap().to_owned();

    let config = gw.files.config.to_str().unwrap().to_owned();
    let (ok, _, stderr) = cpgate(&["token", "revoke", "--config", &config, "--jti", &jti]);
    assert!(ok, "{stderr}");
    revoked_within(&gw, &revoked).await;
    assert_eq!(gw.call(&other).await.status, 200, "only that token is revoked");
    let audited = eventually(Duration::from_secs(1), || async {
        gw.audit_lines()
            .iter()
            .any(|r| r["event"] == "token_revoked" && r["jti"] == jti.as_str())
    })
    .await;
    assert!(audited.is_some(), "the server audits the revocation it picked up");

    gw.restart().await;
    assert_eq!(gw.call(&revoked).await.status, 401, "survives a restart");
    assert_eq!(gw.call(&other).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn revoking_a_developer_refuses_its_earlier_tokens_only_and_survives_a_restart() {
    let mut gw = Broker::start().await;
    let alice_old = gw.token_at("alice", crate::now() - 5);
    let bob = gw.token("bob");
    assert_eq!(gw.call(&alice_old).await.status, 200);

    let config = gw.files.config.to_str().unwrap().to_owned();
    let (ok, _, stderr) = cpgate(&["token", "revoke", "--config", &config, "--developer", "alice"]);
    assert!(ok, "{stderr}");
    revoked_within(&gw, &alice_old).await;
    assert_eq!(gw.call(&bob).await.status, 200, "other developers are untouched");

    // A token issued after the revocation works (iat one second past it: iat has 1 s steps).
    let file = std::fs::read_to_string(&gw.app.config.tokens.revocations).unwrap();
    let line: serde_json::Value = serde_json::from_str(file.lines().last().unwrap()).unwrap();
    assert_eq!(line["developer"], "alice");
    let revoked_at = line["revoked_at"].as_u64().unwrap();
    let alice_new = gw.token_at("alice", revoked_at + 1);
    assert_eq!(gw.call(&alice_new).await.status, 200);
    let audited = eventually(Duration::from_secs(1), || async {
        gw.audit_lines()
            .iter()
            .any(|r| r["event"] == "token_revoked" && r["developer"] == "alice")
    })
    .await;
    assert!(audited.is_some(), "the server audits the revocation it picked up");

    gw.restart().await;
    assert_eq!(gw.call(&alice_old).await.status, 401, "survives a restart");
    assert_eq!(gw.call(&alice_new).await.status, 200);
    assert_eq!(gw.call(&bob).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn revoke_refuses_bad_targets() {
    let gw = Broker::start().await;
    let config = gw.files.config.to_str().unwrap().to_owned();
    for args in [
        vec!["--jti", "not a jti"],
        vec!["--developer", "Not/Valid"],
        vec![],
        vec!["--jti", "a", "--developer", "alice"],
    ] {
        let mut all = vec!["token", "revoke", "--config", &config];
        all.extend(args.iter().copied());
        let (ok, _, _) = cpgate(&all);
        assert!(!ok, "{args:?}");
    }
    assert!(!gw.app.config.tokens.revocations.exists(), "nothing written");
}
