//! The monitoring endpoints as the system account's services answer them
//! (`$SYS.REQ.SERVER.PING.CONNZ`, `$SYS.REQ.SERVER.<id>.VARZ`, ...): the
//! request's JSON options become the endpoint's query parameters, and the
//! body is the one the HTTP endpoint renders, from the same cross-shard
//! snapshot, compacted as nats-server's `json.Marshal` writes it. The
//! envelope (`{"server":...,"data":...}`) is the caller's.

use std::sync::Arc;

use serde_json::Value;

use super::http::Query;
use super::routes::{Endpoint, Router};
use super::snapshot::{MonitorSnapshot, SnapshotRequest};
use super::SnapshotSource;

/// What a service request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAnswer {
    /// The endpoint's JSON body, compact.
    Data(String),
    /// nats-server's `ApiError`: 400 for bad options, 500 when rendering
    /// failed.
    Error { code: u16, description: String },
}

/// The endpoints of the system account's server services, rendered by the
/// HTTP monitor's router. Shared by the shards' blocking tasks.
pub struct SystemApi {
    router: Router,
    source: Arc<dyn SnapshotSource>,
    cpu: std::sync::Mutex<super::process::CpuSampler>,
}

impl SystemApi {
    pub fn new(source: Arc<dyn SnapshotSource>) -> SystemApi {
        SystemApi {
            router: Router::new(source.clone(), ""),
            source,
            cpu: std::sync::Mutex::new(super::process::CpuSampler::default()),
        }
    }

    /// nats-server's `ServerStats` body (`$SYS.REQ.SERVER.PING`), with
    /// this process's memory and CPU.
    pub fn statsz(&self) -> Option<String> {
        let mut snapshot = self.snapshot(SnapshotRequest {
            with_connections: true,
            ..SnapshotRequest::default()
        })?;
        snapshot.server.mem = super::process::resident_bytes();
        snapshot.server.cpu = self
            .cpu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sample();
        Some(super::statsz::server_stats(&snapshot))
    }

    /// `$SYS.REQ.ACCOUNT.<account>.CONNS`: the account's open connections
    /// here; None when it has none (no answer, as nats-server).
    pub fn account_stat(&self, account: &str) -> Option<super::statsz::AccountStat> {
        let snapshot = self.snapshot(SnapshotRequest {
            with_connections: true,
            ..SnapshotRequest::default()
        })?;
        super::statsz::account_stat(&snapshot, account)
    }

    fn snapshot(&self, request: SnapshotRequest) -> Option<MonitorSnapshot> {
        self.source.snapshot(request)
    }

    /// `service` (`VARZ`, `CONNZ`, ...) with the request's `options`;
    /// `account` set for `$SYS.REQ.ACCOUNT.<account>.CONNZ`. None: not a
    /// service this has, or the shards did not answer.
    pub fn answer(
        &self,
        service: &str,
        options: &Option<Value>,
        account: Option<&str>,
    ) -> Option<ServiceAnswer> {
        let endpoint = endpoint_of(service)?;
        let mut pairs = match options {
            Some(options) => match query_pairs(endpoint, options) {
                Ok(pairs) => pairs,
                Err(description) => {
                    return Some(ServiceAnswer::Error {
                        code: 400,
                        description,
                    })
                }
            },
            None => Vec::new(),
        };
        if let Some(account) = account {
            pairs.retain(|(key, _)| key != "acc");
            pairs.push(("acc".to_string(), account.to_string()));
        }
        match self
            .router
            .render_for_system(endpoint, &Query::from_pairs(pairs))
        {
            Ok(Some(body)) => Some(ServiceAnswer::Data(compact(&body))),
            Ok(None) => None,
            Err(description) => Some(ServiceAnswer::Error {
                code: 500,
                description,
            }),
        }
    }
}

fn endpoint_of(service: &str) -> Option<Endpoint> {
    Some(match service {
        "VARZ" => Endpoint::Varz,
        "CONNZ" => Endpoint::Connz,
        "SUBSZ" => Endpoint::Subsz,
        "ROUTEZ" => Endpoint::Routez,
        "GATEWAYZ" => Endpoint::Gatewayz,
        "LEAFZ" => Endpoint::Leafz,
        "ACCOUNTZ" => Endpoint::Accountz,
        "HEALTHZ" => Endpoint::Healthz,
        _ => return None,
    })
}

/// How one JSON option of nats-server's `<X>EventOptions` becomes an HTTP
/// parameter.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Str,
    /// `ConnzOptions.State`: 0 open, 1 closed, 2 all.
    ConnState,
}

/// (JSON key, Go type name for the error, HTTP parameter, kind).
type OptionRule = (&'static str, &'static str, &'static str, Kind);

const CONNZ_OPTIONS: &[OptionRule] = &[
    ("sort", "server.SortOpt", "sort", Kind::Str),
    ("auth", "bool", "auth", Kind::Bool),
    ("subscriptions", "bool", "subs", Kind::Bool),
    ("subscriptions_detail", "bool", "subs", Kind::Bool),
    ("offset", "int", "offset", Kind::Int),
    ("limit", "int", "limit", Kind::Int),
    ("cid", "uint64", "cid", Kind::Int),
    ("state", "server.ConnState", "state", Kind::ConnState),
    ("user", "string", "user", Kind::Str),
    ("acc", "string", "acc", Kind::Str),
];

const SUBSZ_OPTIONS: &[OptionRule] = &[
    ("offset", "int", "offset", Kind::Int),
    ("limit", "int", "limit", Kind::Int),
    ("subscriptions", "bool", "subs", Kind::Bool),
    ("test", "string", "test", Kind::Str),
];

const ROUTEZ_OPTIONS: &[OptionRule] = &[
    ("subscriptions", "bool", "subs", Kind::Bool),
    ("subscriptions_detail", "bool", "subs", Kind::Bool),
];

const ACCOUNTZ_OPTIONS: &[OptionRule] = &[("account", "string", "acc", Kind::Str)];

fn rules(endpoint: Endpoint) -> (&'static str, &'static [OptionRule]) {
    match endpoint {
        Endpoint::Connz => ("ConnzEventOptions", CONNZ_OPTIONS),
        Endpoint::Subsz => ("SubszEventOptions", SUBSZ_OPTIONS),
        Endpoint::Routez => ("RoutezEventOptions", ROUTEZ_OPTIONS),
        Endpoint::Accountz => ("AccountzEventOptions", ACCOUNTZ_OPTIONS),
        _ => ("EventFilterOptions", &[]),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The HTTP parameters for a request's JSON `options`; Err: nats-server's
/// 400 description (Go's `json.Unmarshal` error, in its words). Unknown
/// keys are ignored, as Go ignores them; `null` leaves an option unset.
fn query_pairs(endpoint: Endpoint, options: &Value) -> Result<Vec<(String, String)>, String> {
    let (type_name, rules) = rules(endpoint);
    let Some(object) = options.as_object() else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type server.{type_name}",
            json_type(options)
        ));
    };
    let mut pairs = Vec::new();
    for &(key, go_type, parameter, kind) in rules {
        let Some(value) = object.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let mismatch = || {
            format!(
                "json: cannot unmarshal {} into Go struct field {type_name}.{key} of type {go_type}",
                json_type(value)
            )
        };
        let text = match (kind, value) {
            (Kind::Bool, Value::Bool(false)) => continue,
            (Kind::Bool, Value::Bool(true)) if key == "subscriptions_detail" => {
                if matches!(endpoint, Endpoint::Connz | Endpoint::Routez) {
                    "detail".to_string()
                } else {
                    "true".to_string()
                }
            }
            (Kind::Bool, Value::Bool(true)) => "true".to_string(),
            (Kind::Int, Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(u)) => u.to_string(),
                _ => return Err(mismatch()),
            },
            (Kind::ConnState, Value::Number(n)) => match n.as_i64() {
                Some(0) => "open".to_string(),
                Some(1) => "closed".to_string(),
                Some(2) => "any".to_string(),
                _ => continue,
            },
            (Kind::Str, Value::String(s)) => s.clone(),
            _ => return Err(mismatch()),
        };
        // `subscriptions_detail` wins over `subscriptions`, as in the
        // server's options.
        pairs.retain(|(k, _): &(String, String)| k != parameter);
        pairs.push((parameter.to_string(), text));
    }
    Ok(pairs)
}

/// The monitor's indented JSON without the whitespace between tokens.
pub fn compact(pretty: &str) -> String {
    let mut out = String::with_capacity(pretty.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in pretty.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_keeps_strings() {
        let pretty = "{\n  \"a b\": \"x \\\" y\",\n  \"n\": [\n    1,\n    2\n  ]\n}";
        assert_eq!(compact(pretty), "{\"a b\":\"x \\\" y\",\"n\":[1,2]}");
    }

    #[test]
    fn connz_options_become_parameters() {
        let pairs = query_pairs(
            Endpoint::Connz,
            &json!({"subscriptions": true, "limit": 2, "state": 1, "acc": "A", "other": 1}),
        )
        .unwrap();
        assert_eq!(
            pairs,
            vec![
                ("subs".to_string(), "true".to_string()),
                ("limit".to_string(), "2".to_string()),
                ("state".to_string(), "closed".to_string()),
                ("acc".to_string(), "A".to_string()),
            ]
        );
        for endpoint in [Endpoint::Connz, Endpoint::Routez] {
            let detail = query_pairs(endpoint, &json!({"subscriptions_detail": true})).unwrap();
            assert_eq!(detail, vec![("subs".to_string(), "detail".to_string())]);
        }
    }

    #[test]
    fn wrong_types_are_go_errors() {
        assert_eq!(
            query_pairs(Endpoint::Connz, &json!({"subscriptions": "yes"})),
            Err("json: cannot unmarshal string into Go struct field ConnzEventOptions.subscriptions of type bool".to_string())
        );
        assert!(query_pairs(Endpoint::Varz, &json!([1])).is_err());
        assert_eq!(query_pairs(Endpoint::Varz, &json!({"x": 1})), Ok(vec![]));
    }
}
