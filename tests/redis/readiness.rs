//! `/readyz` with the Redis store: Redis stopped, then restarted, without any traffic (the
//! instance's once-a-second revocation check keeps the store's health fresh).
//! `on_store_error = "local"`: still ready, but degraded; `"deny"`: not ready (503).

use std::time::Duration;

use crate::support::send_to;
use crate::{eventually, store_lines, Cluster, Instance, RedisServer};

/// (status, body) of `/readyz`.
async fn readyz(instance: &Instance) -> (u16, String) {
    let answer = send_to(instance.admin_addr, "GET", "/readyz", &[], "").await;
    (
        answer.status.as_u16(),
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

/// Waits (at most 10 s) until `/readyz` answers `status` with a body containing `needle`.
async fn until_readyz(instance: &Instance, status: u16, needle: &str) -> (u16, String) {
    let seen = eventually(Duration::from_secs(10), || async {
        let (s, body) = readyz(instance).await;
        s == status && body.contains(needle)
    })
    .await;
    let last = readyz(instance).await;
    assert!(seen.is_some(), "expected {status} with {needle:?}, last: {last:?}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_with_local_fallback_stays_ready_but_says_degraded_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let a = cluster.instance("a").await;
    let store = format!("store: redis://127.0.0.1:{}/0", redis.port);
    let (_, body) = until_readyz(&a, 200, "ok (shared limits").await;
    assert!(body.starts_with("ready\n") && body.contains(&store), "{body}");

    redis.kill();
    let (_, body) = until_readyz(&a, 200, "unreachable").await;
    assert!(body.starts_with("ready (degraded)\n"), "{body}");
    assert!(body.contains("on_store_error = \"local\""), "{body}");
    // And it does serve: the local limiter decides.
    assert_eq!(a.call(&a.token("alice")).await.status, 200);

    redis.restart();
    let (_, body) = until_readyz(&a, 200, "ok (shared limits").await;
    assert!(body.starts_with("ready\n"), "{body}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_with_deny_is_not_ready_while_redis_is_down_and_recovers() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "deny")).await;
    let a = cluster.instance("a").await;
    until_readyz(&a, 200, "ok (shared limits").await;

    redis.kill();
    let (_, body) = until_readyz(&a, 503, "unreachable").await;
    assert!(body.starts_with("not ready\n"), "{body}");
    assert!(body.contains("refused with 503 store_unavailable"), "{body}");
    // What /readyz says is what a call gets.
    let answer = a.call(&a.token("alice")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (503, "store_unavailable".into())
    );

    redis.restart();
    let (_, body) = until_readyz(&a, 200, "ok (shared limits").await;
    assert!(body.starts_with("ready\n"), "{body}");
    assert_eq!(a.call(&a.token("alice")).await.status, 200);
    a.stop().await;
}
