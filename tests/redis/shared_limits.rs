//! Rate limits shared through Redis: one allowance per developer across instances, GCRA as
//! governor computes it, keys that expire on their own, the script reloaded after a flush.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpgate::config::{OnStoreError, RedisUrl};
use cpgate::principal::DeveloperId;
use cpgate::ratelimit::{Limit, RateLimitStore, RedisStore, Refusal};
use cpgate::store::{Shared, StoreMetrics};
use redis::Commands as _;

use crate::{store_lines, Cluster, RedisServer};

fn limit(per_minute: u32, burst: u32) -> Limit {
    Limit {
        per_minute: NonZeroU32::new(per_minute).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_one_developer_admit_at_most_burst_plus_rate_times_elapsed() {
    let redis = RedisServer::start();
    // "deny": a store hiccup must not let local decisions inflate the count.
    let cluster = Cluster::new(&store_lines(&redis, "deny")).await;
    let a = Arc::new(cluster.instance("a").await);
    let b = Arc::new(cluster.instance("b").await);
    let token = Arc::new(a.token("limited")); // 120 per minute (2/s), burst 5
    let run_for = Duration::from_millis(2500);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let instance = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let (mut allowed, mut limited, mut calls) = (0u32, 0u32, 0u32);
            while started.elapsed() < run_for && calls < 5000 {
                let answer = instance.call(&token).await;
                match answer.status.as_u16() {
                    200 => allowed += 1,
                    429 => {
                        assert!(answer.headers.contains_key("retry-after"));
                        limited += 1;
                    }
                    other => panic!("unexpected {other}: {:?}", answer.body),
                }
                calls += 1;
            }
            (allowed, limited)
        }));
    }
    let mut per_task = Vec::new();
    for t in tasks {
        per_task.push(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed: u32 = per_task.iter().map(|(a, _)| a).sum();
    let limited: u32 = per_task.iter().map(|(_, l)| l).sum();
    let bound = 5.0 + 2.0 * elapsed;
    assert!(
        f64::from(allowed) <= bound + 1.0,
        "{allowed} admitted in {elapsed:.2} s, more than burst + rate x elapsed = {bound:.1} (+1)"
    );
    // GCRA admits burst + floor(rate x time since the first call): at most one cell less.
    assert!(
        f64::from(allowed + 1) >= bound.floor(),
        "{allowed} admitted in {elapsed:.2} s, fewer than burst + rate x elapsed = {bound:.1} (-1)"
    );
    assert!(limited > 0, "the load went over the limit");
    let a_allowed = per_task[0].0 + per_task[2].0;
    let b_allowed = per_task[1].0 + per_task[3].0;
    assert!(
        a_allowed > 0 && b_allowed > 0,
        "both instances admitted calls: {a_allowed} / {b_allowed}"
    );
    Arc::try_unwrap(a).ok().unwrap().stop().await;
    Arc::try_unwrap(b).ok().unwrap().stop().await;
}

async fn store_on(redis: &RedisServer) -> RedisStore {
    let shared = Shared::connect(&RedisUrl::parse(&redis.url()).unwrap(), StoreMetrics::default()).unwrap();
    RedisStore::new(shared, OnStoreError::Deny)
}

#[tokio::test]
async fn the_redis_store_admits_the_burst_then_one_call_per_interval_like_governor() {
    let redis = RedisServer::start();
    let store = store_on(&redis).await;
    let dev = DeveloperId::parse("alice").unwrap();
    let l = limit(60, 3);
    for _ in 0..3 {
        assert_eq!(store.check(&dev, l).await, Ok(()));
    }
    let Err(Refusal::Limited(wait)) = store.check(&dev, l).await else {
        panic!("the 4th call within the burst window must be limited");
    };
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert_eq!(store.check(&dev, l).await, Ok(()), "one cell back after the wait");
    assert!(matches!(store.check(&dev, l).await, Err(Refusal::Limited(_))));
    let other = DeveloperId::parse("bob").unwrap();
    assert_eq!(
        store.check(&other, l).await,
        Ok(()),
        "developers have separate allowances"
    );
}

#[tokio::test]
async fn rate_limit_keys_expire_on_their_own() {
    let redis = RedisServer::start();
    let store = store_on(&redis).await;
    let dev = DeveloperId::parse("alice").unwrap();
    store.check(&dev, limit(60, 3)).await.unwrap();
    let mut conn = redis.connection();
    let ttl: i64 = conn.pttl("cpgate:rl:alice").unwrap();
    // One cell of 1 s outstanding, plus the 1 s margin.
    assert!(ttl > 0 && ttl <= 2000, "PTTL {ttl}");
}

#[tokio::test]
async fn the_script_is_loaded_again_after_redis_forgets_it() {
    let redis = RedisServer::start();
    let store = store_on(&redis).await;
    let dev = DeveloperId::parse("alice").unwrap();
    assert_eq!(store.check(&dev, limit(60, 2)).await, Ok(()));
    let mut conn = redis.connection();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut conn).unwrap();
    assert_eq!(
        store.check(&dev, limit(60, 2)).await,
        Ok(()),
        "NOSCRIPT -> loaded again"
    );
    assert!(matches!(
        store.check(&dev, limit(60, 2)).await,
        Err(Refusal::Limited(_))
    ));
}
