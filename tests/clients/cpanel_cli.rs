//! `cpanel-cli` 0.30.1 (the `cpanel` command, built on cpanel-api): token mode
//! (`cpanel USER:TOKEN`), POST forms, and a multipart upload to `Fileman::upload_files`.
//!
//! cpanel-cli always appends `:2083` to the host name. These tests reach cpgate on its
//! ephemeral port by giving the host name as `127.0.0.1:PORT/`: the trailing slash turns the
//! appended `:2083` into a path that cpanel-cli's `urljoin` then replaces (docs/clients.md).

use cpgate::call::{Api, CpanelCall, Params};

use crate::stack::{console, Run, Stack, DEV};

/// Runs `cpanel ARGS` with its settings in its own environment variables and an empty HOME
/// (so no `~/.cpanelrc` is read).
async fn cpanel(stack: &Stack, token: &str, args: &[&str]) -> Run {
    let home = stack.scratch.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = vec![
        (
            "CPANEL_HOSTNAME".to_owned(),
            format!("127.0.0.1:{}/", stack.addr.port()),
        ),
        ("CPANEL_USERNAME".to_owned(), DEV.to_owned()),
        ("CPANEL_UTOKEN".to_owned(), token.to_owned()),
        ("HOME".to_owned(), home.display().to_string()),
    ];
    console("cpanel", args, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpanel_cli_lists_mail_accounts_from_the_emulator() {
    let stack = Stack::start().await;
    let run = cpanel(&stack, &stack.token(), &["list", "mail", "accounts"]).await;
    assert!(run.success, "{run:#?}");
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let call = CpanelCall::new(Api::Uapi, "Email", "list_pops", Params::new());
    let expected: Vec<_> = stack.emulator.handle(&call).1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::json!({"email": p["email"]}))
        .collect();
    assert_eq!(listed, serde_json::Value::Array(expected));
    assert_eq!(stack.upstream_paths(), ["/execute/Email/list_pops"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpanel_cli_uploads_a_file_into_an_allowed_directory() {
    let stack = Stack::start().await;
    // cpanel-cli names the file part after the local path, as a user would type it.
    let local = stack.scratch.join("site");
    std::fs::create_dir_all(&local).unwrap();
    let file = local.join("hello.txt");
    let content = "Hello through cpgate\r\nsecond line\n";
    std::fs::write(&file, content).unwrap();
    let run = cpanel(
        &stack,
        &stack.token(),
        &["upload", "file", "public_html", file.to_str().unwrap()],
    )
    .await;
    assert!(run.success, "{run:#?}");
    assert_eq!(run.stdout.trim(), "OK");
    let stored = stack
        .emulator
        .file("public_html", "hello.txt")
        .expect("the upload reached cPanel");
    assert_eq!(&stored[..], content.as_bytes());
    assert_eq!(stack.upstream_paths(), ["/execute/Fileman/upload_files"]);
    let request = stack
        .audit_records()
        .into_iter()
        .find(|r| r["event"] == "request")
        .unwrap();
    assert_eq!(request["call"], "Fileman::upload_files");
    assert_eq!(request["params"]["dir"], "public_html");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpanel_cli_upload_outside_the_allowed_directory_fails_with_the_403() {
    let stack = Stack::start().await;
    let file = stack.scratch.join("evil.txt");
    std::fs::write(&file, "x").unwrap();
    let run = cpanel(
        &stack,
        &stack.token(),
        &["upload", "file", "etc", file.to_str().unwrap()],
    )
    .await;
    assert!(!run.success, "{run:#?}");
    // cpanel-cli's upload reports the HTTP status it got, not the body.
    assert!(run.stderr.contains("cpanel: HTTP 403 response"), "{run:#?}");
    assert!(stack.upstream_paths().is_empty());
    assert!(stack.emulator.file("etc", "evil.txt").is_none());
    let denied = stack
        .audit_records()
        .into_iter()
        .find(|r| r["event"] == "denied")
        .unwrap();
    assert_eq!(denied["code"], "forbidden");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpanel_cli_denied_call_prints_cpgates_refusal_message() {
    let stack = Stack::start().await;
    let run = cpanel(&stack, &stack.token(), &["list", "mysql", "users"]).await;
    assert!(!run.success, "{run:#?}");
    // cpanel-cli prints the `errors` of the cPanel-shaped refusal as `cpanel: MESSAGE`.
    let refusal = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("cpanel: "))
        .unwrap_or_else(|| panic!("no error line: {run:#?}"));
    assert!(!refusal.is_empty() && !refusal.starts_with("HTTP"), "{run:#?}");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpanel_cli_with_a_bad_token_reports_unauthorized() {
    let stack = Stack::start().await;
    let run = cpanel(&stack, "not-a-jwt", &["upload", "file", "public_html", "/etc/hostname"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("cpanel: Unauthorized"), "{run:#?}");
    assert!(stack.upstream_paths().is_empty());
    stack.stop().await;
}
