//! The master-token canary: after traffic of every kind, at the most verbose log level, the
//! master token appears in no log line, audit record, response header or body.

use crate::support::{logs, raw, Gateway, Reply, MASTER};

#[tokio::test]
async fn master_token_never_appears_in_logs_audit_or_responses() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let mut answers = Vec::new();
    answers.push(
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await,
    );
    answers.push(
        gw.send(
            "POST",
            "/execute/Email/add_pop",
            &[
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "email=a&domain=example.com&password=x",
        )
        .await,
    );
    answers.push(
        gw.send("GET", "/execute/Email/delete_pop", &[("authorization", &auth)], "")
            .await,
    );
    answers.push(gw.send("GET", "/execute/Email/list_pops", &[], "").await);
    gw.upstream
        .set_reply(Reply::Json(200, format!("{{\"leak\":\"{MASTER}\"}}")));
    answers.push(
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await,
    );
    gw.upstream.set_reply(Reply::Json(401, "{}".into()));
    answers.push(
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await,
    );
    answers.push(
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await,
    );

    // The framing refusal (`framing.rs`): answered before any other step.
    let smuggle = format!(
        "POST /execute/Email/add_pop HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let refused = raw(gw.addr, smuggle.as_bytes()).await.expect("an answer");
    assert_eq!(refused.status, 400);
    assert!(!format!("{refused:?}").contains(MASTER), "{refused:?}");

    for a in &answers {
        assert!(!String::from_utf8_lossy(&a.body).contains(MASTER), "{a:?}");
        for (name, value) in &a.headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(MASTER),
                "header {name}"
            );
        }
    }
    let audit = std::fs::read_to_string(&gw.files.audit).unwrap();
    assert!(audit.lines().count() >= 8);
    assert!(!audit.contains(MASTER), "audit log contains the master token");
    assert!(!format!("{:?}", gw.app.config).contains(MASTER));
    gw.upstream.requests.lock().unwrap().clear();
    let logs = logs();
    assert!(logs.lines().count() > 10, "log capture is working");
    assert!(!logs.contains(MASTER), "a log line contains the master token");
}
