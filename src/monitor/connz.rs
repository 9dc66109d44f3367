//! `/connz`: open and recently closed client connections with nats-server's parameters
//! (sort, subs, offset, limit, cid, state, auth), its 400 texts, and its
//! ConnInfo keys in order.

use std::cmp::Ordering;

use serde::Serialize;

use super::format;
use super::http::Query;
use super::params;
use super::snapshot::{ConnectionSnapshot, MonitorSnapshot, SnapshotRequest};
use super::subsz::SubDetail;
use percore_core::account::GLOBAL_ACCOUNT;

/// `sort=` values. `Start` orders like `Cid` (ids grow with start time),
/// as nats-server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
}

impl SortBy {
    fn parse(value: &str) -> Option<SortBy> {
        Some(match value {
            "cid" => SortBy::Cid,
            "start" => SortBy::Start,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::MsgsTo,
            "msgs_from" => SortBy::MsgsFrom,
            "bytes_to" => SortBy::BytesTo,
            "bytes_from" => SortBy::BytesFrom,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "stop" => SortBy::Stop,
            "reason" => SortBy::Reason,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsMode {
    None,
    /// `subs=1`: subjects only.
    List,
    /// `subs=detail`: one object per subscription.
    Detail,
}

impl SubsMode {
    /// `subs=detail`, else a boolean (nats-server's decodeSubs, shared by
    /// `/connz` and `/routez`).
    pub fn parse(query: &Query) -> Result<SubsMode, String> {
        Ok(if query.get("subs") == Some("detail") {
            SubsMode::Detail
        } else if params::boolean(query, "subs")? {
            SubsMode::List
        } else {
            SubsMode::None
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Closed,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnzOptions {
    pub sort: SortBy,
    pub subs: SubsMode,
    pub offset: usize,
    pub limit: usize,
    pub cid: Option<u64>,
    pub state: State,
    /// `auth=1`: show each connection's authorized user and account.
    pub auth: bool,
    /// `user=`: only connections authenticated as this user.
    pub user: Option<String>,
    /// `acc=`: only connections of this account (every connection is in
    /// `$G` until accounts exist).
    pub account: Option<String>,
}

impl ConnzOptions {
    /// Decodes the query in nats-server's order (auth, subs, offset, limit,
    /// cid, state, sort), so the first bad parameter reported is the same.
    pub fn parse(query: &Query) -> Result<ConnzOptions, String> {
        let auth = params::boolean(query, "auth")?;
        let subs = SubsMode::parse(query)?;
        let (offset, mut limit) = params::paging(query)?;
        let cid = params::uint(query, "cid")?;
        if cid.is_some() {
            // One connection at most.
            limit = 1;
        }
        let state = match query.get("state") {
            None => State::Open,
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "open" => State::Open,
                "closed" => State::Closed,
                "any" | "all" => State::Any,
                _ => return Err(format!("Error decoding state for {value}")),
            },
        };
        let sort = match query.get("sort") {
            None => SortBy::Cid,
            Some(value) => {
                SortBy::parse(value).ok_or_else(|| format!("invalid sorting option: {value}"))?
            }
        };
        if state != State::Closed {
            match sort {
                SortBy::Stop => return Err("sort by stop only valid on closed connections".into()),
                SortBy::Reason => {
                    return Err("sort by reason only valid on closed connections".into())
                }
                _ => {}
            }
        }
        Ok(ConnzOptions {
            sort,
            subs,
            offset,
            limit,
            cid,
            state,
            auth,
            user: query
                .get("user")
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            account: query
                .get("acc")
                .filter(|a| !a.is_empty())
                .map(str::to_string),
        })
    }

    /// What the shards must include for this request.
    pub fn snapshot_request(&self) -> SnapshotRequest {
        SnapshotRequest {
            with_connections: true,
            with_subscriptions: self.subs != SubsMode::None,
            with_closed: self.state != State::Open,
            ..SnapshotRequest::default()
        }
    }
}

#[derive(Serialize)]
struct ConnInfo<'a> {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    connection_type: &'static str,
    ip: &'a str,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: u64,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    lang: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_peer_certs: Vec<PeerCertInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    jwt: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    issuer_key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name_tag: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail<'a>>,
}

/// One certificate of a client's chain (`tls_peer_certs`).
#[derive(Serialize)]
struct PeerCertInfo<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    subject: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    spki_sha256: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cert_sha256: &'a str,
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
    connections: Vec<ConnInfo<'a>>,
}

/// Orders two connections for `sort`: ascending for cid/start/uptime
/// (uptime: shortest first), descending ("largest first") for the counters
/// and for last activity and idle time. Ties fall back to cid so the order
/// is deterministic.
fn compare(sort: SortBy, a: &ConnectionSnapshot, b: &ConnectionSnapshot) -> Ordering {
    let primary = match sort {
        SortBy::Cid | SortBy::Start => Ordering::Equal,
        // Most recently closed first.
        SortBy::Stop => b.stop.cmp(&a.stop),
        SortBy::Reason => a.reason.cmp(&b.reason),
        SortBy::Subs => b.subscriptions.cmp(&a.subscriptions),
        SortBy::Pending => b.pending_bytes.cmp(&a.pending_bytes),
        SortBy::MsgsTo => b.out_msgs.cmp(&a.out_msgs),
        SortBy::MsgsFrom => b.in_msgs.cmp(&a.in_msgs),
        SortBy::BytesTo => b.out_bytes.cmp(&a.out_bytes),
        SortBy::BytesFrom => b.in_bytes.cmp(&a.in_bytes),
        // Most recent activity first.
        SortBy::Last => b.last_activity.cmp(&a.last_activity),
        // Longest idle first: the oldest last activity.
        SortBy::Idle => a.last_activity.cmp(&b.last_activity),
        // Shortest uptime first: the latest start.
        SortBy::Uptime => b.start.cmp(&a.start),
    };
    primary.then(a.cid.cmp(&b.cid))
}

/// The connections `options` select, sorted and paged, with the count
/// before paging (`total`).
pub fn select<'a>(
    snapshot: &'a MonitorSnapshot,
    options: &ConnzOptions,
) -> (Vec<&'a ConnectionSnapshot>, usize) {
    let open = snapshot
        .shards
        .iter()
        .flat_map(|shard| shard.connections.iter());
    // Each shard keeps its share of the last 10,000 closed connections.
    let closed = snapshot.shards.iter().flat_map(|shard| shard.closed.iter());
    let mut chosen: Vec<&ConnectionSnapshot> = match options.state {
        State::Open => open.collect(),
        State::Closed => closed.collect(),
        State::Any => open.chain(closed).collect(),
    };
    if let Some(account) = &options.account {
        chosen.retain(|connection| &connection.account == account);
    }
    // nats-server counts `total` before the user filter (only the
    // account narrows it), so `user=` pages through a larger total.
    let total = chosen.len();
    if let Some(user) = &options.user {
        chosen.retain(|connection| connection.authorized_user.as_ref() == Some(user));
    }
    if let Some(cid) = options.cid {
        // nats-server reports the total of open connections even here.
        chosen.retain(|connection| connection.cid == cid);
    }
    chosen.sort_by(|a, b| compare(options.sort, a, b));
    let page = params::page_bounds(chosen.len(), options.offset, options.limit);
    (chosen[page].to_vec(), total)
}

fn conn_info<'a>(
    connection: &'a ConnectionSnapshot,
    now: std::time::SystemTime,
    subs: SubsMode,
    auth: bool,
) -> ConnInfo<'a> {
    let jwt = connection.jwt.as_deref().filter(|_| auth);
    let subscriptions_list = match subs {
        SubsMode::List => connection
            .subscription_list
            .iter()
            .map(|sub| sub.subject.as_str())
            .collect(),
        _ => Vec::new(),
    };
    let subscriptions_list_detail = match subs {
        SubsMode::Detail => connection
            .subscription_list
            .iter()
            // nats-server names the account only for closed connections.
            .map(|sub| SubDetail::of(sub, connection.stop.map(|_| connection.account.as_str())))
            .collect(),
        _ => Vec::new(),
    };
    // A closed connection's uptime and idle time end when it closed.
    let until = connection.stop.unwrap_or(now);
    ConnInfo {
        cid: connection.cid,
        kind: "Client",
        connection_type: "nats",
        ip: &connection.ip,
        port: connection.port,
        start: format::rfc3339_nano(connection.start),
        last_activity: format::rfc3339_nano(connection.last_activity),
        stop: connection.stop.map(format::rfc3339_nano),
        reason: connection.reason.as_deref(),
        // Before the first PONG nats-server prints "0s".
        rtt: format::go_rtt(connection.rtt.unwrap_or_default()),
        uptime: format::uptime(format::since(until, connection.start)),
        idle: format::uptime(format::since(until, connection.last_activity)),
        pending_bytes: connection.pending_bytes,
        in_msgs: connection.in_msgs,
        out_msgs: connection.out_msgs,
        in_bytes: connection.in_bytes,
        out_bytes: connection.out_bytes,
        subscriptions: connection.subscriptions,
        name: &connection.name,
        lang: &connection.lang,
        version: &connection.version,
        tls_version: connection.tls_version,
        tls_cipher_suite: connection.tls_cipher_suite,
        // As nats-server: only with auth=1.
        tls_peer_certs: if auth {
            connection
                .tls_peer_certs
                .iter()
                .map(|c| PeerCertInfo {
                    subject: &c.subject,
                    spki_sha256: &c.spki_sha256,
                    cert_sha256: &c.cert_sha256,
                })
                .collect()
        } else {
            Vec::new()
        },
        authorized_user: connection.authorized_user.as_deref().filter(|_| auth),
        // nats-server names the account only when it is not the global one.
        account: Some(connection.account.as_str())
            .filter(|account| auth && *account != GLOBAL_ACCOUNT),
        jwt: jwt.map_or("", |j| j.jwt.as_str()),
        issuer_key: jwt.map_or("", |j| j.issuer_key.as_str()),
        name_tag: jwt.map_or("", |j| j.name_tag.as_str()),
        tags: jwt.map_or(&[], |j| j.tags.as_slice()),
        subscriptions_list,
        subscriptions_list_detail,
    }
}

pub fn render(snapshot: &MonitorSnapshot, options: &ConnzOptions) -> String {
    let (page, total) = select(snapshot, options);
    let connections: Vec<ConnInfo> = page
        .into_iter()
        .map(|connection| conn_info(connection, snapshot.now, options.subs, options.auth))
        .collect();
    let connz = Connz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        num_connections: connections.len(),
        total,
        offset: options.offset,
        limit: options.limit,
        connections,
    };
    super::to_json(&connz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    fn options(raw: &str) -> Result<ConnzOptions, String> {
        ConnzOptions::parse(&Query::parse(raw))
    }

    fn cids(raw: &str) -> (Vec<u64>, usize) {
        let snapshot = sample_snapshot();
        let (page, total) = select(&snapshot, &options(raw).unwrap());
        (page.iter().map(|c| c.cid).collect(), total)
    }

    #[test]
    fn option_errors_match_nats_server() {
        assert_eq!(
            options("sort=bogus"),
            Err("invalid sorting option: bogus".into())
        );
        assert_eq!(
            options("sort=CID"),
            Err("invalid sorting option: CID".into())
        );
        assert_eq!(
            options("sort=stop"),
            Err("sort by stop only valid on closed connections".into())
        );
        assert_eq!(
            options("sort=reason&state=any"),
            Err("sort by reason only valid on closed connections".into())
        );
        assert!(options("sort=stop&state=closed").is_ok());
        assert_eq!(
            options("state=bogus"),
            Err("Error decoding state for bogus".into())
        );
        assert_eq!(options("state=ALL").unwrap().state, State::Any);
        assert_eq!(
            options("cid=x"),
            Err(
                "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"x\": invalid syntax"
                    .into()
            )
        );
        // The first bad parameter in nats-server's decoding order wins.
        assert!(
            options("sort=bogus&state=x&cid=x&limit=x&offset=x&subs=x&auth=x")
                .unwrap_err()
                .contains("'auth'")
        );
        assert!(options("sort=bogus&state=x")
            .unwrap_err()
            .starts_with("Error decoding state"));
    }

    #[test]
    fn option_values() {
        let defaults = options("").unwrap();
        assert_eq!(defaults.sort, SortBy::Cid);
        assert_eq!(defaults.limit, 1024);
        assert_eq!(defaults.subs, SubsMode::None);
        assert_eq!(
            defaults.snapshot_request(),
            SnapshotRequest {
                with_connections: true,
                ..SnapshotRequest::default()
            }
        );
        let closed = options("state=closed&subs=1").unwrap().snapshot_request();
        assert!(closed.with_closed && closed.with_subscriptions);
        assert_eq!(options("subs=detail").unwrap().subs, SubsMode::Detail);
        assert_eq!(options("subs=1").unwrap().subs, SubsMode::List);
        assert_eq!(options("cid=4&limit=9").unwrap().limit, 1);
    }

    #[test]
    fn sorting_and_paging() {
        // sample: cid 1 (out_msgs 5, in 9, subs 2), cid 2 (out 9, in 1,
        // subs 0), cid 3 (out 5, in 3, subs 2); started 1, 3, 2 seconds in.
        assert_eq!(cids(""), (vec![1, 2, 3], 3));
        assert_eq!(cids("sort=msgs_to").0, vec![2, 1, 3]);
        assert_eq!(cids("sort=msgs_from").0, vec![1, 3, 2]);
        assert_eq!(cids("sort=subs").0, vec![1, 3, 2]);
        assert_eq!(cids("sort=uptime").0, vec![2, 3, 1]);
        assert_eq!(cids("sort=start").0, vec![1, 2, 3]);
        assert_eq!(cids("sort=last").0, vec![2, 3, 1]);
        assert_eq!(cids("sort=idle").0, vec![1, 3, 2]);
        assert_eq!(cids("offset=1&limit=1"), (vec![2], 3));
        assert_eq!(cids("offset=7"), (vec![], 3));
        assert_eq!(cids("cid=2"), (vec![2], 3));
        assert_eq!(cids("cid=2&offset=1"), (vec![], 3));
        assert_eq!(cids("cid=99"), (vec![], 3));
        // cid 4 closed.
        assert_eq!(cids("state=closed&sort=stop"), (vec![4], 1));
        assert_eq!(cids("state=closed&sort=reason"), (vec![4], 1));
        assert_eq!(cids("state=any"), (vec![1, 2, 3, 4], 4));
        assert_eq!(cids("state=any&cid=4"), (vec![4], 4));
    }

    #[test]
    fn conn_info_shape() {
        let snapshot = sample_snapshot();
        let body = render(&snapshot, &options("subs=detail&limit=1").unwrap());
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["num_connections"], 1);
        assert_eq!(value["total"], 3);
        assert_eq!(value["limit"], 1);
        let first = &value["connections"][0];
        assert_eq!(first["kind"], "Client");
        assert_eq!(first["type"], "nats");
        assert_eq!(first["rtt"], "2.576779ms");
        assert_eq!(first["name"], "alpha");
        assert_eq!(first["subscriptions_list_detail"][1]["qgroup"], "grp");
        assert_eq!(first["subscriptions_list_detail"][1]["max"], 5);
        assert!(first["subscriptions_list_detail"][0].get("max").is_none());
        assert!(first["subscriptions_list_detail"][0]
            .get("account")
            .is_none());
        let order = [
            "cid",
            "kind",
            "type",
            "ip",
            "port",
            "start",
            "last_activity",
            "rtt",
            "uptime",
            "idle",
            "pending_bytes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "name",
            "lang",
            "version",
            "subscriptions_list_detail",
        ];
        let mut last = 0;
        for key in order {
            let at = body.find(&format!("\"{key}\":")).unwrap();
            assert!(at >= last, "{key} out of order");
            last = at;
        }

        let body = render(&snapshot, &options("subs=1").unwrap());
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["connections"][0]["subscriptions_list"][0], "foo");
        // No rtt yet, no CONNECT name, no subscriptions: "0s", keys omitted.
        let second = &value["connections"][1];
        assert_eq!(second["rtt"], "0s");
        assert!(second.get("name").is_none());
        assert!(second.get("subscriptions_list").is_none());

        // A closed connection: stop and reason after last_activity, uptime
        // and idle end at the close, its subscriptions kept (with account).
        let body = render(&snapshot, &options("state=closed&subs=detail").unwrap());
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let gone = &value["connections"][0];
        assert_eq!(gone["cid"], 4);
        assert_eq!(gone["reason"], "Slow Consumer (Pending Bytes)");
        assert_eq!(gone["uptime"], "40s");
        assert_eq!(gone["idle"], "5s");
        assert_eq!(gone["subscriptions_list_detail"][0]["account"], "$G");
        assert_eq!(gone["subscriptions_list_detail"][0]["subject"], "gone.>");
        let last_activity = body.find("\"last_activity\":").unwrap();
        let stop = body.find("\"stop\":").unwrap();
        let reason = body.find("\"reason\":").unwrap();
        let rtt = body.find("\"rtt\":").unwrap();
        assert!(last_activity < stop && stop < reason && reason < rtt);
        // Open connections have neither key.
        let open = render(&snapshot, &options("").unwrap());
        assert!(!open.contains("\"stop\"") && !open.contains("\"reason\""));
    }
}
