//! Instructions per policy decision with 10 and with 10,000 developer policies loaded
//! (issue 6: "within 10%"), for `valgrind --tool=callgrind`, whose counts repeat to the
//! instruction where criterion's timings on a shared 2-core machine swing with the order the
//! benchmarks run in. Each size runs the benchmark's two calls (`Email::list_pops`,
//! `Email::add_pop` with parameter constraints) `N` times for developer `dev7`, in functions of
//! their own, so that the report shows one inclusive count per size:
//!
//!     cargo build --release --example decision_instructions
//!     valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=/tmp/decide.out \
//!         target/release/examples/decision_instructions
//!     callgrind_annotate --inclusive=yes --show=Ir,D1mr /tmp/decide.out | grep decide_with

#![allow(clippy::expect_used)] // a measurement tool: a broken fixture must stop it

use std::hint::black_box;
use std::net::IpAddr;

use cpgate::policy::{DecisionRequest, PolicySet};
use time::OffsetDateTime;

#[path = "../benches/support/policies.rs"]
mod policies;

/// Decisions per call and size.
const N: usize = 1000;

// Two functions, so that each size has its own line in the report (the distinct `black_box`
// keeps the compiler from merging their identical bodies into one).
#[inline(never)]
fn decide_with_10(set: &PolicySet, req: &DecisionRequest<'_>) {
    black_box(10);
    decide(set, req);
}

#[inline(never)]
fn decide_with_10000(set: &PolicySet, req: &DecisionRequest<'_>) {
    black_box(10_000);
    decide(set, req);
}

#[inline(always)]
fn decide(set: &PolicySet, req: &DecisionRequest<'_>) {
    for _ in 0..N {
        let policy = set.get(black_box("dev7")).expect("dev7");
        assert!(black_box(policy.decide(black_box(req))).is_allow());
    }
}

fn main() {
    let (small, large) = (policies::policy_set(10), policies::policy_set(10_000));
    for (_, call, method) in policies::calls() {
        let req = DecisionRequest {
            call: &call,
            method,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            scope: None,
            now: OffsetDateTime::now_utc(),
        };
        decide_with_10(&small, &req);
        decide_with_10000(&large, &req);
    }
    println!("{N} decisions per call and size done; read the counts with callgrind_annotate");
}
