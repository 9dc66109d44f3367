//! Test support: run the real `percore` binary on 127.0.0.1 with an
//! ephemeral port (`-p -1`, as nats-server spells it) and at least two shards, and talk to it with raw sockets.
//!
//! Synchronisation is by PING/PONG round trips, never by sleeping: once a
//! client has its PONG, the server has processed everything it sent before.

#![allow(dead_code)]

pub mod cluster;
pub mod interest;
pub mod server_pings;
pub mod system_accounts;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use server_pings::ServerPings;

/// Every read in tests gives up after this long, so a broken server fails
/// the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
    pub shards: usize,
    /// The monitoring listener, when started with `-m` (or `-ms`).
    pub monitor: Option<SocketAddr>,
    log: mpsc::Receiver<String>,
    /// The log lines read while waiting for the server to be ready.
    pub startup_log: Vec<String>,
    _config: Option<tempfile_path::TempPath>,
}

mod tempfile_path {
    use std::path::PathBuf;

    /// A file removed when dropped.
    pub struct TempPath(pub PathBuf);

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Broker {
    /// Two shards, unpinned, default options.
    pub fn start() -> Broker {
        Broker::start_with(&[], None)
    }

    /// With a config file holding `config` (NATS conf syntax).
    pub fn with_config(config: &str) -> Broker {
        Broker::start_with(&[], Some(config))
    }

    pub fn start_with(extra_args: &[&str], config: Option<&str>) -> Broker {
        Broker::start_limited(extra_args, config, None)
    }

    /// Like [`Broker::start_with`], with `RLIMIT_NOFILE` set to `nofile`
    /// (soft, hard) in the child before it runs, so that a test can make it
    /// run out of descriptors.
    pub fn start_limited(
        extra_args: &[&str],
        config: Option<&str>,
        nofile: Option<(u64, u64)>,
    ) -> Broker {
        let shards = 2;
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            "-1".into(),
            "--shards".into(),
            shards.to_string(),
        ];
        let config = config.map(|text| {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path: PathBuf =
                std::env::temp_dir().join(format!("percore-test-{}-{n}.conf", std::process::id()));
            std::fs::write(&path, text).expect("write config");
            args.push("-c".into());
            args.push(path.display().to_string());
            tempfile_path::TempPath(path)
        });
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_percore"));
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((soft, hard)) = nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child, between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn percore");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut monitor = None;
        let mut startup_log = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("percore did not start (args {args:?})"));
            startup_log.push(line.clone());
            // "Starting http monitor on ..." or "Starting https monitor on ...".
            if let Some(rest) = line
                .split("Starting http monitor on ")
                .nth(1)
                .or_else(|| line.split("Starting https monitor on ").nth(1))
            {
                monitor = Some(rest.trim().parse().expect("monitor address"));
            }
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                break rest.trim().parse().expect("listen address");
            }
        };
        Broker {
            child,
            addr,
            shards,
            monitor,
            log: rx,
            startup_log,
            _config: config,
        }
    }

    /// The config file the broker was started with (rewrite it, then
    /// SIGHUP, to test a reload).
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self._config.as_ref().map(|c| c.0.as_path())
    }

    /// Rewrites the config file with `config`, sends SIGHUP, and returns
    /// the log line saying the reload failed (panics if none comes within
    /// `within`).
    pub fn reload_refused(&self, config: &str, within: Duration) -> String {
        let path = self
            .config_path()
            .expect("broker started with a config file");
        std::fs::write(path, config).expect("rewrite config");
        self.signal(libc::SIGHUP);
        self.wait_log("Failed to reload server configuration", within)
            .expect("the reload is refused")
    }

    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the broker process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Like [`Broker::wait_exit`], but returns within microseconds of the
    /// exit (a blocking `waitpid`, not polling), for tests about what a
    /// client finds right after the process is gone, as a supervisor or a
    /// test suite that restarts the server does. Kills the process and
    /// returns `None` if it has not exited within `within`.
    pub fn wait_exit_promptly(&mut self, within: Duration) -> Option<i32> {
        let pid = self.child.id() as i32;
        let (done, watched) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if watched.recv_timeout(within).is_err() {
                // SAFETY: kill(2) on our child, which is not reaped yet (the
                // waiter below reaps it only after this kill has it exit).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                return true;
            }
            false
        });
        let status = self.child.wait().ok();
        let _ = done.send(());
        let killed = watchdog.join().unwrap_or(true);
        if killed {
            None
        } else {
            status.and_then(|s| s.code())
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }

    /// Every log line up to and including the first that contains
    /// `needle`, or `None` if it does not come within `within`.
    pub fn log_until(&self, needle: &str, within: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(needle);
            lines.push(line);
            if found {
                return Some(lines);
            }
        }
        None
    }
}

impl Broker {
    /// One GET of a monitoring path (started with `-m -1`), as JSON.
    pub fn monitor_json(&self, path: &str) -> serde_json::Value {
        let addr = self.monitor.expect("broker started with -m");
        let mut stream = TcpStream::connect(addr).expect("connect to monitor");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("response");
        let (_, body) = raw.split_once("\r\n\r\n").expect("header end");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }

    /// The `/connz?state=closed` entry of `cid`, polled until it is there
    /// (a close is recorded when the connection's tasks end, just after the
    /// socket closed).
    pub fn wait_closed(&self, cid: u64) -> serde_json::Value {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let closed = self.monitor_json("/connz?state=closed&limit=100000");
            if let Some(entry) = closed["connections"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["cid"] == cid))
            {
                return entry.clone();
            }
            assert!(
                Instant::now() < deadline,
                "cid {cid} never listed as closed"
            );
        }
    }

    /// The closed reason of `cid` in `/connz?state=closed`.
    pub fn closed_reason(&self, cid: u64) -> String {
        self.wait_closed(cid)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client speaking raw protocol bytes.
///
/// The server's keepalive PINGs are answered and hidden from the test
/// (see [`server_pings`]) unless [`RawClient::keep_server_pings`] says
/// otherwise; bytes read from `stream` directly bypass that.
pub struct RawClient {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed by an expectation.
    pending: Vec<u8>,
    /// The INFO line the server sent on accept.
    pub info: String,
    pings: ServerPings,
}

impl RawClient {
    /// Connects and reads the INFO line.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut client = RawClient {
            stream,
            pending: Vec::new(),
            info: String::new(),
            pings: ServerPings::default(),
        };
        client.info = client.read_line();
        assert!(
            client.info.starts_with("INFO {"),
            "first line: {}",
            client.info
        );
        client
    }

    /// Connects, reads INFO and sends a quiet CONNECT (no +OK), then
    /// completes a PING/PONG handshake.
    pub fn connect_quiet(addr: SocketAddr) -> RawClient {
        let mut client = RawClient::connect(addr);
        client.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}\r\nPING\r\n");
        client.expect(b"PONG\r\n");
        client
    }

    /// From now on the server's keepalive PINGs reach the test, which
    /// answers them itself (or not): for the tests of keepalive.
    pub fn keep_server_pings(&mut self) {
        self.pings.keep(true, &mut self.pending);
    }

    /// Back to the default: server PINGs are answered and hidden.
    pub fn answer_server_pings(&mut self) {
        self.pings.keep(false, &mut self.pending);
    }

    /// The INFO JSON as a value.
    pub fn info_json(&self) -> serde_json::Value {
        let json = self.info.trim_start_matches("INFO ").trim_end();
        serde_json::from_str(json).expect("INFO json")
    }

    pub fn client_id(&self) -> u64 {
        self.info_json()["client_id"].as_u64().expect("client_id")
    }

    /// The shard this client lives on (placement is round-robin by client id).
    pub fn shard(&self, shards: usize) -> usize {
        ((self.client_id() - 1) % shards as u64) as usize
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.pings.sent(bytes);
        self.pings.answer(&mut self.stream);
    }

    /// One read into `pending` (through the PING filter); the number of
    /// bytes read from the socket, 0 at EOF.
    fn fill(&mut self) -> usize {
        match self.read_some() {
            Ok(n) => n,
            Err(e) => panic!(
                "read failed (pending {:?}): {e}",
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    fn read_some(&mut self) -> std::io::Result<usize> {
        let mut buf = [0u8; 65536];
        let n = self.stream.read(&mut buf)?;
        if n == 0 {
            self.pings.closed(&mut self.pending);
        } else {
            self.pings.received(&buf[..n], &mut self.pending);
            self.pings.answer(&mut self.stream);
        }
        Ok(n)
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            if self.fill() == 0 {
                panic!(
                    "closed after {} of {n} bytes: {:?}",
                    self.pending.len(),
                    String::from_utf8_lossy(&self.pending)
                );
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads exactly `expected.len()` bytes and asserts they equal `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        while self.pending.len() < expected.len() {
            if self.fill() == 0 {
                break;
            }
        }
        let n = expected.len().min(self.pending.len());
        let got: Vec<u8> = self.pending.drain(..n).collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Reads one line including its CRLF.
    pub fn read_line(&mut self) -> String {
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a full line: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
            }
        }
    }

    /// The next message: its header line's fields (`MSG subject sid
    /// [reply] size`, or HMSG's) and its payload (without the CRLF).
    pub fn read_msg(&mut self) -> (Vec<String>, Vec<u8>) {
        let line = self.read_line();
        let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        assert!(
            matches!(fields.first().map(String::as_str), Some("MSG" | "HMSG")),
            "a message, got {line:?}"
        );
        let size: usize = fields
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a size in {line:?}"));
        let mut payload = self.read_exact(size + 2);
        assert_eq!(&payload[size..], b"\r\n", "after the payload of {line:?}");
        payload.truncate(size);
        (fields, payload)
    }

    /// Sends PING and returns everything received before the PONG.
    pub fn ping_pong(&mut self) -> Vec<u8> {
        self.send(b"PING\r\n");
        self.read_until_pong()
    }

    /// Returns everything received before the next `PONG\r\n` (consumed).
    pub fn read_until_pong(&mut self) -> Vec<u8> {
        loop {
            if let Some(pos) = find(&self.pending, b"PONG\r\n") {
                let before: Vec<u8> = self.pending.drain(..pos).collect();
                self.pending.drain(..6);
                return before;
            }
            if self.fill() == 0 {
                panic!(
                    "closed before PONG: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
            }
        }
    }

    /// Everything the server sends until it closes the connection (EOF
    /// or reset), with what was read before and not yet consumed.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        loop {
            match self.read_some() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.pings.closed(&mut self.pending);
                    break;
                }
                Err(e) => panic!(
                    "expected the server to close the connection, got {e} after {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
            }
        }
        std::mem::take(&mut self.pending)
    }

    /// Asserts the server closes the connection, after sending exactly `last` (if anything).
    pub fn expect_closed_after(&mut self, last: &[u8]) {
        let got = self.read_to_close();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(last));
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` then PING and asserts the output before the PONG is
/// exactly `expected`.
pub fn session(client: &mut RawClient, bytes: &[u8], expected: &[u8]) {
    client.send(bytes);
    client.send(b"PING\r\n");
    let got = client.read_until_pong();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "session {:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// A quiet client still works: SUB, PUB to itself, PING round trip gets its MSG.
pub fn assert_alive(client: &mut RawClient) {
    session(
        client,
        b"SUB alive.check 4242\r\nPUB alive.check 2\r\nok\r\nUNSUB 4242\r\n",
        b"MSG alive.check 4242 2\r\nok\r\n",
    );
}

/// Opens raw clients until one lands on `shard`; the others are dropped.
pub fn client_on_shard(broker: &Broker, shard: usize) -> RawClient {
    for _ in 0..broker.shards * 2 {
        let client = RawClient::connect_quiet(broker.addr);
        if client.shard(broker.shards) == shard {
            return client;
        }
    }
    panic!("no client landed on shard {shard}");
}

/// One async-nats client per shard of `broker` (connection k lands on shard
/// (k-1) mod shards), each connected with a fresh `options()`. Panics when a
/// connection is refused or not made within [`IO_TIMEOUT`], or when the
/// clients did not land one on each shard.
pub async fn one_client_per_shard(
    broker: &Broker,
    options: impl Fn() -> async_nats::ConnectOptions,
) -> Vec<async_nats::Client> {
    let mut clients = Vec::new();
    for _ in 0..broker.shards {
        let client = tokio::time::timeout(
            IO_TIMEOUT,
            options().connect(format!("nats://{}", broker.addr)),
        )
        .await
        .expect("connect in time")
        .expect("connection accepted");
        clients.push(client);
    }
    let mut shards: Vec<usize> = clients
        .iter()
        .map(|c| ((c.server_info().client_id - 1) % broker.shards as u64) as usize)
        .collect();
    shards.sort_unstable();
    let expected: Vec<usize> = (0..broker.shards).collect();
    assert_eq!(shards, expected, "one client on each shard");
    clients
}

/// `percore -t -c <config>` on a temporary file holding `text`: the exit
/// code and stderr. Each call has a file of its own (tests run in
/// parallel); `tag` names the test file in it.
pub fn check_config(tag: &str, text: &str) -> (Option<i32>, String) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "percore-{tag}-check-{}-{call}.conf",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-t", "-c"])
        .arg(&path)
        .output()
        .expect("run percore -t");
    let _ = std::fs::remove_file(&path);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
