//! `cpgate demo`: the whole system on loopback in one command. Starts the emulated cPanel and
//! cpgate (TLS with a throwaway CA, a fresh EdDSA key, the example policies), issues tokens,
//! makes allowed and denied calls, prints them with curl lines to repeat them, and keeps
//! running until Ctrl-C.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::app::{token_rules, App};
use crate::config::Config;
use crate::principal::DeveloperId;
use crate::sandbox::{self, SandboxSpec};
use crate::secret::Secret;

/// The example policies, compiled in so that the demo works from any folder.
const POLICIES: &[(&str, &str)] = &[
    ("alice.toml", include_str!("../../policies/alice.toml")),
    ("certbot.toml", include_str!("../../policies/certbot.toml")),
    ("reports.toml", include_str!("../../policies/reports.toml")),
];

/// One scripted call.
struct Step {
    developer: Option<&'static str>,
    method: &'static str,
    target: &'static str,
    body: &'static str,
    note: &'static str,
}

const STEPS: &[Step] = &[
    Step { developer: Some("alice"), method: "GET", target: "/execute/DomainInfo/list_domains", body: "", note: "allowed: alice.toml allow[0]" },
    Step { developer: Some("alice"), method: "GET", target: "/execute/Email/list_pops", body: "", note: "allowed: alice.toml allow[0]" },
    Step { developer: Some("alice"), method: "POST", target: "/execute/Email/add_pop", body: "email=newbox&domain=example.com&password=S3cure-demo-pass&quota=100", note: "allowed: alice.toml allow[1] (the password is redacted in the audit log)" },
    Step { developer: Some("alice"), method: "POST", target: "/execute/Email/add_pop", body: "email=x&domain=evil.example&password=p", note: "denied: domain must be example.com" },
    Step { developer: Some("alice"), method: "POST", target: "/execute/Email/delete_pop", body: "email=info&domain=example.com", note: "denied: alice.toml deny[0]" },
    Step { developer: Some("alice"), method: "GET", target: "/execute/Tokens/create_full_access?name=mine", body: "", note: "denied: never granted (escape hatch)" },
    Step { developer: Some("certbot"), method: "GET", target: "/json-api/cpanel?cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzone_records&cpanel_jsonapi_apiversion=2&domain=example.com&type=TXT", body: "", note: "allowed: API 2, certbot.toml allow[0]" },
    Step { developer: None, method: "GET", target: "/execute/Email/list_pops", body: "", note: "refused: no credential (401)" },
];

/// Runs the demo until Ctrl-C.
pub async fn demo() -> anyhow::Result<()> {
    // Installed before anything is printed: a Ctrl-C at any moment stops the demo cleanly.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let dir = tempfile::Builder::new().prefix("cpgate-demo-").tempdir()?;
    let master = random_token();
    let emulator = TcpListener::bind("127.0.0.1:0").await?;
    let emulator_addr = emulator.local_addr()?;
    let (stop_emulator, emulator_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::emulate::serve(
        emulator,
        "acctuser".into(),
        Secret::new(master.clone()),
        async {
            let _ = emulator_stopped.await;
        },
    ));

    let mut spec = SandboxSpec::new(format!("http://{emulator_addr}"), master);
    spec.policies = POLICIES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    spec.tls = true;
    let listener = bind_demo_port().await?;
    spec.listen = listener.local_addr()?.to_string();
    let files = sandbox::write(dir.path(), &spec)?;
    let ca = files.ca.clone().context("demo sandbox has no CA")?;
    let config = Config::load(&files.config)?;
    let app = Arc::new(App::build(config).await?);
    let running = super::serve::start(app.clone(), listener).await?;
    let base = format!("https://localhost:{}", running.addr.port());

    println!("\ncpgate demo");
    println!("  emulated cPanel : http://{emulator_addr} (user acctuser, random master token)");
    println!("  cpgate          : {base} (TLS, CA {})", ca.display());
    println!(
        "  admin           : http://{} (/healthz, /readyz, /metrics)",
        running.admin_addr
    );
    println!("  config          : {}", files.config.display());
    println!("  audit log       : {}\n", files.audit.display());

    let client = demo_client(&ca)?;
    let mut tokens = std::collections::HashMap::new();
    println!("Access tokens (valid 10-15 minutes), for the curl lines below:");
    for dev in ["alice", "certbot"] {
        let token = issue(&app, dev)?;
        println!("  export {}={token}", env_name(dev));
        tokens.insert(dev, token);
    }
    println!();
    for step in STEPS {
        let token = step.developer.and_then(|d| tokens.get(d)).cloned();
        let (status, body) = call(&client, &base, step, token.as_deref()).await?;
        let verdict = if status.is_success() { "ALLOW" } else { "DENY " };
        println!(
            "{verdict} {} {}  ->  {status}  ({})",
            step.method, step.target, step.note
        );
        println!("      {}", summarize(&body));
        println!("      {}\n", curl_line(&base, &ca.display().to_string(), step));
    }
    println!("Verify the audit chain with:");
    println!("  cpgate audit verify {}", files.audit.display());
    println!("\nRunning until Ctrl-C ...");
    interrupt.recv().await;
    running.stop().await?;
    let _ = stop_emulator.send(());
    Ok(())
}

/// cPanel's own port when free (so existing clients work unchanged), else any port.
async fn bind_demo_port() -> anyhow::Result<TcpListener> {
    match TcpListener::bind("127.0.0.1:2083").await {
        Ok(l) => Ok(l),
        Err(_) => Ok(TcpListener::bind("127.0.0.1:0").await?),
    }
}

fn random_token() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn issue(app: &App, developer: &str) -> anyhow::Result<String> {
    let dev = DeveloperId::parse(developer)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut rules = token_rules(&app.config);
    if let Some(policy) = app.policies.load().get(developer) {
        rules.max_ttl = policy.max_token_ttl.map_or(rules.max_ttl, |m| m.min(rules.max_ttl));
    }
    let ttl = rules.max_ttl.min(Duration::from_secs(15 * 60));
    Ok(crate::token::issue(&app.keys(), &rules, &dev, ttl, None, now)?.token)
}

type DemoClient = Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

fn demo_client(ca: &std::path::Path) -> anyhow::Result<DemoClient> {
    let tls = crate::tls::client_config(Some(ca), None)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

async fn call(
    client: &DemoClient,
    base: &str,
    step: &Step,
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, String)> {
    let mut req = Request::builder()
        .method(step.method)
        .uri(format!("{base}{}", step.target));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if !step.body.is_empty() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let response = client
        .request(req.body(Full::new(Bytes::from_static(step.body.as_bytes())))?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn summarize(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}...", one_line.chars().take(160).collect::<String>())
    } else {
        one_line
    }
}

/// `alice` -> `ALICE_TOKEN`.
fn env_name(developer: &str) -> String {
    format!("{}_TOKEN", developer.to_ascii_uppercase().replace(['-', '.'], "_"))
}

fn curl_line(base: &str, ca: &str, step: &Step) -> String {
    let mut line = format!("curl --cacert {ca}");
    if let Some(dev) = step.developer {
        line.push_str(&format!(" -H \"Authorization: Bearer ${}\"", env_name(dev)));
    }
    if !step.body.is_empty() {
        line.push_str(&format!(" --data '{}'", step.body));
    }
    line.push_str(&format!(" '{base}{}'", step.target));
    line
}
