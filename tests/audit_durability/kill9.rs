//! kill -9 in a loop under concurrent load: nothing cPanel received is missing from the audit
//! log, the chain verifies, and torn tails are recovered.

use std::collections::HashSet;
use std::io::Write as _;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::watch;

use crate::support::{verify, Client, Setup, Upstream};

/// Restarts (each ended by SIGKILL at a random moment).
const RESTARTS: usize = 24;
/// Concurrent client connections.
const CLIENTS: usize = 16;
/// Every 4th restart also finds a torn record appended while cpgate was down (what a crash
/// inside a large `write(2)`, or power loss, leaves). SIGKILL alone rarely tears a line: the
/// kernel finishes a small `write(2)` before the process dies.
const INJECT_EVERY: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Up(usize),
    Down,
    Stop,
}

/// One client: a keep-alive connection sending calls with unique markers; when cpgate dies it
/// waits for the next start (no sleeps: it waits on the phase channel).
async fn client(
    id: usize,
    setup_addr: std::net::SocketAddr,
    bearer: String,
    mut phase: watch::Receiver<Phase>,
) -> usize {
    let mut sent = 0usize;
    loop {
        let now = *phase.borrow_and_update();
        match now {
            Phase::Stop => return sent,
            Phase::Down => {
                if phase.changed().await.is_err() {
                    return sent;
                }
                continue;
            }
            Phase::Up(_) => {}
        }
        let mut conn = match Client::connect(setup_addr).await {
            Ok(c) => c,
            Err(_) => {
                if phase.changed().await.is_err() {
                    return sent;
                }
                continue;
            }
        };
        loop {
            if *phase.borrow() == Phase::Stop {
                return sent;
            }
            let target = format!("/execute/Email/list_pops?domain=example.com&marker=c{id}-{sent}");
            sent += 1;
            match conn.send("GET", &target, &bearer, "").await {
                Ok(answer) => assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body)),
                Err(_) => break,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_every_forwarded_call_has_its_request_record_and_the_chain_verifies() {
    let started = Instant::now();
    let upstream = Upstream::start().await;
    let setup = Setup::new(&upstream, "batch");
    let audit = setup.files.audit.clone();
    let (phase_tx, phase_rx) = watch::channel(Phase::Down);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(id, setup.addr, setup.bearer.clone(), phase_rx.clone())))
        .collect();

    let modes = ["batch", "never", "always"];
    let (mut natural_torn, mut injected, mut kill_points) = (0usize, 0usize, Vec::new());
    for round in 0..RESTARTS {
        setup.set_fsync(modes[round % modes.len()]);
        let text = std::fs::read(&audit).unwrap_or_default();
        let torn_now = !text.is_empty() && !text.ends_with(b"\n");
        natural_torn += usize::from(torn_now);
        if round % INJECT_EVERY == INJECT_EVERY - 1 && !torn_now {
            let mut f = std::fs::OpenOptions::new().append(true).open(&audit).unwrap();
            f.write_all(b"{\"ts\":\"2026-01-01T00:00:00.000000Z\",\"seq\":99999,\"prev\":\"00")
                .unwrap();
            injected += 1;
        }

        let proxy = setup.spawn().await;
        phase_tx.send_replace(Phase::Up(round));
        // Kill after a random number of further calls reached cPanel: a random moment under
        // load, chosen by progress rather than by a timer.
        let more = rand::rng().random_range(1..=300);
        let target = upstream.count() + more;
        let reached = upstream
            .wait_for(target, Instant::now() + Duration::from_secs(20))
            .await;
        assert!(reached, "round {round}: load stalled:\n{}", setup.log());
        kill_points.push(more);
        proxy.kill9().await;
        phase_tx.send_replace(Phase::Down);
    }

    // A last start recovers the tail of the last kill; SIGTERM then stops it cleanly.
    let text = std::fs::read(&audit).unwrap();
    natural_torn += usize::from(!text.is_empty() && !text.ends_with(b"\n"));
    phase_tx.send_replace(Phase::Stop);
    let mut sent = 0;
    for c in clients {
        sent += c.await.unwrap();
    }
    let proxy = setup.spawn().await;
    proxy.stop().await;

    let received = upstream.markers();
    let recorded = Setup::request_markers(&audit);
    let missing: Vec<&String> = received.iter().filter(|m| !recorded.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "calls cPanel received without a request record: {missing:?}"
    );
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "markers are unique");

    let (ok, out) = verify(std::slice::from_ref(&audit));
    assert!(ok, "audit verify failed: {out}");
    let recovered = Setup::records(&audit)
        .iter()
        .filter(|r| r["event"] == "recovered")
        .count();
    assert_eq!(
        recovered,
        natural_torn + injected,
        "one recovered record per torn tail found at start"
    );
    assert!(injected >= RESTARTS / INJECT_EVERY - 1);
    eprintln!(
        "kill -9 loop: {RESTARTS} kills in {:.1?}, {} calls forwarded ({sent} sent, {} request \
         records), torn tails recovered: {natural_torn} from kill -9 + {injected} injected; {out}",
        started.elapsed(),
        received.len(),
        recorded.len(),
    );
    let _ = kill_points;
}
