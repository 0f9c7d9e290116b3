//! `cpgate audit verify`: checks the hash chain of audit files, streaming, line by line.
//!
//! Owns: the chain check and how a break is located and explained.
//! Never: loads a whole file; trusts anything in a line beyond re-hashing it and reading its
//! `seq` and `prev`; stops at anything but the first break.
//! Invariants: a [`VerifyReport`] means every line of every file, in the order given, is a record
//! whose `seq` is one more than the previous record's and whose `prev` is the hash of the
//! previous line (the first record: per the [`Anchor`]).
//!
//! Locating a break: an edited record changes its own hash, which the *next* record's `prev`
//! exposes, so a `prev` mismatch with continuous `seq` is reported at the previous line (the
//! edited one). A removed record leaves a `seq` gap at its position; a swapped pair shows a
//! `seq` out of place at the first of the pair; a forged insertion either breaks `seq` where it
//! stands or, when its `seq` and `prev` were forged to fit, duplicates the `seq` of the genuine
//! record after it, and is reported at its own line. The last record of the newest file can
//! only be checked against a head anchored elsewhere ([`Anchor::Head`], or compare
//! [`VerifyReport::head`] with the head published on `/metrics`).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{line_hash, link, Head, Link, GENESIS};

/// Where the chain must start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The first record must be the first ever: `seq` 1, `prev` 64 zeros. Detects a removed
    /// first record; use it when the oldest file is among the files verified.
    Genesis,
    /// The first record must follow this head (from an earlier verify, or an anchored copy).
    Head(Head),
    /// Accept whatever the first record says (verifying only newer rotated files).
    Any,
}

/// A chain that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many records were checked.
    pub records: u64,
    /// `seq` of the last record (0 if none).
    pub seq: u64,
    /// Hex hash of the last record's line (the anchor's hash if there were none).
    pub head: String,
}

impl fmt::Display for VerifyReport {
    /// `ok: N records, head HASH` (what `cpgate audit verify` prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ok: {} records, head {}", self.records, self.head)
    }
}

/// The first break: the file, the 1-based line (0 when the file could not be read at all) and
/// what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct VerifyError {
    pub file: PathBuf,
    pub line: u64,
    pub reason: String,
}

/// Verifies `files` in order as one chain starting at genesis.
pub fn verify(files: &[PathBuf]) -> Result<VerifyReport, VerifyError> {
    verify_with(files, Anchor::Genesis)
}

/// Verifies `files` in order as one chain starting at `anchor`.
pub fn verify_with(files: &[PathBuf], anchor: Anchor) -> Result<VerifyReport, VerifyError> {
    let mut state = State {
        expected: match anchor {
            Anchor::Genesis => Some(Head::genesis()),
            Anchor::Head(head) => Some(head),
            Anchor::Any => None,
        },
        last: None,
        records: 0,
    };
    for index in 0..files.len() {
        verify_file(files, index, &mut state)?;
    }
    let head = state.expected.unwrap_or(Head { seq: 0, hash: GENESIS });
    Ok(VerifyReport {
        records: state.records,
        seq: head.seq,
        head: head.hex(),
    })
}

struct State {
    /// The head the next record must follow (`None`: anything, for [`Anchor::Any`]).
    expected: Option<Head>,
    /// Where the previous record was, and its own `seq`/`prev` (to tell insertions apart).
    last: Option<Previous>,
    records: u64,
}

#[derive(Clone)]
struct Previous {
    file: usize,
    line: u64,
    seq: u64,
    prev: [u8; 32],
}

fn verify_file(files: &[PathBuf], index: usize, state: &mut State) -> Result<(), VerifyError> {
    let path: &Path = files.get(index).map_or(Path::new(""), |p| p.as_path());
    let broken = |line: u64, reason: String| VerifyError {
        file: path.to_path_buf(),
        line,
        reason,
    };
    let file = File::open(path).map_err(|e| broken(0, format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let mut buf = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| broken(number + 1, format!("read error: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Err(broken(number, "incomplete last line (no newline): torn write".into()));
        };
        let (seq, prev) = match link(line) {
            Link::Record { seq, prev } => (seq, prev),
            Link::NotJson(why) => return Err(broken(number, format!("not a JSON record: {why}"))),
            Link::NotRecord(why) => return Err(broken(number, format!("not an audit record: {why}"))),
        };
        if let Some(expected) = state.expected {
            check(expected, seq, prev, state.last.as_ref()).map_err(|located| match located {
                Located::Here(reason) => broken(number, reason),
                Located::Previous(reason, at) => VerifyError {
                    file: files.get(at.file).cloned().unwrap_or_default(),
                    line: at.line,
                    reason,
                },
            })?;
        }
        state.expected = Some(Head {
            seq,
            hash: line_hash(line),
        });
        state.last = Some(Previous {
            file: index,
            line: number,
            seq,
            prev,
        });
        state.records += 1;
    }
}

enum Located {
    Here(String),
    Previous(String, Previous),
}

fn check(expected: Head, seq: u64, prev: [u8; 32], last: Option<&Previous>) -> Result<(), Located> {
    let want = expected.seq.wrapping_add(1);
    if seq == want && prev == expected.hash {
        return Ok(());
    }
    if seq == want {
        return Err(match last {
            Some(at) => Located::Previous(
                format!(
                    "record seq {} was altered: its hash no longer matches the prev of the next record (seq {seq})",
                    at.seq
                ),
                at.clone(),
            ),
            None if expected == Head::genesis() => Located::Here(format!(
                "the first record must have prev 64 zeros, found {}",
                hex::encode(prev)
            )),
            None => Located::Here(format!(
                "prev {} does not match the anchor {}",
                hex::encode(prev),
                expected.hex()
            )),
        });
    }
    if let Some(at) = last {
        if seq == at.seq && prev == at.prev {
            return Err(Located::Previous(
                format!(
                    "record seq {} was inserted: the next record claims the same seq and prev",
                    at.seq
                ),
                at.clone(),
            ));
        }
    }
    if last.is_none() && expected == Head::genesis() {
        return Err(Located::Here(format!(
            "the chain starts at seq {seq}, not 1: the oldest file is missing or its first records were removed"
        )));
    }
    let what = if seq > want {
        "records removed or reordered"
    } else {
        "record inserted or reordered"
    };
    Err(Located::Here(format!("expected seq {want}, found {seq} ({what})")))
}
