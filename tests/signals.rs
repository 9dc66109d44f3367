//! Process-level behaviour: signals (SIGINT, SIGTERM, SIGUSR2 lame duck),
//! start-up failures and the version flag, as tests/reference/operations.md
//! §2 and tests/reference/protocol.md §12 describe nats-server 2.9.10.
//!
//! Every wait is bounded. The lame duck tests use the smallest schedule
//! nats-server accepts (`lame_duck_duration` 30 s, grace 1 s); like
//! nats-server, percore exits as soon as the last client is closed, so they
//! take a few seconds, and 30 s only if that early exit regresses.

mod support;

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{find, Broker, RawClient};

/// Bound on anything but the lame duck schedule.
const WAIT: Duration = Duration::from_secs(10);

/// Splits a stream of `MSG <subject> <sid> <n>\r\n<payload>\r\n` into
/// payloads, failing on anything else.
fn msg_payloads(mut bytes: &[u8], subject: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let eol = find(bytes, b"\r\n").expect("complete control line");
        let line = std::str::from_utf8(&bytes[..eol]).expect("ascii control line");
        bytes = &bytes[eol + 2..];
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 4, "unexpected line {line:?}");
        assert_eq!(fields[0], "MSG", "unexpected line {line:?}");
        assert_eq!(fields[1], subject);
        let n: usize = fields[3].parse().expect("size");
        assert!(bytes.len() >= n + 2, "truncated payload after {line:?}");
        out.push(bytes[..n].to_vec());
        assert_eq!(&bytes[n..n + 2], b"\r\n");
        bytes = &bytes[n + 2..];
    }
    out
}

/// Runs the percore binary to completion (bounded) and returns its output.
fn run_percore(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn percore");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("percore output"),
        Err(_) => {
            // SAFETY: kill(2) on the child this test spawned and still owns.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("percore {args:?} did not exit within {WAIT:?}");
        }
    }
}

/// A config file that is removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path = std::env::temp_dir().join(format!(
            "percore-signals-{}-{name}.conf",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write config");
        ConfigFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `signal` with one client connected; returns the exit code and how
/// long the client waited for its EOF.
fn shutdown_with(signal: i32) -> (Option<i32>, Duration, Broker) {
    let mut broker = Broker::start();
    let mut client = RawClient::connect_quiet(broker.addr);
    let sent = Instant::now();
    broker.signal(signal);
    let rest = client.read_to_close();
    let closed_after = sent.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "",
        "nothing but EOF before the close"
    );
    let code = broker.wait_exit(WAIT);
    (code, closed_after, broker)
}

#[test]
fn sigint_exits_zero_and_closes_clients() {
    let (code, closed_after, broker) = shutdown_with(libc::SIGINT);
    assert_eq!(code, Some(0), "SIGINT exit status");
    assert!(closed_after < WAIT, "client closed after {closed_after:?}");
    assert!(
        broker.wait_log("Server Exiting", WAIT).is_some(),
        "no \"Server Exiting\" log line"
    );
}

#[test]
fn sigterm_exits_one_and_closes_clients() {
    let (code, closed_after, broker) = shutdown_with(libc::SIGTERM);
    assert_eq!(code, Some(1), "SIGTERM exit status (nats-server exits 1)");
    assert!(closed_after < WAIT, "client closed after {closed_after:?}");
    assert!(
        broker.wait_log("Server Exiting", WAIT).is_some(),
        "no \"Server Exiting\" log line"
    );
}

/// SIGTERM closes clients at once, as nats-server does (within a
/// millisecond or two), not at the shards' next 100 ms housekeeping tick.
/// The `/varz` just before it was answered at a tick (before the doorbell),
/// so the signal came right after one and waited almost a whole period.
/// nats.py's cluster test reconnects a client while the server it left
/// still runs; on percore that window was 50 ms on average.
#[test]
fn sigterm_closes_clients_without_waiting_for_a_tick() {
    let mut broker = Broker::start_with(&["-m", "-1"], None);
    let mut client = RawClient::connect_quiet(broker.addr);
    assert!(client.ping_pong().is_empty());
    broker.monitor_json("/varz");
    let sent = Instant::now();
    broker.signal(libc::SIGTERM);
    let rest = client.read_to_close();
    let closed_after = sent.elapsed();
    assert_eq!(String::from_utf8_lossy(&rest), "");
    assert!(
        closed_after < Duration::from_millis(50),
        "client closed {closed_after:?} after SIGTERM"
    );
    assert_eq!(broker.wait_exit(WAIT), Some(1));
}

#[test]
fn sigterm_flushes_pending_messages_before_closing() {
    const COUNT: usize = 1000;
    let mut broker = Broker::start();
    let mut sub = RawClient::connect_quiet(broker.addr);
    let mut publisher = RawClient::connect_quiet(broker.addr);
    assert_ne!(sub.shard(2), publisher.shard(2), "clients on both shards");
    sub.send(b"SUB flush.test 1\r\n");
    assert!(sub.ping_pong().is_empty());

    let payload = |i: usize| format!("{i:06}-{}", "x".repeat(200));
    let mut batch = Vec::new();
    for i in 0..COUNT {
        let body = payload(i);
        batch.extend_from_slice(format!("PUB flush.test {}\r\n{body}\r\n", body.len()).as_bytes());
    }
    publisher.send(&batch);
    // After the PONG every message is in the subscriber's output, which
    // has not read a byte of it yet.
    assert!(publisher.ping_pong().is_empty());

    broker.signal(libc::SIGTERM);
    let bytes = sub.read_to_close();
    let payloads = msg_payloads(&bytes, "flush.test");
    assert_eq!(payloads.len(), COUNT, "messages delivered before the close");
    for (i, got) in payloads.iter().enumerate() {
        assert_eq!(String::from_utf8_lossy(got), payload(i), "message {i}");
    }
    assert_eq!(broker.wait_exit(WAIT), Some(1));
}

/// Connects a proto-1 async-nats client that reports lame duck events.
fn lame_duck_watcher(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> (async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = runtime.block_on(async {
        let options = async_nats::ConnectOptions::new().event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if matches!(event, async_nats::Event::LameDuckMode) {
                    let _ = tx.send(());
                }
            }
        });
        tokio::time::timeout(WAIT, options.connect(format!("nats://{addr}")))
            .await
            .expect("connect in time")
            .expect("connect")
    });
    (client, rx)
}

#[test]
fn sigusr2_lame_duck_informs_refuses_closes_and_exits_zero() {
    let mut broker = Broker::with_config(SHORT_LAME_DUCK);
    let addr = broker.addr;
    // Client ids 1..=5 alternate shards 0, 1, 0, 1, 0.
    let mut proto1_a = RawClient::connect_quiet(addr);
    let mut proto1_b = RawClient::connect_quiet(addr);
    assert_ne!(proto1_a.shard(2), proto1_b.shard(2));
    let mut silent = RawClient::connect(addr); // never sends CONNECT
    let mut proto0 = RawClient::connect(addr);
    proto0.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":0}\r\nPING\r\n");
    proto0.expect(b"PONG\r\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (watcher, mut ldm_events) = lame_duck_watcher(&runtime, addr);
    assert_eq!(watcher.server_info().client_id, 5);

    let signalled = Instant::now();
    broker.signal(libc::SIGUSR2);

    for client in [&mut proto1_a, &mut proto1_b] {
        let line = client.read_line();
        assert!(
            line.starts_with("INFO {") && line.ends_with("} \r\n"),
            "lame duck INFO line: {line:?}"
        );
        let json: serde_json::Value =
            serde_json::from_str(line["INFO ".len()..].trim_end()).expect("INFO json");
        assert_eq!(json["ldm"], serde_json::Value::Bool(true), "{line}");
    }
    let info_after = signalled.elapsed();
    runtime.block_on(async {
        tokio::time::timeout(WAIT, ldm_events.recv())
            .await
            .expect("async-nats reports lame duck mode in time")
            .expect("event channel open");
    });

    // The listener is gone: a new client is refused or cut off, never served.
    match TcpStream::connect_timeout(&addr.to_socket_addrs().unwrap().next().unwrap(), WAIT) {
        Err(_) => {}
        Ok(mut stream) => {
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = [0u8; 1024];
            match stream.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!(
                    "a connection made in lame duck mode was served: {:?}",
                    other.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
                ),
            }
        }
    }

    // SIGTERM is ignored while lame duck mode runs (the exit status stays 0).
    broker.signal(libc::SIGTERM);

    // Existing clients are closed after the 1 s grace period, spread at
    // most 1 s apart; the ones that cannot take async INFO never saw one.
    let rest_a = proto1_a.read_to_close();
    let rest_b = proto1_b.read_to_close();
    let silent_got = silent.read_to_close();
    let proto0_got = proto0.read_to_close();
    let all_closed_after = signalled.elapsed();
    assert_eq!(String::from_utf8_lossy(&rest_a), "");
    assert_eq!(String::from_utf8_lossy(&rest_b), "");
    assert_eq!(
        String::from_utf8_lossy(&silent_got),
        "",
        "a client that never sent CONNECT gets no async INFO"
    );
    assert_eq!(
        String::from_utf8_lossy(&proto0_got),
        "",
        "a protocol 0 client gets no async INFO"
    );
    assert!(
        all_closed_after < Duration::from_secs(15),
        "clients closed only after {all_closed_after:?}"
    );

    // nats-server shuts down right after closing the last client (grace 1 s
    // plus at most 1 s per further client here); the 30 s duration is only
    // an upper bound.
    let code = broker.wait_exit(Duration::from_secs(15).saturating_sub(signalled.elapsed()));
    let exited_after = signalled.elapsed();
    assert_eq!(code, Some(0), "lame duck exit status");
    for line in ["Entering lame duck mode", "Server Exiting"] {
        assert!(
            broker.wait_log(line, WAIT).is_some(),
            "no {line:?} log line"
        );
    }
    drop(watcher);
    eprintln!(
        "lame duck timings: INFO after {info_after:?}, clients closed after \
         {all_closed_after:?}, exit after {exited_after:?}"
    );
}

const SHORT_LAME_DUCK: &str = "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n";

/// nats-server 2.9.10 (`lameDuckMode` in server/server.go) calls
/// `Shutdown()` right after closing the last client: with a 1 s grace period
/// and two clients it exits about 1.5–2 s after SIGUSR2, not after the whole
/// `lame_duck_duration`.
#[test]
fn lame_duck_exits_once_the_last_client_is_closed() {
    let mut broker = Broker::with_config(SHORT_LAME_DUCK);
    let mut a = RawClient::connect_quiet(broker.addr);
    let mut b = RawClient::connect_quiet(broker.addr);
    let signalled = Instant::now();
    broker.signal(libc::SIGUSR2);
    assert!(a.read_line().contains("\"ldm\":true"));
    assert!(b.read_line().contains("\"ldm\":true"));
    a.read_to_close();
    b.read_to_close();
    let closed_after = signalled.elapsed();
    let code = broker.wait_exit(Duration::from_secs(10).saturating_sub(signalled.elapsed()));
    assert_eq!(
        code,
        Some(0),
        "no exit within 10 s of SIGUSR2 (clients closed after {closed_after:?})"
    );
}

/// tests/reference/operations.md §2: nats-server logs "Closing existing
/// clients" when the grace period ends.
#[test]
fn lame_duck_logs_closing_existing_clients() {
    let broker = Broker::with_config(SHORT_LAME_DUCK);
    let mut client = RawClient::connect_quiet(broker.addr);
    broker.signal(libc::SIGUSR2);
    assert!(client.read_line().contains("\"ldm\":true"));
    assert!(broker
        .wait_log("Entering lame duck mode, stop accepting new clients", WAIT)
        .is_some());
    assert!(
        broker.wait_log("Closing existing clients", WAIT).is_some(),
        "no \"Closing existing clients\" log line within {WAIT:?}"
    );
}

/// nats-server closes lame-duck clients one at a time, server-wide, waiting
/// a random interval in [si/2, si) between closes, with si =
/// min((duration - grace) / clients, 1 s): for two clients, at least 0.5 s
/// apart. Checked with half that margin.
#[test]
fn lame_duck_spreads_closes_across_shards() {
    let broker = Broker::with_config(SHORT_LAME_DUCK);
    let mut a = RawClient::connect_quiet(broker.addr);
    let mut b = RawClient::connect_quiet(broker.addr);
    assert_ne!(a.shard(2), b.shard(2));
    broker.signal(libc::SIGUSR2);
    assert!(a.read_line().contains("\"ldm\":true"));
    assert!(b.read_line().contains("\"ldm\":true"));
    let closed_at = |mut client: RawClient| {
        std::thread::spawn(move || {
            client.read_to_close();
            Instant::now()
        })
    };
    let (a, b) = (closed_at(a), closed_at(b));
    let (a, b) = (a.join().expect("reader a"), b.join().expect("reader b"));
    let gap = if a > b { a - b } else { b - a };
    assert!(
        gap >= Duration::from_millis(250),
        "two clients closed only {gap:?} apart"
    );
}

#[test]
fn second_broker_on_same_port_fails() {
    let broker = Broker::start();
    let port = broker.addr.port().to_string();
    let output = run_percore(&["-a", "127.0.0.1", "-p", &port, "--shards", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("Error listening on port"),
        "stderr: {stderr}"
    );
    // The first broker still serves.
    let mut client = RawClient::connect_quiet(broker.addr);
    assert!(client.ping_pong().is_empty());
}

/// A supervisor (or a client test suite) that kills percore with SIGKILL
/// and starts it again on the same port at once must get a running broker:
/// the killed process's io_uring gives the listening socket back a little
/// after the process is gone (it failed with "address already in use" in
/// nats.py's suite, which restarts the server for every test).
#[test]
fn restart_on_the_same_port_right_after_sigkill() {
    let first = Broker::start();
    let port = first.addr.port().to_string();
    let mut broker = first;
    for _ in 0..10 {
        let mut client = broker.raw();
        client.ping_pong();
        broker.signal(libc::SIGKILL);
        // Dropping the handle reaps the killed process; start the next one
        // at once.
        drop(broker);
        broker = Broker::start_with(&["-p", &port], None);
        assert_eq!(broker.addr.port().to_string(), port);
    }
}

/// Once percore has exited on SIGINT its client and route ports refuse
/// connections at once, as nats-server's do. nats.c's test suite stops the
/// server with SIGINT, starts the next one on the same ports and probes the
/// port until it accepts: percore's listener outlived the process (a pending
/// io_uring accept kept it open), the probe and the client after it were
/// queued on it and then reset ("recv error: 104" while reading INFO).
#[test]
fn ports_refuse_connections_once_the_process_has_exited() {
    for round in 0..5 {
        let mut broker = Broker::start_with(&["--cluster", "nats://127.0.0.1:-1"], None);
        let route = support::cluster::route_port(&broker);
        // As nats.c's tests: the client has gone before the server stops.
        let mut client = broker.raw();
        assert!(client.ping_pong().is_empty());
        drop(client);
        TcpStream::connect(("127.0.0.1", route)).expect("route port accepts while running");
        broker.signal(libc::SIGINT);
        assert_eq!(broker.wait_exit_promptly(WAIT), Some(0), "exit status");
        for (name, port) in [("client", broker.addr.port()), ("route", route)] {
            match TcpStream::connect(("127.0.0.1", port)) {
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{name} port"),
                Ok(_) => panic!("round {round}: {name} port {port} accepts after the exit"),
            }
        }
    }
}

#[test]
fn config_syntax_error_exits_one_with_position() {
    let config = ConfigFile::new("syntax", "# comment\nport: 4222\nmax_payload = }\n");
    let output = run_percore(&["-c", &config.path()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let position = format!("{}:3:15", config.path());
    assert!(stderr.contains(&position), "want {position} in: {stderr}");
    // nats-server's frame for syntax errors, which tools look for (nats.py's
    // nats-server package test checks for "Parse error").
    assert!(
        stderr.contains("Parse error on line 3: '"),
        "want nats-server's frame in: {stderr}"
    );
}

#[test]
fn a_bad_operator_jwt_stops_the_start() {
    let text = "port: -1\noperator: \"eyJ0eXAiOiJKV1QifQ\"\n";
    let config = ConfigFile::new("operator", text);
    let output = run_percore(&["-a", "127.0.0.1", "-p", "-1", "-c", &config.path()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error parsing operator JWT: expected 3 chunks"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Listening for client connections"),
        "must fail before listening: {stderr}"
    );
}

#[test]
fn version_flag_prints_one_line_and_exits_zero() {
    for flag in ["-v", "--version"] {
        let output = run_percore(&[flag]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{flag}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{flag}: {stdout:?}");
        // nats-server's words first, with the version INFO carries:
        // scripts and client test harnesses (nats.c's CI) read the
        // server's version from the first `v<version>` and pick their
        // test paths by it.
        assert!(
            lines[0].starts_with("nats-server: v2.9.10 (percore "),
            "{flag}: {stdout:?}"
        );
        assert_eq!(lines[0].matches(" v").count(), 1, "{flag}: {stdout:?}");
    }
}

/// `--signal <command>=<pid or pid file>` sends nats-server's signal for
/// the command and exits 0: `quit` stops the broker with exit 0.
#[test]
fn signal_flag_quit_through_a_pid_file() {
    let pid_file = std::env::temp_dir().join(format!("percore-signal-{}.pid", std::process::id()));
    let pid_path = pid_file.display().to_string();
    let mut broker = Broker::start_with(&["-P", &pid_path], None);
    let mut client = RawClient::connect_quiet(broker.addr);
    assert!(
        client.ping_pong().is_empty(),
        "pid file written before clients"
    );
    let output = run_percore(&["--signal", &format!("quit={pid_path}")]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(broker.wait_exit(WAIT), Some(0), "SIGINT: graceful, exit 0");
    let _ = std::fs::remove_file(&pid_file);
}

#[test]
fn signal_flag_ldm_puts_the_broker_in_lame_duck_mode() {
    let broker = Broker::start();
    let mut client = RawClient::connect_quiet(broker.addr);
    let output = run_percore(&["-sl", &format!("ldm={}", broker.pid())]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(broker.wait_log("Entering lame duck mode", WAIT).is_some());
    let info = client.read_line();
    assert!(info.contains("\"ldm\":true"), "{info}");
}

#[test]
fn signal_flag_errors_exit_one_with_nats_server_texts() {
    for (spec, text) in [
        ("quit=abc", "percore: invalid pid: abc\n"),
        ("bogus=1", "percore: unknown signal \"bogus\"\n"),
        ("quit=1=2", "percore: invalid signal parameters: [2]\n"),
    ] {
        let output = run_percore(&["--signal", spec]);
        assert_eq!(output.status.code(), Some(1), "{spec}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), text, "{spec}");
    }
}

/// SIGUSR1 (`--signal reopen`) reopens the log file by name, so that log
/// rotation that moves the file away gets a fresh one.
#[test]
fn reopen_starts_a_new_log_file_after_rotation() {
    let dir = std::env::temp_dir().join(format!("percore-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("percore.log");
    let rotated = dir.join("percore.log.1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-l",
            &log.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn percore");
    let wait_for = |path: &std::path::Path, needle: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not in {path:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(&log, "Server is ready");
    std::fs::rename(&log, &rotated).expect("rotate");
    let output = run_percore(&["--signal", &format!("reopen={}", child.id())]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let fresh = wait_for(&log, "File log re-opened");
    assert!(!fresh.contains("Server is ready"), "a new file: {fresh}");
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap_or_default()
        .contains("re-opened"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
