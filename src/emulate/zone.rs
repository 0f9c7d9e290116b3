//! The API 2 `ZoneEdit` module: one zone per domain with line-numbered records
//! (`fetchzones`, `fetchzone_records`, `add_zone_record`, `remove_zone_record`).
//!
//! Invariants: record names are stored fully qualified with a trailing dot; the SOA is the first
//! record and cannot be removed; every change bumps the serial. Line numbers are positions in the
//! rendered zone file, so removing a record renumbers the records after it, as in cPanel.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use crate::call::{CpanelCall, Params};

use super::domain::SERVER_IP;
use super::reply::Api2Reply;
use super::state::{optional, required, Account};

/// Lines before the first record: two comments and the `$TTL` directive.
const HEADER_LINES: usize = 3;
const DEFAULT_TTL: u32 = 14400;

/// One DNS zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Zone {
    domain: String,
    serial: u32,
    records: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    name: String,
    ttl: u32,
    data: Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    Soa { mname: String, rname: String },
    Ns(String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Mx { preference: u16, exchange: String },
    Txt(String),
}

impl Zone {
    /// SOA, two NS, apex and `mail` A records, `www` CNAME, MX and an SPF TXT record.
    pub fn seeded(domain: &str) -> Self {
        let apex = format!("{domain}.");
        let ip = SERVER_IP.parse().unwrap_or(Ipv4Addr::LOCALHOST);
        let record = |name: &str, data| Record {
            name: name.to_owned(),
            ttl: DEFAULT_TTL,
            data,
        };
        let records = vec![
            record(
                &apex,
                Data::Soa {
                    mname: format!("ns1.{apex}"),
                    rname: format!("hostmaster.{apex}"),
                },
            ),
            record(&apex, Data::Ns(format!("ns1.{apex}"))),
            record(&apex, Data::Ns(format!("ns2.{apex}"))),
            record(&apex, Data::A(ip)),
            record(&format!("mail.{apex}"), Data::A(ip)),
            record(&format!("www.{apex}"), Data::Cname(apex.clone())),
            record(
                &apex,
                Data::Mx {
                    preference: 0,
                    exchange: format!("mail.{apex}"),
                },
            ),
            record(&apex, Data::Txt("v=spf1 +a +mx ~all".into())),
        ];
        Self {
            domain: domain.to_owned(),
            serial: 2024010101,
            records,
        }
    }

    /// The zone file, one record a line, as `fetchzones` shows it.
    fn render(&self) -> Vec<String> {
        let mut lines = vec![
            "; cPanel first:11.120 (update_time):1704067200 Cpanel::ZoneFile::VERSION:1.3".to_owned(),
            format!("; Zone file for {}", self.domain),
            format!("$TTL {DEFAULT_TTL}"),
        ];
        for r in &self.records {
            let rdata = match &r.data {
                Data::Soa { mname, rname } => format!("{mname} {rname} {} 3600 1800 1209600 86400", self.serial),
                Data::Ns(host) | Data::Cname(host) => host.clone(),
                Data::A(ip) => ip.to_string(),
                Data::Aaaa(ip) => ip.to_string(),
                Data::Mx { preference, exchange } => format!("{preference} {exchange}"),
                Data::Txt(text) => format!("\"{text}\""),
            };
            lines.push(format!("{} {} IN {} {rdata}", r.name, r.ttl, r.data.type_name()));
        }
        lines
    }
}

impl Data {
    fn type_name(&self) -> &'static str {
        match self {
            Data::Soa { .. } => "SOA",
            Data::Ns(_) => "NS",
            Data::A(_) => "A",
            Data::Aaaa(_) => "AAAA",
            Data::Cname(_) => "CNAME",
            Data::Mx { .. } => "MX",
            Data::Txt(_) => "TXT",
        }
    }
}

/// API 2 `ZoneEdit::fetchzones`: every zone's file.
pub(crate) fn fetchzones(account: &mut Account, _call: &CpanelCall) -> Api2Reply {
    let zones: serde_json::Map<String, Value> = account
        .zones
        .iter()
        .map(|(domain, zone)| (domain.clone(), json!(zone.render())))
        .collect();
    Api2Reply::ok(vec![json!({"status": 1, "statusmsg": "Zones fetched", "zones": zones})])
}

/// API 2 `ZoneEdit::fetchzone_records`: `domain`, optional `type` and `name` filters.
pub(crate) fn fetchzone_records(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    let zone = match zone_of(account, &call.params) {
        Ok(zone) => zone,
        Err(error) => {
            return Api2Reply {
                data: Vec::new(),
                error: Some(error),
            }
        }
    };
    let type_filter = optional(&call.params, "type");
    let name_filter = optional(&call.params, "name").map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let rows = zone
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| type_filter.is_none_or(|t| t.eq_ignore_ascii_case(r.data.type_name())))
        .filter(|(_, r)| name_filter.as_deref().is_none_or(|n| r.name.trim_end_matches('.') == n))
        .map(|(i, r)| record_json(zone, i, r))
        .collect();
    Api2Reply::ok(rows)
}

/// API 2 `ZoneEdit::add_zone_record`: `domain`, `name`, `type` (A, AAAA, CNAME, MX, TXT), `ttl`,
/// and `address` / `cname` / `exchange`+`preference` / `txtdata`.
pub(crate) fn add_zone_record(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    edit(account, &call.params, |zone, p| {
        let name = qualify(&zone.domain, required(p, "name")?)?;
        let ttl = match optional(p, "ttl") {
            None => DEFAULT_TTL,
            Some(t) => t
                .parse::<u32>()
                .ok()
                .filter(|t| (1..=2_147_483_647).contains(t))
                .ok_or_else(|| format!("\"{t}\" is not a valid TTL: use a positive integer."))?,
        };
        let data = record_data(p)?;
        let is_cname = matches!(data, Data::Cname(_));
        if zone
            .records
            .iter()
            .any(|r| r.name == name && (is_cname || matches!(r.data, Data::Cname(_))))
        {
            return Err(format!(
                "A CNAME record cannot coexist with other records at \"{name}\"."
            ));
        }
        zone.records.push(Record { name, ttl, data });
        Ok(())
    })
}

/// API 2 `ZoneEdit::remove_zone_record`: `domain`, `line`.
pub(crate) fn remove_zone_record(account: &mut Account, call: &CpanelCall) -> Api2Reply {
    edit(account, &call.params, |zone, p| {
        let line = required(p, "line")?;
        let index = line
            .parse::<usize>()
            .ok()
            .and_then(|l| l.checked_sub(HEADER_LINES + 1))
            .filter(|i| *i < zone.records.len())
            .ok_or_else(|| format!("No record exists on line \"{line}\" of the zone \"{}\".", zone.domain))?;
        if index == 0 {
            return Err("You cannot remove the SOA record.".to_owned());
        }
        zone.records.remove(index);
        Ok(())
    })
}

/// Runs a change on the zone named by `domain` and answers in ZoneEdit's
/// `[{"result":{"status","statusmsg","newserial"}}]` shape; the serial moves only on success.
fn edit(
    account: &mut Account,
    params: &Params,
    change: impl FnOnce(&mut Zone, &Params) -> Result<(), String>,
) -> Api2Reply {
    let outcome = match required(params, "domain").and_then(|d| account.owned_domain(d)) {
        Err(error) => Err(error),
        Ok(domain) => match account.zones.get_mut(&domain) {
            None => Err(format!("The zone \"{domain}\" does not exist.")),
            Some(zone) => change(zone, params).map(|()| {
                zone.serial = zone.serial.saturating_add(1);
                (zone.domain.clone(), zone.serial)
            }),
        },
    };
    match outcome {
        Ok((domain, serial)) => Api2Reply::ok(vec![json!({"result": {
            "status": 1,
            "statusmsg": format!("Bind reloading on emulator using rndc zone: [{domain}]"),
            "newserial": serial.to_string(),
        }})]),
        Err(error) => Api2Reply {
            data: vec![json!({"result": {"status": 0, "statusmsg": error}})],
            error: Some(error),
        },
    }
}

fn zone_of<'a>(account: &'a Account, params: &Params) -> Result<&'a Zone, String> {
    let domain = account.owned_domain(required(params, "domain")?)?;
    account
        .zones
        .get(&domain)
        .ok_or_else(|| format!("The zone \"{domain}\" does not exist."))
}

/// `name` as a fully qualified name inside the zone: relative names get the zone appended, `@`
/// is the apex, names already ending in the zone (with or without the dot) are kept.
fn qualify(zone: &str, name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_suffix('.').unwrap_or(&lower);
    let fqdn = if bare == "@" || bare == zone {
        format!("{zone}.")
    } else if bare.ends_with(&format!(".{zone}")) {
        format!("{bare}.")
    } else if lower.ends_with('.') {
        return Err(format!("The name \"{name}\" is not inside the zone \"{zone}\"."));
    } else {
        format!("{bare}.{zone}.")
    };
    let labels_ok = fqdn.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*'))
    });
    if !labels_ok || fqdn.len() > 254 {
        return Err(format!("\"{name}\" is not a valid record name."));
    }
    Ok(fqdn)
}

/// The record data for `type`, from the parameter that type reads.
fn record_data(p: &Params) -> Result<Data, String> {
    let host = |key: &str| -> Result<String, String> {
        let value = required(p, key)?;
        let bare = value.trim_end_matches('.');
        if super::state::is_hostname(bare) {
            Ok(format!("{}.", bare.to_ascii_lowercase()))
        } else {
            Err(format!("\"{value}\" is not a valid host name."))
        }
    };
    let rtype = required(p, "type")?;
    match rtype.to_ascii_uppercase().as_str() {
        "A" => {
            let address = required(p, "address")?;
            address
                .parse()
                .map(Data::A)
                .map_err(|_| format!("\"{address}\" is not a valid IPv4 address."))
        }
        "AAAA" => {
            let address = required(p, "address")?;
            address
                .parse()
                .map(Data::Aaaa)
                .map_err(|_| format!("\"{address}\" is not a valid IPv6 address."))
        }
        "CNAME" => host("cname").map(Data::Cname),
        "MX" => {
            let exchange = host("exchange")?;
            let preference = required(p, "preference")?;
            let preference = preference
                .parse()
                .map_err(|_| format!("\"{preference}\" is not a valid MX preference."))?;
            Ok(Data::Mx { preference, exchange })
        }
        "TXT" => {
            let text = required(p, "txtdata")?;
            if text.len() > 4000 || text.chars().any(char::is_control) {
                return Err("The TXT record data is not valid.".to_owned());
            }
            Ok(Data::Txt(text.to_owned()))
        }
        _ => Err(format!("\"{rtype}\" is not a supported record type.")),
    }
}

/// One record as `fetchzone_records` shows it.
fn record_json(zone: &Zone, index: usize, r: &Record) -> Value {
    let line = index + HEADER_LINES + 1;
    let mut row = json!({
        "line": line,
        "Line": line,
        "name": r.name,
        "class": "IN",
        "ttl": r.ttl,
        "type": r.data.type_name(),
    });
    let extra = match &r.data {
        Data::Soa { mname, rname } => json!({
            "mname": mname, "rname": rname, "serial": zone.serial.to_string(),
            "refresh": 3600, "retry": 1800, "expire": 1209600, "minimum": 86400,
        }),
        Data::Ns(host) => json!({"nsdname": host, "record": host}),
        Data::A(ip) => json!({"address": ip.to_string(), "record": ip.to_string()}),
        Data::Aaaa(ip) => json!({"address": ip.to_string(), "record": ip.to_string()}),
        Data::Cname(host) => json!({"cname": host, "record": host}),
        Data::Mx { preference, exchange } => {
            json!({"exchange": exchange, "preference": preference, "record": exchange})
        }
        Data::Txt(text) => json!({"txtdata": text, "record": text}),
    };
    if let (Some(row), Value::Object(extra)) = (row.as_object_mut(), extra) {
        row.extend(extra);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_inside_the_zone_only() {
        let q = |n| qualify("example.com", n);
        assert_eq!(q("www"), Ok("www.example.com.".into()));
        assert_eq!(q("@"), Ok("example.com.".into()));
        assert_eq!(
            q("_acme-challenge.example.com."),
            Ok("_acme-challenge.example.com.".into())
        );
        assert_eq!(q("Example.COM"), Ok("example.com.".into()));
        assert!(q("evil.org.").is_err());
        assert!(q("a..b").is_err());
        assert!(q("bad name").is_err());
    }

    #[test]
    fn seeded_zone_renders_one_line_per_record() {
        let zone = Zone::seeded("example.com");
        let lines = zone.render();
        assert_eq!(lines.len(), HEADER_LINES + zone.records.len());
        assert!(lines[HEADER_LINES].contains(" IN SOA ns1.example.com. "));
        assert!(lines
            .iter()
            .any(|l| l == "example.com. 14400 IN MX 0 mail.example.com."));
    }
}
