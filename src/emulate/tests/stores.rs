//! `Mysql` and `Fileman`: databases, users, uploaded files.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{call, fail, ok};
use crate::call::{Api, UploadFile};
use crate::emulate::Emulator;

#[test]
fn mysql_databases_enforce_the_prefix() {
    let e = Emulator::new("demo");
    assert_eq!(
        ok(&e, "Mysql", "list_databases", &[]),
        json!([{"database": "demo_wp", "disk_usage": 0, "users": ["demo_wp"]}])
    );
    assert_eq!(
        ok(&e, "Mysql", "create_database", &[("name", "demo_shop")]),
        Value::Null
    );
    assert_eq!(
        fail(&e, "Mysql", "create_database", &[("name", "shop")]),
        "The database name \"shop\" must begin with the prefix \"demo_\"."
    );
    assert_eq!(
        fail(&e, "Mysql", "create_database", &[("name", "demo_shop")]),
        "The database \"demo_shop\" already exists."
    );
    assert!(fail(&e, "Mysql", "create_database", &[("name", "demo_a;drop")]).contains("is not valid"));
    assert!(fail(
        &e,
        "Mysql",
        "create_database",
        &[("name", &format!("demo_{}", "x".repeat(60)))]
    )
    .contains("longer than 64"));
    let names: Vec<_> = ok(&e, "Mysql", "list_databases", &[])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].clone())
        .collect();
    assert_eq!(names, [json!("demo_shop"), json!("demo_wp")]);
    ok(&e, "Mysql", "delete_database", &[("name", "demo_shop")]);
    assert_eq!(
        fail(&e, "Mysql", "delete_database", &[("name", "demo_shop")]),
        "The database \"demo_shop\" does not exist."
    );
}

#[test]
fn mysql_users_and_privileges() {
    let e = Emulator::new("demo");
    assert_eq!(
        ok(&e, "Mysql", "list_users", &[]),
        json!([{"user": "demo_wp", "full_user": "demo_wp", "shortuser": "wp", "databases": ["demo_wp"]}])
    );
    assert_eq!(
        fail(&e, "Mysql", "create_user", &[("name", "demo_app")]),
        "You must specify the \"password\" parameter."
    );
    assert_eq!(
        fail(&e, "Mysql", "create_user", &[("name", "app"), ("password", "x")]),
        "The database user name \"app\" must begin with the prefix \"demo_\"."
    );
    ok(&e, "Mysql", "create_user", &[("name", "demo_app"), ("password", "x")]);
    ok(
        &e,
        "Mysql",
        "set_privileges_on_database",
        &[
            ("user", "demo_app"),
            ("database", "demo_wp"),
            ("privileges", "ALL PRIVILEGES"),
        ],
    );
    assert_eq!(
        ok(&e, "Mysql", "list_databases", &[])[0]["users"],
        json!(["demo_wp", "demo_app"])
    );
    ok(&e, "Mysql", "delete_user", &[("name", "demo_app")]);
    assert_eq!(ok(&e, "Mysql", "list_databases", &[])[0]["users"], json!(["demo_wp"]));
    assert_eq!(
        fail(&e, "Mysql", "delete_user", &[("name", "demo_app")]),
        "The database user \"demo_app\" does not exist."
    );
}

#[test]
fn fileman_upload_then_list() {
    let e = Emulator::new("demo");
    let mut upload = call(Api::Uapi, "Fileman", "upload_files", &[("dir", "public_html/assets")]);
    upload.files = vec![
        UploadFile {
            field: "file-1".into(),
            filename: "a.txt".into(),
            content_type: None,
            data: Bytes::from_static(b"hello"),
        },
        UploadFile {
            field: "file-2".into(),
            filename: "..".into(),
            content_type: None,
            data: Bytes::new(),
        },
    ];
    let (_, body) = e.handle(&upload);
    assert_eq!(body["status"], 1);
    assert_eq!(
        (body["data"]["succeeded"].as_u64(), body["data"]["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, again) = e.handle(&upload);
    assert_eq!(again["errors"], json!(["The file \"a.txt\" already exists."]));
    let listed = ok(&e, "Fileman", "list_files", &[("dir", "/home/demo/public_html/assets")]);
    assert_eq!(listed[0]["fullpath"], "/home/demo/public_html/assets/a.txt");
    assert_eq!(listed[0]["size"], 5);
    let root = ok(&e, "Fileman", "list_files", &[("dir", "public_html")]);
    let names: Vec<_> = root
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["file"].clone(), r["type"].clone()))
        .collect();
    assert_eq!(
        names,
        [(json!("assets"), json!("dir")), (json!("index.html"), json!("file"))]
    );
    assert_eq!(
        fail(&e, "Fileman", "list_files", &[("dir", "../../etc")]),
        "You do not have access to \"../../etc\"."
    );
    assert_eq!(
        fail(&e, "Fileman", "upload_files", &[]),
        "You must specify at least one file to upload."
    );
}
