//! The `SSL` module: installed certificates (UAPI `list_certs`, `fetch_best_for_domain`,
//! `start_autossl_check`; API 2 `installssl`, which certbot-dns-cpanel calls with the
//! certificate and its private key in the query string).
//!
//! The emulator does not parse certificates: it checks that `crt`, `key` and `cabundle` look like
//! PEM blocks of the right kind and keeps them as text. One certificate per domain: installing
//! replaces the domain's previous one, as cPanel's installssl does.

use serde_json::{json, Value};

use crate::call::CpanelCall;

use super::reply::{Api2Reply, UapiResult};
use super::state::{optional, required, Account};

/// One installed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cert {
    pub id: String,
    /// The domain it is installed on, lower-case.
    pub domain: String,
    pub crt: String,
    pub key: String,
    pub cabundle: Option<String>,
    /// Unix time the emulator installed it.
    pub installed: u64,
}

/// How long an emulated certificate is valid (Let's Encrypt's 90 days).
const VALIDITY_SECS: u64 = 90 * 24 * 3600;

/// The PEM text the seed installs for `domain` (not a real certificate).
pub(crate) fn seeded_cert(domain: &str) -> Cert {
    Cert {
        id: cert_id(domain, 1),
        domain: domain.to_owned(),
        crt: pem("CERTIFICATE", &format!("EMULATED CERTIFICATE FOR {domain}")),
        key: pem("PRIVATE KEY", &format!("EMULATED PRIVATE KEY FOR {domain}")),
        cabundle: Some(pem("CERTIFICATE", "EMULATED CA")),
        installed: 1_767_225_600,
    }
}

/// UAPI `SSL::list_certs`: every installed certificate, without keys.
pub(crate) fn list_certs(account: &mut Account, _call: &CpanelCall) -> UapiResult {
    let rows = account
        .certs
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "friendly_name": c.domain,
                "domains": [c.domain, format!("www.{}", c.domain)],
                "subject.commonName": c.domain,
                "issuer.organizationName": "cpgate emulator",
                "is_self_signed": 0,
                "not_before": c.installed,
                "not_after": c.installed + VALIDITY_SECS,
                "validation_type": "dv",
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `SSL::fetch_best_for_domain`: `domain`. Answers `crt`, `key` and `cab` (all `null` when
/// the domain has no certificate).
pub(crate) fn fetch_best_for_domain(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let domain = account.owned_domain(required(&call.params, "domain")?)?;
    let cert = account.certs.iter().find(|c| c.domain == domain);
    Ok(json!({
        "domain": domain,
        "crt": cert.map(|c| c.crt.clone()),
        "key": cert.map(|c| c.key.clone()),
        "cab": cert.and_then(|c| c.cabundle.clone()),
    }))
}

/// UAPI `SSL::start_autossl_check`: nothing to check in memory; answers like cPanel (no data).
pub(crate) fn start_autossl_check(_account: &mut Account, _call: &CpanelCall) -> UapiResult {
    Ok(Value::Null)
}

/// API 2 `SSL::installssl`: `domain`, `crt`, `key`, optional `cabundle`.
pub(crate) fn api2_installssl(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    match install(account, call) {
        Ok(domain) => {
            let text = format!("The SSL certificate is now installed onto the domain \u{201c}{domain}\u{201d}.");
            Api2Reply::ok(vec![
                json!({"result": 1, "status": 1, "output": text, "statusmsg": text}),
            ])
        }
        Err(reason) => Api2Reply::result_failure(reason),
    }
}

fn install(account: &mut Account, call: &CpanelCall) -> Result<String, String> {
    let p = &call.params;
    let domain = account.owned_domain(required(p, "domain")?)?;
    let crt = required(p, "crt")?;
    let key = required(p, "key")?;
    let cabundle = optional(p, "cabundle");
    if !is_pem(crt, "CERTIFICATE") {
        return Err("The certificate is not a valid PEM-encoded X.509 certificate.".to_owned());
    }
    if !is_pem(key, "PRIVATE KEY") {
        return Err("The key is not a valid PEM-encoded private key.".to_owned());
    }
    if cabundle.is_some_and(|cab| !is_pem(cab, "CERTIFICATE")) {
        return Err("The CA bundle is not a valid PEM-encoded certificate chain.".to_owned());
    }
    account.next_id += 1;
    let cert = Cert {
        id: cert_id(&domain, account.next_id),
        domain: domain.clone(),
        crt: crt.to_owned(),
        key: key.to_owned(),
        cabundle: cabundle.map(str::to_owned),
        installed: now(),
    };
    account.certs.retain(|c| c.domain != domain);
    account.certs.push(cert);
    Ok(domain)
}

/// True when `text` holds a `-----BEGIN ...KIND-----` ... `-----END ...KIND-----` block
/// (`PRIVATE KEY` also matches `RSA PRIVATE KEY` and `EC PRIVATE KEY`).
fn is_pem(text: &str, kind: &str) -> bool {
    let text = text.trim();
    let begins = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .is_some_and(|(label, _)| label.ends_with(kind));
    let ends = text
        .strip_suffix("-----")
        .and_then(|rest| rest.rsplit_once("-----END "))
        .is_some_and(|(_, label)| label.ends_with(kind));
    begins && ends
}

fn pem(kind: &str, body: &str) -> String {
    format!("-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n")
}

fn cert_id(domain: &str, n: u64) -> String {
    format!("{}_emulated_{n}", domain.replace(['.', '-'], "_"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_recognised_by_kind() {
        assert!(is_pem(&pem("CERTIFICATE", "x"), "CERTIFICATE"));
        assert!(is_pem(&pem("RSA PRIVATE KEY", "x"), "PRIVATE KEY"));
        assert!(!is_pem(&pem("CERTIFICATE", "x"), "PRIVATE KEY"));
        assert!(!is_pem("-----BEGIN CERTIFICATE-----\nx\n", "CERTIFICATE"));
        assert!(!is_pem("junk", "CERTIFICATE"));
    }
}
