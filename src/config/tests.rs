use super::*;

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:0"

[upstream]
url = "https://cpanel.example.com:2083"
user = "acct"
token_env = "CPGATE_TEST_TOKEN"

[tokens]
algorithm = "EdDSA"
key_file = "keys/signing.pem"
key_id = "k1"
"#;

fn env(name: &str) -> Option<String> {
    (name == "CPGATE_TEST_TOKEN").then(|| "CANARYSECRET0123456789ABCDEFGHIJ".to_owned())
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/cpgate/cpgate.toml"), text, &env)
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.admin_listen.to_string(), "127.0.0.1:9483");
    assert_eq!(c.server.max_body, 1 << 20);
    assert!(c.server.tls.is_none());
    assert_eq!(c.tokens.issuer, "cpgate");
    assert_eq!(c.tokens.audience, "cpanel");
    assert_eq!(c.tokens.default_ttl, Duration::from_secs(900));
    assert_eq!(c.tokens.max_ttl, Duration::from_secs(3600));
    assert_eq!(c.tokens.leeway, Duration::from_secs(30));
    assert_eq!(c.tokens.key_file, Path::new("/etc/cpgate/keys/signing.pem"));
    assert_eq!(c.tokens.revocations, Path::new("/etc/cpgate/audit/revocations.jsonl"));
    assert_eq!(c.policies_dir, Path::new("/etc/cpgate/policies"));
    assert_eq!(c.audit.fsync, FsyncMode::Batch);
    assert_eq!(c.rate_limit.store, StoreKind::Memory);
    assert_eq!(c.rate_limit.default_per_minute.get(), 60);
    assert_eq!(
        c.upstreams["default"].token.expose(),
        "CANARYSECRET0123456789ABCDEFGHIJ"
    );
}

#[test]
fn unknown_keys_are_rejected_with_file_and_line() {
    let text = MINIMAL.replace("key_id = \"k1\"", "key_id = \"k1\"\nkey_idd = \"x\"");
    let e = error_of(&text);
    assert!(e.starts_with("/etc/cpgate/cpgate.toml:14:"), "{e}");
    assert!(e.contains("key_idd"), "{e}");
}

#[test]
fn inline_master_token_is_refused_without_echoing_it() {
    let text = MINIMAL.replace("token_env = \"CPGATE_TEST_TOKEN\"", "token = \"INLINESECRET123\"");
    let e = error_of(&text);
    assert!(e.contains(":8:") && e.contains("never accepted inline"), "{e}");
    assert!(!e.contains("INLINESECRET123"));
}

#[test]
fn bad_values_name_their_line() {
    let cases = [
        ("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"", 3, "listen"),
        ("algorithm = \"EdDSA\"", "algorithm = \"none\"", 11, "algorithm"),
        (
            "url = \"https://cpanel.example.com:2083\"",
            "url = \"ftp://x\"",
            6,
            "url",
        ),
        ("key_id = \"k1\"", "key_id = \"k1\"\nmax_ttl = \"soon\"", 14, "max_ttl"),
    ];
    for (from, to, line, needle) in cases {
        let e = error_of(&MINIMAL.replace(from, to));
        assert!(e.contains(&format!(":{line}: ")) && e.contains(needle), "{e}");
    }
}

#[test]
fn missing_token_env_variable_is_a_clear_error() {
    let text = MINIMAL.replace("CPGATE_TEST_TOKEN", "CPGATE_NOT_SET");
    let e = error_of(&text);
    assert!(e.contains("CPGATE_NOT_SET is not set"), "{e}");
}

#[test]
fn debug_output_never_contains_the_master_token() {
    let c = parse(MINIMAL).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("CANARYSECRET"), "{debug}");
}

#[test]
fn sizes_and_durations_parse() {
    assert_eq!(parse_size("64KiB").unwrap(), 64 * 1024);
    assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
    assert!(parse_size("lots").is_err());
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert!(parse_duration("15 parsecs").is_err());
}

#[test]
fn tools_can_load_the_config_without_reading_the_master_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpgate.toml");
    let text = MINIMAL.replace(
        "token_env = \"CPGATE_TEST_TOKEN\"",
        "token_file = \"/nonexistent/cpanel_token\"",
    );
    std::fs::write(&path, &text).unwrap();
    assert!(Config::load(&path)
        .unwrap_err()
        .to_string()
        .contains("token_file: cannot read"));
    let c = Config::load_for_tools(&path).unwrap();
    assert!(c.upstreams["default"].token.is_empty());
    let both = text.replace("token_file", "token_env = \"X\"\ntoken_file");
    std::fs::write(&path, both).unwrap();
    assert!(Config::load_for_tools(&path).is_err(), "the config is still validated");
}

#[test]
fn redis_store_urls_and_on_store_error_are_parsed() {
    let with = |lines: &str| format!("{MINIMAL}\n[rate_limit]\n{lines}\n");
    let c = parse(&with(
        "store = \"redis://:pw@127.0.0.1:6379/2\"\non_store_error = \"deny\"",
    ))
    .unwrap();
    let StoreKind::Redis(url) = &c.rate_limit.store else {
        panic!("expected the Redis store")
    };
    assert_eq!(url.to_string(), "redis://***@127.0.0.1:6379/2");
    assert!(!format!("{c:?}").contains(":pw@"), "the password stays out of Debug");
    assert_eq!(c.rate_limit.on_store_error, OnStoreError::Deny);
    let c = parse(&with("store = \"rediss://cache.example.com:6380/0\"")).unwrap();
    assert!(matches!(&c.rate_limit.store, StoreKind::Redis(u) if u.is_tls()));
    assert_eq!(c.rate_limit.on_store_error, OnStoreError::Local, "local is the default");
    let e = error_of(&with("store = \"redis://:topsecret@[bad/0\""));
    assert!(e.contains("store:") && !e.contains("topsecret"), "{e}");
    assert!(error_of(&with("store = \"rediss://h/0#insecure\"")).contains("fragment"));
    assert!(error_of(&with("on_store_error = \"open\"")).contains("not one of local, deny"));
}

#[test]
fn workers_default_to_the_cpus_and_accept_an_explicit_count() {
    let c = parse(MINIMAL).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.server.workers, cpus.min(MAX_WORKERS));
    assert_eq!(c.server.workers, default_workers());
    let with = |n: &str| {
        MINIMAL.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\nworkers = {n}"),
        )
    };
    assert_eq!(parse(&with("1")).unwrap().server.workers, 1);
    assert_eq!(parse(&with("3")).unwrap().server.workers, 3);
    assert_eq!(parse(&with("256")).unwrap().server.workers, 256);
}

#[test]
fn zero_negative_or_absurd_workers_are_refused_with_their_line() {
    let with = |n: &str| {
        MINIMAL.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\nworkers = {n}"),
        )
    };
    for n in ["0", "257", "100000"] {
        let e = error_of(&with(n));
        assert!(
            e.starts_with("/etc/cpgate/cpgate.toml:4: workers must be between 1 and 256"),
            "workers = {n}: {e}"
        );
    }
    for n in ["-1", "\"4\"", "1.5"] {
        let e = error_of(&with(n));
        assert!(e.starts_with("/etc/cpgate/cpgate.toml:4:"), "workers = {n}: {e}");
    }
}
