//! Redaction of every secret family of cpanel-wire.md §7, as the writer puts it in the file: in
//! plain calls, as `name-N` members, with other letter cases and affixes, inside `Batch`
//! commands (nested too), and for upload fields.

use std::fs;

use bytes::Bytes;
use serde_json::Value;

use super::{json, log_with};
use crate::audit::{is_secret_param, Event, FsyncMode, Record, REDACTED};
use crate::call::{Api, CpanelCall, Params, UploadFile};

/// The families, verbatim from cpanel-wire.md §7.
const FAMILIES: [&str; 21] = [
    "pass",
    "passwd",
    "password",
    "passphrase",
    "pass_hash",
    "password_hash",
    "oldpass",
    "newpass",
    "secret",
    "token",
    "api_token",
    "access_token",
    "login_token",
    "tfa_token",
    "key",
    "key_data",
    "private",
    "crt",
    "cert",
    "cabundle",
    "content",
];

/// Every spelling of each family that must be redacted: plain, members, case, affixes.
fn secret_names() -> Vec<String> {
    FAMILIES
        .iter()
        .flat_map(|f| {
            [
                f.to_string(),
                format!("{f}-0"),
                format!("{f}-17"),
                f.to_ascii_uppercase(),
                format!("{}-2", f.to_ascii_uppercase()),
                format!("ssl_{f}"),
                format!("{f}_confirm-3"),
            ]
        })
        .collect()
}

fn value(name: &str) -> String {
    format!("SECRETVALUE<{name}>")
}

fn call_with_secrets(module: &str, function: &str) -> CpanelCall {
    let mut pairs: Vec<(String, String)> = secret_names().iter().map(|n| (n.clone(), value(n))).collect();
    pairs.push(("domain".into(), "example.com".into()));
    pairs.push(("email-4".into(), "kept@example.com".into()));
    CpanelCall::new(Api::Uapi, module, function, Params::from_unique_pairs(pairs))
}

fn assert_redacted(params: &Value, where_: &str) {
    for name in secret_names() {
        assert_eq!(params[&name], REDACTED, "{name} in {where_}");
    }
    assert_eq!(params["domain"], "example.com", "{where_}");
    assert_eq!(params["email-4"], "kept@example.com", "{where_}");
}

#[test]
fn every_family_spelling_is_secret_and_ordinary_names_are_not() {
    for name in secret_names() {
        assert!(is_secret_param(&name), "{name}");
    }
    for name in [
        "domain",
        "email",
        "email-3",
        "user",
        "dir",
        "quota",
        "command-1",
        "api.version",
    ] {
        assert!(!is_secret_param(name), "{name}");
    }
}

#[tokio::test]
async fn every_secret_family_is_redacted_in_plain_calls_members_and_nested_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = log_with(dir.path(), 0, FsyncMode::Never).await;
    let mut nested = CpanelCall::new(Api::Uapi, "Batch", "strict", Params::new());
    nested.batch = vec![call_with_secrets("SSL", "install_ssl")];
    let mut batch = CpanelCall::new(Api::Uapi, "Batch", "strict", Params::new());
    batch.batch = vec![call_with_secrets("Email", "add_pop"), nested];
    let mut upload = CpanelCall::new(Api::Uapi, "Fileman", "upload_files", Params::new());
    upload.files = vec![UploadFile {
        field: "private_key-1".into(),
        filename: "id_rsa".into(),
        content_type: None,
        data: Bytes::from_static(b"SECRETVALUE upload"),
    }];
    let mut api2 = call_with_secrets("SSL", "installssl");
    api2.api = Api::Api2;
    for call in [call_with_secrets("Email", "add_pop"), api2, batch, upload] {
        let record = Record {
            event: Some(Event::Request),
            call: Some(call),
            ..Record::default()
        };
        log.append(record).await.unwrap();
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("SECRETVALUE"), "a secret value reached the file");
    let lines: Vec<Value> = text.lines().map(json).collect();
    assert_redacted(&lines[0]["params"], "a plain call");
    assert_redacted(&lines[1]["params"], "an API 2 call");
    assert_redacted(&lines[2]["params"]["command-0"][2], "a batch command");
    assert_redacted(
        &lines[2]["params"]["command-1"][2]["command-0"][2],
        "a nested batch command",
    );
    assert_eq!(lines[3]["params"]["private_key-1"], REDACTED);
}
