//! `/subsz` (alias `/subscriptionsz`): subscription index statistics summed
//! over shards and, with `subs=1`, the subscriptions themselves.

use serde::Serialize;

use super::format::{self, GoFloat};
use super::http::Query;
use super::params;
use super::snapshot::{IndexStats, MonitorSnapshot, SubscriptionSnapshot};
use crate::subject::{is_valid_publish_subject, pattern_matches};

/// One subscription as nats-server lists it: `/subsz` includes the
/// account, `/connz?subs=detail` does not; `qgroup` and `max` are omitted
/// when unset.
#[derive(Serialize)]
pub struct SubDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<&'a str>,
    sid: &'a str,
    msgs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<u64>,
    cid: u64,
}

impl<'a> SubDetail<'a> {
    pub fn of(sub: &'a SubscriptionSnapshot, account: Option<&'a str>) -> SubDetail<'a> {
        SubDetail {
            account,
            subject: &sub.subject,
            qgroup: sub.queue.as_deref().filter(|queue| !queue.is_empty()),
            sid: &sub.sid,
            msgs: sub.msgs,
            max: sub.max.filter(|&max| max > 0),
            cid: sub.cid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubszOptions {
    pub subs: bool,
    pub offset: usize,
    pub limit: usize,
    /// A literal subject: list only subscriptions that would receive it.
    pub test: Option<String>,
}

impl SubszOptions {
    /// Decodes in nats-server's order: subs, offset, limit, test.
    pub fn parse(query: &Query) -> Result<SubszOptions, String> {
        let subs = params::boolean(query, "subs")?;
        let (offset, limit) = params::paging(query)?;
        let test = match query.get("test") {
            None => None,
            Some(subject) if is_valid_publish_subject(subject.as_bytes()) => {
                Some(subject.to_string())
            }
            Some(subject) => {
                return Err(format!(
                    "invalid test subject, must be valid publish subject: {subject}"
                ))
            }
        };
        Ok(SubszOptions {
            subs,
            offset,
            limit,
            test,
        })
    }
}

/// nats-server's `SublistStats`, summed over shards (`/subsz`, and
/// `/accountz?acc=` for one account).
#[derive(Serialize)]
pub struct Stats {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: GoFloat,
    /// The index keeps no fan-out figures: 0 keeps the keys numeric.
    max_fanout: u64,
    avg_fanout: GoFloat,
}

fn stats(snapshot: &MonitorSnapshot) -> Stats {
    sum_stats(snapshot.shards.iter().map(|shard| &shard.index))
}

pub fn sum_stats<'a>(indexes: impl Iterator<Item = &'a IndexStats>) -> Stats {
    let mut stats = Stats {
        num_subscriptions: 0,
        num_cache: 0,
        num_inserts: 0,
        num_removes: 0,
        num_matches: 0,
        cache_hit_rate: GoFloat(0.0),
        max_fanout: 0,
        avg_fanout: GoFloat(0.0),
    };
    let mut cache_hits = 0u64;
    for index in indexes {
        stats.num_subscriptions += index.num_subscriptions;
        stats.num_cache += index.num_cache;
        stats.num_inserts += index.num_inserts;
        stats.num_removes += index.num_removes;
        stats.num_matches += index.num_matches;
        cache_hits += index.cache_hits;
    }
    if stats.num_matches > 0 {
        stats.cache_hit_rate = GoFloat(cache_hits as f64 / stats.num_matches as f64);
    }
    stats
}

#[derive(Serialize)]
struct Subsz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(flatten)]
    stats: Stats,
    total: usize,
    offset: usize,
    limit: usize,
    subscriptions_list: Vec<SubDetail<'a>>,
}

pub fn render(snapshot: &MonitorSnapshot, options: &SubszOptions) -> String {
    let stats = stats(snapshot);
    let mut matching: Vec<(&SubscriptionSnapshot, &str)> = Vec::new();
    if options.subs {
        for connection in snapshot.shards.iter().flat_map(|s| s.connections.iter()) {
            for sub in &connection.subscription_list {
                let wanted = options
                    .test
                    .as_deref()
                    .is_none_or(|test| pattern_matches(sub.subject.as_bytes(), test.as_bytes()));
                if wanted {
                    matching.push((sub, connection.account.as_str()));
                }
            }
        }
    }
    let page = params::page_bounds(matching.len(), options.offset, options.limit);
    let page = &matching[page];
    // nats-server prints only the statistics when the list is empty (no
    // `subs=1`, nothing matched `test`, or an offset past the end).
    if page.is_empty() {
        return super::to_json(&stats);
    }
    let subsz = Subsz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        stats,
        // nats-server 2.9 reports the page's length here, not the count
        // before paging; kept for byte compatibility.
        total: page.len(),
        offset: options.offset,
        limit: options.limit,
        subscriptions_list: page
            .iter()
            .map(|&(sub, account)| SubDetail::of(sub, Some(account)))
            .collect(),
    };
    super::to_json(&subsz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    fn options(raw: &str) -> Result<SubszOptions, String> {
        SubszOptions::parse(&Query::parse(raw))
    }

    fn body(raw: &str) -> serde_json::Value {
        serde_json::from_str(&render(&sample_snapshot(), &options(raw).unwrap())).unwrap()
    }

    #[test]
    fn option_errors_match_nats_server() {
        assert_eq!(
            options("test=foo.*"),
            Err("invalid test subject, must be valid publish subject: foo.*".into())
        );
        assert_eq!(
            options("test=a..b"),
            Err("invalid test subject, must be valid publish subject: a..b".into())
        );
        assert!(options("subs=detail").unwrap_err().contains("'subs'"));
        assert!(options("test=a..b&limit=x&offset=x")
            .unwrap_err()
            .contains("'offset'"));
    }

    #[test]
    fn stats_only_without_list() {
        let value = body("");
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), 8);
        assert_eq!(value["num_subscriptions"], 4);
        assert_eq!(value["num_matches"], 8);
        assert_eq!(value["cache_hit_rate"], 0.25);
        assert_eq!(value["max_fanout"], 0);
        assert!(value["avg_fanout"].is_number());
        // Nothing matches: statistics only, as nats-server.
        assert!(body("subs=1&test=nothing.here").get("server_id").is_none());
    }

    #[test]
    fn list_filter_and_paging() {
        let value = body("subs=1");
        assert_eq!(value["total"], 4);
        assert_eq!(value["limit"], 1024);
        assert_eq!(value["subscriptions_list"][0]["account"], "$G");
        assert_eq!(value["subscriptions_list"][0]["subject"], "foo");
        let value = body("subs=1&test=baz.x");
        let list = value["subscriptions_list"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["subject"], "baz.*");
        let value = body("subs=1&offset=1&limit=2");
        assert_eq!(value["total"], 2);
        assert_eq!(value["offset"], 1);
        assert_eq!(value["subscriptions_list"][0]["subject"], "bar");
    }

    #[test]
    fn key_order() {
        let text = render(&sample_snapshot(), &options("subs=1").unwrap());
        let order = [
            "server_id",
            "now",
            "num_subscriptions",
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "cache_hit_rate",
            "max_fanout",
            "avg_fanout",
            "total",
            "offset",
            "limit",
            "subscriptions_list",
        ];
        let mut last = 0;
        for key in order {
            let at = text.find(&format!("\"{key}\":")).unwrap();
            assert!(at >= last, "{key} out of order");
            last = at;
        }
    }
}
