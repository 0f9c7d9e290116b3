//! A time-ordered merge of audit files, for `cpgate audit query`: one cursor per file, each file
//! read line by line in its own order, and a min-heap holding each cursor's next kept line keyed
//! by (`ts`, the file's place in the argument list): a k-way merge.
//!
//! Owns: reading lines with a length bound, numbering them per file (for messages), the heap.
//! What a line means (parse, filter, its `ts`) is the caller's, through [`Verdict`].
//! Never: loads a file, or more than one line per file; reorders the lines of one file.
//! Memory: per file one read buffer (at most [`READ_BUFFER`], less when many files are open)
//! and one line buffer (at most [`MAX_LINE`]: a longer line is skipped; a buffer a long line
//! grew is given back before the next line), whatever the files' sizes.
//! Invariants: with every file in time order (one instance's file and its rotations are) the
//! output is in time order; equal times come out in the order the files were given; each file's
//! lines come out in that file's order even where its clock went backwards (such lines are
//! counted as out of order); a kept line without a time sorts right after its predecessor.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest line kept: an audit record of a 1 MiB request body, escaped, stays well below it.
pub const MAX_LINE: usize = 64 << 20;
/// Read buffer per file while few files are open.
pub const READ_BUFFER: usize = 256 << 10;
/// The read buffers of all files together stay within this (each at least 8 KiB).
const READ_BUDGET: usize = 16 << 20;
/// A line buffer grown beyond this by a long line is given back before the next line.
const KEEP_LINE_CAPACITY: usize = 1 << 20;

/// What the caller makes of one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Output it, at this time (Unix nanoseconds; `None`: no usable `ts`).
    Keep(Option<i128>),
    /// A record the filter does not want.
    Skip,
    /// Not a JSON record.
    Unparsable,
}

/// A line that could not be used, for messages (`FILE:LINE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    pub file: PathBuf,
    /// 1-based.
    pub line: u64,
    pub kind: ProblemKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a JSON object (skipped).
    Unparsable,
    /// Longer than [`MAX_LINE`] (skipped).
    TooLong,
    /// Its `ts` is earlier than the previous record's in the same file (output in file order).
    OutOfOrder,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ProblemKind::Unparsable => "not a JSON record, skipped",
            ProblemKind::TooLong => "line longer than 64 MiB, skipped",
            ProblemKind::OutOfOrder => "ts earlier than the previous record's in this file (clock stepped back?)",
        };
        write!(f, "{}:{}: {what}", self.file.display(), self.line)
    }
}

/// A file that could not be opened or read, and why.
pub type ReadError = (PathBuf, io::Error);

/// Counts of a merge so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Lines read.
    pub scanned: u64,
    /// Lines skipped because they were not JSON records (or too long).
    pub unparsable: u64,
    /// Kept lines whose `ts` went backwards within their file.
    pub out_of_order: u64,
    /// The first [`MergeStats::MAX_PROBLEMS`] problems, in the order met.
    pub problems: Vec<LineProblem>,
    /// The most bytes held at once in read and line buffers (the memory bound at work).
    pub peak_buffer_bytes: usize,
}

impl MergeStats {
    /// Problems listed by location; the rest are only counted.
    pub const MAX_PROBLEMS: usize = 10;

    fn note(&mut self, file: &Path, line: u64, kind: ProblemKind) {
        if self.problems.len() < Self::MAX_PROBLEMS {
            self.problems.push(LineProblem {
                file: file.to_path_buf(),
                line,
                kind,
            });
        }
    }
}

/// One open file and its current line.
struct Cursor {
    path: PathBuf,
    reader: BufReader<File>,
    line: Vec<u8>,
    line_no: u64,
    /// The time of the last kept line (what a line without `ts` sorts at).
    last: Option<i128>,
}

/// The merge of several files; [`Merge::next`] yields kept lines in time order.
pub struct Merge<V> {
    cursors: Vec<Cursor>,
    /// (time, cursor index) of each cursor whose `line` is a kept, not yet yielded line.
    heap: BinaryHeap<Reverse<(i128, usize)>>,
    /// The cursor whose line was yielded last: advanced on the next call.
    yielded: Option<usize>,
    verdict: V,
    stats: MergeStats,
    held: usize,
}

impl<V: FnMut(&[u8]) -> Verdict> Merge<V> {
    /// Opens every file (all at once: an error names the file) and reads each one's first kept
    /// line. `verdict` decides what each line is.
    pub fn open(files: &[PathBuf], verdict: V) -> Result<Self, ReadError> {
        let capacity = (READ_BUDGET / files.len().max(1)).clamp(8 << 10, READ_BUFFER);
        let mut cursors = Vec::with_capacity(files.len());
        for path in files {
            let file = File::open(path).map_err(|e| (path.clone(), e))?;
            cursors.push(Cursor {
                path: path.clone(),
                reader: BufReader::with_capacity(capacity, file),
                line: Vec::new(),
                line_no: 0,
                last: None,
            });
        }
        let held = capacity * cursors.len();
        let mut merge = Merge {
            heap: BinaryHeap::with_capacity(cursors.len()),
            cursors,
            yielded: None,
            verdict,
            stats: MergeStats {
                peak_buffer_bytes: held,
                ..MergeStats::default()
            },
            held,
        };
        for index in 0..merge.cursors.len() {
            merge.advance(index)?;
        }
        Ok(merge)
    }

    /// The next kept line in time order, without its newline.
    pub fn next(&mut self) -> Result<Option<&[u8]>, ReadError> {
        if let Some(index) = self.yielded.take() {
            self.advance(index)?;
        }
        let Some(Reverse((_, index))) = self.heap.pop() else {
            return Ok(None);
        };
        self.yielded = Some(index);
        Ok(Some(&self.cursors[index].line))
    }

    pub fn stats(&self) -> &MergeStats {
        &self.stats
    }

    /// Reads cursor `index` up to its next kept line and puts it on the heap (nothing at the
    /// end of the file).
    fn advance(&mut self, index: usize) -> Result<(), ReadError> {
        let Merge {
            cursors,
            heap,
            verdict,
            stats,
            held,
            ..
        } = self;
        let cursor = &mut cursors[index];
        loop {
            let before = cursor.line.capacity();
            let read = cursor.read_line().map_err(|e| (cursor.path.clone(), e))?;
            *held = (*held + cursor.line.capacity()).saturating_sub(before);
            stats.peak_buffer_bytes = stats.peak_buffer_bytes.max(*held);
            let Some(complete) = read else { return Ok(()) };
            stats.scanned += 1;
            if !complete {
                stats.unparsable += 1;
                stats.note(&cursor.path, cursor.line_no, ProblemKind::TooLong);
                continue;
            }
            match verdict(&cursor.line) {
                Verdict::Skip => {}
                Verdict::Unparsable => {
                    stats.unparsable += 1;
                    stats.note(&cursor.path, cursor.line_no, ProblemKind::Unparsable);
                }
                Verdict::Keep(at) => {
                    let key = match (at, cursor.last) {
                        (Some(at), Some(last)) if at < last => {
                            stats.out_of_order += 1;
                            stats.note(&cursor.path, cursor.line_no, ProblemKind::OutOfOrder);
                            at
                        }
                        (Some(at), _) => at,
                        (None, last) => last.unwrap_or(i128::MIN),
                    };
                    cursor.last = Some(key.max(cursor.last.unwrap_or(i128::MIN)));
                    heap.push(Reverse((key, index)));
                    return Ok(());
                }
            }
        }
    }
}

impl Cursor {
    /// Reads the next line into `self.line` without its newline. `None` at the end of the file;
    /// `Some(false)` for a line longer than [`MAX_LINE`] (its first `MAX_LINE` bytes are read
    /// and dropped, the rest skipped).
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        if self.line.capacity() > KEEP_LINE_CAPACITY {
            self.line = Vec::new();
        }
        self.line.clear();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX).saturating_add(1);
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            return Ok(Some(true));
        }
        if self.line.len() > MAX_LINE {
            self.line = Vec::new();
            self.reader.skip_until(b'\n')?;
            return Ok(Some(false));
        }
        // The last line of the file, without a newline.
        Ok(Some(true))
    }
}
