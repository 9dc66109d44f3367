//! Logging to syslog as nats-server does it (Go's `log/syslog` writer):
//!
//! - `-s`/`syslog`: the local daemon's socket (`/dev/log`, then
//!   `/var/run/syslog`, `/var/run/log`; datagram, else stream), facility
//!   `daemon`, lines `<PRI>Mmm dd hh:mm:ss TAG[PID]: TEXT\n`;
//! - `-r`/`remote_syslog <url>`: `udp://host:port`, `tcp://host:port` or
//!   `unix:///path` (a stream socket), facility `kern` (nats-server dials
//!   with the priority `LOG_DEBUG`, whose facility bits are zero), lines
//!   `<PRI>YYYY-MM-DDThh:mm:ssZ HOST TAG[PID]: TEXT\n`; a `unix` URL gets
//!   the local form.
//!
//! The severity follows the level: info and trace are `notice`, then
//! `warning`, `err`, `crit` (fatal), `debug`. TAG is the program's file
//! name. Times are UTC, like our other log lines. A failed write dials
//! again once and retries, as Go's writer; a line that still fails is lost
//! (there is nowhere else to log it).
//!
//! std's sockets, like the log file's std I/O: logging is off the hot path.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::SystemTime;

use percore_core::calendar::civil;
use percore_core::go_quote::go_quote;
use percore_core::log::Level;

/// Where Go's `log/syslog` looks for the local daemon, in order.
const LOCAL_PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];
/// `LOG_DAEMON`.
const FACILITY_DAEMON: u8 = 3 << 3;
/// `LOG_KERN`: what nats-server's remote writer ends up with.
const FACILITY_KERN: u8 = 0;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Where to dial, again after a failed write.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Local,
    Udp(String),
    Tcp(String),
    Unix(String),
}

enum Socket {
    Datagram(UnixDatagram),
    Stream(UnixStream),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

pub struct Syslog {
    target: Target,
    socket: Option<Socket>,
    facility: u8,
    tag: String,
    pid: u32,
    /// For the network form: this host's name, or the socket's local
    /// address when it has none (as Go's writer).
    hostname: String,
}

impl Syslog {
    /// `-s`: the local syslog daemon.
    pub fn local() -> Result<Syslog, String> {
        Syslog::dial(Target::Local, FACILITY_DAEMON)
    }

    /// `-r <url>`. The errors are nats-server's fatal messages.
    pub fn remote(url: &str) -> Result<Syslog, String> {
        Syslog::dial(parse_url(url)?, FACILITY_KERN)
    }

    fn dial(target: Target, facility: u8) -> Result<Syslog, String> {
        let socket = connect(&target)
            .map_err(|e| format!("error connecting to syslog: {}", go_quote(e.to_string())))?;
        let hostname = match std::fs::read_to_string("/proc/sys/kernel/hostname") {
            Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
            _ => local_address(&socket),
        };
        Ok(Syslog {
            target,
            socket: Some(socket),
            facility,
            tag: program_name(),
            pid: std::process::id(),
            hostname,
        })
    }

    pub fn write(&mut self, level: Level, text: &str) {
        let line = self.line(level, text, SystemTime::now());
        if self.send(line.as_bytes()).is_ok() {
            return;
        }
        self.socket = connect(&self.target).ok();
        let _ = self.send(line.as_bytes());
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let written = match &mut self.socket {
            Some(Socket::Datagram(s)) => s.send(bytes),
            Some(Socket::Udp(s)) => s.send(bytes),
            Some(Socket::Stream(s)) => s.write_all(bytes).map(|()| bytes.len()),
            Some(Socket::Tcp(s)) => s.write_all(bytes).map(|()| bytes.len()),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        };
        written.map(|_| ())
    }

    fn line(&self, level: Level, text: &str, now: SystemTime) -> String {
        let priority = self.facility | severity(level);
        let newline = if text.ends_with('\n') { "" } else { "\n" };
        let c = civil(now);
        if matches!(self.target, Target::Local | Target::Unix(_)) {
            // Go's `time.Stamp`: the day padded with a space.
            format!(
                "<{priority}>{} {:>2} {:02}:{:02}:{:02} {}[{}]: {text}{newline}",
                MONTHS[(c.month as usize).saturating_sub(1) % 12],
                c.day,
                c.hour,
                c.minute,
                c.second,
                self.tag,
                self.pid
            )
        } else {
            format!(
                "<{priority}>{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z {} {}[{}]: {text}{newline}",
                c.year,
                c.month,
                c.day,
                c.hour,
                c.minute,
                c.second,
                self.hostname,
                self.tag,
                self.pid
            )
        }
    }
}

/// nats-server's severities per level (logger/syslog.go).
fn severity(level: Level) -> u8 {
    match level {
        Level::Fatal => 2,
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info | Level::Trace => 5,
        Level::Debug => 7,
    }
}

/// `scheme://rest`: udp and tcp take `host:port`, unix a path.
fn parse_url(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let scheme = scheme.to_ascii_lowercase();
    // The host part ends at the path (Go's url.Host).
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match scheme.as_str() {
        "udp" => Ok(Target::Udp(host.to_string())),
        "tcp" => Ok(Target::Tcp(host.to_string())),
        "unix" => Ok(Target::Unix(
            rest.get(host.len()..)
                .unwrap_or_default()
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_string(),
        )),
        _ => Err(format!("error invalid network type: {}", go_quote(&scheme))),
    }
}

fn connect(target: &Target) -> std::io::Result<Socket> {
    match target {
        Target::Local => {
            for path in LOCAL_PATHS {
                let datagram = UnixDatagram::unbound().and_then(|s| s.connect(path).map(|()| s));
                if let Ok(socket) = datagram {
                    return Ok(Socket::Datagram(socket));
                }
                if let Ok(socket) = UnixStream::connect(path) {
                    return Ok(Socket::Stream(socket));
                }
            }
            Err(std::io::Error::other("Unix syslog delivery error"))
        }
        Target::Udp(addr) => {
            let mut last = None;
            for peer in addr.to_socket_addrs()? {
                let local = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                match UdpSocket::bind(local).and_then(|s| s.connect(peer).map(|()| s)) {
                    Ok(socket) => return Ok(Socket::Udp(socket)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
        }
        Target::Tcp(addr) => TcpStream::connect(addr.as_str()).map(Socket::Tcp),
        Target::Unix(path) => UnixStream::connect(path).map(Socket::Stream),
    }
}

fn local_address(socket: &Socket) -> String {
    let address = match socket {
        Socket::Udp(s) => s.local_addr().map(|a| a.to_string()),
        Socket::Tcp(s) => s.local_addr().map(|a| a.to_string()),
        Socket::Datagram(_) | Socket::Stream(_) => Ok(String::new()),
    };
    address.unwrap_or_default()
}

/// The tag: the file name the program was started as.
fn program_name() -> String {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let path = std::path::Path::new(&arg0);
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn writer(target: Target, facility: u8) -> Syslog {
        Syslog {
            target,
            socket: None,
            facility,
            tag: "percore".into(),
            pid: 42,
            hostname: "vm".into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("udp://127.0.0.1:514"),
            Ok(Target::Udp("127.0.0.1:514".into()))
        );
        assert_eq!(
            parse_url("TCP://logs:601/"),
            Ok(Target::Tcp("logs:601".into()))
        );
        assert_eq!(
            parse_url("unix:///dev/log"),
            Ok(Target::Unix("/dev/log".into()))
        );
        assert_eq!(
            parse_url("bogus://x"),
            Err("error invalid network type: \"bogus\"".into())
        );
        assert_eq!(
            parse_url("127.0.0.1:514"),
            Err("error invalid network type: \"\"".into())
        );
    }

    #[test]
    fn line_forms_and_priorities() {
        // 2026-12-07T08:38:50Z
        let time = UNIX_EPOCH + Duration::from_secs(1_796_632_730);
        let remote = writer(Target::Udp("h:1".into()), FACILITY_KERN);
        assert_eq!(
            remote.line(Level::Info, "Server is ready", time),
            "<5>2026-12-07T08:38:50Z vm percore[42]: Server is ready\n"
        );
        assert_eq!(
            remote.line(Level::Debug, "x\n", time),
            "<7>2026-12-07T08:38:50Z vm percore[42]: x\n"
        );
        let local = writer(Target::Local, FACILITY_DAEMON);
        assert_eq!(
            local.line(Level::Error, "bad", time),
            "<27>Dec  7 08:38:50 percore[42]: bad\n"
        );
        assert_eq!(
            local.line(Level::Trace, "t", time).split('>').next(),
            Some("<29")
        );
        assert_eq!(
            local.line(Level::Warn, "w", time).split('>').next(),
            Some("<28")
        );
        assert_eq!(
            local.line(Level::Fatal, "f", time).split('>').next(),
            Some("<26")
        );
    }
}
