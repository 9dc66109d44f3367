//! The server's services on the system account, as nats-server 2.9 answers
//! them: `$SYS.REQ.SERVER.PING` (statsz), `$SYS.REQ.SERVER.PING.<name>`
//! (every server answers) and `$SYS.REQ.SERVER.<id>.<name>` (only the
//! addressed one) for `STATSZ`, `VARZ`, `CONNZ`, `SUBSZ`, `ROUTEZ`,
//! `GATEWAYZ`, `LEAFZ`, `ACCOUNTZ`, `HEALTHZ`; and per account
//! `$SYS.REQ.ACCOUNT.<account>.CONNZ` and `.CONNS`.
//!
//! Where they run: a shard's service subscription only collects the
//! request (`ShardBroker::take_system_requests`, like the `full` resolver's
//! updates); this module runs on that shard's blocking thread, because the
//! answer needs every shard's part: it asks them over their admin channels
//! exactly as the HTTP monitor does (`monitor::system_api`, the same
//! renderers), which a shard cannot wait for on its own executor (it must
//! answer its own part meanwhile). The answer goes back to the requesting
//! shard, which publishes it on the system account
//! (`ShardBroker::publish_system`). A request costs a cross-shard snapshot,
//! as an HTTP request does; the message path never sees any of it.

use std::time::SystemTime;

use percore_core::shard::SystemRequest;
use serde_json::Value;

use crate::monitor::system_api::{ServiceAnswer, SystemApi};
use crate::system_account::envelope::{event_id, server_info, Responder};

/// The server facts event filters compare (`EventFilterOptions`).
#[derive(Debug, Clone, Default)]
pub struct FilterFacts {
    pub cluster: String,
}

/// The answer to publish: its subject and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub subject: String,
    pub payload: String,
}

/// Answers one server or account service request; None: no answer (a
/// filter excluded this server, no reply subject, nothing to report). The
/// payload is escaped as Go's encoding/json writes it (`crate::go_json`).
pub fn handle(
    request: &SystemRequest,
    api: &SystemApi,
    me: &Responder,
    facts: &FilterFacts,
) -> Option<Answer> {
    answer(request, api, me, facts).map(|answer| Answer {
        payload: crate::go_json::go_json_string(answer.payload),
        ..answer
    })
}

fn answer(
    request: &SystemRequest,
    api: &SystemApi,
    me: &Responder,
    facts: &FilterFacts,
) -> Option<Answer> {
    let tokens: Vec<&str> = request.subject.split('.').collect();
    let options = match parse_options(&request.payload) {
        Ok(options) => options,
        Err(description) => {
            let reply = request.reply.clone()?;
            return Some(Answer {
                subject: reply,
                payload: envelope(me, None, Some((400, &description))),
            });
        }
    };
    if options.as_ref().is_some_and(|o| filtered_out(o, me, facts)) {
        return None;
    }
    match tokens.as_slice() {
        ["$SYS", "REQ", "SERVER", "PING"] | ["$SYS", "REQ", "SERVER", _, "STATSZ"] => {
            // Without a reply, nats-server sends its statsz on its own
            // subject.
            let subject = request
                .reply
                .clone()
                .unwrap_or_else(|| format!("$SYS.SERVER.{}.STATSZ", me.id));
            let stats = api.statsz()?;
            Some(Answer {
                subject,
                payload: format!(
                    "{{\"server\":{},\"statsz\":{stats}}}",
                    server_info(me, SystemTime::now())
                ),
            })
        }
        ["$SYS", "REQ", "SERVER", _, service] => {
            let reply = request.reply.clone()?;
            zreq(api, me, reply, service, &options, None)
        }
        ["$SYS", "REQ", "ACCOUNT", account, "CONNZ"] => {
            let reply = request.reply.clone()?;
            zreq(api, me, reply, "CONNZ", &options, Some(account))
        }
        ["$SYS", "REQ", "ACCOUNT", account, "CONNS"] => {
            let reply = request.reply.clone()?;
            account_conns(api, me, reply, account, &options)
        }
        _ => None,
    }
}

/// The request's JSON options; None for an empty payload. Err: the 400
/// description.
fn parse_options(payload: &[u8]) -> Result<Option<Value>, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(payload)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// nats-server's `filterRequest`: a request naming another server, host
/// or cluster (substring match) is not for this one.
fn filtered_out(options: &Value, me: &Responder, facts: &FilterFacts) -> bool {
    let excludes = |key: &str, mine: &str| {
        options
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|wanted| !wanted.is_empty() && !mine.contains(wanted))
    };
    // percore has no server tags and no JetStream domain: a request that
    // asks for any is for other servers.
    let asks_tags = options
        .get("tags")
        .and_then(Value::as_array)
        .is_some_and(|tags| !tags.is_empty());
    let asks_domain = options
        .get("domain")
        .and_then(Value::as_str)
        .is_some_and(|domain| !domain.is_empty());
    excludes("server_name", &me.name)
        || excludes("host", &me.host)
        || excludes("cluster", &facts.cluster)
        || asks_tags
        || asks_domain
}

/// `{"server":...,"data":...}` or `{"server":...,"error":{...}}`, the
/// fields in `ServerAPIResponse`'s order.
fn envelope(me: &Responder, data: Option<&str>, error: Option<(u16, &str)>) -> String {
    let mut out = format!("{{\"server\":{}", server_info(me, SystemTime::now()));
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    if let Some((code, description)) = error {
        out.push_str(",\"error\":");
        out.push_str(&serde_json::json!({"code": code, "description": description}).to_string());
    }
    out.push('}');
    out
}

fn zreq(
    api: &SystemApi,
    me: &Responder,
    reply: String,
    service: &str,
    options: &Option<Value>,
    account: Option<&str>,
) -> Option<Answer> {
    let payload = match api.answer(service, options, account)? {
        ServiceAnswer::Data(body) => envelope(me, Some(&body), None),
        ServiceAnswer::Error { code, description } => {
            envelope(me, None, Some((code, &description)))
        }
    };
    Some(Answer {
        subject: reply,
        payload,
    })
}

/// `$SYS.REQ.ACCOUNT.<account>.CONNS`: nats-server's `AccountNumConns`
/// event, only when the account has connections here. A payload naming
/// another account than the subject is dropped, as nats-server drops it.
fn account_conns(
    api: &SystemApi,
    me: &Responder,
    reply: String,
    account: &str,
    options: &Option<Value>,
) -> Option<Answer> {
    if let Some(named) = options.as_ref().and_then(|o| o.get("acc")) {
        if named.as_str() != Some(account) {
            return None;
        }
    }
    let stat = api.account_stat(account)?;
    let now = SystemTime::now();
    // `AccountStat`'s fields follow the envelope's in one object, as Go
    // embeds the struct.
    let stat = serde_json::to_string(&stat).ok()?;
    let fields = stat.strip_prefix('{')?.strip_suffix('}')?;
    Some(Answer {
        subject: reply,
        payload: format!(
            "{{\"type\":\"io.nats.server.advisory.v1.account_connections\",\"id\":\"{}\",\"timestamp\":\"{}\",\"server\":{},{fields}}}",
            event_id(),
            crate::monitor::format::rfc3339_nano(now),
            server_info(me, now),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> Responder {
        Responder {
            name: "alpha-1".into(),
            host: "127.0.0.1".into(),
            id: "NID".into(),
        }
    }

    #[test]
    fn filters_compare_as_nats_server_does() {
        let facts = FilterFacts {
            cluster: "east".into(),
        };
        let out = |options: Value| filtered_out(&options, &me(), &facts);
        assert!(!out(json!({})));
        assert!(!out(json!({"server_name": "alpha"})), "a substring matches");
        assert!(out(json!({"server_name": "beta"})));
        assert!(!out(json!({"cluster": "ea", "host": "127.0"})));
        assert!(out(json!({"cluster": "west"})));
        assert!(out(json!({"tags": ["x"]})));
        assert!(out(json!({"domain": "hub"})));
        assert!(!out(json!({"tags": [], "domain": ""})));
    }

    #[test]
    fn options_that_are_not_json_are_a_400() {
        assert_eq!(parse_options(b""), Ok(None));
        assert_eq!(parse_options(b" \r\n"), Ok(None));
        assert!(parse_options(b"{nope").is_err());
        let answer = envelope(&me(), None, Some((400, "bad")));
        let value: Value = serde_json::from_str(&answer).expect("json");
        assert_eq!(value["error"], json!({"code": 400, "description": "bad"}));
        assert_eq!(value["server"]["id"], "NID");
        assert!(answer.starts_with("{\"server\":"), "{answer}");
    }
}
