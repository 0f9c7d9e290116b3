//! Step 4, `authorize`: the policy lookup by developer plus the decision, with 10 and with
//! 10,000 developer policies loaded (the target: within 10% of each other).
//!
//! Run: `cargo bench --bench authorize`.

#![allow(clippy::expect_used)] // bench set-up: a broken fixture must stop the bench

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;

use cpgate::call::{Api, CpanelCall, Method, Params};
use cpgate::policy::{DecisionRequest, LoadOptions, Policy, PolicySet};

/// A realistic policy: two allow rules (one with parameter constraints), one deny rule.
fn policy_text(i: usize) -> String {
    format!(
        r#"description = "developer {i}"
[rate_limit]
per_minute = 600
burst = 100

[[allow]]
calls = ["DomainInfo::list_domains", "Email::list_pops", "Email::list_forwarders"]
methods = ["GET"]

[[allow]]
calls = ["Email::add_pop", "Email::passwd_pop"]
methods = ["POST"]
[allow.params]
domain = ["example{i}.com"]
email = ["*"]

[[deny]]
calls = ["Email::delete_*"]
"#
    )
}

/// `n` policies `dev0` .. `dev{n-1}`.
pub fn policy_set(n: usize) -> PolicySet {
    let opts = LoadOptions {
        max_ttl: Duration::from_secs(7200),
        accounts: vec!["default".into()],
    };
    PolicySet::from_policies((0..n).map(|i| {
        let path = PathBuf::from(format!("dev{i}.toml"));
        Policy::from_toml(&path, &policy_text(i), &opts)
            .expect("valid policy")
            .0
    }))
}

fn bench(c: &mut Criterion) {
    let read = CpanelCall::new(
        Api::Uapi,
        "Email",
        "list_pops",
        Params::from_unique_pairs([("domain", "example.com")]),
    );
    let write = CpanelCall::new(
        Api::Uapi,
        "Email",
        "add_pop",
        Params::from_unique_pairs([("domain", "example7.com"), ("email", "info"), ("password", "x")]),
    );
    let ip: IpAddr = [127, 0, 0, 1].into();
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("authorize");
    for n in [10usize, 10_000] {
        let set = policy_set(n);
        for (name, call, method) in [("list_pops", &read, Method::Get), ("add_pop", &write, Method::Post)] {
            let req = DecisionRequest {
                call,
                method,
                client_ip: ip,
                scope: None,
                now,
            };
            let policy = set.get("dev7").expect("dev7");
            assert!(policy.decide(&req).is_allow(), "{name} must be allowed");
            group.bench_function(format!("{name}/{n}_policies"), |b| {
                b.iter(|| {
                    let policy = set.get(black_box("dev7")).expect("dev7");
                    policy.decide(black_box(&req))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
