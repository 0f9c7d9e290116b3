//! `cpgate audit verify` and `cpgate audit query`: both stream, so they work on
//! multi-gigabyte logs.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use time::OffsetDateTime;

use crate::audit::{query, verify, Decision, OutputFormat, QueryFilter};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Audit files, oldest first (e.g. audit.jsonl.2 audit.jsonl.1 audit.jsonl).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Prints `ok: N records, head HASH`, or the first broken record (exit 1).
pub fn verify_files(args: &VerifyArgs) -> ExitCode {
    match verify(&args.files) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("broken: {broken}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Audit files to search; records come out merged by `ts`. Give each instance's files
    /// oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl): equal times keep this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Only this developer.
    #[arg(long)]
    pub developer: Option<String>,
    /// Only calls matching this pattern (`Email::*`; prefix `api2:` or `uapi:` to pick an API).
    #[arg(long)]
    pub call: Option<String>,
    /// Only allowed or only refused calls.
    #[arg(long, value_parser = ["allow", "deny"])]
    pub decision: Option<String>,
    /// Records at or after this time: RFC 3339 or a span back from now (`1h`, `2d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Records before this time: RFC 3339 or a span back from now.
    #[arg(long)]
    pub until: Option<String>,
    /// Print an aligned table instead of JSON lines.
    #[arg(long)]
    pub table: bool,
}

/// Prints the matching records on stdout.
pub fn query_files(args: &QueryArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let time = |t: &Option<String>| t.as_deref().map(|t| QueryFilter::parse_time(t, now)).transpose();
    let filter = QueryFilter {
        developer: args.developer.clone(),
        call: args.call.clone(),
        decision: args.decision.as_deref().map(str::parse::<Decision>).transpose()?,
        since: time(&args.since)?,
        until: time(&args.until)?,
    };
    let format = if args.table {
        OutputFormat::Table
    } else {
        OutputFormat::JsonLines
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stats = query(&args.files, &filter, format, &mut out)?;
    out.flush()?;
    for problem in &stats.problems {
        eprintln!("warning: {problem}");
    }
    let listed = u64::try_from(stats.problems.len()).unwrap_or(u64::MAX);
    let problems = stats.unparsable + stats.out_of_order;
    if problems > listed {
        eprintln!("warning: {} more such lines not listed", problems - listed);
    }
    if stats.unparsable > 0 {
        eprintln!("warning: {} unparsable lines skipped", stats.unparsable);
    }
    if stats.out_of_order > 0 {
        eprintln!(
            "warning: {} records have a ts earlier than their predecessor's in the same file; \
             they are printed in file order, so the output is not strictly sorted there",
            stats.out_of_order
        );
    }
    eprintln!("{} of {} records matched", stats.matched, stats.scanned);
    Ok(())
}
