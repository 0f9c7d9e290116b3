//! Issue 6 guarantees that are not about speed: the verified-token cache never outlives a
//! policy change, and reloading 10,000 developer policies fails no request in flight. (How
//! fast the reload is lives in `benches/policy_reload.rs`; tests are never timed.)

use std::sync::Arc;

use crate::support::Gateway;

const CALL: &str = "/execute/Email/list_pops?domain=example.com";

async fn call(gw: &Gateway, bearer: &str) -> u16 {
    gw.send("GET", CALL, &[("authorization", bearer)], "")
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_policy_change_applies_to_a_cached_token_at_once() {
    let gw = Gateway::start_with(|spec| {
        spec.policies
            .push(("dana.toml".into(), "[[allow]]\ncalls = [\"Email::list_pops\"]\n".into()));
    })
    .await;
    let bearer = gw.bearer("dana");
    assert_eq!(call(&gw, &bearer).await, 200);
    assert_eq!(gw.app.verifier.load().cache().len(), 1, "the verified token is cached");

    // The policy loses the grant: the very next call is refused, cached token or not.
    let dir = gw.files.config.parent().unwrap().join("policies");
    std::fs::write(dir.join("dana.toml"), "[[allow]]\ncalls = [\"Email::add_pop\"]\n").unwrap();
    gw.app.reload_policies().await.unwrap();
    assert_eq!(call(&gw, &bearer).await, 403);

    // The policy is removed: the developer is unknown, 401.
    std::fs::remove_file(dir.join("dana.toml")).unwrap();
    gw.app.reload_policies().await.unwrap();
    assert_eq!(call(&gw, &bearer).await, 401);
    gw.stop().await;
}

#[tokio::test]
async fn a_key_reload_empties_the_token_cache() {
    let gw = Gateway::start().await;
    assert_eq!(call(&gw, &gw.bearer("alice")).await, 200);
    assert_eq!(gw.app.verifier.load().cache().len(), 1);
    gw.app.reload_keys().unwrap();
    assert!(gw.app.verifier.load().cache().is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_ten_thousand_policies_fails_no_request() {
    let gw = Gateway::start_with(|spec| {
        for i in 0..10_000 {
            spec.policies.push((
                format!("dev{i}.toml"),
                format!(
                    "[rate_limit]\nper_minute = 60000\nburst = 10000\n\n\
                     [[allow]]\ncalls = [\"Email::list_pops\", \"DomainInfo::list_domains\"]\n\n\
                     [[allow]]\ncalls = [\"Email::add_pop\"]\nmethods = [\"POST\"]\n[allow.params]\n\
                     domain = [\"example{i}.com\"]\nemail = [\"*\"]\n"
                ),
            ));
        }
    })
    .await;
    let gw = Arc::new(gw);
    assert_eq!(gw.app.policies.load().len(), 10_000 + crate::support::POLICIES.len());

    // Callers keep calling (a bounded number of calls each, under their rate limit) while the
    // set is reloaded.
    let callers: Vec<_> = ["dev0", "dev5000", "dev9999"]
        .into_iter()
        .map(|developer| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let bearer = gw.bearer(developer);
                let mut statuses = Vec::new();
                for _ in 0..150 {
                    statuses.push(call(&gw, &bearer).await);
                }
                statuses
            })
        })
        .collect();
    for _ in 0..3 {
        assert_eq!(
            gw.app.reload_policies().await.unwrap(),
            10_000 + crate::support::POLICIES.len()
        );
    }
    for caller in callers {
        let statuses = caller.await.unwrap();
        assert!(
            statuses.iter().all(|&s| s == 200),
            "a call failed during the reload: {statuses:?}"
        );
    }
}
