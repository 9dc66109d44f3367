//! `/routez` (with `subs=1` or `subs=detail`): the cluster routes as
//! nats-server 2.9 lists them, keys in its order.

use serde::Serialize;

use super::connz::SubsMode;
use super::format;
use super::snapshot::{MonitorSnapshot, RouteSnapshot};
use super::subsz::SubDetail;

#[derive(Serialize)]
struct Routez<'a> {
    server_id: &'a str,
    now: String,
    num_routes: usize,
    routes: Vec<RouteInfo<'a>>,
}

#[derive(Serialize)]
struct RouteInfo<'a> {
    rid: u64,
    remote_id: &'a str,
    did_solicit: bool,
    is_configured: bool,
    ip: &'a str,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt: Option<String>,
    uptime: String,
    idle: String,
    pending_size: u64,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<&'a str>,
    /// Without `account` (nats-server names none for a route's interest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail<'a>>,
}

fn route_info<'a>(
    route: &'a RouteSnapshot,
    snapshot: &MonitorSnapshot,
    subs: SubsMode,
) -> RouteInfo<'a> {
    let subscriptions_list = match subs {
        SubsMode::List => route.subs.iter().map(|s| s.subject.as_str()).collect(),
        _ => Vec::new(),
    };
    let subscriptions_list_detail = match subs {
        SubsMode::Detail => route.subs.iter().map(|s| SubDetail::of(s, None)).collect(),
        _ => Vec::new(),
    };
    RouteInfo {
        rid: route.rid,
        remote_id: &route.remote_id,
        did_solicit: route.did_solicit,
        is_configured: route.is_configured,
        ip: &route.ip,
        port: route.port,
        start: format::rfc3339_nano(route.start),
        last_activity: format::rfc3339_nano(route.last_activity),
        rtt: route.rtt.map(format::go_rtt),
        uptime: format::uptime(format::since(snapshot.now, route.start)),
        idle: format::uptime(format::since(snapshot.now, route.last_activity)),
        pending_size: route.pending_bytes,
        in_msgs: route.in_msgs,
        out_msgs: route.out_msgs,
        in_bytes: route.in_bytes,
        out_bytes: route.out_bytes,
        subscriptions: route.num_subs,
        subscriptions_list,
        subscriptions_list_detail,
    }
}

pub fn render(snapshot: &MonitorSnapshot, subs: SubsMode) -> String {
    let routes: Vec<RouteInfo<'_>> = snapshot
        .shards
        .iter()
        .flat_map(|s| &s.routes)
        .map(|r| route_info(r, snapshot, subs))
        .collect();
    super::to_json(&Routez {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        num_routes: routes.len(),
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::snapshot::SubscriptionSnapshot;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn shape_without_and_with_routes() {
        let mut snapshot = sample_snapshot();
        let body = render(&snapshot, SubsMode::None);
        assert!(
            body.ends_with("\"num_routes\": 0,\n  \"routes\": []\n}"),
            "{body}"
        );
        snapshot.shards[0].routes.push(RouteSnapshot {
            rid: 1,
            remote_id: "NPEER".into(),
            did_solicit: true,
            is_configured: true,
            ip: "127.0.0.1".into(),
            port: 6222,
            start: snapshot.now,
            last_activity: snapshot.now,
            rtt: None,
            pending_bytes: 0,
            in_msgs: 1,
            out_msgs: 2,
            in_bytes: 3,
            out_bytes: 4,
            num_subs: 1,
            subs: vec![SubscriptionSnapshot {
                subject: "foo".into(),
                queue: Some("grp".into()),
                sid: "$G foo grp".into(),
                msgs: 0,
                max: None,
                cid: 1,
            }],
        });
        let json: serde_json::Value =
            serde_json::from_str(&render(&snapshot, SubsMode::List)).unwrap();
        assert_eq!(json["num_routes"], 1);
        let route = &json["routes"][0];
        assert_eq!(route["remote_id"], "NPEER");
        assert_eq!(route["subscriptions_list"][0], "foo");
        let keys: Vec<&str> = route
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(keys.contains(&"pending_size") && keys.contains(&"idle"));
        assert!(!keys.contains(&"subscriptions_list_detail"));
        // subs=detail: objects as nats-server's, with no account.
        let json: serde_json::Value =
            serde_json::from_str(&render(&snapshot, SubsMode::Detail)).unwrap();
        let route = &json["routes"][0];
        assert!(route.get("subscriptions_list").is_none());
        assert_eq!(
            route["subscriptions_list_detail"],
            serde_json::json!([{"subject": "foo", "qgroup": "grp", "sid": "$G foo grp", "msgs": 0, "cid": 1}])
        );
    }
}
