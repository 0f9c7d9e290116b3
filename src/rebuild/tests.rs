//! Rebuild cases: canonical paths, query vs form body, API 2 selector order, batch JSON, multipart framing.

use super::*;
use crate::call::{Params, UploadFile};

fn uapi(module: &str, function: &str, pairs: &[(&str, &str)]) -> CpanelCall {
    CpanelCall::new(
        Api::Uapi,
        module,
        function,
        Params::from_unique_pairs(pairs.iter().copied()),
    )
}

#[test]
fn get_without_params_has_no_question_mark() {
    let r = rebuild(&uapi("Email", "list_pops", &[]), Method::Get, "u");
    assert_eq!(r.path_and_query, "/execute/Email/list_pops");
    assert_eq!(r.content_type, None);
    assert!(r.body.is_empty());
}

#[test]
fn get_puts_params_in_the_query_and_post_in_a_form_body() {
    let call = uapi("Email", "add_pop", &[("email", "a b&c=d"), ("x-0", "\r\n")]);
    let get = rebuild(&call, Method::Get, "u");
    assert_eq!(
        get.path_and_query,
        "/execute/Email/add_pop?email=a+b%26c%3Dd&x-0=%0D%0A"
    );
    let post = rebuild(&call, Method::Post, "u");
    assert_eq!(post.path_and_query, "/execute/Email/add_pop");
    assert_eq!(post.content_type.as_deref(), Some(FORM_CONTENT_TYPE));
    assert_eq!(&post.body[..], b"email=a+b%26c%3Dd&x-0=%0D%0A");
}

#[test]
fn api2_selectors_come_first_with_the_upstream_user() {
    let call = CpanelCall::new(
        Api::Api2,
        "Email",
        "addpop",
        Params::from_unique_pairs([("email", "a")]),
    );
    let r = rebuild(&call, Method::Get, "acct");
    assert_eq!(
        r.path_and_query,
        "/json-api/cpanel?cpanel_jsonapi_user=acct&cpanel_jsonapi_apiversion=2&cpanel_jsonapi_module=Email&cpanel_jsonapi_func=addpop&email=a"
    );
}

#[test]
fn hand_built_names_cannot_add_path_segments() {
    let r = rebuild(&uapi("Em/ail", "../x?y", &[]), Method::Get, "u");
    assert_eq!(r.path_and_query, "/execute/Em%2Fail/%2E%2E%2Fx%3Fy");
}

#[test]
fn batch_commands_are_json_arrays_in_order_with_args_in_order() {
    let mut inner_batch = uapi("Batch", "strict", &[]);
    inner_batch.batch.push(uapi("Email", "list_pops", &[]));
    let mut call = uapi("Batch", "strict", &[("api.version", "1")]);
    call.batch
        .push(uapi("Email", "add_pop", &[("z", "1"), ("a", "\"q\"\\\n\u{1}")]));
    call.batch.push(inner_batch);
    let pairs = wire_pairs(&call, "u");
    assert_eq!(
        pairs,
        vec![
            ("api.version".to_owned(), "1".to_owned()),
            (
                "command".to_owned(),
                r#"["Email","add_pop",{"z":"1","a":"\"q\"\\\n\u0001"}]"#.to_owned()
            ),
            (
                "command-0".to_owned(),
                r#"["Batch","strict",{"command":"[\"Email\",\"list_pops\"]"}]"#.to_owned()
            ),
        ]
    );
    for (_, json) in &pairs[1..] {
        assert!(serde_json::from_str::<serde_json::Value>(json).is_ok(), "{json}");
    }
}

#[test]
fn files_get_a_multipart_body_with_a_safe_boundary() {
    let mut call = uapi("Fileman", "upload_files", &[("dir", "public_html")]);
    call.files.push(UploadFile {
        field: "file-1".into(),
        filename: "a\"b.txt".into(),
        content_type: Some("text/plain".into()),
        data: bytes::Bytes::from_static(b"x\r\n--y"),
    });
    let r = rebuild(&call, Method::Post, "u");
    let ct = r.content_type.unwrap();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let want = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"dir\"\r\n\r\npublic_html\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a%22b.txt\"\r\nContent-Type: text/plain\r\n\r\nx\r\n--y\r\n\
         --{b}--\r\n",
        b = boundary
    );
    assert_eq!(std::str::from_utf8(&r.body).unwrap(), want);
    assert_eq!(r.path_and_query, "/execute/Fileman/upload_files");
}
