//! External logrotate: rename the audit file, send SIGHUP; cpgate writes a new file that
//! continues the chain, and `audit verify OLD NEW` passes.

use std::time::{Duration, Instant};

use crate::support::{verify, Client, Setup, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_rename_continues_the_chain_in_a_new_file_and_verify_old_new_passes() {
    let upstream = Upstream::start().await;
    let setup = Setup::new(&upstream, "batch");
    let audit = setup.files.audit.clone();
    let old = audit.with_extension("jsonl.1");
    let proxy = setup.spawn().await;
    let mut client = Client::connect(setup.addr).await.unwrap();
    let call = |n: usize| format!("/execute/Email/list_pops?domain=example.com&marker=r{n}");
    for n in 0..3 {
        assert_eq!(
            client.send("GET", &call(n), &setup.bearer, "").await.unwrap().status,
            200
        );
    }

    std::fs::rename(&audit, &old).unwrap();
    proxy.signal(nix::sys::signal::Signal::SIGHUP);
    // The writer creates the new file when it handles the reopen; appends after that go there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !audit.exists() {
        assert!(
            Instant::now() < deadline,
            "no new audit file after SIGHUP:\n{}",
            setup.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in 3..6 {
        assert_eq!(
            client.send("GET", &call(n), &setup.bearer, "").await.unwrap().status,
            200
        );
    }
    drop(client);
    proxy.stop().await;

    let in_old = Setup::request_markers(&old);
    let in_new = Setup::request_markers(&audit);
    assert_eq!(in_old, (0..3).map(|n| format!("r{n}")).collect());
    assert_eq!(in_new, (3..6).map(|n| format!("r{n}")).collect());
    let old_records = Setup::records(&old);
    let new_records = Setup::records(&audit);
    assert_eq!(
        new_records[0]["seq"].as_u64().unwrap(),
        old_records.last().unwrap()["seq"].as_u64().unwrap() + 1,
        "seq continues across the files"
    );

    let (ok, out) = verify(&[old.clone(), audit.clone()]);
    assert!(ok, "verify OLD NEW failed: {out}");
    let (alone, out_alone) = verify(std::slice::from_ref(&audit));
    assert!(!alone, "the new file alone must not verify from genesis: {out_alone}");
    assert!(out_alone.contains(":1:"), "broken at line 1: {out_alone}");
}
