//! The UAPI `DynamicDNS` module (`list`, `create`, `delete`): Dynamic DNS records whose webcall
//! updates a host name under one of the account's domains.
//!
//! Record ids are 32 lower-case letters, as cPanel's; the emulator makes them from a counter, so
//! runs are reproducible. Webcalls themselves (`/cpanelwebcall/ID`) are not API calls and are not
//! served.

use serde_json::{json, Value};

use crate::call::CpanelCall;

use super::reply::UapiResult;
use super::state::{is_hostname, optional, required, Account};

/// One Dynamic DNS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DdnsRecord {
    pub id: String,
    /// The host name it updates, lower-case.
    pub domain: String,
    pub description: String,
    pub created_time: u64,
}

/// The longest description cPanel keeps.
const MAX_DESCRIPTION: usize = 2048;

/// UAPI `DynamicDNS::list`.
pub(crate) fn list(account: &mut Account, _call: &CpanelCall) -> UapiResult {
    let rows = account
        .ddns
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "domain": r.domain,
                "description": r.description,
                "created_time": r.created_time,
                "last_update_time": null,
                "last_run_times": [],
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `DynamicDNS::create`: `domain` (a host name under one of the account's domains),
/// optional `description`. Answers the new record's `id` and `created_time`.
pub(crate) fn create(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let domain = required(&call.params, "domain")?.to_ascii_lowercase();
    let description = optional(&call.params, "description").unwrap_or_default();
    if !is_hostname(&domain) {
        return Err(format!("\u{201c}{domain}\u{201d} is not a valid domain name."));
    }
    let under_owned = account.domains().any(|owned| {
        domain
            .strip_suffix(&owned.to_ascii_lowercase())
            .is_some_and(|rest| rest.ends_with('.'))
    });
    if !under_owned {
        return Err(format!(
            "\u{201c}{domain}\u{201d} is not a subdomain of a domain that this account controls."
        ));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(format!("The description cannot exceed {MAX_DESCRIPTION} characters."));
    }
    if account.ddns.iter().any(|r| r.domain == domain) {
        return Err(format!(
            "A Dynamic DNS record for \u{201c}{domain}\u{201d} already exists."
        ));
    }
    account.next_id += 1;
    let record = DdnsRecord {
        id: record_id(account.next_id),
        domain,
        description: description.to_owned(),
        created_time: 1_767_225_600 + account.next_id,
    };
    let answer = json!({"id": record.id, "created_time": record.created_time});
    account.ddns.push(record);
    Ok(answer)
}

/// UAPI `DynamicDNS::delete`: `id`.
pub(crate) fn delete(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let id = required(&call.params, "id")?;
    let before = account.ddns.len();
    account.ddns.retain(|r| r.id != id);
    if account.ddns.len() == before {
        return Err(format!(
            "No Dynamic DNS record with the ID \u{201c}{id}\u{201d} exists."
        ));
    }
    Ok(json!({"deleted": 1}))
}

/// 32 lower-case letters, from `n` (base 26, padded with `a`).
fn record_id(mut n: u64) -> String {
    let mut id = vec![b'a'; 32];
    for slot in id.iter_mut().rev() {
        // `n % 26` < 26, so the byte stays in `a..=z`.
        *slot = b'a' + u8::try_from(n % 26).unwrap_or(0);
        n /= 26;
    }
    String::from_utf8(id).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_32_lower_case_letters_and_distinct() {
        let (a, b) = (record_id(1), record_id(27));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_lowercase()));
        assert_ne!(a, b);
        assert!(a.ends_with("ab") && b.ends_with("bb"));
    }
}
