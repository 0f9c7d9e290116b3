//! The audit log: JSON Lines records with a SHA-256 hash chain, written before forwarding.
//!
//! Owns: the audit file (one [`writer`]), record encoding and redaction
//! ([`record`]), the chain ([`chain`]), crash recovery ([`recover`]), and the read side used by
//! `cpgate audit verify` / `cpgate audit query` ([`verify`], [`query`], [`merge`]).
//! Never: drop a record, acknowledge a record before its bytes reached the kernel (and the disk
//! with `fsync = "always"`), log a secret parameter, upload content or a raw query string.
//! Invariants: `seq` starts at 1 for the first record ever and grows by one per record, across
//! restarts and rotation; each record's `prev` is the SHA-256 of the previous record's line; an
//! `Err` from [`AuditLog::append`] means the record is not in the log.
//!
//! ```text
//!  batch, never:  append(record) ─lock─▶ stamp ts/seq/prev, encode, write(2) ─▶ Ok
//!                                        (batch: the sync thread fdatasyncs ≤ 10 ms later)
//!  always:        append(record) ──channel──▶ writer thread: stamp, encode ─┐
//!                       ▲          (all pending records = one group)       │ write(2), fdatasync
//!                       └──────── oneshot ack ◀─────────────────────────────┘
//! ```

mod chain;
mod merge;
pub mod query;
mod record;
mod recover;
mod syncer;
pub mod verify;
mod writer;

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

pub use self::chain::{line_hash, Head, GENESIS};
pub use self::merge::{LineProblem, ProblemKind};
pub use self::query::{query, Decision, OutputFormat, QueryError, QueryFilter, QueryStats};
pub use self::record::{encode_line, is_secret_param, REDACTED};
pub use self::verify::{verify, verify_with, Anchor, VerifyError, VerifyReport};
use self::writer::{Command, Inline, Stats, Storage, Wrap, Writer};
use crate::call::{Api, CpanelCall, Method};

/// `audit.fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// `fdatasync` before each group is acknowledged.
    Always,
    /// Acknowledge after `write(2)`; `fdatasync` at most 10 ms later.
    Batch,
    /// Never sync (records still reach the kernel before they are acknowledged).
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

impl Event {
    /// The name written in the `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Request => "request",
            Event::Response => "response",
            Event::Denied => "denied",
            Event::TokenIssued => "token_issued",
            Event::TokenRevoked => "token_revoked",
            Event::PolicyReload => "policy_reload",
            Event::Recovered => "recovered",
        }
    }
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
    /// Written as `api`; when unset, the call's api is used.
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

/// Settings beyond the fsync mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// `audit.fsync`.
    pub fsync: FsyncMode,
    /// `audit.max_file_size`: once the file reaches this many bytes it is renamed to
    /// `FILE.1` (older ones shift up) and a new file continues the chain. 0 disables rotation.
    pub max_file_size: u64,
}

impl AuditOptions {
    /// 256 MiB.
    pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

    /// The given mode with the default rotation size.
    pub fn new(fsync: FsyncMode) -> Self {
        Self {
            fsync,
            max_file_size: Self::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self::new(FsyncMode::Batch)
    }
}

/// A handle to the audit log writer; cheap to clone. The writer ends (after a final sync in
/// `batch` mode) when the last handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    path: Arc<Path>,
    driver: Driver,
    head: Arc<Mutex<Head>>,
    stats: Arc<Stats>,
}

/// Who runs the writer.
#[derive(Clone)]
enum Driver {
    /// `always`: its own thread, which groups the records that queue during each `fdatasync`.
    Thread(mpsc::Sender<Command>),
    /// `batch`, `never`: the appending task, under a lock.
    Inline(Arc<Inline>),
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating folders and file), recovers a torn last line, continues the chain.
    pub async fn open(path: &Path, fsync: FsyncMode) -> Result<AuditLog, AuditError> {
        Self::open_with(path, AuditOptions::new(fsync)).await
    }

    /// [`AuditLog::open`] with every option.
    pub async fn open_with(path: &Path, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || start(&owned, options, Box::new(|f: File| Box::new(f) as Box<dyn Storage>)))
            .await
            .map_err(|e| error(path, format!("open task failed: {e}")))?
    }

    /// Appends one record; returns once its bytes were handed to the kernel (and synced, per
    /// the fsync mode). An error means the record is not in the log.
    pub async fn append(&self, record: Record) -> Result<(), AuditError> {
        match &self.driver {
            Driver::Inline(inline) => inline.append(&record).map_err(|message| error(&self.path, message)),
            Driver::Thread(tx) => self.ask(tx, |ack| Command::Append(Box::new(record), ack)).await,
        }
    }

    /// `(seq, hex hash)` of the last record written; `(0, 64 zeros)` before the first.
    pub fn head(&self) -> (u64, String) {
        let head = *self.head.lock().unwrap_or_else(PoisonError::into_inner);
        (head.seq, head.hex())
    }

    /// Reopens the file at the path (SIGHUP, after an external logrotate renamed it); records
    /// appended after this call go to the new file and the chain continues.
    pub async fn reopen(&self) -> Result<(), AuditError> {
        match &self.driver {
            Driver::Inline(inline) => self.blocking(inline, Writer::reopen_path).await,
            Driver::Thread(tx) => self.ask(tx, Command::Reopen).await,
        }
    }

    /// `fdatasync`s everything written so far (graceful shutdown in `batch`/`never` mode).
    pub async fn sync(&self) -> Result<(), AuditError> {
        match &self.driver {
            Driver::Inline(inline) => self.blocking(inline, Writer::sync).await,
            Driver::Thread(tx) => self.ask(tx, Command::Sync).await,
        }
    }

    /// How many groups failed to be written or synced since open (for `/metrics`).
    pub fn write_errors(&self) -> u64 {
        self.stats.write_errors.load(Ordering::Relaxed)
    }

    /// The audit file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `job` on the inline writer off the runtime (it may wait for the disk).
    async fn blocking(
        &self,
        inline: &Arc<Inline>,
        job: fn(&mut Writer) -> Result<(), String>,
    ) -> Result<(), AuditError> {
        let inline = Arc::clone(inline);
        let result = tokio::task::spawn_blocking(move || job(&mut *inline.lock()?))
            .await
            .unwrap_or_else(|e| Err(format!("audit task failed: {e}")));
        result.map_err(|message| error(&self.path, message))
    }

    /// Sends `command` to the writer thread and waits for its answer.
    async fn ask(
        &self,
        tx: &mpsc::Sender<Command>,
        command: impl FnOnce(writer::Ack) -> Command,
    ) -> Result<(), AuditError> {
        let (ack, answer) = oneshot::channel();
        tx.send(command(ack))
            .map_err(|_| error(&self.path, "audit writer stopped".into()))?;
        match answer.await {
            Ok(result) => result.map_err(|message| error(&self.path, message)),
            Err(_) => Err(error(&self.path, "audit writer stopped".into())),
        }
    }
}

fn error(path: &Path, message: String) -> AuditError {
    AuditError {
        path: path.to_path_buf(),
        message,
    }
}

/// Opens, recovers and starts the writer thread (blocking).
fn start(path: &Path, options: AuditOptions, wrap: Wrap) -> Result<AuditLog, AuditError> {
    let fail = |what: &str, e: std::io::Error| error(path, format!("{what}: {e}"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("create folder", e))?;
    }
    let file = writer::open_append(path).map_err(|e| fail("open", e))?;
    let tail = recover::recover(&file).map_err(|e| fail("recover", e))?;
    let head = match tail.last {
        Some(head) => head,
        None => rotated_head(path).map_err(|e| fail("read previous file", e))?,
    };
    let mut writer = Writer::new(path.to_path_buf(), options, wrap, file, tail.len, head);
    if tail.torn > 0 {
        let record = Record {
            event: Some(Event::Recovered),
            reason: Some(format!(
                "truncated {} bytes of a torn last record (crash during a write)",
                tail.torn
            )),
            ..Record::default()
        };
        writer.write_synced(&record).map_err(|message| error(path, message))?;
        tracing::warn!(path = %path.display(), bytes = tail.torn, "audit log: torn tail truncated");
    }
    let (head, stats) = (writer.shared_head(), writer.stats());
    let driver = if options.fsync == FsyncMode::Always {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| fail("start writer thread", e))?;
        Driver::Thread(tx)
    } else {
        Driver::Inline(Arc::new(Inline::new(writer)))
    };
    Ok(AuditLog {
        path: Arc::from(path),
        driver,
        head,
        stats,
    })
}

/// The head to continue from when the current file holds no record: the last record of
/// `FILE.1` (after a rotation, or an external rename), else genesis.
fn rotated_head(path: &Path) -> std::io::Result<Head> {
    match File::open(writer::numbered(path, 1)) {
        Ok(file) => Ok(recover::scan(&file)?.last.unwrap_or(Head::genesis())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Head::genesis()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
