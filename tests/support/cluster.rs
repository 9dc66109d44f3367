//! Clusters in tests: a raw client of a cluster node, interest probes
//! across routes, free ports, and the reference nats-server as a peer.
//! Shared by the route tests (`routes.rs`, `route_tls.rs`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server_pings::ServerPings;
use super::{find, Broker};

/// Every wait on a cluster (routes forming, interest crossing) gives up
/// after this long.
pub const WAIT: Duration = Duration::from_secs(15);
/// The reference server (Debian's nats-server 2.9.10).
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A raw client of a cluster node (or a fake route peer): reads messages
/// with a short poll, answers and hides server PINGs (see
/// [`super::server_pings`]), skips the async INFO a cluster change brings.
pub struct ClusterClient {
    pub stream: TcpStream,
    /// Read, not yet taken by `line`, `msg` or `ping`.
    pub pending: Vec<u8>,
    pub info: String,
    pings: ServerPings,
}

impl ClusterClient {
    pub fn connect(addr: SocketAddr) -> ClusterClient {
        ClusterClient::connect_as(addr, "")
    }

    /// Connects with `creds` (`,"user":..,"pass":..` or empty) in CONNECT.
    pub fn connect_as(addr: SocketAddr, creds: &str) -> ClusterClient {
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match TcpStream::connect(addr) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect {addr}: {e}"),
            }
        };
        let mut conn = ClusterClient::over(stream);
        conn.info = conn.line(WAIT).expect("INFO");
        assert!(conn.info.starts_with("INFO "), "{}", conn.info);
        conn.send(
            format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1{creds}}}\r\n")
                .as_bytes(),
        );
        conn.ping();
        conn
    }

    /// Over a connection made already (a route peer's), nothing read or
    /// sent yet.
    pub fn over(stream: TcpStream) -> ClusterClient {
        stream.set_nodelay(true).unwrap();
        ClusterClient {
            stream,
            pending: Vec::new(),
            info: String::new(),
            pings: ServerPings::default(),
        }
    }

    pub fn client_id(&self) -> u64 {
        let json: serde_json::Value =
            serde_json::from_str(self.info.trim_start_matches("INFO ").trim()).unwrap();
        json["client_id"].as_u64().unwrap()
    }

    /// Connects until the connection lands on `shard` of a 2-shard percore.
    pub fn on_shard(addr: SocketAddr, shard: u64) -> ClusterClient {
        ClusterClient::on_shard_as(addr, shard, "")
    }

    pub fn on_shard_as(addr: SocketAddr, shard: u64, creds: &str) -> ClusterClient {
        for _ in 0..4 {
            let conn = ClusterClient::connect_as(addr, creds);
            if (conn.client_id() - 1) % 2 == shard {
                return conn;
            }
        }
        panic!("no connection landed on shard {shard}");
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.pings.sent(bytes);
        self.pings.answer(&mut self.stream);
    }

    /// Reads more within `timeout`; false if nothing came.
    pub fn fill(&mut self, timeout: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.pings.closed(&mut self.pending);
                false
            }
            Ok(n) => {
                self.pings.received(&buf[..n], &mut self.pending);
                self.pings.answer(&mut self.stream);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    pub fn line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill(left) {
                return None;
            }
        }
    }

    /// The next message (subject, reply, payload).
    pub fn msg(&mut self, timeout: Duration) -> Option<(String, Option<String>, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.line(deadline.saturating_duration_since(Instant::now()))?;
            // PONGs of earlier PINGs, and the async INFO a cluster change
            // brings (nats-server's connect_urls).
            if line == "PONG\r\n" || line.starts_with("INFO ") {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (subject, reply, size) = match fields.as_slice() {
                ["MSG", s, _sid, n] => (s.to_string(), None, n.parse::<usize>().unwrap()),
                ["MSG", s, _sid, r, n] => (s.to_string(), Some(r.to_string()), n.parse().unwrap()),
                ["HMSG", s, _sid, _h, n] => (s.to_string(), None, n.parse().unwrap()),
                ["HMSG", s, _sid, r, _h, n] => {
                    (s.to_string(), Some(r.to_string()), n.parse().unwrap())
                }
                _ => panic!("unexpected line {line:?}"),
            };
            while self.pending.len() < size + 2 {
                assert!(self.fill(WAIT), "payload of {subject}");
            }
            let payload: Vec<u8> = self.pending.drain(..size + 2).take(size).collect();
            return Some((subject, reply, payload));
        }
    }

    /// PING and wait for its PONG; messages that arrive first are kept for
    /// `msg`.
    pub fn ping(&mut self) {
        self.send(b"PING\r\n");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pos) = find(&self.pending, b"PONG\r\n") {
                self.pending.drain(pos..pos + 6);
                return;
            }
            assert!(
                Instant::now() < deadline && self.fill(deadline - Instant::now()),
                "no PONG"
            );
        }
    }
}

/// Waits until a subscription `subscriber` made is known where `publisher`
/// is: the subscriber subscribes to a fresh probe subject, and the
/// publisher publishes on it until one comes back.
pub fn wait_interest(subscriber: &mut ClusterClient, publisher: &mut ClusterClient, probe: &str) {
    subscriber.send(format!("SUB {probe} 999999\r\n").as_bytes());
    subscriber.ping();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        publisher.send(format!("PUB {probe} 0\r\n\r\n").as_bytes());
        publisher.ping();
        if let Some((subject, _, _)) = subscriber.msg(Duration::from_millis(50)) {
            assert_eq!(subject, probe);
            subscriber.send(b"UNSUB 999999\r\n");
            subscriber.ping();
            // Late probes may still be on their way; drain them.
            while subscriber.msg(Duration::from_millis(100)).is_some() {}
            return;
        }
    }
    panic!("interest on {probe} never reached the publisher's node");
}

/// The port of `broker`'s route listener, from its log line.
pub fn route_port(broker: &Broker) -> u16 {
    let line = broker
        .wait_log("Listening for route connections on ", WAIT)
        .expect("route listener");
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("route port")
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything `stream` sends until it closes (or [`WAIT`] passes).
pub fn read_to_close(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The monitoring endpoint `path` as JSON.
pub fn http_get(addr: SocketAddr, path: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let text = read_to_close(&mut stream);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A reference nats-server, killed on drop.
pub struct NatsServer {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its route listener's port.
    pub route_port: u16,
    /// A config file written for it, removed with it.
    pub config: Option<PathBuf>,
    /// Its ports file and log ([`spawn_nats_server`]), removed with it.
    pub dir: Option<PathBuf>,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Whether the reference nats-server is installed; says SKIPPED when not
/// (the mixed-cluster tests then pass without it).
pub fn nats_server_installed() -> bool {
    let installed = std::path::Path::new(NATS_SERVER).exists();
    if !installed {
        eprintln!("SKIPPED: {NATS_SERVER} is not installed (apt-get install nats-server)");
    }
    installed
}

/// The reference nats-server 2.9 in cluster "demo", dialing `routes`.
pub fn nats_server(name: &str, routes: &[u16]) -> Option<NatsServer> {
    nats_server_installed().then(|| nats_server_from(NATS_SERVER, name, routes))
}

/// [`nats_server`] with a config file holding `config` (accounts, a
/// system account); the cluster still comes from the flags.
pub fn nats_server_with_config(name: &str, routes: &[u16], config: &str) -> Option<NatsServer> {
    if !nats_server_installed() {
        return None;
    }
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "percore-nats-{}-{name}-{n}.conf",
        std::process::id()
    ));
    std::fs::write(&path, config).expect("write nats-server config");
    Some(nats_server_configured(
        NATS_SERVER,
        name,
        routes,
        Some(path),
    ))
}

/// A nats-server from `binary` (any version that takes these flags).
pub fn nats_server_from(binary: &str, name: &str, routes: &[u16]) -> NatsServer {
    nats_server_configured(binary, name, routes, None)
}

/// A nats-server from `binary`, with the config file `config` (removed
/// with it) when given.
fn nats_server_configured(
    binary: &str,
    name: &str,
    routes: &[u16],
    config: Option<PathBuf>,
) -> NatsServer {
    let routes: Vec<String> = routes
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect();
    let mut command = Command::new(binary);
    command
        .args(["-a", "127.0.0.1", "-p", "-1", "-n", name])
        .args(["--cluster", "nats://127.0.0.1:-1"])
        .args(["--cluster_name", "demo"]);
    if !routes.is_empty() {
        command.args(["--routes", &routes.join(",")]);
    }
    if let Some(config) = &config {
        command.arg("-c").arg(config);
    }
    spawn_nats_server(command, config)
}

/// Starts the reference nats-server `command` sets up: on the ports it
/// picks itself where the arguments say `-1` (a port chosen here and
/// released could be taken again before it binds), learnt from its ports
/// file (`--ports_file_dir`), which it writes once it listens: waiting
/// for the file is waiting for it to be ready. Its log goes to a file in
/// the same directory, shown if it never gets there.
pub fn spawn_nats_server(mut command: Command, config: Option<PathBuf>) -> NatsServer {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("percore-nats-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("nats-server ports dir");
    let log = dir.join("log");
    let log_file = std::fs::File::create(&log).expect("nats-server log");
    command
        .arg("--ports_file_dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let mut child = command.spawn().expect("spawn nats-server");
    let deadline = Instant::now() + WAIT;
    let ports = loop {
        let file = std::fs::read_dir(&dir)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|e| e == "ports"));
        // It may be read half written: parse until it is whole.
        let parsed = file
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        if let Some(ports) = parsed {
            break ports;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nats-server did not start ({exited:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let port_of =
        |key: &str| -> Option<u16> { ports[key][0].as_str()?.rsplit(':').next()?.parse().ok() };
    NatsServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port_of("nats").expect("client port"))),
        route_port: port_of("cluster").unwrap_or(0),
        config,
        dir: Some(dir),
    }
}
