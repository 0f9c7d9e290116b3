//! Audit log behaviour end to end. This file: helpers, appending, durability, restart,
//! recovery and rotation; `tamper` (verify against edits), `faults` (injected write and sync
//! failures), `query`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::call::{Api, Params};

pub(super) fn request(i: usize) -> Record {
    let params = Params::from_unique_pairs([
        ("email".to_string(), format!("user{i}@example.com")),
        ("password".to_string(), format!("hunter{i}")),
    ]);
    Record {
        event: Some(Event::Request),
        request_id: Some(format!("req-{i}")),
        developer: Some(format!("dev-{}", i % 3)),
        method: Some(Method::Post),
        call: Some(CpanelCall::new(Api::Uapi, "Email", "add_pop", params)),
        decision: Some("allow"),
        rule: Some("alice.toml allow[1]".into()),
        ..Record::default()
    }
}

pub(super) fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

pub(super) fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, text).unwrap();
}

pub(super) fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

pub(super) async fn log_with(dir: &Path, n: usize, fsync: FsyncMode) -> (AuditLog, PathBuf) {
    let path = dir.join("audit").join("audit.jsonl");
    let log = AuditLog::open(&path, fsync).await.unwrap();
    for i in 0..n {
        log.append(request(i)).await.unwrap();
    }
    (log, path)
}

/// `tasks` tasks append `each` records at once (`req-T*100+K`); returns when all are in.
async fn append_concurrently(log: &AuditLog, tasks: usize, each: usize) {
    let tasks: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for k in 0..each {
                    log.append(request(t * 100 + k)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn appended_chain_verifies_with_count_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 10, FsyncMode::Batch).await;
    let report = verify(std::slice::from_ref(&path)).unwrap();
    assert_eq!(report.records, 10);
    assert_eq!((report.seq, report.head.clone()), log.head());
    assert_eq!(report.to_string(), format!("ok: 10 records, head {}", report.head));
    let all = lines(&path);
    let first = json(&all[0]);
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], "0".repeat(64));
    assert_eq!(json(&all[1])["prev"], hex::encode(line_hash(all[0].as_bytes())));
    let ts = first["ts"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-11-27T23:14:23.123456Z".len());
    assert!(ts.ends_with('Z'));
}

#[tokio::test]
async fn empty_log_head_is_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 0, FsyncMode::Never).await;
    assert_eq!(log.head(), (0, "0".repeat(64)));
    assert!(path.exists());
    assert_eq!(verify(&[path]).unwrap().records, 0);
}

#[tokio::test]
async fn append_ok_means_bytes_are_in_the_file() {
    for mode in [FsyncMode::Never, FsyncMode::Batch, FsyncMode::Always] {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = log_with(dir.path(), 0, mode).await;
        for i in 0..5 {
            log.append(request(i)).await.unwrap();
            let text = fs::read_to_string(&path).unwrap();
            let last = text.lines().last().unwrap();
            assert_eq!(json(last)["request_id"], format!("req-{i}"), "{mode:?}");
            assert!(text.ends_with('\n'));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_land_exactly_once_in_seq_order() {
    // `always` through the writer thread; `batch` and `never` written by the appending tasks
    // themselves, from both runtime threads, under the writer's lock.
    for mode in [FsyncMode::Always, FsyncMode::Batch, FsyncMode::Never] {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = log_with(dir.path(), 0, mode).await;
        append_concurrently(&log, 64, 20).await;
        let all = lines(&path);
        assert_eq!(all.len(), 64 * 20, "{mode:?}");
        let mut ids: Vec<String> = Vec::new();
        for (i, line) in all.iter().enumerate() {
            let v = json(line);
            assert_eq!(v["seq"], i as u64 + 1, "{mode:?}");
            ids.push(v["request_id"].as_str().unwrap().to_owned());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 64 * 20, "{mode:?}");
        assert_eq!(verify(&[path]).unwrap().records, 64 * 20, "{mode:?}");
    }
}

#[tokio::test]
async fn secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 0, FsyncMode::Never).await;
    let mut batch = CpanelCall::new(Api::Uapi, "Batch", "strict", Params::new());
    let ssl = Params::from_unique_pairs([("domain", "example.com"), ("key", "-----BEGIN PRIVATE KEY-----")]);
    batch.batch = vec![
        request(1).call.unwrap(),
        CpanelCall::new(Api::Uapi, "SSL", "install_ssl", ssl),
    ];
    let record = Record {
        event: Some(Event::Request),
        call: Some(batch),
        ..Record::default()
    };
    log.append(request(7)).await.unwrap();
    log.append(record).await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter"));
    assert!(!text.contains("BEGIN PRIVATE"));
    assert!(text.contains("user7@example.com"));
    let last = json(text.lines().last().unwrap());
    assert_eq!(last["params"]["command-1"][2]["key"], REDACTED);
    assert_eq!(last["params"]["command-0"][2]["email"], "user1@example.com");
}

mod faults;
mod merge;
mod query;
mod redaction;
mod tamper;

#[tokio::test]
async fn restart_continues_seq_and_prev() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 2, FsyncMode::Never).await;
    let head = log.head();
    drop(log);
    let log = AuditLog::open(&path, FsyncMode::Never).await.unwrap();
    assert_eq!(log.head(), head);
    log.append(request(2)).await.unwrap();
    let report = verify(&[path]).unwrap();
    assert_eq!((report.records, report.seq), (3, 3));
}

#[tokio::test]
async fn torn_last_line_is_truncated_and_recovered_record_written() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 3, FsyncMode::Never).await;
    drop(log);
    let good_len = fs::metadata(&path).unwrap().len();
    let torn = b"{\"ts\":\"2026-11-27T23:14:23.123456Z\",\"seq\":4,\"pr";
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();

    let log = AuditLog::open(&path, FsyncMode::Never).await.unwrap();
    let all = lines(&path);
    assert_eq!(all.len(), 4);
    let recovered = json(&all[3]);
    assert_eq!(recovered["event"], "recovered");
    assert_eq!(recovered["seq"], 4);
    assert!(recovered["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("{} bytes", torn.len())));
    assert!(fs::metadata(&path).unwrap().len() > good_len);
    log.append(request(4)).await.unwrap();
    assert_eq!(verify(&[path]).unwrap().records, 5);
}

#[tokio::test]
async fn opening_a_file_that_is_not_an_audit_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.jsonl");
    fs::write(&path, "{\"hello\":1}\n").unwrap();
    let err = AuditLog::open(&path, FsyncMode::Batch).await.unwrap_err();
    assert_eq!(err.path, path);
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"hello\":1}\n");
}

#[tokio::test]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let options = AuditOptions {
        fsync: FsyncMode::Batch,
        max_file_size: 1,
    };
    let log = AuditLog::open_with(&path, options).await.unwrap();
    for i in 0..4 {
        log.append(request(i)).await.unwrap();
    }
    drop(log);
    let files = |n: u32| -> Vec<PathBuf> { (1..=n).rev().map(|k| writer::numbered(&path, k)).collect() };
    // Each group filled the file, so each record is in its own rotated file; audit.jsonl is new.
    let mut all = files(4);
    assert_eq!(lines(&all[0]).len(), 1);
    all.push(path.clone());
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(verify(&all).unwrap().records, 4);
    // Restarting on the empty current file continues from audit.jsonl.1.
    let log = AuditLog::open_with(&path, options).await.unwrap();
    assert_eq!(log.head().0, 4);
    log.append(request(4)).await.unwrap();
    let mut all = files(5);
    all.push(path.clone());
    let report = verify(&all).unwrap();
    assert_eq!((report.records, report.head.clone()), (5, log.head().1));
    // Without the oldest file the chain does not start at genesis.
    assert_eq!(verify(&all[1..]).unwrap_err().line, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_concurrent_appends_loses_nothing() {
    // Many writers, small files: every group may rotate; no record is lost or reordered, in
    // every mode (in `batch`/`never` the rotation runs in whichever task filled the file).
    for mode in [FsyncMode::Always, FsyncMode::Batch, FsyncMode::Never] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let options = AuditOptions {
            fsync: mode,
            max_file_size: 4 << 10,
        };
        let log = AuditLog::open_with(&path, options).await.unwrap();
        append_concurrently(&log, 16, 20).await;
        let rotated = (1..).take_while(|&n| writer::numbered(&path, n).exists()).count() as u32;
        assert!(rotated >= 2, "{mode:?}: only {rotated} rotations");
        let mut all: Vec<PathBuf> = (1..=rotated).rev().map(|k| writer::numbered(&path, k)).collect();
        all.push(path.clone());
        let report = verify(&all).unwrap();
        assert_eq!(
            (report.records, report.seq, report.head),
            (320, 320, log.head().1),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn reopen_after_external_rename_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 2, FsyncMode::Batch).await;
    let old = path.with_extension("jsonl.old");
    fs::rename(&path, &old).unwrap();
    log.reopen().await.unwrap();
    log.append(request(2)).await.unwrap();
    assert_eq!(lines(&path).len(), 1);
    assert_eq!(verify(&[old, path]).unwrap().records, 3);
    log.sync().await.unwrap();
}
