//! Revocations shared through Redis: made on one instance (by the CLI with its config, or
//! picked up from its file), refused by the others within a second; kept across restarts of
//! Redis (the instances push back what it lost) and of cpgate (even while Redis is down).

use std::time::{Duration, Instant};

use cpgate::token::revocation::{self, Revocation, Target};
use redis::Commands as _;

use crate::{cpgate, eventually, jti_of, now, path_str, store_lines, Cluster, Instance, RedisServer};

/// The contract: a revocation is in force everywhere within 1 s.
const WITHIN: Duration = Duration::from_secs(1);

async fn refused_within(instance: &Instance, token: &str, within: Duration) -> Duration {
    let took = eventually(within, || async { instance.call(token).await.status == 401 }).await;
    took.unwrap_or_else(|| panic!("the revocation was not in force on {} within {within:?}", instance.addr))
}

async fn revoke_with_cli(config: &std::path::Path, flag: &str, value: &str) {
    let args = ["token", "revoke", "--config", path_str(config), flag, value].map(str::to_owned);
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cpgate(&args)
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("shared through redis://"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_revocation_made_with_instance_a_is_refused_by_instance_b_within_a_second() {
    let redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let (a, b) = (cluster.instance("a").await, cluster.instance("b").await);
    let revoked = a.token("alice");
    let other = a.token("alice");
    assert_eq!(b.call(&revoked).await.status, 200);

    let jti = jti_of(&revoked);
    revoke_with_cli(&a.config, "--jti", &jti).await;
    let took = refused_within(&b, &revoked, WITHIN).await;
    refused_within(&a, &revoked, WITHIN).await;
    assert_eq!(b.call(&other).await.status, 200, "only that token is revoked");
    let audited = eventually(WITHIN, || async {
        b.audit_lines()
            .iter()
            .any(|r| r["event"] == "token_revoked" && r["jti"] == jti.as_str())
    })
    .await;
    assert!(audited.is_some(), "instance B audits the revocation it picked up");
    let ttl: i64 = redis.connection().ttl("cpgate:revocations").unwrap();
    assert!(ttl > 3600 && ttl <= 3660, "TTL = max_ttl + 2 x leeway, got {ttl}");
    eprintln!("revocation reached instance B in {took:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_instance_a_picks_up_from_its_file_is_refused_by_instance_b_within_a_second() {
    let redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let (a, b) = (cluster.instance("a").await, cluster.instance("b").await);
    let old = a.token_at("alice", now() - 5);
    assert_eq!(b.call(&old).await.status, 200);

    // What an operator's script (or a CLI without the store configured) does: only A's file.
    let entry = Revocation {
        target: Target::Developer(cpgate::principal::DeveloperId::parse("alice").unwrap()),
        revoked_at: now(),
    };
    revocation::append(&a.app.config.tokens.revocations, &entry, now(), 3660).unwrap();
    let started = Instant::now();
    refused_within(&b, &old, WITHIN).await;
    eprintln!("file revocation on A reached B in {:?}", started.elapsed());
    let fresh = b.token_at("alice", entry.revoked_at + 1);
    assert_eq!(
        b.call(&fresh).await.status,
        200,
        "tokens issued after the revocation work"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_redis_restart_and_reach_an_instance_started_afterwards() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let a = cluster.instance("a").await;
    let revoked = a.token("alice");
    revoke_with_cli(&a.config, "--jti", &jti_of(&revoked)).await;
    refused_within(&a, &revoked, WITHIN).await;

    // Redis restarts empty (no persistence in this test); A still holds the entry and pushes
    // it back once it has resubscribed.
    redis.restart();
    let member = format!("jti:{}", jti_of(&revoked));
    let repaired = eventually(Duration::from_secs(10), || {
        let mut conn = redis.connection();
        let member = member.clone();
        async move {
            conn.zscore::<_, _, Option<f64>>("cpgate:revocations", &member)
                .unwrap()
                .is_some()
        }
    })
    .await;
    assert!(repaired.is_some(), "instance A repopulates a Redis that lost its data");

    let c = cluster.instance("c").await; // fresh files: knows only what Redis tells it
    assert_eq!(c.call(&revoked).await.status, 401, "refused from the first call");
    assert_eq!(c.call(&a.token("alice")).await.status, 200);
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_restarted_while_redis_is_down_still_refuses_what_it_learned_from_redis() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let (a, b) = (cluster.instance("a").await, cluster.instance("b").await);
    let revoked = a.token("alice");
    revoke_with_cli(&a.config, "--jti", &jti_of(&revoked)).await;
    refused_within(&b, &revoked, WITHIN).await;
    let kept = eventually(WITHIN, || async {
        std::fs::read_to_string(&b.app.config.tokens.revocations)
            .unwrap_or_default()
            .contains(&jti_of(&revoked))
    })
    .await;
    assert!(kept.is_some(), "B keeps what it learned from Redis in its own file");

    redis.kill();
    assert_eq!(
        b.call(&revoked).await.status,
        401,
        "Redis down: the synced set stays in force"
    );
    b.stop().await;
    let started = Instant::now();
    let b = cluster.instance("b").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start-up does not hang on a dead store"
    );
    assert_eq!(
        b.call(&revoked).await.status,
        401,
        "restarted without Redis: still refused"
    );
    assert_eq!(b.call(&a.token("alice")).await.status, 200);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_cli_fails_loudly_when_it_cannot_share_a_revocation() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let config = cluster.config("a");
    redis.kill();
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || {
        cpgate(&["token", "revoke", "--config", path_str(&config), "--developer", "alice"])
    })
    .await
    .unwrap();
    assert!(!ok, "a revocation that did not reach Redis is an error");
    assert!(stderr.contains("could not be shared"), "{stderr}");
    let file = std::fs::read_to_string(cluster.dir.join("a/revocations.jsonl")).unwrap();
    assert!(file.contains("\"developer\":\"alice\""), "the file entry stands");
}
