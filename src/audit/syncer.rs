//! `fsync = "batch"`: the background `fdatasync` thread, so that a writing task never waits
//! for the disk in batch mode (a 5 ms `fdatasync` every 10 ms would otherwise stall every
//! request that arrives meanwhile). It also keeps the batch timer: the first unsynced write
//! schedules one `fdatasync` [`BATCH_SYNC_DELAY`](super::writer::BATCH_SYNC_DELAY) later.
//!
//! Owns: a duplicate handle of the current audit file, used only for `fdatasync`.
//! Never: writes or truncates; acknowledges anything (batch records were acknowledged after
//! their `write(2)`); loses a failure (it is counted, logged, and handed to the writer, which
//! then syncs its next group before acknowledging it).
//! Invariants: a [`Syncer::schedule`] made after a `write(2)` returned is followed by an
//! `fdatasync` that starts after it, so it covers those bytes: `armed` is cleared just before
//! each sync starts, so a write that finds it set is covered by the sync it announces, and one
//! that finds it clear schedules the next (writes in between share one sync). The writer switches the handle only after it synced
//! the old file itself (rotation, reopen), so a switch never skips a pending sync.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::writer::{Stats, Storage};

enum Job {
    /// From now on, sync this file.
    Switch(Box<dyn Storage>),
    /// `fdatasync` the current file at this time (the earliest scheduled wins).
    SyncAt(Instant),
}

/// The writer's side of the sync thread; dropping it ends the thread.
pub(crate) struct Syncer {
    tx: Sender<Job>,
    flags: Arc<Flags>,
}

#[derive(Default)]
struct Flags {
    /// A sync is scheduled and has not started yet.
    armed: AtomicBool,
    /// A background sync failed since the writer last looked.
    failed: AtomicBool,
}

impl Syncer {
    /// Starts the thread (named `audit-sync`).
    pub(crate) fn start(path: &Path, stats: Arc<Stats>) -> std::io::Result<Syncer> {
        let (tx, rx) = mpsc::channel();
        let flags = Arc::new(Flags::default());
        let shared = Arc::clone(&flags);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || run(rx, &path, &shared, &stats))?;
        Ok(Syncer { tx, flags })
    }

    /// Syncs `handle` from now on; false if the thread is gone.
    pub(crate) fn switch(&self, handle: Box<dyn Storage>) -> bool {
        self.tx.send(Job::Switch(handle)).is_ok()
    }

    /// Call after a `write(2)` returned: makes sure an `fdatasync` covering it runs at most
    /// `delay` from now (one already scheduled does). False if the thread is gone.
    pub(crate) fn schedule(&self, delay: Duration) -> bool {
        if self.flags.armed.swap(true, Ordering::AcqRel) {
            return true;
        }
        self.tx.send(Job::SyncAt(Instant::now() + delay)).is_ok()
    }

    /// True once per failed background sync since the last call.
    pub(crate) fn take_failure(&self) -> bool {
        self.flags.failed.swap(false, Ordering::AcqRel)
    }
}

fn run(rx: Receiver<Job>, path: &Path, flags: &Flags, stats: &Stats) {
    let mut handle: Option<Box<dyn Storage>> = None;
    let mut due: Option<Instant> = None;
    loop {
        let job = match due {
            None => match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                // The writer is gone; it ran the final sync itself.
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        match job {
            Some(Job::Switch(h)) => handle = Some(h),
            Some(Job::SyncAt(at)) => due = Some(due.map_or(at, |d| d.min(at))),
            None => {}
        }
        if due.is_none_or(|at| at > Instant::now()) {
            continue;
        }
        due = None;
        flags.armed.store(false, Ordering::SeqCst);
        if let Some(h) = handle.as_mut() {
            if let Err(e) = h.sync_data() {
                flags.failed.store(true, Ordering::Release);
                stats.write_errors.fetch_add(1, Ordering::AcqRel);
                tracing::error!(path = %path.display(), error = %e, "audit fdatasync failed");
            }
        }
    }
}
