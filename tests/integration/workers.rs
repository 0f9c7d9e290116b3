//! Thread-per-core serving (`server.workers`): every serving thread takes connections from the
//! one listening socket, and a graceful stop drains the in-flight calls of all of them.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::net::TcpStream;

use crate::support::{eventually, release_held_calls_and_finish_the_drain, send_to, Gateway, Reply};

const LIST: &str = "/execute/Email/list_pops";

/// A gateway with two serving threads and no rate limit in the way.
async fn two_workers() -> Gateway {
    Gateway::start_with(|s| {
        s.server_extra = "workers = 2\n".into();
        s.rate_limit = (1_000_000, 1_000_000);
    })
    .await
}

/// `cpgate_worker_connections_total` by worker index, from the admin listener.
async fn worker_connections(gw: &Gateway) -> Vec<(u32, u64)> {
    let m = send_to(gw.admin_addr, "GET", "/metrics", &[], "").await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    let mut counts: Vec<(u32, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cpgate_worker_connections_total{worker=\""))
        .map(|rest| {
            let (worker, value) = rest.split_once("\"} ").unwrap();
            (worker.parse().unwrap(), value.parse().unwrap())
        })
        .collect();
    counts.sort_unstable();
    counts
}

fn both_served(counts: &[(u32, u64)]) -> bool {
    counts.len() == 2 && counts.iter().all(|&(_, n)| n > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_are_all_served_and_spread_over_both_workers() {
    const BATCH: u64 = 16;
    const MAX_BATCHES: u64 = 100;
    let gw = two_workers().await;
    let auth = gw.bearer("alice");
    let headers = [("authorization", auth.as_str())];
    let mut opened = 0;
    loop {
        let answers = join_all((0..BATCH).map(|_| send_to(gw.addr, "GET", LIST, &headers, ""))).await;
        opened += BATCH;
        for a in &answers {
            assert_eq!(a.status, 200, "{:?}", a.body);
        }
        let counts = worker_connections(&gw).await;
        assert!(
            counts.iter().all(|&(worker, _)| worker < 2),
            "only workers 0 and 1 exist: {counts:?}"
        );
        assert_eq!(
            counts.iter().map(|&(_, n)| n).sum::<u64>(),
            opened,
            "every connection is counted once, by the thread that took it: {counts:?}"
        );
        if both_served(&counts) {
            break;
        }
        assert!(
            opened < BATCH * MAX_BATCHES,
            "{opened} connections, all taken by one thread: {counts:?}"
        );
    }
    assert_eq!(gw.upstream.received().len() as u64, opened, "every call reached cPanel");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_with_two_workers_drains_in_flight_calls_of_both() {
    let gw = two_workers().await;
    let addr = gw.addr;
    let (open, gate) = tokio::sync::watch::channel(false);
    gw.upstream.set_reply(Reply::Gate(gate));
    let auth = gw.bearer("alice");
    // Calls held at cPanel until both threads have some in flight.
    let mut in_flight = Vec::new();
    while !both_served(&worker_connections(&gw).await) {
        assert!(in_flight.len() < 200, "200 connections, all taken by one thread");
        let auth = auth.clone();
        in_flight.push(tokio::spawn(async move {
            send_to(addr, "GET", LIST, &[("authorization", &auth)], "").await
        }));
        let upstream = gw.upstream.clone();
        let expected = in_flight.len();
        let waited = eventually(Duration::from_secs(10), || {
            let upstream = upstream.clone();
            async move { upstream.received().len() == expected }
        })
        .await;
        assert!(waited.is_some(), "call {expected} never reached cPanel");
    }
    let stopping = tokio::spawn(gw.stop());
    // Both threads close their copy of the listening socket: new connections are refused.
    let refused = eventually(Duration::from_secs(10), || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(refused.is_some(), "new connections still accepted while draining");
    release_held_calls_and_finish_the_drain(open, in_flight, stopping).await;
}
