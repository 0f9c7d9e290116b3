//! The `DomainInfo` module: the account's domains (UAPI `list_domains`, `domains_data`,
//! `single_domain_data`), read-only.

use serde_json::{json, Value};

use crate::call::CpanelCall;

use super::reply::UapiResult;
use super::state::{optional, required, Account};

/// The documentation address the emulated domains resolve to (RFC 5737).
pub(crate) const SERVER_IP: &str = "192.0.2.10";

/// UAPI `DomainInfo::list_domains`: the four lists of names.
pub(crate) fn list_domains(account: &mut Account, _call: &CpanelCall) -> UapiResult {
    Ok(json!({
        "main_domain": account.main_domain,
        "sub_domains": account.sub_domains,
        "parked_domains": account.parked_domains,
        "addon_domains": account.addon_domains,
    }))
}

/// UAPI `DomainInfo::domains_data`: `format=hash` (default) groups by kind, `format=list` is
/// one array.
pub(crate) fn domains_data(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let main = entry(account, &account.main_domain, Kind::Main);
    let addons: Vec<Value> = account
        .addon_domains
        .iter()
        .map(|d| entry(account, d, Kind::Addon))
        .collect();
    let subs: Vec<Value> = account
        .sub_domains
        .iter()
        .map(|d| entry(account, d, Kind::Sub))
        .collect();
    match optional(&call.params, "format").unwrap_or("hash") {
        "hash" => Ok(json!({
            "main_domain": main,
            "addon_domains": addons,
            "sub_domains": subs,
            "parked_domains": account.parked_domains,
        })),
        "list" => {
            let parked = account.parked_domains.iter().map(|d| entry(account, d, Kind::Parked));
            let all: Vec<Value> = std::iter::once(main).chain(addons).chain(subs).chain(parked).collect();
            Ok(Value::Array(all))
        }
        other => Err(format!(
            "The \"format\" value \"{other}\" is not valid. Use \"hash\" or \"list\"."
        )),
    }
}

/// UAPI `DomainInfo::single_domain_data`: `domain`.
pub(crate) fn single_domain_data(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let domain = account.owned_domain(required(&call.params, "domain")?)?;
    let kind = if domain == account.main_domain {
        Kind::Main
    } else if account.addon_domains.contains(&domain) {
        Kind::Addon
    } else if account.sub_domains.contains(&domain) {
        Kind::Sub
    } else {
        Kind::Parked
    };
    Ok(entry(account, &domain, kind))
}

#[derive(Clone, Copy)]
enum Kind {
    Main,
    Addon,
    Sub,
    Parked,
}

/// One domain's virtual-host data, in the shape of cPanel's `domains_data` entries.
fn entry(account: &Account, domain: &str, kind: Kind) -> Value {
    let home = account.home();
    let (docroot, type_name) = match kind {
        Kind::Main => (format!("{home}/public_html"), "main_domain"),
        Kind::Parked => (format!("{home}/public_html"), "parked_domain"),
        Kind::Addon => (format!("{home}/{domain}"), "addon_domain"),
        Kind::Sub => {
            let label = domain.split('.').next().unwrap_or(domain);
            (format!("{home}/public_html/{label}"), "sub_domain")
        }
    };
    json!({
        "domain": domain,
        "documentroot": docroot,
        "homedir": home,
        "user": account.user,
        "group": account.user,
        "owner": "root",
        "ip": SERVER_IP,
        "ipv6": null,
        "servername": domain,
        "serveralias": format!("www.{domain}"),
        "serveradmin": format!("webmaster@{domain}"),
        "type": type_name,
        "hascgi": "1",
        "usecanonicalname": "Off",
        "phpopenbasedirprotect": "1",
        "userdirprotect": "",
        "no_cache_update": "0",
    })
}
