//! The same request validation over HTTP/2: h2c with prior knowledge (hyper's client, and raw
//! frames for what the client refuses to send), and h2 negotiated by ALPN over TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{assert_clean_upstream_request, assert_nothing_forwarded, Gateway, RAW_DEADLINE};

/// An HTTP/2 answer: status and body, or the stream/connection error.
type H2Result = Result<(u16, Bytes), String>;

async fn h2_send_on<I>(io: I, requests: Vec<Request<Full<Bytes>>>) -> Vec<H2Result>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for req in requests {
        let answer = tokio::time::timeout(RAW_DEADLINE, async {
            let response = sender.send_request(req).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| format!("{e:?}"))?;
            Ok((status, body.to_bytes()))
        })
        .await
        .expect("HTTP/2 answer in time");
        out.push(answer);
    }
    out
}

/// Sends one request over h2c (prior knowledge) on a fresh connection.
async fn h2c(addr: SocketAddr, req: Request<Full<Bytes>>) -> H2Result {
    let stream = TcpStream::connect(addr).await.unwrap();
    h2_send_on(stream, vec![req]).await.remove(0)
}

fn get(gw: &Gateway, path: &str) -> http::request::Builder {
    Request::builder()
        .method("GET")
        .uri(format!("http://{}{path}", gw.addr))
        .header("authorization", gw.bearer("alice"))
}

fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

fn code(body: &Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["metadata"]["cpgate"]["code"].as_str().unwrap_or("").to_owned()
}

/// Asserts a refusal with `status` (or a stream reset when `reset_ok`) and nothing forwarded.
fn assert_h2_refused(gw: &Gateway, answer: &H2Result, status: u16) {
    match answer {
        Ok((s, body)) => {
            assert_eq!(*s, status, "{body:?}");
            assert!(!code(body).is_empty(), "a cpgate refusal body: {body:?}");
        }
        Err(e) => panic!("expected HTTP {status}, got {e}"),
    }
    assert_nothing_forwarded(gw);
}

#[tokio::test]
async fn h2_allowed_call_is_forwarded_with_only_the_master_authorization() {
    let gw = Gateway::start().await;
    let req = get(&gw, "/execute/Email/list_pops")
        .header("cookie", "cpsession=client")
        .header("x-forwarded-for", "10.0.0.1")
        .header("proxy-authorization", "Basic YTpi")
        .header("user-agent", "h2/1")
        .body(empty())
        .unwrap();
    let (status, _) = h2c(gw.addr, req).await.unwrap();
    assert_eq!(status, 200);
    let got = gw.upstream.received();
    assert_eq!(got.len(), 1);
    assert_clean_upstream_request(&got[0]);
}

#[tokio::test]
async fn h2_dot_dot_path_is_400() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/../Tokens/create_full_access")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 400);
}

#[tokio::test]
async fn h2_percent_encoded_dot_dot_and_slash_are_400() {
    let gw = Gateway::start().await;
    for path in ["/execute/Email/%2e%2e/x/list_pops", "/execute/Email%2flist_pops"] {
        let a = h2c(gw.addr, get(&gw, path).body(empty()).unwrap()).await;
        assert_h2_refused(&gw, &a, 400);
    }
}

#[tokio::test]
async fn h2_double_slash_and_semicolon_paths_are_400() {
    let gw = Gateway::start().await;
    for path in ["/execute//Email/list_pops", "/execute/Email/list_pops;x"] {
        let a = h2c(gw.addr, get(&gw, path).body(empty()).unwrap()).await;
        assert_h2_refused(&gw, &a, 400);
    }
}

#[tokio::test]
async fn h2_trace_method_is_405() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .method("TRACE")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 405);
}

#[tokio::test]
async fn h2_lowercase_get_method_is_405() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .method("get")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 405);
}

#[tokio::test]
async fn h2_host_header_disagreeing_with_authority_is_400() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .header("host", "evil.example")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 400);
}

#[tokio::test]
async fn h2_duplicate_host_headers_are_400() {
    let gw = Gateway::start().await;
    let authority = gw.addr.to_string();
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .header("host", authority.as_str())
            .header("host", authority.as_str())
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 400);
}

#[tokio::test]
async fn h2_underscore_header_name_is_400() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .header("x_cpanel_user", "root")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 400);
}

#[tokio::test]
async fn h2_two_authorization_headers_are_400() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .header("authorization", "cpanel acctuser:XXXX")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_h2_refused(&gw, &a, 400);
}

#[tokio::test]
async fn h2_too_many_headers_are_431() {
    let gw = Gateway::start().await;
    let mut b = get(&gw, "/execute/Email/list_pops");
    for i in 0..80 {
        b = b.header(format!("x-h{i}"), "v");
    }
    let a = h2c(gw.addr, b.body(empty()).unwrap()).await;
    match a {
        Ok((s, _)) => assert_eq!(s, 431),
        // Over the advertised header-list size the stream may be refused outright.
        Err(e) => assert!(e.contains("Reset") || e.contains("GoAway") || e.contains("rror"), "{e}"),
    }
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_oversized_header_list_is_refused() {
    let gw = Gateway::start().await;
    let a = h2c(
        gw.addr,
        get(&gw, "/execute/Email/list_pops")
            .header("x-big", "a".repeat(64 * 1024))
            .body(empty())
            .unwrap(),
    )
    .await;
    if let Ok((s, _)) = a {
        assert_eq!(s, 431);
    }
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_oversized_declared_body_is_413() {
    let gw = Gateway::start().await;
    let req = get(&gw, "/execute/Email/add_pop")
        .method("POST")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", (2u64 << 20).to_string())
        .body(empty())
        .unwrap();
    let a = h2c(gw.addr, req).await;
    if let Ok((s, _)) = &a {
        assert_eq!(*s, 413);
    }
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_oversized_body_is_413() {
    let gw = Gateway::start().await;
    let body = format!("email=a&domain=example.com&x={}", "a".repeat(2 << 20));
    let req = get(&gw, "/execute/Email/add_pop")
        .method("POST")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let a = h2c(gw.addr, req).await;
    if let Ok((s, _)) = &a {
        assert_eq!(*s, 413);
    }
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_connect_method_is_refused() {
    let gw = Gateway::start().await;
    let out = raw_h2(
        gw.addr,
        &[(":method", "CONNECT"), (":authority", &gw.upstream.addr.to_string())],
        &[("authorization", &gw.bearer("alice"))],
    )
    .await;
    assert!(!matches!(out, H2Outcome::Status(200)), "{out:?}");
    assert_nothing_forwarded(&gw);
}

// --- Raw frames: what an HTTP/2 client library will not send ---------------------------------

#[tokio::test]
async fn h2_connection_specific_headers_reset_the_stream() {
    let gw = Gateway::start().await;
    for (name, value) in [
        ("connection", "authorization"),
        ("transfer-encoding", "chunked"),
        ("keep-alive", "300"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ] {
        let out = raw_h2(
            gw.addr,
            &pseudo(&gw, "GET", "/execute/Email/list_pops"),
            &[("authorization", gw.bearer("alice")), (name, value.to_owned())],
        )
        .await;
        assert!(
            matches!(out, H2Outcome::Reset(_) | H2Outcome::GoAway(_) | H2Outcome::Status(400)),
            "{name}: {out:?}"
        );
    }
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_uppercase_header_name_resets_the_stream() {
    let gw = Gateway::start().await;
    let out = raw_h2(
        gw.addr,
        &pseudo(&gw, "GET", "/execute/Email/list_pops"),
        &[("Authorization", &gw.bearer("alice"))],
    )
    .await;
    assert!(!matches!(out, H2Outcome::Status(200)), "{out:?}");
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_duplicate_path_pseudo_header_is_refused() {
    let gw = Gateway::start().await;
    let mut p = pseudo(&gw, "GET", "/execute/Email/list_pops");
    p.push((":path", "/execute/Tokens/create_full_access".into()));
    let out = raw_h2(gw.addr, &p, &[("authorization", &gw.bearer("alice"))]).await;
    assert!(!matches!(out, H2Outcome::Status(200)), "{out:?}");
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_missing_authority_and_host_is_400() {
    let gw = Gateway::start().await;
    let out = raw_h2(
        gw.addr,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/execute/Email/list_pops"),
        ],
        &[("authorization", &gw.bearer("alice"))],
    )
    .await;
    assert!(matches!(out, H2Outcome::Status(400) | H2Outcome::Reset(_)), "{out:?}");
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_asterisk_path_is_refused() {
    let gw = Gateway::start().await;
    let out = raw_h2(
        gw.addr,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "*"),
            (":authority", &gw.addr.to_string()),
        ],
        &[("authorization", &gw.bearer("alice"))],
    )
    .await;
    assert!(!matches!(out, H2Outcome::Status(200)), "{out:?}");
    assert_nothing_forwarded(&gw);
}

#[tokio::test]
async fn h2_rapid_reset_flood_is_cut_and_others_are_served() {
    // CVE-2023-44487: open and reset streams as fast as possible; hyper >= 1.6 bounds this.
    let gw = Gateway::start().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    let block = hpack(
        &pseudo(&gw, "GET", "/execute/Email/list_pops")
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        burst.extend_from_slice(&frame(1, 0x4, id, &block));
        burst.extend_from_slice(&frame(3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
    }
    let _ = s.write_all(&burst).await;
    // The server must end this connection (GOAWAY or close) within the deadline.
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(RAW_DEADLINE, async {
        let mut seen = Vec::new();
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if frames(&seen).iter().any(|(t, _, _, _)| *t == 7) {
                        return true;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(ended, "a rapid-reset flood must end the connection");
    let (status, _) = h2c(gw.addr, get(&gw, "/execute/Email/list_pops").body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200, "other clients are still served");
    // Unauthenticated HEADERS carry no credential: nothing was forwarded for the flood.
    assert_eq!(gw.upstream.received().len(), 1);
}

// --- TLS with ALPN ------------------------------------------------------------------------------

#[tokio::test]
async fn h2_over_tls_by_alpn_applies_the_same_checks() {
    let gw = Gateway::start_with(|s| s.tls = true).await;
    let ca = gw.files.ca.clone().unwrap();
    let mut config = cpgate::tls::client_config(Some(&ca), None).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "h2 negotiated by ALPN"
    );
    let base = format!("https://localhost:{}", gw.addr.port());
    let auth = gw.bearer("alice");
    let req = |path: &str| {
        Request::builder()
            .uri(format!("{base}{path}"))
            .header("authorization", auth.as_str())
    };
    let answers = h2_send_on(
        tls,
        vec![
            req("/execute/Email/../Tokens/create_full_access")
                .body(empty())
                .unwrap(),
            req("/execute/Email/list_pops")
                .header("x_forwarded_for", "1")
                .body(empty())
                .unwrap(),
            req("/execute/Email/list_pops").method("TRACE").body(empty()).unwrap(),
            req("/execute/Email/list_pops")
                .header("host", "evil.example")
                .body(empty())
                .unwrap(),
        ],
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.as_ref().unwrap().0).collect();
    assert_eq!(statuses, vec![400, 400, 405, 400]);
    assert_nothing_forwarded(&gw);
}

// --- A minimal HTTP/2 frame writer/reader -----------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, PartialEq)]
enum H2Outcome {
    /// HEADERS on stream 1; the status when it is a static-table one (200, 204, 206, 304, 400,
    /// 404, 500), else 0 (some other, non-200 status).
    Status(u16),
    Reset(u32),
    GoAway(u32),
    Closed,
}

fn pseudo(gw: &Gateway, method: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", method.to_owned()),
        (":scheme", "http".to_owned()),
        (":path", path.to_owned()),
        (":authority", gw.addr.to_string()),
    ]
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK integer with an `n`-bit prefix.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// Every field as a literal without indexing, new name, no Huffman.
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.push(0);
        hpack_int(&mut out, 0, 7, k.len());
        out.extend_from_slice(k.as_bytes());
        hpack_int(&mut out, 0, 7, v.len());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Complete frames in `buf`: (type, flags, stream, payload).
fn frames(buf: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 9 {
        let len = (usize::from(buf[at]) << 16) | (usize::from(buf[at + 1]) << 8) | usize::from(buf[at + 2]);
        if buf.len() < at + 9 + len {
            break;
        }
        let stream = u32::from_be_bytes([buf[at + 5], buf[at + 6], buf[at + 7], buf[at + 8]]) & 0x7fff_ffff;
        out.push((buf[at + 3], buf[at + 4], stream, buf[at + 9..at + 9 + len].to_vec()));
        at += 9 + len;
    }
    out
}

/// Sends one HEADERS frame (END_STREAM | END_HEADERS) on stream 1 with these fields, in order,
/// and reports what the server did with it.
async fn raw_h2<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>, D: AsRef<str>>(
    addr: SocketAddr,
    pseudo: &[(A, B)],
    fields: &[(C, D)],
) -> H2Outcome {
    let mut all: Vec<(&str, &str)> = pseudo.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    all.extend(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = PREFACE.to_vec();
    out.extend_from_slice(&frame(4, 0, 0, &[]));
    out.extend_from_slice(&frame(1, 0x5, 1, &hpack(&all)));
    s.write_all(&out).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut acked = false;
    tokio::time::timeout(RAW_DEADLINE, async {
        loop {
            for (kind, flags, stream, payload) in frames(&seen) {
                match kind {
                    4 if flags & 1 == 0 && !acked => {
                        acked = true;
                        let _ = s.write_all(&frame(4, 1, 0, &[])).await;
                    }
                    1 if stream == 1 => {
                        let status = match payload.first() {
                            Some(0x88) => 200,
                            Some(0x89) => 204,
                            Some(0x8a) => 206,
                            Some(0x8b) => 304,
                            Some(0x8c) => 400,
                            Some(0x8d) => 404,
                            Some(0x8e) => 500,
                            _ => 0,
                        };
                        return H2Outcome::Status(status);
                    }
                    3 if stream == 1 => {
                        return H2Outcome::Reset(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]))
                    }
                    7 => {
                        return H2Outcome::GoAway(u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]))
                    }
                    _ => {}
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return H2Outcome::Closed,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("an HTTP/2 answer in time")
}
