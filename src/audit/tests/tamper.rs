//! Tampering: verify fails at the tampered record's line.

use std::fs;
use std::path::{Path, PathBuf};

use super::{lines, log_with, request, write_lines};
use crate::audit::record::{encode, Stamp};
use crate::audit::{line_hash, verify, verify_with, Anchor, FsyncMode, Head};

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
