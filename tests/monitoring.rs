//! The HTTP monitoring endpoints (`-m`), as a dashboard or a client test
//! suite sees them: nats-server's paths, keys, JSON types and counting rules,
//! with clients on both shards. Every counter check follows a PING/PONG round
//! trip of each client involved, after which the server has applied
//! everything the client sent.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client_on_shard, Broker, RawClient, IO_TIMEOUT};

struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// One GET on a fresh connection (`Connection: close`, so the body ends at EOF).
fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to monitor");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn monitored(extra: &[&str]) -> (Broker, SocketAddr) {
    let mut args = vec!["-m", "-1"];
    args.extend_from_slice(extra);
    let broker = Broker::start_with(&args, None);
    let monitor = broker.monitor.expect("monitor address in the log");
    (broker, monitor)
}

/// A connected client that said CONNECT with `name` and got its PONG.
fn named_client_on_shard(broker: &Broker, shard: usize, name: &str) -> RawClient {
    let mut client = client_on_shard(broker, shard);
    client.send(format!("CONNECT {{\"verbose\":false,\"name\":\"{name}\",\"lang\":\"raw\",\"version\":\"1.0\"}}\r\n").as_bytes());
    client.ping_pong();
    client
}

fn connection(connz: &Value, cid: u64) -> &Value {
    connz["connections"]
        .as_array()
        .expect("connections array")
        .iter()
        .find(|c| c["cid"] == cid)
        .unwrap_or_else(|| panic!("cid {cid} not in {connz}"))
}

#[test]
fn varz_counts_messages_across_shards_like_nats_server() {
    let (broker, monitor) = monitored(&[]);
    let mut subscriber = named_client_on_shard(&broker, 0, "sub");
    let mut publisher = named_client_on_shard(&broker, 1, "pub");
    subscriber.send(b"SUB hello.> 1\r\n");
    subscriber.ping_pong();
    for i in 0..100 {
        publisher.send(format!("PUB hello.{i} 1\r\nA\r\n").as_bytes());
    }
    publisher.ping_pong();
    let delivered = subscriber.ping_pong();
    assert_eq!(
        delivered.windows(4).filter(|w| w == b"MSG ").count(),
        100,
        "subscriber got every message before its PONG"
    );

    let response = get(monitor, "/varz");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type").as_deref(),
        Some("application/json")
    );
    let varz = response.json();
    // nats-server counts messages and payload bytes, not protocol bytes.
    assert_eq!(varz["in_msgs"], 100);
    assert_eq!(varz["in_bytes"], 100);
    assert_eq!(varz["out_msgs"], 100);
    assert_eq!(varz["out_bytes"], 100);
    assert_eq!(varz["connections"], 2);
    assert_eq!(varz["subscriptions"], 1);
    assert_eq!(varz["slow_consumers"], 0);
    assert!(varz["total_connections"].as_u64().expect("number") >= 2);
    assert_eq!(
        varz["server_id"],
        subscriber.info_json()["server_id"],
        "same id as INFO"
    );
    assert_eq!(varz["port"], broker.addr.port());
    assert_eq!(varz["http_port"], monitor.port());
    // Types that dashboards and nats-top decode into Go structs.
    assert_eq!(varz["ping_interval"], 120_000_000_000u64);
    assert_eq!(varz["write_deadline"], 10_000_000_000u64);
    assert_eq!(varz["max_payload"], 1_048_576);
    assert_eq!(varz["max_connections"], 65_536);
    assert!(varz["cpu"].is_number(), "cpu: {}", varz["cpu"]);
    assert!(varz["mem"].as_u64().expect("mem") > 0);
    assert!(varz["uptime"].is_string());
    assert!(varz["start"].as_str().expect("start").ends_with('Z'));
    // percore's own per-shard view, with the ring counters.
    let shards = varz["shards"].as_array().expect("shards array");
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[1]["in_msgs"], 100, "published on shard 1");
    assert_eq!(shards[0]["out_msgs"], 100, "delivered on shard 0");
    assert!(shards[0]["ring_stalls"].is_u64());
    assert!(varz["ring_stalls"].is_u64());
}

#[test]
fn connz_reports_each_connection_with_its_own_counters() {
    let (broker, monitor) = monitored(&[]);
    let mut first = named_client_on_shard(&broker, 0, "first");
    let mut second = named_client_on_shard(&broker, 1, "second");
    // nats.py's test: subscribe, two messages to itself, unsubscribe, two more.
    second.send(b"SUB foo 7\r\nPUB foo 1\r\nA\r\nPUB foo 1\r\nB\r\n");
    second.ping_pong();
    second.send(b"UNSUB 7\r\nPUB foo 1\r\nC\r\nPUB foo 1\r\nD\r\n");
    second.ping_pong();
    first.send(b"SUB bar 1\r\nSUB baz q 2\r\n");
    first.ping_pong();

    let connz = get(monitor, "/connz").json();
    assert_eq!(connz["num_connections"], 2);
    assert_eq!(connz["total"], 2);
    assert_eq!(connz["offset"], 0);
    assert_eq!(connz["limit"], 1024);
    let cids: Vec<u64> = connz["connections"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["cid"].as_u64().expect("cid"))
        .collect();
    assert_eq!(
        cids,
        [first.client_id(), second.client_id()],
        "sorted by cid"
    );
    let c = connection(&connz, second.client_id());
    assert_eq!(c["subscriptions"], 0);
    assert_eq!(c["in_msgs"], 4);
    assert_eq!(c["in_bytes"], 4);
    assert_eq!(c["out_msgs"], 2);
    assert_eq!(c["out_bytes"], 2);
    assert_eq!(c["name"], "second");
    assert_eq!(c["lang"], "raw");
    assert_eq!(c["version"], "1.0");
    assert_eq!(c["ip"], "127.0.0.1");
    assert_eq!(
        c["port"],
        second.stream.local_addr().expect("local addr").port()
    );
    assert_eq!(c["pending_bytes"], 0);
    assert_eq!(connection(&connz, first.client_id())["subscriptions"], 2);

    // Subscription lists, paging, one connection, and the 400s.
    let connz = get(monitor, "/connz?subs=1&sort=subs").json();
    let top = &connz["connections"][0];
    assert_eq!(top["cid"], first.client_id(), "most subscriptions first");
    let mut subjects: Vec<&str> = top["subscriptions_list"]
        .as_array()
        .expect("subscriptions_list")
        .iter()
        .map(|s| s.as_str().expect("subject"))
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["bar", "baz"]);
    let detail = get(
        monitor,
        &format!("/connz?subs=detail&cid={}", first.client_id()),
    )
    .json();
    assert_eq!(detail["num_connections"], 1);
    let list = detail["connections"][0]["subscriptions_list_detail"]
        .as_array()
        .expect("detail list")
        .clone();
    let queued = list
        .iter()
        .find(|s| s["subject"] == "baz")
        .expect("baz subscription");
    assert_eq!(queued["qgroup"], "q");
    assert_eq!(queued["sid"], "2");
    assert_eq!(queued["cid"], first.client_id());
    let page = get(monitor, "/connz?offset=1&limit=1").json();
    assert_eq!(page["num_connections"], 1);
    assert_eq!(page["total"], 2);
    assert_eq!(page["connections"][0]["cid"], second.client_id());
    let bad = get(monitor, "/connz?sort=bogus");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("invalid sorting option: bogus"),
        "{}",
        bad.body
    );
    assert_eq!(get(monitor, "/connz?limit=x").status, 400);
}

/// Polls `/connz?state=closed` (each poll is a full round trip through
/// both shards) until `cid` is listed there; the close reaches the server
/// asynchronously.
fn wait_closed(monitor: SocketAddr, cid: u64) -> Value {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let closed = get(monitor, "/connz?state=closed&subs=1").json();
        if let Some(c) = closed["connections"]
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["cid"] == cid)
        {
            return c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "cid {cid} never listed as closed"
        );
    }
}

#[test]
fn connz_moves_a_closed_connection_to_state_closed() {
    let (broker, monitor) = monitored(&[]);
    let mut stays = named_client_on_shard(&broker, 0, "stays");
    let mut leaves = named_client_on_shard(&broker, 1, "leaves");
    leaves.send(b"SUB going 1\r\nPUB elsewhere 3\r\nbye\r\n");
    leaves.ping_pong();
    let leaving = leaves.client_id();
    assert_eq!(get(monitor, "/connz").json()["num_connections"], 2);
    drop(leaves);

    let closed = wait_closed(monitor, leaving);
    assert_eq!(closed["reason"], "Client Closed");
    assert_eq!(closed["name"], "leaves");
    assert_eq!(closed["in_msgs"], 1);
    assert_eq!(closed["in_bytes"], 3);
    assert_eq!(closed["subscriptions_list"], serde_json::json!(["going"]));
    assert!(closed["stop"].as_str().expect("stop").ends_with('Z'));
    let open = get(monitor, "/connz").json();
    assert_eq!(open["total"], 1);
    assert_eq!(open["connections"][0]["cid"], stays.client_id());
    let any = get(monitor, "/connz?state=any").json();
    assert_eq!(any["total"], 2);
    assert_eq!(get(monitor, "/connz?sort=stop").status, 400);

    // A connection the server closes carries the server's reason.
    let mut rude = client_on_shard(&broker, 0);
    let rude_id = rude.client_id();
    rude.send(b"BOGUS\r\n");
    let closed = wait_closed(monitor, rude_id);
    assert_eq!(closed["reason"], "Protocol Violation");
    stays.ping_pong();
    assert_eq!(get(monitor, "/varz").json()["connections"], 1);
}

/// Monitoring requests are answered at once, as nats-server answers them:
/// each shard takes the request when the monitor rings its doorbell, not at
/// its next 100 ms housekeeping tick. Back to back, each request used to
/// arrive just after the tick that answered the previous one, so ten took
/// about a second (87 ms each at the median, release build).
#[test]
fn monitoring_requests_do_not_wait_for_the_housekeeping_tick() {
    let (broker, monitor) = monitored(&[]);
    let _clients = [client_on_shard(&broker, 0), client_on_shard(&broker, 1)];
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(get(monitor, "/connz").status, 200);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "ten /connz took {took:?}: waiting for ticks"
    );
}

#[test]
fn subsz_routez_healthz_and_unknown_paths() {
    let (broker, monitor) = monitored(&[]);
    let mut a = named_client_on_shard(&broker, 0, "a");
    let mut b = named_client_on_shard(&broker, 1, "b");
    a.send(b"SUB orders.* 1\r\nSUB orders.new q 2\r\n");
    a.ping_pong();
    b.send(b"SUB audit.> 1\r\nPUB orders.new 2\r\nhi\r\n");
    b.ping_pong();
    a.ping_pong();

    let subsz = get(monitor, "/subsz").json();
    assert_eq!(subsz["num_subscriptions"], 3);
    assert!(subsz.get("subscriptions_list").is_none());
    assert!(subsz["cache_hit_rate"].is_number());
    let listed = get(monitor, "/subsz?subs=1&test=orders.new").json();
    let mut subjects: Vec<&str> = listed["subscriptions_list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["subject"].as_str().expect("subject"))
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["orders.*", "orders.new"]);
    assert_eq!(
        get(monitor, "/subscriptionsz").json()["num_subscriptions"],
        3
    );

    let routez = get(monitor, "/routez").json();
    assert_eq!(routez["num_routes"], 0);
    let health = get(monitor, "/healthz");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "{\"status\":\"ok\"}")
    );
    let jsonp = get(monitor, "/varz?callback=cb");
    assert!(jsonp.body.starts_with("cb(") && jsonp.body.trim_end().ends_with(')'));
    assert_eq!(
        jsonp.header("Content-Type").as_deref(),
        Some("application/javascript")
    );
    assert_eq!(get(monitor, "/nope").status, 404);
    let index = get(monitor, "/");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("varz"));
    // Every request was counted.
    let stats = &get(monitor, "/varz").json()["http_req_stats"];
    assert!(stats["/varz"].as_u64().expect("varz count") >= 2);
    // `/subscriptionsz` counts as `/subsz`, as in nats-server.
    assert_eq!(stats["/subsz"], 3);
}

#[test]
fn base_path_and_host_from_the_config_file() {
    let broker = Broker::start_with(&[], Some("http: \"127.0.0.1:-1\"\nhttp_base_path: /nats\n"));
    let monitor = broker.monitor.expect("monitor address");
    assert_eq!(monitor.ip().to_string(), "127.0.0.1");
    let varz = get(monitor, "/nats/varz");
    assert_eq!(varz.status, 200);
    assert_eq!(varz.json()["http_base_path"], "/nats");
    assert_eq!(get(monitor, "/varz").status, 404);
    let mut client = broker.raw();
    client.ping_pong();
}

#[test]
fn monitoring_is_off_unless_asked_for() {
    let broker = Broker::start();
    assert_eq!(broker.monitor, None);
    let taken = Broker::start_with(&["-m", "-1"], None);
    let busy = taken.monitor.expect("monitor").port().to_string();
    // A monitor port in use stops the start-up with nats-server's message.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-m", &busy])
        .output()
        .expect("run percore");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "Can't start monitoring: can't listen to the monitor port: 127.0.0.1:{busy}"
        )),
        "{stderr}"
    );
}

#[test]
fn rtt_is_estimated_from_connect_until_a_ping_is_answered() {
    let (broker, monitor) = monitored(&[]);
    let mut client = broker.raw();
    let cid = client.client_id();
    let rtt = |monitor| {
        get(monitor, &format!("/connz?cid={cid}")).json()["connections"][0]["rtt"]
            .as_str()
            .expect("rtt")
            .to_string()
    };
    // Before CONNECT nats-server knows nothing: "0s".
    assert_eq!(rtt(monitor), "0s");
    client.send(b"CONNECT {\"verbose\":false}\r\n");
    client.ping_pong();
    // After it, the time from accept to CONNECT stands in for the RTT.
    let estimate = rtt(monitor);
    assert_ne!(estimate, "0s");
    assert!(
        ["ns", "µs", "ms", "s"]
            .iter()
            .any(|unit| estimate.ends_with(unit)),
        "{estimate}"
    );
}

#[test]
fn connz_auth_names_users_and_filters_by_user_and_account_varz_shows_auth() {
    let broker = Broker::start_with(
        &["-m", "-1"],
        Some("authorization {\n  timeout: 3\n  users: [\n    {user: alice, password: a}\n    {user: bob, password: b}\n  ]\n}\n"),
    );
    let monitor = broker.monitor.expect("monitor address in the log");
    let login = |user: &str, pass: &str| {
        let mut client = RawClient::connect(broker.addr);
        client.send(
            format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n")
                .as_bytes(),
        );
        client.ping_pong();
        client
    };
    let _alice = login("alice", "a");
    let _bob = login("bob", "b");
    let json = |path: &str| -> Value {
        let response = get(monitor, path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        serde_json::from_str(&response.body).expect("json")
    };
    let all = json("/connz?auth=1");
    assert_eq!(connection(&all, 1)["authorized_user"], "alice");
    assert_eq!(connection(&all, 2)["authorized_user"], "bob");
    // The global account is not named (nats-server 2.9.10 names others only).
    assert!(connection(&all, 2).get("account").is_none(), "{all}");
    let plain = json("/connz");
    assert!(connection(&plain, 1).get("authorized_user").is_none());
    let bob = json("/connz?auth=1&user=bob");
    assert_eq!(bob["num_connections"], 1);
    // As nats-server 2.9.10: `total` is counted before the user filter.
    assert_eq!(bob["total"], 2, "{bob}");
    assert_eq!(bob["connections"][0]["cid"], 2);
    assert_eq!(json("/connz?acc=$G")["num_connections"], 2);
    assert_eq!(json("/connz?acc=OTHER")["num_connections"], 0);
    let varz = json("/varz");
    assert_eq!(varz["auth_required"], true);
    assert_eq!(varz["auth_timeout"], 3);
}

/// `authorized_user` is what the client claimed, as nats-server reports
/// it: the token a token client sent, and for a closed connection only the
/// user name its CONNECT named (a failed login included).
#[test]
fn connz_auth_reports_the_token_and_the_user_a_failed_login_named() {
    let broker = Broker::start_with(&["-m", "-1"], Some("authorization { token: s3cret }\n"));
    let mut client = RawClient::connect(broker.addr);
    client.send(b"CONNECT {\"verbose\":false,\"auth_token\":\"s3cret\"}\r\n");
    client.ping_pong();
    let mut failed = RawClient::connect(broker.addr);
    failed.send(b"CONNECT {\"user\":\"mallory\",\"auth_token\":\"guess\"}\r\n");
    failed.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    let open = broker.monitor_json("/connz?auth=1");
    assert_eq!(
        connection(&open, client.client_id())["authorized_user"],
        "s3cret"
    );
    broker.wait_closed(failed.client_id());
    let closed = broker.monitor_json("/connz?auth=1&state=closed");
    let entry = connection(&closed, failed.client_id());
    assert_eq!(entry["authorized_user"], "mallory", "{entry}");
    assert_eq!(entry["reason"], "Authentication Failure");
    assert!(entry.get("account").is_none(), "{entry}");
}

#[test]
fn connz_and_accountz_name_the_accounts_of_connections() {
    let broker = Broker::start_with(
        &["-m", "-1"],
        Some(
            "accounts {\n  A: { users: [{user: a, password: a}], exports: [{service: \"svc\", accounts: [B]}] }\n  B: { users: [{user: b, password: b}], imports: [{service: {account: A, subject: svc}, to: ask}] }\n}\n",
        ),
    );
    let monitor = broker.monitor.expect("monitor address in the log");
    let login = |user: &str| {
        let mut client = RawClient::connect(broker.addr);
        client.send(
            format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\nSUB x 1\r\n")
                .as_bytes(),
        );
        client.ping_pong();
        client
    };
    let _a = login("a");
    let _b = login("b");
    let json = |path: &str| -> Value {
        let response = get(monitor, path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        serde_json::from_str(&response.body).expect("json")
    };
    let all = json("/connz?auth=1");
    assert_eq!(connection(&all, 1)["account"], "A");
    assert_eq!(connection(&all, 2)["account"], "B");
    let b_only = json("/connz?acc=B");
    assert_eq!(b_only["num_connections"], 1);
    assert_eq!(b_only["connections"][0]["cid"], 2);

    let list = json("/accountz");
    assert_eq!(
        list["accounts"],
        serde_json::json!(["$G", "A", "B", "$SYS"])
    );
    let a = json("/accountz?acc=A");
    let detail = &a["account_detail"];
    assert_eq!(detail["client_connections"], 1);
    assert_eq!(detail["subscriptions"], 1);
    assert_eq!(detail["exports"][0]["subject"], "svc");
    assert_eq!(detail["exports"][0]["type"], "service");
    assert_eq!(detail["exports"][0]["response_type"], "Singleton");
    assert_eq!(detail["exports"][0]["approved_accounts"][0], "B");
    let b = json("/accountz?acc=B");
    let import = &b["account_detail"]["imports"][0];
    assert_eq!(
        (&import["subject"], &import["to"]),
        (&"ask".into(), &"svc".into())
    );
    assert_eq!(
        b["account_detail"]["subscriptions"], 2,
        "its SUB and the import's"
    );
    let unknown = get(monitor, "/accountz?acc=Z");
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (400, "Account Z does not exist")
    );
    // `/accstatz` (nats-server 2.9.10; prometheus-nats-exporter
    // -accstatz): the accounts with connections, all with unused=1.
    let stat_names = |body: &Value| -> Vec<String> {
        let mut names: Vec<String> = body["account_statz"]
            .as_array()
            .unwrap_or_else(|| panic!("no account_statz: {body}"))
            .iter()
            .map(|a| a["acc"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let statz = json("/accstatz");
    assert_eq!(stat_names(&statz), ["A", "B"], "{statz}");
    let a_stat = statz["account_statz"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["acc"] == "A")
        .unwrap();
    assert_eq!(a_stat["conns"], 1);
    assert_eq!(a_stat["total_conns"], 1);
    assert_eq!(a_stat["leafnodes"], 0);
    assert!(a_stat["sent"]["msgs"].is_u64() && a_stat["received"]["bytes"].is_u64());
    assert_eq!(
        stat_names(&json("/accstatz?unused=1")),
        ["$G", "$SYS", "A", "B"]
    );
    assert_eq!(get(monitor, "/accstatz?unused=x").status, 400);
}

/// `/metrics` as a scraper reads it: the text format (checked line by line
/// here, and by Prometheus's own `promtool check metrics` where it is
/// installed, as CI does), `/varz`'s numbers under the exporter's names,
/// per-shard counters that add up to them, and after a publish that
/// crossed from shard 0 to shard 1: ring batches sent and received, the
/// receiving shard's delivery latency sample, parks and wake-ups.
#[test]
fn metrics_expose_varz_and_per_shard_counters_in_prometheus_text() {
    let (broker, monitor) = monitored(&[]);
    let mut publisher = client_on_shard(&broker, 0);
    let mut subscriber = client_on_shard(&broker, 1);
    subscriber.send(b"SUB m 1\r\n");
    subscriber.ping_pong();
    publisher.send(b"PUB m 2\r\nhi\r\nPUB m 2\r\nho\r\n");
    publisher.ping_pong();
    subscriber.ping_pong();

    let response = get(monitor, "/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut typed = std::collections::HashSet::new();
    let mut samples = std::collections::HashMap::new();
    for line in response.body.lines() {
        if line.starts_with("# HELP ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let name = series.split('{').next().expect("name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.contains(*base))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        let value: f64 = value.parse().expect("numeric value");
        samples.insert(series.to_string(), value);
    }
    let server_id = broker_server_id(monitor);
    let label = format!("{{server_id=\"{server_id}\"}}");
    assert_eq!(samples[&format!("gnatsd_varz_in_msgs{label}")], 2.0);
    assert_eq!(samples[&format!("gnatsd_varz_out_msgs{label}")], 2.0);
    let per_shard = |name: &str| -> f64 {
        (0..2)
            .map(|shard| samples[&format!("{name}{{server_id=\"{server_id}\",shard=\"{shard}\"}}")])
            .sum()
    };
    assert_eq!(per_shard("percore_shard_in_msgs_total"), 2.0);
    assert_eq!(per_shard("percore_shard_out_msgs_total"), 2.0);
    assert_eq!(per_shard("percore_shard_subscriptions"), 1.0);
    let on_shard = |name: &str, shard: usize| -> f64 {
        samples[&format!("{name}{{server_id=\"{server_id}\",shard=\"{shard}\"}}")]
    };
    // The publish crossed in a ring batch from shard 0 to shard 1 (so did
    // the SUB's interest, the other way).
    assert!(on_shard("percore_shard_ring_batches_sent_total", 0) > 0.0);
    assert!(on_shard("percore_shard_ring_batches_received_total", 1) > 0.0);
    assert!(on_shard("percore_shard_ring_batches_sent_total", 1) > 0.0);
    assert!(on_shard("percore_shard_ring_batches_received_total", 0) > 0.0);
    // Shard 1 wrote the two messages in the unit of work of that batch: one
    // latency sample there (the subscriber's PONG came after it).
    let latency = "percore_shard_delivery_latency_seconds";
    let shard1_count = on_shard(&format!("{latency}_count"), 1);
    assert!(
        shard1_count >= 1.0,
        "shard 1 latency samples: {shard1_count}"
    );
    let inf_bucket =
        format!("{latency}_bucket{{server_id=\"{server_id}\",shard=\"1\",le=\"+Inf\"}}");
    assert_eq!(samples[&inf_bucket], shard1_count);
    let one_second = format!("{latency}_bucket{{server_id=\"{server_id}\",shard=\"1\",le=\"1\"}}");
    assert!(
        samples[&one_second] >= 1.0,
        "a sample above 1 s on loopback"
    );
    assert!(on_shard(&format!("{latency}_sum"), 1) > 0.0);
    assert_eq!(
        samples[&format!("percore_delivery_latency_seconds_count{label}")],
        per_shard(&format!("{latency}_count"))
    );
    // Both shards slept between the steps above, and the other shard's
    // batches (or the accept hand-off) woke one of them at least once.
    assert!(on_shard("percore_shard_parks_total", 0) > 0.0);
    assert!(on_shard("percore_shard_parks_total", 1) > 0.0);
    assert!(per_shard("percore_shard_wakeups_total") > 0.0);
    // /metrics is not one of nats-server's endpoints in /varz's counts.
    let varz: Value = serde_json::from_str(&get(monitor, "/varz").body).expect("json");
    assert!(varz["http_req_stats"].get("/metrics").is_none());

    if let Ok(mut check) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write as _;
        check
            .stdin
            .take()
            .expect("stdin")
            .write_all(response.body.as_bytes())
            .expect("feed promtool");
        let output = check.wait_with_output().expect("promtool ran");
        assert!(
            output.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn broker_server_id(monitor: SocketAddr) -> String {
    let varz: Value = serde_json::from_str(&get(monitor, "/varz").body).expect("json");
    varz["server_id"].as_str().expect("server_id").to_string()
}

/// A real Prometheus server scrapes `/metrics` and can query what it
/// scraped. Runs where `prometheus` is installed (CI installs it); without
/// it there is nothing to scrape with, and the test says so and passes.
#[test]
fn a_real_prometheus_scrapes_metrics() {
    let Ok(version) = std::process::Command::new("prometheus")
        .arg("--version")
        .output()
    else {
        eprintln!("prometheus is not installed: scrape test not run");
        return;
    };
    assert!(version.status.success());
    let (broker, monitor) = monitored(&[]);
    let mut client = client_on_shard(&broker, 0);
    client.send(b"PUB scraped 1\r\nx\r\n");
    client.ping_pong();

    let dir = std::env::temp_dir().join(format!("percore-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: percore\n    static_configs:\n      - targets: ['{monitor}']\n"
        ),
    )
    .expect("prometheus config");
    let web = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr")
    };
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prometheus");
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let mut scraped = None;
    while Instant::now() < deadline {
        if let Ok(stream) = TcpStream::connect(web) {
            drop(stream);
            let response = get(web, "/api/v1/query?query=gnatsd_varz_in_msgs");
            if response.status == 200 {
                let body: Value = serde_json::from_str(&response.body).expect("json");
                if let Some(sample) = body["data"]["result"].get(0) {
                    scraped = Some(sample["value"][1].as_str().unwrap_or_default().to_string());
                    break;
                }
            }
        }
        // Prometheus's first scrape is up to one interval away: poll it.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The same scrape holds the histograms, parsed as such: Prometheus
    // answers a quantile over their buckets.
    let quantile = scraped.as_ref().map(|_| {
        get(
            web,
            "/api/v1/query?query=histogram_quantile(0.5,percore_delivery_latency_seconds_bucket)",
        )
    });
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        scraped.as_deref(),
        Some("1"),
        "Prometheus never scraped in_msgs = 1"
    );
    let quantile = quantile.expect("queried");
    assert_eq!(quantile.status, 200, "{}", quantile.body);
    let body: Value = serde_json::from_str(&quantile.body).expect("json");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(
        body["data"]["result"].as_array().map(Vec::len),
        Some(1),
        "one delivery latency histogram scraped: {body}"
    );
}

/// A reload shows in `/varz` as in nats-server 2.9.10: `config_load_time`
/// moves (`start` does not), the reloaded limits are reported, and new
/// clients on both shards get the new `max_payload` in INFO.
#[test]
fn varz_and_info_show_a_reload() {
    let broker = Broker::start_with(&["-m", "-1"], Some("max_payload: 1048576\n"));
    let monitor = broker.monitor.expect("monitor address in the log");
    let before = get(monitor, "/varz").json();
    assert_eq!(before["config_load_time"], before["start"], "{before}");
    std::fs::write(
        broker.config_path().expect("config file"),
        "max_payload: 2097152\nping_interval: \"30s\"\n",
    )
    .expect("rewrite config");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", IO_TIMEOUT)
        .expect("reloaded");
    let after = get(monitor, "/varz").json();
    assert_ne!(
        after["config_load_time"], before["config_load_time"],
        "{after}"
    );
    assert_eq!(after["start"], before["start"]);
    assert_eq!(after["max_payload"], 2097152, "{after}");
    assert_eq!(after["ping_interval"], 30_000_000_000u64, "{after}");
    // Each shard takes the reload at its next housekeeping tick.
    for shard in 0..broker.shards {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let client = client_on_shard(&broker, shard);
            if client.info_json()["max_payload"] == 2097152 {
                break;
            }
            assert!(Instant::now() < deadline, "still {}", client.info);
        }
    }
}
