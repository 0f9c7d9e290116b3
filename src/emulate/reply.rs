//! cPanel's response shapes (cpanel-wire.md §6), built in one place so every handler answers
//! with exactly the same key sets.
//!
//! UAPI: `{"data","errors","messages","metadata","status","warnings"}` — `errors`, `messages` and
//! `warnings` are `null` when empty, never `[]`. API 2: `{"cpanelresult":{"apiversion":2,
//! "module","func","data":[...],"event":{"result":1|0}}}` plus `"error"` on failure.

use serde_json::{json, Value};

/// What a UAPI handler produced: the `data` on success, the error texts on failure.
pub(crate) type UapiResult = Result<Value, String>;

/// What an API 2 handler produced: the `data` array, and the `error` text when it failed.
///
/// Many API 2 functions report failure inside `data[0]` (`{"result":0,"reason":"..."}`) *and* in
/// `error`, while `event.result` stays 1: the call ran, the function said no.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Api2Reply {
    pub data: Vec<Value>,
    pub error: Option<String>,
}

impl Api2Reply {
    /// A successful call with these rows.
    pub fn ok(data: Vec<Value>) -> Self {
        Self { data, error: None }
    }

    /// The `{"result":0,"reason":...}` failure most API 2 wrappers of UAPI functions return.
    pub fn result_failure(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            data: vec![json!({"result": 0, "reason": reason})],
            error: Some(reason),
        }
    }
}

/// A UAPI body with status 1.
pub(crate) fn uapi_ok(data: Value) -> Value {
    uapi_body(data, None)
}

/// A UAPI body with status 0 and one error.
pub(crate) fn uapi_error(message: impl Into<String>) -> Value {
    uapi_body(Value::Null, Some(vec![message.into()]))
}

/// Renders a handler's result as a UAPI body.
pub(crate) fn uapi_from(result: UapiResult) -> Value {
    match result {
        Ok(data) => uapi_ok(data),
        Err(message) => uapi_error(message),
    }
}

/// The general UAPI body: `errors` present means status 0.
pub(crate) fn uapi_body(data: Value, errors: Option<Vec<String>>) -> Value {
    let status = u8::from(errors.is_none());
    json!({
        "data": data,
        "errors": errors,
        "messages": null,
        "metadata": {},
        "status": status,
        "warnings": null,
    })
}

/// An API 2 body for a function that ran (event result 1).
pub(crate) fn api2_body(module: &str, func: &str, reply: Api2Reply) -> Value {
    let mut result = json!({
        "apiversion": 2,
        "module": module,
        "func": func,
        "data": reply.data,
        "event": {"result": 1},
    });
    if let (Some(error), Some(obj)) = (reply.error, result.as_object_mut()) {
        obj.insert("error".into(), Value::String(error));
    }
    json!({ "cpanelresult": result })
}

/// An API 2 body for a call that could not run at all (unknown module or function, bad request):
/// event result 0, empty data.
pub(crate) fn api2_error(module: &str, func: &str, message: impl Into<String>) -> Value {
    json!({
        "cpanelresult": {
            "apiversion": 2,
            "module": module,
            "func": func,
            "data": [],
            "error": message.into(),
            "event": {"result": 0},
        }
    })
}

/// `Failed to load module "X": ...`, as cPanel answers for a module it does not have.
pub(crate) fn unknown_module(module: &str) -> String {
    format!("Failed to load module \"{module}\": Can't locate Cpanel/API/{module}.pm in @INC.")
}

/// `The system could not find the function "f" in the module "M".`
pub(crate) fn unknown_function(module: &str, function: &str) -> String {
    format!("The system could not find the function \"{function}\" in the module \"{module}\".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_key_set_is_exactly_cpanels() {
        let body = uapi_ok(json!({"main_domain": "site.info"}));
        let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["data", "errors", "messages", "metadata", "status", "warnings"]);
        assert_eq!(body["status"], 1);
        assert_eq!(body["errors"], Value::Null);
        assert_eq!(body["metadata"], json!({}));
        let err = uapi_error("nope");
        assert_eq!(err["status"], 0);
        assert_eq!(err["errors"], json!(["nope"]));
        assert_eq!(err["data"], Value::Null);
    }

    #[test]
    fn api2_failure_keeps_event_result_and_adds_error() {
        let body = api2_body("Email", "addpop", Api2Reply::result_failure("bad"));
        let r = &body["cpanelresult"];
        assert_eq!(r["apiversion"], 2);
        assert_eq!(r["event"]["result"], 1);
        assert_eq!(r["error"], "bad");
        assert_eq!(r["data"], json!([{"result": 0, "reason": "bad"}]));
        let ok = api2_body("Email", "listpops", Api2Reply::ok(vec![]));
        assert!(ok["cpanelresult"].get("error").is_none());
        let fail = api2_error("X", "y", "gone");
        assert_eq!(fail["cpanelresult"]["event"]["result"], 0);
    }
}
