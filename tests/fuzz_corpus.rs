//! Replays every checked-in fuzz corpus file (`fuzz/corpus/<target>/*`) through the very entry
//! points the cargo-fuzz targets call, as ordinary tests on the stable toolchain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::PathBuf;

/// Every file of one target's corpus, with its name; fails if the corpus is missing or empty.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    for (name, data) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "fuzz/corpus/{target}/{name} broke an invariant");
    }
}

#[test]
fn authorization_corpus_replays_cleanly() {
    replay("authorization", harness::authorization);
}

#[test]
fn classify_corpus_replays_cleanly() {
    replay("classify", harness::classify_input);
}

#[test]
fn policy_corpus_replays_cleanly() {
    replay("policy", harness::policy);
}

#[test]
fn framing_corpus_replays_cleanly() {
    replay("framing", harness::framing);
}

#[test]
fn proxy_corpus_replays_cleanly() {
    replay("proxy", harness::proxy::proxy);
    assert!(
        harness::proxy::forwarded() >= 10,
        "the seeds must reach cPanel: {}",
        harness::proxy::forwarded()
    );
}

#[test]
fn authorization_model_accepts_the_valid_seed() {
    let valid =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/authorization/seed-signed-valid"))
            .unwrap();
    let (header, payload) = valid.split_at(valid.iter().position(|&b| b == harness::SEP).unwrap());
    assert!(harness::tokens::should_accept(header, &payload[1..]));
    assert!(harness::tokens::verify(&harness::tokens::sign(header, &payload[1..])));
}
