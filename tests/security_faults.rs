//! Faults (issue 5 §4): a misbehaving cPanel (refusing, resetting, hanging, garbage, oversized,
//! rejecting the master credential) and misbehaving clients (slowloris, slow bodies, connection
//! floods), graceful shutdown under load, and policy reloads under load.
//!
//! Every loop is bounded in count and time; waits are for events, with deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use support::{assert_clean_upstream_request, Gateway, RawConn, Reply, MASTER};

const LIST: &str = "/execute/Email/list_pops";

/// Waits (polling, with a deadline) until `done` holds.
async fn eventually(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Closes with a TCP RST (SO_LINGER 0, which never blocks on drop).
#[allow(deprecated)]
fn reset(s: TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// A raw cPanel stand-in: for every connection, reads one request head, then runs `behave`.
async fn raw_upstream<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behave = Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let behave = behave.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                behave(stream).await;
            });
        }
    });
    addr
}

async fn gateway_before(upstream: SocketAddr, timeout: &'static str) -> Gateway {
    Gateway::start_with(move |s| {
        s.upstream_url = format!("http://{upstream}");
        s.upstream_timeout = timeout;
    })
    .await
}

async fn list(gw: &Gateway) -> support::Answer {
    gw.send("GET", LIST, &[("authorization", &gw.bearer("alice"))], "")
        .await
}

/// A refusal that names neither the upstream nor the master credential.
/// A listed call through `gw` is answered 502 `upstream_error`, discreetly.
async fn list_is_a_discreet_502(gw: Gateway, upstream: SocketAddr) {
    let a = list(&gw).await;
    assert_eq!(a.status, 502, "{:?}", a.body);
    assert_eq!(a.code(), "upstream_error");
    assert_discreet(&a, upstream);
}

fn assert_discreet(a: &support::Answer, upstream: SocketAddr) {
    let body = String::from_utf8_lossy(&a.body);
    assert!(!body.contains(&upstream.port().to_string()), "upstream named: {body}");
    assert!(
        !body.contains("acctuser") && !body.contains(MASTER),
        "credential named: {body}"
    );
}

// --- A misbehaving cPanel ------------------------------------------------------------------------

#[tokio::test]
async fn upstream_refusing_connections_is_502() {
    // Bound but never listening: connections are refused, and the port stays ours (a dropped
    // listener's port could be reused by a parallel test).
    let closed = TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = closed.local_addr().unwrap();
    list_is_a_discreet_502(gateway_before(addr, "5s").await, addr).await;
}

#[tokio::test]
async fn upstream_resetting_mid_response_is_502() {
    let up = raw_upstream(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"data\":")
            .await;
        reset(s);
    })
    .await;
    list_is_a_discreet_502(gateway_before(up, "5s").await, up).await;
}

#[tokio::test]
async fn upstream_resetting_a_streamed_response_cuts_the_client() {
    let up = raw_upstream(|mut s| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&vec![b'a'; 300 * 1024]).await;
        reset(s);
    })
    .await;
    let gw = gateway_before(up, "5s").await;
    let mut conn = RawConn::open(gw.addr).await;
    conn.write(
        format!(
            "GET {LIST} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
            gw.bearer("alice")
        )
        .as_bytes(),
    )
    .await;
    // The head may already be out; the body must not complete: the client sees the cut.
    let outcome = tokio::task::spawn(async move { conn.response().await }).await;
    // Closed without a response, or truncated (the reader panicked), are both fine.
    if let Ok(Some(r)) = outcome {
        assert!(r.status != 200 || r.body.len() < 10_000_000, "a cut body was completed");
    }
}

#[tokio::test]
async fn upstream_hanging_before_answering_is_504() {
    let up = raw_upstream(|s| async move {
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let gw = gateway_before(up, "300ms").await;
    let started = Instant::now();
    let a = list(&gw).await;
    assert_eq!(a.status, 504);
    assert_eq!(a.code(), "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn upstream_hanging_mid_body_is_504() {
    let up = raw_upstream(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            .await;
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let gw = gateway_before(up, "300ms").await;
    let a = tokio::time::timeout(Duration::from_secs(5), list(&gw))
        .await
        .expect("a hanging upstream body must not hang the client");
    assert_eq!(a.status, 504);
    assert_eq!(a.code(), "upstream_timeout");
}

#[tokio::test]
async fn upstream_not_accepting_connections_times_out() {
    // A listener whose accept queue is full: further SYNs are dropped, so connect hangs.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            fillers.push(s);
        }
    }
    let gw = gateway_before(addr, "10s").await;
    let started = Instant::now();
    let a = tokio::time::timeout(Duration::from_secs(15), list(&gw))
        .await
        .expect("connect timeout applies");
    assert!(a.status == 502 || a.status == 504, "{}", a.status);
    assert!(started.elapsed() < Duration::from_secs(12));
    assert_discreet(&a, addr);
    drop(listener);
}

#[tokio::test]
async fn upstream_answering_garbage_is_502() {
    let up = raw_upstream(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n\x00\xff garbage").await;
        let _ = s.shutdown().await;
    })
    .await;
    list_is_a_discreet_502(gateway_before(up, "5s").await, up).await;
}

#[tokio::test]
async fn upstream_answering_an_oversized_body_is_streamed_whole() {
    const SIZE: usize = 5 << 20;
    let up = raw_upstream(|mut s| async move {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n");
        let _ = s.write_all(head.as_bytes()).await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let gw = gateway_before(up, "5s").await;
    let a = list(&gw).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), SIZE);
}

#[tokio::test]
async fn upstream_401_to_the_master_token_opens_the_circuit_without_retry() {
    let gw = Gateway::start().await;
    gw.upstream.set_reply(Reply::Json(401, "{}".into()));
    let a = list(&gw).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.code(), "upstream_auth_failed");
    gw.upstream.set_reply(Reply::Json(200, "{}".into()));
    for _ in 0..5 {
        assert_eq!(list(&gw).await.code(), "upstream_auth_failed");
    }
    assert_eq!(gw.upstream.received().len(), 1, "one call, no retry, none while open");
    assert!(gw.app.upstreams["default"].circuit_open());
}

#[tokio::test]
async fn upstream_403_to_the_master_token_opens_the_circuit_too() {
    let gw = Gateway::start().await;
    gw.upstream.set_reply(Reply::Json(403, "{}".into()));
    let auth = gw.bearer("alice");
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let a = gw
        .send(
            "POST",
            "/execute/Email/add_pop",
            &[("authorization", &auth), ct],
            "email=a&domain=example.com",
        )
        .await;
    assert_eq!(a.status, 502);
    assert_eq!(a.code(), "upstream_auth_failed");
    assert_eq!(list(&gw).await.code(), "upstream_auth_failed");
    assert_eq!(gw.upstream.received().len(), 1);
}

// --- Misbehaving clients -------------------------------------------------------------------------

/// Normal calls made while the attack runs: each must succeed.
async fn normal_calls(gw: &Gateway, n: usize) {
    for i in 0..n {
        let a = list(gw).await;
        assert_eq!(a.status, 200, "normal call {i} failed during the attack: {:?}", a.body);
    }
}

#[tokio::test]
async fn slowloris_headers_are_cut_while_normal_clients_are_served() {
    let gw = Gateway::start_with(|s| s.server_extra = "header_timeout = \"500ms\"\n".into()).await;
    let addr = gw.addr;
    let cut = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..40 {
        let cut = cut.clone();
        attackers.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = b"GET /execute/Email/list_pops HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let started = Instant::now();
            // One byte every 50 ms for at most 10 s: the server must cut us long before.
            for byte in head.iter().chain(std::iter::repeat(&b'a')).take(200) {
                if s.write_all(&[*byte]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {} // a 408, then the close
                    Err(_) => {}
                }
            }
            if started.elapsed() < Duration::from_secs(5) {
                cut.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    normal_calls(&gw, 20).await;
    for a in attackers {
        a.await.unwrap();
    }
    assert_eq!(
        cut.load(Ordering::Relaxed),
        40,
        "every slow header must be cut by header_timeout"
    );
    assert!(gw.upstream.received().iter().all(|r| r.target == LIST));
}

#[tokio::test]
async fn slow_body_is_408_while_normal_clients_are_served() {
    let gw = Gateway::start_with(|s| s.server_extra = "body_timeout = \"500ms\"\n".into()).await;
    let addr = gw.addr;
    let auth = gw.bearer("alice");
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let auth = auth.clone();
        attackers.push(tokio::spawn(async move {
            let mut conn = RawConn::open(addr).await;
            conn.write(
                format!(
                    "POST /execute/Email/add_pop HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a"
                )
                .as_bytes(),
            )
            .await;
            let started = Instant::now();
            let mut answered = None;
            for _ in 0..100 {
                // A trickle: one byte every 50 ms, until answered (at most 5 s).
                if tokio::io::AsyncWriteExt::write_all(&mut conn.stream, b"a")
                    .await
                    .is_err()
                {
                    break;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(Duration::from_millis(50), conn.stream.peek(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        answered = conn.response().await;
                        break;
                    }
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
            (answered.map(|r| r.status), started.elapsed())
        }));
    }
    normal_calls(&gw, 20).await;
    for a in attackers {
        let (status, took) = a.await.unwrap();
        assert_eq!(status, Some(408));
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
    assert!(
        gw.upstream.received().iter().all(|r| r.target == LIST),
        "no slow body was forwarded"
    );
}

#[tokio::test]
async fn connection_flood_beyond_the_cap_is_refused_while_existing_clients_are_served() {
    const CAP: usize = 16;
    let gw = Gateway::start_with(|s| s.server_extra = format!("max_connections = {CAP}\n")).await;
    // A normal client with a keep-alive connection, opened before the flood.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let normal = |sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>| {
        let req = http::Request::get(LIST)
            .header("host", "x")
            .header("authorization", gw.bearer("alice"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        sender.send_request(req)
    };
    assert_eq!(normal(&mut sender).await.unwrap().status(), 200);
    // The flood: 4x the cap, each connection held open without a byte sent.
    let mut flood = Vec::new();
    for _ in 0..CAP * 4 {
        flood.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // Those beyond the cap are closed at once (EOF), without any work done for them.
    let mut refused = 0;
    for s in &mut flood {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            refused += 1;
        }
    }
    assert!(
        refused >= CAP * 4 - CAP,
        "only {refused} of {} flood connections refused",
        CAP * 4
    );
    // The existing client keeps being served during the flood.
    for _ in 0..10 {
        let response = normal(&mut sender).await.unwrap();
        assert_eq!(response.status(), 200);
        http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
    }
    // When the flood ends, new clients are accepted again.
    drop(flood);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = RawConn::open(gw.addr).await;
        conn.write(
            format!(
                "GET {LIST} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
                gw.bearer("alice")
            )
            .as_bytes(),
        )
        .await;
        if let Some(r) = conn.response().await {
            assert_eq!(r.status, 200);
            break;
        }
        assert!(Instant::now() < until, "slots never came back after the flood");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- Graceful shutdown and reloads under load ------------------------------------------------------

#[tokio::test]
async fn graceful_shutdown_completes_in_flight_calls_and_refuses_new_ones() {
    let gw = Gateway::start().await;
    let addr = gw.addr;
    let (open, gate) = tokio::sync::watch::channel(false);
    gw.upstream.set_reply(Reply::Gate(gate));
    let auth = gw.bearer("alice");
    let mut in_flight = Vec::new();
    for _ in 0..10 {
        let auth = auth.clone();
        in_flight.push(tokio::spawn(async move {
            support::send_to(addr, "GET", LIST, &[("authorization", &auth)], "").await
        }));
    }
    let upstream = gw.upstream.clone();
    eventually("10 calls in flight at cPanel", Duration::from_secs(10), || {
        upstream.received().len() == 10
    })
    .await;
    let stopping = tokio::spawn(gw.stop());
    // New connections are refused (not left hanging in the accept queue) while draining.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(addr).await {
            Err(_) => break,
            Ok(mut s) => {
                let mut buf = [0u8; 1];
                let closed = matches!(
                    tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                );
                if closed {
                    break;
                }
            }
        }
        assert!(Instant::now() < until, "new connections still accepted while draining");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    support::release_held_calls_and_finish_the_drain(open, in_flight, stopping).await;
}

#[tokio::test]
async fn two_hundred_policy_reloads_under_load_fail_no_request() {
    let gw = Arc::new(Gateway::start_with(|s| s.rate_limit = (1_000_000, 1_000_000)).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (gw, stop, served) = (gw.clone(), stop.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let auth = gw.bearer("alice");
            let started = Instant::now();
            // Bounded: until the reloads are done, at most 60 s or 20 000 calls per client.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let a = gw.send("GET", LIST, &[("authorization", &auth)], "").await;
                assert_eq!(a.status, 200, "a call failed during reloads: {:?}", a.body);
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let dir = gw.app.config.policies_dir.clone();
    let alice = std::fs::read_to_string(dir.join("alice.toml")).unwrap();
    for i in 0..200 {
        // Alternate two valid versions, written atomically, and reload.
        let text = if i % 2 == 0 {
            format!("# reload {i}\n{alice}")
        } else {
            alice.clone()
        };
        let tmp = dir.join(".alice.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join("alice.toml")).unwrap();
        gw.app.reload_policies().await.unwrap();
        if i % 20 == 0 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) >= 4, "load ran during the reloads");
    for r in gw.upstream.received().iter().take(50) {
        assert_clean_upstream_request(r);
    }
    let reloads = gw
        .audit_lines()
        .iter()
        .filter(|r| r["event"] == "policy_reload")
        .count();
    assert!(reloads >= 200, "{reloads} reloads audited");
}

// --- Canary over the error paths exercised here ----------------------------------------------------

/// The master-token canary (security.md §3) over every upstream error path this file adds:
/// the token appears in no response, audit record or log line (captured at TRACE).
#[tokio::test]
async fn master_token_never_appears_on_fault_paths() {
    let hang_body = raw_upstream(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{").await;
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let garbage = raw_upstream(|mut s| async move {
        let _ = s.write_all(b"garbage\r\n\r\n").await;
    })
    .await;
    let reset_mid = raw_upstream(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{").await;
        reset(s);
    })
    .await;
    let echo_auth = raw_upstream(|mut s| async move {
        // Echoes the master token back in a header and a streamed body.
        let body = format!("{{\"x\":\"{}\"}}", MASTER.repeat(20_000));
        let head = format!(
            "HTTP/1.1 200 OK\r\nX-Echo: {MASTER}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body.as_bytes()).await;
    })
    .await;
    let mut answers = Vec::new();
    let mut audits = Vec::new();
    for (up, timeout) in [
        (hang_body, "300ms"),
        (garbage, "5s"),
        (reset_mid, "5s"),
        (echo_auth, "5s"),
    ] {
        let gw = Gateway::start_with(move |s| {
            s.upstream_url = format!("http://{up}");
            s.upstream_timeout = timeout;
            s.server_extra = "body_timeout = \"300ms\"\n".into();
        })
        .await;
        answers.push(list(&gw).await);
        let slow = gw
            .send(
                "POST",
                "/execute/Email/add_pop",
                &[("authorization", &gw.bearer("alice")), ("content-length", "5")],
                "",
            )
            .await;
        answers.push(slow);
        audits.push(std::fs::read_to_string(&gw.files.audit).unwrap());
    }
    let gw = Gateway::start().await;
    gw.upstream
        .set_reply(Reply::Json(403, format!("{{\"token\":\"{MASTER}\"}}")));
    answers.push(list(&gw).await);
    answers.push(list(&gw).await);
    audits.push(std::fs::read_to_string(&gw.files.audit).unwrap());

    for a in &answers {
        assert!(!String::from_utf8_lossy(&a.body).contains(MASTER), "{a:?}");
        for (name, value) in &a.headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(MASTER),
                "header {name}"
            );
        }
    }
    for audit in &audits {
        assert!(!audit.is_empty());
        assert!(!audit.contains(MASTER), "an audit record contains the master token");
    }
    let logs = support::logs();
    assert!(logs.lines().count() > 10, "log capture is working");
    assert!(!logs.contains(MASTER), "a log line contains the master token");
}

#[tokio::test]
async fn upstream_stalling_a_streamed_body_cuts_the_client() {
    let up = raw_upstream(|mut s| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&vec![b'a'; 300 * 1024]).await;
        std::future::pending::<()>().await;
        drop(s);
    })
    .await;
    let gw = gateway_before(up, "300ms").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        format!(
            "GET {LIST} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
            gw.bearer("alice")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a stalled upstream body must not hold the client open");
    assert!(total < 10_000_000);
}

// --- Process hygiene ---------------------------------------------------------------------------------

/// `cpgate serve` disables core dumps (security.md §3): a core file could hold the master token.
#[tokio::test]
async fn serve_process_disables_core_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let spec = cpgate::sandbox::SandboxSpec::new("http://127.0.0.1:9".into(), MASTER.into());
    let files = cpgate::sandbox::write(dir.path(), &spec).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cpgate"))
        .args(["serve", "--config"])
        .arg(&files.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait (with a deadline) until the process logged that it listens: hardening ran before.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let listening = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).contains("listening") {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(listening, "cpgate did not start: {}", String::from_utf8_lossy(&seen));
    assert!(
        !String::from_utf8_lossy(&seen).contains(MASTER),
        "start-up output names the master token"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "{core}");
    child.kill().await.unwrap();
}
