//! An independent, deliberately naive model of cPanel's parameter parser, written straight
//! from cpanel-wire.md §3 for the property tests. It shares no code with the classifier: it
//! is lenient where cPanel is lenient (a key without `=` has an empty value, bad escapes pass
//! through, bytes are decoded lossily) and applies cPanel's overwrite rules literally.

/// cPanel's merged view: an ordered list with unique keys.
pub type View = Vec<(String, String)>;

/// Reads a query string, then a urlencoded body, into cPanel's merged view.
pub fn read_form(query: &str, body: &str) -> View {
    let mut view = View::new();
    let mut literal_counts: Vec<(String, usize)> = Vec::new();
    for source in [query, body] {
        for piece in source.split('&') {
            if piece.is_empty() {
                continue;
            }
            let (k, v) = match piece.find('=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, ""),
            };
            add(&mut view, &mut literal_counts, unescape(k), unescape(v));
        }
    }
    view
}

/// The first literal occurrence keeps its name, the n-th repeat is named `key-(n-1)`, and a
/// name that already exists is overwritten in place (so a literal `a-0` overwrites a
/// generated one).
fn add(view: &mut View, counts: &mut Vec<(String, usize)>, key: String, value: String) {
    let seen = match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => {
            *n += 1;
            *n - 1
        }
        None => {
            counts.push((key.clone(), 1));
            0
        }
    };
    let name = if seen == 0 { key } else { format!("{key}-{}", seen - 1) };
    match view.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => view.push((name, value)),
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else if b[i] == b'%' && i + 2 < b.len() && is_hex(b[i + 1]) && is_hex(b[i + 2]) {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// One part of a multipart body, as cPanel's reader would see it.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Reads a multipart body: the first line is the boundary, whatever any header says.
pub fn read_multipart(body: &[u8]) -> Vec<Part> {
    let first_crlf = body.windows(2).position(|w| w == b"\r\n").unwrap();
    let delimiter = body[..first_crlf].to_vec();
    let mut sep = b"\r\n".to_vec();
    sep.extend_from_slice(&delimiter);
    let mut parts = Vec::new();
    let mut rest = &body[first_crlf + 2..];
    loop {
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(rest[..head_end].to_vec()).unwrap();
        let content = &rest[head_end + 4..];
        let end = content.windows(sep.len()).position(|w| w == sep.as_slice()).unwrap();
        parts.push(part_from(&head, &content[..end]));
        let after = &content[end + sep.len()..];
        if after.starts_with(b"--") {
            return parts;
        }
        rest = &after[2..];
    }
}

fn part_from(head: &str, data: &[u8]) -> Part {
    let mut part = Part {
        name: String::new(),
        filename: None,
        content_type: None,
        data: data.to_vec(),
    };
    for line in head.split("\r\n") {
        let (name, value) = line.split_once(": ").unwrap();
        if name.eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.to_owned());
            continue;
        }
        for attr in value.split("; ").skip(1) {
            let (k, v) = attr.split_once('=').unwrap();
            let v = v.trim_matches('"').to_owned();
            match k {
                "name" => part.name = v,
                "filename" => part.filename = Some(v),
                _ => {}
            }
        }
    }
    part
}
