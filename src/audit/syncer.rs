//! `fsync = "batch"`: the background `fdatasync` thread, so that the writer thread never waits
//! for the disk in batch mode (a 5 ms `fdatasync` every 10 ms would otherwise stall every
//! request that arrives meanwhile).
//!
//! Owns: a duplicate handle of the current audit file, used only for `fdatasync`.
//! Never: writes or truncates; acknowledges anything (batch records were acknowledged after
//! their `write(2)`); loses a failure (it is counted, logged, and handed to the writer, which
//! then syncs its next group before acknowledging it).
//! Invariants: a [`Syncer::request`] made after a `write(2)` returned is followed by an
//! `fdatasync` that starts after that request was received, so it covers those bytes (requests
//! queued together are served by one sync). The writer switches the handle only after it synced
//! the old file itself (rotation, reopen), so a switch never skips a pending sync.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::writer::{Stats, Storage};

enum Job {
    /// From now on, sync this file.
    Switch(Box<dyn Storage>),
    /// `fdatasync` the current file.
    Sync,
}

/// The writer's side of the sync thread; dropping it ends the thread.
pub(crate) struct Syncer {
    tx: Sender<Job>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    /// Starts the thread (named `audit-sync`).
    pub(crate) fn start(path: &Path, stats: Arc<Stats>) -> std::io::Result<Syncer> {
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || run(rx, &path, &flag, &stats))?;
        Ok(Syncer { tx, failed })
    }

    /// Syncs `handle` from now on; false if the thread is gone.
    pub(crate) fn switch(&self, handle: Box<dyn Storage>) -> bool {
        self.tx.send(Job::Switch(handle)).is_ok()
    }

    /// Asks for an `fdatasync` of everything written so far; false if the thread is gone.
    pub(crate) fn request(&self) -> bool {
        self.tx.send(Job::Sync).is_ok()
    }

    /// True once per failed background sync since the last call.
    pub(crate) fn take_failure(&self) -> bool {
        self.failed.swap(false, Ordering::AcqRel)
    }
}

fn run(rx: Receiver<Job>, path: &Path, failed: &AtomicBool, stats: &Stats) {
    let mut handle: Option<Box<dyn Storage>> = None;
    while let Ok(first) = rx.recv() {
        let mut sync = false;
        let mut job = Some(first);
        while let Some(next) = job.take() {
            match next {
                Job::Switch(h) => handle = Some(h),
                Job::Sync => sync = true,
            }
            job = rx.try_recv().ok();
        }
        if !sync {
            continue;
        }
        if let Some(h) = handle.as_mut() {
            if let Err(e) = h.sync_data() {
                failed.store(true, Ordering::Release);
                stats.write_errors.fetch_add(1, Ordering::AcqRel);
                tracing::error!(path = %path.display(), error = %e, "audit fdatasync failed");
            }
        }
    }
}
