//! The listener: TLS with HTTP/1.1 and HTTP/2 by ALPN, header-read timeout, connection cap,
//! idle timeout, and policy reload when the folder changes.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{eventually, Gateway, RawConn, UAPI_OK};

async fn tls_get(gw: &Gateway, http2: bool, path: &str) -> (http::Version, u16, Bytes) {
    tls_get_trusting(gw, gw.files.ca.as_deref().unwrap(), http2, path)
        .await
        .unwrap()
}

async fn tls_get_trusting(
    gw: &Gateway,
    ca: &std::path::Path,
    http2: bool,
    path: &str,
) -> Result<(http::Version, u16, Bytes), hyper_util::client::legacy::Error> {
    let tls = cpgate::tls::client_config(Some(ca), None).unwrap();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let connector = if http2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let client = Client::builder(TokioExecutor::new()).http2_only(http2).build(connector);
    let req = http::Request::get(format!("https://localhost:{}{path}", gw.addr.port()))
        .header("authorization", gw.bearer("alice"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(req).await?;
    let version = response.version();
    let status = response.status().as_u16();
    Ok((
        version,
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    ))
}

#[tokio::test]
async fn renewed_certificate_is_served_after_reload_without_a_restart() {
    let gw = Gateway::start_with(|s| s.tls = true).await;
    let old_ca = gw.files.ca.clone().unwrap();
    assert!(tls_get_trusting(&gw, &old_ca, false, "/execute/Email/list_pops")
        .await
        .is_ok());
    let dir = old_ca.parent().unwrap();
    let (ca, chain, key) = cpgate::tls::test_ca_and_server(&["localhost"]).unwrap();
    let new_ca = dir.join("renewed-ca.pem");
    std::fs::write(&new_ca, ca).unwrap();
    std::fs::write(dir.join("proxy.crt"), chain).unwrap();
    std::fs::write(dir.join("proxy.key"), key).unwrap();
    gw.reload_tls().unwrap();
    let (_, status, _) = tls_get_trusting(&gw, &new_ca, false, "/execute/Email/list_pops")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(tls_get_trusting(&gw, &old_ca, false, "/execute/Email/list_pops")
        .await
        .is_err());
    // A broken renewal keeps the current certificate.
    std::fs::write(dir.join("proxy.key"), "not a key").unwrap();
    assert!(gw.reload_tls().is_err());
    assert!(tls_get_trusting(&gw, &new_ca, false, "/execute/Email/list_pops")
        .await
        .is_ok());
}

#[tokio::test]
async fn tls_serves_http1_and_http2_by_alpn_with_the_same_pipeline() {
    let gw = Gateway::start_with(|s| s.tls = true).await;
    let (v1, s1, b1) = tls_get(&gw, false, "/execute/Email/list_pops").await;
    assert_eq!((v1, s1), (http::Version::HTTP_11, 200));
    assert_eq!(&b1[..], UAPI_OK.as_bytes());
    let (v2, s2, b2) = tls_get(&gw, true, "/execute/Email/list_pops").await;
    assert_eq!((v2, s2), (http::Version::HTTP_2, 200));
    assert_eq!(&b2[..], UAPI_OK.as_bytes());
    let (_, denied, _) = tls_get(&gw, true, "/execute/Email/delete_pop").await;
    assert_eq!(denied, 403, "HTTP/2 goes through the same policy");
    let (_, bad, _) = tls_get(&gw, true, "/execute/Email/list_pops%2F").await;
    assert_eq!(bad, 400, "HTTP/2 goes through the same classification");
    assert_eq!(gw.upstream.received().len(), 2);
}

/// Reads until the server closes the connection; fails if that takes longer than `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .expect("server did not close the connection in time");
    seen
}

#[tokio::test]
async fn slowloris_partial_headers_are_cut_at_the_header_timeout() {
    let gw = Gateway::start_with(|s| s.server_extra = "header_timeout = \"300ms\"\n".into()).await;
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /execute/Email/list_pops HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    closed_within(&mut slow, Duration::from_secs(5)).await;
    // A normal client is still served.
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let gw = Gateway::start_with(|s| s.server_extra = "idle_timeout = \"300ms\"\n".into()).await;
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    closed_within(&mut idle, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn connections_beyond_max_connections_are_closed_at_once() {
    let gw = Gateway::start_with(|s| s.server_extra = "max_connections = 2\n".into()).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(gw.addr).await.unwrap();
        // A complete request proves the connection was accepted and is being served.
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        assert!(buf.starts_with(b"HTTP/1.1"));
        held.push(c);
    }
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = closed_within(&mut third, Duration::from_secs(5)).await;
    assert!(
        answer.is_empty(),
        "the third connection got an answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
}

#[tokio::test]
async fn policy_folder_change_reloads_and_an_invalid_file_keeps_the_old_set() {
    let gw = Gateway::start().await;
    let dir = gw.app.config.policies_dir.clone();
    assert!(gw.app.policies.load().get("newdev").is_none());
    std::fs::write(dir.join("newdev.toml"), "[[allow]]\ncalls = [\"Email::list_pops\"]\n").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gw.app.policies.load().get("newdev").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "reload not seen within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = gw.get_as("newdev", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);

    // An invalid file: the reload fails as a whole, the previous set stays in force.
    std::fs::write(dir.join("broken.toml"), "[[allow]]\ncalls = [\"no pattern\"]\n").unwrap();
    let result = gw.app.reload_policies().await;
    assert!(result.unwrap_err().contains("broken.toml:2:"));
    assert!(gw.app.policies.load().get("newdev").is_some());
    let a = gw.get_as("newdev", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);
    let reloads: Vec<_> = gw
        .audit_lines()
        .into_iter()
        .filter(|r| r["event"] == "policy_reload")
        .collect();
    assert!(reloads.iter().any(|r| r["decision"] == "error"));
}

/// The current value of the `parked_connections` gauge, from `/metrics`.
async fn parked(gw: &Gateway) -> Option<u64> {
    let m = crate::support::send_to(gw.admin_addr, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    text.lines()
        .find(|l| l.starts_with("cpgate_parked_connections "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// An idle keep-alive connection is parked (hyper's buffers released) and still serves the
/// client's next request on the same socket, however long the pause.
#[tokio::test]
async fn a_parked_keep_alive_connection_serves_its_next_request() {
    let gw = Gateway::start().await;
    let request = format!(
        "GET /execute/Email/list_pops?domain=example.com HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        gw.bearer("alice")
    );
    let mut conn = RawConn::open(gw.addr).await;
    for round in 0..3 {
        conn.write(request.as_bytes()).await;
        let r = conn.response().await.expect("an answer");
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        let parked_now = eventually(Duration::from_secs(5), || async { parked(&gw).await == Some(1) }).await;
        assert!(
            parked_now.is_some(),
            "round {round}: the idle connection was not parked"
        );
    }
    assert_eq!(gw.upstream.received().len(), 3);
}

/// A client that asks to close (HTTP/1.0, or `Connection: close`) gets its answer and then the
/// connection closes: only a connection hyper would keep alive is parked.
#[tokio::test]
async fn http10_and_connection_close_requests_close_after_the_answer() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    for (version, extra) in [("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")] {
        let mut conn = RawConn::open(gw.addr).await;
        let request = format!(
            "GET /execute/Email/list_pops?domain=example.com {version}\r\nHost: x\r\nAuthorization: {auth}\r\n{extra}\r\n"
        );
        conn.write(request.as_bytes()).await;
        let r = conn.response().await.expect("an answer");
        assert_eq!(r.status, 200, "{version}: {r:?}");
        assert!(conn.closed().await, "{version} {extra:?}: the connection must close");
    }
}
