//! `audit query` over several files: merged by `ts`, stable on ties, filters applied, problems
//! located by `FILE:LINE`, memory bounded by the number of files, not their size.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{json, lines, request};
use crate::audit::merge::{MAX_LINE, READ_BUFFER};
use crate::audit::{query, writer, AuditLog, AuditOptions, FsyncMode, OutputFormat, ProblemKind, QueryFilter};

/// A record line at second `s` (plus `micros`) of 2026-11-28 00:00 UTC.
fn line(s: u32, micros: u32, seq: u64, developer: &str) -> String {
    format!(
        "{{\"ts\":\"2026-11-28T00:{:02}:{:02}.{micros:06}Z\",\"seq\":{seq},\"event\":\"request\",\
         \"developer\":\"{developer}\",\"api\":\"uapi\",\"call\":\"Email::list_pops\",\"decision\":\"allow\"}}",
        s / 60,
        s % 60
    )
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    path
}

fn run(files: &[PathBuf], filter: &QueryFilter, format: OutputFormat) -> (crate::audit::QueryStats, Vec<String>) {
    let mut out = Vec::new();
    let stats = query(files, filter, format, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    (stats, text.lines().map(str::to_owned).collect())
}

/// `developer:seq` of each output line.
fn who(out: &[String]) -> Vec<String> {
    out.iter()
        .map(|l| {
            let v = json(l);
            format!("{}:{}", v["developer"].as_str().unwrap(), v["seq"])
        })
        .collect()
}

#[test]
fn two_interleaved_files_come_out_by_time_ties_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &[
            line(1, 0, 1, "a"),
            line(3, 0, 2, "a"),
            line(5, 0, 3, "a"),
            line(5, 0, 4, "a"),
        ],
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        &[
            line(0, 500, 1, "b"),
            line(3, 0, 2, "b"),
            line(4, 999_999, 3, "b"),
            line(9, 0, 4, "b"),
        ],
    );
    let (stats, out) = run(
        &[a.clone(), b.clone()],
        &QueryFilter::default(),
        OutputFormat::JsonLines,
    );
    // a:2 and b:2 are both at 00:03: the file given first wins the tie.
    let expected = ["b:1", "a:1", "a:2", "b:2", "b:3", "a:3", "a:4", "b:4"];
    assert_eq!(who(&out), expected);
    assert_eq!(
        (stats.scanned, stats.matched, stats.unparsable, stats.out_of_order),
        (8, 8, 0, 0)
    );
    // Lines are the stored ones, byte for byte.
    let stored: Vec<String> = lines(&a).into_iter().chain(lines(&b)).collect();
    assert!(out.iter().all(|l| stored.contains(l)));

    // The other argument order flips only the tie.
    let (_, swapped) = run(&[b, a], &QueryFilter::default(), OutputFormat::JsonLines);
    let mut flipped = expected;
    flipped.swap(2, 3);
    assert_eq!(who(&swapped), flipped);
}

#[test]
fn filters_apply_to_the_merged_stream_and_the_table_is_merged_too() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &[line(1, 0, 1, "alice"), line(2, 0, 2, "bob"), line(6, 0, 3, "alice")],
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        &[line(0, 0, 1, "alice"), line(4, 0, 2, "alice"), line(5, 0, 3, "bob")],
    );
    let files = [a, b];
    let alice = QueryFilter {
        developer: Some("alice".into()),
        ..QueryFilter::default()
    };
    let (stats, out) = run(&files, &alice, OutputFormat::JsonLines);
    assert_eq!((stats.scanned, stats.matched), (6, 4));
    assert_eq!(who(&out), ["alice:1", "alice:1", "alice:2", "alice:3"]);
    let times: Vec<String> = out
        .iter()
        .map(|l| json(l)["ts"].as_str().unwrap()[14..19].to_owned())
        .collect();
    assert_eq!(times, ["00:00", "00:01", "00:04", "00:06"]);

    let now = time::OffsetDateTime::now_utc();
    let window = QueryFilter {
        since: Some(QueryFilter::parse_time("2026-11-28T00:00:02Z", now).unwrap()),
        until: Some(QueryFilter::parse_time("2026-11-28T00:00:05Z", now).unwrap()),
        ..QueryFilter::default()
    };
    let (_, out) = run(&files, &window, OutputFormat::JsonLines);
    assert_eq!(who(&out), ["bob:2", "alice:2"]);

    let (_, table) = run(&files, &alice, OutputFormat::Table);
    assert!(table[0].starts_with("TS "));
    let times: Vec<&str> = table[1..].iter().map(|r| &r[..27]).collect();
    assert_eq!(
        times,
        [
            "2026-11-28T00:00:00.000000Z",
            "2026-11-28T00:00:01.000000Z",
            "2026-11-28T00:00:04.000000Z",
            "2026-11-28T00:00:06.000000Z",
        ]
    );
}

#[tokio::test]
async fn one_instances_rotated_files_come_out_in_time_order_in_any_argument_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let options = AuditOptions {
        fsync: FsyncMode::Never,
        max_file_size: 600,
    };
    let log = AuditLog::open_with(&path, options).await.unwrap();
    for i in 0..12 {
        log.append(request(i)).await.unwrap();
    }
    drop(log);
    let mut rotated: Vec<PathBuf> = (1..)
        .map(|n| writer::numbered(&path, n))
        .take_while(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 3, "the log rotated: {rotated:?}");
    // Oldest first (as README says): exactly the chain order, ties included.
    rotated.reverse();
    let oldest_first: Vec<PathBuf> = rotated.iter().cloned().chain([path.clone()]).collect();
    let (_, out) = run(&oldest_first, &QueryFilter::default(), OutputFormat::JsonLines);
    let seqs: Vec<u64> = out.iter().map(|l| json(l)["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    // As a shell glob lists them (audit.jsonl audit.jsonl.1 audit.jsonl.2 ...): still by time.
    let globbed: Vec<PathBuf> = [path.clone()].into_iter().chain(rotated.into_iter().rev()).collect();
    let (stats, out) = run(&globbed, &QueryFilter::default(), OutputFormat::JsonLines);
    assert_eq!(stats.matched, 12);
    let ts: Vec<String> = out.iter().map(|l| json(l)["ts"].as_str().unwrap().to_owned()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
}

#[test]
fn unparsable_lines_are_skipped_and_located_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.jsonl", &[line(1, 0, 1, "a"), line(2, 0, 2, "a")]);
    let b = dir.path().join("b.jsonl");
    let text = format!("{}\ngarbage\n{}\n{{\"ts\":", line(0, 0, 1, "b"), line(3, 0, 3, "b"));
    fs::write(&b, text).unwrap();
    let (stats, out) = run(&[a, b.clone()], &QueryFilter::default(), OutputFormat::JsonLines);
    assert_eq!(who(&out), ["b:1", "a:1", "a:2", "b:3"]);
    assert_eq!((stats.scanned, stats.matched, stats.unparsable), (6, 4, 2));
    let located: Vec<(PathBuf, u64, ProblemKind)> = stats
        .problems
        .iter()
        .map(|p| (p.file.clone(), p.line, p.kind))
        .collect();
    assert_eq!(
        located,
        [
            (b.clone(), 2, ProblemKind::Unparsable),
            (b.clone(), 4, ProblemKind::Unparsable)
        ]
    );
    assert_eq!(
        stats.problems[0].to_string(),
        format!("{}:2: not a JSON record, skipped", b.display())
    );
}

#[test]
fn a_clock_step_back_keeps_file_order_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.jsonl",
        &[line(10, 0, 1, "a"), line(4, 0, 2, "a"), line(11, 0, 3, "a")],
    );
    let b = write(dir.path(), "b.jsonl", &[line(5, 0, 1, "b"), line(12, 0, 2, "b")]);
    let (stats, out) = run(&[a.clone(), b], &QueryFilter::default(), OutputFormat::JsonLines);
    // a:2 (00:04) follows a:1 (00:10), its predecessor in the file.
    assert_eq!(who(&out), ["b:1", "a:1", "a:2", "a:3", "b:2"]);
    assert_eq!(stats.out_of_order, 1);
    assert_eq!(
        (
            stats.problems[0].file.clone(),
            stats.problems[0].line,
            stats.problems[0].kind
        ),
        (a, 2, ProblemKind::OutOfOrder)
    );
}

/// Checks the merged output as it streams by, keeping nothing but the last `ts`.
struct OrderCheck {
    last: String,
    lines: u64,
    pending: Vec<u8>,
}

impl Write for OrderCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let ts = &line[7..34];
            let ts = std::str::from_utf8(ts).unwrap();
            assert!(self.last.as_str() <= ts, "{} then {ts}", self.last);
            self.last = ts.to_owned();
            self.lines += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn many_records_stream_through_a_bounded_amount_of_memory() {
    const FILES: usize = 3;
    const RECORDS: u32 = 15_000;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut total = 0;
    let padding = "x".repeat(300);
    for f in 0..FILES {
        let path = dir.path().join(format!("i{f}.jsonl"));
        let mut out = BufWriter::new(fs::File::create(&path).unwrap());
        for i in 0..RECORDS {
            // Interleaved: file f holds times f, f + 3, f + 6, ... (in units of 7 us).
            let at = (i * 3 + f as u32) * 7;
            let record = line(at / 1_000_000, at % 1_000_000, u64::from(i), &format!("d{f}"));
            writeln!(out, "{},\"pad\":\"{padding}\"}}", &record[..record.len() - 1]).unwrap();
        }
        out.into_inner().unwrap().sync_all().unwrap();
        total += fs::metadata(&path).unwrap().len();
        files.push(path);
    }
    let mut sink = OrderCheck {
        last: String::new(),
        lines: 0,
        pending: Vec::new(),
    };
    let stats = query(&files, &QueryFilter::default(), OutputFormat::JsonLines, &mut sink).unwrap();
    assert_eq!(sink.lines, u64::from(RECORDS) * FILES as u64);
    assert_eq!(stats.matched, sink.lines);
    // One read buffer and one (short) line per file, however large the files are.
    assert!(total > 8 << 20, "the input is ten times the buffers: {total} bytes");
    let bound = FILES * READ_BUFFER + FILES * 4096;
    assert!(
        stats.peak_buffer_bytes <= bound,
        "held {} bytes at most, bound {bound}",
        stats.peak_buffer_bytes
    );
}

#[test]
fn a_line_longer_than_the_cap_is_skipped_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    let mut out = BufWriter::new(fs::File::create(&path).unwrap());
    writeln!(out, "{}", line(1, 0, 1, "a")).unwrap();
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..(MAX_LINE >> 20) + 1 {
        out.write_all(&chunk).unwrap();
    }
    writeln!(out).unwrap();
    writeln!(out, "{}", line(2, 0, 3, "a")).unwrap();
    drop(out);
    let (stats, out) = run(
        std::slice::from_ref(&path),
        &QueryFilter::default(),
        OutputFormat::JsonLines,
    );
    assert_eq!(who(&out), ["a:1", "a:3"]);
    assert_eq!((stats.scanned, stats.unparsable), (3, 1));
    assert_eq!(stats.problems[0].kind, ProblemKind::TooLong);
    assert_eq!(stats.problems[0].line, 2);
}
