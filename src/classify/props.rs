//! Properties: what cpgate accepts, cPanel reads the same way (checked with the independent
//! [`model`](super::model)), both on the client's request and on the rebuilt one; and
//! classification never panics on arbitrary input.

use proptest::prelude::*;

use super::model::{self, View};
use super::*;
use crate::call::Api;
use crate::rebuild::{command_json, rebuild};

const USER: &str = "acct";

/// Keys chosen to collide: plain names, family members, meta and selector keys, odd bytes.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("a-0".to_owned()),
        Just("a-1".to_owned()),
        Just("b".to_owned()),
        Just("x-3".to_owned()),
        Just("a-b".to_owned()),
        Just("email".to_owned()),
        Just("api.output".to_owned()),
        Just("api.sort".to_owned()),
        Just("cpanel_jsonapi_user".to_owned()),
        Just("k=;&+%".to_owned()),
        Just("clé é".to_owned()),
        "[a-c]{1,2}(-[0-2])?",
    ]
}

/// Values with every byte that matters to the form grammar, CR LF and non-ASCII.
fn value() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("&"),
        Just("="),
        Just("+"),
        Just("%"),
        Just("%41"),
        Just(";"),
        Just("\r"),
        Just("\n"),
        Just("\r\n"),
        Just(" "),
        Just("é"),
        Just("中"),
        Just("json"),
        Just("x"),
        Just("0"),
    ];
    prop::collection::vec(atom, 0..5).prop_map(|v| v.concat())
}

/// How a pair is written on the wire: 0 = a real form serializer, 1 = every byte escaped,
/// 2 = raw (may split or fail: fine, only accepted requests are checked).
fn encode(s: &str, how: u8) -> String {
    match how {
        0 => form_urlencoded::byte_serialize(s.as_bytes()).collect(),
        1 => s.bytes().map(|b| format!("%{b:02X}")).collect(),
        _ => s.to_owned(),
    }
}

fn pairs() -> impl Strategy<Value = Vec<(String, String, u8)>> {
    prop::collection::vec(
        (
            key(),
            value(),
            prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
        ),
        0..7,
    )
}

fn wire(pairs: &[(String, String, u8)]) -> String {
    let pieces: Vec<String> = pairs
        .iter()
        .map(|(k, v, how)| format!("{}={}", encode(k, *how), encode(v, *how)))
        .collect();
    pieces.join("&")
}

#[derive(Debug, Clone)]
struct Generated {
    method: Method,
    path: String,
    query: String,
    body: String,
}

fn api2_selectors() -> impl Strategy<Value = Vec<(String, String, u8)>> {
    let version = prop_oneof![8 => Just("2"), 1 => Just("1"), 1 => Just("3")];
    let func = prop_oneof![Just("addpop"), Just("listpops")];
    (version, func, any::<bool>()).prop_map(|(version, func, twice)| {
        let mut selectors = vec![
            ("cpanel_jsonapi_apiversion".to_owned(), version.to_owned(), 0),
            ("cpanel_jsonapi_module".to_owned(), "Email".to_owned(), 0),
            ("cpanel_jsonapi_func".to_owned(), func.to_owned(), 0),
        ];
        if twice {
            selectors.push(("cpanel_jsonapi_func".to_owned(), "delpop".to_owned(), 0));
        }
        selectors
    })
}

fn request() -> impl Strategy<Value = Generated> {
    let target = prop_oneof![
        Just(("/execute/Email/list_pops", false)),
        Just(("/execute/DomainInfo/list_domains", false)),
        Just(("/json-api/cpanel", true)),
    ];
    (any::<bool>(), target, pairs(), pairs(), api2_selectors(), any::<u8>()).prop_map(
        |(post, (path, is_api2), query, body, selectors, split)| {
            let (mut query, mut body) = (query, body);
            if is_api2 {
                for (i, s) in selectors.into_iter().enumerate() {
                    let into_body = post && split >> (i % 8) & 1 == 1;
                    let at = usize::from(split) % 3;
                    let list = if into_body { &mut body } else { &mut query };
                    list.insert(at.min(list.len()), s);
                }
            }
            let method = if post { Method::Post } else { Method::Get };
            let body = if post { wire(&body) } else { String::new() };
            Generated {
                method,
                path: path.to_owned(),
                query: wire(&query),
                body,
            }
        },
    )
}

fn classify_generated(g: &Generated) -> Result<CpanelCall, ClassifyError> {
    classify(&RawRequest {
        method: g.method,
        path: &g.path,
        query: Some(&g.query),
        content_type: None,
        body: g.body.as_bytes(),
    })
}

/// What cPanel must read for `call`: the API 2 selectors the rebuild writes, then the params.
fn expected_view(call: &CpanelCall) -> View {
    let mut view = View::new();
    if call.api == Api::Api2 {
        for (k, v) in [
            ("cpanel_jsonapi_user", USER),
            ("cpanel_jsonapi_apiversion", "2"),
            ("cpanel_jsonapi_module", &call.module),
            ("cpanel_jsonapi_func", &call.function),
        ] {
            view.push((k.to_owned(), v.to_owned()));
        }
    }
    view.extend(call.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    view
}

fn view_without_selectors(view: View) -> View {
    view.into_iter()
        .filter(|(k, _)| !k.starts_with("cpanel_jsonapi_"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Stops: a rebuilt request that cPanel reads differently from what was authorized.
    #[test]
    fn classify_rebuild_roundtrip_matches_cpanel_model(g in request()) {
        if let Ok(call) = classify_generated(&g) {
            let rebuilt = rebuild(&call, g.method, USER);
            let (path, query) = rebuilt.path_and_query.split_once('?').unwrap_or((&rebuilt.path_and_query, ""));
            let body = std::str::from_utf8(&rebuilt.body).unwrap();
            prop_assert_eq!(path, g.path.as_str());
            prop_assert!(!rebuilt.path_and_query.contains(['\r', '\n']));
            prop_assert!(!body.contains(['\r', '\n']));
            match g.method {
                Method::Get => prop_assert!(body.is_empty() && rebuilt.content_type.is_none()),
                Method::Post => prop_assert!(query.is_empty()),
            }
            prop_assert_eq!(model::read_form(query, body), expected_view(&call));
        }
    }

    /// Stops: cpgate authorizing parameters other than the ones cPanel would run with.
    #[test]
    fn accepted_requests_read_the_same_in_cpanel_model(g in request()) {
        if let Ok(call) = classify_generated(&g) {
            let seen = model::read_form(&g.query, &g.body);
            let selector = |k: &str| seen.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            if call.api == Api::Api2 {
                prop_assert_eq!(selector("cpanel_jsonapi_apiversion"), Some("2"));
                prop_assert_eq!(selector("cpanel_jsonapi_module"), Some(call.module.as_str()));
                prop_assert_eq!(selector("cpanel_jsonapi_func"), Some(call.function.as_str()));
                prop_assert_eq!(view_without_selectors(seen.clone()), expected_view(&call)[4..].to_vec());
            } else {
                prop_assert_eq!(seen, expected_view(&call));
            }
        }
    }

    /// Stops: a panic (or a hang) on hostile bytes anywhere in the request.
    #[test]
    fn classify_never_panics(
        post in any::<bool>(),
        path in prop_oneof![any::<String>(), "(/|[a-zA-Z_.%;\\\\-]{1,8}){0,6}", Just("/execute/Batch/strict".to_owned()), Just("/execute/Fileman/upload_files".to_owned()), Just("/json-api/cpanel".to_owned())],
        query in prop::option::of(any::<String>()),
        content_type in prop::option::of(prop_oneof![Just("application/json".to_owned()), Just("multipart/form-data; boundary=b".to_owned()), any::<String>()]),
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), any::<String>().prop_map(String::into_bytes), Just(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n\r\n--b--".to_vec())],
    ) {
        let method = if post { Method::Post } else { Method::Get };
        let _ = classify(&RawRequest { method, path: &path, query: query.as_deref(), content_type: content_type.as_deref(), body: &body });
    }

    /// Stops: a rebuilt batch whose commands cPanel would read differently from the inner calls.
    #[test]
    fn batch_rebuild_roundtrip_matches_cpanel_model(
        commands in prop::collection::vec((prop_oneof![Just("list_pops"), Just("add_pop")], prop::collection::vec((key(), value()), 0..4)), 1..4),
        nest in any::<bool>(),
        post in any::<bool>(),
    ) {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (function, args) in &commands {
            let args: serde_json::Map<String, serde_json::Value> = args.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            let mut command = serde_json::json!(["Email", function, args]).to_string();
            if nest {
                command = serde_json::json!(["Batch", "strict", {"command": command}]).to_string();
            }
            ser.append_pair("command", &command);
        }
        let body = ser.finish();
        let method = if post { Method::Post } else { Method::Get };
        let (query, body) = if post { (None, body.as_str()) } else { (Some(body.as_str()), "") };
        let call = classify(&RawRequest { method, path: "/execute/Batch/strict", query, content_type: None, body: body.as_bytes() });
        if let Ok(call) = call {
            let rebuilt = rebuild(&call, method, USER);
            let (_, query) = rebuilt.path_and_query.split_once('?').unwrap_or(("", ""));
            let view = model::read_form(query, std::str::from_utf8(&rebuilt.body).unwrap());
            prop_assert_eq!(view.len(), call.batch.len());
            for ((_, text), inner) in view.iter().zip(&call.batch) {
                prop_assert_eq!(json_model(text), json_model(&command_json(inner)));
                prop_assert_eq!(json_model(text), call_model(inner));
            }
        }
    }
}

/// A command as a generic JSON value (serde_json's own reader, not the classifier's).
fn json_model(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// What a call's command must decode to: `[M, F, {args as strings}]`, inner batches nested.
fn call_model(call: &CpanelCall) -> serde_json::Value {
    let mut args: serde_json::Map<String, serde_json::Value> = call
        .params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned().into()))
        .collect();
    for (i, inner) in call.batch.iter().enumerate() {
        let key = if i == 0 {
            "command".to_owned()
        } else {
            format!("command-{}", i - 1)
        };
        args.insert(key, command_json(inner).into());
    }
    if args.is_empty() {
        serde_json::json!([call.module, call.function])
    } else {
        serde_json::json!([call.module, call.function, args])
    }
}

/// Stops: a rebuilt upload whose framing or fields differ from the authorized call.
#[test]
fn multipart_rebuild_roundtrip_matches_cpanel_model() {
    let field_values = ["plain", "two\r\nlines", "--x", "é\"quoted\"", ""];
    for value in field_values {
        let mut body = String::new();
        body.push_str("--x1\r\nContent-Disposition: form-data; name=\"dir\"\r\n\r\n");
        body.push_str(value);
        body.push_str("\r\n--x1\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a b.txt\"\r\nContent-Type: text/plain\r\n\r\n");
        body.push_str(value);
        body.push_str("\r\n--x1--\r\n");
        let call = classify(&RawRequest {
            method: Method::Post,
            path: "/execute/Fileman/upload_files",
            query: Some("overwrite=1"),
            content_type: Some("multipart/form-data; boundary=x1"),
            body: body.as_bytes(),
        })
        .unwrap();
        let rebuilt = rebuild(&call, Method::Post, USER);
        assert!(rebuilt
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("multipart/form-data; boundary=cpgate-"));
        let parts = model::read_multipart(&rebuilt.body);
        let fields: Vec<_> = parts
            .iter()
            .filter(|p| p.filename.is_none())
            .map(|p| (p.name.as_str(), std::str::from_utf8(&p.data).unwrap()))
            .collect();
        assert_eq!(fields, vec![("overwrite", "1"), ("dir", value)]);
        let files: Vec<_> = parts.iter().filter(|p| p.filename.is_some()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "file-1");
        assert_eq!(files[0].filename.as_deref(), Some("a b.txt"));
        assert_eq!(files[0].content_type.as_deref(), Some("text/plain"));
        assert_eq!(files[0].data, value.as_bytes());
    }
}

/// Stops: the properties above passing vacuously because the generator rarely yields an
/// accepted request (or never one with renamed duplicates, or never an API 2 call).
#[test]
fn property_generators_are_not_vacuous() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut uapi, mut api2, mut renamed) = (0, 0, 0);
    for _ in 0..2000 {
        let g = request().new_tree(&mut runner).unwrap().current();
        if let Ok(call) = classify_generated(&g) {
            match call.api {
                Api::Uapi => uapi += 1,
                Api::Api2 => api2 += 1,
            }
            renamed += usize::from(call.params.iter().any(|(k, _)| k.ends_with("-0")));
        }
    }
    assert!(
        uapi > 200 && api2 > 50 && renamed > 100,
        "uapi={uapi} api2={api2} renamed={renamed}"
    );
}
