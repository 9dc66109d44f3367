//! Where log lines go and what traces show, as an operator sees them:
//! size-based rotation of the log file (`log_size_limit`), syslog (`-s`,
//! `-r`/`remote_syslog`, received here by a local UDP or Unix socket in
//! place of a syslog daemon), payload traces cut at `max_traced_msg_len`,
//! and the system account's own traffic traced with `-VV`/`trace_verbose`.
//! Texts and forms are nats-server 2.9.10's.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::cluster::{route_port, wait_interest, ClusterClient};
use support::system_accounts::{CONFIG as SYSTEM_CONFIG, SYS};
use support::{Broker, RawClient};

const WAIT: Duration = Duration::from_secs(10);

/// A fresh directory for one test's files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("percore-logging-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The backups of `log` (`<log>.<timestamp>`), oldest first.
    fn backups_of(&self, log: &Path) -> Vec<PathBuf> {
        let prefix = format!("{}.", log.file_name().unwrap_or_default().to_string_lossy());
        let mut backups: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .expect("list dir")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
            .collect();
        // The names carry the time to the nanosecond: sorted by name is
        // sorted by time.
        backups.sort();
        backups
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A percore process the test talks to through files or sockets (its
/// stderr is not read); killed when dropped.
struct Process(Child);

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_percore"))
            .args(["-a", "127.0.0.1", "--shards", "2"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn percore");
        Process(child)
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, signal);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it finds something (or fails the test).
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `<path>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn`, nats-server's backup name.
fn assert_backup_name(log: &Path, backup: &Path) {
    let name = backup.file_name().unwrap_or_default().to_string_lossy();
    let stamp = name
        .strip_prefix(&format!(
            "{}.",
            log.file_name().unwrap_or_default().to_string_lossy()
        ))
        .unwrap_or_else(|| panic!("{name} is not a backup of {log:?}"));
    let fields: Vec<&str> = stamp.split('.').collect();
    let widths: Vec<usize> = fields.iter().map(|f| f.len()).collect();
    assert_eq!(widths, [4, 2, 2, 2, 2, 2, 9], "{name}");
    assert!(
        fields.iter().all(|f| f.bytes().all(|b| b.is_ascii_digit())),
        "{name}"
    );
}

/// A client publishing `payload` on `subject` and waiting for the PONG
/// after it, so its traces are written.
fn publish(addr: SocketAddr, subject: &str, payload: &str) {
    let mut client = RawClient::connect(addr);
    client.send(
        format!(
            "CONNECT {{\"verbose\":false}}\r\nPUB {subject} {}\r\n{payload}\r\nPING\r\n",
            payload.len()
        )
        .as_bytes(),
    );
    client.expect(b"PONG\r\n");
}

/// `logfile_size_limit` in the file: once a line takes the log past the
/// limit, the file becomes `<log>.<timestamp>` (that line its last) and a
/// new one starts with nats-server's `Rotated log` line (CRLF-terminated,
/// as nats-server writes it); no line is lost.
#[test]
fn a_log_past_its_size_limit_moves_to_a_timestamped_backup() {
    const LIMIT: usize = 200;
    let dir = TempDir::new("rotate");
    let log = dir.path("percore.log");
    let config = dir.path("percore.conf");
    std::fs::write(
        &config,
        format!(
            "logfile: \"{}\"\nlogfile_size_limit: {LIMIT}\ndebug: true\ntrace: true\n",
            log.display()
        ),
    )
    .expect("config");
    let port = support::cluster::free_port();
    let process = Process::spawn(&["-p", &port.to_string(), "-c", &config.display().to_string()]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Start-up lines alone are well past the limit, twice.
    let backups = wait_for("two backups and a ready server", || {
        let backups = dir.backups_of(&log);
        let all: String = backups.iter().map(|b| read(b)).collect();
        (backups.len() >= 2 && (all + &read(&log)).contains("Server is ready")).then_some(backups)
    });
    for (i, backup) in backups.iter().enumerate() {
        assert_backup_name(&log, backup);
        let text = read(backup);
        // Rotation happens on the line that crosses the limit: at most one
        // line past it.
        let last_line = text
            .trim_end()
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .len()
            + 1;
        assert!(
            text.len() > LIMIT && text.len() <= LIMIT + last_line,
            "{backup:?}: {} bytes",
            text.len()
        );
        // Each later file starts by naming the one before it.
        if i > 0 {
            let previous = backups[i - 1].display().to_string();
            // split, not lines(): lines() would drop the CR.
            let first = text.split('\n').next().unwrap_or_default();
            assert!(
                first.ends_with(&format!(
                    "[INF] Rotated log, backup saved as \"{previous}\"\r"
                )),
                "{first:?}"
            );
        }
    }
    // Traffic keeps rotating the file; nothing is lost on the way.
    for i in 0..10 {
        publish(addr, "rotate.me", &format!("payload-{i}"));
    }
    let everything = wait_for("the last payload traced", || {
        let mut all: String = dir.backups_of(&log).iter().map(|b| read(b)).collect();
        all.push_str(&read(&log));
        all.contains("MSG_PAYLOAD: [\"payload-9\"]").then_some(all)
    });
    for i in 0..10 {
        assert!(everything.contains(&format!("MSG_PAYLOAD: [\"payload-{i}\"]")));
    }
    let current = read(&log);
    let last = dir.backups_of(&log).pop().expect("a backup");
    assert!(
        current.starts_with(&format!("[{}] ", process.0.id()))
            && current
                .split('\n')
                .next()
                .is_some_and(|l| l.ends_with(&format!(
                    "[INF] Rotated log, backup saved as \"{}\"\r",
                    last.display()
                ))),
        "{current}"
    );
}

/// `--log_size_limit` with a log file already past it at start: nats-server
/// says `Rotating logfile...`, which rotates it (the old lines go to the
/// backup). SIGUSR1 then reopens the file by name and rotation goes on.
#[test]
fn a_log_already_past_the_limit_is_rotated_at_start_and_after_a_reopen() {
    let dir = TempDir::new("at-start");
    let log = dir.path("percore.log");
    std::fs::write(&log, "old line\n".repeat(1000)).expect("old log");
    let process = Process::spawn(&[
        "-p",
        "-1",
        "-l",
        &log.display().to_string(),
        "--log_size_limit",
        "5000",
    ]);
    let backup = wait_for("the first backup", || dir.backups_of(&log).pop());
    let old = wait_for("the backup's last line", || {
        let text = read(&backup);
        text.ends_with('\n').then_some(text)
    });
    assert!(old.starts_with("old line\n"), "{old}");
    assert!(old.ends_with("[INF] Rotating logfile...\n"), "{old}");
    wait_for("a ready server in the new file", || {
        read(&log).contains("Server is ready").then_some(())
    });
    assert!(read(&log).starts_with(&format!("[{}] ", process.0.id())));
    assert!(read(&log).contains(&format!(
        "[INF] Rotated log, backup saved as \"{}\"\r\n",
        backup.display()
    )));

    // logrotate moves the file away and signals: a new file, under the
    // limit, so no rotation.
    let moved = dir.path("moved.log");
    std::fs::rename(&log, &moved).expect("move the log");
    process.signal(libc::SIGUSR1);
    let fresh = wait_for("the reopened file", || {
        let text = read(&log);
        text.contains("File log re-opened").then_some(text)
    });
    assert!(!fresh.contains("Rotat"), "{fresh}");
    assert_eq!(dir.backups_of(&log).len(), 1);
}

/// A limit without a log file changes nothing (nats-server sets it on the
/// file logger only); a reload cannot change it, as in nats-server.
#[test]
fn a_size_limit_without_a_log_file_is_accepted_and_not_reloadable() {
    let broker = Broker::with_config("log_size_limit: 1KB\n");
    publish(broker.addr, "x", "y");
    let line = broker.reload_refused("log_size_limit: 2KB\n", WAIT);
    assert!(
        line.ends_with("config reload not supported for log_size_limit: old=1024, new=2048"),
        "{line}"
    );
}

/// Lines a syslog receiver got, one per datagram, until one contains
/// `needle`.
fn udp_lines_until(socket: &UdpSocket, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        let n = socket.recv(&mut buffer).expect("a syslog datagram in time");
        let line = String::from_utf8_lossy(&buffer[..n]).into_owned();
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return lines;
        }
    }
}

/// `-r udp://host:port`: each line one datagram,
/// `<PRI>YYYY-MM-DDThh:mm:ssZ HOST percore[PID]: TEXT\n`, the priority the
/// bare severity (nats-server's remote writer has facility 0): 5 for
/// info and trace, 7 for debug.
#[test]
fn remote_syslog_over_udp_gets_nats_server_lines() {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind syslog receiver");
    receiver.set_read_timeout(Some(WAIT)).expect("timeout");
    let url = format!("udp://{}", receiver.local_addr().expect("addr"));
    let process = Process::spawn(&["-p", "-1", "-r", &url, "-DV"]);
    let started = udp_lines_until(&receiver, "Listening for client connections on ");
    let listening = started.last().expect("a line");
    let addr: SocketAddr = listening
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    let pid = process.0.id();
    assert!(listening.starts_with("<5>"), "{listening:?}");
    for line in &started {
        let rest = line
            .strip_prefix("<5>")
            .or_else(|| line.strip_prefix("<7>"))
            .unwrap_or_else(|| panic!("{line:?}"));
        let (time, rest) = rest.split_once(' ').expect("time");
        assert_eq!(time.len(), "2026-12-07T08:38:50Z".len(), "{line:?}");
        assert!(
            time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{line:?}"
        );
        let (host, rest) = rest.split_once(' ').expect("host");
        assert!(!host.is_empty(), "{line:?}");
        assert!(rest.starts_with(&format!("percore[{pid}]: ")), "{line:?}");
        assert!(line.ends_with('\n') && !line.contains("[INF]"), "{line:?}");
    }
    publish(addr, "over.syslog", "hi");
    let traffic = udp_lines_until(&receiver, "MSG_PAYLOAD");
    let created = traffic
        .iter()
        .find(|l| l.contains("Client connection created"))
        .expect("debug line");
    assert!(created.starts_with("<7>"), "{created:?}");
    let payload = traffic.last().expect("trace");
    assert!(payload.starts_with("<5>"), "{payload:?}");
    assert!(
        payload.ends_with(" - <<- MSG_PAYLOAD: [\"hi\"]\n"),
        "{payload:?}"
    );
}

/// `remote_syslog` is reloadable (as in nats-server): after SIGHUP the
/// lines go to the new receiver, starting with the reload's own.
#[test]
fn a_reload_moves_the_lines_to_the_new_syslog() {
    let first = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let second = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for receiver in [&first, &second] {
        receiver.set_read_timeout(Some(WAIT)).expect("timeout");
    }
    let config = |receiver: &UdpSocket| {
        format!(
            "remote_syslog: \"udp://{}\"\n",
            receiver.local_addr().expect("addr")
        )
    };
    let dir = TempDir::new("syslog-reload");
    let path = dir.path("percore.conf");
    std::fs::write(&path, config(&first)).expect("config");
    let process = Process::spawn(&["-p", "-1", "-c", &path.display().to_string()]);
    udp_lines_until(&first, "Server is ready");
    std::fs::write(&path, config(&second)).expect("rewrite");
    process.signal(libc::SIGHUP);
    let lines = udp_lines_until(&second, "Reloaded server configuration");
    assert!(lines[0].starts_with("<5>"), "{lines:?}");
}

/// `remote_syslog: "unix:///path"` (a stream socket) gets the local form,
/// without the host: `<PRI>Mmm dd hh:mm:ss percore[PID]: TEXT\n`.
#[test]
fn remote_syslog_on_a_unix_socket_gets_the_local_form() {
    let dir = TempDir::new("unix-syslog");
    let socket = dir.path("syslog.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let config = dir.path("percore.conf");
    std::fs::write(
        &config,
        format!("remote_syslog: \"unix://{}\"\n", socket.display()),
    )
    .expect("config");
    let process = Process::spawn(&["-p", "-1", "-c", &config.display().to_string()]);
    listener.set_nonblocking(true).expect("nonblocking");
    let stream = wait_for("percore to connect", || {
        listener.accept().ok().map(|(s, _)| s)
    });
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut lines = BufReader::new(stream).lines();
    let ready = loop {
        let line = lines.next().expect("a line").expect("read");
        if line.contains("Server is ready") {
            break line;
        }
    };
    let rest = ready
        .strip_prefix("<5>")
        .unwrap_or_else(|| panic!("{ready:?}"));
    // "Dec  7 08:38:50 " then the tag.
    let (stamp, rest) = rest.split_at("Dec  7 08:38:50 ".len());
    assert!(
        stamp.as_bytes()[3] == b' ' && stamp.ends_with(' '),
        "{ready:?}"
    );
    assert!(
        rest.starts_with(&format!("percore[{}]: Server is ready", process.0.id())),
        "{ready:?}"
    );
}

/// The log file wins over both syslogs, as in nats-server.
#[test]
fn a_log_file_wins_over_syslog() {
    let dir = TempDir::new("file-wins");
    let log = dir.path("percore.log");
    let _process = Process::spawn(&[
        "-p",
        "-1",
        "-s",
        "-r",
        "udp://127.0.0.1:9",
        "-l",
        &log.display().to_string(),
    ]);
    wait_for("a ready server in the log file", || {
        read(&log).contains("Server is ready").then_some(())
    });
}

/// `-s` dials the local syslog daemon (`/dev/log`); where there is none,
/// the start fails with nats-server's message.
#[test]
fn local_syslog_needs_a_daemon() {
    let has_daemon = ["/dev/log", "/var/run/syslog"]
        .iter()
        .any(|p| Path::new(p).exists());
    let output = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-s", "-t"])
        .output()
        .expect("run percore");
    // -t needs a config file: the flag itself is accepted.
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must specify [-c, --config]"),
        "{output:?}"
    );
    if has_daemon {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_for("percore to exit", || child.try_wait().ok().flatten());
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr,
        "percore: error connecting to syslog: \"Unix syslog delivery error\"\n"
    );
}

/// A bad `remote_syslog` URL passes `-t` (as nats-server's) and stops the
/// start with nats-server's message.
#[test]
fn a_bad_remote_syslog_network_stops_the_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-r", "bogus://x"])
        .stdin(Stdio::null())
        .output()
        .expect("run percore");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "percore: error invalid network type: \"bogus\"\n"
    );
}

/// `--max_traced_msg_len`: a longer payload shows its first bytes and
/// `...`, as nats-server traces it; a shorter one shows whole.
#[test]
fn traced_payloads_are_cut_at_max_traced_msg_len() {
    let broker = Broker::start_with(&["-V", "--max_traced_msg_len", "5"], None);
    publish(broker.addr, "cut", "hello world");
    let line = broker.wait_log("MSG_PAYLOAD", WAIT).expect("payload trace");
    assert!(
        line.ends_with(" - <<- MSG_PAYLOAD: [\"hello...\"]"),
        "{line}"
    );
    publish(broker.addr, "cut", "short");
    let line = broker.wait_log("MSG_PAYLOAD", WAIT).expect("payload trace");
    assert!(line.ends_with(" - <<- MSG_PAYLOAD: [\"short\"]"), "{line}");
}

/// A message that comes over a route is traced with its payload too
/// (`rid:` lines), cut the same way.
#[test]
fn routed_payloads_are_traced_and_cut() {
    let cluster = ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", "demo"];
    let mut a_args = cluster.to_vec();
    a_args.extend(["-V", "--max_traced_msg_len", "4"]);
    let a = Broker::start_with(&a_args, None);
    let routes = format!("nats-route://127.0.0.1:{}", route_port(&a));
    let mut b_args = cluster.to_vec();
    b_args.extend(["--routes", &routes]);
    let b = Broker::start_with(&b_args, None);
    let mut subscriber = ClusterClient::connect(a.addr);
    let mut publisher = ClusterClient::connect(b.addr);
    subscriber.send(b"SUB routed 1\r\n");
    wait_interest(&mut subscriber, &mut publisher, "probe.routed");
    publisher.send(b"PUB routed 7\r\nrouted!\r\n");
    publisher.ping();
    assert!(
        subscriber.msg(WAIT).is_some(),
        "the message crossed the route"
    );
    let line = a
        .wait_log("MSG_PAYLOAD: [\"rout...\"]", WAIT)
        .expect("routed payload traced");
    assert!(line.contains(" - rid:"), "{line}");
}

/// `max_traced_msg_len` in the file, changed by a reload (nats-server
/// reloads it).
#[test]
fn max_traced_msg_len_is_reloaded() {
    let broker = Broker::start_with(&["-V"], Some("max_traced_msg_len: 2\n"));
    publish(broker.addr, "cut", "abc");
    let line = broker.wait_log("MSG_PAYLOAD", WAIT).expect("payload trace");
    assert!(line.ends_with("MSG_PAYLOAD: [\"ab...\"]"), "{line}");
    let path = broker.config_path().expect("config").to_path_buf();
    std::fs::write(&path, "max_traced_msg_len: 0\n").expect("rewrite");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reloaded");
    publish(broker.addr, "cut", "abc");
    let line = broker.wait_log("MSG_PAYLOAD", WAIT).expect("payload trace");
    assert!(line.ends_with("MSG_PAYLOAD: [\"abc\"]"), "{line}");
}

/// A system user's `$SYS.REQ.SERVER.PING`, answered; then a marker PUB
/// whose trace follows every trace of the answer.
fn ping_the_server_then_mark(broker: &Broker, marker: &str) -> Vec<String> {
    let mut client = RawClient::connect(broker.addr);
    client.send(
        format!(
            "CONNECT {{\"verbose\":false{SYS}}}\r\nSUB _INBOX.answer 1\r\n\
             PUB $SYS.REQ.SERVER.PING _INBOX.answer 0\r\n\r\n"
        )
        .as_bytes(),
    );
    let (header, _) = client.read_msg();
    assert_eq!(header[1], "_INBOX.answer", "{header:?}");
    client.send(format!("PUB {marker} 0\r\n\r\nPING\r\n").as_bytes());
    client.expect(b"PONG\r\n");
    broker
        .log_until(&format!("<<- [PUB {marker} 0]"), WAIT)
        .expect("marker traced")
}

/// `-VV`: the server's own publishes on the system account are traced as
/// nats-server's system client traces them; `-V` alone leaves them out.
#[test]
fn verbose_tracing_shows_the_system_accounts_own_messages() {
    let broker = Broker::start_with(&["-VV"], Some(SYSTEM_CONFIG));
    let lines = ping_the_server_then_mark(&broker, "marker");
    let publish = lines
        .iter()
        .position(|l| l.contains("[TRC] SYSTEM - <<- [PUB _INBOX.answer  "))
        .unwrap_or_else(|| panic!("no system PUB traced: {lines:#?}"));
    assert!(
        lines[publish + 1].contains("[TRC] SYSTEM - <<- MSG_PAYLOAD: [\"{"),
        "{}",
        lines[publish + 1]
    );

    let broker = Broker::start_with(&["-V"], Some(SYSTEM_CONFIG));
    let lines = ping_the_server_then_mark(&broker, "marker");
    assert!(!lines.iter().any(|l| l.contains("SYSTEM - ")), "{lines:#?}");
}

/// `trace_verbose` in the file, turned on by a reload.
#[test]
fn trace_verbose_is_reloaded() {
    let config = format!("{SYSTEM_CONFIG}\ntrace: true\n");
    let broker = Broker::start_with(&[], Some(&config));
    let lines = ping_the_server_then_mark(&broker, "before");
    assert!(!lines.iter().any(|l| l.contains("SYSTEM - ")), "{lines:#?}");
    let path = broker.config_path().expect("config").to_path_buf();
    std::fs::write(&path, format!("{SYSTEM_CONFIG}\ntrace_verbose: true\n")).expect("rewrite");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reloaded");
    let lines = ping_the_server_then_mark(&broker, "after");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SYSTEM - <<- [PUB _INBOX.answer  ")),
        "{lines:#?}"
    );
}
