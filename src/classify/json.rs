//! The JSON cPanel reads: a flat object of scalars (a `application/json` body, or the
//! arguments of a `Batch::strict` command) and batch commands `["Module", "function", {args}]`.
//!
//! Owns the conversion of JSON scalars to parameter strings: strings as-is, integers as their
//! JSON text, `true`/`false` as `1`/`0`. Refuses duplicate keys (serde_json's maps would keep
//! the last silently), nested values, `null` and non-integer numbers (whose text cPanel's Perl
//! would print differently). Drops keys starting with `file-`, as cPanel does. Never echoes
//! more than a clipped parser message.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::params::{check_pair, Pair, MAX_PARAMS};
use super::ClassifyError;

/// One `Batch::strict` command.
#[derive(Debug)]
pub(super) struct Command {
    pub module: String,
    pub function: String,
    pub args: Vec<Pair>,
}

/// Parses a flat JSON object of scalars into pairs, in document order.
pub(super) fn parse_object(bytes: &[u8], what: &str) -> Result<Vec<Pair>, ClassifyError> {
    let pairs = serde_json::from_slice::<FlatObject>(bytes)
        .map_err(|e| json_error(what, &e))?
        .0;
    pairs.iter().try_for_each(check_pair)?;
    Ok(pairs)
}

/// Parses one batch command.
pub(super) fn parse_command(text: &str) -> Result<Command, ClassifyError> {
    let command = serde_json::from_str::<Command>(text).map_err(|e| json_error("batch command", &e))?;
    command.args.iter().try_for_each(check_pair)?;
    Ok(command)
}

fn json_error(what: &str, e: &serde_json::Error) -> ClassifyError {
    const MAX: usize = 120;
    let detail = match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => "malformed JSON".to_owned(),
    };
    let clipped: String = detail.chars().take(MAX).collect();
    ClassifyError::BadRequest(format!("invalid {what}: {clipped}"))
}

/// An object of scalars, converted to parameter strings.
struct FlatObject(Vec<Pair>);

impl<'de> Deserialize<'de> for FlatObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FlatObjectVisitor)
    }
}

struct FlatObjectVisitor;

impl<'de> Visitor<'de> for FlatObjectVisitor {
    type Value = FlatObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of scalars")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatObject, A::Error> {
        let mut seen = HashSet::new();
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let Scalar(value) = map.next_value()?;
            if seen.len() >= MAX_PARAMS {
                return Err(de::Error::custom(format_args!("too many keys (at most {MAX_PARAMS})")));
            }
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom("duplicate key"));
            }
            if !key.starts_with("file-") {
                pairs.push((key, value));
            }
        }
        Ok(FlatObject(pairs))
    }
}

/// A JSON scalar as cPanel hands it to a function.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer or a boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(if v { "1" } else { "0" }.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Err(E::custom("only integer numbers are allowed (send others as strings)"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Err(E::custom("null values are not allowed"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Scalar, A::Error> {
        Err(de::Error::custom("nested values are not allowed"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Scalar, A::Error> {
        Err(de::Error::custom("nested values are not allowed"))
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array [\"Module\", \"function\", {args}]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
        let missing = || de::Error::custom("a command needs a module and a function");
        let module: String = seq.next_element()?.ok_or_else(missing)?;
        let function: String = seq.next_element()?.ok_or_else(missing)?;
        let args = seq.next_element::<FlatObject>()?.map(|o| o.0).unwrap_or_default();
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a command has at most 3 items"));
        }
        Ok(Command { module, function, args })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_convert_like_cpanel() {
        let got = parse_object(br#"{"s":"x y","n":-12,"u":7,"t":true,"f":false,"file-1":"z"}"#, "body").unwrap();
        let want: Vec<Pair> = [("s", "x y"), ("n", "-12"), ("u", "7"), ("t", "1"), ("f", "0")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ambiguous_json_is_refused() {
        for body in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":null}"#,
            r#"{"a":1.5}"#,
            r#"{"a":-0}"#,
            r#"{"a":1e2}"#,
            r#"{"":1}"#,
            r#"{"a":"\u0000"}"#,
            r#"[1]"#,
            r#""x""#,
            r#"{"a":1} x"#,
            "",
        ] {
            assert!(parse_object(body.as_bytes(), "body").is_err(), "{body}");
        }
    }

    #[test]
    fn commands_have_two_or_three_items() {
        let c = parse_command(r#"["Email","list_pops"]"#).unwrap();
        assert_eq!(
            (c.module.as_str(), c.function.as_str(), c.args.len()),
            ("Email", "list_pops", 0)
        );
        let c = parse_command(r#"["Email","add_pop",{"email":"a","quota":0}]"#).unwrap();
        assert_eq!(c.args.len(), 2);
        for text in [
            r#"["Email"]"#,
            r#"["Email","f",{},1]"#,
            r#"["Email","f",null]"#,
            r#"{"a":1}"#,
            r#"[1,"f"]"#,
        ] {
            assert!(parse_command(text).is_err(), "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        let deep = format!("{}{}", r#"["A","b",{},"#, "[".repeat(100_000));
        assert!(parse_command(&deep).is_err());
        let deep = format!("{}{}", r#"{"a":"#, "[".repeat(100_000));
        assert!(parse_object(deep.as_bytes(), "body").is_err());
        assert!(parse_object("[".repeat(100_000).as_bytes(), "body").is_err());
    }

    #[test]
    fn errors_never_echo_huge_input() {
        let huge = format!("\"{}\"", "x".repeat(10_000));
        let Err(ClassifyError::BadRequest(msg)) = parse_object(huge.as_bytes(), "body") else {
            panic!("expected a 400");
        };
        assert!(msg.len() < 200, "{msg}");
    }
}
