//! Audit log behaviour end to end: writer, recovery, rotation, verify and the tampering it
//! catches, failure handling with injected faults.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use super::record::{encode, Stamp};
use super::*;
use crate::call::{Api, Params};

fn request(i: usize) -> Record {
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

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, text).unwrap();
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

async fn log_with(dir: &Path, n: usize, fsync: FsyncMode) -> (AuditLog, PathBuf) {
    let path = dir.join("audit").join("audit.jsonl");
    let log = AuditLog::open(&path, fsync).await.unwrap();
    for i in 0..n {
        log.append(request(i)).await.unwrap();
    }
    (log, path)
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
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 0, FsyncMode::Always).await;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for k in 0..20 {
                    log.append(request(t * 100 + k)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let all = lines(&path);
    assert_eq!(all.len(), 64 * 20);
    let mut ids: Vec<String> = Vec::new();
    for (i, line) in all.iter().enumerate() {
        let v = json(line);
        assert_eq!(v["seq"], i as u64 + 1);
        ids.push(v["request_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 64 * 20);
    assert_eq!(verify(&[path]).unwrap().records, 64 * 20);
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

// --- tampering: verify fails at the tampered record's line -------------------------------

async fn six_records() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (_log, path) = log_with(dir.path(), 6, FsyncMode::Never).await;
    let all = lines(&path);
    (dir, path, all)
}

fn broken_line(path: &Path) -> u64 {
    let err = verify(&[path.to_path_buf()]).unwrap_err();
    assert_eq!(err.file, path);
    err.line
}

#[tokio::test]
async fn verify_fails_at_edited_record() {
    let (_dir, path, mut all) = six_records().await;
    all[2] = all[2].replace("dev-2", "mallory");
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 3);
}

#[tokio::test]
async fn verify_fails_at_edited_record_made_invalid() {
    let (_dir, path, mut all) = six_records().await;
    all[4].truncate(20);
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 5);
}

#[tokio::test]
async fn verify_fails_at_removed_record() {
    let (_dir, path, mut all) = six_records().await;
    all.remove(2);
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 3);
}

#[tokio::test]
async fn verify_fails_at_removed_first_record() {
    let (_dir, path, mut all) = six_records().await;
    all.remove(0);
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 1);
}

#[tokio::test]
async fn verify_fails_at_inserted_record() {
    let (_dir, path, mut all) = six_records().await;
    let copy = all[1].clone();
    all.insert(3, copy);
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 4);
}

#[tokio::test]
async fn verify_fails_at_inserted_record_with_forged_seq_and_prev() {
    let (_dir, path, mut all) = six_records().await;
    // A forgery that fits where it stands: seq 3, chained from line 2.
    let mut forged = Vec::new();
    let prev = line_hash(all[1].as_bytes());
    let ts = time::OffsetDateTime::now_utc();
    encode(
        &mut forged,
        &Stamp {
            ts,
            seq: 3,
            prev: &prev,
        },
        &request(99),
    );
    all.insert(2, String::from_utf8(forged).unwrap());
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 3);
}

#[tokio::test]
async fn verify_fails_at_reordered_records() {
    let (_dir, path, mut all) = six_records().await;
    all.swap(3, 4);
    write_lines(&path, &all);
    assert_eq!(broken_line(&path), 4);
}

#[tokio::test]
async fn verify_fails_at_torn_last_line() {
    let (_dir, path, all) = six_records().await;
    let mut text: String = all.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("{\"ts\":");
    fs::write(&path, text).unwrap();
    assert_eq!(broken_line(&path), 7);
}

#[tokio::test]
async fn verify_with_anchor_continues_from_a_known_head() {
    let (_dir, path, all) = six_records().await;
    let tail = dir_file(&path, "tail.jsonl");
    write_lines(&tail, &all[3..]);
    assert_eq!(verify(std::slice::from_ref(&tail)).unwrap_err().line, 1);
    let anchor = Head {
        seq: 3,
        hash: line_hash(all[2].as_bytes()),
    };
    assert_eq!(
        verify_with(std::slice::from_ref(&tail), Anchor::Head(anchor))
            .unwrap()
            .records,
        3
    );
    assert_eq!(verify_with(&[tail], Anchor::Any).unwrap().records, 3);
}

fn dir_file(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

// --- restart, recovery, rotation -----------------------------------------------------------

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

// --- failures: nothing acknowledged, chain consistent, service resumes --------------------

#[tokio::test]
async fn write_error_on_full_device_refuses_the_record() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let log = AuditLog::open(full, FsyncMode::Always).await.unwrap();
    for i in 0..3 {
        let err = log.append(request(i)).await.unwrap_err();
        assert_eq!(err.path, full);
    }
    assert_eq!(log.head(), (0, "0".repeat(64)));
    assert_eq!(log.write_errors(), 3);
}

#[tokio::test]
async fn opening_under_a_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, "x").unwrap();
    assert!(AuditLog::open(&blocker.join("audit.jsonl"), FsyncMode::Batch)
        .await
        .is_err());
}

#[derive(Default)]
struct Faults {
    /// Writes put half their bytes in the file, then fail with ENOSPC.
    fail_writes: AtomicBool,
    fail_set_len: AtomicBool,
    fail_sync: AtomicBool,
    events: Mutex<Vec<&'static str>>,
    /// Notified on every `sync_data` call, failed or not.
    sync_called: Notify,
}

struct Faulty {
    file: File,
    faults: Arc<Faults>,
}

impl Faulty {
    fn event(&self, what: &'static str) {
        self.faults.events.lock().unwrap().push(what);
    }
}

impl Storage for Faulty {
    fn append_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.faults.fail_writes.load(Ordering::SeqCst) {
            self.file.write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::from_raw_os_error(28));
        }
        self.event("write");
        self.file.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let result = if self.faults.fail_sync.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(5))
        } else {
            self.event("sync");
            Ok(())
        };
        self.faults.sync_called.notify_one();
        result?;
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.faults.fail_set_len.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.file.set_len(len)
    }
}

fn faulty_log(dir: &Path, fsync: FsyncMode) -> (AuditLog, PathBuf, Arc<Faults>) {
    let path = dir.join("audit.jsonl");
    let faults = Arc::new(Faults::default());
    let shared = Arc::clone(&faults);
    let wrap: writer::Wrap = Box::new(move |file| {
        Box::new(Faulty {
            file,
            faults: Arc::clone(&shared),
        })
    });
    let log = start(&path, AuditOptions::new(fsync), wrap).unwrap();
    (log, path, faults)
}

#[tokio::test]
async fn partial_write_is_cut_back_and_service_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path, faults) = faulty_log(dir.path(), FsyncMode::Never);
    log.append(request(0)).await.unwrap();
    let (good_len, head) = (fs::metadata(&path).unwrap().len(), log.head());

    faults.fail_writes.store(true, Ordering::SeqCst);
    assert!(log.append(request(1)).await.is_err());
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(log.head(), head);

    faults.fail_writes.store(false, Ordering::SeqCst);
    log.append(request(2)).await.unwrap();
    let all = lines(&path);
    assert_eq!(json(&all[1])["request_id"], "req-2");
    assert_eq!(json(&all[1])["seq"], 2);
    assert_eq!(verify(&[path]).unwrap().records, 2);
}

#[tokio::test]
async fn failed_cut_back_refuses_writes_until_the_file_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path, faults) = faulty_log(dir.path(), FsyncMode::Never);
    log.append(request(0)).await.unwrap();
    faults.fail_writes.store(true, Ordering::SeqCst);
    faults.fail_set_len.store(true, Ordering::SeqCst);
    assert!(log.append(request(1)).await.is_err());
    // The write path works again but the torn bytes cannot be cut yet: still refused.
    faults.fail_writes.store(false, Ordering::SeqCst);
    assert!(log.append(request(2)).await.is_err());
    faults.fail_set_len.store(false, Ordering::SeqCst);
    log.append(request(3)).await.unwrap();
    assert_eq!(verify(&[path]).unwrap().records, 2);
    assert_eq!(log.write_errors(), 2);
}

#[tokio::test]
async fn always_mode_sync_failure_refuses_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path, faults) = faulty_log(dir.path(), FsyncMode::Always);
    log.append(request(0)).await.unwrap();
    assert_eq!(*faults.events.lock().unwrap(), ["write", "sync"]);
    faults.fail_sync.store(true, Ordering::SeqCst);
    assert!(log.append(request(1)).await.is_err());
    assert_eq!(lines(&path).len(), 1);
    faults.fail_sync.store(false, Ordering::SeqCst);
    log.append(request(2)).await.unwrap();
    assert_eq!(verify(&[path]).unwrap().records, 2);
}

#[tokio::test]
async fn batch_mode_acknowledges_after_write_and_syncs_soon_after() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _path, faults) = faulty_log(dir.path(), FsyncMode::Batch);
    log.append(request(0)).await.unwrap();
    assert_eq!(faults.events.lock().unwrap()[0], "write");
    tokio::time::timeout(Duration::from_secs(10), faults.sync_called.notified())
        .await
        .unwrap();
    assert_eq!(*faults.events.lock().unwrap(), ["write", "sync"]);
}

#[tokio::test]
async fn batch_mode_sync_failure_makes_the_next_group_sync_before_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path, faults) = faulty_log(dir.path(), FsyncMode::Batch);
    faults.fail_sync.store(true, Ordering::SeqCst);
    log.append(request(0)).await.unwrap();
    // The background sync fails; from then on groups are refused until a sync succeeds.
    tokio::time::timeout(Duration::from_secs(10), faults.sync_called.notified())
        .await
        .unwrap();
    let refused = log.append(request(1)).await.unwrap_err();
    assert!(refused.message.contains("Input/output"), "{refused}");
    faults.fail_sync.store(false, Ordering::SeqCst);
    log.append(request(2)).await.unwrap();
    assert!(verify(&[path]).is_ok());
    assert!(log.write_errors() >= 2);
}

#[tokio::test]
async fn query_streams_matching_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 6, FsyncMode::Never).await;
    log.append(Record {
        event: Some(Event::Denied),
        developer: Some("dev-0".into()),
        call: Some(CpanelCall::new(
            Api::Api2,
            "ZoneEdit",
            "fetchzone_records",
            Params::new(),
        )),
        code: Some("forbidden"),
        status: Some(403),
        ..Record::default()
    })
    .await
    .unwrap();
    let files = [path];
    let run = |filter: QueryFilter, format| {
        let mut out = Vec::new();
        let stats = query(&files, &filter, format, &mut out).unwrap();
        (stats, String::from_utf8(out).unwrap())
    };
    let (stats, out) = run(
        QueryFilter {
            developer: Some("dev-0".into()),
            ..QueryFilter::default()
        },
        OutputFormat::JsonLines,
    );
    assert_eq!((stats.scanned, stats.matched), (7, 3));
    assert!(out.lines().all(|l| json(l)["developer"] == "dev-0"));
    // Output lines are the stored lines, byte for byte.
    let stored = lines(&files[0]);
    assert!(out.lines().all(|l| stored.iter().any(|s| s == l)));

    let by_call = |pattern: &str| {
        let filter = QueryFilter {
            call: Some(pattern.into()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!(by_call("Email::*"), 6);
    assert_eq!(by_call("*::fetchzone_*"), 1);
    assert_eq!(by_call("api2:*"), 1);
    assert_eq!(by_call("uapi:ZoneEdit::*"), 0);

    let by_decision = |decision: &str| {
        let filter = QueryFilter {
            decision: Some(decision.parse().unwrap()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!((by_decision("allow"), by_decision("deny")), (6, 1));
    assert!("maybe".parse::<Decision>().is_err());

    let now = time::OffsetDateTime::now_utc();
    let since = |text: &str| {
        let filter = QueryFilter {
            since: Some(QueryFilter::parse_time(text, now).unwrap()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!(since("1h"), 7);
    assert_eq!(since("2999-01-01T00:00:00Z"), 0);
    let until_past = QueryFilter {
        until: Some(QueryFilter::parse_time("2000-01-01T00:00:00Z", now).unwrap()),
        ..QueryFilter::default()
    };
    assert_eq!(run(until_past, OutputFormat::JsonLines).0.matched, 0);
    assert!(QueryFilter::parse_time("yesterday-ish", now).is_err());

    let (_, table) = run(
        QueryFilter {
            decision: Some(Decision::Deny),
            ..QueryFilter::default()
        },
        OutputFormat::Table,
    );
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].starts_with("TS "));
    assert!(rows[1].contains("api2:ZoneEdit::fetchzone_records"));
    assert!(rows[1].contains("403 forbidden"));
}

#[tokio::test]
async fn query_skips_unparsable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, path) = log_with(dir.path(), 2, FsyncMode::Never).await;
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"garbage\n{\"ts\":")
        .unwrap();
    let mut out = Vec::new();
    let stats = query(&[path], &QueryFilter::default(), OutputFormat::JsonLines, &mut out).unwrap();
    assert_eq!((stats.scanned, stats.matched, stats.unparsable), (4, 2, 2));
}
