//! Guessing client secrets: a burst of wrong secrets is throttled (429 + `Retry-After`) before
//! any hashing, while other clients' token requests and proxied calls keep working.

use std::net::IpAddr;

use crate::{basic, Broker, ALICE_SECRET, BOB_SECRET};

const GRANT: &str = "grant_type=client_credentials";

/// Sends wrong secrets until the first 429 (at most `limit`); returns (401s before it, the 429).
async fn guess_until_throttled(
    gw: &Broker,
    from: IpAddr,
    client: impl Fn(usize) -> String,
    limit: usize,
) -> (usize, crate::support::Answer) {
    for i in 0..limit {
        let auth = basic(&client(i), &format!("wrong-guess-{i}"));
        let a = gw.token_request_from(from, &[("authorization", &auth)], GRANT).await;
        match a.status.as_u16() {
            401 => continue,
            429 => return (i, a),
            other => panic!("unexpected {other}: {:?}", a.body),
        }
    }
    panic!("no 429 after {limit} wrong secrets");
}

#[tokio::test]
async fn a_burst_of_wrong_secrets_is_throttled_while_others_keep_working() {
    let gw = Broker::start().await;
    let alice_token = gw.oauth_token("alice", ALICE_SECRET, None).await;
    let attacker: IpAddr = [127, 0, 0, 2].into();

    // Per client id: alice's secret is guessed from one address.
    let (failures, throttled) = guess_until_throttled(&gw, attacker, |_| "alice".into(), 30).await;
    assert_eq!(failures, 5, "five failures per client id at once");
    let retry: u64 = throttled.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(throttled.headers["cache-control"], "no-store");
    assert_eq!(throttled.json()["error"], "slow_down");
    // Even the right secret waits: the client id is locked, whoever asks.
    let locked = gw
        .token_request_from(
            [127, 0, 0, 3].into(),
            &[("authorization", &basic("alice", ALICE_SECRET))],
            GRANT,
        )
        .await;
    assert_eq!(locked.status, 429);

    // Per address: one address spraying many client ids (none reaches its own limit).
    let sprayer: IpAddr = [127, 0, 0, 4].into();
    let ids = ["disabled", "expired", "office", "nohash", "carol", "nobody"];
    let (failures, _) = guess_until_throttled(&gw, sprayer, |i| ids[i % ids.len()].into(), 30).await;
    assert_eq!(failures, 10, "ten failures per address at once");

    // Meanwhile other clients get tokens, and tokens keep working on the proxy.
    let bob = gw.oauth_token("bob", BOB_SECRET, None).await;
    assert_eq!(gw.call(&bob).await.status, 200);
    assert_eq!(gw.call(&alice_token).await.status, 200);
    let throttled_records = gw
        .audit_lines()
        .into_iter()
        .filter(|r| r["event"] == "denied" && r["status"] == 429)
        .count();
    assert!(throttled_records >= 2, "throttled attempts are audited");
    gw.stop().await;
}
