//! Endpoints for features percore does not have (gateways, leaf nodes) and the HTML index: the shapes nats-server 2.9.10
//! returns when none is configured, so tools that poll them keep working.

use serde::Serialize;

use super::format;
use super::snapshot::MonitorSnapshot;

#[derive(Serialize)]
struct NoGateways {}

#[derive(Serialize)]
struct Gatewayz<'a> {
    server_id: &'a str,
    now: String,
    outbound_gateways: NoGateways,
    inbound_gateways: NoGateways,
}

pub fn gatewayz(snapshot: &MonitorSnapshot) -> String {
    super::to_json(&Gatewayz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        outbound_gateways: NoGateways {},
        inbound_gateways: NoGateways {},
    })
}

#[derive(Serialize)]
struct Leafz<'a> {
    server_id: &'a str,
    now: String,
    leafnodes: u64,
    /// nats-server prints `null` here when there are none.
    leafs: Option<[(); 0]>,
}

pub fn leafz(snapshot: &MonitorSnapshot) -> String {
    super::to_json(&Leafz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        leafnodes: 0,
        leafs: None,
    })
}

/// The `/` page: links to the endpoints, under the base path.
pub fn index_page(base: &str) -> String {
    let mut links = String::new();
    for (path, label) in [
        ("varz", "General"),
        ("connz", "Connections"),
        ("accountz", "Accounts"),
        ("subsz", "Subscriptions"),
        ("routez", "Routes"),
        ("leafz", "LeafNodes"),
        ("gatewayz", "Gateways"),
        ("healthz", "Health Probe"),
    ] {
        links.push_str(&format!("    <a href=\"{base}/{path}\">{label}</a><br/>\n"));
    }
    format!(
        "<html lang=\"en\">\n  <head><title>percore monitoring</title></head>\n  <body>\n    \
         <h1>percore</h1>\n    <p>NATS {} compatible monitoring</p>\n{links}  </body>\n</html>\n",
        crate::info::ADVERTISED_VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn shapes_match_nats_server_without_clustering() {
        let snapshot = sample_snapshot();
        let gatewayz = gatewayz(&snapshot);
        assert!(gatewayz.ends_with("\"outbound_gateways\": {},\n  \"inbound_gateways\": {}\n}"));
        let leafz = leafz(&snapshot);
        assert!(leafz.ends_with("\"leafnodes\": 0,\n  \"leafs\": null\n}"));
        assert!(index_page("/nats").contains("href=\"/nats/varz\""));
    }
}
