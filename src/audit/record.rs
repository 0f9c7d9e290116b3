//! Record encoding: one [`Record`] plus its chain stamp -> one JSON line, written straight into
//! the writer's buffer, and the secret-parameter redaction of `cpanel-wire.md` §7.
//!
//! Owns: field order, JSON escaping, the timestamp format, the redaction rule.
//! Never: emits a secret parameter value, upload content or a raw query string; allocates an
//! intermediate `serde_json::Value`; fails (encoding into a `Vec<u8>` is infallible).
//! Invariants: the output is one valid JSON object without a newline; fields appear in the fixed
//! order `ts, seq, prev, event, request_id, developer, jti, client_ip, method, api, call, params,
//! decision, rule, reason, code, status, cpanel_status, bytes, duration_us`; unset fields are
//! omitted.

use std::io::Write as _;

use time::OffsetDateTime;

use super::chain::push_hex;
use super::Record;
use crate::call::{family_name, CpanelCall};

/// The value written in place of a secret parameter.
pub const REDACTED: &str = "[redacted]";

/// Substrings of a family name (lower-cased) that make a parameter secret (`cpanel-wire.md` §7).
/// The list is kept verbatim from the spec even though the short words subsume the long ones.
const SECRET_WORDS: [&str; 21] = [
    "pass",
    "passwd",
    "password",
    "passphrase",
    "pass_hash",
    "password_hash",
    "oldpass",
    "newpass",
    "secret",
    "token",
    "api_token",
    "access_token",
    "login_token",
    "tfa_token",
    "key",
    "key_data",
    "private",
    "crt",
    "cert",
    "cabundle",
    "content",
];

/// Nested `Batch::strict` deeper than this is written as `"[truncated]"` (bounds recursion on
/// attacker-shaped input even if `classify` ever stops bounding it).
const MAX_BATCH_DEPTH: usize = 16;

/// True when the parameter `key` (any family member, `name-N`) must never be logged.
pub fn is_secret_param(key: &str) -> bool {
    let family = family_name(key).as_bytes();
    SECRET_WORDS
        .iter()
        .any(|word| contains_ignore_ascii_case(family, word.as_bytes()))
}

/// `haystack.to_ascii_lowercase().contains(needle)` for a lower-case `needle`, without
/// allocating (this runs for every parameter of every audited call).
fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.iter().zip(needle).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// The writer's stamp for one record.
pub(crate) struct Stamp<'a> {
    pub ts: OffsetDateTime,
    pub seq: u64,
    pub prev: &'a [u8; 32],
}

/// Appends `record`'s line (without newline) to `buf`, stamped with `ts`, `seq` and `prev`,
/// exactly as the writer does; for benchmarks and tools.
pub fn encode_line(buf: &mut Vec<u8>, record: &Record, ts: OffsetDateTime, seq: u64, prev: &[u8; 32]) {
    encode(buf, &Stamp { ts, seq, prev }, record);
}

/// Appends the record's line (without newline) to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, stamp: &Stamp<'_>, record: &Record) {
    encode_stamp(buf, stamp);
    encode_body(buf, record);
}

/// The start of a line: `{"ts":"…","seq":N,"prev":"…"`. A line is this followed by
/// [`encode_body`], so the body can be encoded before the stamp is known.
pub(crate) fn encode_stamp(buf: &mut Vec<u8>, stamp: &Stamp<'_>) {
    buf.extend_from_slice(b"{\"ts\":\"");
    push_ts(buf, stamp.ts);
    buf.extend_from_slice(b"\",\"seq\":");
    push_u64(buf, stamp.seq);
    buf.extend_from_slice(b",\"prev\":\"");
    push_hex(buf, stamp.prev);
    buf.push(b'"');
}

/// The rest of a line after the stamp: every set field, then `}`.
pub(crate) fn encode_body(buf: &mut Vec<u8>, record: &Record) {
    if let Some(event) = record.event {
        str_field(buf, "event", event.as_str());
    }
    opt_str_field(buf, "request_id", record.request_id.as_deref());
    opt_str_field(buf, "developer", record.developer.as_deref());
    opt_str_field(buf, "jti", record.jti.as_deref());
    if let Some(ip) = record.client_ip {
        // Written straight into the buffer (an address needs no JSON escaping).
        key(buf, "client_ip");
        buf.push(b'"');
        let _ = write!(buf, "{ip}");
        buf.push(b'"');
    }
    opt_str_field(buf, "method", record.method.map(|m| m.as_str()));
    let api = record.api.or(record.call.as_ref().map(|c| c.api));
    opt_str_field(buf, "api", api.map(|a| a.as_str()));
    if let Some(call) = &record.call {
        key(buf, "call");
        buf.push(b'"');
        push_escaped(buf, &call.module);
        buf.extend_from_slice(b"::");
        push_escaped(buf, &call.function);
        buf.push(b'"');
        key(buf, "params");
        push_params(buf, call, 0);
    }
    opt_str_field(buf, "decision", record.decision);
    opt_str_field(buf, "rule", record.rule.as_deref());
    opt_str_field(buf, "reason", record.reason.as_deref());
    opt_str_field(buf, "code", record.code);
    opt_u64_field(buf, "status", record.status.map(u64::from));
    if let Some(status) = record.cpanel_status {
        key(buf, "cpanel_status");
        push_i64(buf, status);
    }
    opt_u64_field(buf, "bytes", record.bytes);
    opt_u64_field(buf, "duration_us", record.duration_us);
    buf.push(b'}');
}

/// `{"name":"value","secret":"[redacted]","command-0":["M","f",{...}],"file-1":{...}}`.
fn push_params(buf: &mut Vec<u8>, call: &CpanelCall, depth: usize) {
    buf.push(b'{');
    let mut first = true;
    let mut sep = |buf: &mut Vec<u8>| {
        if !first {
            buf.push(b',');
        }
        first = false;
    };
    for (name, value) in call.params.iter() {
        sep(buf);
        push_string(buf, name);
        buf.push(b':');
        push_string(buf, if is_secret_param(name) { REDACTED } else { value });
    }
    // `classify` drops the original `command*` names; the position in the batch is what
    // cPanel executes, so the key is `command-<position>`.
    for (i, inner) in call.batch.iter().enumerate() {
        sep(buf);
        buf.extend_from_slice(b"\"command-");
        push_u64(buf, i as u64);
        buf.extend_from_slice(b"\":");
        if depth >= MAX_BATCH_DEPTH {
            push_string(buf, "[truncated]");
            continue;
        }
        buf.push(b'[');
        push_string(buf, &inner.module);
        buf.push(b',');
        push_string(buf, &inner.function);
        buf.push(b',');
        push_params(buf, inner, depth + 1);
        buf.push(b']');
    }
    for file in &call.files {
        sep(buf);
        push_string(buf, &file.field);
        buf.push(b':');
        if is_secret_param(&file.field) {
            push_string(buf, REDACTED);
        } else {
            buf.extend_from_slice(b"{\"filename\":");
            push_string(buf, &file.filename);
            buf.extend_from_slice(b",\"bytes\":");
            push_u64(buf, file.data.len() as u64);
            buf.push(b'}');
        }
    }
    buf.push(b'}');
}

fn key(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

fn str_field(buf: &mut Vec<u8>, name: &str, value: &str) {
    key(buf, name);
    push_string(buf, value);
}

fn opt_str_field(buf: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        str_field(buf, name, value);
    }
}

fn opt_u64_field(buf: &mut Vec<u8>, name: &str, value: Option<u64>) {
    if let Some(value) = value {
        key(buf, name);
        push_u64(buf, value);
    }
}

/// A JSON string literal, quotes included.
pub(crate) fn push_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    push_escaped(buf, s);
    buf.push(b'"');
}

/// JSON string escaping (RFC 8259 §7): quote, backslash and control characters.
fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Fast path for the usual case (ids, names, hex): nothing to escape, one copy. A fold
    // without early exit, so that the compiler vectorizes it.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\') | (b == 0x7f)
    });
    if plain {
        buf.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_u64(buf, n.unsigned_abs());
}

fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let digits = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    buf.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits)));
    push_u64(buf, n);
}

/// `2026-11-27T23:14:23.123456Z` (RFC 3339, UTC, microseconds).
pub(crate) fn push_ts(buf: &mut Vec<u8>, ts: OffsetDateTime) {
    let ts = ts.to_offset(time::UtcOffset::UTC);
    let year = ts.year();
    if year < 0 {
        buf.push(b'-');
    }
    push_padded(buf, u64::from(year.unsigned_abs()), 4);
    buf.push(b'-');
    push_padded(buf, u64::from(u8::from(ts.month())), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(ts.day()), 2);
    buf.push(b'T');
    push_padded(buf, u64::from(ts.hour()), 2);
    buf.push(b':');
    push_padded(buf, u64::from(ts.minute()), 2);
    buf.push(b':');
    push_padded(buf, u64::from(ts.second()), 2);
    buf.push(b'.');
    push_padded(buf, u64::from(ts.microsecond()), 6);
    buf.push(b'Z');
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::*;
    use crate::audit::Event;
    use crate::call::{Api, Method, Params, UploadFile};

    fn line(record: &Record) -> Value {
        let mut buf = Vec::new();
        let ts = time::macros::datetime!(2026-11-27 23:14:23.123456 UTC);
        encode(
            &mut buf,
            &Stamp {
                ts,
                seq: 7,
                prev: &[0xab; 32],
            },
            record,
        );
        assert!(!buf.contains(&b'\n'));
        serde_json::from_slice(&buf).unwrap()
    }

    fn call(module: &str, function: &str, pairs: &[(&str, &str)]) -> CpanelCall {
        CpanelCall::new(
            Api::Uapi,
            module,
            function,
            Params::from_unique_pairs(pairs.iter().copied()),
        )
    }

    #[test]
    fn fields_come_in_fixed_order_with_stamp_first() {
        let record = Record {
            event: Some(Event::Request),
            request_id: Some("r1".into()),
            developer: Some("alice".into()),
            jti: Some("j1".into()),
            client_ip: Some("203.0.113.9".parse().unwrap()),
            method: Some(Method::Get),
            call: Some(call("Email", "list_pops", &[])),
            decision: Some("allow"),
            rule: Some("alice.toml allow[1]".into()),
            cpanel_status: Some(-1),
            status: Some(200),
            ..Record::default()
        };
        let mut buf = Vec::new();
        let ts = time::macros::datetime!(2026-01-02 03:04:05.000006 UTC);
        encode(
            &mut buf,
            &Stamp {
                ts,
                seq: 1,
                prev: &[0; 32],
            },
            &record,
        );
        let text = String::from_utf8(buf).unwrap();
        let expected = format!(
            "{{\"ts\":\"2026-01-02T03:04:05.000006Z\",\"seq\":1,\"prev\":\"{}\",\"event\":\"request\",\
             \"request_id\":\"r1\",\"developer\":\"alice\",\"jti\":\"j1\",\"client_ip\":\"203.0.113.9\",\
             \"method\":\"GET\",\"api\":\"uapi\",\"call\":\"Email::list_pops\",\"params\":{{}},\
             \"decision\":\"allow\",\"rule\":\"alice.toml allow[1]\",\"status\":200,\"cpanel_status\":-1}}",
            "0".repeat(64)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn strings_are_escaped_into_valid_json() {
        let nasty = "a\"b\\c\nd\u{1}e\u{7f}é\u{2028}";
        let v = line(&Record {
            reason: Some(nasty.into()),
            ..Record::default()
        });
        assert_eq!(v["reason"], nasty);
        assert_eq!(v["prev"], "ab".repeat(32));
        assert_eq!(v["ts"], "2026-11-27T23:14:23.123456Z");
    }

    #[test]
    fn secret_families_are_redacted_and_others_kept() {
        let pairs = [
            ("email", "a@example.com"),
            ("password", "hunter2"),
            ("password-0", "hunter3"),
            ("PassWord-12", "x"),
            ("passwd", "x"),
            ("api_token", "x"),
            ("ssl_key", "x"),
            ("key_data", "x"),
            ("content", "x"),
            ("crt", "x"),
            ("cabundle", "x"),
            ("certificate", "x"),
            ("private", "x"),
            ("client_secret", "x"),
            ("oldpass", "x"),
            ("tfa_token", "x"),
            ("domain", "example.com"),
            ("email-0", "b@example.com"),
        ];
        let v = line(&Record {
            call: Some(call("Email", "add_pop", &pairs)),
            ..Record::default()
        });
        let params = v["params"].as_object().unwrap();
        assert_eq!(params.len(), pairs.len());
        for (name, value) in pairs {
            let expected = if ["email", "domain", "email-0"].contains(&name) {
                value
            } else {
                REDACTED
            };
            assert_eq!(params[name], expected, "{name}");
        }
        let text = v.to_string();
        assert!(!text.contains("hunter"));
    }

    #[test]
    fn batch_commands_are_shown_as_inner_calls_and_redacted_recursively() {
        let inner_plain = call(
            "Email",
            "add_pop",
            &[("email", "a@example.com"), ("password", "s3cret")],
        );
        let mut nested = call("Batch", "strict", &[]);
        nested.batch = vec![call(
            "SSL",
            "install_ssl",
            &[("domain", "example.com"), ("key", "PRIVATE")],
        )];
        let mut batch = call("Batch", "strict", &[]);
        batch.batch = vec![inner_plain, nested];
        let v = line(&Record {
            call: Some(batch),
            ..Record::default()
        });
        assert_eq!(
            v["params"],
            json!({
                "command-0": ["Email", "add_pop", {"email": "a@example.com", "password": REDACTED}],
                "command-1": ["Batch", "strict", {"command-0": ["SSL", "install_ssl",
                    {"domain": "example.com", "key": REDACTED}]}],
            })
        );
    }

    #[test]
    fn uploads_show_name_and_size_never_content() {
        let mut upload = call("Fileman", "upload_files", &[("dir", "public_html")]);
        upload.files = vec![UploadFile {
            field: "file-1".into(),
            filename: "index.html".into(),
            content_type: None,
            data: Bytes::from_static(b"<html>SECRET BODY</html>"),
        }];
        let v = line(&Record {
            call: Some(upload),
            ..Record::default()
        });
        assert_eq!(
            v["params"],
            json!({"dir": "public_html", "file-1": {"filename": "index.html", "bytes": 24}})
        );
        assert!(!v.to_string().contains("SECRET BODY"));
    }

    #[test]
    fn deep_batches_are_truncated_not_recursed_forever() {
        let mut c = call("Email", "list_pops", &[]);
        for _ in 0..100 {
            let mut outer = call("Batch", "strict", &[]);
            outer.batch = vec![c];
            c = outer;
        }
        let v = line(&Record {
            call: Some(c),
            ..Record::default()
        });
        assert!(v.to_string().contains("[truncated]"));
    }

    #[test]
    fn numbers_encode_at_their_extremes() {
        let v = line(&Record {
            bytes: Some(u64::MAX),
            cpanel_status: Some(i64::MIN),
            duration_us: Some(0),
            ..Record::default()
        });
        assert_eq!(v["bytes"], u64::MAX);
        assert_eq!(v["cpanel_status"], i64::MIN);
        assert_eq!(v["duration_us"], 0);
    }
}
