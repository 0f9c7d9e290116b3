//! `cpgate audit query`: streams records matching a filter out of audit files, merged by time.
//!
//! Owns: the filter (developer, call glob, decision, time window), its parsing from CLI text,
//! and the two output forms (the stored JSON lines verbatim, or a table). The time-ordered
//! merge of several files is [`super::merge`]'s.
//! Never: loads a whole file; rewrites a matched JSON line (output lines are byte-identical to
//! the stored ones, so they can be hashed against the chain); prints control characters in the
//! table; fails on a line it cannot parse (it is skipped, counted, and its `FILE:LINE` listed).
//! Invariants: records of all files come out ordered by `ts` (each file being in time order, as
//! one instance's files are); equal times keep the order the files were given in; one file's
//! records keep their order.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::merge::{LineProblem, Merge, Verdict};
use crate::call::value_glob;

/// `--decision allow|deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Records with `decision: "allow"`.
    Allow,
    /// Records with `decision: "deny"`, and every `denied` event.
    Deny,
}

impl FromStr for Decision {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            _ => Err(QueryError::BadFilter(format!(
                "--decision must be allow or deny, not {s:?}"
            ))),
        }
    }
}

/// How matches are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// The stored lines, verbatim.
    #[default]
    JsonLines,
    /// One aligned row per record under a header (`--table`).
    Table,
}

/// Which records to print; unset criteria match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryFilter {
    /// Exact developer id.
    pub developer: Option<String>,
    /// `Module::function` with `*` matching any run of characters (`Email::*`); a `uapi:` or
    /// `api2:` prefix restricts the api, without one both match.
    pub call: Option<String>,
    pub decision: Option<Decision>,
    /// Records at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Records strictly before this instant.
    pub until: Option<OffsetDateTime>,
}

impl QueryFilter {
    /// Parses `--since`/`--until`: RFC 3339 (`2026-11-27T23:00:00Z`) or a duration before `now`
    /// (`90s`, `15m`, `1h`, `2d`).
    pub fn parse_time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, QueryError> {
        if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(at);
        }
        let bad = || QueryError::BadFilter(format!("{text:?} is neither RFC 3339 nor a duration like 1h"));
        let ago = humantime::parse_duration(text).map_err(|_| bad())?;
        let ago = time::Duration::try_from(ago).map_err(|_| bad())?;
        now.checked_sub(ago).ok_or_else(bad)
    }

    /// Whether the filter looks at `ts`.
    fn needs_time(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    /// `ts` is the record's parsed `ts`, when [`QueryFilter::needs_time`] (else unused).
    fn matches(&self, view: &View<'_>, ts: Option<OffsetDateTime>) -> bool {
        if let Some(developer) = &self.developer {
            if view.developer.as_deref() != Some(developer.as_str()) {
                return false;
            }
        }
        if let Some(pattern) = &self.call {
            let (api, pattern) = match pattern.split_once(':') {
                Some((api @ ("uapi" | "api2"), rest)) => (Some(api), rest),
                _ => (None, pattern.as_str()),
            };
            let call_ok = view.call.as_deref().is_some_and(|call| value_glob(pattern, call));
            if !call_ok || (api.is_some() && view.api.as_deref() != api) {
                return false;
            }
        }
        match self.decision {
            Some(Decision::Allow) if view.decision.as_deref() != Some("allow") => return false,
            Some(Decision::Deny)
                if view.decision.as_deref() != Some("deny") && view.event.as_deref() != Some("denied") =>
            {
                return false
            }
            _ => {}
        }
        if self.needs_time() {
            let Some(ts) = ts else {
                return false;
            };
            if self.since.is_some_and(|since| ts < since) || self.until.is_some_and(|until| ts >= until) {
                return false;
            }
        }
        true
    }
}

/// What a query went through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Lines read.
    pub scanned: u64,
    /// Records printed.
    pub matched: u64,
    /// Lines skipped because they were not JSON objects (or longer than 64 MiB).
    pub unparsable: u64,
    /// Printed records whose `ts` is earlier than their predecessor's in the same file.
    pub out_of_order: u64,
    /// Where the first few of those lines are (`FILE:LINE: what`).
    pub problems: Vec<LineProblem>,
    /// The most bytes held at once in read and line buffers: bounded by the number of files,
    /// not their sizes.
    pub peak_buffer_bytes: usize,
}

/// Why a query stopped.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{}: {source}", file.display())]
    Read { file: PathBuf, source: io::Error },
    #[error("writing output: {0}")]
    Output(io::Error),
    #[error("{0}")]
    BadFilter(String),
}

/// The fields a filter or the table looks at.
#[derive(serde::Deserialize)]
struct View<'a> {
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    developer: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api: Option<Cow<'a, str>>,
    #[serde(borrow)]
    call: Option<Cow<'a, str>>,
    #[serde(borrow)]
    decision: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    status: Option<u64>,
}

/// Streams the records of `files` that match `filter` to `out`, ordered by `ts` across files
/// (a k-way merge: one line per file in memory).
pub fn query<W: Write>(
    files: &[PathBuf],
    filter: &QueryFilter,
    format: OutputFormat,
    out: &mut W,
) -> Result<QueryStats, QueryError> {
    if format == OutputFormat::Table {
        write_row(out, ["TS", "SEQ", "EVENT", "DEVELOPER", "CALL", "DECISION", "STATUS"])
            .map_err(QueryError::Output)?;
    }
    // Parsing `ts` is needed to order several files, or to filter by time.
    let needs_time = files.len() > 1 || filter.needs_time();
    let verdict = |line: &[u8]| {
        let Ok(view) = serde_json::from_slice::<View<'_>>(line) else {
            return Verdict::Unparsable;
        };
        let ts = match &view.ts {
            Some(ts) if needs_time => OffsetDateTime::parse(ts, &Rfc3339).ok(),
            _ => None,
        };
        if filter.matches(&view, ts) {
            Verdict::Keep(ts.map(OffsetDateTime::unix_timestamp_nanos))
        } else {
            Verdict::Skip
        }
    };
    let read_error = |(file, source)| QueryError::Read { file, source };
    let mut merge = Merge::open(files, verdict).map_err(read_error)?;
    let mut matched = 0;
    while let Some(line) = merge.next().map_err(read_error)? {
        matched += 1;
        match format {
            OutputFormat::JsonLines => out.write_all(line).and_then(|()| out.write_all(b"\n")),
            // The line parsed a moment ago; it cannot fail now, but nothing panics on input.
            OutputFormat::Table => match serde_json::from_slice::<View<'_>>(line) {
                Ok(view) => table_row(out, &view),
                Err(_) => Ok(()),
            },
        }
        .map_err(QueryError::Output)?;
    }
    out.flush().map_err(QueryError::Output)?;
    let merged = merge.stats().clone();
    Ok(QueryStats {
        scanned: merged.scanned,
        matched,
        unparsable: merged.unparsable,
        out_of_order: merged.out_of_order,
        problems: merged.problems,
        peak_buffer_bytes: merged.peak_buffer_bytes,
    })
}

fn table_row<W: Write>(out: &mut W, view: &View<'_>) -> io::Result<()> {
    let seq = view.seq.map(|s| s.to_string()).unwrap_or_default();
    let status = match (&view.code, view.status) {
        (Some(code), Some(status)) => format!("{status} {code}"),
        (Some(code), None) => code.to_string(),
        (None, Some(status)) => status.to_string(),
        (None, None) => String::new(),
    };
    let call = match (view.api.as_deref(), view.call.as_deref()) {
        (Some("api2"), Some(call)) => format!("api2:{call}"),
        (_, call) => call.unwrap_or_default().to_owned(),
    };
    let field = |v: &Option<Cow<'_, str>>| v.as_deref().unwrap_or("-").to_owned();
    write_row(
        out,
        [
            &field(&view.ts),
            &seq,
            &field(&view.event),
            &field(&view.developer),
            if call.is_empty() { "-" } else { &call },
            &field(&view.decision),
            if status.is_empty() { "-" } else { &status },
        ],
    )
}

fn write_row<W: Write>(out: &mut W, cells: [&str; 7]) -> io::Result<()> {
    const WIDTHS: [usize; 7] = [27, 8, 13, 16, 34, 8, 0];
    let mut row = String::with_capacity(128);
    for (i, (cell, width)) in cells.iter().zip(WIDTHS).enumerate() {
        if i > 0 {
            row.push(' ');
        }
        let clean: String = cell.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        row.push_str(&clean);
        let pad = width.saturating_sub(clean.chars().count());
        if i + 1 < cells.len() {
            row.extend(std::iter::repeat_n(' ', pad));
        }
    }
    row.push('\n');
    out.write_all(row.as_bytes())
}
