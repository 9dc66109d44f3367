//! `connect_error_reports` / `reconnect_error_reports`: which failed route
//! dials are logged as errors (the first, then every Nth; the others at
//! debug level), for a route never reached yet and for one that was lost,
//! as nats-server 2.9.10 counts them. Dials are a second apart (nats-server's
//! `DEFAULT_ROUTE_CONNECT`), so the counts are kept small.

mod support;

use support::cluster::{free_port, WAIT};
use support::Broker;

/// The level of each "Error trying to connect to route (attempt N)" line
/// that `broker` logs, up to and including attempt `last`.
fn attempts_until(broker: &Broker, last: u32) -> Vec<(u32, &'static str)> {
    let needle = format!("Error trying to connect to route (attempt {last})");
    let lines = broker
        .log_until(&needle, WAIT)
        .unwrap_or_else(|| panic!("no {needle}"));
    lines
        .iter()
        .filter(|line| line.contains("Error trying to connect to route (attempt "))
        .inspect(|line| {
            // The failure in Go's words, as nats-server logs it.
            assert!(
                line.contains("): dial tcp 127.0.0.1:")
                    && line.ends_with(": connect: connection refused"),
                "{line}"
            );
        })
        .filter_map(|line| {
            let attempt = line
                .split("Error trying to connect to route (attempt ")
                .nth(1)?
                .split(')')
                .next()?
                .parse()
                .ok()?;
            let level = if line.contains("[ERR] ") {
                "ERR"
            } else if line.contains("[DBG] ") {
                "DBG"
            } else {
                "other"
            };
            Some((attempt, level))
        })
        .collect()
}

#[test]
fn failed_dials_are_reported_first_and_every_nth() {
    let port = free_port();
    let route = format!("nats-route://127.0.0.1:{port}");
    let a = Broker::start_with(
        &[
            "-D",
            "--cluster",
            "nats://127.0.0.1:-1",
            "--cluster_name",
            "rep",
            "--routes",
            &route,
        ],
        Some("connect_error_reports: 2\nreconnect_error_reports: 3\n"),
    );
    // Never reached yet: connect_error_reports.
    assert_eq!(attempts_until(&a, 3), [(1, "ERR"), (2, "ERR"), (3, "DBG")]);
    // The peer comes up, the route forms, the peer goes away.
    let cluster = format!("nats://127.0.0.1:{port}");
    let b = Broker::start_with(&["--cluster", &cluster, "--cluster_name", "rep"], None);
    a.wait_log("Registering remote route", WAIT)
        .expect("route to the peer");
    drop(b);
    // Lost: reconnect_error_reports.
    assert_eq!(attempts_until(&a, 3), [(1, "ERR"), (2, "DBG"), (3, "ERR")]);
}
