//! Key rotation without a restart: tokens of the old `kid` keep working while its public key is
//! in `verify_keys`, stop once it is removed (after a reload), and new tokens carry the new kid.

use cpgate::token::{generate_key, Algorithm};

use crate::{decode, send_from, Broker, ALICE_SECRET};

/// The config text with `[tokens]` key settings replaced.
fn with_keys(config: &str, key_file: &str, key_id: &str, verify_keys: &[String]) -> String {
    let list: Vec<String> = verify_keys.iter().map(|k| format!("{k:?}")).collect();
    config
        .lines()
        .filter(|l| !l.starts_with("verify_keys"))
        .map(|l| {
            if l.starts_with("key_file") {
                format!("key_file = {key_file:?}")
            } else if l.starts_with("key_id") {
                format!("key_id = {key_id:?}\nverify_keys = [{}]", list.join(", "))
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn old_kid_tokens_work_while_in_verify_keys_and_stop_when_removed() {
    let gw = Broker::start().await;
    let old_kid = gw.app.keys().kid().to_owned();
    let old_token = gw.oauth_token("alice", ALICE_SECRET, None).await;
    assert_eq!(decode(&old_token).0["kid"], old_kid.as_str());

    // Step 1-3 of the README procedure: a new key signs, the old public key still verifies.
    let new = generate_key(Algorithm::EdDSA, &gw.dir.join("keys")).unwrap();
    let original = std::fs::read_to_string(&gw.files.config).unwrap();
    let new_file = format!("keys/{}.pem", new.kid);
    let old_public = format!("keys/{old_kid}.pub.pem");
    std::fs::write(
        &gw.files.config,
        with_keys(&original, &new_file, &new.kid, &[old_public]),
    )
    .unwrap();
    let kids = gw.app.reload_keys().unwrap();
    assert_eq!(kids.len(), 2, "{kids:?}");

    assert_eq!(gw.call(&old_token).await.status, 200, "old kid still accepted");
    let new_token = gw.oauth_token("alice", ALICE_SECRET, None).await;
    assert_eq!(
        decode(&new_token).0["kid"],
        new.kid.as_str(),
        "new tokens carry the new kid"
    );
    assert_eq!(gw.call(&new_token).await.status, 200);
    let jwks = send_from([127, 0, 0, 1].into(), gw.addr, "GET", "/.well-known/jwks.json", &[], "").await;
    let listed: Vec<String> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, vec![new.kid.clone(), old_kid.clone()], "signing key first");

    // Step 5: once old tokens have expired, the old key is dropped.
    std::fs::write(&gw.files.config, with_keys(&original, &new_file, &new.kid, &[])).unwrap();
    gw.app.reload_keys().unwrap();
    assert_eq!(gw.call(&old_token).await.status, 401, "old kid no longer accepted");
    assert_eq!(gw.call(&new_token).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_broken_key_reload_keeps_the_keys_in_force() {
    let gw = Broker::start().await;
    let token = gw.token("alice");
    let original = std::fs::read_to_string(&gw.files.config).unwrap();
    std::fs::write(
        &gw.files.config,
        with_keys(&original, "keys/missing.pem", "missing", &[]),
    )
    .unwrap();
    assert!(gw.app.reload_keys().is_err());
    let changed_alg = original.replace("algorithm = \"EdDSA\"", "algorithm = \"ES256\"");
    std::fs::write(&gw.files.config, changed_alg).unwrap();
    assert!(gw.app.reload_keys().unwrap_err().contains("restart"));
    assert_eq!(gw.call(&token).await.status, 200);
    let fresh = gw.oauth_token("alice", ALICE_SECRET, None).await;
    assert_eq!(
        crate::decode(&fresh).0["kid"],
        gw.app.keys().kid(),
        "still signed by the old key"
    );
    gw.stop().await;
}
