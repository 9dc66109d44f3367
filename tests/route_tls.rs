//! Route TLS (`cluster { tls {} }`) against the real binary: two percore
//! nodes with mutual TLS from one CA pass messages both ways; a node whose
//! certificate comes from another CA is refused by both sides; and a
//! mixed cluster with the reference nats-server 2.9 using the same files
//! (skipped when `/usr/sbin/nats-server` is absent).
//!
//! Certificates are made by each test with rcgen and written to a
//! directory of its own. No sleeps as synchronisation: interest is known
//! with a probe subject published until it comes back, each wait bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use support::cluster::{
    free_port, http_get, nats_server_installed, route_port, spawn_nats_server, wait_interest,
    ClusterClient, NatsServer, NATS_SERVER, WAIT,
};
use support::Broker;

/// A CA and the route certificate it signed, as PEM files.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        Pki::with_names(name, &["127.0.0.1", "localhost"])
    }

    /// A CA and a route certificate for these SANs only.
    fn with_names(name: &str, sans: &[&str]) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("percore-route-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("percore route CA {name}"));
        let ca_key = KeyPair::generate().expect("ca key");
        let ca = params.self_signed(&ca_key).expect("ca cert");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca");
        let issuer = Issuer::new(params, ca_key);
        // One certificate for both ends of a route: server and client use.
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("route params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("sign");
        std::fs::write(dir.join("route.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.join("route-key.pem"), key.serialize_pem()).expect("write key");
        Pki { dir }
    }

    /// The `tls {}` block of the `cluster` block, with `extra` keys (the
    /// default: `verify: true`).
    fn tls_block(&self, extra: &str) -> String {
        format!(
            "tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    {extra}\n    timeout: 2\n  }}",
            self.dir.join("route.pem").display(),
            self.dir.join("route-key.pem").display(),
            self.dir.join("ca.pem").display()
        )
    }

    /// A whole cluster block: listen on `port` (-1: any), dial `routes`.
    fn cluster(&self, port: i64, routes: &[u16]) -> String {
        self.cluster_with(port, routes, "verify: true")
    }

    fn cluster_with(&self, port: i64, routes: &[u16], extra_tls: &str) -> String {
        self.cluster_at("127.0.0.1", port, routes, extra_tls)
    }

    /// Routes dialled as `route_host:port`.
    fn cluster_at(&self, route_host: &str, port: i64, routes: &[u16], extra_tls: &str) -> String {
        let routes: Vec<String> = routes
            .iter()
            .map(|p| format!("\"nats-route://{route_host}:{p}\""))
            .collect();
        format!(
            "cluster {{\n  name: demo\n  host: 127.0.0.1\n  port: {port}\n  routes: [{}]\n  {}\n}}\n",
            routes.join(", "),
            self.tls_block(extra_tls)
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A percore node with route TLS (`verify`); its route port.
fn percore_node(name: &str, pki: &Pki, routes: &[u16], extra: &[&str]) -> (Broker, u16) {
    percore_node_with(name, &pki.cluster(-1, routes), extra)
}

fn percore_node_with(name: &str, config: &str, extra: &[&str]) -> (Broker, u16) {
    let mut args = vec!["-n", name];
    args.extend_from_slice(extra);
    let broker = Broker::start_with(&args, Some(config));
    let port = route_port(&broker);
    (broker, port)
}

/// `subscriber` gets `payload` on `subject` from `publisher`, over the
/// route(s) between them.
fn passes(
    subscriber: &mut ClusterClient,
    publisher: &mut ClusterClient,
    subject: &str,
    payload: &str,
) {
    // The subject as the sid: unique on each connection.
    subscriber.send(format!("SUB {subject} {subject}\r\n").as_bytes());
    wait_interest(subscriber, publisher, &format!("probe.{subject}"));
    publisher.send(format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()).as_bytes());
    publisher.ping();
    let (got, _, body) = subscriber.msg(WAIT).expect("message over the route");
    assert_eq!(
        (got.as_str(), body.as_slice()),
        (subject, payload.as_bytes())
    );
}

#[test]
fn two_percore_nodes_with_route_tls_pass_messages_both_ways() {
    let pki = Pki::new("two");
    let (a, a_route) = percore_node("a", &pki, &[], &["-m", "-1"]);
    let (b, _) = percore_node("b", &pki, &[a_route], &[]);
    let mut on_a = ClusterClient::connect(a.addr);
    let mut on_b = ClusterClient::connect(b.addr);
    passes(&mut on_a, &mut on_b, "b.to.a", "hello a");
    passes(&mut on_b, &mut on_a, "a.to.b", "hello b");
    let monitor = a.monitor.expect("monitor address");
    let routez = http_get(monitor, "/routez");
    assert_eq!(routez["num_routes"], 1, "{routez}");
    // A plaintext peer on the route port: no INFO in the clear (the
    // handshake comes first), and its CONNECT closes the connection.
    let mut plain = TcpStream::connect(("127.0.0.1", a_route)).expect("route port");
    plain.set_read_timeout(Some(WAIT)).expect("timeout");
    plain
        .write_all(b"CONNECT {\"name\":\"x\",\"cluster\":\"demo\"}\r\n")
        .expect("send");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("INFO"),
        "plaintext INFO on a TLS route port: {got:?}"
    );
    let varz = http_get(monitor, "/varz");
    assert_eq!(varz["cluster"]["tls_required"], true, "{varz}");
    assert_eq!(varz["cluster"]["tls_verify"], true, "{varz}");
    assert_eq!(varz["cluster"]["tls_timeout"], 2.0, "{varz}");
}

#[test]
fn a_node_with_a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("good");
    let other = Pki::new("other");
    let (a, a_route) = percore_node("a", &pki, &[], &["-m", "-1"]);
    let (c, _) = percore_node("c", &other, &[a_route], &[]);
    // Both ends fail the handshake: C does not trust A's certificate (and A
    // would not trust C's).
    let line = c
        .wait_log("TLS route handshake error", WAIT)
        .expect("the dialling side refuses the peer's certificate");
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    a.wait_log("TLS route handshake error", WAIT)
        .expect("the accepting side sees the failed handshake");
    let routez = http_get(a.monitor.expect("monitor"), "/routez");
    assert_eq!(routez["num_routes"], 0, "{routez}");
    // No message crosses.
    let mut on_a = ClusterClient::connect(a.addr);
    let mut on_c = ClusterClient::connect(c.addr);
    on_a.send(b"SUB x 1\r\n");
    on_a.ping();
    on_c.send(b"PUB x 2\r\nhi\r\n");
    on_c.ping();
    assert!(on_a.msg(Duration::from_millis(300)).is_none());
}

#[test]
fn insecure_dials_a_peer_from_another_ca_that_does_not_verify() {
    let pki = Pki::new("plainca");
    let other = Pki::new("insecure");
    // A asks for no client certificate; C does not check A's certificate.
    let (a, a_route) = percore_node_with("a", &pki.cluster_with(-1, &[], "verify: false"), &[]);
    let config = other.cluster_with(-1, &[a_route], "insecure: true");
    let (c, _) = percore_node_with("c", &config, &[]);
    let mut on_a = ClusterClient::connect(a.addr);
    let mut on_c = ClusterClient::connect(c.addr);
    passes(&mut on_a, &mut on_c, "c.to.a", "insecure");
    passes(&mut on_c, &mut on_a, "a.to.c", "both ways");
    drop(c);
    // The warning nats-server logs for it, at start.
    let c = Broker::start_with(&["-n", "c2"], Some(&config));
    c.wait_log("DO NOT USE IN PRODUCTION", WAIT)
        .expect("the insecure warning");
}

#[test]
fn many_large_messages_cross_a_tls_route_in_order() {
    let pki = Pki::new("bulk");
    let (a, a_route) = percore_node("a", &pki, &[], &[]);
    let (b, _) = percore_node("b", &pki, &[a_route], &[]);
    let mut on_a = ClusterClient::connect(a.addr);
    let mut on_b = ClusterClient::connect(b.addr);
    on_a.send(b"SUB bulk bulk\r\n");
    wait_interest(&mut on_a, &mut on_b, "probe.bulk");
    const COUNT: usize = 2000;
    let body = "x".repeat(16 * 1024);
    let mut batch = Vec::new();
    for i in 0..COUNT {
        let payload = format!("{i:06}{body}");
        batch.extend_from_slice(format!("PUB bulk {}\r\n{payload}\r\n", payload.len()).as_bytes());
        if batch.len() > 1 << 20 {
            on_b.send(&batch);
            batch.clear();
        }
    }
    on_b.send(&batch);
    on_b.ping();
    for i in 0..COUNT {
        let (_, _, payload) = on_a.msg(WAIT).unwrap_or_else(|| panic!("message {i}"));
        assert_eq!(payload.len(), 6 + body.len());
        assert_eq!(&payload[..6], format!("{i:06}").as_bytes(), "order");
    }
}

#[test]
fn routes_gossiped_by_address_are_checked_against_the_configured_route_name() {
    // Certificates for "localhost" only: B and C dial A by that name; A's
    // gossip then gives each the other's IP address, which is checked as
    // "localhost" (nats-server's tlsName), so B and C route directly too.
    let pki = Pki::with_names("names", &["localhost"]);
    let (a, a_route) = percore_node("a", &pki, &[], &[]);
    let config = pki.cluster_at("localhost", -1, &[a_route], "verify: true");
    let (b, _) = percore_node_with("b", &config, &["-m", "-1"]);
    let (c, _) = percore_node_with("c", &config, &[]);
    let monitor = b.monitor.expect("monitor");
    let deadline = Instant::now() + WAIT;
    loop {
        let routez = http_get(monitor, "/routez");
        if routez["num_routes"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "B never routed to C: {routez}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut on_b = ClusterClient::connect(b.addr);
    let mut on_c = ClusterClient::connect(c.addr);
    passes(&mut on_b, &mut on_c, "c.to.b", "by name");
    drop(a);
}

fn nats_server(name: &str, pki: &Pki, cluster_port: u16, routes: &[u16]) -> Option<NatsServer> {
    if !nats_server_installed() {
        return None;
    }
    let config = pki.dir.join(format!("{name}.conf"));
    std::fs::write(&config, pki.cluster(i64::from(cluster_port), routes)).expect("config");
    let mut command = Command::new(NATS_SERVER);
    command
        .args(["-a", "127.0.0.1", "-p", "-1", "-n", name])
        .args(["-c", &config.display().to_string()]);
    Some(spawn_nats_server(command, Some(config)))
}

#[test]
fn mixed_cluster_with_nats_server_over_route_tls() {
    let pki = Pki::new("mixed");
    // A (percore) accepts N's route (we are the TLS server); B (percore)
    // dials N (we are the TLS client); gossip then links A and B too.
    let (a, a_route) = percore_node("a", &pki, &[], &[]);
    let n_route = free_port();
    let Some(n) = nats_server("n", &pki, n_route, &[a_route]) else {
        return;
    };
    let (b, _) = percore_node("b", &pki, &[n_route], &[]);
    let mut on_a = ClusterClient::connect(a.addr);
    let mut on_n = ClusterClient::connect(n.addr);
    let mut on_b = ClusterClient::connect(b.addr);
    passes(&mut on_a, &mut on_n, "n.to.a", "from n");
    passes(&mut on_n, &mut on_a, "a.to.n", "from a");
    passes(&mut on_n, &mut on_b, "b.to.n", "from b");
    passes(&mut on_b, &mut on_n, "n.to.b", "to b");
    passes(&mut on_b, &mut on_a, "a.to.b", "a to b");
}
