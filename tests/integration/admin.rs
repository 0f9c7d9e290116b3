//! The admin listener: health, readiness and Prometheus metrics after known traffic.

use crate::support::{send_to, Gateway, Reply};

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_known_traffic_by_developer_call_decision_and_status() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    for _ in 0..2 {
        assert_eq!(
            gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
    assert_eq!(
        gw.send("GET", "/execute/Email/delete_pop", &[("authorization", &auth)], "")
            .await
            .status,
        403
    );
    assert_eq!(gw.send("GET", "/execute/Email/list_pops", &[], "").await.status, 401);
    let limited = gw.bearer("limited");
    for _ in 0..3 {
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &limited)], "")
            .await;
    }

    let m = send_to(gw.admin_addr, "GET", "/metrics", &[], "").await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    let series = |labels: &str| format!("cpgate_requests_total{{{labels}}}");
    assert_eq!(
        value(
            &text,
            &series("developer=\"alice\",api=\"uapi\",call=\"Email::list_pops\",decision=\"allow\",status=\"200\"")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &series("developer=\"alice\",api=\"uapi\",call=\"Email::delete_pop\",decision=\"deny\",status=\"403\"")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &series("developer=\"-\",api=\"-\",call=\"-\",decision=\"deny\",status=\"401\"")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "cpgate_rate_limited_total{developer=\"limited\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "cpgate_request_duration_seconds_count"), Some(7.0));
    assert_eq!(value(&text, "cpgate_upstream_duration_seconds_count"), Some(4.0));
    assert_eq!(value(&text, "cpgate_audit_write_errors_total"), Some(0.0));
    let (seq, head) = gw.app.audit.head();
    assert_eq!(value(&text, "cpgate_audit_chain_seq"), Some(seq as f64));
    assert!(text.contains(&format!("cpgate_audit_chain_head{{hash=\"{head}\"}} 1")));
    assert!(!text.contains(crate::support::MASTER));
}

#[tokio::test]
async fn readyz_fails_while_the_upstream_circuit_is_open() {
    let gw = Gateway::start().await;
    assert_eq!(send_to(gw.admin_addr, "GET", "/healthz", &[], "").await.status, 200);
    let ready = send_to(gw.admin_addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);
    let body = String::from_utf8_lossy(&ready.body);
    assert!(body.starts_with("ready\n") && body.contains("store: memory"), "{body}");
    gw.upstream.set_reply(Reply::Json(401, "{}".into()));
    gw.get_as("alice", "/execute/Email/list_pops").await;
    let r = send_to(gw.admin_addr, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("upstream circuits open: default"));
    let m = send_to(gw.admin_addr, "GET", "/metrics", &[], "").await;
    assert!(String::from_utf8_lossy(&m.body).contains("cpgate_upstream_circuit_open{account=\"default\"} 1"));
}

#[tokio::test]
async fn admin_routes_are_not_on_the_public_listener() {
    let gw = Gateway::start().await;
    let a = gw.get_as("alice", "/metrics").await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "not_an_api_call");
}

#[tokio::test]
async fn readyz_fails_while_the_policy_folder_is_invalid() {
    let gw = Gateway::start().await;
    let dir = gw.app.config.policies_dir.clone();
    std::fs::write(dir.join("broken.toml"), "[[allow]]\ncalls = [\"not a pattern\"]\n").unwrap();
    assert!(gw.app.reload_policies().await.is_err());
    let r = send_to(gw.admin_addr, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("last reload failed"));
    std::fs::remove_file(dir.join("broken.toml")).unwrap();
    assert!(gw.app.reload_policies().await.is_ok());
    assert_eq!(send_to(gw.admin_addr, "GET", "/readyz", &[], "").await.status, 200);
    let m = send_to(gw.admin_addr, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("cpgate_policy_reloads_total{result=\"error\"}"), "{text}");
}
