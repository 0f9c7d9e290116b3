//! `Email`: mailboxes and forwarders, UAPI and API 2.

use serde_json::{json, Value};

use super::{addresses, api2, fail, ok, Pairs};
use crate::emulate::Emulator;

#[test]
fn list_pops_shape_and_domain_filter() {
    let e = Emulator::new("demo");
    let all = ok(&e, "Email", "list_pops", &[]);
    assert_eq!(
        all[0],
        json!({"email": "admin@example.net", "login": "admin@example.net", "suspended_incoming": 0, "suspended_login": 0})
    );
    assert_eq!(addresses(&all).len(), 3);
    let com = ok(&e, "Email", "list_pops", &[("domain", "example.com")]);
    assert_eq!(addresses(&com), ["info@example.com", "sales@example.com"]);
}

#[test]
fn add_pop_is_visible_to_list_pops() {
    let e = Emulator::new("demo");
    let data = ok(
        &e,
        "Email",
        "add_pop",
        &[
            ("email", "new"),
            ("password", "s3cret!"),
            ("domain", "example.net"),
            ("quota", "250"),
        ],
    );
    assert_eq!(data, "new+example.net");
    assert_eq!(
        ok(
            &e,
            "Email",
            "add_pop",
            &[("email", "Full@Example.com"), ("password", "x")]
        ),
        "full+example.com"
    );
    assert_eq!(
        ok(&e, "Email", "add_pop", &[("email", "dflt"), ("password", "x")]),
        "dflt+example.com"
    );
    let net = ok(&e, "Email", "list_pops", &[("domain", "example.net")]);
    assert_eq!(addresses(&net), ["admin@example.net", "new@example.net"]);
    assert!(addresses(&ok(&e, "Email", "list_pops", &[])).contains(&"full@example.com"));
}

#[test]
fn add_pop_validation_texts() {
    let e = Emulator::new("demo");
    let cases: &[(Pairs, &str)] = &[
        (&[("password", "x")], "You must specify the \"email\" parameter."),
        (&[("email", "bob")], "You must specify the \"password\" parameter."),
        (
            &[("email", "bob"), ("password", "x"), ("domain", "evil.org")],
            "You do not own a domain named \"evil.org\".",
        ),
        (
            &[("email", "bob@evil.org"), ("password", "x")],
            "You do not own a domain named \"evil.org\".",
        ),
        (
            &[("email", "b o b"), ("password", "x")],
            "\"b o b\" is not a valid email account name.",
        ),
        (
            &[("email", ".bob"), ("password", "x")],
            "\".bob\" is not a valid email account name.",
        ),
        (
            &[("email", "info"), ("password", "x")],
            "The account info@example.com already exists!",
        ),
        (
            &[("email", "bob"), ("password", "x"), ("quota", "-1")],
            "The quota must be a positive integer or \"unlimited\".",
        ),
    ];
    for (pairs, text) in cases {
        assert_eq!(fail(&e, "Email", "add_pop", pairs), *text, "{pairs:?}");
    }
    assert_eq!(
        addresses(&ok(&e, "Email", "list_pops", &[])).len(),
        3,
        "no failed call changed state"
    );
}

#[test]
fn delete_pop_and_passwd_pop() {
    let e = Emulator::new("demo");
    assert_eq!(
        ok(
            &e,
            "Email",
            "passwd_pop",
            &[("email", "info"), ("domain", "example.com"), ("password", "n3w")]
        ),
        Value::Null
    );
    assert_eq!(
        fail(&e, "Email", "passwd_pop", &[("email", "info@example.com")]),
        "You must specify the \"password\" parameter."
    );
    assert_eq!(
        ok(&e, "Email", "delete_pop", &[("email", "info@example.com")]),
        Value::Null
    );
    assert_eq!(
        fail(
            &e,
            "Email",
            "delete_pop",
            &[("email", "info"), ("domain", "example.com")]
        ),
        "You do not have an email account named \"info@example.com\"."
    );
    assert_eq!(
        fail(
            &e,
            "Email",
            "passwd_pop",
            &[("email", "info@example.com"), ("password", "x")]
        ),
        "You do not have an email account named \"info@example.com\"."
    );
    assert_eq!(
        addresses(&ok(&e, "Email", "list_pops", &[("domain", "example.com")])),
        ["sales@example.com"]
    );
}

#[test]
fn forwarders_add_list_delete() {
    let e = Emulator::new("demo");
    let seeded = ok(&e, "Email", "list_forwarders", &[]);
    assert_eq!(
        seeded[0],
        json!({"dest": "sales@example.com", "forward": "info@example.com", "html_dest": "sales@example.com",
               "html_forward": "info@example.com", "uri_dest": "sales%40example%2Ecom", "uri_forward": "info%40example%2Ecom"})
    );
    let added = ok(
        &e,
        "Email",
        "add_forwarder",
        &[
            ("domain", "example.net"),
            ("email", "hello"),
            ("fwdopt", "fwd"),
            ("fwdemail", "me@gmail.com"),
        ],
    );
    assert_eq!(
        added,
        json!([{"domain": "example.net", "email": "hello@example.net", "forward": "me@gmail.com"}])
    );
    ok(
        &e,
        "Email",
        "add_forwarder",
        &[("domain", "example.net"), ("email", "void"), ("fwdopt", "blackhole")],
    );
    let net = ok(&e, "Email", "list_forwarders", &[("domain", "example.net")]);
    assert_eq!(net.as_array().unwrap().len(), 2);
    assert_eq!(net[1]["forward"], ":blackhole:");
    let failures: &[(Pairs, &str)] = &[
        (
            &[("email", "a"), ("fwdopt", "fwd"), ("fwdemail", "b@c.com")],
            "You must specify the \"domain\" parameter.",
        ),
        (
            &[("domain", "example.net"), ("email", "a"), ("fwdopt", "fwd")],
            "You must specify the \"fwdemail\" parameter.",
        ),
        (
            &[
                ("domain", "example.net"),
                ("email", "a"),
                ("fwdopt", "fwd"),
                ("fwdemail", "nope"),
            ],
            "\"nope\" is not a valid email address.",
        ),
        (
            &[("domain", "evil.org"), ("email", "a"), ("fwdopt", "blackhole")],
            "You do not own a domain named \"evil.org\".",
        ),
        (
            &[
                ("domain", "example.net"),
                ("email", "a"),
                ("fwdopt", "pipe"),
                ("fwdemail", "|/bin/sh"),
            ],
            "The \"fwdopt\" value \"pipe\" is not valid. Use \"fwd\", \"fail\" or \"blackhole\".",
        ),
    ];
    for (pairs, text) in failures {
        assert_eq!(fail(&e, "Email", "add_forwarder", pairs), *text, "{pairs:?}");
    }
    ok(
        &e,
        "Email",
        "delete_forwarder",
        &[("address", "hello@example.net"), ("forwarder", "me@gmail.com")],
    );
    assert_eq!(
        fail(
            &e,
            "Email",
            "delete_forwarder",
            &[("address", "hello@example.net"), ("forwarder", "me@gmail.com")]
        ),
        "The forwarder from \"hello@example.net\" to \"me@gmail.com\" does not exist."
    );
    assert_eq!(
        ok(&e, "Email", "list_forwarders", &[("domain", "example.net")])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn api2_email_listpops_and_addpop_shapes() {
    let e = Emulator::new("demo");
    let r = api2(
        &e,
        "Email",
        "addpop",
        &[
            ("email", "api2"),
            ("password", "x"),
            ("domain", "example.com"),
            ("quota", "500"),
        ],
    );
    assert_eq!(r["data"], json!([{"result": 1, "reason": ""}]));
    assert_eq!(r["event"], json!({"result": 1}));
    assert!(r.get("error").is_none());
    let r = api2(
        &e,
        "Email",
        "addpop",
        &[("email", "api2"), ("password", "x"), ("domain", "example.com")],
    );
    let reason = "The account api2@example.com already exists!";
    assert_eq!(r["data"], json!([{"result": 0, "reason": reason}]));
    assert_eq!(r["error"], reason);
    let r = api2(&e, "Email", "listpops", &[("domain", "example.com")]);
    assert_eq!(
        r["data"][0],
        json!({"email": "api2@example.com", "login": "api2@example.com"})
    );
    assert_eq!(r["data"].as_array().unwrap().len(), 3);
}
