//! The emulated account: domains, mailboxes, forwarders, DNS zones, databases and files, held in
//! memory and seeded with a small, realistic example.
//!
//! Owns the seed and the validation helpers every module shares (required parameters, domain
//! ownership). Handlers mutate an [`Account`] only through `&mut` while the emulator's lock is
//! held, so a `Batch::strict` runs atomically with respect to other requests.

use std::collections::BTreeMap;

use crate::call::Params;

use super::email::{Forwarder, Mailbox};
use super::fileman::StoredFile;
use super::mysql::Database;
use super::zone::Zone;

/// Everything the emulated cPanel account holds.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    /// The cPanel user name; also the database prefix (`USER_`).
    pub user: String,
    pub main_domain: String,
    pub sub_domains: Vec<String>,
    pub parked_domains: Vec<String>,
    pub addon_domains: Vec<String>,
    /// Mailboxes by full address, lower-case.
    pub mailboxes: BTreeMap<String, Mailbox>,
    pub forwarders: Vec<Forwarder>,
    /// Zones by domain, lower-case.
    pub zones: BTreeMap<String, Zone>,
    /// Databases by name.
    pub databases: BTreeMap<String, Database>,
    /// Database users by name.
    pub db_users: BTreeMap<String, ()>,
    /// Files by directory (relative to the home directory, no leading or trailing `/`), then name.
    pub files: BTreeMap<String, BTreeMap<String, StoredFile>>,
}

impl Account {
    /// The seeded account: main domain `example.com`, sub-domain `blog.example.com`, addon
    /// `example.net`, two mailboxes and a forwarder, a zone per domain with A/MX/TXT records, one
    /// database with its user, and a `public_html/index.html`.
    pub fn seeded(user: &str) -> Self {
        let mut account = Self {
            user: user.to_owned(),
            main_domain: "example.com".into(),
            sub_domains: vec!["blog.example.com".into()],
            parked_domains: Vec::new(),
            addon_domains: vec!["example.net".into()],
            mailboxes: BTreeMap::new(),
            forwarders: Vec::new(),
            zones: BTreeMap::new(),
            databases: BTreeMap::new(),
            db_users: BTreeMap::new(),
            files: BTreeMap::new(),
        };
        for (address, quota) in [
            ("info@example.com", 1024),
            ("sales@example.com", 0),
            ("admin@example.net", 512),
        ] {
            account.mailboxes.insert(address.into(), Mailbox { quota_mb: quota });
        }
        account.forwarders.push(Forwarder {
            address: "sales@example.com".into(),
            target: "info@example.com".into(),
        });
        for domain in ["example.com", "example.net"] {
            account.zones.insert(domain.into(), Zone::seeded(domain));
        }
        let db = format!("{user}_wp");
        account.db_users.insert(db.clone(), ());
        account.databases.insert(db.clone(), Database { users: vec![db] });
        account.files.entry("public_html".into()).or_default().insert(
            "index.html".into(),
            StoredFile {
                data: bytes::Bytes::from_static(b"<h1>It works</h1>\n"),
            },
        );
        account
    }

    /// Every domain the account owns, main first.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.main_domain.as_str())
            .chain(self.addon_domains.iter().map(String::as_str))
            .chain(self.sub_domains.iter().map(String::as_str))
            .chain(self.parked_domains.iter().map(String::as_str))
    }

    /// True when the account owns `domain` (case-insensitive).
    pub fn owns(&self, domain: &str) -> bool {
        self.domains().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// `Ok(lower-cased domain)` when owned, else cPanel's refusal.
    pub fn owned_domain(&self, domain: &str) -> Result<String, String> {
        if self.owns(domain) {
            Ok(domain.to_ascii_lowercase())
        } else {
            Err(format!("You do not own a domain named \"{domain}\"."))
        }
    }

    /// The home directory, as cPanel reports it in paths.
    pub fn home(&self) -> String {
        format!("/home/{}", self.user)
    }
}

/// The non-empty plain value of `name`, or cPanel's missing-parameter error.
pub(crate) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, String> {
    match params.get(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(missing(name)),
    }
}

/// The non-empty plain value of `name`, if given.
pub(crate) fn optional<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).filter(|v| !v.is_empty())
}

/// cPanel's text for a missing required parameter.
pub(crate) fn missing(name: &str) -> String {
    format!("You must specify the \"{name}\" parameter.")
}

/// True for a DNS name made of `[A-Za-z0-9-]` labels separated by dots (no trailing dot).
pub(crate) fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_owns_its_domains_case_insensitively() {
        let a = Account::seeded("demo");
        assert!(a.owns("example.com") && a.owns("EXAMPLE.NET") && a.owns("blog.example.com"));
        assert!(!a.owns("evil.com"));
        assert_eq!(a.owned_domain("Example.Com"), Ok("example.com".into()));
        assert!(a.databases.contains_key("demo_wp"));
    }

    #[test]
    fn required_rejects_missing_and_empty() {
        let p = Params::from_unique_pairs([("a", ""), ("b", "x")]);
        assert_eq!(required(&p, "a"), Err(missing("a")));
        assert_eq!(required(&p, "c"), Err(missing("c")));
        assert_eq!(required(&p, "b"), Ok("x"));
    }

    #[test]
    fn hostnames_are_checked_label_by_label() {
        assert!(is_hostname("www.example.com"));
        assert!(!is_hostname("a..b") && !is_hostname("-a.b") && !is_hostname("a_b.c") && !is_hostname(""));
    }
}
