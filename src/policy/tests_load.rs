//! Loader tests: every kind of invalid policy gives `FILE:LINE: message` with the right line,
//! exact escape-hatch grants warn, the folder rules hold, and the shipped examples load.

use std::fs;
use std::path::Path;
use std::time::Duration;

use time::macros::datetime;

use super::*;

fn opts() -> LoadOptions {
    LoadOptions {
        max_ttl: Duration::from_secs(3600),
        accounts: vec!["default".into(), "shop".into()],
    }
}

/// The errors of one policy text, as `cpgate check` prints them.
fn errors(file: &str, text: &str) -> Vec<String> {
    match Policy::from_toml(Path::new(file), text, &opts()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn parse(text: &str) -> (Policy, Vec<PolicyWarning>) {
    match Policy::from_toml(Path::new("alice.toml"), text, &opts()) {
        Ok(parsed) => parsed,
        Err(errors) => panic!("{errors:#?}"),
    }
}

/// Asserts exactly one error, at `line`, containing `needle`.
fn assert_one_error(text: &str, line: usize, needle: &str) {
    let errs = errors("alice.toml", text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let prefix = format!("alice.toml:{line}: ");
    assert!(errs[0].starts_with(&prefix), "want line {line}: {}", errs[0]);
    assert!(errs[0].contains(needle), "want {needle:?} in {}", errs[0]);
}

const RULE: &str = "[[allow]]\ncalls = [\"Email::list_pops\"]\n";

#[test]
fn unknown_key_is_reported_at_its_line() {
    assert_one_error(
        &format!("description = \"x\"\nenabeld = true\n{RULE}"),
        2,
        "unknown field `enabeld`",
    );
    assert_one_error(
        "[[allow]]\ncalls = [\"Email::list_pops\"]\nmethod = [\"GET\"]\n",
        3,
        "unknown field `method`",
    );
    assert_one_error(
        &format!("{RULE}[rate_limit]\nper_minute = 5\nburst = 1\nburts = 2\n"),
        6,
        "unknown field `burts`",
    );
}

#[test]
fn toml_syntax_error_is_reported_at_its_line() {
    assert_one_error(&format!("{RULE}\ndescription = \"unterminated\n"), 4, "");
}

#[test]
fn bad_call_pattern_is_reported_at_its_entry() {
    let text = "[[allow]]\ncalls = [\n  \"Email::list_pops\",\n  \"Email::list-*\",\n]\n";
    assert_one_error(text, 4, "invalid call pattern \"Email::list-*\"");
    assert_one_error(
        "[[allow]]\ncalls = [\"api2:ZoneEdit::fetchzone\"]\n",
        2,
        "api = \"api2\"",
    );
    assert_one_error("[[allow]]\ncalls = []\n", 2, "calls is empty");
    assert_one_error(
        "[[allow]]\napi = \"api1\"\ncalls = [\"A::b\"]\n",
        2,
        "unknown api \"api1\"",
    );
}

#[test]
fn bad_cidr_is_reported_at_its_entry() {
    let text = format!("source_ips = [\n  \"203.0.113.0/24\",\n  \"203.0.113.0/33\",\n]\n{RULE}");
    assert_one_error(&text, 3, "\"203.0.113.0/33\" is not an IP address or CIDR block");
    assert_one_error(&format!("source_ips = []\n{RULE}"), 1, "source_ips is empty");
}

#[test]
fn bad_method_is_reported_at_its_entry() {
    assert_one_error(
        "[[allow]]\ncalls = [\"A::b\"]\nmethods = [\"GET\", \"get\"]\n",
        3,
        "unknown method \"get\"",
    );
    assert_one_error("[[allow]]\ncalls = [\"A::b\"]\nmethods = []\n", 3, "methods is empty");
}

#[test]
fn too_long_token_ttl_is_reported() {
    assert_one_error(
        &format!("max_token_ttl = \"2h\"\n{RULE}"),
        1,
        "max_token_ttl 2h exceeds tokens.max_ttl 1h",
    );
    assert_one_error(&format!("\nmax_token_ttl = \"soon\"\n{RULE}"), 2, "not a duration");
    assert_one_error(&format!("max_token_ttl = \"0s\"\n{RULE}"), 1, "longer than zero");
}

#[test]
fn unknown_account_is_reported() {
    assert_one_error(
        &format!("\naccount = \"nope\"\n{RULE}"),
        2,
        "unknown account \"nope\" (known: default, shop)",
    );
}

#[test]
fn deny_with_params_is_reported() {
    let text = "[[deny]]\ncalls = [\"Email::*\"]\n[deny.params]\nemail = [\"*\"]\n";
    assert_one_error(text, 3, "deny rules take no params");
}

#[test]
fn bad_file_stem_is_reported() {
    let errs = errors("Alice.toml", RULE);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("Alice.toml:1: file name: invalid developer id"),
        "{errs:?}"
    );
}

#[test]
fn bad_expires_secret_hash_rate_limit_and_params_are_reported() {
    assert_one_error(&format!("expires = 2027-03-31T00:00:00\n{RULE}"), 1, "with an offset");
    assert_one_error(&format!("expires = \"2027-03-31T00:00:00Z\"\n{RULE}"), 1, "");
    assert_one_error(
        &format!("client_secret_hash = \"$2b$12$abcdefghijkl\"\n{RULE}"),
        1,
        "argon2id PHC",
    );
    assert_one_error(
        &format!("{RULE}[rate_limit]\nper_minute = 0\nburst = 5\n"),
        4,
        "rate_limit.per_minute must be between 1",
    );
    assert_one_error(
        &format!("{RULE}[allow.params]\nemail-0 = [\"*\"]\n"),
        4,
        "member of the family \"email\"",
    );
    assert_one_error(
        &format!("{RULE}[allow.params]\ndomain = []\n"),
        4,
        "\"domain\" has no globs",
    );
}

#[test]
fn every_validation_error_of_a_file_is_collected() {
    let text = "max_token_ttl = \"2h\"\naccount = \"x\"\n[[allow]]\ncalls = [\"bad\"]\nmethods = [\"PUT\"]\n";
    let errs = errors("bob.toml", text);
    let lines: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap_or("")).collect();
    assert_eq!(
        lines,
        ["bob.toml:1", "bob.toml:2", "bob.toml:4", "bob.toml:5"],
        "{errs:#?}"
    );
}

#[test]
fn valid_policy_fields_are_compiled() {
    let (p, warnings) = parse(
        "description = \"d\"\nenabled = false\nexpires = 2027-03-31T01:00:00+01:00\n\
         source_ips = [\"203.0.113.7/24\", \"2001:db8::1\"]\n\
         client_secret_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\"\n\
         max_token_ttl = \"15m\"\naccount = \"shop\"\n[rate_limit]\nper_minute = 120\nburst = 20\n",
    );
    assert!(warnings.is_empty());
    assert_eq!(p.developer.as_str(), "alice");
    assert_eq!(&*p.file_name, "alice.toml");
    assert_eq!(p.description.as_deref(), Some("d"));
    assert!(!p.enabled);
    assert_eq!(p.expires, Some(datetime!(2027-03-31 00:00:00 UTC)));
    let nets: Vec<String> = p.source_ips.iter().flatten().map(ToString::to_string).collect();
    assert_eq!(nets, ["203.0.113.0/24", "2001:db8::1/128"]);
    assert!(p.client_secret_hash.is_some());
    assert!(!format!("{p:?}").contains("argon2id"), "Debug must not show the hash");
    assert_eq!(p.max_token_ttl, Some(Duration::from_secs(900)));
    assert_eq!(p.account, "shop");
    let rl = p.rate_limit.unwrap();
    assert_eq!((rl.per_minute.get(), rl.burst.get()), (120, 20));

    let (p, _) = parse("");
    assert!(p.enabled);
    assert_eq!(p.account, "default");
    assert!(p.source_ips.is_none() && p.expires.is_none() && p.rate_limit.is_none());
}

#[test]
fn exact_escape_hatch_grants_warn_and_wildcards_do_not() {
    let text = "[[allow]]\ncalls = [\n  \"Tokens::*\",\n  \"Tokens::create_full_access\",\n]\n\
                [[allow]]\napi = \"api2\"\ncalls = [\"Cron::add_line\", \"Cron::*\"]\n\
                [[deny]]\ncalls = [\"Session::create_temp_user\"]\n";
    let (_, warnings) = parse(text);
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with("alice.toml:4: warning: grants escape hatch Tokens::create_full_access in allow[0]"),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("alice.toml:8: warning: grants escape hatch api2:Cron::add_line in allow[1]"),
        "{shown:?}"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn load_dir_reads_only_toml_files_directly_inside() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "alice.toml", RULE);
    write(
        dir.path(),
        "bob.toml",
        "[[allow]]\ncalls = [\"Tokens::create_full_access\"]\n",
    );
    write(dir.path(), "README.md", "not a policy");
    write(dir.path(), "carol.toml.bak", "junk");
    write(dir.path(), ".#alice.toml", "editor lock file");
    fs::create_dir(dir.path().join("old.toml")).unwrap();
    fs::create_dir(dir.path().join("archive")).unwrap();
    write(&dir.path().join("archive"), "dave.toml", "junk = 1");

    let set = PolicySet::load_dir(dir.path(), &opts()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(!set.is_empty());
    assert!(set.get("alice").is_some() && set.get("bob").is_some() && set.get("dave").is_none());
    let mut ids: Vec<&str> = set.iter().map(|p| p.developer.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice", "bob"]);
    assert_eq!(set.warnings().len(), 1);
    assert!(set.warnings()[0].file.ends_with("bob.toml"));
}

#[test]
fn load_dir_is_all_or_nothing_and_reports_every_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "alice.toml", RULE);
    write(dir.path(), "bob.toml", "enabled = \"yes\"\n");
    write(dir.path(), "Carol.toml", RULE);
    let errs = PolicySet::load_dir(dir.path(), &opts()).unwrap_err();
    let shown: Vec<String> = errs
        .iter()
        .map(|e| format!("{}:{}", e.file.file_name().unwrap().to_string_lossy(), e.line))
        .collect();
    assert_eq!(shown, ["Carol.toml:1", "bob.toml:1"], "{errs:#?}");
}

#[test]
fn load_dir_of_a_missing_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let errs = PolicySet::load_dir(&dir.path().join("nope"), &opts()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("cannot read policy folder"));
}

#[test]
fn example_policies_load_cleanly() {
    let opts = LoadOptions {
        max_ttl: Duration::from_secs(3600),
        accounts: vec!["default".into()],
    };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    let set = match PolicySet::load_dir(dir, &opts) {
        Ok(set) => set,
        Err(errors) => panic!(
            "{}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        ),
    };
    assert!(set.len() >= 3, "expected the example policies, got {}", set.len());
    let shown: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
    assert!(shown.iter().all(|w| w.contains("grants escape hatch")), "{shown:#?}");
}

#[test]
fn policy_error_and_warning_display_as_file_line_message() {
    let e = PolicyError {
        file: "policies/alice.toml".into(),
        line: 7,
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "policies/alice.toml:7: bad");
    let w = PolicyWarning {
        file: "policies/alice.toml".into(),
        line: 3,
        message: "grants escape hatch Tokens::list".into(),
    };
    assert_eq!(
        w.to_string(),
        "policies/alice.toml:3: warning: grants escape hatch Tokens::list"
    );
}
