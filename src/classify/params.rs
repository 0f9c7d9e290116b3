//! Parameter reading (cpanel-wire.md §3): urlencoded decoding and cPanel's merge of query and
//! body into one list, with duplicates renamed `name-0`, `name-1`, ...
//!
//! Owns the rules that make the merged view unambiguous: a generated name may never meet a
//! literal key (cPanel would let one overwrite the other), a family member (`x-3`) may never
//! repeat, and at most [`MAX_PARAMS`] pairs are read. Never looks at what the parameters mean.

use std::collections::{HashMap, HashSet};

use crate::call::{family_name, Params};

use super::{bad, shown, ClassifyError};

/// The most parameters one request (query and body together, or one JSON object) may carry.
pub const MAX_PARAMS: usize = 1000;

/// A decoded key and value, before merging.
pub(super) type Pair = (String, String);

/// Parses a query string and a urlencoded body as cpgate's classifier does (strictly) and
/// merges them as cPanel would. Useful to other modules that speak the same wire format.
pub fn parse_form(query: Option<&str>, body: &[u8]) -> Result<Params, ClassifyError> {
    let mut pairs = Vec::new();
    parse_urlencoded(query.unwrap_or_default().as_bytes(), &mut pairs)?;
    parse_urlencoded(body, &mut pairs)?;
    merge(pairs)
}

/// Appends the pairs of `input` to `out`: split on `&` only, skip empty pieces, split each on
/// its first `=`, `+` is a space, `%XX` decoded. A piece without `=`, an empty key, bad
/// percent-encoding, NUL or non-UTF-8 is a 400.
pub(super) fn parse_urlencoded(input: &[u8], out: &mut Vec<Pair>) -> Result<(), ClassifyError> {
    for piece in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return Err(too_many());
        }
        let mut halves = piece.splitn(2, |&b| b == b'=');
        let key = halves.next().unwrap_or_default();
        let value = halves
            .next()
            .ok_or_else(|| bad("every parameter needs '=' (key=value)"))?;
        let pair = (decode(key)?, decode(value)?);
        check_pair(&pair)?;
        out.push(pair);
    }
    Ok(())
}

/// The error for more than [`MAX_PARAMS`] parameters.
pub(super) fn too_many() -> ClassifyError {
    ClassifyError::BadRequest(format!("too many parameters (at most {MAX_PARAMS})"))
}

/// Rules every key and value obey, whatever the source: non-empty key, no NUL anywhere.
pub(super) fn check_pair((key, value): &Pair) -> Result<(), ClassifyError> {
    if key.is_empty() {
        return Err(bad("empty parameter name"));
    }
    if key.contains('\0') || value.contains('\0') {
        return Err(bad("NUL is not allowed in parameters"));
    }
    Ok(())
}

/// `+` -> space, `%XX` -> byte, then UTF-8.
fn decode(raw: &[u8]) -> Result<String, ClassifyError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(bad("invalid percent-encoding in parameters")),
                }
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad("parameters must be UTF-8"))
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// cPanel's merge: the first occurrence keeps the plain name, later ones become `name-0`,
/// `name-1`, ... in order. Refuses every input where cPanel's overwrite rules would matter.
pub(super) fn merge(pairs: Vec<Pair>) -> Result<Params, ClassifyError> {
    check_unambiguous(&pairs)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut params = Params::new();
    for (key, value) in pairs {
        let count = seen.entry(key.clone()).or_insert(0);
        let name = match *count {
            0 => key,
            n => format!("{key}-{}", n - 1),
        };
        *count += 1;
        params.set(name, value);
    }
    Ok(params)
}

/// A repeated key must not itself be a family member, and none of the names its repeats
/// generate may also be sent literally (in either order).
fn check_unambiguous(pairs: &[Pair]) -> Result<(), ClassifyError> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (key, _) in pairs {
        *counts.entry(key.as_str()).or_insert(0) += 1;
    }
    let literal: HashSet<&str> = counts.keys().copied().collect();
    // In input order (not the map's random order), so the same request always gets the same
    // message.
    let mut checked: HashSet<&str> = HashSet::new();
    let repeated = pairs.iter().filter_map(|(key, _)| {
        let key = key.as_str();
        let count = counts.get(key).copied().unwrap_or(0);
        (count > 1 && checked.insert(key)).then_some((key, count))
    });
    for (key, count) in repeated {
        if family_name(key) != key {
            return Err(ClassifyError::BadRequest(format!(
                "parameter {} is repeated (ambiguous)",
                shown(key)
            )));
        }
        if let Some(clash) = (0..count - 1)
            .map(|i| format!("{key}-{i}"))
            .find(|g| literal.contains(g.as_str()))
        {
            return Err(ClassifyError::BadRequest(format!(
                "parameter {} clashes with a repeated {} (ambiguous)",
                shown(&clash),
                shown(key)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `classify` fuzz target: the message named whichever repeated key a
    /// `HashMap` happened to yield first.
    #[test]
    fn ambiguity_is_reported_for_the_first_repeated_key_in_input_order() {
        let pairs = parse("b-1=x&a-0=1&b-1=y&a-0=2&z=1").unwrap();
        for _ in 0..50 {
            let err = merge(pairs.clone()).unwrap_err();
            assert_eq!(
                err,
                ClassifyError::BadRequest("parameter \"b-1\" is repeated (ambiguous)".into())
            );
        }
    }

    fn parse(s: &str) -> Result<Vec<Pair>, ClassifyError> {
        let mut out = Vec::new();
        parse_urlencoded(s.as_bytes(), &mut out).map(|()| out)
    }

    #[test]
    fn decoding_follows_the_form_rules() {
        let got = parse("a=1+2&&b=%41%c3%a9;c&=&d==").err();
        assert!(got.is_some(), "empty key must fail");
        let got = parse("a=1+2&&b=%41%c3%a9;c&d==").unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "Aé;c".into()),
                ("d".into(), "=".into())
            ]
        );
        for bad_input in ["a", "a=%", "a=%4", "a=%zz", "a=%00", "a=%ff", "%=1"] {
            assert!(parse(bad_input).is_err(), "{bad_input}");
        }
    }

    #[test]
    fn too_many_parameters_fail() {
        let many = "a=1&".repeat(MAX_PARAMS);
        assert!(parse(&many).is_ok());
        assert!(parse(&format!("{many}b=2")).is_err());
    }
}
