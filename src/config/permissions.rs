//! `permissions { publish, subscribe, allow_responses }` of a user entry
//! or of `default_permissions`, with nats-server 2.9's forms, aliases,
//! quirks and error texts (opts.go `parseUserPermissions` and helpers).

use std::time::Duration;

use percore_core::auth::{Permissions, ResponsePermission, Rules, SubscribeRule};
use percore_core::subject::is_valid_subscribe_subject;

use super::conf::{Entry, Map, Node, Value};
use super::duration::parse_go_duration;
use super::entry::integer;
use super::error::{go_quote, go_type, go_value, ConfigError};

/// Parses a `permissions` entry (its value must be a map).
pub fn parse_permissions(entry: &Entry) -> Result<Permissions, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Expected permissions to be a map/struct, got {}",
                go_value(&entry.node.value)
            ),
        ));
    };
    let mut permissions = Permissions::default();
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            // `import`/`export` are the route spellings; nats-server takes
            // them everywhere.
            "pub" | "publish" | "import" => {
                permissions.publish = subject_rules(e, publish_rule)?;
            }
            "sub" | "subscribe" | "export" => {
                permissions.subscribe = subject_rules(e, subscribe_rule)?;
            }
            "publish_allow_responses" | "allow_responses" => {
                permissions.allow_responses = allow_responses(e)?;
            }
            _ if e.used_as_variable => {}
            _ => return Err(unknown_permissions_field(e)),
        }
    }
    if permissions.allow_responses.is_some() {
        // nats-server (`validateResponsePermissions`, once every key is
        // read): replies are the exception to a publish allow list, so
        // without one, the list becomes empty and only replies pass.
        let publish = permissions.publish.get_or_insert_with(Rules::default);
        publish.allow.get_or_insert_with(Vec::new);
    }
    Ok(permissions)
}

fn unknown_permissions_field(entry: &Entry) -> ConfigError {
    ConfigError::at(
        &entry.key_pos,
        format!("Unknown field {} parsing permissions", go_quote(&entry.key)),
    )
}

/// A publish rule is the subject as written (a `"subject queue"` pair is
/// accepted, as by nats-server, and then matches no publish).
fn publish_rule(subject: &str) -> Box<[u8]> {
    subject.as_bytes().into()
}

/// `"subject"` or `"subject queue"` (already validated: at most two
/// whitespace-separated fields).
fn subscribe_rule(text: &str) -> SubscribeRule {
    let mut fields = text.split_whitespace();
    SubscribeRule {
        subject: fields.next().unwrap_or_default().as_bytes().into(),
        queue: fields.next().map(|queue| queue.as_bytes().into()),
    }
}

/// One direction: a subject, a list of subjects (the allow list), or a map
/// with `allow` and/or `deny`. An empty map sets nothing (`None`), as in
/// nats-server.
fn subject_rules<R>(entry: &Entry, rule: fn(&str) -> R) -> Result<Option<Rules<R>>, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Ok(Some(Rules {
            allow: subjects(&entry.node, rule)?,
            deny: Vec::new(),
        }));
    };
    if map.entries().is_empty() {
        return Ok(None);
    }
    allow_and_deny(map, rule).map(Some)
}

fn allow_and_deny<R>(map: &Map, rule: fn(&str) -> R) -> Result<Rules<R>, ConfigError> {
    let mut rules = Rules {
        allow: None,
        deny: Vec::new(),
    };
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "allow" => rules.allow = subjects(&e.node, rule)?,
            "deny" => rules.deny = subjects(&e.node, rule)?.unwrap_or_default(),
            _ if e.used_as_variable => {}
            _ => {
                return Err(ConfigError::at(
                    &e.key_pos,
                    format!(
                        "Unknown field name {} parsing subject permissions, only 'allow' or 'deny' are permitted",
                        go_quote(&e.key)
                    ),
                ))
            }
        }
    }
    Ok(rules)
}

/// A subject or a list of subjects, each validated. An empty list gives
/// `None` ("no list"), not an empty one: nats-server builds the list by
/// appending to a nil slice, so `allow: []` in a file allows everything.
fn subjects<R>(node: &Node, rule: fn(&str) -> R) -> Result<Option<Vec<R>>, ConfigError> {
    let items: Vec<&Node> = match &node.value {
        Value::String(_) => vec![node],
        Value::Array(items) => items.iter().collect(),
        other => {
            return Err(ConfigError::at(
                &node.pos,
                format!(
                    "Expected subject permissions to be a subject, or array of subjects, got {}",
                    go_type(other)
                ),
            ))
        }
    };
    let mut rules = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = &item.value else {
            return Err(ConfigError::at(
                &item.pos,
                "Subject in permissions array cannot be cast to string",
            ));
        };
        check_subject(text).map_err(|message| ConfigError::at(&item.pos, message))?;
        rules.push(rule(text));
    }
    Ok((!rules.is_empty()).then_some(rules))
}

/// nats-server's `checkPermSubjectArray`: a valid subject (wildcards
/// allowed), or exactly two whitespace-separated fields whose first is
/// one (a subject and a queue group).
fn check_subject(text: &str) -> Result<(), String> {
    if is_valid_subscribe_subject(text.as_bytes()) {
        return Ok(());
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields[..] {
        [subject, _queue] if !is_valid_subscribe_subject(subject.as_bytes()) => Err(format!(
            "subject {} is not a valid subject",
            go_quote(subject)
        )),
        [_, _] => Ok(()),
        _ => Err(format!("subject {} is not a valid subject", go_quote(text))),
    }
}

/// `allow_responses: true` (the defaults: one reply within 2 minutes),
/// `false` (off), or a map of `max` and `expires`.
fn allow_responses(entry: &Entry) -> Result<Option<ResponsePermission>, ConfigError> {
    match &entry.node.value {
        Value::Bool(enabled) => Ok(enabled.then(ResponsePermission::default)),
        Value::Map(map) => response_limits(map).map(Some),
        _ => Err(ConfigError::at(
            &entry.key_pos,
            "error parsing response permissions, expected a boolean or a map",
        )),
    }
}

/// For both limits, 0 keeps the default and a negative value lifts the
/// limit (nats-server's convention).
fn response_limits(map: &Map) -> Result<ResponsePermission, ConfigError> {
    let mut limits = ResponsePermission::default();
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                let max = integer(e)?;
                if max != 0 {
                    // Past u32::MAX replies is unlimited in practice.
                    limits.max = u32::try_from(max).ok().or((max > 0).then_some(u32::MAX));
                }
            }
            "expires" | "expiration" | "ttl" => {
                let nanos = expires(e)?;
                if nanos != 0 {
                    limits.expires = u64::try_from(nanos).ok().map(Duration::from_nanos);
                }
            }
            _ if e.used_as_variable => {}
            _ => return Err(unknown_permissions_field(e)),
        }
    }
    Ok(limits)
}

/// `expires` as signed nanoseconds; only a duration string is accepted.
fn expires(entry: &Entry) -> Result<i64, ConfigError> {
    let Value::String(text) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            "error parsing expires, not a duration string",
        ));
    };
    parse_go_duration(text).map_err(|reason| {
        ConfigError::at(&entry.key_pos, format!("error parsing expires: {reason}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    /// Parses `permissions: <source>` from a file named x.conf.
    fn parse(source: &str) -> Result<Permissions, String> {
        let text = format!("permissions: {source}");
        let map = parse_str(&text, "x.conf", &|_| None).map_err(|e| e.to_string())?;
        parse_permissions(&map.entries()[0]).map_err(|e| e.to_string())
    }

    fn ok(source: &str) -> Permissions {
        parse(source).unwrap_or_else(|e| panic!("unexpected error for {source:?}: {e}"))
    }

    fn err(source: &str) -> String {
        match parse(source) {
            Ok(p) => panic!("expected an error for {source:?}, got {p:?}"),
            Err(e) => e,
        }
    }

    fn subjects(list: &[&str]) -> Vec<Box<[u8]>> {
        list.iter().map(|s| s.as_bytes().into()).collect()
    }

    fn sub(subject: &str, queue: Option<&str>) -> SubscribeRule {
        SubscribeRule {
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
        }
    }

    #[test]
    fn forms_of_a_direction() {
        let p = ok("{ publish: \"a.>\", subscribe: [\"b.*\", \"c\"] }");
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: Some(subjects(&["a.>"])),
                deny: vec![]
            })
        );
        assert_eq!(
            p.subscribe,
            Some(Rules {
                allow: Some(vec![sub("b.*", None), sub("c", None)]),
                deny: vec![]
            })
        );
        assert_eq!(p.allow_responses, None);
        let p = ok("{ pub: { allow: [\"x\"], deny: \"x.y\" }, sub: { deny: [\"s.>\", \"t\"] } }");
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: Some(subjects(&["x"])),
                deny: subjects(&["x.y"])
            })
        );
        assert_eq!(
            p.subscribe,
            Some(Rules {
                allow: None,
                deny: vec![sub("s.>", None), sub("t", None)]
            })
        );
    }

    #[test]
    fn aliases_and_case() {
        let p = ok("{ import: a, export: b }");
        assert_eq!(p.publish.map(|r| r.allow), Some(Some(subjects(&["a"]))));
        assert_eq!(
            p.subscribe.map(|r| r.allow),
            Some(Some(vec![sub("b", None)]))
        );
        let p = ok("{ PUBLISH: { ALLOW: a, Deny: b }, Subscribe: c }");
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: Some(subjects(&["a"])),
                deny: subjects(&["b"])
            })
        );
        assert!(p.subscribe.is_some());
    }

    #[test]
    fn empty_lists_and_maps_set_nothing_like_nats_server() {
        let p = ok("{ publish: [], subscribe: {} }");
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: None,
                deny: vec![]
            })
        );
        assert_eq!(p.subscribe, None);
        let p = ok("{ publish: { allow: [], deny: [] } }");
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: None,
                deny: vec![]
            })
        );
        assert_eq!(ok("{}"), Permissions::default());
    }

    #[test]
    fn queue_groups_in_subscribe_rules() {
        let p = ok("{ subscribe: { allow: [\"jobs.> workers\", \"a.*  q.*\"], deny: \"x\tq\" } }");
        assert_eq!(
            p.subscribe,
            Some(Rules {
                allow: Some(vec![
                    sub("jobs.>", Some("workers")),
                    sub("a.*", Some("q.*"))
                ]),
                deny: vec![sub("x", Some("q"))]
            })
        );
        // nats-server accepts the pair for publish too (it then matches no
        // publish); the rule is kept as written.
        let p = ok("{ publish: \"a b\" }");
        assert_eq!(p.publish.and_then(|r| r.allow), Some(subjects(&["a b"])));
    }

    #[test]
    fn allow_responses_forms() {
        let p = ok("{ allow_responses: true }");
        assert_eq!(p.allow_responses, Some(ResponsePermission::default()));
        // No publish allow list: it becomes empty, only replies pass.
        assert_eq!(
            p.publish,
            Some(Rules {
                allow: Some(vec![]),
                deny: vec![]
            })
        );
        let p = ok("{ allow_responses: false }");
        assert_eq!((p.allow_responses, p.publish), (None, None));
        let p = ok("{ publish_allow_responses: { max: 5, expires: \"1m\" } }");
        assert_eq!(
            p.allow_responses,
            Some(ResponsePermission {
                max: Some(5),
                expires: Some(Duration::from_secs(60))
            })
        );
        for (limits, max, expires) in [
            ("{}", Some(1), Some(120)),
            ("{ max: 0, expires: \"0s\" }", Some(1), Some(120)),
            ("{ max: -1, expires: \"-1s\" }", None, None),
            ("{ max_msgs: 2, ttl: \"3s\" }", Some(2), Some(3)),
            ("{ max_messages: 3, expiration: \"4s\" }", Some(3), Some(4)),
            ("{ MAX_RESPONSES: 4 }", Some(4), Some(120)),
            ("{ max: 5000000000 }", Some(u32::MAX), Some(120)),
        ] {
            let p = ok(&format!("{{ allow_responses: {limits} }}"));
            let expected = ResponsePermission {
                max,
                expires: expires.map(Duration::from_secs),
            };
            assert_eq!(p.allow_responses, Some(expected), "{limits}");
        }
    }

    #[test]
    fn allow_responses_keeps_an_existing_publish_allow_list_in_any_order() {
        for source in [
            "{ publish: { allow: a, deny: b }, allow_responses: true }",
            "{ allow_responses: true, publish: { allow: a, deny: b } }",
        ] {
            let p = ok(source);
            assert_eq!(
                p.publish,
                Some(Rules {
                    allow: Some(subjects(&["a"])),
                    deny: subjects(&["b"])
                }),
                "{source}"
            );
        }
        // A deny-only publish gets the empty allow list, whatever the order.
        for source in [
            "{ publish: { deny: b }, allow_responses: true }",
            "{ allow_responses: true, publish: { deny: b } }",
        ] {
            let p = ok(source);
            assert_eq!(
                p.publish,
                Some(Rules {
                    allow: Some(vec![]),
                    deny: subjects(&["b"])
                }),
                "{source}"
            );
        }
    }

    #[test]
    fn unknown_keys() {
        assert_eq!(
            err("{ publish: a, Foo: 1 }"),
            "x.conf:1:27: Unknown field \"Foo\" parsing permissions"
        );
        assert_eq!(
            err("{ allow_responses: { max: 1, size: 2 } }"),
            "x.conf:1:42: Unknown field \"size\" parsing permissions"
        );
        assert_eq!(
            err("{ publish: { allow: a, except: b } }"),
            "x.conf:1:36: Unknown field name \"except\" parsing subject permissions, only 'allow' or 'deny' are permitted"
        );
        // A key used as a variable is not unknown.
        let p = ok("{ S: \"a.b\", publish: $S }");
        assert_eq!(p.publish.and_then(|r| r.allow), Some(subjects(&["a.b"])));
    }

    #[test]
    fn invalid_subjects() {
        let cases = [
            (
                "{ publish: \"a..b\" }",
                "x.conf:1:24: subject \"a..b\" is not a valid subject",
            ),
            (
                "{ publish: [\"ok\", \"a.>.b\"] }",
                "x.conf:1:31: subject \"a.>.b\" is not a valid subject",
            ),
            (
                "{ subscribe: \"\" }",
                "x.conf:1:26: subject \"\" is not a valid subject",
            ),
            (
                "{ subscribe: \"a b c\" }",
                "x.conf:1:26: subject \"a b c\" is not a valid subject",
            ),
            (
                "{ subscribe: \"a. q\" }",
                "x.conf:1:26: subject \"a.\" is not a valid subject",
            ),
            (
                "{ subscribe: { deny: \">.a\" } }",
                "x.conf:1:34: subject \">.a\" is not a valid subject",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
    }

    #[test]
    fn wrong_types() {
        let cases = [
            ("a.b", "x.conf:1:0: Expected permissions to be a map/struct, got a.b"),
            ("[a]", "x.conf:1:0: Expected permissions to be a map/struct, got [a]"),
            ("{ publish: 1 }", "x.conf:1:24: Expected subject permissions to be a subject, or array of subjects, got int64"),
            ("{ publish: { allow: true } }", "x.conf:1:33: Expected subject permissions to be a subject, or array of subjects, got bool"),
            ("{ subscribe: { deny: { a: b } } }", "x.conf:1:34: Expected subject permissions to be a subject, or array of subjects, got map[string]interface {}"),
            ("{ publish: [a, 2] }", "x.conf:1:28: Subject in permissions array cannot be cast to string"),
            ("{ allow_responses: \"yes\" }", "x.conf:1:15: error parsing response permissions, expected a boolean or a map"),
            ("{ allow_responses: { max: \"1\" } }", "x.conf:1:34: invalid value for \"max\": expected an integer, got a string"),
            ("{ allow_responses: { expires: 60 } }", "x.conf:1:34: error parsing expires, not a duration string"),
            ("{ allow_responses: { ttl: \"1x\" } }", "x.conf:1:34: error parsing expires: time: unknown unit \"x\" in duration \"1x\""),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
    }
}
