//! API 2 `ZoneEdit`: records, line numbers, serials, validation.

use serde_json::json;

use super::{api2, Pairs};
use crate::emulate::Emulator;

#[test]
fn zone_records_have_lines_and_filters() {
    let e = Emulator::new("demo");
    let r = api2(&e, "ZoneEdit", "fetchzone_records", &[("domain", "example.com")]);
    let rows = r["data"].as_array().unwrap();
    assert_eq!(rows[0]["type"], "SOA");
    assert_eq!(rows[0]["line"], 4);
    let mx = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("type", "MX")],
    );
    assert_eq!(
        mx["data"],
        json!([{"line": 10, "Line": 10, "name": "example.com.", "class": "IN", "ttl": 14400, "type": "MX",
                "exchange": "mail.example.com.", "preference": 0, "record": "mail.example.com."}])
    );
    let www = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("name", "www.example.com")],
    );
    assert_eq!(www["data"][0]["cname"], "example.com.");
    let a = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("type", "A"), ("name", "example.com.")],
    );
    assert_eq!(a["data"].as_array().unwrap().len(), 1);
    let bad = api2(&e, "ZoneEdit", "fetchzone_records", &[("domain", "evil.org")]);
    assert_eq!(bad["error"], "You do not own a domain named \"evil.org\".");
    let zones = api2(&e, "ZoneEdit", "fetchzones", &[]);
    let zones = zones["data"][0]["zones"].as_object().unwrap();
    assert_eq!(zones.keys().collect::<Vec<_>>(), ["example.com", "example.net"]);
}

#[test]
fn zone_add_fetch_remove_renumbers_and_bumps_serial() {
    let e = Emulator::new("demo");
    let txt = [
        ("domain", "example.com"),
        ("name", "_acme-challenge"),
        ("type", "TXT"),
        ("txtdata", "tok123"),
        ("ttl", "300"),
    ];
    let r = api2(&e, "ZoneEdit", "add_zone_record", &txt);
    assert_eq!(r["data"][0]["result"]["status"], 1);
    assert_eq!(r["data"][0]["result"]["newserial"], "2024010102");
    let found = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("name", "_acme-challenge.example.com.")],
    );
    let row = &found["data"][0];
    assert_eq!(
        (row["txtdata"].as_str(), row["ttl"].as_u64(), row["line"].as_u64()),
        (Some("tok123"), Some(300), Some(12))
    );
    // Removing the A record on line 7 moves the TXT record up to line 11.
    let r = api2(
        &e,
        "ZoneEdit",
        "remove_zone_record",
        &[("domain", "example.com"), ("line", "7")],
    );
    assert_eq!(r["data"][0]["result"]["status"], 1);
    let found = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("type", "TXT")],
    );
    assert_eq!(found["data"][1]["line"], 11);
    let soa = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("type", "SOA")],
    );
    assert_eq!(soa["data"][0]["serial"], "2024010103");
    let a = api2(
        &e,
        "ZoneEdit",
        "add_zone_record",
        &[
            ("domain", "example.net"),
            ("name", "api"),
            ("type", "A"),
            ("address", "192.0.2.44"),
        ],
    );
    assert_eq!(a["data"][0]["result"]["status"], 1);
}

#[test]
fn zone_validation_failures() {
    let e = Emulator::new("demo");
    let cases: &[(&str, Pairs, &str)] = &[
        (
            "add_zone_record",
            &[
                ("domain", "example.com"),
                ("name", "x"),
                ("type", "A"),
                ("address", "999.1.1.1"),
            ],
            "\"999.1.1.1\" is not a valid IPv4 address.",
        ),
        (
            "add_zone_record",
            &[
                ("domain", "example.com"),
                ("name", "x"),
                ("type", "SPF"),
                ("txtdata", "v"),
            ],
            "\"SPF\" is not a supported record type.",
        ),
        (
            "add_zone_record",
            &[
                ("domain", "example.com"),
                ("name", "x.evil.org."),
                ("type", "TXT"),
                ("txtdata", "v"),
            ],
            "The name \"x.evil.org.\" is not inside the zone \"example.com\".",
        ),
        (
            "add_zone_record",
            &[
                ("domain", "example.com"),
                ("name", "www"),
                ("type", "TXT"),
                ("txtdata", "v"),
            ],
            "A CNAME record cannot coexist with other records at \"www.example.com.\".",
        ),
        (
            "add_zone_record",
            &[("domain", "example.com"), ("name", "x"), ("type", "TXT")],
            "You must specify the \"txtdata\" parameter.",
        ),
        (
            "add_zone_record",
            &[
                ("domain", "example.com"),
                ("name", "x"),
                ("type", "A"),
                ("address", "192.0.2.1"),
                ("ttl", "soon"),
            ],
            "\"soon\" is not a valid TTL: use a positive integer.",
        ),
        (
            "remove_zone_record",
            &[("domain", "example.com"), ("line", "4")],
            "You cannot remove the SOA record.",
        ),
        (
            "remove_zone_record",
            &[("domain", "example.com"), ("line", "99")],
            "No record exists on line \"99\" of the zone \"example.com\".",
        ),
        (
            "remove_zone_record",
            &[("domain", "evil.org"), ("line", "5")],
            "You do not own a domain named \"evil.org\".",
        ),
    ];
    for (function, pairs, text) in cases {
        let r = api2(&e, "ZoneEdit", function, pairs);
        assert_eq!(
            r["data"],
            json!([{"result": {"status": 0, "statusmsg": text}}]),
            "{pairs:?}"
        );
        assert_eq!(r["error"], *text);
        assert_eq!(r["event"]["result"], 1);
    }
    let soa = api2(
        &e,
        "ZoneEdit",
        "fetchzone_records",
        &[("domain", "example.com"), ("type", "SOA")],
    );
    assert_eq!(
        soa["data"][0]["serial"], "2024010101",
        "failed edits leave the serial alone"
    );
}
