//! Step 6, `audit`: encoding one record into its JSON line (what the writer thread does per
//! record before `write(2)`), for the `request` and `response` records of a typical call.
//!
//! Run: `cargo bench --bench audit_record`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;

use cpgate::audit::{encode_line, Event, Record};
use cpgate::call::{Api, CpanelCall, Method, Params};

fn bench(c: &mut Criterion) {
    let call = CpanelCall::new(
        Api::Uapi,
        "Email",
        "add_pop",
        Params::from_unique_pairs([
            ("domain", "example.com"),
            ("email", "info"),
            ("password", "hunter2hunter2"),
            ("quota", "1024"),
        ]),
    );
    let request = Record {
        event: Some(Event::Request),
        request_id: Some("4f1c2a9e8b7d4c3fa1b2c3d4e5f60718".into()),
        developer: Some("alice".into()),
        jti: Some("8c5e7a7e-1f0b-4b55-9d8e-0a6f2b1c3d4e".into()),
        client_ip: Some([203, 0, 113, 7].into()),
        method: Some(Method::Post),
        api: Some(Api::Uapi),
        call: Some(call),
        decision: Some("allow"),
        rule: Some("alice.toml allow[1]".into()),
        ..Record::default()
    };
    let mut response = request.clone();
    response.event = Some(Event::Response);
    response.decision = None;
    response.status = Some(200);
    response.cpanel_status = Some(1);
    response.bytes = Some(312);
    response.duration_us = Some(845);
    let ts = OffsetDateTime::now_utc();
    let prev = [0x5au8; 32];
    let mut buf = Vec::with_capacity(1024);
    let mut group = c.benchmark_group("audit_record");
    for (name, record) in [("request", &request), ("response", &response)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                encode_line(&mut buf, black_box(record), ts, 42, &prev);
                buf.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
