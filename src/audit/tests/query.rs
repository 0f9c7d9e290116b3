//! `audit query`: filters and output forms.

use std::fs;
use std::io::Write;

use super::{json, lines, log_with};
use crate::audit::{query, CpanelCall, Decision, Event, FsyncMode, OutputFormat, QueryFilter, Record};
use crate::call::{Api, Params};

#[tokio::test]
async fn query_streams_matching_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 6, FsyncMode::Never).await;
    log.append(Record {
        event: Some(Event::Denied),
        developer: Some("dev-0".into()),
        call: Some(CpanelCall::new(
            Api::Api2,
            "ZoneEdit",
            "fetchzone_records",
            Params::new(),
        )),
        code: Some("forbidden"),
        status: Some(403),
        ..Record::default()
    })
    .await
    .unwrap();
    let files = [path];
    let run = |filter: QueryFilter, format| {
        let mut out = Vec::new();
        let stats = query(&files, &filter, format, &mut out).unwrap();
        (stats, String::from_utf8(out).unwrap())
    };
    let (stats, out) = run(
        QueryFilter {
            developer: Some("dev-0".into()),
            ..QueryFilter::default()
        },
        OutputFormat::JsonLines,
    );
    assert_eq!((stats.scanned, stats.matched), (7, 3));
    assert!(out.lines().all(|l| json(l)["developer"] == "dev-0"));
    // Output lines are the stored lines, byte for byte.
    let stored = lines(&files[0]);
    assert!(out.lines().all(|l| stored.iter().any(|s| s == l)));

    let by_call = |pattern: &str| {
        let filter = QueryFilter {
            call: Some(pattern.into()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!(by_call("Email::*"), 6);
    assert_eq!(by_call("*::fetchzone_*"), 1);
    assert_eq!(by_call("api2:*"), 1);
    assert_eq!(by_call("uapi:ZoneEdit::*"), 0);

    let by_decision = |decision: &str| {
        let filter = QueryFilter {
            decision: Some(decision.parse().unwrap()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!((by_decision("allow"), by_decision("deny")), (6, 1));
    assert!("maybe".parse::<Decision>().is_err());

    let now = time::OffsetDateTime::now_utc();
    let since = |text: &str| {
        let filter = QueryFilter {
            since: Some(QueryFilter::parse_time(text, now).unwrap()),
            ..QueryFilter::default()
        };
        run(filter, OutputFormat::JsonLines).0.matched
    };
    assert_eq!(since("1h"), 7);
    assert_eq!(since("2999-01-01T00:00:00Z"), 0);
    let until_past = QueryFilter {
        until: Some(QueryFilter::parse_time("2000-01-01T00:00:00Z", now).unwrap()),
        ..QueryFilter::default()
    };
    assert_eq!(run(until_past, OutputFormat::JsonLines).0.matched, 0);
    assert!(QueryFilter::parse_time("yesterday-ish", now).is_err());

    let (_, table) = run(
        QueryFilter {
            decision: Some(Decision::Deny),
            ..QueryFilter::default()
        },
        OutputFormat::Table,
    );
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].starts_with("TS "));
    assert!(rows[1].contains("api2:ZoneEdit::fetchzone_records"));
    assert!(rows[1].contains("403 forbidden"));
}

#[tokio::test]
async fn query_skips_unparsable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, path) = log_with(dir.path(), 2, FsyncMode::Never).await;
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"garbage\n{\"ts\":")
        .unwrap();
    let mut out = Vec::new();
    let stats = query(&[path], &QueryFilter::default(), OutputFormat::JsonLines, &mut out).unwrap();
    assert_eq!((stats.scanned, stats.matched, stats.unparsable), (4, 2, 2));
}
