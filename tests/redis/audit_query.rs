//! Two instances' audit files read together: `cpgate audit query` merges them by `ts`.

use crate::{cpgate, path_str, store_lines, Cluster, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_merges_two_instances_files_by_time() {
    let redis = RedisServer::start();
    let cluster = Cluster::new(&store_lines(&redis, "local")).await;
    let a = cluster.instance("a").await;
    let b = cluster.instance("b").await;
    let token = a.token("alice");
    // Alternating calls: the two files interleave in time.
    for _ in 0..5 {
        assert_eq!(a.call(&token).await.status, 200);
        assert_eq!(b.call(&token).await.status, 200);
    }
    let files = [a.app.config.audit.file.clone(), b.app.config.audit.file.clone()];
    a.stop().await;
    b.stop().await;
    let (fa, fb) = (path_str(&files[0]), path_str(&files[1]));

    let (ok, out, err) = cpgate(&["audit", "query", fa, fb, "--developer", "alice"]);
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ts: Vec<&str> = records.iter().map(|r| r["ts"].as_str().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "merged by time: {ts:?}");
    // The `request` records (written before each call was forwarded) alternate between files.
    let from_a = std::fs::read_to_string(&files[0]).unwrap();
    let owners: Vec<char> = records
        .iter()
        .filter(|r| r["event"] == "request")
        .map(|r| {
            let id = r["request_id"].as_str().unwrap();
            if from_a.contains(id) {
                'a'
            } else {
                'b'
            }
        })
        .collect();
    assert_eq!(owners, ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
    let matched = records.len();

    let (ok, table, _) = cpgate(&["audit", "query", fb, fa, "--developer", "alice", "--table"]);
    assert!(ok);
    let rows: Vec<&str> = table.lines().skip(1).map(|r| &r[..27]).collect();
    assert_eq!(rows, ts, "the table is merged the same way");

    // A malformed line: skipped, and located.
    let mut text = std::fs::read_to_string(&files[1]).unwrap();
    let garbage_line = text.lines().count() + 1;
    text.push_str("not json\n");
    std::fs::write(&files[1], text).unwrap();
    let (ok, out, err) = cpgate(&["audit", "query", fa, fb, "--developer", "alice"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), matched);
    assert!(
        err.contains(&format!("warning: {fb}:{garbage_line}: not a JSON record, skipped")),
        "{err}"
    );
}
