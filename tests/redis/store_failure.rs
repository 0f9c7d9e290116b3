//! Redis stopped mid-load: `on_store_error = "local"` keeps serving with per-instance limits,
//! `"deny"` answers 503 `store_unavailable`; no crash, no hang (every call is bounded), the
//! loss is logged once and counted, and the shared store is used again once Redis is back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Commands as _;

use crate::{eventually, logs, store_lines, Cluster, Instance, RedisServer};

/// No call may take longer than this, Redis dead or alive (command timeout 1 s + margin).
const BOUNDED: Duration = Duration::from_millis(2500);

/// A load that runs until told to stop, counting its calls.
#[derive(Default)]
struct Progress {
    calls: AtomicUsize,
    stop: AtomicBool,
}

impl Progress {
    /// Waits (10 s at most) until `more` calls were made after this call.
    async fn wait_for(&self, more: usize) {
        let target = self.calls.load(Ordering::SeqCst) + more;
        let reached = eventually(Duration::from_secs(10), || async {
            self.calls.load(Ordering::SeqCst) >= target
        })
        .await;
        assert!(reached.is_some(), "the load made fewer than {more} calls in 10 s");
    }
}

/// Calls until stopped (at most 3000 calls), each bounded; returns the statuses seen.
async fn load(instance: Arc<Instance>, token: Arc<String>, progress: Arc<Progress>) -> Vec<u16> {
    let mut statuses = Vec::new();
    while !progress.stop.load(Ordering::SeqCst) && statuses.len() < 3000 {
        let answer = tokio::time::timeout(BOUNDED, instance.call(&token))
            .await
            .expect("a call hung while the store was failing");
        statuses.push(answer.status.as_u16());
        progress.calls.fetch_add(1, Ordering::SeqCst);
    }
    statuses
}

/// Runs the load, kills Redis once it made 20 calls, and stops it 20 calls after the kill.
async fn load_across_a_kill(instance: &Arc<Instance>, token: &Arc<String>, redis: &mut RedisServer) -> Vec<u16> {
    let progress = Arc::new(Progress::default());
    let loader = tokio::spawn(load(instance.clone(), token.clone(), progress.clone()));
    progress.wait_for(20).await;
    redis.kill();
    progress.wait_for(20).await;
    progress.stop.store(true, Ordering::SeqCst);
    loader.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_load_with_local_fallback_keeps_serving_and_recovers() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let a = Arc::new(cluster.instance("a").await);
    let token = Arc::new(a.token("bench"));
    let revoked = a.token("alice");
    let jti = crate::jti_of(&revoked);
    a.app.reload_revocations().await.unwrap();
    cpgate::token::revocation::append(
        &a.app.config.tokens.revocations,
        &cpgate::token::revocation::Revocation {
            target: cpgate::token::revocation::Target::Jti(jti),
            revoked_at: crate::now(),
        },
        crate::now(),
        3660,
    )
    .unwrap();
    a.app.reload_revocations().await.unwrap();

    let statuses = load_across_a_kill(&a, &token, &mut redis).await;
    assert!(statuses.len() >= 40, "the load ran: {} calls", statuses.len());
    assert!(
        statuses.iter().all(|&s| s == 200),
        "local fallback: every call served, got {statuses:?}"
    );
    assert_eq!(a.call(&token).await.status, 200);
    assert_eq!(a.call(&revoked).await.status, 401, "revocations never fail open");

    // Local limits still hold (per instance) while the store is down.
    let limited = a.token("limited");
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(a.call(&limited).await.status.as_u16());
    }
    assert!(seen.contains(&429), "the local limiter still limits: {seen:?}");
    assert!(a.metric("cpgate_store_fallbacks_total").await >= 1.0);
    assert!(a.metric("cpgate_store_errors_total").await >= 1.0);
    assert_eq!(a.metric("cpgate_store_up").await, 0.0);
    let lost = format!("store=redis://127.0.0.1:{}/0", redis.port);
    let lines = logs();
    let lost_lines = lines
        .lines()
        .filter(|l| l.contains(&lost) && l.contains("the Redis store is unreachable"))
        .count();
    assert_eq!(lost_lines, 1, "the loss is logged once");

    redis.restart();
    let back = eventually(Duration::from_secs(10), || async {
        a.call(&token).await;
        redis.connection().exists::<_, bool>("cpgate:rl:bench").unwrap()
    })
    .await;
    assert!(back.is_some(), "decisions go to Redis again once it is back");
    assert_eq!(a.metric("cpgate_store_up").await, 1.0);
    Arc::try_unwrap(a).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_load_with_deny_answers_503_store_unavailable_and_recovers() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "deny")).await;
    let a = Arc::new(cluster.instance("a").await);
    let token = Arc::new(a.token("bench"));

    let statuses = load_across_a_kill(&a, &token, &mut redis).await;
    assert!(statuses.iter().all(|&s| s == 200 || s == 503), "{statuses:?}");
    assert_eq!(statuses.first(), Some(&200), "served while Redis was up");
    assert_eq!(statuses.last(), Some(&503), "refused once Redis was gone");

    let answer = a.call(&token).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.code(), "store_unavailable");
    assert_eq!(answer.headers["retry-after"], "1");
    let audited = a
        .audit_lines()
        .iter()
        .any(|r| r["event"] == "denied" && r["code"] == "store_unavailable");
    assert!(audited, "the refusal is audited");
    let forwarded_before = cluster.upstream.received().len();
    assert_eq!(a.call(&token).await.status, 503);
    assert_eq!(cluster.upstream.received().len(), forwarded_before, "nothing forwarded");

    redis.restart();
    let back = eventually(Duration::from_secs(10), || async { a.call(&token).await.status == 200 }).await;
    assert!(back.is_some(), "calls are served again once Redis is back");
    Arc::try_unwrap(a).ok().unwrap().stop().await;
}
