//! Step 2, `authenticate`: access token verification per algorithm, cold (signature and every
//! claim rule, `Verifier::verify`) and cached (`Verifier::verify_cached` on a token verified
//! before: a SHA-256 of the token and a map lookup).
//!
//! Run: `cargo bench --bench token`. Keys are generated per run (`cpgate keys generate`'s
//! code: Ed25519, P-256, RSA-3072, a 32-byte HMAC secret).

#![allow(clippy::expect_used)] // bench set-up: a broken fixture must stop the bench

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use cpgate::principal::DeveloperId;
use cpgate::token::{generate_key, issue, Algorithm, KeyRing, TokenRules, Verifier};

fn rules() -> TokenRules {
    TokenRules {
        issuer: "cpgate-bench".into(),
        audience: "cpanel".into(),
        leeway: Duration::from_secs(30),
        max_ttl: Duration::from_secs(7200),
    }
}

fn now() -> u64 {
    cpgate::app::now_unix()
}

/// A verifier for `alg` and a valid token it accepts.
fn fixture(alg: Algorithm, dir: &std::path::Path) -> (Verifier, String) {
    let key = generate_key(alg, dir).expect("key");
    let ring = KeyRing::load(alg, &key.private_key, &key.kid, &[]).expect("key ring");
    let developer = DeveloperId::parse("alice").expect("developer");
    let token = issue(&ring, &rules(), &developer, Duration::from_secs(3600), None, now())
        .expect("issue")
        .token;
    (Verifier::new(Arc::new(ring), rules()), token)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("token_verify");
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let (verifier, token) = fixture(alg, &dir.path().join(alg.as_str()));
        let t = now();
        assert!(verifier.verify(&token, t).is_ok(), "{alg} token must verify");
        group.bench_function(format!("{alg}/cold"), |b| {
            b.iter(|| verifier.verify(black_box(&token), t))
        });
        assert!(verifier.verify_cached(&token, t).is_ok());
        group.bench_function(format!("{alg}/cached"), |b| {
            b.iter(|| verifier.verify_cached(black_box(&token), t))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
