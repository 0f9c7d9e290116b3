//! Failures: nothing acknowledged, the chain stays consistent, service resumes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{json, lines, request};
use crate::audit::writer::{self, Storage};
use crate::audit::{start, verify, AuditLog, AuditOptions, FsyncMode};

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
    /// Notified when a `sync_data` call starts.
    sync_started: Notify,
    /// While true, `sync_data` blocks (a slow disk).
    hold_sync: Mutex<bool>,
    release_sync: Condvar,
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
        self.faults.sync_started.notify_one();
        let mut held = self.faults.hold_sync.lock().unwrap();
        while *held {
            held = self.faults.release_sync.wait(held).unwrap();
        }
        drop(held);
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

    fn sync_handle(&self) -> io::Result<Box<dyn Storage>> {
        Ok(Box::new(Faulty {
            file: self.file.try_clone()?,
            faults: Arc::clone(&self.faults),
        }))
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
async fn batch_mode_schedules_a_new_sync_for_writes_after_the_last_sync_started() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _path, faults) = faulty_log(dir.path(), FsyncMode::Batch);
    for round in 1..=3 {
        let synced = faults.sync_called.notified();
        log.append(request(round)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), synced).await.unwrap();
    }
    assert_eq!(
        *faults.events.lock().unwrap(),
        ["write", "sync", "write", "sync", "write", "sync"]
    );
}

#[tokio::test]
async fn batch_mode_syncs_when_the_last_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _path, faults) = faulty_log(dir.path(), FsyncMode::Batch);
    log.append(request(0)).await.unwrap();
    // Dropped well within the 10 ms the background sync waits: the drop itself syncs.
    drop(log);
    assert_eq!(faults.events.lock().unwrap().last(), Some(&"sync"));
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
    // The sync thread reports the failure just after the call returns.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.write_errors() == 0 {
        assert!(std::time::Instant::now() < deadline, "sync failure not reported");
        tokio::task::yield_now().await;
    }
    let refused = log.append(request(1)).await.unwrap_err();
    assert!(refused.message.contains("Input/output"), "{refused}");
    faults.fail_sync.store(false, Ordering::SeqCst);
    log.append(request(2)).await.unwrap();
    assert!(verify(&[path]).is_ok());
    assert!(log.write_errors() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_keeps_writing_while_a_slow_sync_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path, faults) = faulty_log(dir.path(), FsyncMode::Batch);
    *faults.hold_sync.lock().unwrap() = true;
    let started = faults.sync_started.notified();
    log.append(request(0)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started).await.unwrap();
    // The timer's sync is stuck on the disk; records are still written and acknowledged.
    for i in 1..20 {
        tokio::time::timeout(Duration::from_secs(10), log.append(request(i)))
            .await
            .expect("append blocked behind the background sync")
            .unwrap();
    }
    assert_eq!(lines(&path).len(), 20);
    *faults.hold_sync.lock().unwrap() = false;
    faults.release_sync.notify_all();
    log.sync().await.unwrap();
    assert_eq!(verify(&[path]).unwrap().records, 20);
}
