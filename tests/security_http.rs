//! HTTP attack suite (security.md §2): every request vector hyper hands the application
//! unrejected, sent byte for byte over raw sockets (a client library would normalise them), and
//! the same checks over HTTP/2 (h2c prior knowledge, raw frames, and ALPN over TLS).
//!
//! Each test is named after the attack and asserts the status and that the recording cPanel
//! received nothing, or, where the request is legitimately forwarded, exactly one
//! `Authorization` (the master) and only allow-listed headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "integration/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "security_http/http2.rs"]
mod http2;

use support::{assert_clean_upstream_request, assert_nothing_forwarded, raw, Gateway, RawConn, RawResponse};

const LIST: &str = "/execute/Email/list_pops";

/// `METHOD TARGET HTTP/1.1` with Host, alice's valid credential, `extra` header lines
/// (each ending in CRLF) and `body`.
fn request(gw: &Gateway, method: &str, target: &str, extra: &str, body: &str) -> Vec<u8> {
    let mut r = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n{extra}",
        gw.addr,
        gw.bearer("alice")
    )
    .into_bytes();
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body.as_bytes());
    r
}

/// Sends raw bytes and asserts the status and that nothing reached cPanel. When cpgate (not
/// hyper) answered, the body is a cPanel-shaped refusal with `code`.
async fn refused(gw: &Gateway, bytes: &[u8], status: u16, code: &str) -> RawResponse {
    let r = raw(gw.addr, bytes)
        .await
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)));
    assert_eq!(r.status, status, "{r:?}");
    if !r.body.is_empty() {
        assert_eq!(r.code(), code, "{r:?}");
    }
    assert_nothing_forwarded(gw);
    r
}

/// Asserts the request was answered by cpgate's own refusal (not hyper's empty one).
fn by_cpgate(r: &RawResponse) {
    assert!(r.header("x-request-id").is_some(), "answered by cpgate: {r:?}");
}

// --- Paths and request-target forms ---------------------------------------------------------

#[tokio::test]
async fn dot_dot_segment_in_path_is_400() {
    let gw = Gateway::start().await;
    let r = refused(
        &gw,
        &request(&gw, "GET", "/execute/Email/../Email/list_pops", "", ""),
        400,
        "bad_request",
    )
    .await;
    by_cpgate(&r);
}

#[tokio::test]
async fn dot_dot_escaping_the_api_root_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/../frontend/jupiter/index.html", "", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn percent_encoded_dot_dot_is_400() {
    let gw = Gateway::start().await;
    for target in [
        "/execute/Email/%2e%2e/Tokens/create_full_access",
        "/execute/Email/%2E%2E/x/list_pops",
    ] {
        refused(&gw, &request(&gw, "GET", target, "", ""), 400, "bad_request").await;
    }
}

#[tokio::test]
async fn percent_encoded_slash_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/Email%2flist_pops", "", ""),
        400,
        "bad_request",
    )
    .await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/Email/list_pops%2F", "", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn double_slash_is_400() {
    let gw = Gateway::start().await;
    for target in [
        "//execute/Email/list_pops",
        "/execute//Email/list_pops",
        "/execute/Email//list_pops",
    ] {
        refused(&gw, &request(&gw, "GET", target, "", ""), 400, "bad_request").await;
    }
}

#[tokio::test]
async fn semicolon_path_parameter_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/Email/list_pops;.css", "", ""),
        400,
        "bad_request",
    )
    .await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/Email;x=1/list_pops", "", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn backslash_in_path_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute/Email\\list_pops", "", ""),
        400,
        "bad_request",
    )
    .await;
    refused(
        &gw,
        &request(&gw, "GET", "/execute\\..\\Email/list_pops", "", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn raw_non_ascii_in_path_is_400() {
    let gw = Gateway::start().await;
    let mut bytes = request(&gw, "GET", "/execute/Email/list_pops", "", "");
    // Insert raw UTF-8 (e with acute) and a lone 0xff right after the function name.
    let at = bytes.windows(9).position(|w| w == b"list_pops").unwrap() + 9;
    bytes.splice(at..at, [0xc3, 0xa9, 0xff]);
    refused(&gw, &bytes, 400, "bad_request").await;
}

#[tokio::test]
async fn control_character_in_path_is_400() {
    let gw = Gateway::start().await;
    let mut bytes = request(&gw, "GET", "/execute/Email/list_pops", "", "");
    let at = bytes.windows(9).position(|w| w == b"list_pops").unwrap();
    bytes.insert(at, 0x01);
    refused(&gw, &bytes, 400, "bad_request").await;
}

#[tokio::test]
async fn absolute_form_target_for_a_foreign_host_is_400() {
    let gw = Gateway::start().await;
    let target = format!("http://evil.example{LIST}");
    let r = refused(&gw, &request(&gw, "GET", &target, "", ""), 400, "bad_request").await;
    by_cpgate(&r);
}

#[tokio::test]
async fn absolute_form_target_naming_the_upstream_is_400() {
    let gw = Gateway::start().await;
    let target = format!("http://{}{LIST}", gw.upstream.addr);
    refused(&gw, &request(&gw, "GET", &target, "", ""), 400, "bad_request").await;
}

#[tokio::test]
async fn absolute_form_target_with_userinfo_is_400() {
    let gw = Gateway::start_with(|s| s.server_extra = "public_base_url = \"https://cpgate.test\"\n".into()).await;
    let target = format!("https://root@cpgate.test{LIST}");
    refused(&gw, &request(&gw, "GET", &target, "", ""), 400, "bad_request").await;
}

#[tokio::test]
async fn absolute_form_target_for_its_own_host_is_forwarded_cleanly() {
    let gw = Gateway::start_with(|s| s.server_extra = "public_base_url = \"https://cpgate.test\"\n".into()).await;
    let target = format!("https://cpgate.test{LIST}");
    let r = raw(gw.addr, &request(&gw, "GET", &target, "", "")).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let got = gw.upstream.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, LIST);
    assert_clean_upstream_request(&got[0]);
}

#[tokio::test]
async fn authority_form_target_is_400() {
    let gw = Gateway::start().await;
    let r = refused(
        &gw,
        &request(&gw, "GET", "evil.example:443", "", ""),
        400,
        "bad_request",
    )
    .await;
    by_cpgate(&r);
}

#[tokio::test]
async fn asterisk_form_target_is_400() {
    let gw = Gateway::start().await;
    refused(&gw, &request(&gw, "GET", "*", "", ""), 400, "bad_request").await;
}

#[tokio::test]
async fn options_asterisk_is_405() {
    let gw = Gateway::start().await;
    refused(&gw, &request(&gw, "OPTIONS", "*", "", ""), 405, "method_not_allowed").await;
}

// --- Methods -------------------------------------------------------------------------------

#[tokio::test]
async fn trace_method_is_405() {
    let gw = Gateway::start().await;
    let r = refused(&gw, &request(&gw, "TRACE", LIST, "", ""), 405, "method_not_allowed").await;
    by_cpgate(&r);
    assert!(
        !String::from_utf8_lossy(&r.body).contains("Bearer"),
        "TRACE must not echo the request"
    );
}

#[tokio::test]
async fn connect_method_is_405() {
    let gw = Gateway::start().await;
    let mut conn = RawConn::open(gw.addr).await;
    conn.write(&request(&gw, "CONNECT", &gw.upstream.addr.to_string(), "", ""))
        .await;
    let r = conn.response().await.expect("an answer to CONNECT");
    assert_eq!(r.status, 405, "{r:?}");
    // No tunnel: the bytes after the refusal are not relayed anywhere.
    conn.write(b"GET /execute/Email/list_pops HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let _ = conn.response().await;
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn lowercase_get_method_is_405() {
    let gw = Gateway::start().await;
    refused(&gw, &request(&gw, "get", LIST, "", ""), 405, "method_not_allowed").await;
    refused(&gw, &request(&gw, "Post", LIST, "", ""), 405, "method_not_allowed").await;
}

#[tokio::test]
async fn put_delete_patch_methods_are_405() {
    let gw = Gateway::start().await;
    for m in ["PUT", "DELETE", "PATCH", "PROPFIND"] {
        refused(&gw, &request(&gw, m, LIST, "", ""), 405, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn head_method_is_405() {
    let gw = Gateway::start().await;
    let mut conn = RawConn::open(gw.addr).await;
    conn.write(&request(&gw, "HEAD", LIST, "", "")).await;
    let r = conn.response_head().await.unwrap();
    assert_eq!(r.status, 405, "{r:?}");
    assert_nothing_forwarded(&gw);
}

// --- Host ----------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_host_header_is_400() {
    let gw = Gateway::start().await;
    let r = refused(
        &gw,
        &request(&gw, "GET", LIST, "Host: evil.example\r\n", ""),
        400,
        "bad_request",
    )
    .await;
    by_cpgate(&r);
}

#[tokio::test]
async fn missing_host_header_is_400() {
    let gw = Gateway::start().await;
    let bytes = format!("GET {LIST} HTTP/1.1\r\nAuthorization: {}\r\n\r\n", gw.bearer("alice"));
    refused(&gw, bytes.as_bytes(), 400, "bad_request").await;
}

#[tokio::test]
async fn http10_request_without_host_is_400() {
    let gw = Gateway::start().await;
    let bytes = format!("GET {LIST} HTTP/1.0\r\nAuthorization: {}\r\n\r\n", gw.bearer("alice"));
    refused(&gw, bytes.as_bytes(), 400, "bad_request").await;
}

#[tokio::test]
async fn host_header_naming_the_upstream_is_not_forwarded() {
    // cpgate always sends cPanel its own Host; a client-chosen Host is never relayed.
    let gw = Gateway::start().await;
    let bytes = format!(
        "GET {LIST} HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {}\r\n\r\n",
        gw.bearer("alice")
    );
    let r = raw(gw.addr, bytes.as_bytes()).await.unwrap();
    assert_eq!(r.status, 200);
    let got = gw.upstream.received();
    assert_clean_upstream_request(&got[0]);
    assert_eq!(got[0].headers["host"], gw.upstream.addr.to_string().as_str());
}

// --- Framing: Content-Length and Transfer-Encoding ------------------------------------------

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
const ADD_POP: &str = "/execute/Email/add_pop";
const ADD_POP_BODY: &str = "email=a&domain=example.com";

#[tokio::test]
async fn transfer_encoding_chunked_chunked_is_400() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Transfer-Encoding: chunked, chunked\r\n");
    let body = format!("{:x}\r\n{ADD_POP_BODY}\r\n0\r\n\r\n", ADD_POP_BODY.len());
    let r = refused(&gw, &request(&gw, "POST", ADD_POP, &extra, &body), 400, "bad_request").await;
    by_cpgate(&r);
}

#[tokio::test]
async fn transfer_encoding_gzip_chunked_is_400() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Transfer-Encoding: gzip, chunked\r\n");
    let body = format!("{:x}\r\n{ADD_POP_BODY}\r\n0\r\n\r\n", ADD_POP_BODY.len());
    refused(&gw, &request(&gw, "POST", ADD_POP, &extra, &body), 400, "bad_request").await;
}

#[tokio::test]
async fn two_transfer_encoding_headers_are_400() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
    let body = format!("{:x}\r\n{ADD_POP_BODY}\r\n0\r\n\r\n", ADD_POP_BODY.len());
    refused(&gw, &request(&gw, "POST", ADD_POP, &extra, &body), 400, "bad_request").await;
}

#[tokio::test]
async fn transfer_encoding_without_chunked_is_400() {
    let gw = Gateway::start().await;
    for te in ["gzip", "chunked, gzip", "identity", "xchunked"] {
        let extra = format!("{FORM}Transfer-Encoding: {te}\r\n");
        refused(
            &gw,
            &request(&gw, "POST", ADD_POP, &extra, ADD_POP_BODY),
            400,
            "bad_request",
        )
        .await;
    }
}

#[tokio::test]
async fn transfer_encoding_on_http10_is_400() {
    let gw = Gateway::start().await;
    let bytes = format!(
        "POST {ADD_POP} HTTP/1.0\r\nHost: x\r\nAuthorization: {}\r\n{FORM}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        gw.bearer("alice")
    );
    refused(&gw, bytes.as_bytes(), 400, "bad_request").await;
}

/// hyper drops `Content-Length` when `Transfer-Encoding` is present before the application
/// sees the request; cpgate's framing tracker (`framing.rs`) reads the raw head and refuses the
/// combination in either order with 400, forwards nothing, and closes the connection, so the
/// second request hidden behind the chunked body is never read.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_400_and_smuggles_nothing() {
    let gw = Gateway::start().await;
    let smuggled = format!(
        "POST /execute/Email/delete_pop HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n{FORM}Content-Length: {}\r\n\r\n{ADD_POP_BODY}",
        gw.bearer("alice"),
        ADD_POP_BODY.len()
    );
    for order in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        "transfer-encoding: chunked\r\nCONTENT-LENGTH: 30\r\n",
    ] {
        let body = format!("{:x}\r\n{ADD_POP_BODY}\r\n0\r\n\r\n{smuggled}", ADD_POP_BODY.len());
        let mut conn = RawConn::open(gw.addr).await;
        conn.write(&request(&gw, "POST", ADD_POP, &format!("{FORM}{order}"), &body))
            .await;
        let first = conn.response().await.unwrap();
        assert_eq!(first.status, 400, "{order:?}: {first:?}");
        assert_eq!(first.code(), "bad_request");
        by_cpgate(&first);
        assert!(conn.closed().await, "the connection must close after a CL+TE request");
    }
    assert_nothing_forwarded(&gw);
}

/// A pipelined request behind a clean one on the same connection: the clean one is judged on
/// its own, the ambiguous one is refused and ends the connection.
#[tokio::test]
async fn content_length_with_transfer_encoding_in_a_pipelined_request_is_400() {
    let gw = Gateway::start().await;
    let clean = request(&gw, "GET", "/execute/Email/list_pops?domain=example.com", "", "");
    let chunked = format!("{:x}\r\n{ADD_POP_BODY}\r\n0\r\n\r\n", ADD_POP_BODY.len());
    let ambiguous = request(
        &gw,
        "POST",
        ADD_POP,
        &format!("{FORM}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
        &chunked,
    );
    let mut conn = RawConn::open(gw.addr).await;
    conn.write(&clean).await;
    let first = conn.response().await.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    conn.write(&ambiguous).await;
    let second = conn.response().await.unwrap();
    assert_eq!(second.status, 400, "{second:?}");
    assert!(conn.closed().await);
    let received = gw.upstream.received();
    assert_eq!(received.len(), 1, "only the clean call reaches cPanel");
    assert_eq!(received[0].target.split('?').next(), Some("/execute/Email/list_pops"));
}

#[tokio::test]
async fn duplicate_content_length_with_different_values_is_400() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Content-Length: {}\r\nContent-Length: 4\r\n", ADD_POP_BODY.len());
    refused(
        &gw,
        &request(&gw, "POST", ADD_POP, &extra, ADD_POP_BODY),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn content_length_list_is_400() {
    let gw = Gateway::start().await;
    let n = ADD_POP_BODY.len();
    let extra = format!("{FORM}Content-Length: {n}, {n}\r\n");
    refused(
        &gw,
        &request(&gw, "POST", ADD_POP, &extra, ADD_POP_BODY),
        400,
        "bad_request",
    )
    .await;
}

/// Identical duplicates are merged by hyper (RFC 9110 §8.6 allows it); cpgate's framing
/// tracker sees both raw fields and refuses, so no two parsers can ever disagree on the body.
#[tokio::test]
async fn duplicate_identical_content_length_is_400() {
    let gw = Gateway::start().await;
    let n = ADD_POP_BODY.len();
    let extra = format!("{FORM}Content-Length: {n}\r\ncontent-length: {n}\r\n");
    let r = refused(
        &gw,
        &request(
            &gw,
            "POST",
            ADD_POP,
            &extra,
            &format!("{ADD_POP_BODY}GET /x HTTP/1.1\r\n\r\n"),
        ),
        400,
        "bad_request",
    )
    .await;
    by_cpgate(&r);
}

#[tokio::test]
async fn signed_or_hex_content_length_is_400() {
    let gw = Gateway::start().await;
    for cl in ["+26", "-1", "0x1a", "2 6", "26;x"] {
        let extra = format!("{FORM}Content-Length: {cl}\r\n");
        refused(
            &gw,
            &request(&gw, "POST", ADD_POP, &extra, ADD_POP_BODY),
            400,
            "bad_request",
        )
        .await;
    }
}

#[tokio::test]
async fn chunk_size_overflow_is_400() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Transfer-Encoding: chunked\r\n");
    let body = "ffffffffffffffffff\r\nabc\r\n0\r\n\r\n";
    let r = raw(gw.addr, &request(&gw, "POST", ADD_POP, &extra, body)).await;
    if let Some(r) = r {
        assert!(r.status == 400 || r.status == 413, "{r:?}");
    }
    assert_nothing_forwarded(&gw);
}

// --- Connection-nominated headers -----------------------------------------------------------

#[tokio::test]
async fn connection_nominating_authorization_is_400() {
    let gw = Gateway::start().await;
    let r = refused(
        &gw,
        &request(&gw, "GET", LIST, "Connection: authorization\r\n", ""),
        400,
        "bad_request",
    )
    .await;
    by_cpgate(&r);
}

#[tokio::test]
async fn connection_nominating_several_headers_including_host_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "Connection: keep-alive, x-foo, host\r\n", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn connection_with_an_empty_first_element_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "Connection: , authorization\r\n", ""),
        400,
        "bad_request",
    )
    .await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "Connection: ,,\tcookie\r\n", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn connection_nominating_mixed_case_authorization_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "Connection: AuThOrIzAtIoN\r\n", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn second_connection_header_nominating_a_protected_header_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(
            &gw,
            "GET",
            LIST,
            "Connection: keep-alive\r\nConnection: Content-Length\r\n",
            "",
        ),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn connection_nominating_framing_cookie_and_forwarding_headers_is_400() {
    let gw = Gateway::start().await;
    for name in [
        "transfer-encoding",
        "content-length",
        "cookie",
        "x-forwarded-for",
        "X-Forwarded-Host",
        "forwarded",
    ] {
        let extra = format!("Connection: {name}\r\n");
        refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 400, "bad_request").await;
    }
}

#[tokio::test]
async fn connection_nominating_an_allow_listed_header_does_not_forward_it() {
    let gw = Gateway::start().await;
    let extra = "Connection: user-agent, accept\r\nUser-Agent: hop/1\r\nAccept: text/hop\r\nAccept-Language: en\r\n";
    let r = raw(gw.addr, &request(&gw, "GET", LIST, extra, "")).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let got = gw.upstream.received();
    assert_clean_upstream_request(&got[0]);
    assert!(
        got[0].headers.get("user-agent").is_none(),
        "a hop-by-hop User-Agent was forwarded"
    );
    assert!(
        got[0].headers.get("accept").is_none(),
        "a hop-by-hop Accept was forwarded"
    );
    assert_eq!(got[0].headers["accept-language"], "en");
}

// --- Header names, sizes and counts ---------------------------------------------------------

#[tokio::test]
async fn underscore_header_name_is_400() {
    let gw = Gateway::start().await;
    for name in ["X_Forwarded_For", "x_cpanel_user", "Authorization_"] {
        let extra = format!("{name}: 1\r\n");
        let r = refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 400, "bad_request").await;
        by_cpgate(&r);
    }
}

#[tokio::test]
async fn whitespace_before_header_colon_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "X-Foo : bar\r\n", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn obsolete_line_folding_is_400() {
    let gw = Gateway::start().await;
    refused(
        &gw,
        &request(&gw, "GET", LIST, "X-Foo: a\r\n b\r\n", ""),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn oversized_header_section_is_431() {
    let gw = Gateway::start().await;
    let extra = format!("X-Big: {}\r\n", "a".repeat(64 * 1024));
    refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 431, "headers_too_large").await;
}

#[tokio::test]
async fn header_bytes_just_over_the_cap_are_431() {
    // Under hyper's 16 KiB read buffer but over max_header_bytes: cpgate's own count.
    let gw = Gateway::start_with(|s| s.server_extra = "max_header_bytes = \"2KiB\"\n".into()).await;
    let extra = format!("X-Big: {}\r\n", "a".repeat(3 * 1024));
    let r = refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 431, "headers_too_large").await;
    assert_eq!(r.status, 431);
}

#[tokio::test]
async fn too_many_headers_are_431() {
    let gw = Gateway::start().await;
    let extra: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 431, "headers_too_large").await;
}

#[tokio::test]
async fn header_count_just_over_the_cap_is_431() {
    let gw = Gateway::start().await;
    // 2 headers from `request` + 63 = 65 > 64.
    let extra: String = (0..63).map(|i| format!("X-H{i}: v\r\n")).collect();
    refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 431, "headers_too_large").await;
}

// --- Bodies -----------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_declared_body_is_413_before_reading() {
    let gw = Gateway::start().await;
    // Only the head is sent: the 413 must come without waiting for 2 MiB.
    let extra = format!("{FORM}Content-Length: {}\r\n", 2 << 20);
    let r = refused(&gw, &request(&gw, "POST", ADD_POP, &extra, ""), 413, "too_large").await;
    by_cpgate(&r);
}

#[tokio::test]
async fn oversized_declared_body_without_credential_is_413() {
    // Size limits come before authentication (contract §5 order).
    let gw = Gateway::start().await;
    let bytes = format!(
        "POST {ADD_POP} HTTP/1.1\r\nHost: x\r\n{FORM}Content-Length: {}\r\n\r\n",
        2 << 20
    );
    refused(&gw, bytes.as_bytes(), 413, "too_large").await;
}

#[tokio::test]
async fn oversized_chunked_body_is_413() {
    let gw = Gateway::start().await;
    let extra = format!("{FORM}Transfer-Encoding: chunked\r\n");
    let chunk = "a".repeat(64 * 1024);
    let mut body = format!("{:x}\r\n{ADD_POP_BODY}&x=\r\n", ADD_POP_BODY.len() + 3);
    for _ in 0..20 {
        body.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    body.push_str("0\r\n\r\n");
    let mut conn = RawConn::open(gw.addr).await;
    let bytes = request(&gw, "POST", ADD_POP, &extra, &body);
    // The server may answer and close before all is written; ignore write errors.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut conn.stream, &bytes).await;
    let r = conn.response().await.expect("a 413");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.code(), "too_large");
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn body_shorter_than_content_length_is_not_forwarded() {
    let gw = Gateway::start_with(|s| s.server_extra = "body_timeout = \"300ms\"\n".into()).await;
    let extra = format!("{FORM}Content-Length: 100\r\n");
    let r = raw(gw.addr, &request(&gw, "POST", ADD_POP, &extra, ADD_POP_BODY))
        .await
        .unwrap();
    assert_eq!(r.status, 408, "{r:?}");
    assert_nothing_forwarded(&gw);
}

// --- Headers never forwarded ------------------------------------------------------------------

#[tokio::test]
async fn hostile_request_headers_on_an_allowed_call_are_not_forwarded() {
    let gw = Gateway::start().await;
    let extra = "Cookie: cpsession=client\r\nProxy-Authorization: Basic YTpi\r\nProxy-Connection: keep-alive\r\n\
                 X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: cpanel.internal\r\nX-Real-IP: 10.0.0.2\r\n\
                 Forwarded: for=10.0.0.3\r\nTE: trailers\r\nUpgrade: websocket\r\nKeep-Alive: 300\r\n\
                 X-Cpanel-User: root\r\nCpsess: cpsess123\r\nReferer: https://cpanel.internal/cpsess1/\r\n\
                 Origin: https://evil.example\r\nUser-Agent: ok/1\r\nAccept: application/json\r\n";
    let r = raw(gw.addr, &request(&gw, "GET", LIST, extra, "")).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let got = gw.upstream.received();
    assert_eq!(got.len(), 1);
    assert_clean_upstream_request(&got[0]);
    assert_eq!(got[0].headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn client_authorization_is_replaced_not_appended() {
    let gw = Gateway::start().await;
    let r = raw(gw.addr, &request(&gw, "GET", LIST, "", "")).await.unwrap();
    assert_eq!(r.status, 200);
    let got = gw.upstream.received();
    assert_clean_upstream_request(&got[0]);
    assert!(!got[0].headers["authorization"].to_str().unwrap().contains("Bearer"));
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let gw = Gateway::start().await;
    let extra = format!("Authorization: cpanel acctuser:{}\r\n", "X".repeat(32));
    refused(&gw, &request(&gw, "GET", LIST, &extra, ""), 400, "bad_request").await;
}

#[tokio::test]
async fn response_set_cookie_and_upstream_location_are_stripped() {
    let gw = Gateway::start().await;
    let r = raw(gw.addr, &request(&gw, "GET", LIST, "", "")).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_none(), "{r:?}");
    assert!(r.header("location").is_none(), "{r:?}");
}

// --- Pipelining ---------------------------------------------------------------------------------

#[tokio::test]
async fn pipelined_requests_are_each_judged_on_their_own() {
    let gw = Gateway::start().await;
    let mut bytes = request(&gw, "GET", LIST, "", "");
    bytes.extend_from_slice(b"GET /execute/Email/delete_pop?email=a HTTP/1.1\r\nHost: x\r\n\r\n");
    bytes.extend_from_slice(&request(
        &gw,
        "GET",
        "/execute/Tokens/create_full_access",
        "Connection: close\r\n",
        "",
    ));
    let mut conn = RawConn::open(gw.addr).await;
    conn.write(&bytes).await;
    let statuses = [
        conn.response().await.unwrap().status,
        conn.response().await.unwrap().status,
        conn.response().await.unwrap().status,
    ];
    assert_eq!(statuses, [200, 401, 403]);
    let got = gw.upstream.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, LIST);
    assert_clean_upstream_request(&got[0]);
}

// --- Property: whatever headers a client sends, cPanel sees only the allow-list ------------------

mod property {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use crate::support::{assert_clean_upstream_request, raw, Gateway};

    struct Shared {
        runtime: tokio::runtime::Runtime,
        gw: Gateway,
    }

    fn shared() -> &'static Shared {
        static S: OnceLock<Shared> = OnceLock::new();
        S.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let gw = runtime.block_on(Gateway::start_with(|s| s.rate_limit = (100_000, 10_000)));
            Shared { runtime, gw }
        })
    }

    const NAMES: &[&str] = &[
        "Accept",
        "Accept-Language",
        "User-Agent",
        "Cookie",
        "Proxy-Authorization",
        "Proxy-Connection",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Real-IP",
        "TE",
        "Trailer",
        "Upgrade",
        "Keep-Alive",
        "Connection",
        "X-Cpanel-User",
        "Referer",
        "Origin",
        "Content-Type",
        "Expect",
        "Via",
        "X-Api-Key",
        "Authorization",
        "Host",
    ];
    const VALUES: &[&str] = &[
        "a",
        "close",
        "keep-alive",
        "accept",
        "user-agent, accept-language",
        "trailers",
        "*/*",
        "",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn forwarded_requests_carry_only_the_master_authorization_and_allow_listed_headers(
            headers in prop::collection::vec((prop::sample::select(NAMES), prop::sample::select(VALUES)), 0..12)
        ) {
            let s = shared();
            let before = s.gw.upstream.received().len();
            let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            let bytes = super::request(&s.gw, "GET", super::LIST, &extra, "");
            let answer = s.runtime.block_on(raw(s.gw.addr, &bytes));
            let got = s.gw.upstream.received();
            if let Some(a) = answer {
                prop_assert!(matches!(a.status, 200 | 400 | 401 | 405 | 417 | 431), "{a:?}");
                prop_assert_eq!(got.len() - before, usize::from(a.status == 200));
            }
            for r in &got[before..] {
                assert_clean_upstream_request(r);
                for (name, _) in &headers {
                    let nominated = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("connection")
                        && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(name)));
                    if nominated {
                        prop_assert!(r.headers.get(*name).is_none(), "nominated {name} forwarded");
                    }
                }
            }
        }
    }
}
