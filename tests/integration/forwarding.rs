//! Allowed calls reach cPanel rebuilt from what was authorized, with exactly one
//! `Authorization` (the master) and only allow-listed headers.

use crate::support::{Gateway, MASTER, UAPI_OK};

fn only_master_authorization(headers: &http::HeaderMap) {
    let auth: Vec<_> = headers.get_all("authorization").iter().collect();
    assert_eq!(auth.len(), 1, "exactly one Authorization: {headers:?}");
    assert_eq!(auth[0], &format!("cpanel acctuser:{MASTER}"));
}

#[tokio::test]
async fn allowed_post_reaches_upstream_with_master_credential_and_exact_params() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let answer = gw
        .send(
            "POST",
            "/execute/Email/add_pop",
            &[
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "cpsession=client"),
                ("x-api-key", "client-header"),
                ("proxy-authorization", "Basic abc"),
                ("x-forwarded-for", "10.9.9.9"),
                ("user-agent", "test-client/1"),
            ],
            "email=new%2Bbox&domain=example.com&password=p%26w%3Dd",
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], UAPI_OK.as_bytes(), "cPanel's body relayed unchanged");
    assert!(
        answer.headers.get("set-cookie").is_none(),
        "upstream Set-Cookie stripped"
    );
    assert!(answer.headers.get("x-request-id").is_some());

    let got = gw.upstream.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/execute/Email/add_pop");
    only_master_authorization(&r.headers);
    let params: Vec<(String, String)> = form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(
        params,
        vec![
            ("email".into(), "new+box".into()),
            ("domain".into(), "example.com".into()),
            ("password".into(), "p&w=d".into()),
        ]
    );
    let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "authorization",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-forwarded-for"
        ]
    );
    assert_eq!(
        r.headers["x-forwarded-for"], "127.0.0.1",
        "the client's own X-Forwarded-For is not trusted"
    );
    assert_eq!(r.headers["content-length"], r.body.len().to_string().as_str());
}

#[tokio::test]
async fn allowed_get_keeps_get_with_parameters_in_the_query() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let answer = gw
        .send(
            "GET",
            "/execute/Email/list_pops?regex=a%3Bb&regex=c",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(answer.status, 200);
    let got = gw.upstream.received();
    assert_eq!(got[0].method, "GET");
    assert_eq!(got[0].target, "/execute/Email/list_pops?regex=a%3Bb&regex-0=c");
    assert!(got[0].body.is_empty());
}

#[tokio::test]
async fn api2_call_is_rebuilt_with_the_upstream_user() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let target = "/json-api/cpanel?cpanel_jsonapi_user=someoneelse&cpanel_jsonapi_module=ZoneEdit\
                  &cpanel_jsonapi_func=fetchzone_records&cpanel_jsonapi_apiversion=2&domain=example.com";
    let answer = gw.send("GET", target, &[("authorization", &auth)], "").await;
    assert_eq!(answer.status, 200);
    let got = gw.upstream.received();
    let params: Vec<(String, String)> = form_urlencoded::parse(got[0].target.split_once('?').unwrap().1.as_bytes())
        .into_owned()
        .collect();
    assert!(
        params.contains(&("cpanel_jsonapi_user".into(), "acctuser".into())),
        "{params:?}"
    );
    assert!(!params.iter().any(|(_, v)| v == "someoneelse"));
    assert!(params.contains(&("domain".into(), "example.com".into())));
}

#[tokio::test]
async fn three_credential_forms_are_accepted() {
    use base64::Engine as _;
    let gw = Gateway::start().await;
    let token = gw.token("alice");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    for auth in [
        format!("Bearer {token}"),
        format!("cpanel alice:{token}"),
        format!("CPANEL alice:{token}"),
        format!("Basic {basic}"),
    ] {
        let answer = gw
            .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await;
        assert_eq!(answer.status, 200, "{}", &auth[..12]);
    }
    assert_eq!(gw.upstream.received().len(), 4);
}

#[tokio::test]
async fn request_record_is_in_the_audit_file_before_the_call_reaches_cpanel() {
    let gw = Gateway::start().await;
    let auth = gw.bearer("alice");
    let answer = gw
        .send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
        .await;
    let request_id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    let got = gw.upstream.received();
    let audit = got[0].audit_at_arrival.clone().unwrap();
    let found = audit.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["event"] == "request" && v["request_id"] == request_id.as_str()
    });
    assert!(found, "request record missing at arrival: {audit}");
}

#[tokio::test]
async fn graceful_stop_completes_and_later_connections_are_refused() {
    let gw = Gateway::start().await;
    let addr = gw.addr;
    let auth = gw.bearer("alice");
    assert_eq!(
        gw.send("GET", "/execute/Email/list_pops", &[("authorization", &auth)], "")
            .await
            .status,
        200
    );
    gw.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn policy_account_selects_the_upstream_and_its_master_credential() {
    let second = crate::support::MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("second.token"), "SECONDACCOUNTTOKEN").unwrap();
    let token_path = dir.path().join("second.token");
    let gw = Gateway::start_with(|s| {
        s.config_extra = format!(
            "\n[upstreams.second]\nurl = \"http://{}\"\nuser = \"otheracct\"\ntoken_file = \"{}\"\n",
            second.addr,
            token_path.display()
        );
        s.policies.push((
            "bob.toml".into(),
            "account = \"second\"\n[[allow]]\ncalls = [\"Email::list_pops\"]\n".into(),
        ));
    })
    .await;
    let a = gw.get_as("bob", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);
    assert!(gw.upstream.received().is_empty(), "the default account saw nothing");
    let got = second.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["authorization"], "cpanel otheracct:SECONDACCOUNTTOKEN");
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);
    assert_eq!(gw.upstream.received().len(), 1);
}

#[tokio::test]
async fn upstream_tls_is_verified_against_ca_file_and_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, ca, pin) = crate::support::MockUpstream::start_tls(dir.path()).await;
    let url = format!("https://localhost:{}", mock.addr.port());
    let cases = [
        (format!("ca_file = \"{}\"", ca.display()), 200),
        (format!("ca_file = \"{}\"\npin_sha256 = \"{pin}\"", ca.display()), 200),
        (format!("pin_sha256 = \"{pin}\""), 200),
        (format!("pin_sha256 = \"{}\"", "A".repeat(43) + "="), 502),
        (String::new(), 502),
    ];
    for (trust, status) in cases {
        let url = url.clone();
        let gw = Gateway::start_with(|s| {
            s.upstream_url = url;
            s.upstream_trust = trust.clone();
        })
        .await;
        let a = gw.get_as("alice", "/execute/Email/list_pops").await;
        assert_eq!(a.status, status, "trust: {trust:?}");
    }
    assert_eq!(mock.received().len(), 3, "only verified connections carried a request");
}

#[tokio::test]
async fn large_responses_stream_through_unchanged() {
    let gw = Gateway::start().await;
    let big = format!("{{\"status\":1,\"data\":\"{}\"}}", "x".repeat(600 * 1024));
    gw.upstream.set_reply(crate::support::Reply::Json(200, big.clone()));
    let a = gw.get_as("alice", "/execute/Email/list_pops").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), big.len());
    assert_eq!(&a.body[..], big.as_bytes());
}

#[tokio::test]
async fn a_streamed_response_is_cut_before_any_byte_of_the_master_token() {
    use http_body_util::BodyExt as _;
    let gw = Gateway::start().await;
    let leak = format!("{{\"data\":\"{}{}\"}}", "x".repeat(400 * 1024), MASTER);
    gw.upstream.set_reply(crate::support::Reply::Json(200, leak));
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/execute/Email/list_pops")
        .header("host", "x")
        .header("authorization", gw.bearer("alice"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let mut body = response.into_body();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => received.extend_from_slice(f.data_ref().map(|d| &d[..]).unwrap_or_default()),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the stream must be cut, not completed");
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains(&MASTER[..4]), "no prefix of the token was sent");
}
