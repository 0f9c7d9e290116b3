//! Step 3, `classify`: raw request -> `CpanelCall`, for the shapes the gateway sees most.
//!
//! Run: `cargo bench --bench classify`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use cpgate::call::Method;
use cpgate::classify::{classify, RawRequest};

fn bench(c: &mut Criterion) {
    let form = "email=info&domain=example.com&password=hunter2hunter2&quota=1024";
    let batch = "command=%5B%22Email%22%2C%22list_pops%22%2C%7B%22domain%22%3A%22example.com%22%7D%5D\
                 &command=%5B%22DomainInfo%22%2C%22list_domains%22%2C%7B%7D%5D";
    let cases: [(&str, RawRequest<'_>); 4] = [
        (
            "uapi_get",
            RawRequest {
                method: Method::Get,
                path: "/execute/Email/list_pops",
                query: Some("domain=example.com"),
                content_type: None,
                body: b"",
            },
        ),
        (
            "uapi_post_form",
            RawRequest {
                method: Method::Post,
                path: "/execute/Email/add_pop",
                query: None,
                content_type: Some("application/x-www-form-urlencoded"),
                body: form.as_bytes(),
            },
        ),
        (
            "api2_get",
            RawRequest {
                method: Method::Get,
                path: "/json-api/cpanel",
                query: Some(
                    "cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=ZoneEdit\
                     &cpanel_jsonapi_func=fetchzone_records&domain=example.com&type=TXT",
                ),
                content_type: None,
                body: b"",
            },
        ),
        (
            "batch_post",
            RawRequest {
                method: Method::Post,
                path: "/execute/Batch/strict",
                query: None,
                content_type: Some("application/x-www-form-urlencoded"),
                body: batch.as_bytes(),
            },
        ),
    ];
    let mut group = c.benchmark_group("classify");
    for (name, raw) in &cases {
        assert!(classify(raw).is_ok(), "{name} must classify");
        group.bench_function(*name, |b| b.iter(|| classify(black_box(raw))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
