//! `SSL` and `DynamicDNS`: certificates (UAPI reads, API 2 installssl) and Dynamic DNS records.

use serde_json::{json, Value};

use super::{api2, fail, ok};
use crate::emulate::Emulator;

const CRT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nBBBB\n-----END RSA PRIVATE KEY-----\n";

#[test]
fn seeded_certificate_is_listed_without_its_key_and_fetched_with_it() {
    let e = Emulator::new("demo");
    let certs = ok(&e, "SSL", "list_certs", &[]);
    assert_eq!(certs.as_array().unwrap().len(), 1);
    assert_eq!(certs[0]["subject.commonName"], "example.com");
    assert!(!certs.to_string().contains("PRIVATE KEY"));
    let best = ok(&e, "SSL", "fetch_best_for_domain", &[("domain", "example.com")]);
    assert!(best["crt"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(best["key"].as_str().unwrap().contains("PRIVATE KEY"));
    let none = ok(&e, "SSL", "fetch_best_for_domain", &[("domain", "example.net")]);
    assert_eq!(
        (&none["crt"], &none["key"], &none["cab"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(
        fail(&e, "SSL", "fetch_best_for_domain", &[("domain", "evil.com")]),
        "You do not own a domain named \"evil.com\"."
    );
    assert_eq!(ok(&e, "SSL", "start_autossl_check", &[]), Value::Null);
}

#[test]
fn api2_installssl_replaces_the_domains_certificate() {
    let e = Emulator::new("demo");
    let r = api2(
        &e,
        "SSL",
        "installssl",
        &[("domain", "example.net"), ("crt", CRT), ("key", KEY), ("cabundle", CRT)],
    );
    assert_eq!(r["event"]["result"], 1);
    assert_eq!(r["data"][0]["result"], 1);
    assert!(r.get("error").is_none());
    let best = ok(&e, "SSL", "fetch_best_for_domain", &[("domain", "example.net")]);
    assert_eq!((best["crt"].as_str(), best["key"].as_str()), (Some(CRT), Some(KEY)));
    api2(
        &e,
        "SSL",
        "installssl",
        &[("domain", "example.net"), ("crt", CRT), ("key", KEY)],
    );
    assert_eq!(ok(&e, "SSL", "list_certs", &[]).as_array().unwrap().len(), 2);
}

#[test]
fn api2_installssl_refusals_are_result_failures() {
    let e = Emulator::new("demo");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("crt", CRT), ("key", KEY)],
            "You must specify the \"domain\" parameter.",
        ),
        (
            &[("domain", "evil.com"), ("crt", CRT), ("key", KEY)],
            "You do not own a domain named \"evil.com\".",
        ),
        (
            &[("domain", "example.com"), ("crt", "junk"), ("key", KEY)],
            "The certificate is not a valid PEM-encoded X.509 certificate.",
        ),
        (
            &[("domain", "example.com"), ("crt", CRT), ("key", CRT)],
            "The key is not a valid PEM-encoded private key.",
        ),
    ];
    for (params, reason) in cases {
        let r = api2(&e, "SSL", "installssl", params);
        assert_eq!(r["data"], json!([{"result": 0, "reason": reason}]));
        assert_eq!(r["error"], reason);
    }
}

#[test]
fn dynamic_dns_records_are_created_listed_and_deleted() {
    let e = Emulator::new("demo");
    assert_eq!(ok(&e, "DynamicDNS", "list", &[]), json!([]));
    let created = ok(
        &e,
        "DynamicDNS",
        "create",
        &[("domain", "Home.Example.com"), ("description", "NAS")],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_lowercase()));
    let listed = ok(&e, "DynamicDNS", "list", &[]);
    assert_eq!(listed[0]["domain"], "home.example.com");
    assert_eq!(listed[0]["description"], "NAS");
    assert!(fail(&e, "DynamicDNS", "create", &[("domain", "home.example.com")]).contains("already exists"));
    assert!(fail(&e, "DynamicDNS", "create", &[("domain", "example.com")]).contains("is not a subdomain"));
    assert!(fail(&e, "DynamicDNS", "create", &[("domain", "x.evil.com")]).contains("is not a subdomain"));
    assert!(fail(&e, "DynamicDNS", "create", &[("domain", "a..example.com")]).contains("not a valid domain"));
    assert_eq!(ok(&e, "DynamicDNS", "delete", &[("id", &id)]), json!({"deleted": 1}));
    assert!(fail(&e, "DynamicDNS", "delete", &[("id", &id)]).contains("No Dynamic DNS record"));
}
