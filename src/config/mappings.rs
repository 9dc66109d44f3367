//! `mappings` (alias `maps`), at the top level for the global account
//! (`$G`) and inside an account of the `accounts` block, into the core's
//! [`Mappings`]. Forms, keys and error texts are nats-server 2.9.10's
//! (opts.go `parseAccountMappings`, `parseAccountMapDest`):
//!
//! ```text
//! mappings {
//!   foo: bar                                      # all of it
//!   "a.*.*": "b.$2.$1"                            # wildcards reordered
//!   w: [ {destination: w1, weight: 40%},          # weighted; the rest
//!        {destination: w2, weight: 40, cluster: east} ]   # stays on `w`
//! }
//! ```
//!
//! Where nats-server 2.9.10 reports a Go panic instead of its message
//! (a weighted form it cannot add, a destination or cluster that is not a
//! string), percore says what is wrong.

use percore_core::account::{MapDestination, Mappings};

use super::conf::{Entry, Pos, Value};
use super::entry::{string, wrong_type};
use super::error::{go_quote, go_value, ConfigError};

/// The block at `entry`.
pub fn parse_mappings(entry: &Entry) -> Result<Mappings, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(wrong_type(entry, "a map"));
    };
    let mut mappings = Mappings::default();
    for e in map.entries() {
        let source = e.key.as_str();
        if !is_valid_subject(source) {
            return Err(ConfigError::at(
                &entry.key_pos,
                format!("Subject {} is not a valid subject", go_quote(source)),
            ));
        }
        match &e.node.value {
            Value::String(destination) => {
                mappings
                    .add(source, &[MapDestination::all(destination)])
                    .map_err(|reason| {
                        ConfigError::at(
                            &e.key_pos,
                            format!(
                                "Error adding mapping for {} to {} : {reason}",
                                go_quote(source),
                                go_quote(destination)
                            ),
                        )
                    })?;
            }
            Value::Array(items) => {
                let destinations = items
                    .iter()
                    .map(|item| destination(&item.value, &item.pos))
                    .collect::<Result<Vec<_>, _>>()?;
                add_weighted(&mut mappings, e, &destinations)?;
            }
            other => {
                let destination = destination(other, &e.key_pos)?;
                add_weighted(&mut mappings, e, &[destination])?;
            }
        }
    }
    Ok(mappings)
}

/// nats-server's `IsValidSubject`: no empty token, nothing after `>`, no
/// white space.
fn is_valid_subject(subject: &str) -> bool {
    percore_core::subject::is_valid_subscribe_subject(subject.as_bytes())
}

fn add_weighted(
    mappings: &mut Mappings,
    entry: &Entry,
    destinations: &[MapDestination],
) -> Result<(), ConfigError> {
    mappings.add(&entry.key, destinations).map_err(|reason| {
        ConfigError::at(
            &entry.key_pos,
            format!(
                "Error adding mapping for {} : {reason}",
                go_quote(&entry.key)
            ),
        )
    })
}

/// One weighted destination: `{destination (or dest), weight, cluster}`.
/// `pos` is where nats-server points an error about the whole entry.
fn destination(value: &Value, pos: &Pos) -> Result<MapDestination, ConfigError> {
    let Value::Map(map) = value else {
        return Err(ConfigError::at(
            pos,
            "Expected an entry for the mapping destination",
        ));
    };
    let mut destination = MapDestination {
        subject: String::new(),
        weight: 0,
        cluster: None,
    };
    let mut weighted = false;
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "dest" | "destination" => destination.subject = string(e)?.to_string(),
            "weight" => {
                destination.weight = weight(e)?;
                weighted = true;
            }
            "cluster" => destination.cluster = Some(string(e)?.to_string()),
            _ => {
                return Err(ConfigError::at(
                    &e.key_pos,
                    format!("Unknown field {} for mapping destination", go_quote(&e.key)),
                ))
            }
        }
    }
    if !weighted {
        return Err(ConfigError::at(
            pos,
            format!(
                "Missing weight for mapping destination {}",
                go_quote(&destination.subject)
            ),
        ));
    }
    Ok(destination)
}

/// `weight: 40`, `weight: "40"` or `weight: 40%`, 0 to 100.
fn weight(entry: &Entry) -> Result<u8, ConfigError> {
    let out_of_range = |n: &dyn std::fmt::Display| {
        ConfigError::at(
            &entry.key_pos,
            format!("Invalid weight {n} for mapping destination"),
        )
    };
    let n = match &entry.node.value {
        Value::String(text) => {
            let text = text.strip_suffix('%').unwrap_or(text);
            match text.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    return Err(ConfigError::at(
                        &entry.key_pos,
                        format!("Invalid weight {} for mapping destination", go_quote(text)),
                    ))
                }
            }
        }
        Value::Integer(n) => *n,
        // nats-server's message ends in a newline.
        other => {
            return Err(ConfigError::at(
                &entry.key_pos,
                format!("Unknown entry type for weight of {}\n", go_value(other)),
            ))
        }
    };
    u8::try_from(n)
        .ok()
        .filter(|&w| w <= 100)
        .ok_or_else(|| out_of_range(&n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    fn parse(source: &str) -> Result<Mappings, String> {
        let map = parse_str(source, "x.conf", &|_| None).expect("parse");
        parse_mappings(&map.entries()[0]).map_err(|e| e.to_string())
    }

    fn apply(m: &Mappings, subject: &str) -> String {
        let mut out = Vec::new();
        match m.select(subject.as_bytes(), None, || 0, &mut out) {
            percore_core::account::Mapped::Renamed => String::from_utf8(out).unwrap(),
            _ => subject.to_string(),
        }
    }

    #[test]
    fn the_three_forms() {
        let m = parse(
            "mappings { foo: bar, \"a.*.*\": \"b.$2.$1\", w: [ {destination: w1, weight: 40%}, {dest: w2, weight: \"60\"} ], s: {dest: t, weight: 100} }",
        )
        .unwrap();
        assert_eq!(apply(&m, "foo"), "bar");
        assert_eq!(apply(&m, "a.1.2"), "b.2.1");
        assert_eq!(apply(&m, "w"), "w1");
        assert_eq!(apply(&m, "s"), "t");
        assert_eq!(m.iter().count(), 4);
    }

    #[test]
    fn errors_as_nats_server_words_them() {
        // Texts and positions from nats-server 2.9.10 (`-t`) on the same
        // lines; the last one, a Go panic text there, says what is wrong.
        let cases = [
            (
                "mappings { \"a..b\": c }",
                "x.conf:1:0: Subject \"a..b\" is not a valid subject",
            ),
            (
                "mappings { a: 5 }",
                "x.conf:1:11: Expected an entry for the mapping destination",
            ),
            (
                "mappings { a: [b] }",
                "x.conf:1:15: Expected an entry for the mapping destination",
            ),
            (
                "mappings { a: {dest: b, weight: 10, foo: 1} }",
                "x.conf:1:36: Unknown field \"foo\" for mapping destination",
            ),
            (
                "mappings { a: {dest: b} }",
                "x.conf:1:11: Missing weight for mapping destination \"b\"",
            ),
            (
                "mappings { a: {dest: b, weight: \"abc\"} }",
                "x.conf:1:24: Invalid weight \"abc\" for mapping destination",
            ),
            (
                "mappings { a: {dest: b, weight: 1.5} }",
                "x.conf:1:24: Unknown entry type for weight of 1.5\n",
            ),
            (
                "maps { a: {destination: b, weight: \"-5\"} }",
                "x.conf:1:27: Invalid weight -5 for mapping destination",
            ),
            (
                "mappings { \"a.*\": \"b.$2\" }",
                "x.conf:1:12: Error adding mapping for \"a.*\" to \"b.$2\" : invalid mapping destination: wildcard index out of range in $2: [2]",
            ),
            (
                "mappings { a: \"b c\" }",
                "x.conf:1:11: Error adding mapping for \"a\" to \"b c\" : invalid mapping destination: invalid subject",
            ),
            (
                "mappings { a: \"\" }",
                "x.conf:1:11: Error adding mapping for \"a\" to \"\" : invalid mapping destination: invalid subject in ",
            ),
            (
                "mappings { \"a.*\": \"b.*\" }",
                "x.conf:1:12: Error adding mapping for \"a.*\" to \"b.*\" : invalid subject",
            ),
            (
                "mappings { a: [ {dest: b, weight: 50}, {dest: c, weight: 60} ] }",
                "x.conf:1:11: Error adding mapping for \"a\" : total weight needs to be <= 100",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(parse(source).unwrap_err(), expected, "{source}");
        }
    }
}
