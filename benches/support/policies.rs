//! The developer policies and calls of the decision benchmarks (`benches/authorize.rs`,
//! `examples/decision_instructions.rs`): `dev0` .. `devN`, each with the same realistic shape.

use std::path::PathBuf;
use std::time::Duration;

use cpgate::call::{Api, CpanelCall, Method, Params};
use cpgate::policy::{LoadOptions, Policy, PolicySet};

/// A realistic policy: two allow rules (one with parameter constraints), one deny rule.
fn policy_text(i: usize) -> String {
    format!(
        r#"description = "developer {i}"
[rate_limit]
per_minute = 600
burst = 100

[[allow]]
calls = ["DomainInfo::list_domains", "Email::list_pops", "Email::list_forwarders"]
methods = ["GET"]

[[allow]]
calls = ["Email::add_pop", "Email::passwd_pop"]
methods = ["POST"]
[allow.params]
domain = ["example{i}.com"]
email = ["*"]

[[deny]]
calls = ["Email::delete_*"]
"#
    )
}

/// `n` policies `dev0` .. `dev{n-1}`.
pub fn policy_set(n: usize) -> PolicySet {
    let opts = LoadOptions {
        max_ttl: Duration::from_secs(7200),
        accounts: vec!["default".into()],
    };
    PolicySet::from_policies((0..n).map(|i| {
        let path = PathBuf::from(format!("dev{i}.toml"));
        Policy::from_toml(&path, &policy_text(i), &opts)
            .expect("valid policy")
            .0
    }))
}

/// The two calls decided for `dev7`: a plain read, and a write whose parameters are checked
/// against the policy's constraints; with their names and methods. Both are allowed.
pub fn calls() -> [(&'static str, CpanelCall, Method); 2] {
    let read = CpanelCall::new(
        Api::Uapi,
        "Email",
        "list_pops",
        Params::from_unique_pairs([("domain", "example.com")]),
    );
    let write = CpanelCall::new(
        Api::Uapi,
        "Email",
        "add_pop",
        Params::from_unique_pairs([("domain", "example7.com"), ("email", "info"), ("password", "x")]),
    );
    [("list_pops", read, Method::Get), ("add_pop", write, Method::Post)]
}
