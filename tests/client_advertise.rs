//! `client_advertise` / `--client_advertise`: the `host[:port]` a server
//! behind NAT or a proxy tells its clients (INFO `host`/`port`, `/varz`)
//! and, through the routes, the other nodes' clients (`connect_urls`).
//! Compared with nats-server 2.9.10, whose texts the errors keep.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::cluster::{route_port, ClusterClient, WAIT};
use support::{client_on_shard, Broker, IO_TIMEOUT};

#[test]
fn clients_and_varz_get_the_advertised_host_and_port() {
    let broker = Broker::start_with(
        &["--client_advertise", "nats.example.com:4333", "-m", "-1"],
        None,
    );
    for shard in 0..broker.shards {
        let info = client_on_shard(&broker, shard).info_json();
        assert_eq!(
            (&info["host"], &info["port"]),
            (&"nats.example.com".into(), &4333.into()),
            "shard {shard}: {info}"
        );
    }
    let varz = broker.monitor_json("/varz");
    assert_eq!(
        (&varz["host"], &varz["port"]),
        (&"nats.example.com".into(), &4333.into())
    );
}

#[test]
fn an_advertised_host_without_a_port_keeps_the_listeners_port() {
    let broker = Broker::with_config("client_advertise: \"[::1]\"\n");
    let info = broker.raw().info_json();
    assert_eq!(info["host"], "::1");
    assert_eq!(info["port"], broker.addr.port());
}

/// What percore prints and how it exits for `args` (no server stays up).
/// A percore that starts after all is killed after 10 s, so that a
/// regression fails the test (exit code `None`) instead of hanging it.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "--shards", "1"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run percore");
    let pid = child.id() as i32;
    let (exited, watched) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watched
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_err()
        {
            // SAFETY: kill(2) on our child, not reaped until the wait below
            // returns, which this kill makes it do.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    });
    let output = child.wait_with_output().expect("wait for percore");
    let _ = exited.send(());
    let _ = watchdog.join();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_advertised_address_stops_the_start_in_nats_servers_words() {
    let (code, stderr) = refused(&["--client_advertise", "host:abc"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "[FTL] Error setting server INFO with ClientAdvertise value of host:abc, \
             err=strconv.Atoi: parsing \"abc\": invalid syntax"
        ),
        "{stderr}"
    );
    let config =
        std::env::temp_dir().join(format!("percore-advertise-{}.conf", std::process::id()));
    std::fs::write(&config, "client_advertise: \"[::1\"\n").unwrap();
    let (code, stderr) = refused(&["-c", &config.display().to_string()]);
    let _ = std::fs::remove_file(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Error setting server INFO with ClientAdvertise value of [::1, \
             err=address [::1: missing ']' in address"
        ),
        "{stderr}"
    );
    // Not a TCP port: percore's own refusal (nats-server would advertise it).
    let (code, stderr) = refused(&["--client_advertise", "h:70000"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("err=port 70000 is out of range"),
        "{stderr}"
    );
}

/// `cluster_advertise` is read the same way, and a bad one stops the start
/// with nats-server's route text (it used to fall back quietly to the
/// route listener's port).
#[test]
fn a_bad_cluster_advertise_stops_the_start_in_nats_servers_words() {
    let (code, stderr) = refused(&[
        "--cluster",
        "nats://127.0.0.1:-1",
        "--cluster_advertise",
        "host:abc",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "[FTL] Error setting route INFO with Cluster.Advertise value of host:abc, \
             err=strconv.Atoi: parsing \"abc\": invalid syntax"
        ),
        "{stderr}"
    );
}

/// Reads lines until an INFO whose `connect_urls` satisfy `want`.
fn wait_urls(conn: &mut ClusterClient, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let urls = |json: &str| -> Vec<String> {
        let info: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        info["connect_urls"]
            .as_array()
            .map(|a| a.iter().map(|u| u.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let first = urls(conn.info.trim_start_matches("INFO "));
    if want(&first) {
        return first;
    }
    let deadline = Instant::now() + WAIT;
    while let Some(line) = conn.line(deadline.saturating_duration_since(Instant::now())) {
        if let Some(json) = line.strip_prefix("INFO ") {
            let got = urls(json);
            if want(&got) {
                return got;
            }
        }
    }
    panic!("no INFO with the wanted connect_urls arrived");
}

fn clustered(name: &str, extra: &[&str]) -> Broker {
    let mut args = vec![
        "--cluster",
        "nats://127.0.0.1:-1",
        "--cluster_name",
        "adv",
        "-n",
        name,
    ];
    args.extend_from_slice(extra);
    Broker::start_with(&args, None)
}

#[test]
fn the_other_nodes_clients_learn_the_advertised_url() {
    let a = clustered("a", &["--client_advertise", "edge.example.com:7422"]);
    let routes = format!("nats-route://127.0.0.1:{}", route_port(&a));
    let b = clustered("b", &["--routes", &routes]);
    let advertised = "edge.example.com:7422".to_string();
    let (ours, theirs) = (a.addr.to_string(), b.addr.to_string());
    for shard in 0..2 {
        let mut conn = ClusterClient::on_shard(b.addr, shard);
        let urls = wait_urls(&mut conn, |urls| urls.contains(&advertised));
        assert_eq!(urls, [theirs.clone(), advertised.clone()], "shard {shard}");
        assert!(!urls.contains(&ours), "{urls:?}");
    }
    // The advertising node's own clients are told the same URL for it.
    let mut conn = ClusterClient::on_shard(a.addr, 1);
    let urls = wait_urls(&mut conn, |urls| urls.contains(&theirs));
    assert_eq!(urls, [advertised, theirs]);
}

/// A client's INFO `host:port` on a fresh connection.
fn advertised(addr: SocketAddr) -> String {
    let info = ClusterClient::connect(addr).info;
    let info: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    format!("{}:{}", info["host"].as_str().unwrap(), info["port"])
}

#[test]
fn a_reload_changes_what_new_clients_are_told() {
    let broker = Broker::with_config("client_advertise: \"first.example:1111\"\n");
    assert_eq!(advertised(broker.addr), "first.example:1111");
    let path = broker.config_path().expect("config file").to_path_buf();
    std::fs::write(&path, "client_advertise: \"second.example:2222\"\n").unwrap();
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", IO_TIMEOUT)
        .expect("reloaded");
    assert_eq!(advertised(broker.addr), "second.example:2222");
    // A bad value is refused and changes nothing.
    let line = broker.reload_refused("client_advertise: \"third.example:x\"\n", IO_TIMEOUT);
    assert!(
        line.contains(
            "invalid ClientAdvertise value of third.example:x, \
             err=strconv.Atoi: parsing \"x\": invalid syntax"
        ),
        "{line}"
    );
    assert_eq!(advertised(broker.addr), "second.example:2222");
    // Back to none: the listener's address.
    std::fs::write(&path, "\n").unwrap();
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", Duration::from_secs(10))
        .expect("reloaded");
    assert_eq!(advertised(broker.addr), broker.addr.to_string());
}
