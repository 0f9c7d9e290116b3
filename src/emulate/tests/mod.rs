//! Dispatcher tests: [`Emulator::handle`] on `CpanelCall`s built directly, no HTTP, no classify.
//! Each function's success shape, validation texts, state visible to later calls, unknown
//! modules and functions, API 2 shapes, and `Batch::strict`.

use serde_json::{json, Value};

use super::Emulator;
use crate::call::{Api, CpanelCall, Params};

mod email;
mod stores;
mod zone;

/// Parameters as written in the test tables.
pub(super) type Pairs<'a> = &'a [(&'a str, &'a str)];

pub(super) fn call(api: Api, module: &str, function: &str, pairs: &[(&str, &str)]) -> CpanelCall {
    CpanelCall::new(api, module, function, Params::from_unique_pairs(pairs.iter().copied()))
}

/// The full UAPI body.
pub(super) fn uapi(e: &Emulator, module: &str, function: &str, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = e.handle(&call(Api::Uapi, module, function, pairs));
    assert_eq!(status, 200);
    body
}

/// `data` of a UAPI call that must succeed.
pub(super) fn ok(e: &Emulator, module: &str, function: &str, pairs: &[(&str, &str)]) -> Value {
    let body = uapi(e, module, function, pairs);
    assert_eq!(body["status"], 1, "{module}::{function} failed: {body}");
    assert_eq!(body["errors"], Value::Null);
    body["data"].clone()
}

/// The single error of a UAPI call that must fail.
pub(super) fn fail(e: &Emulator, module: &str, function: &str, pairs: &[(&str, &str)]) -> String {
    let body = uapi(e, module, function, pairs);
    assert_eq!(body["status"], 0, "{module}::{function} succeeded: {body}");
    assert_eq!(body["data"], Value::Null);
    body["errors"][0].as_str().unwrap().to_owned()
}

/// The `cpanelresult` of an API 2 call.
pub(super) fn api2(e: &Emulator, module: &str, function: &str, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = e.handle(&call(Api::Api2, module, function, pairs));
    assert_eq!(status, 200);
    let keys: Vec<_> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cpanelresult"]);
    let r = body["cpanelresult"].clone();
    assert_eq!(
        (r["apiversion"].clone(), r["module"].clone(), r["func"].clone()),
        (json!(2), json!(module), json!(function))
    );
    r
}

pub(super) fn addresses(data: &Value) -> Vec<&str> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect()
}
#[test]
fn list_domains_has_cpanels_exact_shape() {
    let e = Emulator::new("demo");
    let body = uapi(&e, "DomainInfo", "list_domains", &[]);
    assert_eq!(
        body,
        json!({"messages": null, "status": 1, "errors": null, "metadata": {}, "warnings": null, "data": {
            "main_domain": "example.com", "sub_domains": ["blog.example.com"],
            "parked_domains": [], "addon_domains": ["example.net"]}})
    );
}

#[test]
fn domains_data_and_single_domain_data() {
    let e = Emulator::new("demo");
    let hash = ok(&e, "DomainInfo", "domains_data", &[]);
    assert_eq!(hash["main_domain"]["documentroot"], "/home/demo/public_html");
    assert_eq!(hash["addon_domains"][0]["type"], "addon_domain");
    assert_eq!(hash["sub_domains"][0]["domain"], "blog.example.com");
    let list = ok(&e, "DomainInfo", "domains_data", &[("format", "list")]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let one = ok(&e, "DomainInfo", "single_domain_data", &[("domain", "example.net")]);
    assert_eq!(
        (one["domain"].as_str(), one["type"].as_str()),
        (Some("example.net"), Some("addon_domain"))
    );
    assert_eq!(
        fail(&e, "DomainInfo", "single_domain_data", &[]),
        "You must specify the \"domain\" parameter."
    );
    assert_eq!(
        fail(&e, "DomainInfo", "single_domain_data", &[("domain", "evil.org")]),
        "You do not own a domain named \"evil.org\"."
    );
}

fn batch(commands: Vec<CpanelCall>) -> CpanelCall {
    CpanelCall {
        batch: commands,
        ..call(Api::Uapi, "Batch", "strict", &[])
    }
}

#[test]
fn batch_runs_in_order_and_stops_at_first_failure() {
    let e = Emulator::new("demo");
    let b = batch(vec![
        call(Api::Uapi, "Email", "add_pop", &[("email", "b1"), ("password", "x")]),
        call(Api::Uapi, "Email", "add_pop", &[("email", "b1"), ("password", "x")]),
        call(Api::Uapi, "Email", "add_pop", &[("email", "b3"), ("password", "x")]),
    ]);
    let (_, body) = e.handle(&b);
    assert_eq!(body["status"], 0);
    assert_eq!(body["errors"], json!(["The account b1@example.com already exists!"]));
    let results = body["data"].as_array().unwrap();
    assert_eq!(results.len(), 2, "the third command never ran");
    assert_eq!(
        (results[0]["status"].clone(), results[0]["data"].clone()),
        (json!(1), json!("b1+example.com"))
    );
    let pops = ok(&e, "Email", "list_pops", &[]);
    assert!(addresses(&pops).contains(&"b1@example.com"), "no rollback");
    assert!(!addresses(&pops).contains(&"b3@example.com"));
}

#[test]
fn batch_success_nesting_and_empty() {
    let e = Emulator::new("demo");
    let inner = batch(vec![call(Api::Uapi, "Mysql", "create_database", &[("name", "demo_n")])]);
    let (_, body) = e.handle(&batch(vec![call(Api::Uapi, "DomainInfo", "list_domains", &[]), inner]));
    assert_eq!(body["status"], 1, "{body}");
    assert_eq!(body["data"][0]["data"]["main_domain"], "example.com");
    assert_eq!(body["data"][1]["data"][0]["status"], 1);
    assert_eq!(
        fail(&e, "Batch", "strict", &[]),
        "You must specify the \"command\" parameter."
    );
    let mut deep = call(Api::Uapi, "Email", "list_pops", &[]);
    for _ in 0..5 {
        deep = batch(vec![deep]);
    }
    let (_, body) = e.handle(&deep);
    assert_eq!(body["status"], 0);
}

#[test]
fn unknown_modules_and_functions_use_cpanels_texts() {
    let e = Emulator::new("demo");
    assert_eq!(
        fail(&e, "Nope", "list", &[]),
        "Failed to load module \"Nope\": Can't locate Cpanel/API/Nope.pm in @INC."
    );
    assert_eq!(
        fail(&e, "Email", "nope", &[]),
        "The system could not find the function \"nope\" in the module \"Email\"."
    );
    assert_eq!(
        fail(&e, "Email", "listpops", &[]),
        "The system could not find the function \"listpops\" in the module \"Email\"."
    );
    let r = api2(&e, "Email", "list_pops", &[]);
    assert_eq!(
        r["error"],
        "The system could not find the function \"list_pops\" in the module \"Email\"."
    );
    assert_eq!((r["event"]["result"].clone(), r["data"].clone()), (json!(0), json!([])));
    let r = api2(&e, "Nope", "x", &[]);
    assert_eq!(
        r["error"],
        "Failed to load module \"Nope\": Can't locate Cpanel/API/Nope.pm in @INC."
    );
}

#[test]
fn functions_lists_both_apis() {
    let all = Emulator::functions();
    assert!(all.contains(&"Email::add_pop".to_owned()));
    assert!(all.contains(&"api2:ZoneEdit::add_zone_record".to_owned()));
    assert!(all.contains(&"Batch::strict".to_owned()));
}
