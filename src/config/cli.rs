//! The command line, with Go `flag` package rules because that is what
//! nats-server uses and what client test suites pass to it: `-x` and `--x`
//! are the same flag, values as `-p 4222`, `-p=4222` or `--port=4222`,
//! booleans take no separate value (`-T=false` to turn one off), and parsing
//! stops at the first non-flag argument or after `--`.
//!
//! clap is not used: it cannot treat `-port` as a long flag nor `-DV` as a
//! flag of its own rather than `-D -V`.

/// What a flag sets. Aliases (`-p`, `-port`) map to the same setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Addr,
    Port,
    ClientAdvertise,
    Name,
    Config,
    Test,
    Log,
    Logtime,
    Debug,
    Trace,
    TraceVerbose,
    DebugTrace,
    DebugTraceVerbose,
    Pid,
    PortsFileDir,
    Help,
    Version,
    Shards,
    Pin,
    TlsOffload,
    HttpPort,
    HttpsPort,
    Signal,
    StoreDir,
    User,
    Pass,
    Auth,
    Tls,
    TlsCert,
    TlsKey,
    TlsVerify,
    TlsCaCert,
    Cluster,
    ClusterName,
    Routes,
    ClusterAdvertise,
    NoAdvertise,
    ConnectRetries,
    CheckHost,
    Profile,
    HelpTls,
    LogSizeLimit,
    Syslog,
    RemoteSyslog,
    MaxTracedMsgLen,
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Text,
}

const FLAGS: &[(&str, Setting, Kind)] = &[
    ("a", Setting::Addr, Kind::Text),
    ("addr", Setting::Addr, Kind::Text),
    ("net", Setting::Addr, Kind::Text),
    ("p", Setting::Port, Kind::Int),
    ("port", Setting::Port, Kind::Int),
    ("client_advertise", Setting::ClientAdvertise, Kind::Text),
    ("n", Setting::Name, Kind::Text),
    ("name", Setting::Name, Kind::Text),
    ("server_name", Setting::Name, Kind::Text),
    ("c", Setting::Config, Kind::Text),
    ("config", Setting::Config, Kind::Text),
    ("t", Setting::Test, Kind::Bool),
    ("l", Setting::Log, Kind::Text),
    ("log", Setting::Log, Kind::Text),
    ("T", Setting::Logtime, Kind::Bool),
    ("logtime", Setting::Logtime, Kind::Bool),
    ("D", Setting::Debug, Kind::Bool),
    ("debug", Setting::Debug, Kind::Bool),
    ("V", Setting::Trace, Kind::Bool),
    ("trace", Setting::Trace, Kind::Bool),
    ("VV", Setting::TraceVerbose, Kind::Bool),
    ("DV", Setting::DebugTrace, Kind::Bool),
    ("DVV", Setting::DebugTraceVerbose, Kind::Bool),
    ("P", Setting::Pid, Kind::Text),
    ("pid", Setting::Pid, Kind::Text),
    ("ports_file_dir", Setting::PortsFileDir, Kind::Text),
    ("h", Setting::Help, Kind::Bool),
    ("help", Setting::Help, Kind::Bool),
    ("v", Setting::Version, Kind::Bool),
    ("version", Setting::Version, Kind::Bool),
    ("shards", Setting::Shards, Kind::Int),
    ("pin", Setting::Pin, Kind::Bool),
    ("tls_offload", Setting::TlsOffload, Kind::Bool),
    ("m", Setting::HttpPort, Kind::Int),
    ("http_port", Setting::HttpPort, Kind::Int),
    ("ms", Setting::HttpsPort, Kind::Int),
    ("https_port", Setting::HttpsPort, Kind::Int),
    ("sl", Setting::Signal, Kind::Text),
    ("signal", Setting::Signal, Kind::Text),
    ("sd", Setting::StoreDir, Kind::Text),
    ("store_dir", Setting::StoreDir, Kind::Text),
    ("user", Setting::User, Kind::Text),
    ("pass", Setting::Pass, Kind::Text),
    ("auth", Setting::Auth, Kind::Text),
    ("tls", Setting::Tls, Kind::Bool),
    ("tlscert", Setting::TlsCert, Kind::Text),
    ("tlskey", Setting::TlsKey, Kind::Text),
    ("tlsverify", Setting::TlsVerify, Kind::Bool),
    ("tlscacert", Setting::TlsCaCert, Kind::Text),
    ("cluster", Setting::Cluster, Kind::Text),
    ("cluster_listen", Setting::Cluster, Kind::Text),
    ("cluster_name", Setting::ClusterName, Kind::Text),
    ("routes", Setting::Routes, Kind::Text),
    ("cluster_advertise", Setting::ClusterAdvertise, Kind::Text),
    ("no_advertise", Setting::NoAdvertise, Kind::Bool),
    ("connect_retries", Setting::ConnectRetries, Kind::Int),
    ("check-host", Setting::CheckHost, Kind::Bool),
    ("profile", Setting::Profile, Kind::Int),
    ("help_tls", Setting::HelpTls, Kind::Bool),
    ("log_size_limit", Setting::LogSizeLimit, Kind::Int),
    ("s", Setting::Syslog, Kind::Bool),
    ("syslog", Setting::Syslog, Kind::Bool),
    ("r", Setting::RemoteSyslog, Kind::Text),
    ("remote_syslog", Setting::RemoteSyslog, Kind::Text),
    ("max_traced_msg_len", Setting::MaxTracedMsgLen, Kind::Int),
];

/// nats-server 2.9.10 flags whose feature percore lacks: parsed (so that the
/// value of `-m 8222` is not mistaken for a command) and then refused.
const NOT_SUPPORTED_YET: &[(&str, Kind)] = &[("js", Kind::Bool), ("jetstream", Kind::Bool)];

/// Everything the command line said. `None`: not given, keep the file's or
/// the default value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<i64>,
    /// `--client_advertise host[:port]`: what clients are told.
    pub client_advertise: Option<String>,
    pub server_name: Option<String>,
    pub config: Option<String>,
    pub test: bool,
    pub logfile: Option<String>,
    pub logtime: Option<bool>,
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    /// `-VV`, `-DVV`: trace the system account's traffic as well.
    pub trace_verbose: Option<bool>,
    /// `--log_size_limit <bytes>`: rotate the log file past this size.
    pub log_size_limit: Option<i64>,
    /// `-s`, `--syslog`: log to the local syslog.
    pub syslog: Option<bool>,
    /// `-r`, `--remote_syslog <url>`: log to a remote syslog.
    pub remote_syslog: Option<String>,
    /// `--max_traced_msg_len <n>`: truncate traced payloads.
    pub max_traced_msg_len: Option<i64>,
    pub pidfile: Option<String>,
    /// `--ports_file_dir`: where to write the ports file.
    pub ports_file_dir: Option<String>,
    pub help: bool,
    pub version: bool,
    pub shards: Option<i64>,
    pub pin: Option<bool>,
    /// `--tls_offload[=bool]`: TLS handshake crypto on the shards' blocking
    /// threads; not given: decided by the server key's type.
    pub tls_offload: Option<bool>,
    /// `-m`, `--http_port`: monitoring port (nats-server's convention).
    pub http_port: Option<i64>,
    /// `-ms`, `--https_port`: monitoring over HTTPS.
    pub https_port: Option<i64>,
    /// `--signal <command>[=<pid or pid file>]`: signal a running server.
    pub signal: Option<String>,
    /// `-sd`, `--store_dir`: JetStream's directory. Accepted because
    /// nats-server accepts it without `-js` (test harnesses always pass
    /// it); JetStream itself is refused.
    pub store_dir: Option<String>,
    /// `--user`: the single user's name (wins over the file's).
    pub user: Option<String>,
    /// `--pass`: the single user's password, plain or bcrypt.
    pub pass: Option<String>,
    /// `--auth`: the token clients must send, plain or bcrypt.
    pub auth: Option<String>,
    /// `--tls`: TLS on the client port (with the other `--tls*` flags).
    pub tls: Option<bool>,
    /// `--tlscert`, `--tlskey`: the server certificate and its key.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// `--tlscacert`: roots for client certificates.
    pub tls_ca_cert: Option<String>,
    /// `--tlsverify`: clients must present a certificate.
    pub tls_verify: Option<bool>,
    /// `--cluster`, `--cluster_listen`: the route listener URL.
    pub cluster: Option<String>,
    pub cluster_name: Option<String>,
    /// `--routes`: comma-separated route URLs.
    pub routes: Option<String>,
    pub cluster_advertise: Option<String>,
    pub no_advertise: Option<bool>,
    pub connect_retries: Option<i64>,
    /// `--check-host`: report on the host's readiness and exit.
    pub check_host: bool,
    /// `--profile <port>`: nats-server's pprof port (accepted, not served).
    pub profile: Option<i64>,
    /// `--help_tls`: print the TLS help (ciphers, curves) and exit.
    pub help_tls: bool,
    /// `-js=false` / `--jetstream=false` was given last for JetStream: as
    /// nats-server's flags win over the file, a config that enables
    /// JetStream then starts without it instead of being refused.
    pub jetstream_off: bool,
    /// The first recognised nats-server flag we do not implement, as `-name`.
    pub unsupported: Option<String>,
    /// Arguments after the flags (`version`, `help`, or a mistake).
    pub positional: Vec<String>,
}

/// Parses `args` (without argv[0]). The error is Go's message
/// (`flag provided but not defined: -x`), to be followed by the usage text.
pub fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut flags = Flags::default();
    let mut next = 0;
    while let Some(arg) = args.get(next) {
        if arg == "--" {
            next += 1;
            break;
        }
        // The first non-flag argument ends the flags.
        let Some(body) = flag_body(arg)? else { break };
        next += 1;
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let kind =
            kind_of(name).ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = match (kind, inline_value) {
            (_, Some(value)) => value.to_string(),
            (Kind::Bool, None) => "true".to_string(),
            (_, None) => {
                let value = args
                    .get(next)
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                next += 1;
                value.clone()
            }
        };
        set_flag(&mut flags, name, kind, &value)?;
    }
    flags.positional = args[next..].to_vec();
    Ok(flags)
}

/// The flag name (and `=value`) without its one or two dashes; `None` if
/// `arg` is not a flag.
fn flag_body(arg: &str) -> Result<Option<&str>, String> {
    if arg.len() < 2 || !arg.starts_with('-') {
        return Ok(None);
    }
    let body = arg.strip_prefix("--").unwrap_or_else(|| &arg[1..]);
    if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
        return Err(format!("bad flag syntax: {arg}"));
    }
    Ok(Some(body))
}

fn kind_of(name: &str) -> Option<Kind> {
    FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, kind)| *kind)
        .or_else(|| {
            NOT_SUPPORTED_YET
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, kind)| *kind)
        })
}

fn set_flag(flags: &mut Flags, name: &str, kind: Kind, value: &str) -> Result<(), String> {
    let Some(setting) = FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, s, _)| *s)
    else {
        // Known to nats-server but not implemented: check its value the way
        // nats-server would, then remember it for a clear error later. Every
        // such boolean (-js, -syslog, ...) is off by default, so `=false`
        // asks for what percore does anyway and is accepted.
        let jetstream = name == "js" || name == "jetstream";
        if let Parsed::Bool(false) = parse_value(name, kind, value)? {
            if jetstream {
                // The last JetStream flag wins, as in Go's flag package.
                flags.jetstream_off = true;
                if matches!(flags.unsupported.as_deref(), Some("-js" | "-jetstream")) {
                    flags.unsupported = None;
                }
            }
            return Ok(());
        }
        if jetstream {
            flags.jetstream_off = false;
        }
        flags.unsupported.get_or_insert_with(|| format!("-{name}"));
        return Ok(());
    };
    match (setting, parse_value(name, kind, value)?) {
        (Setting::Addr, Parsed::Text(v)) => flags.host = Some(v),
        (Setting::Port, Parsed::Int(v)) => flags.port = Some(v),
        (Setting::ClientAdvertise, Parsed::Text(v)) => flags.client_advertise = Some(v),
        (Setting::Name, Parsed::Text(v)) => flags.server_name = Some(v),
        (Setting::Config, Parsed::Text(v)) => flags.config = Some(v),
        (Setting::Test, Parsed::Bool(v)) => flags.test = v,
        (Setting::Log, Parsed::Text(v)) => flags.logfile = Some(v),
        (Setting::Logtime, Parsed::Bool(v)) => flags.logtime = Some(v),
        (Setting::Debug, Parsed::Bool(v)) => flags.debug = Some(v),
        (Setting::Trace, Parsed::Bool(v)) => flags.trace = Some(v),
        // As nats-server: -VV and -DVV set verbose tracing and tracing to
        // the same value (`-VV=false` turns both off).
        (Setting::TraceVerbose, Parsed::Bool(v)) => {
            flags.trace = Some(v);
            flags.trace_verbose = Some(v);
        }
        (Setting::DebugTrace, Parsed::Bool(v)) => {
            flags.debug = Some(v);
            flags.trace = Some(v);
        }
        (Setting::DebugTraceVerbose, Parsed::Bool(v)) => {
            flags.debug = Some(v);
            flags.trace = Some(v);
            flags.trace_verbose = Some(v);
        }
        (Setting::Pid, Parsed::Text(v)) => flags.pidfile = Some(v),
        (Setting::PortsFileDir, Parsed::Text(v)) => flags.ports_file_dir = Some(v),
        (Setting::Help, Parsed::Bool(v)) => flags.help = v,
        (Setting::Version, Parsed::Bool(v)) => flags.version = v,
        (Setting::Shards, Parsed::Int(v)) => flags.shards = Some(v),
        (Setting::Pin, Parsed::Bool(v)) => flags.pin = Some(v),
        (Setting::TlsOffload, Parsed::Bool(v)) => flags.tls_offload = Some(v),
        (Setting::HttpPort, Parsed::Int(v)) => flags.http_port = Some(v),
        (Setting::HttpsPort, Parsed::Int(v)) => flags.https_port = Some(v),
        (Setting::Signal, Parsed::Text(v)) => flags.signal = Some(v),
        (Setting::StoreDir, Parsed::Text(v)) => flags.store_dir = Some(v),
        (Setting::User, Parsed::Text(v)) => flags.user = Some(v),
        (Setting::Pass, Parsed::Text(v)) => flags.pass = Some(v),
        (Setting::Auth, Parsed::Text(v)) => flags.auth = Some(v),
        (Setting::Tls, Parsed::Bool(v)) => flags.tls = Some(v),
        (Setting::TlsCert, Parsed::Text(v)) => flags.tls_cert = Some(v),
        (Setting::TlsKey, Parsed::Text(v)) => flags.tls_key = Some(v),
        (Setting::TlsVerify, Parsed::Bool(v)) => flags.tls_verify = Some(v),
        (Setting::TlsCaCert, Parsed::Text(v)) => flags.tls_ca_cert = Some(v),
        (Setting::Cluster, Parsed::Text(v)) => flags.cluster = Some(v),
        (Setting::ClusterName, Parsed::Text(v)) => flags.cluster_name = Some(v),
        (Setting::Routes, Parsed::Text(v)) => flags.routes = Some(v),
        (Setting::ClusterAdvertise, Parsed::Text(v)) => flags.cluster_advertise = Some(v),
        (Setting::NoAdvertise, Parsed::Bool(v)) => flags.no_advertise = Some(v),
        (Setting::ConnectRetries, Parsed::Int(v)) => flags.connect_retries = Some(v),
        (Setting::CheckHost, Parsed::Bool(v)) => flags.check_host = v,
        (Setting::Profile, Parsed::Int(v)) => flags.profile = Some(v),
        (Setting::HelpTls, Parsed::Bool(v)) => flags.help_tls = v,
        (Setting::LogSizeLimit, Parsed::Int(v)) => flags.log_size_limit = Some(v),
        (Setting::Syslog, Parsed::Bool(v)) => flags.syslog = Some(v),
        (Setting::RemoteSyslog, Parsed::Text(v)) => flags.remote_syslog = Some(v),
        (Setting::MaxTracedMsgLen, Parsed::Int(v)) => flags.max_traced_msg_len = Some(v),
        // FLAGS pairs every setting with its kind; nothing else can occur.
        (_, other) => return Err(format!("internal error: flag -{name} got {other:?}")),
    }
    Ok(())
}

#[derive(Debug)]
enum Parsed {
    Bool(bool),
    Int(i64),
    Text(String),
}

fn parse_value(name: &str, kind: Kind, value: &str) -> Result<Parsed, String> {
    match kind {
        Kind::Text => Ok(Parsed::Text(value.to_string())),
        Kind::Bool => go_bool(value)
            .map(Parsed::Bool)
            .ok_or_else(|| format!("invalid boolean value \"{value}\" for -{name}: parse error")),
        Kind::Int => go_int(value)
            .map(Parsed::Int)
            .map_err(|why| format!("invalid value \"{value}\" for flag -{name}: {why}")),
    }
}

/// Go's `strconv.ParseBool` (also what nats-server's monitoring accepts
/// for boolean query parameters).
pub fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)`: optional sign, then decimal, or
/// `0x`/`0o`/`0b`/leading-`0` (octal) prefixes. Underscores are not accepted.
fn go_int(text: &str) -> Result<i64, &'static str> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| "value out of range")?;
    let limit = if negative {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX.unsigned_abs()
    };
    if magnitude > limit {
        return Err("value out of range");
    }
    // magnitude <= 2^63 here, so the wrapping forms are exact.
    Ok(if negative {
        (magnitude as i64).wrapping_neg()
    } else {
        magnitude as i64
    })
}

/// `nats-server: v2.9.10 (percore 0.1.0)`: nats-server's line first, with
/// the version percore speaks, because scripts and client test harnesses
/// read the server's version from `-v` (nats.c's CI passes it to its suite,
/// which took `v0.1.0` for an old server and ran the old servers' paths);
/// percore's own version follows without a `v`, so a pattern looking for
/// `v<semver>` finds only the first.
pub fn version_line() -> String {
    format!(
        "nats-server: v2.9.10 (percore {})\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text, laid out like nats-server's so users find the same
/// flags in the same places.
pub fn usage() -> String {
    "\
Usage: percore [options]

Server Options:
    -a, --addr, --net <host>         Address to bind client connections to (default: 0.0.0.0)
    -p, --port <port>                Port for client connections (default: 4222, -1 for a random one)
        --client_advertise <string>  Client URL (host[:port]) to advertise to clients and other servers
    -n, --name
        --server_name <server_name>  Name of this server (default: its generated id)
    -P, --pid <file>                 Write the process id to this file
    -m, --http_port <port>           Use port for HTTP monitoring (-1 for a random one)
    -ms,--https_port <port>          Use port for HTTPS monitoring (needs --tls or tls {})
    -c, --config <file>              Read options from this configuration file
    -t                               Check the configuration file and exit
    -sl,--signal <signal>[=<pid>]    Send signal to percore process (ldm, stop, quit, term, reopen, reload)
    -sd,--store_dir <dir>            Accepted for nats-server compatibility; unused (no JetStream)
        --profile <port>             Accepted for nats-server compatibility; no Go profiler to serve (use perf)
        --ports_file_dir <dir>       Write <executable_name>_<pid>.ports (the listeners' URLs) there

Logging Options:
    -l, --log <file>                 Log to this file instead of stderr
        --log_size_limit <bytes>     Move the log file to a timestamped backup past this size
    -T, --logtime                    Put a timestamp on log lines (default: true; -T=false to drop)
    -s, --syslog                     Log to the local syslog (/dev/log)
    -r, --remote_syslog <addr>       Log to this syslog (udp://127.0.0.1:514, tcp://..., unix:///...)
    -D, --debug                      Log debug messages
    -V, --trace                      Log every protocol operation
    -VV                              Same as -V, and trace the system account's traffic as well
    -DV                              Same as -D -V
    -DVV                             Same as -D -VV
        --max_traced_msg_len <len>   At most this many payload bytes in a trace line (0: no limit)

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections (plain or bcrypt)
        --auth <token>               Authorization token required for connections (plain or bcrypt)

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification
        --help_tls                   TLS help: the cipher suites and curves percore takes

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes (also --cluster_listen)
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries

percore Options:
        --shards <n>                 Number of shards, one thread each (default: one per CPU; 1 on <= 2 CPUs)
        --pin                        Pin shard i to CPU i (default: false)
        --tls_offload[=<bool>]       Run TLS handshake crypto on the shards' blocking threads (default: with an RSA key)
        --check-host                 Check this host for percore (io_uring, limits, THP, ...) and exit (1 on a failure)

Common Options:
    -h, --help                       Print this text
    -v, --version                    Print the version

Flags are written with one dash or two (-port 4222, --port=4222). Options from
the command line override those of the configuration file.

Not supported yet (refused with an error):
JetStream (-js).
"
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse_flags(&args) {
            Ok(flags) => flags,
            Err(e) => panic!("unexpected error for {args:?}: {e}"),
        }
    }

    fn flag_error(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse_flags(&args) {
            Ok(flags) => panic!("expected an error for {args:?}, got {flags:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn port_spellings() {
        for args in [
            &["-p", "4333"][..],
            &["-p=4333"],
            &["--p", "4333"],
            &["--p=4333"],
            &["-port", "4333"],
            &["-port=4333"],
            &["--port", "4333"],
            &["--port=4333"],
        ] {
            assert_eq!(flags(args).port, Some(4333), "{args:?}");
        }
        assert_eq!(flags(&["-p", "-1"]).port, Some(-1));
        assert_eq!(flags(&["-p", "0x10"]).port, Some(16));
        // The last occurrence wins.
        assert_eq!(flags(&["-p", "1", "--port", "2"]).port, Some(2));
    }

    #[test]
    fn string_flags_and_aliases() {
        for name in ["-a", "--addr", "-net", "--net"] {
            assert_eq!(
                flags(&[name, "127.0.0.1"]).host.as_deref(),
                Some("127.0.0.1")
            );
        }
        for name in ["-n", "--name", "-server_name", "--server_name"] {
            assert_eq!(flags(&[name, "n1"]).server_name.as_deref(), Some("n1"));
        }
        for name in ["-c", "--config", "-config"] {
            assert_eq!(flags(&[name, "x.conf"]).config.as_deref(), Some("x.conf"));
        }
        for name in ["-l", "--log"] {
            assert_eq!(flags(&[name, "p.log"]).logfile.as_deref(), Some("p.log"));
        }
        for name in ["-P", "--pid"] {
            assert_eq!(flags(&[name, "p.pid"]).pidfile.as_deref(), Some("p.pid"));
        }
        for name in ["-client_advertise", "--client_advertise"] {
            let f = flags(&[name, "h:5"]);
            assert_eq!(f.client_advertise.as_deref(), Some("h:5"));
            assert_eq!(f.unsupported, None);
        }
        let f = flags(&["--profile", "6060"]);
        assert_eq!((f.profile, f.unsupported), (Some(6060), None));
        // A value may itself start with a dash or contain '='.
        assert_eq!(flags(&["-n", "-odd"]).server_name.as_deref(), Some("-odd"));
        assert_eq!(flags(&["-n=a=b"]).server_name.as_deref(), Some("a=b"));
        assert_eq!(flags(&["-n="]).server_name.as_deref(), Some(""));
    }

    #[test]
    fn boolean_flags() {
        let f = flags(&["-D"]);
        assert_eq!((f.debug, f.trace), (Some(true), None));
        let f = flags(&["--debug", "--trace"]);
        assert_eq!((f.debug, f.trace), (Some(true), Some(true)));
        let f = flags(&["-V"]);
        assert_eq!((f.debug, f.trace), (None, Some(true)));
        let f = flags(&["-VV"]);
        assert_eq!((f.debug, f.trace), (None, Some(true)));
        assert_eq!(f.trace_verbose, Some(true));
        assert_eq!(flags(&["-V"]).trace_verbose, None);
        let f = flags(&["-VV", "-VV=false"]);
        assert_eq!((f.trace, f.trace_verbose), (Some(false), Some(false)));
        let f = flags(&["-DVV"]);
        assert_eq!(
            (f.debug, f.trace, f.trace_verbose),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(flags(&["-DV"]).trace_verbose, None);
        let f = flags(&["-DV"]);
        assert_eq!((f.debug, f.trace), (Some(true), Some(true)));
        let f = flags(&["--DVV"]);
        assert_eq!((f.debug, f.trace), (Some(true), Some(true)));
        let f = flags(&["-DV", "-DV=false"]);
        assert_eq!((f.debug, f.trace), (Some(false), Some(false)));
        assert_eq!(flags(&["-T=false"]).logtime, Some(false));
        assert_eq!(flags(&["--logtime=0"]).logtime, Some(false));
        assert_eq!(flags(&["-T"]).logtime, Some(true));
        assert_eq!(flags(&["-T=F"]).logtime, Some(false));
        assert!(flags(&["-t"]).test);
        assert!(flags(&["-h"]).help && flags(&["--help"]).help);
        assert!(flags(&["-v"]).version && flags(&["--version"]).version);
        // A boolean flag does not take the next argument as its value.
        let f = flags(&["-D", "false"]);
        assert_eq!(f.debug, Some(true));
        assert_eq!(f.positional, ["false"]);
    }

    #[test]
    fn authorization_flags() {
        let f = flags(&["--user", "u", "-pass=p w", "-auth", "t"]);
        assert_eq!(
            (f.user.as_deref(), f.pass.as_deref(), f.auth.as_deref()),
            (Some("u"), Some("p w"), Some("t"))
        );
        assert_eq!(f.unsupported, None);
        // Not given and given empty differ (an empty flag changes nothing).
        assert_eq!(flags(&[]).user, None);
        assert_eq!(flags(&["--user="]).user.as_deref(), Some(""));
        assert_eq!(flag_error(&["--auth"]), "flag needs an argument: -auth");
    }

    #[test]
    fn percore_flags() {
        let f = flags(&["--shards", "4", "--pin"]);
        assert_eq!((f.shards, f.pin), (Some(4), Some(true)));
        let f = flags(&["-shards=2", "-pin=false"]);
        assert_eq!((f.shards, f.pin), (Some(2), Some(false)));
        let f = flags(&["--check-host", "--shards", "2"]);
        assert_eq!((f.check_host, f.shards), (true, Some(2)));
        assert!(!flags(&[]).check_host);
        assert_eq!(flags(&["--tls_offload"]).tls_offload, Some(true));
        assert_eq!(flags(&["--tls_offload=false"]).tls_offload, Some(false));
        assert_eq!(flags(&["-tls_offload=true"]).tls_offload, Some(true));
        assert_eq!(flags(&[]).tls_offload, None);
    }

    #[test]
    fn logging_flags() {
        for args in [
            &["--log_size_limit", "1024"][..],
            &["-log_size_limit=1024"],
            &["--log_size_limit=0x400"],
        ] {
            assert_eq!(flags(args).log_size_limit, Some(1024), "{args:?}");
        }
        assert_eq!(
            flag_error(&["--log_size_limit", "1MB"]),
            "invalid value \"1MB\" for flag -log_size_limit: parse error"
        );
        for name in ["-s", "--syslog", "-syslog"] {
            assert_eq!(flags(&[name]).syslog, Some(true), "{name}");
        }
        assert_eq!(flags(&["-s=false"]).syslog, Some(false));
        for name in ["-r", "--remote_syslog"] {
            assert_eq!(
                flags(&[name, "udp://127.0.0.1:514"])
                    .remote_syslog
                    .as_deref(),
                Some("udp://127.0.0.1:514"),
                "{name}"
            );
        }
        assert_eq!(
            flags(&["--max_traced_msg_len", "8"]).max_traced_msg_len,
            Some(8)
        );
        assert_eq!(
            flags(&["-max_traced_msg_len=-1"]).max_traced_msg_len,
            Some(-1)
        );
        let f = flags(&["-s", "-r", "tcp://h:1", "--log_size_limit", "5"]);
        assert_eq!((f.unsupported, f.positional.len()), (None, 0));
    }

    #[test]
    fn positional_arguments_end_the_flags() {
        let f = flags(&["-p", "1", "version", "-p", "2"]);
        assert_eq!(f.port, Some(1));
        assert_eq!(f.positional, ["version", "-p", "2"]);
        let f = flags(&["--", "-p", "2"]);
        assert_eq!(f.port, None);
        assert_eq!(f.positional, ["-p", "2"]);
        let f = flags(&["-"]);
        assert_eq!(f.positional, ["-"]);
        assert_eq!(flags(&[]), Flags::default());
    }

    #[test]
    fn unsupported_flags_are_recorded_with_their_values() {
        let f = flags(&["-js", "-p", "1"]);
        assert_eq!(f.unsupported.as_deref(), Some("-js"));
        assert_eq!(f.port, Some(1));
        let f = flags(&["-m", "8222", "--http_port=-1"]);
        assert_eq!((f.http_port, f.unsupported), (Some(-1), None));
        assert!(f.positional.is_empty());
        let f = flags(&["--tls", "--user=a", "-js"]);
        assert_eq!(f.unsupported.as_deref(), Some("-js"));
        assert_eq!(f.tls, Some(true));
        // Turned off, an unsupported boolean is the default: nothing to refuse.
        let f = flags(&["-js=false", "--jetstream=0", "-help_tls=f", "-p", "1"]);
        assert_eq!((f.unsupported, f.port), (None, Some(1)));
        assert_eq!(
            flag_error(&["-js=maybe"]),
            "invalid boolean value \"maybe\" for -js: parse error"
        );
        assert_eq!(
            flag_error(&["--http_port", "x"]),
            "invalid value \"x\" for flag -http_port: parse error"
        );
        for (name, kind) in NOT_SUPPORTED_YET {
            let args: Vec<&str> = match kind {
                Kind::Bool => vec![name],
                Kind::Int => vec![name, "1"],
                Kind::Text => vec![name, "x"],
            };
            let dashed = format!("--{name}");
            let mut args_dashed = args.clone();
            args_dashed[0] = &dashed;
            let f = flags(&args_dashed);
            assert_eq!(f.unsupported, Some(format!("-{name}")));
            assert!(f.positional.is_empty(), "{name}");
        }
    }

    #[test]
    fn go_flag_errors() {
        assert_eq!(
            flag_error(&["-bogusflag"]),
            "flag provided but not defined: -bogusflag"
        );
        assert_eq!(
            flag_error(&["--bogus=1"]),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(flag_error(&["-p"]), "flag needs an argument: -p");
        assert_eq!(flag_error(&["--config"]), "flag needs an argument: -config");
        assert_eq!(
            flag_error(&["-p", "abc"]),
            "invalid value \"abc\" for flag -p: parse error"
        );
        assert_eq!(
            flag_error(&["-p", "99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -p: value out of range"
        );
        assert_eq!(
            flag_error(&["-T=maybe"]),
            "invalid boolean value \"maybe\" for -T: parse error"
        );
        assert_eq!(flag_error(&["---p", "1"]), "bad flag syntax: ---p");
        assert_eq!(flag_error(&["-=x"]), "bad flag syntax: -=x");
        // Parsing stops at the first error.
        assert_eq!(
            flag_error(&["-v", "-bogus", "-x"]),
            "flag provided but not defined: -bogus"
        );
    }

    #[test]
    fn go_integer_syntax() {
        assert_eq!(go_int("4222"), Ok(4222));
        assert_eq!(go_int("+5"), Ok(5));
        assert_eq!(go_int("-1"), Ok(-1));
        assert_eq!(go_int("0x1F"), Ok(31));
        assert_eq!(go_int("0o17"), Ok(15));
        assert_eq!(go_int("017"), Ok(15));
        assert_eq!(go_int("0b101"), Ok(5));
        assert_eq!(go_int("0"), Ok(0));
        assert_eq!(go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(go_int("9223372036854775808"), Err("value out of range"));
        assert_eq!(go_int(""), Err("parse error"));
        assert_eq!(go_int("-"), Err("parse error"));
        assert_eq!(go_int("0x"), Err("parse error"));
        assert_eq!(go_int("08"), Err("parse error"));
        assert_eq!(go_int("1_000"), Err("parse error"));
        assert_eq!(go_int(" 1"), Err("parse error"));
    }

    #[test]
    fn usage_lists_every_supported_flag() {
        let text = usage();
        for (name, _, _) in FLAGS {
            let dashed = if name.len() <= 2 || name.chars().all(|c| c.is_ascii_uppercase()) {
                format!("-{name}")
            } else {
                format!("--{name}")
            };
            assert!(text.contains(&dashed), "usage lacks {dashed}");
        }
        assert!(text.starts_with("Usage: percore [options]\n"));
        for section in [
            "Server Options:",
            "Logging Options:",
            "Authorization Options:",
            "percore Options:",
        ] {
            assert!(text.contains(section), "usage lacks {section}");
        }
        assert_eq!(
            version_line(),
            format!(
                "nats-server: v2.9.10 (percore {})\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
