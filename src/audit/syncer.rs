//! The background `fdatasync` thread, so that the writer thread never waits for the disk:
//!
//! - `fsync = "batch"`: the 10 ms timer's sync ([`Syncer::request`]); a 5 ms `fdatasync` every
//!   10 ms would otherwise stall every request that arrives meanwhile. Nothing waits for it.
//! - `fsync = "always"`: the syncs of the groups the writer reports after writing them
//!   ([`Syncer::report`]). One sync covers every group reported before it started; its result
//!   goes back to the writer as [`Command::Synced`] with the last group it covers, and the next
//!   sync starts at once if groups were reported meanwhile: no round trip through the writer
//!   between two syncs. Meanwhile the writer goes on writing (pipelining).
//!
//! Owns: a duplicate handle of the current audit file, used only for `fdatasync`.
//! Never: writes or truncates; acknowledges anything itself; loses a failure (batch: it is
//! counted, logged, and handed to the writer, which then syncs its next group before
//! acknowledging it; always: it is reported to the writer, which refuses and cuts back).
//! Invariants: a [`Syncer::request`] or [`Syncer::report`] made after a `write(2)` returned is
//! followed by an `fdatasync` that starts after that request was received, so it covers those
//! bytes (requests queued together are served by one sync). The writer switches the handle only when no sync it waits for is running and it
//! synced the old file itself (rotation, reopen), so a switch never skips a pending sync; and
//! only one sync runs at a time on the file's open file description (two concurrent ones could
//! see a writeback error reported to only one of them).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::writer::{Command, Stats, Storage};

enum Job {
    /// From now on, sync this file.
    Switch(Box<dyn Storage>),
    /// `fdatasync` the current file (batch timer).
    Sync,
    /// The writer's group with this number is written: `fdatasync` the current file and send
    /// the result to the writer.
    Report(u64),
}

/// The writer's side of the sync thread; dropping it ends the thread.
pub(crate) struct Syncer {
    tx: Sender<Job>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    /// Starts the thread (named `audit-sync`); `replies` receives the results of
    /// [`Syncer::report`].
    pub(crate) fn start(path: &Path, stats: Arc<Stats>, replies: Option<Sender<Command>>) -> std::io::Result<Syncer> {
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || run(rx, &path, &flag, &stats, replies))?;
        Ok(Syncer { tx, failed })
    }

    /// Group `group` is written: asks for an `fdatasync` of everything written so far,
    /// answered by a [`Command::Synced`] naming `group` or a later one; false if the thread is
    /// gone.
    pub(crate) fn report(&self, group: u64) -> bool {
        self.tx.send(Job::Report(group)).is_ok()
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

fn run(rx: Receiver<Job>, path: &Path, failed: &AtomicBool, stats: &Stats, replies: Option<Sender<Command>>) {
    let mut handle: Option<Box<dyn Storage>> = None;
    while let Ok(first) = rx.recv() {
        let (mut sync, mut reported) = (false, None);
        let mut job = Some(first);
        while let Some(next) = job.take() {
            match next {
                Job::Switch(h) => handle = Some(h),
                Job::Sync => sync = true,
                Job::Report(group) => reported = Some(group),
            }
            job = rx.try_recv().ok();
        }
        if !sync && reported.is_none() {
            continue;
        }
        let result = match handle.as_mut() {
            Some(h) => h.sync_data().map_err(|e| format!("fdatasync: {e}")),
            None => Err("no audit file to sync".to_string()),
        };
        if let Err(e) = &result {
            if sync {
                failed.store(true, Ordering::Release);
                stats.write_errors.fetch_add(1, Ordering::AcqRel);
                tracing::error!(path = %path.display(), error = %e, "audit fdatasync failed");
            }
        }
        if let (Some(replies), Some(group)) = (replies.as_ref(), reported) {
            // The writer is gone only after its last handle was dropped: nothing waits.
            let _ = replies.send(Command::Synced(group, result));
        }
    }
}
