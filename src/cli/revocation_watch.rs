//! The revocation file watch: wakes the server when `tokens.revocations` changes, and only then.
//!
//! Owns: one inotify instance with two watches: the file itself (in-place appends by
//! `cpgate token revoke`: `IN_MODIFY`, `IN_CLOSE_WRITE`, `IN_ATTRIB`; and `IN_DELETE_SELF`,
//! `IN_MOVE_SELF` when it goes away) and its folder, for entries created or moved in only
//! (`IN_CREATE`, `IN_MOVED_TO`: the file appearing, or replaced by a rename when a revoke compacts
//! it).
//! Never: watches the folder for modifications. The default revocation file lies beside the
//! audit file, and a folder watch that includes `IN_MODIFY` (what `notify` always asks for)
//! makes the kernel queue an event, and wake a thread, for every audit `write(2)`.
//! Invariant: after every event of the file watch, or of the folder watch naming the file, the
//! file watch is re-armed on whatever inode the path names now (none while it does not exist:
//! the folder watch sees it appear).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};

/// Events of the file itself that can mean new content or a different file.
const FILE_EVENTS: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);

/// Events of the folder: only entries appearing (never writes to the files in it).
const FOLDER_EVENTS: WatchMask = WatchMask::CREATE.union(WatchMask::MOVED_TO).union(WatchMask::ONLYDIR);

/// A watch on the revocation file; see the module documentation.
pub(super) struct RevocationWatch {
    events: EventStream<[u8; 1024]>,
    watches: Watches,
    path: PathBuf,
    name: Option<OsString>,
    folder: WatchDescriptor,
    file: Option<WatchDescriptor>,
    /// Events read so far, relevant or not (what the tests count).
    seen: u64,
}

impl RevocationWatch {
    /// Watches `path` (which need not exist yet) and its folder. Needs a tokio runtime.
    pub(super) fn new(path: &Path) -> io::Result<RevocationWatch> {
        let inotify = Inotify::init()?;
        let mut watches = inotify.watches();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let folder = watches.add(dir, FOLDER_EVENTS)?;
        let mut watch = RevocationWatch {
            events: inotify.into_event_stream([0; 1024])?,
            watches,
            path: path.to_owned(),
            name: path.file_name().map(ToOwned::to_owned),
            folder,
            file: None,
            seen: 0,
        };
        watch.rearm();
        Ok(watch)
    }

    /// Returns once the file may have changed (appended to, replaced, created or removed).
    /// An error means the watch is broken; the caller falls back to polling.
    pub(super) async fn changed(&mut self) -> io::Result<()> {
        loop {
            let event = match self.events.next().await {
                Some(event) => event?,
                None => return Err(io::Error::other("inotify stream ended")),
            };
            self.seen += 1;
            let relevant = event.mask.contains(EventMask::Q_OVERFLOW)
                || self.file.as_ref() == Some(&event.wd)
                || (event.wd == self.folder && event.name.is_some() && event.name == self.name);
            if relevant {
                self.rearm();
                return Ok(());
            }
        }
    }

    /// Points the file watch at the inode the path names now.
    fn rearm(&mut self) {
        let now = self.watches.add(&self.path, FILE_EVENTS).ok();
        if let Some(old) = self.file.take().filter(|old| Some(old) != now.as_ref()) {
            // The old inode may be gone already (its watch then removed itself).
            let _ = self.watches.remove(old);
        }
        self.file = now;
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;

    fn append(path: &Path, text: &str) {
        let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    async fn changed(watch: &mut RevocationWatch) {
        tokio::time::timeout(Duration::from_secs(10), watch.changed())
            .await
            .expect("no event")
            .unwrap();
    }

    #[tokio::test]
    async fn writes_beside_the_file_queue_no_event_its_creation_and_appends_do() {
        let dir = tempfile::tempdir().unwrap();
        let (path, audit) = (dir.path().join("revocations.jsonl"), dir.path().join("audit.jsonl"));
        append(&audit, "{}\n");
        let mut watch = RevocationWatch::new(&path).unwrap();
        // Events are queued by the kernel during the system calls, in order: had the audit
        // writes produced any, they would be read before the relevant one.
        for _ in 0..10 {
            append(&audit, "{}\n");
        }
        append(&path, "{\"revoked_at\":1,\"jti\":\"a\"}\n");
        changed(&mut watch).await;
        assert_eq!(watch.seen, 1, "only the creation of the revocation file");
        for _ in 0..10 {
            append(&audit, "{}\n");
        }
        append(&path, "{\"revoked_at\":2,\"jti\":\"b\"}\n");
        changed(&mut watch).await;
        assert_eq!(watch.seen, 2, "only the append to the revocation file");
    }

    #[tokio::test]
    async fn a_file_replaced_by_rename_is_watched_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        fs::write(&path, "").unwrap();
        let mut watch = RevocationWatch::new(&path).unwrap();
        let old = watch.file.clone().unwrap();
        let tmp = dir.path().join(".revocations.tmp");
        fs::write(&tmp, "{\"revoked_at\":1,\"jti\":\"a\"}\n").unwrap();
        fs::rename(&tmp, &path).unwrap();
        changed(&mut watch).await;
        let now = watch.watches.add(&path, FILE_EVENTS).unwrap();
        assert_eq!(watch.file, Some(now.clone()), "the watch follows the new file");
        assert_ne!(now, old);
    }
}
