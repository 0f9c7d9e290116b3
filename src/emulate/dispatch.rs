//! The dispatcher: one table per API from `(module, function)` to a handler, plus
//! `Batch::strict`.
//!
//! A module is "known" when it has at least one row in its API's table; an unknown module and an
//! unknown function of a known module get cPanel's two distinct texts. Handlers never see a call
//! for another API.

use serde_json::Value;

use crate::call::{Api, CpanelCall};

use super::reply::{
    api2_body, api2_error, uapi_body, uapi_error, uapi_from, unknown_function, unknown_module, Api2Reply, UapiResult,
};
use super::state::{missing, Account};
use super::{domain, email, fileman, mysql, zone};

/// How deep `Batch::strict` calls may nest (the proxy allows 3; one more level is harmless here).
const MAX_BATCH_DEPTH: usize = 4;

type UapiFn = fn(&mut Account, &CpanelCall) -> UapiResult;
type Api2Fn = fn(&mut Account, &CpanelCall) -> Api2Reply;

/// A UAPI row: an ordinary function, or the batch runner (which needs the dispatcher itself).
#[derive(Clone, Copy)]
enum UapiHandler {
    Plain(UapiFn),
    Batch,
}

use UapiHandler::{Batch, Plain};

/// Every UAPI function the emulator knows.
const UAPI: &[(&str, &str, UapiHandler)] = &[
    ("Batch", "strict", Batch),
    ("DomainInfo", "list_domains", Plain(domain::list_domains)),
    ("DomainInfo", "domains_data", Plain(domain::domains_data)),
    ("DomainInfo", "single_domain_data", Plain(domain::single_domain_data)),
    ("Email", "list_pops", Plain(email::list_pops)),
    ("Email", "add_pop", Plain(email::add_pop)),
    ("Email", "delete_pop", Plain(email::delete_pop)),
    ("Email", "passwd_pop", Plain(email::passwd_pop)),
    ("Email", "list_forwarders", Plain(email::list_forwarders)),
    ("Email", "add_forwarder", Plain(email::add_forwarder)),
    ("Email", "delete_forwarder", Plain(email::delete_forwarder)),
    ("Fileman", "list_files", Plain(fileman::list_files)),
    ("Fileman", "upload_files", Plain(fileman::upload_files)),
    ("Mysql", "list_databases", Plain(mysql::list_databases)),
    ("Mysql", "create_database", Plain(mysql::create_database)),
    ("Mysql", "delete_database", Plain(mysql::delete_database)),
    ("Mysql", "list_users", Plain(mysql::list_users)),
    ("Mysql", "create_user", Plain(mysql::create_user)),
    ("Mysql", "delete_user", Plain(mysql::delete_user)),
    (
        "Mysql",
        "set_privileges_on_database",
        Plain(mysql::set_privileges_on_database),
    ),
];

/// Every API 2 function the emulator knows.
const API2: &[(&str, &str, Api2Fn)] = &[
    ("Email", "listpops", email::api2_listpops),
    ("Email", "addpop", email::api2_addpop),
    ("ZoneEdit", "fetchzones", zone::fetchzones),
    ("ZoneEdit", "fetchzone_records", zone::fetchzone_records),
    ("ZoneEdit", "add_zone_record", zone::add_zone_record),
    ("ZoneEdit", "remove_zone_record", zone::remove_zone_record),
];

/// Every function the emulator answers, as `Module::function` (UAPI) and
/// `api2:Module::function` (API 2), for docs and the demo.
pub(crate) fn functions() -> impl Iterator<Item = String> {
    UAPI.iter()
        .map(|(m, f, _)| format!("{m}::{f}"))
        .chain(API2.iter().map(|(m, f, _)| format!("api2:{m}::{f}")))
}

/// Runs `call` against `account` and renders the response body in its API's shape.
pub(crate) fn dispatch(account: &mut Account, call: &CpanelCall) -> Value {
    dispatch_at(account, call, 0)
}

fn dispatch_at(account: &mut Account, call: &CpanelCall, depth: usize) -> Value {
    match call.api {
        Api::Uapi => match lookup(UAPI, &call.module, &call.function) {
            Ok(Plain(handler)) => uapi_from(handler(account, call)),
            Ok(Batch) => batch(account, call, depth),
            Err(message) => uapi_error(message),
        },
        Api::Api2 => match lookup(API2, &call.module, &call.function) {
            Ok(handler) => api2_body(&call.module, &call.function, handler(account, call)),
            Err(message) => api2_error(&call.module, &call.function, message),
        },
    }
}

/// The handler for `module::function`, or cPanel's text for an unknown module or function.
fn lookup<T: Copy>(table: &[(&str, &str, T)], module: &str, function: &str) -> Result<T, String> {
    let mut module_known = false;
    for (m, f, handler) in table {
        if *m == module {
            if *f == function {
                return Ok(*handler);
            }
            module_known = true;
        }
    }
    Err(if module_known {
        unknown_function(module, function)
    } else {
        unknown_module(module)
    })
}

/// `Batch::strict`: runs the inner calls in order and stops at the first failure, without
/// rolling back. `data` holds each inner call's full UAPI body, up to and including the failed
/// one; the batch's errors are the failed call's errors.
fn batch(account: &mut Account, call: &CpanelCall, depth: usize) -> Value {
    if call.batch.is_empty() {
        return uapi_error(missing("command"));
    }
    if depth >= MAX_BATCH_DEPTH {
        return uapi_error(format!("Batch calls may be nested at most {MAX_BATCH_DEPTH} deep."));
    }
    let mut results = Vec::with_capacity(call.batch.len());
    for inner in &call.batch {
        let body = if inner.api == Api::Uapi {
            dispatch_at(account, inner, depth + 1)
        } else {
            uapi_error(format!("Batch commands must be UAPI calls, not \"{inner}\"."))
        };
        let failed = body.get("status") != Some(&Value::from(1));
        let errors = failed.then(|| inner_errors(&body, inner));
        results.push(body);
        if let Some(errors) = errors {
            return uapi_body(Value::Array(results), Some(errors));
        }
    }
    uapi_body(Value::Array(results), None)
}

/// The failed inner call's error texts (never empty).
fn inner_errors(body: &Value, inner: &CpanelCall) -> Vec<String> {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|e| e.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if errors.is_empty() {
        vec![format!("The batch command \"{inner}\" failed.")]
    } else {
        errors
    }
}
