//! Throughput with the Redis store against the memory store, measured in one run so that only
//! their ratio is compared (the machine is shared; absolute figures are noise).
//!
//! Two instances start once (one per store, each with its own mock cPanel), then [`ROUNDS`]
//! rounds each measure both stores back to back, the order alternating per round, after one
//! discarded warm-up round. Two figures per store and round:
//!
//! - **pipeline**: calls/s of `GET /execute/Email/list_pops` through the whole cpgate request
//!   path (token, classify, policy, rate limit, audit record, forward, response record) from
//!   [`CALLERS`] concurrent keep-alive clients;
//! - **decision**: rate-limit decisions/s of the store alone (`App::limiter`), from [`CALLERS`]
//!   concurrent tasks.
//!
//! Each run lasts [`ROUND`] or [`MAX_CALLS`] calls, whichever comes first. The figures printed
//! are medians over the rounds, and the median of the per-round ratios. Ignored by default (a
//! measurement, not a check):
//! `cargo test --release --test redis -- --ignored --nocapture store_throughput`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use cpgate::principal::DeveloperId;
use cpgate::ratelimit::Limit;

use crate::{store_lines, Cluster, Instance, RedisServer};

const CALLERS: usize = 64;
const ROUNDS: usize = 7;
const ROUND: Duration = Duration::from_secs(2);
const MAX_CALLS: u64 = 400_000;

/// One store under test.
struct Subject {
    name: &'static str,
    instance: Instance,
    token: String,
    _cluster: Cluster,
}

impl Subject {
    async fn start(name: &'static str, store: &str) -> Subject {
        let cluster = Cluster::new(store).await;
        let instance = cluster.instance("bench").await;
        let token = instance.token("bench");
        Subject {
            name,
            instance,
            token,
            _cluster: cluster,
        }
    }

    /// Calls/s through the whole pipeline, [`CALLERS`] keep-alive connections.
    async fn pipeline(&self) -> f64 {
        let calls = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CALLERS {
            let (addr, calls) = (self.instance.addr, calls.clone());
            let auth = format!("Bearer {}", self.token);
            tasks.push(tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                while started.elapsed() < ROUND && calls.load(Ordering::Relaxed) < MAX_CALLS {
                    sender.ready().await.unwrap();
                    let request = http::Request::get("/execute/Email/list_pops")
                        .header("host", addr.to_string())
                        .header("authorization", &auth)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.unwrap();
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }

    /// Rate-limit decisions/s of the store alone, [`CALLERS`] concurrent tasks.
    async fn decisions(&self) -> f64 {
        let developer = Arc::new(DeveloperId::parse("bench").unwrap());
        let limit = Limit {
            per_minute: NonZeroU32::new(100_000_000).unwrap(),
            burst: NonZeroU32::new(1_000_000).unwrap(),
        };
        let calls = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CALLERS {
            let (app, developer, calls) = (self.instance.app.clone(), developer.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < ROUND && calls.load(Ordering::Relaxed) < MAX_CALLS {
                    assert_eq!(app.limiter.check(&developer, limit).await, Ok(()));
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Per round: (memory, redis) for each figure.
#[derive(Default)]
struct Figures {
    pipeline: Vec<(f64, f64)>,
    decisions: Vec<(f64, f64)>,
}

fn report(what: &str, unit: &str, rounds: &[(f64, f64)]) {
    let memory: Vec<f64> = rounds.iter().map(|r| r.0).collect();
    let redis: Vec<f64> = rounds.iter().map(|r| r.1).collect();
    let ratios: Vec<f64> = rounds.iter().map(|r| r.1 / r.0).collect();
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" ");
    println!("{what}: memory {} {unit} per round", list(&memory));
    println!("{what}: redis  {} {unit} per round", list(&redis));
    println!(
        "{what}: median memory {:.0} {unit}, median redis {:.0} {unit}, median ratio redis/memory {:.2} (per round: {})",
        median(&memory),
        median(&redis),
        median(&ratios),
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run with --ignored --nocapture (release build)"]
async fn store_throughput_redis_against_memory() {
    let redis = RedisServer::start();
    let memory = Subject::start("memory", "").await;
    let shared = Subject::start("redis", &store_lines(&redis, "local")).await;
    // Warm-up (discarded): connections, script load, caches.
    for subject in [&memory, &shared] {
        subject.pipeline().await;
        subject.decisions().await;
    }
    let mut figures = Figures::default();
    for round in 0..ROUNDS {
        // Alternated, so that drift and neighbours' load weigh on both alike.
        let order = if round % 2 == 0 {
            [&memory, &shared]
        } else {
            [&shared, &memory]
        };
        let mut pipeline = [0.0; 2];
        let mut decisions = [0.0; 2];
        for subject in order {
            let i = usize::from(subject.name == "redis");
            pipeline[i] = subject.pipeline().await;
            decisions[i] = subject.decisions().await;
        }
        figures.pipeline.push((pipeline[0], pipeline[1]));
        figures.decisions.push((decisions[0], decisions[1]));
    }
    println!("{CALLERS} concurrent callers, {ROUNDS} rounds of {ROUND:?} per store and figure, alternated");
    report("pipeline", "calls/s", &figures.pipeline);
    report("decision", "decisions/s", &figures.decisions);
    let errors = shared.instance.metric("cpgate_store_fallbacks_total").await;
    println!("redis store fallbacks during the run: {errors}");
    assert_eq!(errors, 0.0, "every Redis decision was Redis's (no local fallback)");
    memory.instance.stop().await;
    shared.instance.stop().await;
}
