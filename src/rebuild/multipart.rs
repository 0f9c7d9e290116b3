//! The `multipart/form-data` body of a rebuilt upload: text fields first, then file parts,
//! framed with a fresh random boundary that occurs in no field or file.
//!
//! Never copies a client's part headers: every header line is written from the call. Names
//! and filenames are quoted; `"`, CR and LF in them (which `classify` never lets through) are
//! percent-encoded as browsers do, so a hand-built call cannot break the framing either.

use bytes::Bytes;
use memchr::memmem;

use crate::call::UploadFile;

use super::Rebuilt;

/// Builds the multipart request for `path`.
pub(super) fn build(path: String, fields: &[(String, String)], files: &[UploadFile]) -> Rebuilt {
    let boundary = pick_boundary(fields, files);
    let mut body = Vec::new();
    for (name, value) in fields {
        open_part(&mut body, &boundary, name, None);
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    for file in files {
        open_part(&mut body, &boundary, &file.field, Some(&file.filename));
        if let Some(ct) = file.content_type.as_deref().filter(|ct| is_header_safe(ct)) {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&file.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Rebuilt {
        path_and_query: path,
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Bytes::from(body),
    }
}

/// A random boundary whose delimiter appears in no content (re-drawn until it does not).
fn pick_boundary(fields: &[(String, String)], files: &[UploadFile]) -> String {
    loop {
        let boundary = format!("cpgate-{}", uuid::Uuid::new_v4().simple());
        let delimiter = format!("--{boundary}");
        let found = |data: &[u8]| memmem::find(data, delimiter.as_bytes()).is_some();
        let clash = fields.iter().any(|(_, v)| found(v.as_bytes())) || files.iter().any(|f| found(&f.data));
        if !clash {
            return boundary;
        }
    }
}

fn open_part(body: &mut Vec<u8>, boundary: &str, name: &str, filename: Option<&str>) {
    let mut line = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
        quoted(name)
    );
    if let Some(filename) = filename {
        line.push_str(&format!("; filename=\"{}\"", quoted(filename)));
    }
    line.push_str("\r\n");
    body.extend_from_slice(line.as_bytes());
}

fn quoted(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}
