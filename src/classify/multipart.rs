//! `multipart/form-data` bodies of `Fileman::upload_files` (cpanel-wire.md §3), parsed strictly
//! from the in-memory body.
//!
//! Owns part framing and part headers. cPanel takes the body's first line as the boundary,
//! whatever the header says, so the body must open with exactly the declared delimiter; there
//! is no preamble, no transport padding, nothing after the close delimiter but one CRLF. Parts
//! carry only `Content-Disposition: form-data; name="..."[; filename="..."]` and an optional
//! `Content-Type`. Text field names are `[A-Za-z0-9_.-]+`, file part names anything printable
//! without `"` or `\`, all unique; filenames are plain names (no
//! `"`, `/`, `\`, control characters, `.` or `..`). Never writes anything anywhere.

use bytes::Bytes;
use memchr::memmem;

use crate::call::{family_name, UploadFile};

use super::params::{check_pair, too_many, Pair, MAX_PARAMS};
use super::{bad, ClassifyError};

/// Text fields (in order) and file parts of one multipart body.
#[derive(Debug, Default)]
pub(super) struct Parts {
    pub fields: Vec<Pair>,
    pub files: Vec<UploadFile>,
}

/// One part's headers.
#[derive(Debug, Default)]
struct PartHead {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    disposition_seen: bool,
}

/// Parses `body` with the boundary from the content type's parameter section `ct_params`.
/// `already` parameters were read before (the query), for the [`MAX_PARAMS`] bound.
pub(super) fn parse(ct_params: &str, body: &[u8], already: usize) -> Result<Parts, ClassifyError> {
    let boundary = boundary(ct_params)?;
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut rest = body
        .strip_prefix(delimiter.as_slice())
        .and_then(|r| r.strip_prefix(b"\r\n"))
        .ok_or_else(|| bad("a multipart body must start with its boundary line"))?;
    let mut parts = Parts::default();
    let closing = [b"\r\n", delimiter.as_slice()].concat();
    loop {
        if already + parts.fields.len() + parts.files.len() >= MAX_PARAMS {
            return Err(too_many());
        }
        let (head, after_head) = read_head(rest)?;
        let end = memmem::find(after_head, &closing).ok_or_else(|| bad("unterminated multipart part"))?;
        let (content, after) = after_head.split_at(end);
        add_part(&mut parts, head, content)?;
        let after = after.get(closing.len()..).unwrap_or_default();
        match after.strip_prefix(b"\r\n") {
            Some(next) => rest = next,
            None if after == b"--" || after == b"--\r\n" => return Ok(parts),
            None => return Err(bad("malformed multipart delimiter")),
        }
    }
}

/// Part names must be unique across the body and distinct from query keys; file part names
/// must not meet any parameter at all (cPanel may expose them as fields).
pub(super) fn check_field_names(query: &[Pair], parts: &Parts) -> Result<(), ClassifyError> {
    let file_names = parts.files.iter().map(|f| f.field.as_str());
    let field_names = parts.fields.iter().map(|(k, _)| k.as_str());
    let mut names: Vec<&str> = file_names.chain(field_names).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    if names.len() != count {
        return Err(bad("duplicate multipart part name"));
    }
    // A file part named like a parameter, or like a name a repeated parameter generates
    // (`f` twice -> `f-0`), would meet it in cPanel's merged view.
    let keys: Vec<&str> = query.iter().chain(&parts.fields).map(|(k, _)| k.as_str()).collect();
    let file_clash = parts
        .files
        .iter()
        .any(|f| keys.iter().any(|&k| k == f.field || k == family_name(&f.field)));
    let text_clash = query.iter().any(|(k, _)| parts.fields.iter().any(|(f, _)| f == k));
    if file_clash || text_clash {
        return Err(bad("a multipart part name repeats a query parameter"));
    }
    if !query.iter().all(|(k, _)| is_part_name(k)) {
        return Err(bad("upload parameters must be named [A-Za-z0-9_.-]"));
    }
    Ok(())
}

fn boundary(ct_params: &str) -> Result<String, ClassifyError> {
    let mut found = None;
    for param in ct_params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = param
            .split_once('=')
            .ok_or_else(|| bad("malformed multipart Content-Type"))?;
        if key.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if found.replace(value.to_owned()).is_some() {
                return Err(bad("duplicate multipart boundary"));
            }
        }
    }
    let boundary = found.ok_or_else(|| bad("multipart Content-Type without a boundary"))?;
    let bchar = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b);
    if boundary.is_empty() || boundary.len() > 70 || !boundary.bytes().all(bchar) {
        return Err(bad("invalid multipart boundary"));
    }
    Ok(boundary)
}

/// Reads header lines up to the empty line; returns them parsed and the rest of the body.
fn read_head(mut rest: &[u8]) -> Result<(PartHead, &[u8]), ClassifyError> {
    let mut head = PartHead::default();
    let mut lines = 0;
    loop {
        let eol = memmem::find(rest, b"\r\n").ok_or_else(|| bad("unterminated multipart headers"))?;
        let (line, after) = rest.split_at(eol);
        rest = after.get(2..).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        lines += 1;
        if lines > 2 {
            return Err(bad("too many multipart part headers"));
        }
        header_line(&mut head, line)?;
    }
    if !head.disposition_seen {
        return Err(bad("multipart part without Content-Disposition"));
    }
    Ok((head, rest))
}

fn header_line(head: &mut PartHead, line: &[u8]) -> Result<(), ClassifyError> {
    let line = std::str::from_utf8(line).map_err(|_| bad("multipart headers must be UTF-8"))?;
    if line.chars().any(char::is_control) {
        return Err(bad("control character in a multipart header"));
    }
    let (name, value) = line.split_once(':').ok_or_else(|| bad("malformed multipart header"))?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if name.eq_ignore_ascii_case("content-disposition") && !head.disposition_seen {
        head.disposition_seen = true;
        return disposition(head, value);
    }
    if name.eq_ignore_ascii_case("content-type") && head.content_type.is_none() {
        if value.is_empty() || !value.is_ascii() || value.contains('"') {
            return Err(bad("invalid multipart part Content-Type"));
        }
        head.content_type = Some(value.to_owned());
        return Ok(());
    }
    Err(bad("unexpected or repeated multipart part header"))
}

/// `form-data; name="x"` with an optional `; filename="y"`, both quoted, no escapes.
fn disposition(head: &mut PartHead, value: &str) -> Result<(), ClassifyError> {
    let malformed = || bad("malformed Content-Disposition in a multipart part");
    let (kind, mut rest) = value.split_once(';').ok_or_else(malformed)?;
    if !kind.trim_end().eq_ignore_ascii_case("form-data") {
        return Err(malformed());
    }
    loop {
        let (key, after_key) = rest.split_once('=').ok_or_else(malformed)?;
        let quoted = after_key.strip_prefix('"').ok_or_else(malformed)?;
        let (text, after) = quoted.split_once('"').ok_or_else(malformed)?;
        if text.contains('\\') {
            return Err(bad("escapes are not allowed in multipart names"));
        }
        let slot = match key.trim() {
            k if k.eq_ignore_ascii_case("name") => &mut head.name,
            k if k.eq_ignore_ascii_case("filename") => &mut head.filename,
            _ => return Err(bad("unexpected Content-Disposition parameter")),
        };
        if slot.replace(text.to_owned()).is_some() {
            return Err(malformed());
        }
        let after = after.trim_start_matches([' ', '\t']);
        if after.is_empty() {
            return Ok(());
        }
        rest = after.strip_prefix(';').ok_or_else(malformed)?;
    }
}

fn add_part(parts: &mut Parts, head: PartHead, content: &[u8]) -> Result<(), ClassifyError> {
    let name = head.name.ok_or_else(|| bad("multipart part without a name"))?;
    match head.filename {
        Some(filename) => {
            if !is_file_part_name(&name) {
                return Err(bad("invalid multipart file part name"));
            }
            if !is_plain_filename(&filename) {
                return Err(bad("invalid upload filename"));
            }
            parts.files.push(UploadFile {
                field: name,
                filename,
                content_type: head.content_type,
                data: Bytes::copy_from_slice(content),
            });
        }
        None => {
            if !is_part_name(&name) {
                return Err(bad("multipart part names must be [A-Za-z0-9_.-]"));
            }
            let value = String::from_utf8(content.to_vec()).map_err(|_| bad("multipart text fields must be UTF-8"))?;
            let pair = (name, value);
            check_pair(&pair)?;
            parts.fields.push(pair);
        }
    }
    Ok(())
}

fn is_part_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The field name of a file part. Clients name it freely: cpanel-cli uses the local path it
/// uploads (`/home/me/site/index.html`), so `/`, spaces and non-ASCII are allowed; control
/// characters (refused with the header line), `"` and `\` are not. The name never selects
/// anything in the upload and is re-quoted on forwarding.
fn is_file_part_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 1024 && !name.chars().any(|c| c.is_control() || matches!(c, '"' | '\\'))
}

fn is_plain_filename(name: &str) -> bool {
    let forbidden = |c: char| c.is_control() || matches!(c, '"' | '/' | '\\');
    !name.is_empty() && name.len() <= 255 && name != "." && name != ".." && !name.chars().any(forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "; boundary=XyZ";

    fn body(parts: &[&str]) -> Vec<u8> {
        let mut out = String::new();
        for p in parts {
            out.push_str("--XyZ\r\n");
            out.push_str(p);
            out.push_str("\r\n");
        }
        out.push_str("--XyZ--\r\n");
        out.into_bytes()
    }

    #[test]
    fn fields_and_files_are_read() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"dir\"\r\n\r\npublic_html",
            "Content-Disposition: form-data; name=\"file-1\"; filename=\"a b.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2",
        ]);
        let parts = parse(CT, &b, 0).unwrap();
        assert_eq!(parts.fields, vec![("dir".to_owned(), "public_html".to_owned())]);
        assert_eq!(parts.files.len(), 1);
        assert_eq!(parts.files[0].filename, "a b.txt");
        assert_eq!(parts.files[0].content_type.as_deref(), Some("text/plain"));
        assert_eq!(&parts.files[0].data[..], b"line1\r\nline2");
    }

    #[test]
    fn file_part_names_may_be_local_paths_as_cpanel_cli_sends_them() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"dir\"\r\n\r\npublic_html",
            "Content-Disposition: form-data; name=\"/home/me/My Site/hello.txt\"; filename=\"hello.txt\"\r\n\r\nhi",
        ]);
        let parts = parse(CT, &b, 0).unwrap();
        assert_eq!(parts.files[0].field, "/home/me/My Site/hello.txt");
        // Text fields keep the strict name rule: they become parameters.
        let text = body(&["Content-Disposition: form-data; name=\"a/b\"\r\n\r\nv"]);
        assert!(parse(CT, &text, 0).is_err());
    }

    #[test]
    fn odd_parts_are_refused() {
        let cases = [
            "Content-Disposition: form-data; name=\"a\"\r\nX-Odd: 1\r\n\r\nv",
            "Content-Disposition: form-data\r\n\r\nv",
            "Content-Disposition: attachment; name=\"a\"\r\n\r\nv",
            "Content-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nv",
            "Content-Disposition: form-data; name=a\r\n\r\nv",
            "Content-Disposition: form-data; name=\"f\"; filename=\"../x\"\r\n\r\nv",
            "Content-Disposition: form-data; name=\"f\"; filename=\"a\\\"b\"\r\n\r\nv",
            "Content-Disposition: form-data; name=\"f\"; filename=\"..\"\r\n\r\nv",
            "Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\nv",
            "Content-Disposition: form-data; name=\"f\"; filename*=\"x\"\r\n\r\nv",
            "Content-Type: text/plain\r\n\r\nv",
            "Content-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv",
            " Content-Disposition: form-data; name=\"a\"\r\n\r\nv",
        ];
        for c in cases {
            assert!(parse(CT, &body(&[c]), 0).is_err(), "{c:?}");
        }
    }

    #[test]
    fn framing_is_strict() {
        let ok = body(&["Content-Disposition: form-data; name=\"a\"\r\n\r\nv"]);
        assert!(parse(CT, &ok, 0).is_ok());
        assert!(parse("; boundary=\"XyZ\"", &ok, 0).is_ok());
        assert!(parse("; boundary=Other", &ok, 0).is_err());
        assert!(parse("", &ok, 0).is_err());
        assert!(parse("; boundary=XyZ; boundary=XyZ", &ok, 0).is_err());
        let preamble = [b"junk\r\n".as_slice(), &ok].concat();
        assert!(parse(CT, &preamble, 0).is_err());
        let epilogue = [ok.as_slice(), b"junk"].concat();
        assert!(parse(CT, &epilogue, 0).is_err());
        let unterminated = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv";
        assert!(parse(CT, unterminated, 0).is_err());
    }
}
