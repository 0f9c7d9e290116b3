//! HTTP-level tests: `serve` on `127.0.0.1:0`, raw HTTP/1.1 over a `TcpStream`.
//!
//! `http_*` tests exercise only the server's own checks (credential, whitelist, method,
//! shutdown). `http_classified_*` tests need the real classifier and are ignored until
//! `src/classify.rs` stops being a stub.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{serve, spawn, Spawned, TOKEN_ONLY_TEXT};
use crate::call::{Api, CpanelCall, Params};
use crate::secret::Secret;

const TOKEN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const AUTH: &str = "Authorization: cpanel demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n";

async fn start() -> Spawned {
    spawn("127.0.0.1:0".parse().unwrap(), "demo".into(), Secret::new(TOKEN.into()))
        .await
        .unwrap()
}

/// Sends `head` (request line and headers, each ending in CRLF) plus `body`; returns the
/// status code and the response body.
async fn send(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}Host: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn http_missing_or_wrong_master_token_is_401() {
    let s = start().await;
    let wrong = [
        String::new(),
        "Authorization: cpanel demo:WRONGTOKENWRONGTOKENWRONGTOKEN00\r\n".into(),
        "Authorization: cpanel other:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n".into(),
        "Authorization: cpanel demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ01234\r\n".into(),
        "Authorization: cpanel demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\r\n".into(),
        "Authorization: Bearer demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n".into(),
        "Authorization: Basic ZGVtbzpBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWjAxMjM0NQ==\r\n".into(),
        "Authorization: cpanel  demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n".into(),
        format!("{AUTH}{AUTH}"),
    ];
    for auth in &wrong {
        for path in [
            "/execute/Email/list_pops",
            "/json-api/cpanel",
            "/frontend/jupiter/index.html",
        ] {
            let (status, body) = send(s.addr, &format!("GET {path} HTTP/1.1\r\n{auth}"), "").await;
            assert_eq!(status, 401, "{auth:?} {path}");
            assert_eq!(body, "Access denied\n");
            assert!(!body.contains(TOKEN));
        }
    }
    let (status, _) = send(
        s.addr,
        "GET /execute/Email/list_pops HTTP/1.1\r\nAuthorization: CPANEL demo:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n",
        "",
    )
    .await;
    assert_ne!(status, 401, "the scheme is case-insensitive");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_non_api_path_is_403_with_cpanels_text() {
    let s = start().await;
    for path in [
        "/",
        "/frontend/jupiter/index.html",
        "/json-api/cpanel2",
        "/json-api/",
        "/execute",
        "/websocket/MysqlDump",
        "/3rdparty/wpt/index.php",
    ] {
        let (status, body) = send(s.addr, &format!("GET {path} HTTP/1.1\r\n{AUTH}"), "").await;
        assert_eq!((status, body.as_str()), (403, TOKEN_ONLY_TEXT), "{path}");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_methods_other_than_get_and_post_are_405() {
    let s = start().await;
    for method in ["PUT", "DELETE", "PATCH"] {
        let (status, _) = send(
            s.addr,
            &format!("{method} /execute/Email/list_pops HTTP/1.1\r\n{AUTH}"),
            "",
        )
        .await;
        assert_eq!(status, 405, "{method}");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_shutdown_stops_accepting_and_returns() {
    let s = start().await;
    let (status, _) = send(s.addr, "GET / HTTP/1.1\r\n", "").await;
    assert_eq!(status, 401);
    let addr = s.addr;
    s.stop().await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn http_empty_token_or_user_is_refused_at_start() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(listener, "demo".into(), Secret::new(String::new()), async {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(listener, String::new(), Secret::new(TOKEN.into()), async {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn http_classified_uapi_get_returns_cpanel_json() {
    let s = start().await;
    let (status, body) = send(
        s.addr,
        &format!("GET /execute/DomainInfo/list_domains HTTP/1.1\r\n{AUTH}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], 1);
    assert_eq!(body["data"]["main_domain"], "example.com");
    let (status, body) = send(s.addr, &format!("GET /execute/Nope/list HTTP/1.1\r\n{AUTH}"), "").await;
    assert_eq!(status, 200);
    assert!(body.contains("Failed to load module"), "{body}");
    // What the classifier refuses as malformed is a UAPI error with HTTP 200.
    let (status, body) = send(
        s.addr,
        &format!("GET /execute/Email/list_pops?novalue HTTP/1.1\r\n{AUTH}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["status"].clone(), body["data"].clone()),
        (serde_json::json!(0), serde_json::Value::Null)
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_classified_post_form_changes_state() {
    let s = start().await;
    let head =
        format!("POST /execute/Email/add_pop HTTP/1.1\r\n{AUTH}Content-Type: application/x-www-form-urlencoded\r\n");
    let (status, body) = send(s.addr, &head, "email=web&password=p%40ss&domain=example.net").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"data\":\"web+example.net\""), "{body}");
    let (status, body) = send(
        s.addr,
        &format!("GET /execute/Email/list_pops?domain=example.net HTTP/1.1\r\n{AUTH}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("web@example.net"), "{body}");
    let list = CpanelCall::new(Api::Uapi, "Email", "list_pops", Params::new());
    assert!(s.emulator.handle(&list).1.to_string().contains("web@example.net"));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_classified_api2_returns_cpanelresult() {
    let s = start().await;
    let query = "cpanel_jsonapi_user=demo&cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzone_records&domain=example.com&type=MX";
    let (status, body) = send(s.addr, &format!("GET /json-api/cpanel?{query} HTTP/1.1\r\n{AUTH}"), "").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["cpanelresult"]["func"], "fetchzone_records");
    assert_eq!(body["cpanelresult"]["data"][0]["exchange"], "mail.example.com.");
    let api1 = "cpanel_jsonapi_apiversion=1&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=listpops";
    let (status, body) = send(s.addr, &format!("GET /json-api/cpanel?{api1} HTTP/1.1\r\n{AUTH}"), "").await;
    assert_eq!((status, body.as_str()), (403, TOKEN_ONLY_TEXT));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_declared_body_over_the_cap_is_413_without_reading_it() {
    let s = start().await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /execute/Email/add_pop HTTP/1.1\r\nHost: localhost\r\n{AUTH}Connection: close\r\nContent-Length: {}\r\n\r\n",
        super::MAX_BODY + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&response)
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_classified_batch_stops_at_first_failure() {
    let s = start().await;
    let commands = [
        r#"["Mysql","create_database",{"name":"demo_b1"}]"#,
        r#"["Mysql","create_database",{"name":"nope"}]"#,
        r#"["Mysql","create_database",{"name":"demo_b3"}]"#,
    ];
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(commands.iter().map(|c| ("command", *c)))
        .finish();
    let head =
        format!("POST /execute/Batch/strict HTTP/1.1\r\n{AUTH}Content-Type: application/x-www-form-urlencoded\r\n");
    let (status, body) = send(s.addr, &head, &body).await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], 0, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    let list = CpanelCall::new(Api::Uapi, "Mysql", "list_databases", Params::new());
    let dbs = s.emulator.handle(&list).1.to_string();
    assert!(dbs.contains("demo_b1") && !dbs.contains("demo_b3"), "{dbs}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_classified_multipart_upload_stores_the_file() {
    let s = start().await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"dir\"\r\n\r\npublic_html\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"up.txt\"\r\n\
                Content-Type: text/plain\r\n\r\nuploaded!\r\n--XyZ--\r\n";
    let head = format!(
        "POST /execute/Fileman/upload_files HTTP/1.1\r\n{AUTH}Content-Type: multipart/form-data; boundary=XyZ\r\n"
    );
    let (status, answer) = send(s.addr, &head, body).await;
    assert_eq!(status, 200);
    assert!(answer.contains("\"succeeded\":1"), "{answer}");
    let (status, listed) = send(
        s.addr,
        &format!("GET /execute/Fileman/list_files?dir=public_html HTTP/1.1\r\n{AUTH}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        listed.contains("\"file\":\"up.txt\"") && listed.contains("\"size\":9"),
        "{listed}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn http_seen_records_each_request_and_stores_the_master_only_as_a_kind() {
    use super::super::{SeenAuth, SeenRequest};
    let s = start().await;
    send(s.addr, &format!("GET /execute/Email/list_pops HTTP/1.1\r\n{AUTH}"), "").await;
    send(
        s.addr,
        "POST /json-api/cpanel HTTP/1.1\r\nAuthorization: Bearer leaked.jwt\r\n",
        "",
    )
    .await;
    send(s.addr, "GET /execute/Email/list_pops HTTP/1.1\r\n", "").await;
    let seen = s.emulator.seen();
    assert_eq!(
        seen,
        [
            SeenRequest {
                method: "GET".into(),
                path: "/execute/Email/list_pops".into(),
                authorization: vec![SeenAuth::Master],
            },
            SeenRequest {
                method: "POST".into(),
                path: "/json-api/cpanel".into(),
                authorization: vec![SeenAuth::Other("Bearer leaked.jwt".into())],
            },
            SeenRequest {
                method: "GET".into(),
                path: "/execute/Email/list_pops".into(),
                authorization: vec![],
            },
        ]
    );
    assert!(!format!("{seen:?}").contains(TOKEN));
    s.stop().await.unwrap();
}
