//! The commands, run as a user would: the real binary.

use std::process::Command;

use cpgate::sandbox::{self, SandboxSpec};

fn cpgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpgate"))
}

fn sandbox_with(policies: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = SandboxSpec::new("https://cpanel.example.com:2083".into(), "CLITESTTOKEN".into());
    spec.policies = policies.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let files = sandbox::write(dir.path(), &spec).unwrap();
    (dir, files.config)
}

#[test]
fn check_reports_each_invalid_policy_as_file_line_message() {
    let (_dir, config) = sandbox_with(&[
        ("ok.toml", "[[allow]]\ncalls = [\"Email::list_pops\"]\n"),
        (
            "unknown_key.toml",
            "[[allow]]\ncalls = [\"Email::list_pops\"]\nmethod = [\"GET\"]\n",
        ),
        ("bad_glob.toml", "\n[[allow]]\ncalls = [\"Email::list pops\"]\n"),
        ("bad_cidr.toml", "source_ips = [\"10.0.0.0/33\"]\n"),
        (
            "bad_method.toml",
            "[[allow]]\ncalls = [\"Email::list_pops\"]\nmethods = [\"PUT\"]\n",
        ),
        ("long_ttl.toml", "max_token_ttl = \"2h\"\n"),
        ("no_account.toml", "account = \"nowhere\"\n"),
        (
            "deny_params.toml",
            "[[deny]]\ncalls = [\"Email::list_pops\"]\n[deny.params]\nemail = [\"*\"]\n",
        ),
        ("Bad Name.toml", "\n"),
        ("syntax.toml", "[[allow]\ncalls = []\n"),
        ("hatch.toml", "[[allow]]\ncalls = [\"Tokens::create_full_access\"]\n"),
    ]);
    let out = cpgate().args(["check", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let policies = config.parent().unwrap().join("policies");
    for (file, line) in [
        ("unknown_key.toml", 3),
        ("bad_glob.toml", 3),
        ("bad_cidr.toml", 1),
        ("bad_method.toml", 3),
        ("long_ttl.toml", 1),
        ("no_account.toml", 1),
        ("deny_params.toml", 3),
        ("Bad Name.toml", 1),
        ("syntax.toml", 1),
    ] {
        let prefix = format!("{}:{line}: ", policies.join(file).display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "missing {prefix} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("ok.toml"), "valid files produce no message:\n{stderr}");
}

#[test]
fn check_passes_valid_policies_and_warns_about_escape_hatches() {
    let (_dir, config) = sandbox_with(&[("hatch.toml", "[[allow]]\ncalls = [\"Tokens::create_full_access\"]\n")]);
    let out = cpgate().args(["check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("hatch.toml:2: warning:") && stderr.contains("Tokens::create_full_access"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));
}

#[test]
fn explain_names_the_deciding_rule() {
    let (_dir, config) = sandbox_with(&[(
        "alice.toml",
        "[[allow]]\ncalls = [\"Email::add_pop\"]\n[allow.params]\ndomain = [\"example.com\"]\n[[deny]]\ncalls = [\"Email::delete_*\"]\n",
    )]);
    let run = |request: &str, body: &str| {
        let out = cpgate()
            .args(["explain", "--config"])
            .arg(&config)
            .args(["--developer", "alice", request, "--body", body])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run("POST /execute/Email/add_pop", "email=a&domain=example.com");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("allow\nrule: alice.toml allow[0]"), "{out}");
    let (code, out) = run("GET /execute/Email/delete_pop?email=a", "");
    assert_eq!(code, Some(1));
    assert!(out.starts_with("deny\nrule: alice.toml deny[0]"), "{out}");
    let (code, out) = run("POST /execute/Email/add_pop", "email=a&domain=evil.example");
    assert_eq!(code, Some(1));
    assert!(out.contains("why:") && out.contains("domain"), "{out}");
}

#[test]
fn token_issue_refuses_a_ttl_above_the_maximum_and_prints_a_token() {
    let (_dir, config) = sandbox_with(&[(
        "alice.toml",
        "max_token_ttl = \"10m\"\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    )]);
    let out = cpgate()
        .args(["token", "issue", "--config"])
        .arg(&config)
        .args(["--developer", "alice", "--ttl", "11m"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("above the allowed maximum"));
    assert!(out.stdout.is_empty());
    let out = cpgate()
        .args(["token", "issue", "--config"])
        .arg(&config)
        .args(["--developer", "alice", "--ttl", "5m", "--scope", "Email::list_pops"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    let out = cpgate()
        .args(["token", "issue", "--config"])
        .arg(&config)
        .args(["--developer", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn keys_generate_prints_the_kid_and_writes_a_private_key_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    for alg in ["EdDSA", "ES256", "RS256", "HS256"] {
        let out = cpgate()
            .args(["keys", "generate", "--dir"])
            .arg(dir.path())
            .args(["--alg", alg])
            .output()
            .unwrap();
        assert!(out.status.success(), "{alg}: {}", String::from_utf8_lossy(&out.stderr));
        let kid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!kid.is_empty() && !kid.contains('.'));
        let private = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with(&kid) && !p.to_string_lossy().contains(".pub.")
            })
            .unwrap();
        assert_eq!(
            std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600,
            "{alg}"
        );
    }
}

#[test]
fn demo_makes_allowed_and_denied_calls_and_stops_on_ctrl_c() {
    use std::io::{BufRead as _, BufReader};
    let mut child = cpgate()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Running until Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("demo did not finish its calls");
    let allowed = lines.iter().filter(|l| l.starts_with("ALLOW")).count();
    let denied: Vec<_> = lines.iter().filter(|l| l.starts_with("DENY")).collect();
    assert_eq!(allowed, 4, "{lines:#?}");
    assert_eq!(denied.len(), 4, "{lines:#?}");
    assert!(lines.iter().filter(|l| l.trim_start().starts_with("curl ")).count() == 8);
    assert!(lines.iter().all(|l| !l.starts_with("ALLOW") || l.contains(" 200 ")));
    assert!(denied.iter().any(|l| l.contains(" 401 ")) && denied.iter().any(|l| l.contains(" 403 ")));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exits cleanly on Ctrl-C: {status:?}");
}
