//! Step 4, `authorize`: the policy lookup by developer plus the decision, with 10 and with
//! 10,000 developer policies loaded (the target: within 10% of each other).
//!
//! Criterion runs benchmarks one after another, and on a shared machine a later benchmark is
//! often slower or faster than an earlier one for reasons of its own (runs with the order
//! reversed showed it: whichever size ran last looked slower). So each size runs twice, in the
//! order 10, 10,000, 10,000, 10 (`.../run1`, `.../run2`): the mean of a size's two runs cancels
//! a steady drift. Compare `(10k run1 + 10k run2) / (10 run1 + 10 run2)`.
//!
//! Run: `cargo bench --bench authorize`.

#![allow(clippy::expect_used)] // bench set-up: a broken fixture must stop the bench

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;

use cpgate::policy::DecisionRequest;

#[path = "support/policies.rs"]
mod policies;
use policies::policy_set;

fn bench(c: &mut Criterion) {
    let ip: IpAddr = [127, 0, 0, 1].into();
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("authorize");
    let sets = [(10usize, policy_set(10)), (10_000, policy_set(10_000))];
    for (name, call, method) in policies::calls() {
        let req = DecisionRequest {
            call: &call,
            method,
            client_ip: ip,
            scope: None,
            now,
        };
        for (run, order) in [(1, [0, 1]), (2, [1, 0])] {
            for (n, set) in order.map(|i| &sets[i]) {
                let policy = set.get("dev7").expect("dev7");
                assert!(policy.decide(&req).is_allow(), "{name} must be allowed");
                group.bench_function(format!("{name}/{n}_policies/run{run}"), |b| {
                    b.iter(|| {
                        let policy = set.get(black_box("dev7")).expect("dev7");
                        policy.decide(black_box(&req))
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
