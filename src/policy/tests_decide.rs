//! Decision tests: one table-driven matrix over every rule of contract §4.1, §4.3 and §4.4,
//! plus `may_allow` for token scopes.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::call::{Api, Params};

const MATRIX_POLICY: &str = r#"
source_ips = ["203.0.113.0/24", "2001:db8::/32"]
expires = 2030-01-01T00:00:00Z

[[allow]]   # allow[0]: read-only, GET only
calls = ["Email::list_pops", "DomainInfo::*"]
methods = ["GET"]

[[allow]]   # allow[1]: parameter families
calls = ["Email::add_pop", "Email::delete_pop"]
[allow.params]
domain = ["example.com"]
email = ["*@example.com", "info"]

[[allow]]   # allow[2]: API 2 is its own namespace
api = "api2"
calls = ["ZoneEdit::fetchzone_records"]

[[allow]]   # allow[3]: wildcards never grant escape hatches
calls = ["Tokens::*", "Batch::*", "Fileman::*"]

[[allow]]   # allow[4]: exact grants do
calls = ["Tokens::list", "Batch::strict"]
methods = ["POST"]

[[allow]]   # allow[5]
calls = ["Mysql::list_databases"]

[[deny]]    # deny[0]: beats allow[1]
calls = ["Email::delete_*"]

[[deny]]    # deny[1]: POST only
calls = ["Mysql::*"]
methods = ["POST"]
"#;

fn opts() -> LoadOptions {
    LoadOptions {
        max_ttl: Duration::from_secs(3600),
        accounts: vec!["default".into()],
    }
}

fn policy(file: &str, text: &str) -> Policy {
    match Policy::from_toml(Path::new(file), text, &opts()) {
        Ok((policy, _)) => policy,
        Err(errors) => panic!("{errors:#?}"),
    }
}

fn call(api: Api, name: &str, params: &[(&str, &str)]) -> CpanelCall {
    let (module, function) = name.split_once("::").unwrap();
    CpanelCall::new(api, module, function, Params::from_unique_pairs(params.iter().copied()))
}

fn uapi(name: &str, params: &[(&str, &str)]) -> CpanelCall {
    call(Api::Uapi, name, params)
}

fn batch(commands: Vec<CpanelCall>) -> CpanelCall {
    let mut outer = uapi("Batch::strict", &[]);
    outer.batch = commands;
    outer
}

const GOOD_POP: &[(&str, &str)] = &[
    ("domain", "example.com"),
    ("email", "a@example.com"),
    ("email-0", "info"),
];

enum Want {
    Allow(&'static str),
    /// Deny by this rule (or by no rule), with `why` containing the text.
    Deny(Option<&'static str>, &'static str),
}

struct Case {
    name: &'static str,
    call: CpanelCall,
    method: Method,
    ip: &'static str,
    scope: Option<Vec<&'static str>>,
    now: OffsetDateTime,
    want: Want,
}

const IN: &str = "203.0.113.5";
const NOW: OffsetDateTime = datetime!(2029-06-01 12:00:00 UTC);

fn case(name: &'static str, call: CpanelCall, method: Method, want: Want) -> Case {
    Case {
        name,
        call,
        method,
        ip: IN,
        scope: None,
        now: NOW,
        want,
    }
}

fn run(policy: &Policy, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let scope: Option<Vec<CallPattern>> = c
            .scope
            .as_ref()
            .map(|s| s.iter().map(|e| CallPattern::parse_scope(e).unwrap()).collect());
        let req = DecisionRequest {
            call: &c.call,
            method: c.method,
            client_ip: c.ip.parse::<IpAddr>().unwrap(),
            scope: scope.as_deref(),
            now: c.now,
        };
        let got = policy.decide(&req);
        let ok = match (&c.want, &got) {
            (Want::Allow(rule), Decision::Allow { rule: r }) => r.to_string() == *rule,
            (Want::Deny(rule, needle), Decision::Deny { rule: r, why }) => {
                r.as_ref().map(ToString::to_string).as_deref() == *rule && why.contains(needle)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decision_matrix() {
    use Method::{Get, Post};
    use Want::{Allow, Deny};
    let p = policy("alice.toml", MATRIX_POLICY);
    let mut cases = vec![
        // Default deny, with the closest rule in `why`.
        case("default deny", uapi("Ftp::list_ftp", &[]), Get, Deny(None, "no allow rule matches Ftp::list_ftp")),
        case("allow exact", uapi("Email::list_pops", &[]), Get, Allow("alice.toml allow[0]")),
        case("allow wildcard", uapi("DomainInfo::list_domains", &[]), Get, Allow("alice.toml allow[0]")),
        case("method restricted", uapi("Email::list_pops", &[]), Post, Deny(None, "allow[0] does not allow the POST method")),
        // Parameter families.
        case("params all match", uapi("Email::add_pop", GOOD_POP), Post, Allow("alice.toml allow[1]")),
        case(
            "family member outside glob",
            uapi("Email::add_pop", &[("domain", "example.com"), ("email", "a@example.com"), ("email-1", "x@evil.com")]),
            Post,
            Deny(None, "parameter `email-1` matches none of [\"*@example.com\", \"info\"]"),
        ),
        case(
            "plain value outside glob",
            uapi("Email::add_pop", &[("domain", "evil.com"), ("email", "a@example.com")]),
            Get,
            Deny(None, "parameter `domain`"),
        ),
        case(
            "missing plain param",
            uapi("Email::add_pop", &[("domain", "example.com"), ("email-0", "a@example.com")]),
            Post,
            Deny(None, "requires the parameter `email`, which is missing"),
        ),
        case(
            "glob matches whole value",
            uapi("Email::add_pop", &[("domain", "example.com.evil"), ("email", "a@example.com")]),
            Post,
            Deny(None, "`domain`"),
        ),
        case(
            "unconstrained extra params are fine",
            uapi("Email::add_pop", &[("domain", "example.com"), ("email", "info"), ("quota", "100")]),
            Post,
            Allow("alice.toml allow[1]"),
        ),
        // Deny beats allow; deny methods.
        case("deny beats allow", uapi("Email::delete_pop", GOOD_POP), Post, Deny(Some("alice.toml deny[0]"), "Email::delete_pop is denied by alice.toml deny[0]")),
        case("deny by method: GET allowed", uapi("Mysql::list_databases", &[]), Get, Allow("alice.toml allow[5]")),
        case("deny by method: POST denied", uapi("Mysql::list_databases", &[]), Post, Deny(Some("alice.toml deny[1]"), "")),
        // Names are case-sensitive.
        case("module case", uapi("email::list_pops", &[]), Get, Deny(None, "no allow rule matches")),
        case("function case", uapi("Email::List_pops", &[]), Get, Deny(None, "no allow rule matches")),
        // API 2 is a separate namespace.
        case("api2 allowed", call(Api::Api2, "ZoneEdit::fetchzone_records", &[]), Get, Allow("alice.toml allow[2]")),
        case("uapi grant is not api2", call(Api::Api2, "Email::list_pops", &[]), Get, Deny(None, "separate namespace")),
        case("api2 grant is not uapi", uapi("ZoneEdit::fetchzone_records", &[]), Get, Deny(None, "names it for api2 only")),
        // Escape hatches.
        case("wildcard does not grant hatch", uapi("Tokens::create_full_access", &[]), Post, Deny(None, "escape hatch")),
        case("wildcard does not grant file write", uapi("Fileman::save_file_content", &[]), Post, Deny(None, "escape hatch")),
        case("wildcard grants ordinary function", uapi("Fileman::list_files", &[]), Post, Allow("alice.toml allow[3]")),
        case("exact grant of hatch", uapi("Tokens::list", &[]), Post, Allow("alice.toml allow[4]")),
        case("exact grant keeps its method", uapi("Tokens::list", &[]), Get, Deny(None, "allow[4] does not allow the GET method")),
        // Batch::strict.
        case(
            "batch of allowed commands",
            batch(vec![uapi("Fileman::list_files", &[]), uapi("Email::add_pop", GOOD_POP)]),
            Post,
            Allow("alice.toml allow[4]"),
        ),
        case(
            "batch with one denied command",
            batch(vec![uapi("Fileman::list_files", &[]), uapi("Email::delete_pop", GOOD_POP)]),
            Post,
            Deny(Some("alice.toml deny[0]"), "batch command 1 (Email::delete_pop): "),
        ),
        case(
            "batch smuggling a hatch",
            batch(vec![uapi("Tokens::create_full_access", &[])]),
            Post,
            Deny(None, "batch command 0 (Tokens::create_full_access): no allow rule"),
        ),
        case(
            "batch inner keeps the outer method",
            batch(vec![uapi("Email::list_pops", &[])]),
            Post,
            Deny(None, "batch command 0 (Email::list_pops): no allow rule matches Email::list_pops; closest: alice.toml allow[0] does not allow the POST method"),
        ),
        case("batch outer method", batch(vec![]), Get, Deny(None, "allow[4] does not allow the GET method")),
        case(
            "nested batch allowed",
            batch(vec![batch(vec![uapi("Fileman::list_files", &[])])]),
            Post,
            Allow("alice.toml allow[4]"),
        ),
        case(
            "nested batch with denied command",
            batch(vec![
                uapi("Fileman::list_files", &[]),
                batch(vec![uapi("Email::add_pop", &[("domain", "example.com"), ("email", "x@evil.com")])]),
            ]),
            Post,
            Deny(None, "batch command 1 (Batch::strict): batch command 0 (Email::add_pop): no allow rule"),
        ),
        case(
            "batch nested too deep",
            batch(vec![batch(vec![batch(vec![batch(vec![uapi("Fileman::list_files", &[])])])])]),
            Post,
            Deny(None, "nested deeper than 3"),
        ),
    ];

    // Disabled and expired, source addresses, scopes.
    let at = |name, now, want| Case {
        now,
        ..case(name, uapi("Email::list_pops", &[]), Get, want)
    };
    cases.push(at(
        "one second before expiry",
        datetime!(2029-12-31 23:59:59 UTC),
        Allow("alice.toml allow[0]"),
    ));
    cases.push(at(
        "expired at the instant",
        datetime!(2030-01-01 00:00:00 UTC),
        Deny(None, "expired"),
    ));
    let from = |name, ip, want| Case {
        ip,
        ..case(name, uapi("Email::list_pops", &[]), Get, want)
    };
    cases.push(from("v4 inside", "203.0.113.250", Allow("alice.toml allow[0]")));
    cases.push(from(
        "v4 outside",
        "198.51.100.1",
        Deny(None, "198.51.100.1 is outside source_ips"),
    ));
    cases.push(from("v6 inside", "2001:db8::7", Allow("alice.toml allow[0]")));
    cases.push(from("v6 outside", "2001:db9::7", Deny(None, "outside source_ips")));
    cases.push(from(
        "v4-mapped inside",
        "::ffff:203.0.113.9",
        Allow("alice.toml allow[0]"),
    ));
    cases.push(from(
        "v4-mapped outside",
        "::ffff:198.51.100.1",
        Deny(None, "198.51.100.1 is outside"),
    ));
    let scoped = |name, call, method, scope: Vec<&'static str>, want| Case {
        scope: Some(scope),
        ..case(name, call, method, want)
    };
    cases.push(scoped(
        "scope allows",
        uapi("Email::list_pops", &[]),
        Get,
        vec!["Email::list_pops"],
        Allow("alice.toml allow[0]"),
    ));
    cases.push(scoped(
        "scope narrows",
        uapi("DomainInfo::list_domains", &[]),
        Get,
        vec!["Email::*"],
        Deny(None, "DomainInfo::list_domains is outside the token's scope"),
    ));
    cases.push(scoped(
        "scope never widens",
        uapi("Ftp::list_ftp", &[]),
        Get,
        vec!["*::*"],
        Deny(None, "no allow rule"),
    ));
    cases.push(scoped(
        "scope cannot grant a hatch by wildcard",
        uapi("Tokens::create_full_access", &[]),
        Post,
        vec!["Tokens::*"],
        Deny(None, "escape hatch"),
    ));
    cases.push(scoped(
        "empty scope denies",
        uapi("Email::list_pops", &[]),
        Get,
        vec![],
        Deny(None, "outside the token's scope"),
    ));
    cases.push(scoped(
        "scope is api-specific",
        call(Api::Api2, "ZoneEdit::fetchzone_records", &[]),
        Get,
        vec!["ZoneEdit::fetchzone_records"],
        Deny(None, "outside the token's scope"),
    ));
    cases.push(scoped(
        "scope applies to batch commands",
        batch(vec![uapi("Fileman::list_files", &[]), uapi("Email::add_pop", GOOD_POP)]),
        Post,
        vec!["Batch::strict", "Fileman::*"],
        Deny(
            None,
            "batch command 1 (Email::add_pop): Email::add_pop is outside the token's scope",
        ),
    ));
    run(&p, cases);

    let disabled = policy("bob.toml", &format!("enabled = false\n{MATRIX_POLICY}"));
    run(
        &disabled,
        vec![case(
            "disabled",
            uapi("Email::list_pops", &[]),
            Get,
            Deny(None, "disabled"),
        )],
    );
    let empty = policy("carol.toml", "");
    run(
        &empty,
        vec![case(
            "no rules",
            uapi("Email::list_pops", &[]),
            Get,
            Deny(None, "has no allow rules"),
        )],
    );
}

#[test]
fn first_matching_allow_rule_is_named() {
    let p = policy(
        "dave.toml",
        "[[allow]]\ncalls = [\"Email::*\"]\nmethods = [\"POST\"]\n\
         [[allow]]\ncalls = [\"Email::list_pops\"]\n[[allow]]\ncalls = [\"Email::*\"]\n",
    );
    run(
        &p,
        vec![
            case(
                "later exact after failing wildcard",
                uapi("Email::list_pops", &[]),
                Method::Get,
                Want::Allow("dave.toml allow[1]"),
            ),
            case(
                "earlier wildcard wins",
                uapi("Email::list_pops", &[]),
                Method::Post,
                Want::Allow("dave.toml allow[0]"),
            ),
            case(
                "later wildcard",
                uapi("Email::add_pop", &[]),
                Method::Get,
                Want::Allow("dave.toml allow[2]"),
            ),
        ],
    );
}

#[test]
fn may_allow_checks_token_scope_patterns() {
    let p = policy("alice.toml", MATRIX_POLICY);
    let may = |s: &str| p.may_allow(&CallPattern::parse_scope(s).unwrap());
    assert!(may("Email::list_pops"));
    assert!(may("Email::*"));
    assert!(may("*::list_*"));
    assert!(may("DomainInfo::list_domains"));
    assert!(may("api2:ZoneEdit::*"));
    assert!(may("Tokens::list"), "exact grant of a hatch");
    assert!(!may("Tokens::create_full_access"), "wildcard never grants a hatch");
    assert!(!may("Ftp::list_ftp"));
    assert!(!may("api2:Email::list_pops"));
    assert!(!may("Email::delete_pop"), "denied for every method");
    assert!(may("Mysql::list_databases"), "denied for POST only");
    assert!(!may("Cron::*"));
}

#[test]
fn policy_set_looks_up_developers() {
    let set = PolicySet::from_policies([policy("alice.toml", MATRIX_POLICY), policy("bob.toml", "")]);
    assert_eq!(set.len(), 2);
    assert!(set.get("alice").is_some());
    assert!(set.get("mallory").is_none());
    assert!(set.warnings().is_empty());
}

#[test]
fn rule_ref_displays_file_kind_and_index() {
    let r = RuleRef {
        file: "alice.toml".into(),
        kind: RuleKind::Deny,
        index: 2,
    };
    assert_eq!(r.to_string(), "alice.toml deny[2]");
}

#[test]
fn exact_index_finds_one_rule_among_thousands() {
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!("[[allow]]\ncalls = [\"Mod{i}::func{i}\"]\n"));
    }
    let p = policy("many.toml", &text);
    run(
        &p,
        vec![
            case(
                "last rule",
                uapi("Mod2999::func2999", &[]),
                Method::Get,
                Want::Allow("many.toml allow[2999]"),
            ),
            case(
                "crossed names",
                uapi("Mod1::func2", &[]),
                Method::Get,
                Want::Deny(None, "no allow rule"),
            ),
        ],
    );
}

mod compiled_matches_naive {
    //! Property: the compiled index decides exactly like a linear scan of the rules.
    use proptest::prelude::*;

    use super::*;
    use crate::policy::is_escape_hatch;

    const MODULES: &[&str] = &["Email", "Tokens", "Batch", "Fileman", "*", "E*", "*n*"];
    const FUNCTIONS: &[&str] = &[
        "list_pops",
        "add_pop",
        "create_full_access",
        "strict",
        "save_file_content",
        "*",
        "list_*",
        "*_pop*",
    ];
    const CALL_MODULES: &[&str] = &["Email", "Tokens", "Batch", "Fileman"];
    const CALL_FUNCTIONS: &[&str] = &[
        "list_pops",
        "add_pop",
        "create_full_access",
        "strict",
        "save_file_content",
        "list_files",
    ];

    #[derive(Debug, Clone)]
    struct RawRule {
        deny: bool,
        api2: bool,
        patterns: Vec<(usize, usize)>,
        get_only: bool,
    }

    fn rule() -> impl Strategy<Value = RawRule> {
        (
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::collection::vec((0..MODULES.len(), 0..FUNCTIONS.len()), 1..4),
            any::<bool>(),
        )
            .prop_map(|(deny, api2, patterns, get_only)| RawRule {
                deny,
                api2,
                patterns,
                get_only,
            })
    }

    fn naive(rules: &[RawRule], api: Api, module: &str, function: &str, method: Method) -> Option<usize> {
        let applies = |r: &RawRule| (r.api2 == (api == Api::Api2)) && (!r.get_only || method == Method::Get);
        let hatch = is_escape_hatch(api, module, function);
        let matches = |r: &RawRule, allow: bool| {
            r.patterns.iter().any(|&(m, f)| {
                let p = CallPattern::parse(api, &format!("{}::{}", MODULES[m], FUNCTIONS[f])).unwrap();
                p.matches(api, module, function) && (!allow || !hatch || p.is_exact())
            })
        };
        if rules.iter().any(|r| r.deny && applies(r) && matches(r, false)) {
            return None;
        }
        rules
            .iter()
            .filter(|r| !r.deny)
            .position(|r| applies(r) && matches(r, true))
    }

    fn to_toml(rules: &[RawRule]) -> String {
        let mut text = String::new();
        for r in rules {
            let calls: Vec<String> = r
                .patterns
                .iter()
                .map(|&(m, f)| format!("\"{}::{}\"", MODULES[m], FUNCTIONS[f]))
                .collect();
            text.push_str(&format!(
                "[[{}]]\napi = \"{}\"\ncalls = [{}]\nmethods = [{}]\n",
                if r.deny { "deny" } else { "allow" },
                if r.api2 { "api2" } else { "uapi" },
                calls.join(", "),
                if r.get_only { "\"GET\"" } else { "\"GET\", \"POST\"" },
            ));
        }
        text
    }

    proptest! {
        #[test]
        fn decisions_agree(rules in prop::collection::vec(rule(), 0..8), m in 0..CALL_MODULES.len(), f in 0..CALL_FUNCTIONS.len(), api2: bool, post: bool) {
            let p = policy("prop.toml", &to_toml(&rules));
            let api = if api2 { Api::Api2 } else { Api::Uapi };
            let method = if post { Method::Post } else { Method::Get };
            let c = call(api, &format!("{}::{}", CALL_MODULES[m], CALL_FUNCTIONS[f]), &[]);
            let req = DecisionRequest { call: &c, method, client_ip: IN.parse().unwrap(), scope: None, now: NOW };
            let got = match p.decide(&req) {
                Decision::Allow { rule } => Some(rule.index),
                Decision::Deny { .. } => None,
            };
            prop_assert_eq!(got, naive(&rules, api, CALL_MODULES[m], CALL_FUNCTIONS[f], method));
        }
    }
}
