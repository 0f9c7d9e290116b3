//! Table-driven classification cases: every path, parameter and body rule of
//! cpanel-wire.md §2-§5, one row each (input -> call or error kind).

use super::*;
use crate::call::Api;

#[derive(Debug)]
enum Want {
    /// UAPI `Module::function` with exactly these params (in order).
    Uapi(&'static str, &'static [(&'static str, &'static str)]),
    /// API 2 `Module::function` with exactly these params (in order).
    Api2(&'static str, &'static [(&'static str, &'static str)]),
    Bad,
    NotApi,
}

use Want::{Api2 as A2, Bad, NotApi, Uapi as U};

/// (method, target as `path?query`, content type, body, expected)
type Row = (&'static str, &'static str, Option<&'static str>, &'static str, Want);

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");
const LP: &str = "Email::list_pops";

fn run(method: &str, target: &str, ct: Option<&str>, body: &str) -> Result<CpanelCall, ClassifyError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let method = if method == "GET" { Method::Get } else { Method::Post };
    classify(&RawRequest {
        method,
        path,
        query,
        content_type: ct,
        body: body.as_bytes(),
    })
}

fn check(rows: &[Row]) {
    for (method, target, ct, body, want) in rows {
        let got = run(method, target, *ct, body);
        let ok = match (want, &got) {
            (U(name, params) | A2(name, params), Ok(call)) => {
                let api = if matches!(want, U(..)) { Api::Uapi } else { Api::Api2 };
                let got_params: Vec<_> = call.params.iter().collect();
                call.api == api && call.name() == *name && got_params == *params
            }
            (Bad, Err(ClassifyError::BadRequest(_))) | (NotApi, Err(ClassifyError::NotAnApiCall(_))) => true,
            _ => false,
        };
        assert!(ok, "{method} {target} {ct:?} {body:?}: want {want:?}, got {got:?}");
    }
}

#[test]
fn paths_follow_cpanel_wire_section_2() {
    check(&[
        ("GET", "/execute/Email/list_pops", None, "", U(LP, &[])),
        ("GET", "/execute/Email/2fa", None, "", U("Email::2fa", &[])),
        (
            "GET",
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=listpops",
            None,
            "",
            A2("Email::listpops", &[]),
        ),
        ("GET", "/execute/Email/list_pops%3Fjunk", None, "", Bad),
        ("GET", "/execute/%45mail/list_pops", None, "", Bad),
        ("GET", "/execute/Email/%2e%2e/x", None, "", Bad),
        ("GET", "/execute/Email/../Email/list_pops", None, "", Bad),
        ("GET", "/execute/./Email/list_pops", None, "", Bad),
        ("GET", "//execute/Email/list_pops", None, "", Bad),
        ("GET", "/execute//Email/list_pops", None, "", Bad),
        ("GET", "/execute/Email/list_pops;x=1", None, "", Bad),
        ("GET", "/execute/Email\\list_pops", None, "", Bad),
        ("GET", "/execute/Email/list_pops/", None, "", Bad),
        ("GET", "/execute/Email/list_pops/extra", None, "", Bad),
        ("GET", "/cpsess123/execute/Email/list_pops", None, "", Bad),
        ("GET", "/cPanel_magic_revision_1/execute/Email/list_pops", None, "", Bad),
        ("GET", "/frontend/execute/Email/list_pops", None, "", Bad),
        ("GET", "/execute/Émail/list_pops", None, "", Bad),
        ("GET", "/execute/Email/list\tpops", None, "", Bad),
        ("GET", "/execute/Email/list pops", None, "", Bad),
        ("GET", "*", None, "", Bad),
        ("GET", "http://host/execute/Email/list_pops", None, "", Bad),
        ("GET", "host:2083", None, "", Bad),
        ("GET", "", None, "", Bad),
        ("GET", "/execute", None, "", Bad),
        ("GET", "/execute/Email", None, "", Bad),
        ("GET", "/Execute/Email/list_pops", None, "", Bad),
        ("GET", "/execute/_Email/list_pops", None, "", Bad),
        ("GET", "/execute/Email/_list", None, "", Bad),
        ("GET", "/execute/Email/list-pops", None, "", Bad),
        ("GET", "/json-api/cpanel/", None, "", Bad),
        ("GET", "/json-api/cpanel/x", None, "", Bad),
        ("GET", "/json-api/CPANEL", None, "", Bad),
        ("GET", "/", None, "", NotApi),
        ("GET", "/frontend/jupiter/index.html", None, "", NotApi),
        ("GET", "/json-api/other", None, "", NotApi),
        ("GET", "/json-api", None, "", NotApi),
        ("GET", "/websocket/MysqlDump", None, "", NotApi),
        ("GET", "/3rdparty/wpt/index.php", None, "", NotApi),
    ]);
}

#[test]
fn urlencoded_parameters_follow_section_3() {
    check(&[
        (
            "GET",
            "/execute/Email/list_pops?a=1&b=2",
            None,
            "",
            U(LP, &[("a", "1"), ("b", "2")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a=1&a=2&a=3",
            None,
            "",
            U(LP, &[("a", "1"), ("a-0", "2"), ("a-1", "3")]),
        ),
        (
            "POST",
            "/execute/Email/list_pops?a=1",
            FORM,
            "a=2&b=3",
            U(LP, &[("a", "1"), ("a-0", "2"), ("b", "3")]),
        ),
        (
            "POST",
            "/execute/Email/list_pops?b=q",
            None,
            "b=body",
            U(LP, &[("b", "q"), ("b-0", "body")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a=1;b=2",
            None,
            "",
            U(LP, &[("a", "1;b=2")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a=x+y%2B%26%3D",
            None,
            "",
            U(LP, &[("a", "x y+&=")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a=%C3%A9",
            None,
            "",
            U(LP, &[("a", "é")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?&&a=1&&",
            None,
            "",
            U(LP, &[("a", "1")]),
        ),
        ("GET", "/execute/Email/list_pops?a=", None, "", U(LP, &[("a", "")])),
        ("GET", "/execute/Email/list_pops?a==b", None, "", U(LP, &[("a", "=b")])),
        (
            "GET",
            "/execute/Email/list_pops?a-0=x&a=1",
            None,
            "",
            U(LP, &[("a-0", "x"), ("a", "1")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a=%0D%0A",
            None,
            "",
            U(LP, &[("a", "\r\n")]),
        ),
        (
            "GET",
            "/execute/Email/list_pops?a-b=1&a-b=2",
            None,
            "",
            U(LP, &[("a-b", "1"), ("a-b-0", "2")]),
        ),
        ("GET", "/execute/Email/list_pops?a=1&a=2&a-0=x", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a-0=x&a=1&a=2", None, "", Bad),
        ("POST", "/execute/Email/list_pops?a=1&a=2", FORM, "a-0=x", Bad),
        ("GET", "/execute/Email/list_pops?x-3=1&x-3=2", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a", None, "", Bad),
        ("GET", "/execute/Email/list_pops?=1", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=%", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=%G1", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=%00", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=%FF", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=é", None, "", Bad),
        ("GET", "/execute/Email/list_pops?a=b c", None, "", Bad),
        ("POST", "/execute/Email/list_pops", FORM, "a=\u{0}", Bad),
        ("POST", "/execute/Email/list_pops", FORM, "a=é", U(LP, &[("a", "é")])),
        (
            "GET",
            "/execute/Email/list_pops?api.output=json",
            None,
            "",
            U(LP, &[("api.output", "json")]),
        ),
        ("GET", "/execute/Email/list_pops?api.output=xml", None, "", Bad),
        (
            "GET",
            "/execute/Email/list_pops?api.output=json&api.output=xml",
            None,
            "",
            Bad,
        ),
        (
            "GET",
            "/execute/Email/list_pops?api.sort_column=user",
            None,
            "",
            U(LP, &[("api.sort_column", "user")]),
        ),
    ]);
}

#[test]
fn too_many_parameters_are_refused() {
    let many = (0..=MAX_PARAMS)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let got = run("POST", "/execute/Email/list_pops", None, &many);
    assert!(matches!(got, Err(ClassifyError::BadRequest(_))), "{got:?}");
}

#[test]
fn bodies_follow_section_3() {
    check(&[
        ("GET", "/execute/Email/list_pops", None, "a=1", Bad),
        ("GET", "/execute/Email/list_pops", JSON, "", Bad),
        ("GET", "/execute/Email/list_pops?a=1", Some("text/plain"), "", U(LP, &[("a", "1")])),
        ("POST", "/execute/Email/list_pops", None, "a=1", U(LP, &[("a", "1")])),
        ("POST", "/execute/Email/list_pops", Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"), "a=1", U(LP, &[("a", "1")])),
        ("POST", "/execute/Email/list_pops", JSON, r#"{"a":"x","n":5,"t":true,"f":false,"file-1":"dropped"}"#, U(LP, &[("a", "x"), ("n", "5"), ("t", "1"), ("f", "0")])),
        ("POST", "/execute/Email/list_pops", JSON, r#"{"a":1,"a":2}"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, r#"{"a":[1]}"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, r#"{"a":{"b":1}}"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, r#"{"a":null}"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, r#"["a"]"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, "", Bad),
        ("POST", "/execute/Email/list_pops?b=1", JSON, r#"{"a":"x"}"#, Bad),
        ("POST", "/execute/Email/list_pops?", JSON, r#"{"a":"x"}"#, U(LP, &[("a", "x")])),
        ("POST", "/execute/Email/list_pops", Some("application/json; charset=utf-8"), r#"{"a":"x"}"#, Bad),
        ("POST", "/execute/Email/list_pops", Some("Application/JSON"), r#"{"a":"x"}"#, Bad),
        ("POST", "/execute/Email/list_pops", JSON, "{\"a\":\"x\"}\r\n", Bad),
        ("POST", "/execute/Email/list_pops", FORM, "a=1\r\nb=2", Bad),
        ("POST", "/execute/Email/list_pops", None, "--x\r\n", Bad),
        ("POST", "/execute/Email/list_pops", FORM, "a=1\nb=2", U(LP, &[("a", "1\nb=2")])),
        ("POST", "/execute/Email/list_pops", Some("text/plain"), "a=1", Bad),
        ("POST", "/execute/Email/list_pops?a=1", Some("text/plain"), "", U(LP, &[("a", "1")])),
        ("POST", "/execute/Email/list_pops", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files?dir=public_html", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\n1\r\n--x\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a.txt\"\r\n\r\nhi\r\n--x--\r\n", U("Fileman::upload_files", &[("dir", "public_html"), ("overwrite", "1")])),
        ("POST", "/execute/Fileman/upload_files?overwrite=0", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\n1\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a/b\"\r\n\r\nhi\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n1\r\n--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"b\"\r\n\r\n2\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files", Some("multipart/form-data; boundary=x"), "", Bad),
        ("POST", "/execute/Fileman/upload_files?f=1&f=2", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"f-0\"; filename=\"a\"\r\n\r\n1\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files?g=1&g=2", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n1\r\n--x\r\nContent-Disposition: form-data; name=\"g-0\"; filename=\"b\"\r\n\r\n1\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files?file-1=x", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a\"\r\n\r\n1\r\n--x--\r\n", Bad),
        ("POST", "/execute/Fileman/upload_files?a%20b=1", Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a\"\r\n\r\n1\r\n--x--\r\n", Bad),
    ]);
}

#[test]
fn uploads_carry_their_files() {
    let body = "--x\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\nthere\r\n--x--\r\n";
    let call = run(
        "POST",
        "/execute/Fileman/upload_files",
        Some("multipart/form-data; boundary=x"),
        body,
    )
    .unwrap();
    assert_eq!(call.files.len(), 1);
    assert_eq!(call.files[0].field, "file-1");
    assert_eq!(call.files[0].filename, "a.txt");
    assert_eq!(&call.files[0].data[..], b"hi\r\nthere");
}

const V2: &str = "cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop";

#[test]
fn api2_selectors_follow_section_4() {
    let with = |extra: &str| format!("/json-api/cpanel?{V2}&{extra}");
    let rows: Vec<(String, Want)> = vec![
        (with("email=a"), A2("Email::addpop", &[("email", "a")])),
        (
            with("cpanel_jsonapi_user=someone&api2_sort=1"),
            A2("Email::addpop", &[("api2_sort", "1")]),
        ),
        (with("cpanel_jsonapi_func=delpop"), Bad),
        (with("cpanel_jsonapi_func-0=delpop"), Bad),
        (with("cpanel_jsonapi_apiversion=2"), Bad),
        (with("cpanel_jsonapi_user=a&cpanel_jsonapi_user=b"), Bad),
        (with("cpanel_jsonapi_other=1"), Bad),
        (with("CPANEL_JSONAPI_FUNC=delpop"), Bad),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=1&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop"
                .into(),
            NotApi,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=3&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=add_pop"
                .into(),
            NotApi,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=02&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop"
                .into(),
            NotApi,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop".into(),
            Bad,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2&cpanel_jsonapi_func=addpop".into(),
            Bad,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email".into(),
            Bad,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Em.ail&cpanel_jsonapi_func=addpop"
                .into(),
            Bad,
        ),
        (
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=_x".into(),
            Bad,
        ),
    ];
    for (target, want) in rows {
        let target: &'static str = Box::leak(target.into_boxed_str());
        check(&[("GET", target, None, "", want)]);
    }
    check(&[
        (
            "POST",
            "/json-api/cpanel?cpanel_jsonapi_apiversion=2",
            FORM,
            "cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop&email=a",
            A2("Email::addpop", &[("email", "a")]),
        ),
        (
            "POST",
            "/json-api/cpanel?cpanel_jsonapi_func=listpops",
            FORM,
            "cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=delpop",
            Bad,
        ),
        (
            "POST",
            "/json-api/cpanel",
            JSON,
            r#"{"cpanel_jsonapi_apiversion":2,"cpanel_jsonapi_module":"Email","cpanel_jsonapi_func":"addpop","x":"y"}"#,
            A2("Email::addpop", &[("x", "y")]),
        ),
    ]);
}

fn batch_body(commands: &[&str], extra: &str) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for c in commands {
        ser.append_pair("command", c);
    }
    let mut body = ser.finish();
    if !extra.is_empty() {
        body.push('&');
        body.push_str(extra);
    }
    body
}

fn batch(commands: &[&str], extra: &str) -> Result<CpanelCall, ClassifyError> {
    run("POST", "/execute/Batch/strict", FORM, &batch_body(commands, extra))
}

#[test]
fn batches_follow_section_5() {
    let call = batch(
        &[
            r#"["Email","list_pops"]"#,
            r#"["Email","add_pop",{"email":"a","quota":0}]"#,
        ],
        "api.version=1",
    )
    .unwrap();
    assert_eq!(call.params.iter().collect::<Vec<_>>(), vec![("api.version", "1")]);
    assert_eq!(call.batch.len(), 2);
    assert_eq!(call.batch[0].name(), "Email::list_pops");
    assert_eq!(
        call.batch[1].params.iter().collect::<Vec<_>>(),
        vec![("email", "a"), ("quota", "0")]
    );

    let ordered = run(
        "POST",
        "/execute/Batch/strict",
        FORM,
        "command-1=%5B%22A%22%2C%22c%22%5D&command=%5B%22A%22%2C%22a%22%5D&command-0=%5B%22A%22%2C%22b%22%5D",
    )
    .unwrap();
    let names: Vec<_> = ordered.batch.iter().map(CpanelCall::name).collect();
    assert_eq!(names, vec!["A::a", "A::b", "A::c"]);

    for (commands, extra) in [
        (vec![], "api.version=1"),
        (vec![r#"["Email","list_pops"]"#], "other=1"),
        (vec![r#"["Email","list_pops"]"#], "api.output=json"),
        (vec![r#"["Email"]"#], ""),
        (vec![r#"["Email","list_pops",{"a":[1]}]"#], ""),
        (vec![r#"["Email","list_pops",{"a":1,"a":2}]"#], ""),
        (vec![r#"["Email","list_pops",{"api.output":"xml"}]"#], ""),
        (vec![r#"["Em/ail","list_pops"]"#], ""),
        (vec![r#"["Email","../x"]"#], ""),
        (vec![r#"not json"#], ""),
    ] {
        assert!(
            matches!(batch(&commands, extra), Err(ClassifyError::BadRequest(_))),
            "{commands:?} {extra}"
        );
    }
    let leading_zero = run(
        "POST",
        "/execute/Batch/strict",
        FORM,
        "command-01=%5B%22A%22%2C%22c%22%5D",
    );
    assert!(matches!(leading_zero, Err(ClassifyError::BadRequest(_))));
}

/// A batch nested `levels` deep around `Email::list_pops`, as a command string.
fn nested_command(levels: usize) -> String {
    let mut command = r#"["Email","list_pops"]"#.to_owned();
    for _ in 0..levels {
        command = format!(
            "[\"Batch\",\"strict\",{{\"command\":{}}}]",
            serde_json::to_string(&command).unwrap()
        );
    }
    command
}

#[test]
fn batches_nest_at_most_three_deep() {
    let depth3 = batch(&[&nested_command(2)], "").unwrap();
    let inner = &depth3.batch[0].batch[0];
    assert!(inner.is_batch());
    assert_eq!(inner.batch[0].name(), "Email::list_pops");
    let depth4 = batch(&[&nested_command(3)], "");
    assert!(matches!(depth4, Err(ClassifyError::BadRequest(_))), "{depth4:?}");
    let inner_extra = r#"["Batch","strict",{"command":"[\"A\",\"b\"]","x":"1"}]"#;
    assert!(batch(&[inner_extra], "").is_err());
}

#[test]
fn errors_are_short_and_never_echo_huge_input() {
    let long_key = "k".repeat(100_000);
    let body = format!("{long_key}-1=a&{long_key}-1=b");
    for got in [
        run("POST", "/execute/Email/list_pops", FORM, &body),
        run("POST", "/execute/Email/list_pops", JSON, &format!("\"{long_key}\"")),
        run("GET", &format!("/execute/Email/{long_key}"), None, ""),
    ] {
        let Err(e) = got else { panic!("expected an error") };
        assert!(e.to_string().len() < 250, "{e}");
    }
}
