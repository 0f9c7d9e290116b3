//! Audit log benchmarks (issue 3).
//!
//! 1. `writer/*` (criterion): 64 concurrent appenders on one [`AuditLog`], per fsync mode, and
//!    `writer/fdatasync_per_record`, the baseline of one `write` + `fdatasync` per record.
//! 2. `proxy` (own loop, after criterion): a release `cpgate serve` in front of an in-process
//!    hyper upstream, loaded by 64 keep-alive tokio connections for `AUDIT_BENCH_SECS` seconds,
//!    modes interleaved (never, batch, always, never, ...) for `AUDIT_BENCH_ROUNDS` rounds;
//!    prints medians of requests/s, proxy CPU µs per request, and the ratios the issue asks for,
//!    next to the fdatasync baseline measured in the same run. With
//!    `AUDIT_BENCH_BASELINE=/path/to/another/cpgate`, every round also runs that build in each
//!    mode (interleaved with this one), so two builds are compared within one run.
//!
//! Files live under `CARGO_TARGET_TMPDIR` (the target disk, not a tmpfs, so syncs are real).
//! `cargo bench --bench audit`; `AUDIT_BENCH=writer|proxy` runs one part. Under `cargo test`
//! (no `--bench` argument) everything runs once, briefly, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../tests/audit_durability/support.rs"]
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use cpgate::audit::{AuditLog, AuditOptions, Event, FsyncMode, Record};
use cpgate::call::{Api, CpanelCall, Method, Params};

use support::{Client, Setup, Upstream};

const APPENDERS: usize = 64;
const CONNECTIONS: usize = 64;

fn bench_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A typical allowed-call record (about 400 bytes once stamped).
fn record(i: u64) -> Record {
    let params = Params::from_unique_pairs([
        ("domain", "example.com".to_string()),
        ("email", format!("user{i}")),
        ("password", "hunter2".to_string()),
    ]);
    Record {
        event: Some(Event::Request),
        request_id: Some(format!("0192f3c5-7a41-7c2e-9b8d-{i:012x}")),
        developer: Some("alice".into()),
        jti: Some("7f6c2a9e-1c44-4d0b-9a51-3f3e0c2d8b17".into()),
        client_ip: Some("203.0.113.9".parse().unwrap()),
        method: Some(Method::Post),
        call: Some(CpanelCall::new(Api::Uapi, "Email", "add_pop", params)),
        decision: Some("allow"),
        rule: Some("alice.toml allow[1]".into()),
        ..Record::default()
    }
}

fn mode_name(mode: FsyncMode) -> &'static str {
    match mode {
        FsyncMode::Always => "always",
        FsyncMode::Batch => "batch",
        FsyncMode::Never => "never",
    }
}

/// criterion: 64 tasks appending concurrently; one iteration = one record.
fn writer_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for mode in [FsyncMode::Never, FsyncMode::Batch, FsyncMode::Always] {
        let dir = bench_dir(&format!("writer-{}", mode_name(mode)));
        let options = AuditOptions {
            fsync: mode,
            max_file_size: 64 << 20,
        };
        let log = rt
            .block_on(AuditLog::open_with(&dir.join("audit.jsonl"), options))
            .unwrap();
        group.bench_function(format!("append_{APPENDERS}_concurrent/{}", mode_name(mode)), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..APPENDERS as u64)
                        .map(|t| {
                            let log = log.clone();
                            let n = iters / APPENDERS as u64 + u64::from(t < iters % APPENDERS as u64);
                            tokio::spawn(async move {
                                for k in 0..n {
                                    log.append(record(t << 32 | k)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let dir = bench_dir("fdatasync");
    let mut file = std::fs::File::create(dir.join("probe")).unwrap();
    let line = vec![b'x'; 400];
    group.bench_function("fdatasync_per_record", |b| {
        b.iter(|| {
            file.write_all(&line).unwrap();
            file.sync_data().unwrap();
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One `write` + `fdatasync` of a 400-byte record, repeated for `secs`: syncs per second.
fn fdatasync_rate(secs: f64) -> f64 {
    let dir = bench_dir("fdatasync-rate");
    let mut file = std::fs::File::create(dir.join("probe")).unwrap();
    let line = vec![b'x'; 400];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        file.write_all(&line).unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// utime + stime of a process, in µs.
fn cpu_us(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    ticks * 10_000 // USER_HZ = 100
}

/// 64 connections for `secs`: completed 200 responses.
async fn load(addr: std::net::SocketAddr, bearer: Arc<str>, secs: f64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let bearer = bearer.clone();
            tokio::spawn(async move {
                let mut conn = Client::connect(addr).await.unwrap();
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let answer = conn
                        .send("GET", "/execute/Email/list_pops?domain=example.com", &bearer, "")
                        .await
                        .unwrap();
                    assert_eq!(answer.status, 200);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The proxy load run: interleaved rounds, medians, ratios; per build when a baseline is given.
fn proxy_bench(rounds: usize, secs: f64, warmup: f64) {
    let current = PathBuf::from(env!("CARGO_BIN_EXE_cpgate"));
    let mut builds = vec![("this build", current)];
    if let Some(baseline) = std::env::var_os("AUDIT_BENCH_BASELINE") {
        builds.insert(0, ("baseline", PathBuf::from(baseline)));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let upstream = Upstream::start().await;
        let modes = ["never", "batch", "always"];
        let setups: Vec<Setup> = modes.iter().map(|m| Setup::new(&upstream, m)).collect();
        let runs = modes.len() * builds.len();
        let mut rps: Vec<Vec<f64>> = vec![Vec::new(); runs];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); runs];
        let mut syncs = Vec::new();
        for round in 0..rounds {
            for run in 0..runs {
                let (i, (build, bin)) = (run % modes.len(), &builds[run / modes.len()]);
                let setup = &setups[i];
                let proxy = setup.spawn_bin(bin).await;
                let bearer: Arc<str> = setup.bearer.as_str().into();
                if warmup > 0.0 {
                    load(setup.addr, bearer.clone(), warmup).await;
                }
                let cpu_before = cpu_us(proxy.pid());
                let start = Instant::now();
                let done = load(setup.addr, bearer, secs).await;
                let elapsed = start.elapsed().as_secs_f64();
                let cpu_after = cpu_us(proxy.pid());
                proxy.stop().await;
                rps[run].push(done as f64 / elapsed);
                cpu[run].push((cpu_after - cpu_before) as f64 / done.max(1) as f64);
                eprintln!(
                    "round {round} {build} {:>6}: {:>8.0} req/s",
                    modes[i],
                    done as f64 / elapsed
                );
            }
            syncs.push(fdatasync_rate(secs.min(2.0)));
        }
        let med: Vec<f64> = rps.iter_mut().map(|v| median(v)).collect();
        let med_cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
        let sync_rate = median(&mut syncs);
        println!("\nproxy: {CONNECTIONS} connections, {rounds} rounds x {secs} s, medians");
        println!("| build | fsync | req/s | vs never | proxy CPU µs/req |");
        println!("|---|---|---|---|---|");
        for run in 0..runs {
            let (i, build) = (run % modes.len(), builds[run / modes.len()].0);
            let never = med[run - i];
            println!(
                "| {build} | {} | {:.0} | {:.3} | {:.1} |",
                modes[i],
                med[run],
                med[run] / never,
                med_cpu[run]
            );
        }
        println!(
            "fdatasync baseline: {sync_rate:.0} write+fdatasync/s ({:.0} µs each)",
            1e6 / sync_rate
        );
        for (b, (build, _)) in builds.iter().enumerate() {
            let at = b * modes.len();
            println!(
                "{build}: always = {:.1}x one fsync per request (target >= 20x); batch/never = {:.3} (target >= 0.9)",
                med[at + 2] / sync_rate,
                med[at + 1] / med[at],
            );
        }
    });
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let part = std::env::var("AUDIT_BENCH").unwrap_or_default();
    if part != "proxy" {
        let mut c = Criterion::default().configure_from_args();
        writer_benches(&mut c);
        c.final_summary();
    }
    if part != "writer" {
        let env = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        if bench_mode {
            proxy_bench(
                env("AUDIT_BENCH_ROUNDS", 5.0) as usize,
                env("AUDIT_BENCH_SECS", 3.0),
                0.5,
            );
        } else {
            proxy_bench(1, 0.2, 0.0);
        }
    }
}
