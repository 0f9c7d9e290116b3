//! `fsync = "always"`, pipelined: the writer's side of the sync thread's `fdatasync`s.
//!
//! Owns: the groups written and not yet acknowledged ([`Unsynced`], numbered in write order),
//! and the rollback on a failed sync.
//! Never: acknowledges a group before an `fdatasync` that started after its `write(2)` returned
//! succeeded (the group is reported to the sync thread after its write; the sync thread starts
//! a sync only after taking the reports); runs two syncs of the file at once (a writeback error
//! could be reported to only one of them); keeps in the file, or in the chain head, a record
//! whose caller got `Err`.
//! Invariants: `durable` is the length and head of the file's synced prefix; the published
//! head is `durable`'s; the unsynced groups are exactly the bytes after `durable.0`; the
//! writer syncs, rotates or reopens only when every report was answered (no sync of ours can
//! still be running, not even one for groups refused already).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use super::{answer, Ack, Command, Writer};
use crate::audit::chain::Head;
use crate::audit::FsyncMode;

/// One written group waiting for its sync, and where the file ends after it.
struct Group {
    number: u64,
    acks: Vec<Ack>,
    len: u64,
    head: Head,
}

/// Written groups waiting for a sync, oldest first.
#[derive(Default)]
pub(super) struct Unsynced {
    groups: VecDeque<Group>,
    /// The number of the next group reported.
    next: u64,
    /// One past the last group a sync answer covered.
    answered: u64,
}

impl Unsynced {
    /// Every reported group was answered: the sync thread is not syncing for us, and no group
    /// waits.
    pub(super) fn idle(&self) -> bool {
        self.answered == self.next
    }
}

impl Writer {
    /// `always` with a sync thread: groups are acknowledged by [`Writer::on_synced`].
    pub(super) fn pipelined(&self) -> bool {
        self.options.fsync == FsyncMode::Always && self.syncer.is_some()
    }

    /// After a group's `write(2)`: queues it and reports it to the sync thread, which is not
    /// woken if it is busy (its next sync takes every report queued meanwhile).
    pub(super) fn hand_to_syncer(&mut self) {
        let number = self.unsynced.next;
        self.unsynced.next += 1;
        let acks = std::mem::take(&mut self.pending);
        let (len, head) = (self.len, self.head);
        self.unsynced.groups.push_back(Group {
            number,
            acks,
            len,
            head,
        });
        if self.syncer.as_ref().is_some_and(|s| s.report(number)) {
            return;
        }
        // The sync thread is gone: sync here from now on.
        self.syncer = None;
        let result = self.sync_now().map_err(|e| format!("fdatasync: {e}"));
        self.on_synced(number, result);
    }

    /// A sync covering every group up to `upto` returned: acknowledges them, or refuses them
    /// and every group written after them and cuts the file back to the last synced length.
    /// Any failure refuses every unacknowledged group, even when the failed sync covered only
    /// groups refused already: it also flushed the pages of the later ones, and the writeback
    /// error it consumed may have been theirs.
    pub(super) fn on_synced(&mut self, upto: u64, result: Result<(), String>) {
        self.unsynced.answered = self.unsynced.answered.max(upto.saturating_add(1));
        if result.is_err() {
            self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            return self.roll_back(result);
        }
        let covered = self.unsynced.groups.iter().take_while(|g| g.number <= upto).count();
        let done: Vec<Group> = self.unsynced.groups.drain(..covered).collect();
        let Some(last) = done.last() else {
            return;
        };
        self.durable = (last.len, last.head);
        self.publish(last.head);
        if self.unsynced.idle() && self.rotation_due() {
            self.rotate_logged();
        }
        answer(done.into_iter().flat_map(|g| g.acks), &result);
    }

    /// A sync failed: refuses every unsynced group and the staged records (chained onto them),
    /// and cuts the file back to the synced prefix.
    fn roll_back(&mut self, result: Result<(), String>) {
        let (len, head) = self.durable;
        let refused: Vec<Group> = self.unsynced.groups.drain(..).collect();
        tracing::error!(path = %self.path.display(),
            records = refused.iter().map(|g| g.acks.len()).sum::<usize>() + self.pending.len(),
            error = ?result, "audit fdatasync failed; records refused");
        if let Some(storage) = self.storage.as_mut() {
            if let Err(cut) = storage.set_len(len) {
                tracing::error!(path = %self.path.display(), error = %cut, "audit log: cannot cut an unsynced write");
                self.needs_truncate = true;
            }
        }
        (self.len, self.head, self.staged) = (len, head, head);
        self.buf.clear();
        let staged = std::mem::take(&mut self.pending);
        answer(refused.into_iter().flat_map(|g| g.acks).chain(staged), &result);
    }

    /// Waits until nothing written is waiting for a sync (`always`, pipelined; a no-op
    /// otherwise). Commands received meanwhile are kept for later, in order.
    pub(super) fn settle(&mut self, rx: &Receiver<Command>) {
        self.commit();
        while !self.unsynced.idle() {
            match rx.recv() {
                Ok(Command::Synced(upto, result)) => {
                    self.on_synced(upto, result);
                    // A group held back for a rotation can go now.
                    self.commit();
                }
                Ok(other) => self.backlog.push_back(other),
                // Unreachable while the sync thread holds a sender; nothing more will answer.
                Err(_) => {
                    self.roll_back(Err("audit sync thread stopped".into()));
                    self.unsynced.answered = self.unsynced.next;
                }
            }
        }
    }
}
