//! The UAPI `Fileman` module, in memory: `list_files` and `upload_files` (multipart parts carried
//! by the [`CpanelCall`]).
//!
//! Paths are confined to the home directory: `dir` is relative to it or absolute under
//! `/home/USER`; `.` and `..` segments are refused, never resolved. Total stored bytes are capped
//! so that a client cannot grow the emulator without bound.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::call::CpanelCall;

use super::reply::UapiResult;
use super::state::{optional, Account};

/// The emulated disk quota for uploaded files.
const QUOTA_BYTES: usize = 256 * 1024 * 1024;

/// One stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredFile {
    pub data: Bytes,
}

/// UAPI `Fileman::list_files`: `dir` (default: the home directory).
pub(crate) fn list_files(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let dir = directory(account, optional(&call.params, "dir"))?;
    let full = full_path(account, &dir);
    let exists = dir.is_empty()
        || account
            .files
            .keys()
            .any(|d| d == &dir || d.starts_with(&format!("{dir}/")));
    if !exists {
        return Err(format!("The directory \"{full}\" does not exist."));
    }
    let mut rows = Vec::new();
    let child_prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut subdirs: Vec<&str> = account
        .files
        .keys()
        .filter_map(|d| d.strip_prefix(&child_prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .collect();
    subdirs.sort_unstable();
    subdirs.dedup();
    for name in subdirs {
        rows.push(
            json!({"file": name, "fullpath": format!("{full}/{name}"), "path": full, "type": "dir", "size": 4096}),
        );
    }
    if let Some(files) = account.files.get(&dir) {
        for (name, file) in files {
            rows.push(json!({
                "file": name,
                "fullpath": format!("{full}/{name}"),
                "path": full,
                "type": "file",
                "size": file.data.len(),
            }));
        }
    }
    Ok(Value::Array(rows))
}

/// UAPI `Fileman::upload_files`: `dir`, optional `overwrite=1`, and the call's file parts.
/// Fails only when no file was stored; per-file outcomes are in `uploads`.
pub(crate) fn upload_files(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let dir = directory(account, optional(&call.params, "dir"))?;
    if call.files.is_empty() {
        return Err("You must specify at least one file to upload.".to_owned());
    }
    let overwrite = call.params.get("overwrite") == Some("1");
    let mut used: usize = account
        .files
        .values()
        .flat_map(|f| f.values())
        .map(|f| f.data.len())
        .sum();
    let mut uploads = Vec::new();
    let (mut succeeded, mut failed) = (0, 0);
    let mut first_failure = None;
    for part in &call.files {
        let name = part.filename.as_str();
        let existing = account.files.get(&dir).and_then(|files| files.get(name));
        let refusal = if !is_file_name(name) {
            Some(format!("The file name \"{name}\" is not valid."))
        } else if existing.is_some() && !overwrite {
            Some(format!("The file \"{name}\" already exists."))
        } else if used.saturating_add(part.data.len()) > QUOTA_BYTES {
            Some("Disk quota exceeded.".to_owned())
        } else {
            None
        };
        match refusal {
            Some(reason) => {
                failed += 1;
                first_failure.get_or_insert_with(|| reason.clone());
                uploads.push(json!({"file": name, "size": part.data.len(), "status": 0, "reason": reason}));
            }
            None => {
                used = used.saturating_add(part.data.len());
                succeeded += 1;
                uploads.push(json!({
                    "file": name,
                    "size": part.data.len(),
                    "status": 1,
                    "reason": format!("Upload of \"{name}\" succeeded."),
                }));
                account.files.entry(dir.clone()).or_default().insert(
                    name.to_owned(),
                    StoredFile {
                        data: part.data.clone(),
                    },
                );
            }
        }
    }
    match first_failure {
        Some(reason) if succeeded == 0 => Err(reason),
        _ => Ok(json!({"uploads": uploads, "succeeded": succeeded, "failed": failed, "warned": 0})),
    }
}

/// `dir` as a path relative to the home directory, without leading or trailing `/`.
fn directory(account: &Account, dir: Option<&str>) -> Result<String, String> {
    let Some(dir) = dir else { return Ok(String::new()) };
    let home = account.home();
    let relative = if let Some(rest) = dir.strip_prefix(&home) {
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(no_access(dir));
        }
        rest
    } else if dir.starts_with('/') {
        return Err(no_access(dir));
    } else {
        dir
    };
    let segments: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| !is_file_name(s)) {
        return Err(no_access(dir));
    }
    Ok(segments.join("/"))
}

fn full_path(account: &Account, dir: &str) -> String {
    if dir.is_empty() {
        account.home()
    } else {
        format!("{}/{dir}", account.home())
    }
}

/// A single path segment: not empty, not `.` or `..`, no `/`, `\` or control characters.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

fn no_access(dir: &str) -> String {
    format!("You do not have access to \"{dir}\".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_stay_inside_home() {
        let a = Account::seeded("demo");
        assert_eq!(directory(&a, Some("public_html")), Ok("public_html".into()));
        assert_eq!(directory(&a, Some("/home/demo/public_html/")), Ok("public_html".into()));
        assert_eq!(directory(&a, Some("/home/demo")), Ok(String::new()));
        assert_eq!(directory(&a, None), Ok(String::new()));
        for bad in ["../etc", "/etc", "/home/demox/a", "a/./b", "a/../../b"] {
            assert!(directory(&a, Some(bad)).is_err(), "{bad}");
        }
    }
}
