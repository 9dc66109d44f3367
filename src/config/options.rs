//! The broker's effective settings, after defaults, the config file and the
//! command line (flags win) have been merged.
//!
//! Every default is nats-server 2.9.10's, so a user who swaps the binary keeps
//! the behaviour their clients were tuned against.

use std::path::PathBuf;
use std::time::Duration;

use percore_core::account::AccountTable;
use percore_core::auth::AuthPolicy;

use super::cluster::ClusterOptions;
use super::tls::TlsOptions;

/// nats-server `MAX_PAYLOAD_SIZE` (const.go): 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// nats-server `MAX_PENDING_SIZE` (const.go): 64 MiB of unsent bytes per connection.
pub const DEFAULT_MAX_PENDING: usize = 64 * 1024 * 1024;
/// nats-server `MAX_CONTROL_LINE_SIZE` (const.go).
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
/// nats-server `DEFAULT_MAX_CONNECTIONS` (const.go).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64 * 1024;
/// nats-server `DEFAULT_PING_INTERVAL` (const.go).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// nats-server `DEFAULT_PING_MAX_OUT` (const.go).
pub const DEFAULT_PING_MAX: u32 = 2;
/// nats-server `DEFAULT_FLUSH_DEADLINE` (const.go).
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// nats-server `DEFAULT_LAME_DUCK_DURATION` (const.go).
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// nats-server `DEFAULT_LAME_DUCK_GRACE_PERIOD` (const.go).
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// nats-server `DEFAULT_CONNECT_ERROR_REPORTS` (const.go): a route never
/// reached yet is reported at its first failed dial, then every 3600th
/// (about once an hour at one dial a second).
pub const DEFAULT_CONNECT_ERROR_REPORTS: i64 = 3600;
/// nats-server `DEFAULT_RECONNECT_ERROR_REPORTS` (const.go): every failed
/// dial of a lost route is reported.
pub const DEFAULT_RECONNECT_ERROR_REPORTS: i64 = 1;
/// nats-server `DEFAULT_PORT`.
pub const DEFAULT_PORT: u16 = 4222;
/// nats-server `DEFAULT_HOST`.
pub const DEFAULT_HOST: &str = "0.0.0.0";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Client listen host (`-a`, `--addr`, `--net`, `host`, `net`, `listen`).
    pub host: String,
    /// Client port; 0 picks a free port (nats-server spells that `-1`).
    pub port: u16,
    /// `client_advertise`, `--client_advertise`: the `host[:port]` clients
    /// are told (INFO `host`/`port`) and the peers gossip for this server
    /// in `connect_urls`; `None`: the listener's. Checked once the port is
    /// known (`server::start`), as nats-server does.
    pub client_advertise: Option<String>,
    /// Monitoring listen host (`http: host:port`); `None`: the client host.
    pub http_host: Option<String>,
    /// Monitoring port (`-m`, `http_port`, `http`); `None`: no monitoring,
    /// `Some(0)`: a free port (nats-server spells that `-1`).
    pub http_port: Option<u16>,
    /// Monitoring over HTTPS (`-ms`, `https_port`, `https`), with the
    /// client port's certificate; same conventions as `http_port`, and
    /// exclusive with it.
    pub https_port: Option<u16>,
    /// `http_base_path`: prefix of every monitoring path ("" for none).
    pub http_base_path: String,
    /// `server_name`; `None` means "use the generated server id".
    pub server_name: Option<String>,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    pub max_connections: usize,
    /// Per connection; 0 = unlimited.
    pub max_subscriptions: usize,
    /// `max_sub_tokens`: most tokens a client's subscription subject may
    /// have (0: no limit, the default).
    pub max_sub_tokens: u8,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    /// `no_header_support`: INFO advertises `headers:false`.
    pub no_header_support: bool,
    /// `connect_error_reports`: failed dials of a route never reached yet
    /// are logged as errors at the first attempt and every Nth (the others
    /// at debug level); 0 in the file means the default.
    pub connect_error_reports: i64,
    /// `reconnect_error_reports`: the same for a route that was lost.
    pub reconnect_error_reports: i64,
    /// `prof_port`, `--profile`: nats-server's Go pprof HTTP port (0: off).
    /// percore has no such profiler: it starts nothing there and says so
    /// once at start-up (see `main`).
    pub prof_port: i64,
    /// `disable_sublist_cache`, `no_sublist_cache`: the shards cache no
    /// subject match results (less memory with many distinct subjects,
    /// a trie walk per publish); `/subsz` then shows `num_cache` 0.
    pub no_sublist_cache: bool,
    /// `server_tags`: lower case, trimmed, without repeats (nats-server's
    /// tag list); `/varz` reports them as `tags`.
    pub server_tags: Vec<String>,
    pub debug: bool,
    pub trace: bool,
    /// `trace_verbose`, `-VV`: `trace`, and the system account's own
    /// traffic traced as well (nats-server's `TraceVerbose`).
    pub trace_verbose: bool,
    /// `max_traced_msg_len`, `--max_traced_msg_len`: at most this many
    /// payload bytes in a `MSG_PAYLOAD` trace line; 0 (or a negative value
    /// in the file) for no limit.
    pub max_traced_msg_len: usize,
    /// Log lines carry a timestamp (`-T`, `logtime`).
    pub logtime: bool,
    pub logfile: Option<PathBuf>,
    /// `logfile_size_limit`, `log_size_limit`, `--log_size_limit`: once the
    /// log file passes this many bytes it is moved to a timestamped backup
    /// and a new one started; 0 or less: never (nats-server's int64).
    pub log_size_limit: i64,
    /// `syslog`, `-s`: log to the local syslog (`/dev/log`) instead of
    /// stderr; a log file wins over it, as in nats-server.
    pub syslog: bool,
    /// `remote_syslog`, `-r`: log to the syslog at this URL
    /// (`udp://host:port`, `tcp://host:port`, `unix:///path`); a log file
    /// wins over it, and it over `syslog`.
    pub remote_syslog: Option<String>,
    pub pidfile: Option<PathBuf>,
    /// `ports_file_dir`: where to write the listeners' URLs once bound
    /// (`ports_file`); `None`: no ports file.
    pub ports_file_dir: Option<PathBuf>,
    /// The config file this came from, if any (for log lines and reload).
    pub config_file: Option<PathBuf>,
    /// `-js=false` was on the command line: a `jetstream` entry in the file
    /// that would enable JetStream is overridden (its keys still checked),
    /// as nats-server's flags override its file.
    pub jetstream_off_by_flag: bool,
    /// Number of shards (executors); 0 means one per available CPU (one in
    /// all on hosts with two CPUs or fewer: see `server::default_shard_count`).
    pub shards: usize,
    /// Pin shard i to CPU i.
    pub pin: bool,
    /// `--tls_offload[=bool]` (percore's own): run each TLS handshake's
    /// crypto (key exchange, signature, certificate checks) on the shard's
    /// blocking thread instead of the shard, so a costly handshake (RSA
    /// signing is ~1 ms) does not delay the shard's other connections, at
    /// the cost of two thread hops per handshake. `None`: decided by the
    /// server key's type, offloaded for RSA only (`tls::offload`, measured
    /// with `benches/tls-compare.sh --scenarios lat10k-hs100`).
    pub tls_offload: Option<bool>,
    /// Who may connect (`authorization`, `no_auth_user`, `--user`,
    /// `--pass`, `--auth`); the default requires no authentication.
    pub auth: AuthPolicy,
    /// `accounts`, `system_account`: `$G` and `$SYS` by default.
    pub accounts: AccountTable,
    /// Operator mode (`operator`/`trusted_keys`, `resolver`): `None`
    /// outside it.
    pub operator: Option<super::operator::OperatorOptions>,
    /// The client port's TLS (`tls {}`, `--tls*`); `None`: plaintext.
    pub tls: Option<TlsOptions>,
    /// `allow_non_tls`: with `tls`, clients may also connect in plaintext
    /// (INFO `tls_available` instead of `tls_required`).
    pub allow_non_tls: bool,
    /// `cluster` and the clustering flags; clustering is on when its port
    /// is set (`ClusterOptions::enabled`).
    pub cluster: Option<ClusterOptions>,
    /// Deprecation warnings from the config file (e.g. an integer
    /// `ping_interval`), each `<file>:<line>:<col>: ...`; print them to
    /// stderr at start-up as nats-server does.
    pub config_warnings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            client_advertise: None,
            http_host: None,
            http_port: None,
            https_port: None,
            http_base_path: String::new(),
            server_name: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_pending: DEFAULT_MAX_PENDING,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: 0,
            max_sub_tokens: 0,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            no_header_support: false,
            no_sublist_cache: false,
            prof_port: 0,
            connect_error_reports: DEFAULT_CONNECT_ERROR_REPORTS,
            reconnect_error_reports: DEFAULT_RECONNECT_ERROR_REPORTS,
            server_tags: Vec::new(),
            debug: false,
            trace: false,
            trace_verbose: false,
            max_traced_msg_len: 0,
            logtime: true,
            logfile: None,
            log_size_limit: 0,
            syslog: false,
            remote_syslog: None,
            pidfile: None,
            ports_file_dir: None,
            config_file: None,
            jetstream_off_by_flag: false,
            shards: 0,
            pin: false,
            tls_offload: None,
            auth: AuthPolicy::default(),
            accounts: AccountTable::default(),
            operator: None,
            tls: None,
            allow_non_tls: false,
            cluster: None,
            config_warnings: Vec::new(),
        }
    }
}
