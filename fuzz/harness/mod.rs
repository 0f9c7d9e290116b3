//! The fuzz entry points, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! corpus replay test (`tests/fuzz_corpus.rs`), so that CI replays every corpus file through
//! exactly the code the fuzzer ran.
//!
//! Each entry point takes arbitrary bytes, must never panic on its own, and panics (a fuzz
//! finding) only when an invariant is broken.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;
pub mod tokens;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use cpgate::call::{Api, Method};
use cpgate::classify::{classify, is_function_name, is_module_name, RawRequest};
use cpgate::policy::{DecisionRequest, LoadOptions, Policy};

#[allow(unused_imports)] // used by the replay test and the `authorization` target
pub use tokens::authorization;

/// The field separator of structured inputs.
pub const SEP: u8 = 0xff;

/// Splits `data` at [`SEP`] into at most `n` fields.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == SEP).collect()
}

/// The request classifier. Input: `M path 0xff query 0xff content-type 0xff body`, where the
/// low bit of `M` picks GET or POST (a missing query or content type is `None`).
///
/// Invariants: classification is deterministic; an accepted call has valid names, unique
/// parameter keys without NUL; and the request cpgate rebuilds from it classifies back to the
/// very same call (what cPanel will parse is what was authorized).
pub fn classify_input(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = if m & 1 == 0 { Method::Get } else { Method::Post };
    let parts = fields(rest, 4);
    let text = |i: usize| parts.get(i).map(|b| std::str::from_utf8(b));
    let path = match text(0) {
        Some(Ok(p)) => p,
        _ => return,
    };
    let query = match text(1) {
        None => None,
        Some(Ok(q)) => Some(q),
        Some(Err(_)) => return,
    };
    let content_type = match text(2) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => return,
    };
    let body = parts.get(3).copied().unwrap_or_default();
    let raw = RawRequest {
        method,
        path,
        query,
        content_type,
        body,
    };
    let first = classify(&raw);
    assert_eq!(first, classify(&raw), "classification is not deterministic");
    let Ok(call) = first else { return };
    check_call(&call);
    // Round trip: the rebuilt request must classify to the same call.
    let rebuilt = cpgate::rebuild::rebuild(&call, method, "acctuser");
    let (path, query) = match rebuilt.path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rebuilt.path_and_query.as_str(), None),
    };
    let again = classify(&RawRequest {
        method,
        path,
        query,
        content_type: rebuilt.content_type.as_deref(),
        body: &rebuilt.body,
    });
    match again {
        Ok(again) => assert_eq!(again, call, "the rebuilt request classifies differently"),
        Err(e) => panic!("the rebuilt request of an accepted call is refused: {e}"),
    }
}

fn check_call(call: &cpgate::call::CpanelCall) {
    assert!(is_module_name(&call.module), "bad module {:?}", call.module);
    assert!(is_function_name(&call.function), "bad function {:?}", call.function);
    let mut keys: Vec<&str> = call.params.iter().map(|(k, _)| k).collect();
    for k in &keys {
        assert!(!k.is_empty() && !k.contains('\0'), "bad key {k:?}");
    }
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, keys.len(), "duplicate parameter keys");
    for inner in &call.batch {
        check_call(inner);
    }
}

/// The policy parser: any text is parsed without panicking; an accepted policy decides a few
/// calls without panicking.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = LoadOptions {
        max_ttl: Duration::from_secs(3600),
        accounts: vec!["default".into(), "shop".into()],
    };
    let Ok((policy, _warnings)) = Policy::from_toml(Path::new("/policies/fuzzdev.toml"), text, &opts) else {
        return;
    };
    let mut params = cpgate::call::Params::new();
    params.set("domain", "example.com");
    params.set("email", "a");
    for (api, module, function) in [
        (Api::Uapi, "Email", "list_pops"),
        (Api::Uapi, "Email", "add_pop"),
        (Api::Api2, "ZoneEdit", "fetchzone_records"),
        (Api::Uapi, "Tokens", "create_full_access"),
    ] {
        let call = cpgate::call::CpanelCall::new(api, module, function, params.clone());
        for method in [Method::Get, Method::Post] {
            let _ = policy.decide(&DecisionRequest {
                call: &call,
                method,
                client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                scope: None,
                now: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
            });
        }
    }
}

/// The raw HTTP/1 framing tracker (`cpgate::framing`). Input: one byte choosing up to three cut
/// points, then the byte stream a client would send.
///
/// Invariants: no panic; the outcome (at a message boundary, violation) does not depend on how
/// the stream is cut into reads, because a client's writes arrive in any split.
pub fn framing(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let outcome = |cuts: &[usize]| {
        let mut t = cpgate::framing::Tracker::new(8192);
        let mut from = 0;
        for &cut in cuts.iter().chain([stream.len()].iter()) {
            let cut = cut.clamp(from, stream.len());
            t.feed(&stream[from..cut]);
            from = cut;
        }
        (t.at_boundary(), t.violation())
    };
    let whole = outcome(&[]);
    let n = stream.len().max(1);
    let mut cuts = [
        usize::from(seed) * 7 % n,
        usize::from(seed) * 31 % n,
        usize::from(seed) * 131 % n,
    ];
    cuts.sort_unstable();
    assert_eq!(outcome(&cuts), whole, "cut at {cuts:?}");
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(outcome(&bytewise), whole, "fed byte by byte");
}
