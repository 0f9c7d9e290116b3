//! Step 1, `admit`: what is checked before any credential or body is looked at: method,
//! request-target form, `Host`, framing headers, header names, `Connection` nominations and
//! header limits (security.md §2).
//!
//! Pure over the request head. Never reads the body, never looks at the credential's value.

use http::header::{HeaderMap, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{Uri, Version};

use crate::call::Method;
use crate::error::ProxyError;

/// Limits that apply to the request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits<'a> {
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_body: usize,
    /// `host[:port]` of `public_base_url`: the only authority accepted in absolute-form.
    pub own_authority: Option<&'a str>,
}

/// Headers a `Connection` header may not nominate (stripping them would change meaning).
const PROTECTED: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "cookie",
    "forwarded",
];

/// The admitted request head: its method and origin-form path and query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// Checks a request head. `version` matters: HTTP/2 carries its authority in the URI.
pub fn admit<'a>(
    method: &http::Method,
    uri: &'a Uri,
    version: Version,
    headers: &HeaderMap,
    limits: &HeadLimits<'_>,
) -> Result<Admitted<'a>, ProxyError> {
    let method = match *method {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        _ => return Err(ProxyError::MethodNotAllowed),
    };
    check_limits(headers, limits)?;
    check_target(uri, version, headers, limits)?;
    check_framing(headers, limits)?;
    check_names(headers)?;
    let path = uri.path();
    Ok(Admitted {
        method,
        path,
        query: uri.query(),
    })
}

fn bad(why: &str) -> ProxyError {
    ProxyError::BadRequest(why.to_owned())
}

fn check_limits(headers: &HeaderMap, limits: &HeadLimits<'_>) -> Result<(), ProxyError> {
    let bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if headers.len() > limits.max_headers || bytes > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge);
    }
    Ok(())
}

fn check_target(uri: &Uri, version: Version, headers: &HeaderMap, limits: &HeadLimits<'_>) -> Result<(), ProxyError> {
    let hosts = headers.get_all(HOST).iter().count();
    if version == Version::HTTP_2 {
        // :authority stands in for Host; a Host header beside it must not disagree.
        if hosts > 1 {
            return Err(bad("more than one Host header"));
        }
        if let (Some(h), Some(a)) = (headers.get(HOST), uri.authority()) {
            if !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()) {
                return Err(bad("Host header disagrees with :authority"));
            }
        }
        if uri.authority().is_none() && hosts == 0 {
            return Err(bad("missing :authority"));
        }
    } else {
        if hosts != 1 {
            return Err(bad("exactly one Host header is required"));
        }
        if let Some(authority) = uri.authority() {
            // Absolute-form: only for cpgate's own public host.
            let own = limits
                .own_authority
                .is_some_and(|own| own.eq_ignore_ascii_case(authority.as_str()));
            if !own || !matches!(uri.scheme_str(), Some("http" | "https")) {
                return Err(bad(
                    "absolute-form request targets are only accepted for this gateway's own host",
                ));
            }
        }
    }
    if !uri.path().starts_with('/') {
        return Err(bad("request target must be in origin-form"));
    }
    Ok(())
}

fn check_framing(headers: &HeaderMap, limits: &HeadLimits<'_>) -> Result<(), ProxyError> {
    let te: Vec<_> = headers.get_all(TRANSFER_ENCODING).iter().collect();
    let cl: Vec<_> = headers.get_all(CONTENT_LENGTH).iter().collect();
    if !te.is_empty() {
        let only_chunked = te.len() == 1 && te[0].as_bytes().eq_ignore_ascii_case(b"chunked");
        if !only_chunked {
            return Err(bad("unsupported Transfer-Encoding"));
        }
        if !cl.is_empty() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
    }
    match cl.as_slice() {
        [] => {}
        [one] => {
            let n = std::str::from_utf8(one.as_bytes())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad("invalid Content-Length"))?;
            if n > limits.max_body as u64 {
                return Err(ProxyError::TooLarge);
            }
        }
        _ => return Err(bad("more than one Content-Length header")),
    }
    if headers.get_all(CONTENT_TYPE).iter().count() > 1 {
        return Err(bad("more than one Content-Type header"));
    }
    if headers.get_all(http::header::AUTHORIZATION).iter().count() > 1 {
        return Err(bad("more than one Authorization header"));
    }
    Ok(())
}

fn check_names(headers: &HeaderMap) -> Result<(), ProxyError> {
    if headers.keys().any(|name| name.as_str().contains('_')) {
        // cpsrvd maps X_Foo and X-Foo to one CGI variable.
        return Err(bad("header names must not contain '_'"));
    }
    for value in headers.get_all(CONNECTION) {
        let text = value.to_str().map_err(|_| bad("invalid Connection header"))?;
        for token in text.split(',').map(|t| t.trim().to_ascii_lowercase()) {
            if PROTECTED.contains(&token.as_str()) || token.starts_with("x-forwarded-") {
                return Err(bad("Connection header names a protected header"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const LIMITS: HeadLimits<'static> = HeadLimits {
        max_headers: 64,
        max_header_bytes: 16 * 1024,
        max_body: 1024,
        own_authority: Some("cpgate.example.com:2083"),
    };

    fn head(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn run(method: &str, target: &str, version: Version, headers: &HeaderMap) -> Result<Method, ProxyError> {
        let uri: Uri = target.parse().unwrap();
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        admit(&method, &uri, version, headers, &LIMITS).map(|a| a.method)
    }

    fn is_bad(r: Result<Method, ProxyError>) -> bool {
        matches!(r, Err(ProxyError::BadRequest(_)))
    }

    const H1: Version = Version::HTTP_11;

    #[test]
    fn methods_other_than_get_and_post_are_405() {
        let h = head(&[("host", "x")]);
        for m in ["PUT", "DELETE", "TRACE", "CONNECT", "OPTIONS", "get", "Post", "PATCH"] {
            assert_eq!(run(m, "/execute/A/b", H1, &h), Err(ProxyError::MethodNotAllowed), "{m}");
        }
        assert_eq!(run("GET", "/execute/A/b", H1, &h), Ok(Method::Get));
        assert_eq!(run("POST", "/execute/A/b", H1, &h), Ok(Method::Post));
    }

    #[test]
    fn host_header_smuggling_missing_or_duplicate_host_is_rejected() {
        assert!(is_bad(run("GET", "/x", H1, &head(&[]))));
        assert!(is_bad(run("GET", "/x", H1, &head(&[("host", "a"), ("host", "b")]))));
    }

    #[test]
    fn absolute_form_for_a_foreign_host_is_rejected() {
        let h = head(&[("host", "x")]);
        assert!(is_bad(run("GET", "http://evil.example/execute/A/b", H1, &h)));
        assert_eq!(
            run("GET", "https://cpgate.example.com:2083/execute/A/b", H1, &h),
            Ok(Method::Get)
        );
        assert!(is_bad(run("GET", "*", H1, &h)));
        assert!(is_bad(run("GET", "evil.example:443", H1, &h)), "authority-form target");
        assert_eq!(
            run("CONNECT", "evil.example:443", H1, &h),
            Err(ProxyError::MethodNotAllowed)
        );
    }

    #[test]
    fn request_smuggling_framing_combinations_are_rejected() {
        let cases: &[&[(&'static str, &'static str)]] = &[
            &[("host", "x"), ("transfer-encoding", "chunked, chunked")],
            &[("host", "x"), ("transfer-encoding", "gzip, chunked")],
            &[
                ("host", "x"),
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            &[("host", "x"), ("transfer-encoding", "chunked"), ("content-length", "3")],
            &[("host", "x"), ("content-length", "3"), ("content-length", "3")],
            &[("host", "x"), ("content-length", "+3")],
            &[("host", "x"), ("content-type", "a"), ("content-type", "b")],
            &[
                ("host", "x"),
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b"),
            ],
        ];
        for c in cases {
            assert!(is_bad(run("POST", "/execute/A/b", H1, &head(c))), "{c:?}");
        }
        assert!(run(
            "POST",
            "/execute/A/b",
            H1,
            &head(&[("host", "x"), ("transfer-encoding", "chunked")])
        )
        .is_ok());
    }

    #[test]
    fn oversized_content_length_is_413_before_reading() {
        let h = head(&[("host", "x"), ("content-length", "1025")]);
        assert_eq!(run("POST", "/execute/A/b", H1, &h), Err(ProxyError::TooLarge));
    }

    #[test]
    fn connection_header_stripping_of_protected_headers_is_rejected() {
        for v in [
            "authorization",
            "Authorization",
            "close, Host",
            ", content-length",
            "x-forwarded-for",
            "Cookie",
            "forwarded",
        ] {
            let mut h = head(&[("host", "x")]);
            h.append(CONNECTION, HeaderValue::from_str(v).unwrap());
            assert!(is_bad(run("GET", "/x", H1, &h)), "{v}");
        }
        let mut h = head(&[("host", "x"), ("connection", "keep-alive")]);
        h.append(CONNECTION, HeaderValue::from_static("AUTHORIZATION"));
        assert!(
            is_bad(run("GET", "/x", H1, &h)),
            "a second Connection header counts too"
        );
        assert!(run("GET", "/x", H1, &head(&[("host", "x"), ("connection", "keep-alive")])).is_ok());
    }

    #[test]
    fn underscore_header_names_are_rejected() {
        assert!(is_bad(run(
            "GET",
            "/x",
            H1,
            &head(&[("host", "x"), ("x_forwarded_for", "1.2.3.4")])
        )));
    }

    #[test]
    fn too_many_headers_are_431() {
        let mut h = head(&[("host", "x")]);
        for i in 0..70 {
            h.append(
                http::HeaderName::try_from(format!("x-h{i}")).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        assert_eq!(run("GET", "/x", H1, &h), Err(ProxyError::HeadersTooLarge));
    }

    #[test]
    fn http2_uses_authority_and_rejects_a_disagreeing_host() {
        let h2 = Version::HTTP_2;
        assert!(run("GET", "https://cpgate.example.com/execute/A/b", h2, &head(&[])).is_ok());
        assert!(is_bad(run(
            "GET",
            "https://a.example/execute/A/b",
            h2,
            &head(&[("host", "b.example")])
        )));
    }
}
