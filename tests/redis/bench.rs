//! Throughput with the Redis store against the memory store, same run, same load: 16
//! concurrent clients, 3 s per run, two runs of each alternated, at most 100 000 calls per run.
//! Ignored by default (a measurement, not a check):
//! `cargo test --release --test redis -- --ignored --nocapture store_throughput`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{store_lines, Cluster, RedisServer};

async fn throughput(store: &str) -> f64 {
    let cluster = Cluster::new(store).await;
    let instance = Arc::new(cluster.instance("bench").await);
    let token = Arc::new(instance.token("bench"));
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (instance, token, calls) = (instance.clone(), token.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < run_for && calls.load(Ordering::Relaxed) < 100_000 {
                assert_eq!(instance.call(&token).await.status, 200);
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Arc::try_unwrap(instance).ok().unwrap().stop().await;
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run with --ignored --nocapture (release build)"]
async fn store_throughput_redis_against_memory() {
    let redis = RedisServer::start();
    // Alternated, so that warm-up and neighbours' load weigh on both alike.
    let (mut memory, mut shared) = (0.0, 0.0);
    for _ in 0..2 {
        memory += throughput("").await / 2.0;
        shared += throughput(&store_lines(&redis, "local")).await / 2.0;
    }
    println!(
        "throughput: memory store {memory:.0} calls/s, Redis store {shared:.0} calls/s, ratio {:.2}",
        shared / memory
    );
}
