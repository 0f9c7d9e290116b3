//! The `Email` module: mailboxes and forwarders (UAPI `list_pops`, `add_pop`, `delete_pop`,
//! `passwd_pop`, `list_forwarders`, `add_forwarder`, `delete_forwarder`; API 2 `listpops`,
//! `addpop`, a thin wrapper of `add_pop` as in cPanel).
//!
//! Addresses are stored lower-cased. Passwords are checked for presence and never stored.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::call::{CpanelCall, Params};

use super::reply::{Api2Reply, UapiResult};
use super::state::{is_hostname, optional, required, Account};

/// One mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// Quota in MiB; 0 is unlimited.
    pub quota_mb: u64,
}

/// One forwarder: mail to `address` goes to `target` (an address, `:fail: ...` or `:blackhole:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Forwarder {
    pub address: String,
    pub target: String,
}

/// The quota a new mailbox gets when `quota` is not given.
const DEFAULT_QUOTA_MB: u64 = 1024;

/// UAPI `Email::list_pops` (optional `domain` filter).
pub(crate) fn list_pops(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let rows = pops(account, &call.params)
        .map(|address| {
            json!({
                "email": address,
                "login": address,
                "suspended_incoming": 0,
                "suspended_login": 0,
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `Email::add_pop`: `email` (local part or full address), `password`, `domain`, `quota`.
/// Answers `local+domain`, as cPanel does.
pub(crate) fn add_pop(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let p = &call.params;
    let (local, domain) = resolve_address(account, p)?;
    required(p, "password")?;
    let quota_mb = quota(p)?;
    let address = format!("{local}@{domain}");
    if account.mailboxes.contains_key(&address) {
        return Err(format!("The account {address} already exists!"));
    }
    account.mailboxes.insert(address, Mailbox { quota_mb });
    Ok(Value::String(format!("{local}+{domain}")))
}

/// UAPI `Email::delete_pop`: `email`, `domain`.
pub(crate) fn delete_pop(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let address = existing_mailbox(account, &call.params)?;
    account.mailboxes.remove(&address);
    Ok(Value::Null)
}

/// UAPI `Email::passwd_pop`: `email`, `password`, `domain`.
pub(crate) fn passwd_pop(account: &mut Account, call: &CpanelCall) -> UapiResult {
    existing_mailbox(account, &call.params)?;
    required(&call.params, "password")?;
    Ok(Value::Null)
}

/// UAPI `Email::list_forwarders` (optional `domain` filter).
pub(crate) fn list_forwarders(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let filter = optional(&call.params, "domain").map(str::to_ascii_lowercase);
    let rows = account
        .forwarders
        .iter()
        .filter(|f| filter.as_deref().is_none_or(|d| domain_of(&f.address) == d))
        .map(|f| {
            json!({
                "dest": f.address,
                "forward": f.target,
                "html_dest": html_escape(&f.address),
                "html_forward": html_escape(&f.target),
                "uri_dest": utf8_percent_encode(&f.address, NON_ALPHANUMERIC).to_string(),
                "uri_forward": utf8_percent_encode(&f.target, NON_ALPHANUMERIC).to_string(),
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `Email::add_forwarder`: `domain`, `email`, `fwdopt` (`fwd` with `fwdemail`, `fail` with
/// optional `fwdmsg`, `blackhole`).
pub(crate) fn add_forwarder(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let p = &call.params;
    required(p, "domain")?;
    let (local, domain) = resolve_address(account, p)?;
    let address = format!("{local}@{domain}");
    let target = match required(p, "fwdopt")? {
        "fwd" => {
            let dest = required(p, "fwdemail")?;
            if !is_address(dest) {
                return Err(format!("\"{dest}\" is not a valid email address."));
            }
            dest.to_ascii_lowercase()
        }
        "fail" => format!(
            ":fail: {}",
            optional(p, "fwdmsg").unwrap_or("No such person at this address.")
        ),
        "blackhole" => ":blackhole:".to_owned(),
        other => {
            return Err(format!(
                "The \"fwdopt\" value \"{other}\" is not valid. Use \"fwd\", \"fail\" or \"blackhole\"."
            ))
        }
    };
    let forwarder = Forwarder { address, target };
    if !account.forwarders.contains(&forwarder) {
        account.forwarders.push(forwarder.clone());
    }
    Ok(json!([{"domain": domain, "email": forwarder.address, "forward": forwarder.target}]))
}

/// UAPI `Email::delete_forwarder`: `address`, `forwarder`.
pub(crate) fn delete_forwarder(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let address = required(&call.params, "address")?.to_ascii_lowercase();
    let target = required(&call.params, "forwarder")?;
    let before = account.forwarders.len();
    account
        .forwarders
        .retain(|f| !(f.address == address && f.target.eq_ignore_ascii_case(target)));
    if account.forwarders.len() == before {
        return Err(format!(
            "The forwarder from \"{address}\" to \"{target}\" does not exist."
        ));
    }
    Ok(Value::Null)
}

/// API 2 `Email::listpops` (optional `domain` filter).
pub(crate) fn api2_listpops(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    let rows = pops(account, &call.params)
        .map(|address| json!({"email": address, "login": address}))
        .collect();
    Api2Reply::ok(rows)
}

/// API 2 `Email::addpop`: runs UAPI `add_pop`, answers `[{"result":1,"reason":""}]`.
pub(crate) fn api2_addpop(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    match add_pop(account, call) {
        Ok(_) => Api2Reply::ok(vec![json!({"result": 1, "reason": ""})]),
        Err(reason) => Api2Reply::result_failure(reason),
    }
}

/// Mailbox addresses, filtered by the optional `domain` parameter.
fn pops<'a>(account: &'a Account, params: &Params) -> impl Iterator<Item = &'a String> + 'a {
    let filter = optional(params, "domain").map(str::to_ascii_lowercase);
    account
        .mailboxes
        .keys()
        .filter(move |a| filter.as_deref().is_none_or(|d| domain_of(a) == d))
}

/// The address of an existing mailbox named by `email` (+ `domain`), or cPanel's refusal.
fn existing_mailbox(account: &Account, params: &Params) -> Result<String, String> {
    let (local, domain) = resolve_address(account, params)?;
    let address = format!("{local}@{domain}");
    if account.mailboxes.contains_key(&address) {
        Ok(address)
    } else {
        Err(format!("You do not have an email account named \"{address}\"."))
    }
}

/// `email` as a full address or a local part completed by `domain` (default: the main domain);
/// the domain must be the account's.
fn resolve_address(account: &Account, params: &Params) -> Result<(String, String), String> {
    let email = required(params, "email")?;
    let (local, domain) = match email.rsplit_once('@') {
        Some((local, domain)) => (local, domain),
        None => (email, optional(params, "domain").unwrap_or(&account.main_domain)),
    };
    if !is_local_part(local) {
        return Err(format!("\"{email}\" is not a valid email account name."));
    }
    let domain = account.owned_domain(domain)?;
    Ok((local.to_ascii_lowercase(), domain))
}

/// A local part cPanel accepts for a mailbox: `[A-Za-z0-9._+-]`, no leading, trailing or double dot.
fn is_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// `local@host` with a valid local part and host name.
fn is_address(value: &str) -> bool {
    value
        .rsplit_once('@')
        .is_some_and(|(local, host)| is_local_part(local) && is_hostname(host) && host.contains('.'))
}

/// `quota` in MiB: absent is the default, `0` or `unlimited` is unlimited.
fn quota(params: &Params) -> Result<u64, String> {
    match optional(params, "quota") {
        None => Ok(DEFAULT_QUOTA_MB),
        Some(q) if q.eq_ignore_ascii_case("unlimited") => Ok(0),
        Some(q) => q
            .parse::<u64>()
            .ok()
            .filter(|mb| *mb <= 4_194_304)
            .ok_or_else(|| "The quota must be a positive integer or \"unlimited\".".to_owned()),
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
