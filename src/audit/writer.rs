//! The writer: group commit, syncing, failure rollback and rotation.
//!
//! Driven two ways (see `audit/mod.rs`): with `fsync = "always"` by its own thread, which
//! groups the records that queue while it waits for `fdatasync`; with `batch` and `never` by
//! the calling task itself, under a lock ([`Inline`]): a `write(2)` to the page cache takes a
//! few microseconds, less than handing the record to another thread and waking the caller back.
//!
//! Owns: the open audit file, the chain head, and the only code that writes to the file.
//! Never: acknowledges a record whose bytes did not all reach the kernel (and the disk, with
//! `fsync = "always"`); advances `seq`/`prev` past a record that is not in the file; leaves a
//! partial group in the file (it truncates back to the last good length, and refuses further
//! writes until that truncation succeeded).
//! Invariants: records are stamped (`ts`, `seq`, `prev`) in the order they are written; `len` is
//! the length of the file's good prefix, which always ends with a complete record line; the
//! published head is the last record in that prefix.
//!
//! Thread mode: one group = every `Append` pending when the writer wakes (bounded by
//! [`MAX_GROUP_RECORDS`] and [`MAX_GROUP_BYTES`]), encoded into one buffer and written with one
//! `write_all`; each caller waits only on its own oneshot. Inline mode: one record per group,
//! written by its caller.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::chain::{line_hash, Head};
use super::record::{encode_body, encode_stamp, Stamp};
use super::syncer::Syncer;
use super::{recover, AuditOptions, FsyncMode, Record};

/// Most records written by one `write(2)`.
pub(crate) const MAX_GROUP_RECORDS: usize = 1024;
/// A group stops taking records once its buffer is this large.
pub(crate) const MAX_GROUP_BYTES: usize = 8 << 20;
/// `fsync = "batch"`: the longest a written record waits for its `fdatasync`.
pub(crate) const BATCH_SYNC_DELAY: Duration = Duration::from_millis(10);

/// What the writer needs from a file; a trait so tests can inject write and sync failures.
pub(crate) trait Storage: Send {
    /// Appends all of `buf` (one `write(2)` unless the kernel takes less).
    fn append_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// A second handle to the same file, for the batch sync thread (which only syncs).
    fn sync_handle(&self) -> io::Result<Box<dyn Storage>>;
}

impl Storage for File {
    fn append_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_handle(&self) -> io::Result<Box<dyn Storage>> {
        Ok(Box::new(self.try_clone()?))
    }
}

/// Wraps each file the writer opens (identity in production).
pub(crate) type Wrap = Box<dyn Fn(File) -> Box<dyn Storage> + Send>;

/// The answer to a caller: `Err` carries a message (the path is added by the handle).
pub(crate) type Ack = oneshot::Sender<Result<(), String>>;

/// A request to the writer thread.
pub(crate) enum Command {
    Append(Box<Record>, Ack),
    /// `fdatasync` now (graceful shutdown in `batch`/`never` mode).
    Sync(Ack),
    /// Reopen the path (after an external rename by logrotate).
    Reopen(Ack),
}

/// Counters shared with the handle.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub write_errors: AtomicU64,
}

pub(crate) struct Writer {
    path: PathBuf,
    options: AuditOptions,
    wrap: Wrap,
    storage: Option<Box<dyn Storage>>,
    /// Length of the good prefix of the current file.
    len: u64,
    /// Last record in the file.
    head: Head,
    /// Head including the staged (not yet written) records.
    staged: Head,
    /// The staged records' lines, each ending with `\n`.
    buf: Vec<u8>,
    shared: Arc<Mutex<Head>>,
    stats: Arc<Stats>,
    /// A background sync failed: the next group syncs before acknowledging.
    sync_before_ack: bool,
    /// A failed write could not be cut back: the file must be truncated to `len` first.
    needs_truncate: bool,
    /// `batch`: the thread that runs the delayed `fdatasync` (None: every group syncs before
    /// it is acknowledged, as with `always`).
    syncer: Option<Syncer>,
}

impl Writer {
    /// A writer continuing the chain at `head`, appending to `file` whose good length is `len`.
    pub(crate) fn new(path: PathBuf, options: AuditOptions, wrap: Wrap, file: File, len: u64, head: Head) -> Self {
        let storage = Some(wrap(file));
        let stats = Arc::new(Stats::default());
        let syncer = match options.fsync {
            FsyncMode::Batch => Syncer::start(&path, Arc::clone(&stats))
                .inspect_err(|e| tracing::warn!(error = %e, "no audit sync thread; every record is synced before it is acknowledged"))
                .ok(),
            _ => None,
        };
        let mut writer = Self {
            path,
            options,
            wrap,
            storage,
            len,
            head,
            staged: head,
            buf: Vec::with_capacity(64 << 10),
            shared: Arc::new(Mutex::new(head)),
            stats,
            sync_before_ack: false,
            needs_truncate: false,
            syncer,
        };
        writer.switch_syncer();
        writer
    }

    /// Points the sync thread at the current file (after open, rotation, reopen). Without a
    /// second handle, batch mode falls back to syncing each group before acknowledging it.
    fn switch_syncer(&mut self) {
        let (Some(syncer), Some(storage)) = (self.syncer.as_ref(), self.storage.as_ref()) else {
            return;
        };
        let switched = match storage.sync_handle() {
            Ok(handle) => syncer.switch(handle),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "no second audit file handle; every record is synced before it is acknowledged");
                false
            }
        };
        if !switched {
            self.syncer = None;
        }
    }

    pub(crate) fn shared_head(&self) -> Arc<Mutex<Head>> {
        Arc::clone(&self.shared)
    }

    pub(crate) fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Writes one record and syncs, whatever the mode (the `recovered` record at open).
    pub(crate) fn write_synced(&mut self, record: &Record) -> Result<(), String> {
        self.stage(record);
        self.commit()?;
        self.sync()
    }

    /// The writer thread's body (`fsync = "always"`): runs until every handle is dropped.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        let mut acks: Vec<Ack> = Vec::new();
        while let Ok(mut command) = rx.recv() {
            loop {
                match command {
                    Command::Append(record, ack) => {
                        self.stage(&record);
                        acks.push(ack);
                    }
                    Command::Sync(ack) => {
                        self.answer(&mut acks);
                        let _ = ack.send(self.sync());
                    }
                    Command::Reopen(ack) => {
                        self.answer(&mut acks);
                        let _ = ack.send(self.reopen_path());
                    }
                }
                if acks.len() >= MAX_GROUP_RECORDS || self.buf.len() >= MAX_GROUP_BYTES {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => command = next,
                    Err(_) => break,
                }
            }
            self.answer(&mut acks);
        }
        self.finish();
    }

    /// Commits the staged group and answers each of its callers.
    fn answer(&mut self, acks: &mut Vec<Ack>) {
        if acks.is_empty() {
            return;
        }
        let result = self.commit();
        for ack in acks.drain(..) {
            // A caller that went away still had its record written (or refused); nothing to do.
            let _ = ack.send(result.clone());
        }
    }

    /// Last handle dropped: a final sync in `batch` mode, here (the sync thread may still be
    /// busy or already gone).
    pub(crate) fn finish(&mut self) {
        if self.options.fsync == FsyncMode::Batch {
            self.syncer = None;
            if let Err(e) = self.sync_now() {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(path = %self.path.display(), error = %e, "audit fdatasync failed");
            }
        }
    }

    /// `fdatasync` now (graceful shutdown).
    pub(crate) fn sync(&mut self) -> Result<(), String> {
        self.sync_now().map_err(|e| format!("fdatasync: {e}"))
    }

    /// Reopens the path (SIGHUP, after an external rename by logrotate).
    pub(crate) fn reopen_path(&mut self) -> Result<(), String> {
        self.reopen().map_err(|e| format!("reopen: {e}"))
    }

    /// Encodes `record` after the staged ones.
    pub(crate) fn stage(&mut self, record: &Record) {
        self.stage_with(|buf| encode_body(buf, record));
    }

    /// Stamps a body encoded beforehand ([`encode_body`]) and adds its line after the staged
    /// ones.
    pub(crate) fn stage_body(&mut self, body: &[u8]) {
        self.stage_with(|buf| buf.extend_from_slice(body));
    }

    /// Adds a line: the stamp, then what `body` appends.
    fn stage_with(&mut self, body: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        let seq = self.staged.seq.wrapping_add(1);
        let stamp = Stamp {
            ts: OffsetDateTime::now_utc(),
            seq,
            prev: &self.staged.hash,
        };
        encode_stamp(&mut self.buf, &stamp);
        body(&mut self.buf);
        self.staged = Head {
            seq,
            hash: line_hash(&self.buf[start..]),
        };
        self.buf.push(b'\n');
    }

    /// Writes the staged group: `Ok` means every record in it is in the file (and synced, per
    /// the mode); `Err`, that none is and the chain head is back where it was.
    pub(crate) fn commit(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.write_staged();
        match &result {
            Ok(()) => {
                self.head = self.staged;
                *self.shared.lock().unwrap_or_else(PoisonError::into_inner) = self.head;
            }
            Err(e) => {
                self.staged = self.head;
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                let records = self.buf.iter().filter(|&&b| b == b'\n').count();
                tracing::error!(path = %self.path.display(), records, error = %e,
                    "audit write failed; records refused");
            }
        }
        self.buf.clear();
        // Rotating before the acknowledgement keeps "append returned" = "the files are settled".
        // A failed rotation loses nothing: the records are written, the current file grows on.
        if result.is_ok() && self.options.max_file_size > 0 && self.len >= self.options.max_file_size {
            if let Err(e) = self.rotate() {
                tracing::error!(path = %self.path.display(), error = %e, "audit rotation failed");
            }
        }
        result.map_err(|e| e.to_string())
    }

    fn write_staged(&mut self) -> io::Result<()> {
        self.ready()?;
        if self.syncer.as_ref().is_some_and(Syncer::take_failure) {
            self.sync_before_ack = true;
        }
        let sync = self.options.fsync == FsyncMode::Always
            || self.sync_before_ack
            || (self.options.fsync == FsyncMode::Batch && self.syncer.is_none());
        let storage = self
            .storage
            .as_mut()
            .ok_or_else(|| io::Error::other("no audit file open"))?;
        let written = storage
            .append_all(&self.buf)
            .and_then(|()| if sync { storage.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            if let Err(cut) = storage.set_len(self.len) {
                tracing::error!(path = %self.path.display(), error = %cut, "audit log: cannot cut a failed write");
                self.needs_truncate = true;
            }
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        if sync {
            self.sync_before_ack = false;
        } else if let Some(syncer) = self.syncer.as_ref() {
            if !syncer.schedule(BATCH_SYNC_DELAY) {
                // The sync thread is gone: from now on each group syncs before its ack.
                self.syncer = None;
                self.sync_before_ack = true;
            }
        }
        Ok(())
    }

    /// Makes sure a file is open and ends at `len`.
    fn ready(&mut self) -> io::Result<()> {
        if self.storage.is_none() {
            let file = open_append(&self.path)?;
            self.len = file.metadata()?.len();
            self.storage = Some((self.wrap)(file));
            self.needs_truncate = false;
            self.switch_syncer();
        }
        if self.needs_truncate {
            if let Some(storage) = self.storage.as_mut() {
                storage.set_len(self.len)?;
            }
            self.needs_truncate = false;
        }
        Ok(())
    }

    fn sync_now(&mut self) -> io::Result<()> {
        if let Some(storage) = self.storage.as_mut() {
            storage.sync_data()?;
        }
        self.sync_before_ack = false;
        Ok(())
    }

    /// Syncs the old file before it is let go, in `batch` mode (`always` synced it already,
    /// `never` does not sync). Unconditional in `batch`: a sync handed to the sync thread may
    /// still be running. A failure arms the sync-before-ack path.
    fn sync_pending(&mut self) -> io::Result<()> {
        if self.options.fsync != FsyncMode::Batch {
            return Ok(());
        }
        self.sync_now().inspect_err(|_| self.sync_before_ack = true)
    }

    /// Opens the path afresh (logrotate renamed the old file); the chain continues.
    fn reopen(&mut self) -> io::Result<()> {
        self.sync_pending()?;
        let file = open_append(&self.path)?;
        let tail = recover::scan(&file)?;
        if tail.torn > 0 || (tail.len > 0 && tail.last != Some(self.head)) {
            tracing::warn!(path = %self.path.display(),
                "reopened audit file does not end with the chain head; verify will report a break here");
        }
        self.len = file.metadata()?.len();
        self.storage = Some((self.wrap)(file));
        self.needs_truncate = false;
        self.switch_syncer();
        Ok(())
    }

    /// `audit.jsonl` -> `audit.jsonl.1`, shifting older files up; a fresh file continues the chain.
    fn rotate(&mut self) -> io::Result<()> {
        self.sync_pending()?;
        shift(&self.path)?;
        self.storage = None;
        let file = open_append(&self.path)?;
        self.len = file.metadata()?.len();
        self.storage = Some((self.wrap)(file));
        self.switch_syncer();
        if self.options.fsync != FsyncMode::Never {
            sync_parent(&self.path)?;
        }
        Ok(())
    }
}

/// Opens (creating, mode 0600) for appending and reading the tail.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// `path` + `.n`
pub(crate) fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Renames `path.N` -> `path.N+1` (highest first), then `path` -> `path.1`.
fn shift(path: &Path) -> io::Result<()> {
    let mut top = 0;
    while numbered(path, top + 1).exists() {
        top += 1;
    }
    for n in (1..=top).rev() {
        std::fs::rename(numbered(path, n), numbered(path, n + 1))?;
    }
    std::fs::rename(path, numbered(path, 1))
}

/// Makes renames and creations in the log's folder durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// The writer shared by the tasks that append (`batch`, `never`): each caller stamps, encodes
/// and writes its own record under the lock. Dropping the last handle runs the final sync.
pub(crate) struct Inline(Mutex<Writer>);

impl Inline {
    pub(crate) fn new(writer: Writer) -> Self {
        Self(Mutex::new(writer))
    }

    /// The writer, or an error if an earlier caller panicked while holding it (its record
    /// may be half-staged: refuse rather than guess).
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Writer>, String> {
        self.0
            .lock()
            .map_err(|_| "audit writer failed earlier (poisoned lock)".to_string())
    }

    /// Writes one record; returns once its bytes are in the kernel (synced in a degraded
    /// `batch` mode without a sync thread). The body is encoded before the lock is taken, so
    /// the lock covers only the stamp, the hash and the `write(2)`.
    pub(crate) fn append(&self, record: &Record) -> Result<(), String> {
        let mut body = Vec::with_capacity(512);
        encode_body(&mut body, record);
        let mut writer = self.lock()?;
        writer.stage_body(&body);
        writer.commit()
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Ok(writer) = self.0.get_mut() {
            writer.finish();
        }
    }
}
