//! Applies a parsed config file (see `conf`) to [`Options`]: the top-level
//! keys percore implements, nats-server's value rules for them, and a clear
//! refusal of every nats-server key whose feature percore does not have yet
//! (a silently ignored `tls` or `operator` block would be a security hole).
//! The `authorization` block has a module of its own, `auth`; so have
//! `accounts` and the system account keys: `accounts`.

use std::path::PathBuf;
use std::time::Duration;

use super::accounts::AccountKeys;
use super::auth;
use super::conf::{Entry, Map, Value};
use super::duration::{format_go_duration, parse_go_duration};
use super::entry::{boolean, integer, non_empty, not_supported_yet, string, wrong_type};
use super::error::ConfigError;
use super::jetstream;
use super::operator::{self, OperatorKeys};
use super::options::{self, Options};
use super::tls;
use super::unserved_listeners;

/// Keys nats-server 2.9.10 understands at the top level but percore does not
/// implement yet. Lower case, as nats-server compares keys case-insensitively.
const NOT_SUPPORTED_YET: &[&str] = &[
    "gateway",
    "leaf",
    "leafnodes",
    "ocsp",
    "websocket",
    "ws",
    "mqtt",
    "default_js_domain",
];

/// `server_tags`: one string or an array of strings, added to `tags` as
/// nats-server's tag list adds them (lower case, trimmed, no empty tag, no
/// repeat). nats-server's errors name Go's types.
fn server_tags(entry: &Entry, tags: &mut Vec<String>) -> Result<(), ConfigError> {
    let mut add = |tag: &str| {
        let tag = tag.trim().to_lowercase();
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    };
    let unsupported = |what: &str| {
        ConfigError::at(
            &entry.key_pos,
            format!("error parsing tags: unsupported type {what}"),
        )
    };
    match &entry.node.value {
        Value::String(tag) => add(tag),
        Value::Array(items) => {
            for item in items {
                match &item.value {
                    Value::String(tag) => add(tag),
                    _ => return Err(unsupported("*conf.token where string is expected")),
                }
            }
        }
        other => return Err(unsupported(super::error::go_type(other))),
    }
    Ok(())
}

/// nats-server's minimum for `lame_duck_duration`.
const MIN_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);

/// Applies every top-level entry of `config` to `opts`, in file order (a
/// later key wins). Returns the warnings nats-server would print at start-up
/// (each `<file>:<line>:<col>: ...`); `-t` treats them as errors, as
/// nats-server does.
/// The accounts keys are collected and applied last, once the
/// `authorization` block they are checked against is known.
pub fn apply_config(config: &Map, opts: &mut Options) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    let mut account_keys = AccountKeys::default();
    let mut operator_keys = OperatorKeys::default();
    for entry in config.entries() {
        apply_entry(
            entry,
            opts,
            &mut warnings,
            &mut account_keys,
            &mut operator_keys,
        )?;
    }
    operator::apply(operator_keys, account_keys, opts)?;
    Ok(warnings)
}

fn apply_entry<'a>(
    entry: &'a Entry,
    opts: &mut Options,
    warnings: &mut Vec<String>,
    account_keys: &mut AccountKeys<'a>,
    operator_keys: &mut OperatorKeys<'a>,
) -> Result<(), ConfigError> {
    let key = entry.key.to_ascii_lowercase();
    match key.as_str() {
        "listen" => apply_listen(entry, opts)?,
        "port" => opts.port = port_value(entry, integer(entry)?)?,
        "host" | "net" => opts.host = host_value(string(entry)?),
        "server_name" => opts.server_name = non_empty(string(entry)?),
        "debug" => opts.debug = boolean(entry)?,
        "trace" => opts.trace = boolean(entry)?,
        // As nats-server: verbose tracing is tracing too.
        "trace_verbose" => {
            opts.trace_verbose = boolean(entry)?;
            opts.trace = opts.trace_verbose;
        }
        "max_traced_msg_len" => opts.max_traced_msg_len = traced_msg_len(integer(entry)?),
        "logtime" => opts.logtime = boolean(entry)?,
        "no_header_support" => opts.no_header_support = boolean(entry)?,
        "server_tags" => server_tags(entry, &mut opts.server_tags)?,
        "logfile" | "log_file" => opts.logfile = non_empty(string(entry)?).map(PathBuf::from),
        // An integer, sizes such as `10MB` included (the lexer turns them
        // into one); a quoted "10MB" is a string, refused as nats-server
        // refuses it.
        "logfile_size_limit" | "log_size_limit" => opts.log_size_limit = integer(entry)?,
        "syslog" => opts.syslog = boolean(entry)?,
        "remote_syslog" => opts.remote_syslog = non_empty(string(entry)?),
        "pidfile" | "pid_file" => opts.pidfile = non_empty(string(entry)?).map(PathBuf::from),
        "ports_file_dir" => {
            opts.ports_file_dir = non_empty(string(entry)?).map(PathBuf::from);
        }
        "max_payload" => {
            opts.max_payload = limit_i32(entry, options::DEFAULT_MAX_PAYLOAD)?;
        }
        "max_control_line" => {
            opts.max_control_line = limit_i32(entry, options::DEFAULT_MAX_CONTROL_LINE)?;
        }
        "max_pending" => opts.max_pending = max_pending(entry)?,
        "max_connections" | "max_conn" => opts.max_connections = max_connections(entry)?,
        "max_sub_tokens" | "max_subscription_tokens" => {
            opts.max_sub_tokens = max_sub_tokens(entry)?;
        }
        "max_subscriptions" | "max_subs" => {
            // nats-server treats zero and negative values as "no limit".
            opts.max_subscriptions = usize::try_from(integer(entry)?).unwrap_or(0);
        }
        "ping_interval" => {
            opts.ping_interval =
                lenient_duration(entry, warnings)?.unwrap_or(options::DEFAULT_PING_INTERVAL);
        }
        "write_deadline" => {
            opts.write_deadline =
                lenient_duration(entry, warnings)?.unwrap_or(options::DEFAULT_WRITE_DEADLINE);
        }
        "ping_max" => opts.ping_max = ping_max(entry)?,
        "lame_duck_duration" => opts.lame_duck_duration = lame_duck_duration(entry)?,
        "lame_duck_grace_period" => opts.lame_duck_grace_period = lame_duck_grace_period(entry)?,
        "http_port" | "monitor_port" => {
            opts.http_port = http_port_value(entry, integer(entry)?)?;
        }
        "http" => apply_http(entry, opts)?,
        "https_port" => opts.https_port = http_port_value(entry, integer(entry)?)?,
        "https" => {
            let (host, port) = host_and_port(entry)?;
            opts.https_port = http_port_value(entry, port)?;
            if let Some(host) = host {
                opts.http_host = (!host.is_empty()).then(|| host.to_string());
            }
        }
        "http_base_path" => opts.http_base_path = string(entry)?.to_string(),
        "client_advertise" => opts.client_advertise = non_empty(string(entry)?),
        "disable_sublist_cache" | "no_sublist_cache" => opts.no_sublist_cache = boolean(entry)?,
        "prof_port" => opts.prof_port = integer(entry)?,
        // As nats-server: 0 is the default.
        "connect_error_reports" => {
            opts.connect_error_reports = match integer(entry)? {
                0 => options::DEFAULT_CONNECT_ERROR_REPORTS,
                n => n,
            }
        }
        "reconnect_error_reports" => {
            opts.reconnect_error_reports = match integer(entry)? {
                0 => options::DEFAULT_RECONNECT_ERROR_REPORTS,
                n => n,
            }
        }
        // JetStream's directory: nats-server accepts it without JetStream
        // enabled, and so do we (JetStream itself is refused).
        "store_dir" | "storedir" => {
            string(entry)?;
        }
        "shards" => opts.shards = shards(entry)?,
        "pin" => opts.pin = boolean(entry)?,
        "authorization" => auth::apply_authorization(entry, &mut opts.auth)?,
        "cluster" => {
            let cluster = opts.cluster.get_or_insert_with(Default::default);
            warnings.extend(super::cluster::apply_cluster(entry, cluster)?);
        }
        "no_auth_user" => opts.auth.no_auth_user = non_empty(string(entry)?),
        "accounts" => account_keys.accounts = Some(entry),
        "mappings" | "maps" => account_keys.mappings = Some(entry),
        "system_account" => account_keys.system_account = Some(entry),
        "system" => account_keys.system = Some(entry),
        "no_system_account" | "no_system" | "no_sys_acc" => {
            account_keys.no_system_account = boolean(entry)?;
        }
        "operator" | "operators" | "roots" | "root" | "root_operators" | "root_operator" => {
            operator_keys.operator = Some(entry);
        }
        "trusted" | "trusted_keys" => operator_keys.trusted = Some(entry),
        "resolver" | "account_resolver" | "accounts_resolver" => {
            operator_keys.resolver = Some(entry);
        }
        "resolver_preload" => operator_keys.preload = Some(entry),
        "resolver_tls" => operator_keys.tls = Some(entry),
        "resolver_pinned_accounts" => operator_keys.pinned = Some(entry),
        "tls" => opts.tls = Some(tls::apply_tls(entry)?),
        "jetstream" if opts.jetstream_off_by_flag => jetstream::check_overridden(entry)?,
        "jetstream" => jetstream::apply(entry)?,
        "allow_non_tls" => opts.allow_non_tls = boolean(entry)?,
        "websocket" | "ws" | "mqtt" | "leafnodes" | "leaf" => unserved_listeners::apply(entry)?,
        _ if NOT_SUPPORTED_YET.contains(&key.as_str()) => return Err(not_supported_yet(entry)),
        // A key that only serves as a `$variable` is fine (nats-server too).
        _ if entry.used_as_variable => {}
        _ => {
            return Err(ConfigError::at(
                &entry.key_pos,
                format!("unknown field \"{}\"", entry.key),
            ));
        }
    }
    Ok(())
}

/// `max_traced_msg_len`: nats-server truncates only for a positive
/// value, so zero and negative values both mean "no limit".
pub fn traced_msg_len(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// An empty host means the default, as in nats-server.
pub fn host_value(text: &str) -> String {
    if text.is_empty() {
        options::DEFAULT_HOST.to_string()
    } else {
        text.to_string()
    }
}

fn out_of_range(entry: &Entry, what: impl std::fmt::Display) -> ConfigError {
    ConfigError::at(&entry.key_pos, what)
}

// ---- individual keys -------------------------------------------------------

/// nats-server's port convention: -1 picks a free port (our 0), 0 means the
/// default port.
pub fn port_number(port: i64) -> Result<u16, String> {
    match port {
        -1 => Ok(0),
        0 => Ok(options::DEFAULT_PORT),
        1..=65535 => Ok(port as u16), // range checked by the pattern
        _ => Err(format!(
            "port {port} is out of range (use 1-65535, or -1 for a random port)"
        )),
    }
}

fn port_value(entry: &Entry, port: i64) -> Result<u16, ConfigError> {
    port_number(port).map_err(|e| out_of_range(entry, e))
}

/// nats-server's monitoring port convention: -1 picks a free port (our
/// `Some(0)`), 0 means no monitoring.
pub fn http_port_number(port: i64) -> Result<Option<u16>, String> {
    match port {
        0 => Ok(None),
        _ => port_number(port).map(Some),
    }
}

fn http_port_value(entry: &Entry, port: i64) -> Result<Option<u16>, ConfigError> {
    http_port_number(port).map_err(|e| out_of_range(entry, e))
}

/// `http: 8222` or `http: "host:port"` (monitoring).
fn apply_http(entry: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let (host, port) = host_and_port(entry)?;
    opts.http_port = http_port_value(entry, port)?;
    if let Some(host) = host {
        opts.http_host = (!host.is_empty()).then(|| host.to_string());
    }
    Ok(())
}

/// `listen: 4222`, `listen: "host:port"`, `listen: ":4222"`, `[::1]:4222`.
fn apply_listen(entry: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let (host, port) = host_and_port(entry)?;
    opts.port = port_value(entry, port)?;
    if let Some(host) = host {
        opts.host = host_value(host);
    }
    Ok(())
}

/// A listen address as `listen` and `http` take it: a bare port (no host)
/// or `"host:port"`; the port as written, for the caller's range rules.
pub(super) fn host_and_port(entry: &Entry) -> Result<(Option<&str>, i64), ConfigError> {
    match &entry.node.value {
        Value::Integer(port) => Ok((None, *port)),
        Value::String(text) => {
            let (host, port_text) = split_host_port(text).ok_or_else(|| {
                out_of_range(entry, format!("could not parse address string \"{text}\""))
            })?;
            let port = port_text.parse().map_err(|_| {
                out_of_range(entry, format!("could not parse port \"{port_text}\""))
            })?;
            Ok((Some(host), port))
        }
        _ => Err(wrong_type(entry, "a port or host:port")),
    }
}

/// Splits `host:port`; IPv6 hosts must be bracketed, as with Go's
/// `net.SplitHostPort`.
pub fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return (!port.contains(':')).then_some((host, port));
    }
    let (host, port) = text.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, port))
}

/// `max_payload`, `max_control_line`: nats-server keeps them in an int32;
/// zero means the default.
/// 1 to 255 tokens, as nats-server (which keeps it in a uint8); there is
/// no "0 means no limit" here, it is an error, as there.
fn max_sub_tokens(entry: &Entry) -> Result<u8, ConfigError> {
    let n = integer(entry)?;
    if n > i64::from(u8::MAX) {
        return Err(out_of_range(
            entry,
            format!("{} value is too big", entry.key),
        ));
    }
    u8::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| out_of_range(entry, format!("{} value can not be negative", entry.key)))
}

fn limit_i32(entry: &Entry, default: usize) -> Result<usize, ConfigError> {
    let n = integer(entry)?;
    if n > i64::from(i32::MAX) {
        return Err(out_of_range(
            entry,
            format!("{} value is too big", entry.key),
        ));
    }
    non_negative_or_default(entry, n, default)
}

fn non_negative_or_default(entry: &Entry, n: i64, default: usize) -> Result<usize, ConfigError> {
    match usize::try_from(n) {
        Ok(0) => Ok(default),
        Ok(v) => Ok(v),
        Err(_) => Err(out_of_range(
            entry,
            format!("{} value can not be negative", entry.key),
        )),
    }
}

fn max_pending(entry: &Entry) -> Result<usize, ConfigError> {
    non_negative_or_default(entry, integer(entry)?, options::DEFAULT_MAX_PENDING)
}

/// Zero means the default; a negative value disables the limit, as in
/// nats-server.
fn max_connections(entry: &Entry) -> Result<usize, ConfigError> {
    let n = integer(entry)?;
    Ok(match usize::try_from(n) {
        Ok(0) => options::DEFAULT_MAX_CONNECTIONS,
        Ok(v) => v,
        Err(_) => usize::MAX,
    })
}

fn ping_max(entry: &Entry) -> Result<u32, ConfigError> {
    let n = integer(entry)?;
    if n > i64::from(u32::MAX) {
        return Err(out_of_range(
            entry,
            format!("{} value is too big", entry.key),
        ));
    }
    let n = non_negative_or_default(entry, n, options::DEFAULT_PING_MAX as usize)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn shards(entry: &Entry) -> Result<usize, ConfigError> {
    usize::try_from(integer(entry)?)
        .map_err(|_| out_of_range(entry, format!("{} value can not be negative", entry.key)))
}

/// A Go duration string, as a non-negative `Duration`.
fn duration_string(entry: &Entry, text: &str) -> Result<Duration, ConfigError> {
    let nanos = parse_go_duration(text)
        .map_err(|reason| out_of_range(entry, format!("error parsing {}: {reason}", entry.key)))?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| out_of_range(entry, format!("{} can not be negative", entry.key)))
}

/// `ping_interval`, `write_deadline`: a duration string, or (deprecated, with
/// a warning) an integer number of seconds. `None` for zero: the default.
fn lenient_duration(
    entry: &Entry,
    warnings: &mut Vec<String>,
) -> Result<Option<Duration>, ConfigError> {
    let duration = match &entry.node.value {
        Value::String(text) => duration_string(entry, text)?,
        Value::Integer(seconds) => {
            warnings.push(
                ConfigError::at(
                    &entry.key_pos,
                    format!(
                        "invalid use of field \"{key}\": {key} should be converted to a duration",
                        key = entry.key
                    ),
                )
                .to_string(),
            );
            let seconds = u64::try_from(*seconds)
                .map_err(|_| out_of_range(entry, format!("{} can not be negative", entry.key)))?;
            Duration::from_secs(seconds)
        }
        _ => return Err(wrong_type(entry, "a duration such as \"10s\"")),
    };
    Ok((!duration.is_zero()).then_some(duration))
}

fn lame_duck_duration(entry: &Entry) -> Result<Duration, ConfigError> {
    let text = match &entry.node.value {
        Value::String(text) => text,
        _ => return Err(wrong_type(entry, "a duration such as \"2m\"")),
    };
    let nanos = parse_go_duration(text).map_err(|reason| {
        out_of_range(entry, format!("error parsing lame_duck_duration: {reason}"))
    })?;
    let duration = u64::try_from(nanos)
        .map(Duration::from_nanos)
        .unwrap_or_default();
    if nanos < 0 || duration < MIN_LAME_DUCK_DURATION {
        return Err(out_of_range(
            entry,
            format!(
                "invalid lame_duck_duration of {}, minimum is 30 seconds",
                format_go_duration(i128::from(nanos))
            ),
        ));
    }
    Ok(duration)
}

fn lame_duck_grace_period(entry: &Entry) -> Result<Duration, ConfigError> {
    let text = match &entry.node.value {
        Value::String(text) => text,
        _ => return Err(wrong_type(entry, "a duration such as \"10s\"")),
    };
    let nanos = parse_go_duration(text).map_err(|reason| {
        out_of_range(
            entry,
            format!("error parsing lame_duck_grace_period: {reason}"),
        )
    })?;
    match u64::try_from(nanos) {
        Ok(0) => Ok(options::DEFAULT_LAME_DUCK_GRACE_PERIOD),
        Ok(n) => Ok(Duration::from_nanos(n)),
        Err(_) => Err(out_of_range(
            entry,
            "invalid lame_duck_grace_period, needs to be positive",
        )),
    }
}

/// Checks that span several options, after the file and the flags are
/// merged (nats-server does these when the server is created).
pub fn validate(opts: &Options) -> Result<(), ConfigError> {
    if opts.lame_duck_grace_period >= opts.lame_duck_duration {
        return Err(ConfigError::new(format!(
            "lame duck grace period ({}) should be strictly lower than lame duck duration ({})",
            go_duration(opts.lame_duck_grace_period),
            go_duration(opts.lame_duck_duration)
        )));
    }
    if opts.max_payload > opts.max_pending {
        return Err(ConfigError::new(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            opts.max_payload, opts.max_pending
        )));
    }
    if let Some(tls) = &opts.tls {
        tls::validate(tls)?;
    }
    if let (Some(http), Some(https)) = (opts.http_port, opts.https_port) {
        return Err(ConfigError::new(format!(
            "can't specify both HTTP ({http}) and HTTPs ({https}) ports"
        )));
    }
    if opts.https_port.is_some() && opts.tls.is_none() {
        return Err(ConfigError::new("TLS cert and key required for HTTPS"));
    }
    auth::validate(&opts.auth)
}

fn go_duration(d: Duration) -> String {
    format_go_duration(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(source: &str) -> Result<(Options, Vec<String>), String> {
        let map = parse_str(source, "x.conf", &no_env).map_err(|e| e.to_string())?;
        let mut opts = Options::default();
        let warnings = apply_config(&map, &mut opts).map_err(|e| e.to_string())?;
        Ok((opts, warnings))
    }

    fn load_ok(source: &str) -> Options {
        match load(source) {
            Ok((opts, warnings)) => {
                assert!(warnings.is_empty(), "unexpected warnings {warnings:?}");
                opts
            }
            Err(e) => panic!("unexpected error for {source:?}: {e}"),
        }
    }

    fn load_err(source: &str) -> String {
        match load(source) {
            Ok((opts, _)) => panic!("expected an error for {source:?}, got {opts:?}"),
            Err(e) => e,
        }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn server_tags_take_a_string_or_strings_as_nats_servers_tag_list() {
        assert_eq!(load_ok("server_tags: \" Az \"").server_tags, ["az"]);
        assert_eq!(
            load_ok("server_tags: [a, \"B \", A, \"\", c]").server_tags,
            ["a", "b", "c"]
        );
        assert_eq!(
            load_err("server_tags: 1"),
            "x.conf:1:0: error parsing tags: unsupported type int64"
        );
        assert_eq!(
            load_err("server_tags: [a, 1]"),
            "x.conf:1:0: error parsing tags: unsupported type *conf.token where string is expected"
        );
    }

    #[test]
    fn ports_file_dir_is_a_directory_name() {
        assert_eq!(
            load_ok("ports_file_dir: /tmp/p").ports_file_dir,
            Some(PathBuf::from("/tmp/p"))
        );
        assert_eq!(load_ok("ports_file_dir: \"\"").ports_file_dir, None);
        assert_eq!(
            load_err("ports_file_dir: 5"),
            "x.conf:1:0: invalid value for \"ports_file_dir\": expected a string, got an integer"
        );
    }

    #[test]
    fn empty_file_keeps_the_defaults() {
        assert_eq!(load_ok(""), Options::default());
    }

    #[test]
    fn every_core_key() {
        let opts = load_ok(
            "port: 4333\nhost: 127.0.0.1\nserver_name: n1\nmax_payload: 2MB\nmax_pending: 128MB\n\
             max_control_line: 8KB\nmax_connections: 100\nmax_subscriptions: 50\nping_interval: \"30s\"\n\
             ping_max: 5\nwrite_deadline: \"1.5s\"\ndebug: true\ntrace: yes\nlogtime: off\n\
             logfile: /var/log/p.log\npidfile: '/run/p.pid'\nlame_duck_duration: \"1m30s\"\n\
             lame_duck_grace_period: \"20s\"\nno_header_support: true\nshards: 4\npin: true\n",
        );
        let expected = Options {
            port: 4333,
            host: "127.0.0.1".into(),
            server_name: Some("n1".into()),
            max_payload: 2 * 1024 * 1024,
            max_pending: 128 * 1024 * 1024,
            max_control_line: 8 * 1024,
            max_connections: 100,
            max_subscriptions: 50,
            ping_interval: 30 * SEC,
            ping_max: 5,
            write_deadline: Duration::from_millis(1500),
            debug: true,
            trace: true,
            logtime: false,
            logfile: Some("/var/log/p.log".into()),
            pidfile: Some("/run/p.pid".into()),
            lame_duck_duration: 90 * SEC,
            lame_duck_grace_period: 20 * SEC,
            no_header_support: true,
            shards: 4,
            pin: true,
            ..Options::default()
        };
        assert_eq!(opts, expected);
    }

    #[test]
    fn aliases() {
        let opts =
            load_ok("net: 10.0.0.1\nmax_conn: 7\nmax_subs: 9\nlog_file: a.log\npid_file: a.pid");
        assert_eq!(opts.host, "10.0.0.1");
        assert_eq!(opts.max_connections, 7);
        assert_eq!(opts.max_subscriptions, 9);
        assert_eq!(opts.logfile, Some("a.log".into()));
        assert_eq!(opts.pidfile, Some("a.pid".into()));
        // Keys are case-insensitive, as in nats-server.
        let opts = load_ok("PORT: 4333\nMax_Payload: 1KB");
        assert_eq!(opts.port, 4333);
        assert_eq!(opts.max_payload, 1024);
    }

    #[test]
    fn logging_keys() {
        let opts = load_ok("logfile: p.log\nlogfile_size_limit: 1MB");
        assert_eq!(opts.log_size_limit, 1024 * 1024);
        assert_eq!(load_ok("log_size_limit: 100").log_size_limit, 100);
        // nats-server keeps any integer; only a positive one rotates.
        assert_eq!(load_ok("log_size_limit: -5").log_size_limit, -5);
        assert_eq!(
            load_err("log_size_limit: \"1MB\""),
            "x.conf:1:0: invalid value for \"log_size_limit\": expected an integer, got a string"
        );
        let opts = load_ok("syslog: true\nremote_syslog: \"udp://127.0.0.1:514\"");
        assert!(opts.syslog);
        assert_eq!(opts.remote_syslog.as_deref(), Some("udp://127.0.0.1:514"));
        assert_eq!(load_ok("remote_syslog: \"\"").remote_syslog, None);
        // The URL is checked when the server starts, as nats-server's -t
        // accepts any string.
        assert_eq!(
            load_ok("remote_syslog: \"bogus://x\"")
                .remote_syslog
                .as_deref(),
            Some("bogus://x")
        );
        assert_eq!(
            load_err("syslog: 1"),
            "x.conf:1:0: invalid value for \"syslog\": expected a boolean, got an integer"
        );
        assert_eq!(load_ok("max_traced_msg_len: 16").max_traced_msg_len, 16);
        assert_eq!(load_ok("max_traced_msg_len: -1").max_traced_msg_len, 0);
        assert_eq!(
            load_err("max_traced_msg_len: \"5\""),
            "x.conf:1:0: invalid value for \"max_traced_msg_len\": expected an integer, got a string"
        );
        // trace_verbose sets trace too, both ways, as nats-server.
        let opts = load_ok("trace_verbose: true");
        assert!(opts.trace && opts.trace_verbose);
        let opts = load_ok("trace: true\ntrace_verbose: false");
        assert!(!opts.trace && !opts.trace_verbose);
        assert!(load_ok("trace_verbose: false\ntrace: true").trace);
    }

    #[test]
    fn listen_forms() {
        let opts = load_ok("listen: 127.0.0.1:4333");
        assert_eq!((opts.host.as_str(), opts.port), ("127.0.0.1", 4333));
        let opts = load_ok("listen: \"localhost:4334\"");
        assert_eq!((opts.host.as_str(), opts.port), ("localhost", 4334));
        let opts = load_ok("host: 10.1.1.1\nlisten: 4335");
        assert_eq!((opts.host.as_str(), opts.port), ("10.1.1.1", 4335));
        let opts = load_ok("listen: \":4336\"");
        assert_eq!((opts.host.as_str(), opts.port), ("0.0.0.0", 4336));
        let opts = load_ok("listen: :4337");
        assert_eq!((opts.host.as_str(), opts.port), ("0.0.0.0", 4337));
        let opts = load_ok("listen: \"[::1]:4338\"");
        assert_eq!((opts.host.as_str(), opts.port), ("::1", 4338));
        let opts = load_ok("listen: 127.0.0.1:-1");
        assert_eq!(opts.port, 0);
        // A later key wins.
        let opts = load_ok("listen: 1.2.3.4:5000\nport: 6000");
        assert_eq!((opts.host.as_str(), opts.port), ("1.2.3.4", 6000));
        assert_eq!(
            load_err("listen: \"abc\""),
            "x.conf:1:0: could not parse address string \"abc\""
        );
        assert_eq!(
            load_err("listen: \"::1:4222\""),
            "x.conf:1:0: could not parse address string \"::1:4222\""
        );
        assert_eq!(
            load_err("listen: \"h:abc\""),
            "x.conf:1:0: could not parse port \"abc\""
        );
        assert_eq!(
            load_err("listen: true"),
            "x.conf:1:0: invalid value for \"listen\": expected a port or host:port, got a boolean"
        );
    }

    #[test]
    fn port_conventions() {
        assert_eq!(load_ok("port: -1").port, 0);
        assert_eq!(load_ok("port: 0").port, 4222);
        assert_eq!(load_ok("port: 65535").port, 65535);
        assert_eq!(
            load_err("port: 65536"),
            "x.conf:1:0: port 65536 is out of range (use 1-65535, or -1 for a random port)"
        );
        assert_eq!(
            load_err("port: -2"),
            "x.conf:1:0: port -2 is out of range (use 1-65535, or -1 for a random port)"
        );
    }

    #[test]
    fn zero_means_default() {
        let opts = load_ok(
            "max_payload: 0\nmax_pending: 0\nmax_control_line: 0\nmax_connections: 0\nping_max: 0\n\
             ping_interval: \"0s\"\nwrite_deadline: \"0\"\nlame_duck_grace_period: \"0s\"\nhost: \"\"\nserver_name: \"\"",
        );
        assert_eq!(opts, Options::default());
    }

    #[test]
    fn max_sub_tokens_is_one_to_255() {
        assert_eq!(load_ok("max_sub_tokens: 3").max_sub_tokens, 3);
        assert_eq!(load_ok("max_subscription_tokens: 255").max_sub_tokens, 255);
        assert_eq!(load_ok("").max_sub_tokens, 0);
        // nats-server 2.9.10's texts, positions as its lexer counts them.
        assert_eq!(
            load_err("max_sub_tokens: 256"),
            "x.conf:1:0: max_sub_tokens value is too big"
        );
        assert_eq!(
            load_err("max_sub_tokens: 0"),
            "x.conf:1:0: max_sub_tokens value can not be negative"
        );
        assert_eq!(
            load_err("\nmax_subscription_tokens: -1"),
            "x.conf:2:1: max_subscription_tokens value can not be negative"
        );
    }

    #[test]
    fn limits() {
        assert_eq!(load_ok("max_connections: -1").max_connections, usize::MAX);
        assert_eq!(load_ok("max_subscriptions: -1").max_subscriptions, 0);
        assert_eq!(
            load_ok("max_payload: 2147483647").max_payload,
            2_147_483_647
        );
        assert_eq!(
            load_err("max_payload: 2147483648"),
            "x.conf:1:0: max_payload value is too big"
        );
        assert_eq!(
            load_err("max_control_line: 4GB"),
            "x.conf:1:0: max_control_line value is too big"
        );
        assert_eq!(
            load_err("max_payload: -5"),
            "x.conf:1:0: max_payload value can not be negative"
        );
        assert_eq!(
            load_err("max_pending: -1"),
            "x.conf:1:0: max_pending value can not be negative"
        );
        assert_eq!(
            load_err("ping_max: -1"),
            "x.conf:1:0: ping_max value can not be negative"
        );
        assert_eq!(
            load_err("ping_max: 5000000000"),
            "x.conf:1:0: ping_max value is too big"
        );
        assert_eq!(
            load_err("shards: -1"),
            "x.conf:1:0: shards value can not be negative"
        );
    }

    #[test]
    fn durations() {
        let opts = load_ok("ping_interval: \"2m\"\nwrite_deadline: \"500ms\"");
        assert_eq!(opts.ping_interval, 120 * SEC);
        assert_eq!(opts.write_deadline, Duration::from_millis(500));
        let opts = load_ok("ping_interval: \"1h30m\"");
        assert_eq!(opts.ping_interval, 5400 * SEC);
        assert_eq!(
            load_err("write_deadline: \"abc\""),
            "x.conf:1:0: error parsing write_deadline: time: invalid duration \"abc\""
        );
        assert_eq!(
            load_err("ping_interval: \"10\""),
            "x.conf:1:0: error parsing ping_interval: time: missing unit in duration \"10\""
        );
        assert_eq!(
            load_err("ping_interval: \"-1s\""),
            "x.conf:1:0: ping_interval can not be negative"
        );
        assert_eq!(
            load_err("ping_interval: true"),
            "x.conf:1:0: invalid value for \"ping_interval\": expected a duration such as \"10s\", got a boolean"
        );
    }

    #[test]
    fn integer_seconds_are_accepted_with_a_warning() {
        let (opts, warnings) = load("ping_interval: 60\nwrite_deadline: 3").expect("load");
        assert_eq!(opts.ping_interval, 60 * SEC);
        assert_eq!(opts.write_deadline, 3 * SEC);
        assert_eq!(
            warnings,
            [
                "x.conf:1:0: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
                "x.conf:2:1: invalid use of field \"write_deadline\": write_deadline should be converted to a duration",
            ]
        );
    }

    #[test]
    fn lame_duck_rules() {
        assert_eq!(
            load_ok("lame_duck_duration: \"30s\"").lame_duck_duration,
            30 * SEC
        );
        assert_eq!(
            load_err("lame_duck_duration: \"10s\""),
            "x.conf:1:0: invalid lame_duck_duration of 10s, minimum is 30 seconds"
        );
        assert_eq!(
            load_err("lame_duck_duration: \"29.5s\""),
            "x.conf:1:0: invalid lame_duck_duration of 29.5s, minimum is 30 seconds"
        );
        assert_eq!(
            load_err("lame_duck_duration: \"-1m\""),
            "x.conf:1:0: invalid lame_duck_duration of -1m0s, minimum is 30 seconds"
        );
        assert_eq!(
            load_err("lame_duck_duration: 60"),
            "x.conf:1:0: invalid value for \"lame_duck_duration\": expected a duration such as \"2m\", got an integer"
        );
        assert_eq!(
            load_err("lame_duck_duration: \"x\""),
            "x.conf:1:0: error parsing lame_duck_duration: time: invalid duration \"x\""
        );
        assert_eq!(
            load_err("lame_duck_grace_period: \"-1s\""),
            "x.conf:1:0: invalid lame_duck_grace_period, needs to be positive"
        );
        assert_eq!(
            load_err("lame_duck_grace_period: \"1y\""),
            "x.conf:1:0: error parsing lame_duck_grace_period: time: unknown unit \"y\" in duration \"1y\""
        );
    }

    #[test]
    fn type_errors_point_at_the_key() {
        let cases: &[(&str, &str)] = &[
            ("port: \"abc\"", "x.conf:1:0: invalid value for \"port\": expected an integer, got a string"),
            ("port = 1\n  debug: 1", "x.conf:2:3: invalid value for \"debug\": expected a boolean, got an integer"),
            ("server_name: 5", "x.conf:1:0: invalid value for \"server_name\": expected a string, got an integer"),
            ("max_connections: 1.5", "x.conf:1:0: invalid value for \"max_connections\": expected an integer, got a float"),
            ("host: [a]", "x.conf:1:0: invalid value for \"host\": expected a string, got an array"),
            ("logfile: {}", "x.conf:1:0: invalid value for \"logfile\": expected a string, got a map"),
            ("pin: \"true\"", "x.conf:1:0: invalid value for \"pin\": expected a boolean, got a string"),
            ("max_payload: 1x", "x.conf:1:0: invalid value for \"max_payload\": expected an integer, got a string"),
            ("trace: 2020-01-01T00:00:00Z", "x.conf:1:0: invalid value for \"trace\": expected a boolean, got a datetime"),
        ];
        for (source, expected) in cases {
            assert_eq!(&load_err(source), expected, "source: {source:?}");
        }
    }

    /// Placeholder blocks for listeners percore does not serve start
    /// nothing in nats-server either and are accepted; a block that would
    /// start or configure one is refused at the key that does it.
    #[test]
    fn listener_blocks_that_start_nothing_are_accepted() {
        for source in [
            "websocket {}",
            "ws { port: 0 }",
            "mqtt { port: 0, host: \"127.0.0.1\" }",
            "leafnodes {}",
            "leaf { port: 0 }\nwebsocket {}\nmqtt {}",
        ] {
            assert_eq!(
                load(source).map(|(_, warnings)| warnings),
                Ok(vec![]),
                "{source}"
            );
        }
        for (source, error) in [
            (
                "leafnodes { port: 7422 }",
                "x.conf:1:12: \"port\" is not supported yet by percore",
            ),
            (
                "leafnodes { port: -1 }",
                "x.conf:1:12: \"port\" is not supported yet by percore",
            ),
            (
                "leafnodes { remotes: [ { url: \"nats://127.0.0.1:7422\" } ] }",
                "x.conf:1:12: \"remotes\" is not supported yet by percore",
            ),
            (
                "websocket { port: 0, no_tls: true }",
                "x.conf:1:21: \"no_tls\" is not supported yet by percore",
            ),
            (
                "ws { listen: \"0.0.0.0:8080\" }",
                "x.conf:1:5: \"listen\" is not supported yet by percore",
            ),
            (
                "mqtt: true",
                "x.conf:1:0: \"mqtt\" is not supported yet by percore",
            ),
            (
                "mqtt { port: \"1883\" }",
                "x.conf:1:7: invalid value for \"port\": expected an integer, got a string",
            ),
        ] {
            assert_eq!(load_err(source), error, "{source}");
        }
    }

    #[test]
    fn unsupported_features_are_refused() {
        for key in NOT_SUPPORTED_YET {
            assert_eq!(
                load_err(&format!("port: 1\n{key}: 1")),
                format!("x.conf:2:1: \"{key}\" is not supported yet by percore"),
            );
        }
        assert_eq!(
            load_err("accounts { A: { jetstream: enabled } }"),
            "x.conf:1:16: \"jetstream\" is not supported yet by percore (JetStream)"
        );
        assert_eq!(
            load_err("OCSP { mode: always }"),
            "x.conf:1:0: \"OCSP\" is not supported yet by percore"
        );
    }

    #[test]
    fn client_advertise_key() {
        let opts = load_ok("client_advertise: \"nats.example.com:4333\"");
        assert_eq!(
            opts.client_advertise.as_deref(),
            Some("nats.example.com:4333")
        );
        // As nats-server: empty is unset.
        assert_eq!(load_ok("client_advertise: \"\"").client_advertise, None);
        assert_eq!(Options::default().client_advertise, None);
    }

    #[test]
    fn sublist_cache_keys() {
        assert!(load_ok("disable_sublist_cache: true").no_sublist_cache);
        assert!(load_ok("no_sublist_cache: true").no_sublist_cache);
        assert!(!load_ok("no_sublist_cache: false").no_sublist_cache);
        assert!(!Options::default().no_sublist_cache);
    }

    #[test]
    fn prof_port_key() {
        assert_eq!(load_ok("prof_port: 6060").prof_port, 6060);
        assert_eq!(Options::default().prof_port, 0);
    }

    #[test]
    fn error_report_keys() {
        let opts = load_ok("connect_error_reports: 5\nreconnect_error_reports: 7");
        assert_eq!(
            (opts.connect_error_reports, opts.reconnect_error_reports),
            (5, 7)
        );
        // As nats-server: 0 is the default.
        let opts = load_ok("connect_error_reports: 0\nreconnect_error_reports: 0");
        assert_eq!(
            (opts.connect_error_reports, opts.reconnect_error_reports),
            (3600, 1)
        );
        let defaults = Options::default();
        assert_eq!(
            (
                defaults.connect_error_reports,
                defaults.reconnect_error_reports
            ),
            (3600, 1)
        );
    }

    #[test]
    fn unknown_fields() {
        assert_eq!(
            load_err("port: 4222\nfoo_unknown: 1"),
            "x.conf:2:1: unknown field \"foo_unknown\""
        );
        assert_eq!(
            load_err("a { b { c = 1 } }"),
            "x.conf:1:0: unknown field \"a\""
        );
        // A definition used as a variable is not an unknown field...
        let opts = load_ok("PORT_VAR = 4333\nsize = 2MB\nport = $PORT_VAR\nmax_payload: $size");
        assert_eq!((opts.port, opts.max_payload), (4333, 2 * 1024 * 1024));
        // ...unless it is redefined after its use.
        assert_eq!(
            load_err("v = 1\nport = $v\nv = 2"),
            "x.conf:3:1: unknown field \"v\""
        );
    }

    #[test]
    fn cross_field_checks() {
        let mut opts = load_ok("max_payload: 2MB\nmax_pending: 1MB");
        assert_eq!(
            validate(&opts).map_err(|e| e.to_string()),
            Err("max_payload (2097152) cannot be higher than max_pending (1048576)".to_string())
        );
        opts.max_pending = opts.max_payload;
        assert_eq!(validate(&opts), Ok(()));
        let opts = load_ok("lame_duck_duration: \"1m\"\nlame_duck_grace_period: \"2m\"");
        assert_eq!(
            validate(&opts).map_err(|e| e.to_string()),
            Err("lame duck grace period (2m0s) should be strictly lower than lame duck duration (1m0s)"
                .to_string())
        );
        assert_eq!(validate(&Options::default()), Ok(()));
    }

    #[test]
    fn split_host_port_like_go() {
        assert_eq!(split_host_port("h:1"), Some(("h", "1")));
        assert_eq!(split_host_port(":1"), Some(("", "1")));
        assert_eq!(split_host_port("[::1]:1"), Some(("::1", "1")));
        assert_eq!(split_host_port("h:"), Some(("h", "")));
        assert_eq!(split_host_port("h"), None);
        assert_eq!(split_host_port("::1:1"), None);
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("[::1]:1:2"), None);
    }
}
