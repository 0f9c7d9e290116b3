//! Policy reload: loading a folder of 10,000 developer policies (what `App::reload_policies`
//! does before it swaps the new set in). The target: under one second.
//!
//! Run: `cargo bench --bench policy_reload`.

#![allow(clippy::expect_used)] // bench set-up: a broken fixture must stop the bench

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use cpgate::policy::{LoadOptions, PolicySet};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..10_000 {
        let text = format!(
            "[[allow]]\ncalls = [\"Email::list_pops\", \"DomainInfo::list_domains\"]\nmethods = [\"GET\"]\n\n\
             [[allow]]\ncalls = [\"Email::add_pop\"]\nmethods = [\"POST\"]\n[allow.params]\n\
             domain = [\"example{i}.com\"]\nemail = [\"*\"]\n\n[[deny]]\ncalls = [\"Email::delete_*\"]\n"
        );
        std::fs::write(dir.path().join(format!("dev{i}.toml")), text).expect("write policy");
    }
    let opts = LoadOptions {
        max_ttl: Duration::from_secs(7200),
        accounts: vec!["default".into()],
    };
    let loaded = PolicySet::load_dir(dir.path(), &opts).expect("policies load");
    assert_eq!(loaded.len(), 10_000);
    let mut group = c.benchmark_group("policy_reload");
    group.sample_size(10);
    group.bench_function("load_dir/10000_developers", |b| {
        b.iter(|| PolicySet::load_dir(dir.path(), &opts).map(|s| s.len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
