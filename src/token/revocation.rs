//! Token revocation: the revocation file (`tokens.revocations`) and the in-memory set the
//! request path checks.
//!
//! File format: JSON Lines, one revocation per line, `{"revoked_at":SECS,"jti":"ID"}` or
//! `{"revoked_at":SECS,"developer":"ID"}`. A developer revocation revokes every token of that
//! developer whose `iat` is at or before `revoked_at` (`iat` has one-second resolution, so a
//! token issued in the same second as the revocation is revoked too: when in doubt, revoke).
//!
//! Owns: parsing and writing that file ([`append`]: one line, `fsync`ed, under an exclusive
//! lock on `FILE.lock`; entries that can no longer match a live token are compacted away by an
//! atomic rewrite) and the [`Revocations`] set (O(1) checks: a hash set of `jti`s, a map of
//! developer -> latest `revoked_at`).
//!
//! Invariants: an entry is kept for `lifetime` = `max_ttl` + 2 x `leeway` after `revoked_at`,
//! the longest a token issued before the revocation can still be accepted (its `iat` may be up
//! to a leeway ahead, its `exp` is accepted for a leeway after); a running set only grows
//! between expiries ([`Revocations::merged`] keeps what it had, so a damaged or truncated file
//! cannot un-revoke anything). Never: a panic on file contents; a line without its final
//! newline (still being written) is read.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::verify::valid_jti;
use crate::principal::{DeveloperId, Principal};

/// The largest revocation file read (bytes): about 200 000 entries.
const MAX_FILE_LEN: u64 = 16 << 20;

/// What is revoked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One token, by `jti`.
    Jti(String),
    /// Every token of a developer issued at or before the revocation.
    Developer(DeveloperId),
}

/// One revocation: a target and when it was revoked (seconds since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// What is revoked.
    pub target: Target,
    /// When, in seconds since the Unix epoch.
    pub revoked_at: u64,
}

/// Why the revocation file could not be read or written; names the file, nothing secret.
#[derive(Debug, thiserror::Error)]
#[error("revocation file {path}: {message}")]
pub struct RevocationError {
    /// The file (or folder) concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The revocations in force: checked on every authenticated request.
#[derive(Clone, Debug, Default)]
pub struct Revocations {
    jtis: HashMap<String, u64>,
    developers: HashMap<DeveloperId, u64>,
}

impl Revocations {
    /// True when the principal's token is revoked (by its `jti`, or by a developer revocation
    /// at or after its `iat`). O(1).
    pub fn is_revoked(&self, principal: &Principal) -> bool {
        self.jtis.contains_key(&principal.jti)
            || self
                .developers
                .get(principal.developer.as_str())
                .is_some_and(|&before| principal.issued_at <= before)
    }

    /// Number of entries in force.
    pub fn len(&self) -> usize {
        self.jtis.len() + self.developers.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry in force (to share them with other instances).
    pub fn entries(&self) -> Vec<Revocation> {
        let jtis = self.jtis.iter().map(|(jti, &at)| Revocation {
            target: Target::Jti(jti.clone()),
            revoked_at: at,
        });
        let developers = self.developers.iter().map(|(dev, &at)| Revocation {
            target: Target::Developer(dev.clone()),
            revoked_at: at,
        });
        jtis.chain(developers).collect()
    }

    /// This set plus `entries`, without anything that expired by `now` (`lifetime` seconds after
    /// its `revoked_at`); also returns the entries that were not in this set (for the audit).
    pub fn merged(&self, entries: &[Revocation], now: u64, lifetime: u64) -> (Revocations, Vec<Revocation>) {
        let live = |at: u64| at.saturating_add(lifetime) > now;
        let mut next = Revocations {
            jtis: self
                .jtis
                .iter()
                .filter(|(_, &at)| live(at))
                .map(|(k, &v)| (k.clone(), v))
                .collect(),
            developers: self
                .developers
                .iter()
                .filter(|(_, &at)| live(at))
                .map(|(k, &v)| (k.clone(), v))
                .collect(),
        };
        let mut fresh = Vec::new();
        for entry in entries.iter().filter(|e| live(e.revoked_at)) {
            let known = match &entry.target {
                Target::Jti(jti) => next.jtis.insert(jti.clone(), entry.revoked_at).is_some(),
                Target::Developer(dev) => {
                    let slot = next.developers.entry(dev.clone()).or_insert(0);
                    let newer = entry.revoked_at > *slot;
                    *slot = (*slot).max(entry.revoked_at);
                    !newer
                }
            };
            if !known {
                fresh.push(entry.clone());
            }
        }
        (next, fresh)
    }
}

/// Reads every complete, valid line of the revocation file (a missing file is empty). Invalid
/// lines are logged (by number, not content) and skipped.
pub fn read(path: &Path) -> Result<Vec<Revocation>, RevocationError> {
    let err = |message: String| RevocationError {
        path: path.to_owned(),
        message,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("cannot open: {e}"))),
    };
    let mut text = String::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(err("larger than 16 MiB".into()));
    }
    Ok(parse(path, &text))
}

fn parse(path: &Path, text: &str) -> Vec<Revocation> {
    // Only lines with their final newline: the last one may still be being written.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut entries = Vec::new();
    for (index, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(entry) => entries.push(entry),
            None => tracing::error!(
                file = %path.display(),
                line = index + 1,
                "revocation file: invalid line skipped"
            ),
        }
    }
    entries
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    revoked_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    developer: Option<String>,
}

fn parse_line(line: &str) -> Option<Revocation> {
    let raw: Line = serde_json::from_str(line).ok()?;
    let target = match (raw.jti, raw.developer) {
        (Some(jti), None) if valid_jti(&jti) => Target::Jti(jti),
        (None, Some(dev)) => Target::Developer(DeveloperId::parse(&dev).ok()?),
        _ => return None,
    };
    Some(Revocation {
        target,
        revoked_at: raw.revoked_at,
    })
}

fn encode(entry: &Revocation) -> String {
    let (jti, developer) = match &entry.target {
        Target::Jti(j) => (Some(j.clone()), None),
        Target::Developer(d) => (None, Some(d.to_string())),
    };
    let line = Line {
        revoked_at: entry.revoked_at,
        jti,
        developer,
    };
    // Serializing plain strings and integers cannot fail; an empty object would be refused on read.
    let mut text = serde_json::to_string(&line).unwrap_or_default();
    text.push('\n');
    text
}

/// Checks a `jti` given on the command line.
pub fn check_jti(jti: &str) -> Result<(), String> {
    if valid_jti(jti) {
        Ok(())
    } else {
        Err("a jti is 1 to 128 characters of [A-Za-z0-9_.-]".into())
    }
}

/// Adds `entry` to the revocation file durably (the line is on disk when this returns), under
/// an exclusive lock on `FILE.lock`. When the file holds entries that expired (`lifetime`
/// seconds after their `revoked_at`) or invalid lines, the live entries plus `entry` are
/// written to a temporary file that atomically replaces it instead. Returns the number of
/// entries dropped by compaction.
pub fn append(path: &Path, entry: &Revocation, now: u64, lifetime: u64) -> Result<usize, RevocationError> {
    append_all(path, std::slice::from_ref(entry), now, lifetime)
}

/// [`append`] for several entries at once (one lock, one `fsync`).
pub fn append_all(path: &Path, entries: &[Revocation], now: u64, lifetime: u64) -> Result<usize, RevocationError> {
    let err = |message: String| RevocationError {
        path: path.to_owned(),
        message,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create folder: {e}")))?;
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(PathBuf::from(lock_name))
        .map_err(|e| err(format!("cannot open the lock file: {e}")))?;
    // Held until the end of this function (dropping the guard unlocks).
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| err(format!("cannot lock: {e}")))?;

    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(format!("cannot read: {e}"))),
    };
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    let live: Vec<Revocation> = parse(path, &text)
        .into_iter()
        .filter(|e| e.revoked_at.saturating_add(lifetime) > now)
        .collect();
    let dropped = lines - live.len().min(lines);
    let torn = !text.is_empty() && !text.ends_with('\n');
    if dropped == 0 && !torn {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(format!("cannot open: {e}")))?;
        let lines: String = entries.iter().map(encode).collect();
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| err(format!("cannot write: {e}")))?;
        sync_dir(dir);
        return Ok(0);
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".revocations")
        .tempfile_in(dir)
        .map_err(|e| err(format!("cannot create a temporary file: {e}")))?;
    let mut body: String = live.iter().map(encode).collect();
    body.extend(entries.iter().map(encode));
    tmp.write_all(body.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| err(format!("cannot write: {e}")))?;
    tmp.persist(path)
        .map_err(|e| err(format!("cannot replace: {}", e.error)))?;
    sync_dir(dir);
    Ok(dropped)
}

/// Makes a rename or file creation in `dir` durable (best effort: not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(dev: &str, jti: &str, iat: u64) -> Principal {
        Principal {
            developer: DeveloperId::parse(dev).unwrap(),
            jti: jti.into(),
            scope: None,
            issued_at: iat,
            expires_at: iat + 600,
        }
    }

    fn jti(j: &str, at: u64) -> Revocation {
        Revocation {
            target: Target::Jti(j.into()),
            revoked_at: at,
        }
    }

    fn dev(d: &str, at: u64) -> Revocation {
        Revocation {
            target: Target::Developer(DeveloperId::parse(d).unwrap()),
            revoked_at: at,
        }
    }

    #[test]
    fn a_revoked_jti_and_tokens_issued_up_to_a_developer_revocation_are_revoked() {
        let (set, fresh) = Revocations::default().merged(&[jti("j1", 1000), dev("bob", 1000)], 1000, 3600);
        assert_eq!(fresh.len(), 2);
        assert!(set.is_revoked(&principal("alice", "j1", 900)));
        assert!(!set.is_revoked(&principal("alice", "j2", 900)));
        assert!(set.is_revoked(&principal("bob", "x", 999)));
        assert!(set.is_revoked(&principal("bob", "x", 1000)), "same second: revoked");
        assert!(
            !set.is_revoked(&principal("bob", "x", 1001)),
            "issued after the revocation"
        );
    }

    #[test]
    fn merging_reports_only_new_entries_and_never_forgets_live_ones() {
        let (set, _) = Revocations::default().merged(&[jti("j1", 1000)], 1000, 3600);
        let (set, fresh) = set.merged(&[jti("j1", 1000), dev("bob", 1001)], 1001, 3600);
        assert_eq!(fresh, vec![dev("bob", 1001)]);
        let (set, fresh) = set.merged(&[], 1002, 3600);
        assert!(fresh.is_empty());
        assert_eq!(set.len(), 2, "an emptied file un-revokes nothing");
        let (set, _) = set.merged(&[], 1000 + 3600, 3600);
        assert_eq!(set.len(), 1, "j1 expired; bob's lives one second longer");
    }

    #[test]
    fn append_is_read_back_and_expired_entries_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/revocations.jsonl");
        assert_eq!(read(&path).unwrap(), vec![]);
        assert_eq!(append(&path, &jti("old", 100), 100, 3600).unwrap(), 0);
        assert_eq!(append(&path, &dev("bob", 200), 200, 3600).unwrap(), 0);
        assert_eq!(read(&path).unwrap(), vec![jti("old", 100), dev("bob", 200)]);
        assert_eq!(append(&path, &jti("new", 3750), 3750, 3600).unwrap(), 1);
        assert_eq!(read(&path).unwrap(), vec![dev("bob", 200), jti("new", 3750)]);
    }

    #[test]
    fn invalid_and_unfinished_lines_are_skipped() {
        let text = "{\"revoked_at\":1,\"jti\":\"ok\"}\n\
                    {\"revoked_at\":1,\"jti\":\"bad jti\"}\n\
                    {\"revoked_at\":1,\"jti\":\"a\",\"developer\":\"b\"}\n\
                    {\"revoked_at\":1,\"developer\":\"Bad\"}\n\
                    not json\n\
                    {\"revoked_at\":2,\"developer\":\"carol\"}";
        assert_eq!(parse(Path::new("r"), text), vec![jti("ok", 1)]);
    }
}
