//! `fsync = "always"`, pipelined: the writer's side of the sync thread's `fdatasync`s.
//!
//! Owns: the groups written and not yet acknowledged ([`Waiting`]: the ones the running sync
//! covers, and the ones written since it started), and the rollback on a failed sync.
//! Never: acknowledges a group before an `fdatasync` that started after its `write(2)` returned
//! succeeded; runs two syncs of the file at once (a writeback error could be reported to only
//! one of them); keeps in the file, or in the chain head, a record whose caller got `Err`.
//! Invariants: `syncing` is None only when `written` is empty; `durable` is the length and head
//! of the file's synced prefix; the published head is `durable`'s.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use super::{answer, Ack, Command, Syncer, Writer};
use crate::audit::chain::Head;
use crate::audit::FsyncMode;

/// `always`: groups written and waiting for one `fdatasync`, and where the file ends after them.
pub(super) struct Waiting {
    pub(super) acks: Vec<Ack>,
    pub(super) len: u64,
    pub(super) head: Head,
}

impl Writer {
    /// `always` with a sync thread: groups are acknowledged by [`Writer::on_synced`].
    pub(super) fn pipelined(&self) -> bool {
        self.options.fsync == FsyncMode::Always && self.syncer.is_some()
    }

    /// Hands the written groups to the sync thread unless a sync is running (then the next
    /// one, started when it answers, covers them).
    pub(super) fn start_sync(&mut self) {
        if self.syncing.is_some() || self.written.acks.is_empty() {
            return;
        }
        let (len, head) = (self.written.len, self.written.head);
        let group = std::mem::replace(
            &mut self.written,
            Waiting {
                acks: Vec::new(),
                len,
                head,
            },
        );
        self.syncing = Some(group);
        if self.syncer.as_ref().is_some_and(Syncer::report) {
            return;
        }
        // The sync thread is gone: sync here from now on.
        self.syncer = None;
        let result = self.sync_now().map_err(|e| format!("fdatasync: {e}"));
        self.on_synced(result);
    }

    /// The answer of the sync started by [`Writer::start_sync`]: acknowledges its groups, or
    /// refuses them and every group written after them and cuts the file back to the last
    /// synced length.
    pub(super) fn on_synced(&mut self, result: Result<(), String>) {
        let Some(done) = self.syncing.take() else {
            return;
        };
        if result.is_ok() {
            self.durable = (done.len, done.head);
            self.publish(done.head);
            if self.written.acks.is_empty() && self.rotation_due() {
                self.rotate_logged();
            }
            answer(done.acks.into_iter(), &result);
            self.start_sync();
            return;
        }
        let (len, head) = self.durable;
        let later = std::mem::replace(
            &mut self.written,
            Waiting {
                acks: Vec::new(),
                len,
                head,
            },
        );
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(path = %self.path.display(), records = done.acks.len() + later.acks.len() + self.pending.len(),
            error = ?result, "audit fdatasync failed; records refused");
        if let Some(storage) = self.storage.as_mut() {
            if let Err(cut) = storage.set_len(len) {
                tracing::error!(path = %self.path.display(), error = %cut, "audit log: cannot cut an unsynced write");
                self.needs_truncate = true;
            }
        }
        (self.len, self.head, self.staged) = (len, head, head);
        // Records staged meanwhile were chained onto the refused ones.
        self.buf.clear();
        answer(
            done.acks.into_iter().chain(later.acks).chain(self.pending.drain(..)),
            &result,
        );
    }

    /// Waits until nothing written is waiting for a sync (`always`, pipelined; a no-op
    /// otherwise). Commands received meanwhile are kept for later, in order.
    pub(super) fn settle(&mut self, rx: &Receiver<Command>) {
        self.commit();
        while self.syncing.is_some() {
            match rx.recv() {
                Ok(Command::Synced(result)) => {
                    self.on_synced(result);
                    // A group held back for a rotation can go now.
                    self.commit();
                }
                Ok(other) => self.backlog.push_back(other),
                // Unreachable while the sync thread holds a sender; nothing more will answer.
                Err(_) => {
                    self.on_synced(Err("audit sync thread stopped".into()));
                }
            }
        }
    }
}
