//! Crash recovery: finding the last good record of a file and cutting off a torn tail.
//!
//! Owns: scanning a file backwards from its end for the last complete, parseable record line.
//! Never: drops a complete record that parses as one; truncates more than [`MAX_TORN`] bytes
//! (a file that would need that is not a torn audit log, so opening fails instead); reads the
//! whole file (only its tail, in chunks).
//! Invariants: after [`recover`], the file is exactly `len` bytes long, ends with `\n` (or is
//! empty), and its last line is the record described by `last`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::chain::{line_hash, link, Head, Link};

/// The most a torn tail may measure before recovery refuses to truncate (the writer writes at
/// most [`super::writer::MAX_GROUP_BYTES`] plus one record in one `write(2)`).
pub(crate) const MAX_TORN: u64 = 64 << 20;

/// The longest record line recovery reads back.
const MAX_LINE: u64 = 64 << 20;

const CHUNK: u64 = 64 << 10;

/// The good part of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Length of the good prefix (every byte after it is torn).
    pub len: u64,
    /// The last record in the good prefix, if any.
    pub last: Option<Head>,
    /// How many bytes after `len` are torn.
    pub torn: u64,
}

/// Finds the good prefix of `file` without changing it.
pub(crate) fn scan(file: &File) -> io::Result<Tail> {
    let size = file.metadata()?.len();
    let mut end = size;
    loop {
        let torn = size - end;
        if torn > MAX_TORN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("refusing to truncate {torn} bytes of unparseable tail: not an audit log?"),
            ));
        }
        if end == 0 {
            return Ok(Tail {
                len: 0,
                last: None,
                torn,
            });
        }
        let newline = match last_newline(file, end)? {
            Some(at) => at,
            None => {
                end = 0;
                continue;
            }
        };
        if newline + 1 < end {
            end = newline + 1;
            continue;
        }
        let start = last_newline(file, newline)?.map_or(0, |at| at + 1);
        if newline - start > MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "last record line too long"));
        }
        let mut line = vec![0u8; usize::try_from(newline - start).map_err(io::Error::other)?];
        file.read_exact_at(&mut line, start)?;
        match link(&line) {
            Link::Record { seq, .. } => {
                let last = Some(Head {
                    seq,
                    hash: line_hash(&line),
                });
                return Ok(Tail { len: end, last, torn });
            }
            Link::NotJson(_) => end = start,
            Link::NotRecord(why) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("last line is not an audit record ({why})"),
                ))
            }
        }
    }
}

/// Scans `file` and truncates its torn tail (syncing the truncation).
pub(crate) fn recover(file: &File) -> io::Result<Tail> {
    let tail = scan(file)?;
    if tail.torn > 0 {
        file.set_len(tail.len)?;
        file.sync_all()?;
    }
    Ok(tail)
}

/// Position of the last `\n` in `file[..end]`.
fn last_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0u8; usize::try_from(CHUNK.min(end)).map_err(io::Error::other)?];
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let part = &mut chunk[..usize::try_from(hi - lo).map_err(io::Error::other)?];
        file.read_exact_at(part, lo)?;
        if let Some(at) = memchr::memrchr(b'\n', part) {
            return Ok(Some(lo + at as u64));
        }
        hi = lo;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn record(seq: u64) -> String {
        format!("{{\"seq\":{seq},\"prev\":\"{}\"}}", "0".repeat(64))
    }

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(content).unwrap();
        let file = tmp.reopen().unwrap();
        (tmp, file)
    }

    #[test]
    fn empty_file_has_no_records() {
        let (_tmp, file) = file_with(b"");
        assert_eq!(
            recover(&file).unwrap(),
            Tail {
                len: 0,
                last: None,
                torn: 0
            }
        );
    }

    #[test]
    fn clean_file_is_left_alone() {
        let text = format!("{}\n{}\n", record(1), record(2));
        let (_tmp, file) = file_with(text.as_bytes());
        let tail = recover(&file).unwrap();
        assert_eq!(tail.len, text.len() as u64);
        assert_eq!(tail.torn, 0);
        assert_eq!(
            tail.last,
            Some(Head {
                seq: 2,
                hash: line_hash(record(2).as_bytes())
            })
        );
    }

    #[test]
    fn torn_tail_without_newline_is_truncated() {
        let good = format!("{}\n", record(1));
        let text = format!("{good}{{\"seq\":2,\"pr");
        let (_tmp, file) = file_with(text.as_bytes());
        let tail = recover(&file).unwrap();
        assert_eq!(tail.len, good.len() as u64);
        assert_eq!(tail.torn, text.len() as u64 - good.len() as u64);
        assert_eq!(file.metadata().unwrap().len(), good.len() as u64);
    }

    #[test]
    fn zeros_and_invalid_complete_lines_are_torn_too() {
        let good = format!("{}\n", record(1));
        let text = format!("{good}\0\0\0\n{{garbage\n\0\0");
        let (_tmp, file) = file_with(text.as_bytes());
        let tail = recover(&file).unwrap();
        assert_eq!(tail.len, good.len() as u64);
        assert_eq!(tail.last.map(|h| h.seq), Some(1));
    }

    #[test]
    fn tail_without_any_newline_is_all_torn() {
        let (_tmp, file) = file_with(b"{\"seq\":1");
        assert_eq!(
            recover(&file).unwrap(),
            Tail {
                len: 0,
                last: None,
                torn: 8
            }
        );
    }

    #[test]
    fn lines_longer_than_a_chunk_are_found() {
        let long = format!(
            "{{\"seq\":3,\"prev\":\"{}\",\"reason\":\"{}\"}}",
            "0".repeat(64),
            "x".repeat(200_000)
        );
        let text = format!("{}\n{long}\n{}", record(2), "y".repeat(100_000));
        let (_tmp, file) = file_with(text.as_bytes());
        let tail = recover(&file).unwrap();
        assert_eq!(tail.last.map(|h| h.seq), Some(3));
        assert_eq!(tail.torn, 100_000);
    }

    #[test]
    fn a_file_that_is_not_an_audit_log_is_refused() {
        let (_tmp, file) = file_with(b"{\"hello\":\"world\"}\n");
        assert!(recover(&file).is_err());
        assert_eq!(file.metadata().unwrap().len(), 18);
    }
}
