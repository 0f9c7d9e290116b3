//! Decisions coalesced into one script call stay exact: a developer several times in one
//! batch, many developers in one batch, two stores (instances) batching against one Redis; and
//! concurrent decisions do share round trips.

use std::num::NonZeroU32;

use futures_util::future::join_all;

use cpgate::config::{OnStoreError, RedisUrl};
use cpgate::principal::DeveloperId;
use cpgate::ratelimit::{Limit, RateLimitStore, RedisStore, Refusal};
use cpgate::store::{Shared, StoreMetrics};

use crate::RedisServer;

/// One cell a minute: within a test only the burst is ever admitted.
fn burst(cells: u32) -> Limit {
    Limit {
        per_minute: NonZeroU32::new(1).unwrap(),
        burst: NonZeroU32::new(cells).unwrap(),
    }
}

/// A store as one instance has it; `deny`, so that no decision can be a local one.
fn store_on(redis: &RedisServer) -> RedisStore {
    let shared = Shared::connect(&RedisUrl::parse(&redis.url()).unwrap(), StoreMetrics::default()).unwrap();
    RedisStore::new(shared, OnStoreError::Deny)
}

/// (admitted, limited) among `results`; panics on any other outcome.
fn tally(results: &[Result<(), Refusal>]) -> (usize, usize) {
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let limited = results.iter().filter(|r| matches!(r, Err(Refusal::Limited(_)))).count();
    assert_eq!(admitted + limited, results.len(), "{results:?}");
    (admitted, limited)
}

/// How many times Redis ran the rate-limit script (`EVALSHA` calls so far).
fn script_calls(redis: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.connection())
        .unwrap();
    info.lines()
        .find_map(|l| {
            l.strip_prefix("cmdstat_evalsha:calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn one_developer_many_times_in_a_batch_is_admitted_exactly_the_burst() {
    let redis = RedisServer::start();
    let store = store_on(&redis);
    let dev = DeveloperId::parse("alice").unwrap();
    // All 300 queue before the flush task runs (one thread; join_all polls them all first).
    let results = join_all((0..300).map(|_| store.check(&dev, burst(50)))).await;
    assert_eq!(tally(&results), (50, 250));
    // 300 decisions in at most 3 batches of 128 (+1 for the script's first load).
    let calls = script_calls(&redis);
    assert!((1..=4).contains(&calls), "{calls} script calls for 300 decisions");
}

#[tokio::test]
async fn many_developers_in_one_batch_keep_separate_allowances() {
    let redis = RedisServer::start();
    let store = store_on(&redis);
    let devs: Vec<DeveloperId> = (0..40)
        .map(|i| DeveloperId::parse(&format!("dev-{i}")).unwrap())
        .collect();
    let checks = devs
        .iter()
        .flat_map(|d| (0..3).map(move |_| d))
        .map(|d| store.check(d, burst(2)));
    let results = join_all(checks).await;
    for (dev, three) in devs.iter().zip(results.chunks(3)) {
        assert_eq!(tally(three), (2, 1), "{dev}: {three:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_batching_concurrently_share_one_exact_allowance() {
    let redis = RedisServer::start();
    let (a, b) = (store_on(&redis), store_on(&redis));
    let dev = DeveloperId::parse("shared").unwrap();
    let l = burst(100);
    let (from_a, from_b) = tokio::join!(
        join_all((0..250).map(|_| a.check(&dev, l))),
        join_all((0..250).map(|_| b.check(&dev, l))),
    );
    let (admitted_a, _) = tally(&from_a);
    let (admitted_b, _) = tally(&from_b);
    assert_eq!(admitted_a + admitted_b, 100, "a {admitted_a} + b {admitted_b}");
}
