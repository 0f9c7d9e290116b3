//! The audit log: JSON Lines records with a SHA-256 hash chain, written before forwarding.
//!
//! Never: drop a record, acknowledge a record before its bytes reached the kernel (and the disk
//! with `fsync = "always"`), log a secret parameter. STUB: owned by the audit work; signatures
//! are the contract with the rest of the crate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::call::{Api, CpanelCall, Method};

/// `audit.fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    Always,
    Batch,
    Never,
}

/// The kind of a record (the `event` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Request,
    Response,
    Denied,
    TokenIssued,
    TokenRevoked,
    PolicyReload,
    Recovered,
}

/// One record before the writer stamps `ts`, `seq` and `prev`. Unset fields are omitted.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub event: Option<Event>,
    pub request_id: Option<String>,
    pub developer: Option<String>,
    pub jti: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub method: Option<Method>,
    pub api: Option<Api>,
    /// The classified call; its parameters are written redacted (cpanel-wire.md §7), batch
    /// commands included.
    pub call: Option<CpanelCall>,
    pub decision: Option<&'static str>,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub code: Option<&'static str>,
    pub status: Option<u16>,
    pub cpanel_status: Option<i64>,
    pub bytes: Option<u64>,
    pub duration_us: Option<u64>,
}

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    pub path: PathBuf,
    pub message: String,
}

/// A handle to the audit log writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating folders and file), recovers a torn last line, continues the chain.
    pub async fn open(path: &Path, fsync: FsyncMode) -> Result<AuditLog, AuditError> {
        let _ = fsync;
        Ok(AuditLog {
            path: path.to_path_buf(),
        })
    }

    /// Appends one record; returns once its bytes were handed to the kernel (and synced, per
    /// the fsync mode). An error means the record is not in the log.
    pub async fn append(&self, record: Record) -> Result<(), AuditError> {
        let _ = record;
        Err(AuditError {
            path: self.path.clone(),
            message: "not built yet".into(),
        })
    }

    /// `(seq, hex hash)` of the last record written.
    pub fn head(&self) -> (u64, String) {
        (0, "0".repeat(64))
    }
}
