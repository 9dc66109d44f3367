//! Command line and config file, following nats-server's so that a user can
//! swap the binary without editing flags or files.
//!
//! [`parse_invocation`] is the entry point: flags (`cli`), then the config
//! file (`conf` parses it, `load` applies it), then the flags again so that
//! they win, then the checks that span several options.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod conf;
pub mod credentials;
pub mod duration;
mod entry;
pub mod error;
mod jetstream;
pub mod load;
pub mod mappings;
pub mod operator;
pub mod operator_accounts;
pub mod options;
pub mod permissions;
pub mod tls;
mod tls_help;
mod unserved_listeners;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use options::Options;

/// What `main` should do.
// Built once per process; boxing `Options` would only complicate the caller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Start the broker with these options.
    Run(Options),
    /// `--signal <command>[=<pid or pid file>]`: signal a running server
    /// and exit (see `signal_command`).
    Signal(String),
    /// `--check-host`: check the host, print the report, exit 0 or 1.
    /// `shards` is `--shards` when given (the CPUs to check).
    CheckHost { shards: Option<i64> },
    /// Print `stdout` (may be empty) and `stderr` (may be empty), then exit with `code` (help, version, -t, unknown flag).
    Exit {
        stdout: String,
        stderr: String,
        code: i32,
    },
}

/// `args` excludes argv[0]. Errors print as one line (`percore: <file>:<line>:<col>: <message>` for config errors) and exit 1.
///
/// Print an error as `percore: {err}` (its `Display` has no program name),
/// or use [`ConfigError::into_exit`]. On `Run`, print each of
/// `Options::config_warnings` to stderr before starting, as nats-server does.
pub fn parse_invocation(args: Vec<String>) -> Result<Invocation, ConfigError> {
    parse_invocation_with_env(&args, &conf::process_env)
}

/// [`parse_invocation`] with an explicit environment for `$VAR` lookups.
pub fn parse_invocation_with_env(
    args: &[String],
    env: conf::EnvLookup<'_>,
) -> Result<Invocation, ConfigError> {
    let flags = match cli::parse_flags(args) {
        Ok(flags) => flags,
        // nats-server prints the usage and exits 0 here (a quirk of its
        // usage handler); scripts may depend on it.
        Err(message) => {
            return Ok(Invocation::Exit {
                stdout: cli::usage(),
                stderr: format!("{message}\n"),
                code: 0,
            })
        }
    };
    if flags.version {
        return Ok(print(cli::version_line()));
    }
    if flags.help {
        return Ok(print(cli::usage()));
    }
    // After -v and -h, as nats-server checks them.
    if flags.help_tls {
        return Ok(print(tls_help::tls_help()));
    }
    if flags.check_host {
        return Ok(Invocation::CheckHost {
            shards: flags.shards,
        });
    }
    if let Some(command) = flags.positional.first() {
        return match command.to_ascii_lowercase().as_str() {
            "version" => Ok(print(cli::version_line())),
            "help" => Ok(print(cli::usage())),
            _ => Err(ConfigError::new(format!(
                "unrecognized command: \"{command}\""
            ))),
        };
    }
    if let Some(flag) = &flags.unsupported {
        return Err(ConfigError::new(format!(
            "flag {flag} is not supported yet by percore"
        )));
    }
    // As nats-server: the signal is sent before any config file is read.
    if let Some(signal) = flags.signal {
        return Ok(Invocation::Signal(signal));
    }

    let mut opts = Options {
        jetstream_off_by_flag: flags.jetstream_off,
        ..Options::default()
    };
    let mut warnings = Vec::new();
    match &flags.config {
        Some(path) => {
            let config = conf::parse_file(Path::new(path), env)?;
            warnings = load::apply_config(&config, &mut opts)?;
            opts.config_file = Some(PathBuf::from(path));
        }
        None if flags.test => {
            return Err(ConfigError::new(
                "must specify [-c, --config] option to check configuration file syntax",
            ))
        }
        None => {}
    }
    apply_flags(&flags, &mut opts)?;
    tls_auth_settings(&mut opts);
    load::validate(&opts)?;

    if flags.test {
        // nats-server's -t fails on deprecation warnings too.
        if let Some(first) = warnings.into_iter().next() {
            return Err(ConfigError::new(first));
        }
        // As nats-server, -t reads the certificate and key files too.
        if let Some(tls) = &opts.tls {
            crate::tls::config::build(tls).map_err(ConfigError::new)?;
        }
        let path = flags.config.unwrap_or_default();
        return Ok(Invocation::Exit {
            stdout: String::new(),
            stderr: format!("percore: configuration file {path} is valid\n"),
            code: 0,
        });
    }
    opts.config_warnings = warnings;
    Ok(Invocation::Run(opts))
}

/// What TLS changes in authentication. nats-server: with TLS, the default
/// auth timeout is the TLS timeout plus one second (a timeout configured to
/// exactly the 2 s default cannot be told from the default and is raised
/// too); `verify_and_map` takes users from client certificates.
fn tls_auth_settings(opts: &mut Options) {
    if let Some(tls) = &opts.tls {
        if opts.auth.timeout == crate::auth::DEFAULT_AUTH_TIMEOUT {
            opts.auth.timeout = tls.timeout() + std::time::Duration::from_secs(1);
        }
        opts.auth.tls_map = tls.map;
    }
}

fn print(stdout: String) -> Invocation {
    Invocation::Exit {
        stdout,
        stderr: String::new(),
        code: 0,
    }
}

/// Command line values override the file's.
fn apply_flags(flags: &cli::Flags, opts: &mut Options) -> Result<(), ConfigError> {
    if let Some(host) = &flags.host {
        opts.host = load::host_value(host);
    }
    if let Some(port) = flags.port {
        opts.port = load::port_number(port).map_err(ConfigError::new)?;
    }
    // As nats-server: an empty flag leaves the file's value.
    if let Some(advertise) = flags.client_advertise.as_deref().filter(|a| !a.is_empty()) {
        opts.client_advertise = Some(advertise.to_string());
    }
    // As nats-server: 0 leaves the file's value.
    if let Some(port) = flags.profile.filter(|&p| p != 0) {
        opts.prof_port = port;
    }
    if let Some(name) = &flags.server_name {
        opts.server_name = (!name.is_empty()).then(|| name.clone());
    }
    if let Some(logfile) = &flags.logfile {
        opts.logfile = (!logfile.is_empty()).then(|| PathBuf::from(logfile));
    }
    if let Some(pidfile) = &flags.pidfile {
        opts.pidfile = (!pidfile.is_empty()).then(|| PathBuf::from(pidfile));
    }
    if let Some(dir) = &flags.ports_file_dir {
        opts.ports_file_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    if let Some(logtime) = flags.logtime {
        opts.logtime = logtime;
    }
    if let Some(debug) = flags.debug {
        opts.debug = debug;
    }
    if let Some(trace) = flags.trace {
        opts.trace = trace;
    }
    if let Some(verbose) = flags.trace_verbose {
        opts.trace_verbose = verbose;
    }
    if let Some(len) = flags.max_traced_msg_len {
        opts.max_traced_msg_len = load::traced_msg_len(len);
    }
    if let Some(limit) = flags.log_size_limit {
        opts.log_size_limit = limit;
    }
    if let Some(syslog) = flags.syslog {
        opts.syslog = syslog;
    }
    if let Some(url) = &flags.remote_syslog {
        opts.remote_syslog = (!url.is_empty()).then(|| url.clone());
    }
    if let Some(shards) = flags.shards {
        opts.shards = usize::try_from(shards).map_err(|_| {
            ConfigError::new(format!(
                "invalid value {shards} for --shards: must be 0 or more"
            ))
        })?;
    }
    if let Some(offload) = flags.tls_offload {
        opts.tls_offload = Some(offload);
    }
    if let Some(pin) = flags.pin {
        opts.pin = pin;
    }
    if let Some(port) = flags.http_port {
        opts.http_port = load::http_port_number(port).map_err(ConfigError::new)?;
    }
    if let Some(port) = flags.https_port {
        opts.https_port = load::http_port_number(port).map_err(ConfigError::new)?;
    }
    let tls_flags = tls::TlsFlags {
        tls: flags.tls,
        cert: flags.tls_cert.as_deref(),
        key: flags.tls_key.as_deref(),
        ca: flags.tls_ca_cert.as_deref(),
        verify: flags.tls_verify,
    };
    tls::apply_flags(&tls_flags, &mut opts.tls)?;
    apply_cluster_flags(flags, opts)?;
    auth::apply_flags(
        flags.user.as_deref(),
        flags.pass.as_deref(),
        flags.auth.as_deref(),
        &mut opts.auth,
    )
}

/// `--cluster`, `--cluster_name`, `--routes`, `--cluster_advertise`,
/// `--no_advertise`, `--connect_retries` over the file's `cluster` block.
fn apply_cluster_flags(flags: &cli::Flags, opts: &mut Options) -> Result<(), ConfigError> {
    let any = flags.cluster.is_some()
        || flags.cluster_name.is_some()
        || flags.routes.is_some()
        || flags.cluster_advertise.is_some()
        || flags.no_advertise.is_some()
        || flags.connect_retries.is_some();
    if !any {
        return Ok(());
    }
    let configured = opts.cluster.as_ref().is_some_and(|c| c.enabled());
    if flags.routes.is_some() && flags.cluster.is_none() && !configured {
        return Err(ConfigError::new(
            "solicited routes require cluster capabilities, e.g. --cluster",
        ));
    }
    let cluster = opts.cluster.get_or_insert_with(Default::default);
    if let Some(listen) = &flags.cluster {
        cluster::apply_cluster_flag(listen, cluster).map_err(ConfigError::new)?;
    }
    if let Some(name) = &flags.cluster_name {
        cluster.name = Some(name.clone()).filter(|n| !n.is_empty());
    }
    if let Some(routes) = &flags.routes {
        cluster.routes = cluster::routes_flag(routes).map_err(ConfigError::new)?;
    }
    if let Some(advertise) = &flags.cluster_advertise {
        cluster.advertise = Some(advertise.clone()).filter(|a| !a.is_empty());
    }
    if let Some(no_advertise) = flags.no_advertise {
        cluster.no_advertise = no_advertise;
    }
    if let Some(retries) = flags.connect_retries {
        cluster.connect_retries = u32::try_from(retries).unwrap_or(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(name: &str) -> Option<String> {
        (name == "PERCORE_TEST_PORT").then(|| "4555".to_string())
    }

    fn invoke(args: &[&str]) -> Result<Invocation, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse_invocation_with_env(&args, &env).map_err(|e| e.to_string())
    }

    fn run(args: &[&str]) -> Options {
        match invoke(args) {
            Ok(Invocation::Run(opts)) => opts,
            other => panic!("expected Run for {args:?}, got {other:?}"),
        }
    }

    fn exit(args: &[&str]) -> (String, String, i32) {
        match invoke(args) {
            Ok(Invocation::Exit {
                stdout,
                stderr,
                code,
            }) => (stdout, stderr, code),
            other => panic!("expected Exit for {args:?}, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match invoke(args) {
            Err(e) => e,
            other => panic!("expected an error for {args:?}, got {other:?}"),
        }
    }

    /// Writes `text` to a fresh file and returns its path.
    fn config_file(name: &str, text: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("percore-invocation-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path.display().to_string()
    }

    #[test]
    fn no_arguments_runs_with_defaults() {
        assert_eq!(run(&[]), Options::default());
    }

    /// nats-server's flags win over its file: `-js=false` with a config
    /// that enables JetStream starts without it. The block's keys and the
    /// string's form are still checked, and the last JetStream flag wins.
    #[test]
    fn js_false_flag_overrides_a_config_that_enables_jetstream() {
        let enabled = config_file("js-enabled.conf", "port: 4333\njetstream: enabled\n");
        let block = config_file(
            "js-block.conf",
            "jetstream { store_dir: /tmp/js, max_mem: 1G }\n",
        );
        let typo = config_file("js-typo.conf", "jetstream {\n  max_memroy: 1G\n}\n");
        let word = config_file("js-word.conf", "jetstream: maybe\n");
        assert!(error(&["-c", &enabled]).contains("\"jetstream\" is not supported yet"));
        for flag in ["-js=false", "--jetstream=false", "-js=0"] {
            let opts = run(&["-c", &enabled, flag]);
            assert_eq!(opts.port, 4333, "{flag}");
            run(&[flag, "-c", &block]);
        }
        run(&["-js", "-js=false", "-c", &enabled]);
        assert!(error(&["-js=false", "-js", "-c", &enabled]).contains("flag -js is not supported"));
        assert!(error(&["-js=false", "-c", &typo]).contains("unknown field \"max_memroy\""));
        assert!(error(&["-js=false", "-c", &word])
            .contains("Expected 'enabled' or 'disabled' for string value, got 'maybe'"));
    }

    #[test]
    fn version_and_help() {
        let version = cli::version_line();
        assert_eq!(exit(&["-v"]), (version.clone(), String::new(), 0));
        assert_eq!(exit(&["--version"]), (version.clone(), String::new(), 0));
        assert_eq!(exit(&["version"]), (version.clone(), String::new(), 0));
        assert_eq!(exit(&["-p", "1", "VERSION"]), (version, String::new(), 0));
        let usage = cli::usage();
        assert_eq!(exit(&["-h"]), (usage.clone(), String::new(), 0));
        assert_eq!(exit(&["--help"]), (usage.clone(), String::new(), 0));
        assert_eq!(
            exit(&["help", "-p", "1"]),
            (usage.clone(), String::new(), 0)
        );
        // Help and version win over flags percore refuses.
        assert_eq!(exit(&["-m", "8222", "-h"]), (usage, String::new(), 0));
    }

    #[test]
    fn bad_flags_print_usage_and_exit_zero_like_nats_server() {
        let usage = cli::usage();
        assert_eq!(
            exit(&["-bogusflag"]),
            (
                usage.clone(),
                "flag provided but not defined: -bogusflag\n".to_string(),
                0
            )
        );
        assert_eq!(
            exit(&["-p", "abc"]),
            (
                usage.clone(),
                "invalid value \"abc\" for flag -p: parse error\n".to_string(),
                0
            )
        );
        assert_eq!(
            exit(&["-p"]),
            (usage, "flag needs an argument: -p\n".to_string(), 0)
        );
    }

    #[test]
    fn command_line_errors() {
        assert_eq!(error(&["foo"]), "unrecognized command: \"foo\"");
        assert_eq!(
            error(&["-ms", "8222"]),
            "TLS cert and key required for HTTPS"
        );
        assert_eq!(
            error(&["-m", "65536"]),
            "port 65536 is out of range (use 1-65535, or -1 for a random port)"
        );
        assert_eq!(
            error(&["--tls"]),
            "TLS Server certificate must be present and valid"
        );
        assert_eq!(error(&["-js"]), "flag -js is not supported yet by percore");
        assert_eq!(
            error(&["-p", "70000"]),
            "port 70000 is out of range (use 1-65535, or -1 for a random port)"
        );
        assert_eq!(
            error(&["--shards", "-2"]),
            "invalid value -2 for --shards: must be 0 or more"
        );
        assert_eq!(
            error(&["-t"]),
            "must specify [-c, --config] option to check configuration file syntax"
        );
        assert_eq!(
            error(&["-c", "/nonexistent/percore.conf"]),
            "open /nonexistent/percore.conf: no such file or directory"
        );
    }

    #[test]
    fn flags_set_options() {
        let opts = run(&[
            "-a",
            "127.0.0.1",
            "-port",
            "4333",
            "-n",
            "n1",
            "-l",
            "p.log",
            "-P",
            "p.pid",
            "-T=false",
            "-DV",
            "--shards",
            "3",
            "--pin",
        ]);
        let expected = Options {
            host: "127.0.0.1".into(),
            port: 4333,
            server_name: Some("n1".into()),
            logfile: Some("p.log".into()),
            pidfile: Some("p.pid".into()),
            logtime: false,
            debug: true,
            trace: true,
            shards: 3,
            pin: true,
            ..Options::default()
        };
        assert_eq!(opts, expected);
        assert_eq!(run(&["-p", "-1"]).port, 0);
        assert_eq!(run(&["-p", "0"]).port, 4222);
        assert_eq!(run(&["-a", ""]).host, "0.0.0.0");
    }

    #[test]
    fn flags_override_the_config_file() {
        let path = config_file(
            "override.conf",
            "port: 4444\nhost: 10.0.0.1\nserver_name: from_file\ndebug: true\nlogtime: true\nmax_payload: 2MB\n",
        );
        let opts = run(&[
            "-c",
            &path,
            "-p",
            "14271",
            "-n",
            "from_flag",
            "-D=false",
            "-T=false",
        ]);
        assert_eq!(opts.port, 14271);
        assert_eq!(opts.host, "10.0.0.1");
        assert_eq!(opts.server_name.as_deref(), Some("from_flag"));
        assert!(!opts.debug);
        assert!(!opts.logtime);
        assert_eq!(opts.max_payload, 2 * 1024 * 1024);
        assert_eq!(opts.config_file, Some(PathBuf::from(&path)));
        // Flag order relative to -c does not matter.
        assert_eq!(run(&["--port=14272", "--config", &path]).port, 14272);
        // Without flags the file's values stand.
        assert_eq!(run(&["-c", &path]).port, 4444);
    }

    #[test]
    fn monitoring_port_and_host() {
        assert_eq!(run(&[]).http_port, None);
        assert_eq!(run(&["-m", "8222"]).http_port, Some(8222));
        assert_eq!(run(&["--http_port=-1"]).http_port, Some(0));
        assert_eq!(run(&["-m", "0"]).http_port, None);
        let path = config_file(
            "http.conf",
            "http: \"127.0.0.2:8333\"\nhttp_base_path: /nats\n",
        );
        let opts = run(&["-c", &path]);
        assert_eq!(opts.http_host.as_deref(), Some("127.0.0.2"));
        assert_eq!(opts.http_port, Some(8333));
        assert_eq!(opts.http_base_path, "/nats");
        // The flag wins over the file, and keeps the file's host.
        let opts = run(&["-c", &path, "-m", "8444"]);
        assert_eq!(
            (opts.http_host.as_deref(), opts.http_port),
            (Some("127.0.0.2"), Some(8444))
        );
        for (text, port) in [
            ("http: 8555", 8555),
            ("http_port: 8556", 8556),
            ("monitor_port: 8557", 8557),
        ] {
            let opts = run(&["-c", &config_file("http-port.conf", text)]);
            assert_eq!(
                (opts.http_host, opts.http_port),
                (None, Some(port)),
                "{text}"
            );
        }
        let bad = config_file("http-bad.conf", "http: \"nohost\"\n");
        assert!(error(&["-c", &bad]).contains("could not parse address string \"nohost\""));
    }

    #[test]
    fn store_dir_is_accepted_and_signal_is_an_invocation_of_its_own() {
        // nats-server accepts a JetStream directory without JetStream.
        assert_eq!(run(&["-sd", "/tmp/js", "-p", "4333"]).port, 4333);
        assert_eq!(run(&["--store_dir=/tmp/js"]).port, 4222);
        let path = config_file("store.conf", "store_dir: /tmp/js\nstoredir: \"/tmp/js2\"\n");
        assert_eq!(run(&["-c", &path]).port, 4222);
        assert_eq!(error(&["-js"]), "flag -js is not supported yet by percore");
        // --signal wins over everything but help/version, before any config.
        match invoke(&["--signal", "ldm=42", "-c", "/nonexistent.conf"]) {
            Ok(Invocation::Signal(spec)) => assert_eq!(spec, "ldm=42"),
            other => panic!("expected Signal, got {other:?}"),
        }
    }

    #[test]
    fn environment_variables_reach_the_options() {
        let path = config_file("env.conf", "port: $PERCORE_TEST_PORT\n");
        assert_eq!(run(&["-c", &path]).port, 4555);
    }

    #[test]
    fn test_flag() {
        let path = config_file("valid.conf", "port: 4333\n");
        assert_eq!(
            exit(&["-c", &path, "-t"]),
            (
                String::new(),
                format!("percore: configuration file {path} is valid\n"),
                0
            )
        );
        assert_eq!(
            exit(&["-t=true", "--config", &path]),
            (
                String::new(),
                format!("percore: configuration file {path} is valid\n"),
                0
            )
        );
        let path = config_file("invalid.conf", "port: 4333\nfoo_unknown: 1\n");
        assert_eq!(
            error(&["-c", &path, "-t"]),
            format!("{path}:2:1: unknown field \"foo_unknown\"")
        );
        // Deprecation warnings fail -t (as in nats-server) but not a start.
        let path = config_file("warning.conf", "ping_interval: 60\n");
        let warning = format!(
            "{path}:1:0: invalid use of field \"ping_interval\": ping_interval should be converted to a duration"
        );
        assert_eq!(error(&["-c", &path, "-t"]), warning);
        let opts = run(&["-c", &path]);
        assert_eq!(opts.ping_interval, Duration::from_secs(60));
        assert_eq!(opts.config_warnings, [warning]);
    }

    #[test]
    fn config_errors_carry_their_position() {
        let path = config_file("syntax.conf", "port: 4333\nhost:\n");
        assert_eq!(
            error(&["-c", &path]),
            format!("{path}:2:6: Parse error on line 2: 'expected a value, found a new line'")
        );
        let path = config_file(
            "unsupported.conf",
            "port: 4333\n  gateway { listen: 6222 }\n",
        );
        assert_eq!(
            error(&["-c", &path]),
            format!("{path}:2:3: \"gateway\" is not supported yet by percore")
        );
        let path = config_file("undefined.conf", "port: $NOPE_NOT_SET\n");
        assert_eq!(
            error(&["-c", &path]),
            format!("{path}:1:6: variable reference for 'NOPE_NOT_SET' on line 1 can not be found")
        );
    }

    #[test]
    fn cross_field_rules() {
        let path = config_file("payload.conf", "max_payload: 2MB\nmax_pending: 1MB\n");
        assert_eq!(
            error(&["-c", &path]),
            "max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        assert_eq!(
            error(&["-c", &path, "-t"]),
            "max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        let path = config_file(
            "lameduck.conf",
            "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"30s\"\n",
        );
        assert_eq!(
            error(&["-c", &path]),
            "lame duck grace period (30s) should be strictly lower than lame duck duration (30s)"
        );
    }

    #[test]
    fn authorization_from_flags_and_file() {
        use crate::config::options::Options as O;
        use percore_core::auth::{PasswordUser, Secret};
        let single = |opts: O| opts.auth.single_user.map(|u| (u.name, u.password));
        let plain = |s: &str| Secret::Plain(s.into());
        assert_eq!(
            single(run(&["--user", "u", "--pass", "p"])),
            Some(("u".into(), plain("p")))
        );
        assert_eq!(run(&["--auth", "t"]).auth.token, Some(plain("t")));
        assert!(!run(&[]).auth.enabled());
        let path = config_file(
            "auth.conf",
            "authorization { user: a, password: b, timeout: 4 }
",
        );
        let opts = run(&["-c", &path]);
        let expected = PasswordUser {
            account: percore_core::ids::AccountId::GLOBAL,
            name: "a".into(),
            password: plain("b"),
            permissions: None,
        };
        assert_eq!(opts.auth.single_user, Some(expected));
        assert_eq!(opts.auth.timeout, Duration::from_secs(4));
        // Each flag replaces its own setting only (nats-server's MergeOptions).
        assert_eq!(
            single(run(&["--pass", "c", "-c", &path])),
            Some(("a".into(), plain("c")))
        );
        assert_eq!(
            single(run(&["-c", &path, "--user=z"])),
            Some(("z".into(), plain("b")))
        );
        assert_eq!(
            error(&["--pass", "p"]),
            "a password is set without a user (authorization user or --user)"
        );
    }

    #[test]
    fn authorization_errors_fail_the_test_flag() {
        let path = config_file(
            "noauth.conf",
            "no_auth_user: bob\nauthorization { users: [{user: al}] }\n",
        );
        let expected =
            "no_auth_user: \"bob\" not present as user in authorization block or account configuration";
        assert_eq!(error(&["-c", &path, "-t"]), expected);
        assert_eq!(error(&["-c", &path]), expected);
        let path = config_file(
            "dupuser.conf",
            "authorization {\n  users: [{user: a}, {user: a}]\n}\n",
        );
        assert_eq!(
            error(&["-c", &path, "-t"]),
            format!("{path}:2:23: Duplicate user \"a\" detected")
        );
        let path = config_file(
            "noauth-ok.conf",
            "no_auth_user: al\nauthorization { users: [{user: al}] }\n",
        );
        assert_eq!(
            exit(&["-c", &path, "-t"]).1,
            format!("percore: configuration file {path} is valid\n")
        );
    }

    #[test]
    fn errors_in_the_accounts_block_name_their_position() {
        let path = config_file("accounts-bad.conf", "accounts: [A, A]\n");
        assert_eq!(
            error(&["-c", &path, "-t"]),
            format!("{path}:1:14: Duplicate Account Entry: A")
        );
    }

    /// The logging flags win over the file's keys, as nats-server's.
    #[test]
    fn logging_flags_override_the_file() {
        let path = config_file(
            "logging.conf",
            "logfile: a.log\nlog_size_limit: 1KB\nsyslog: true\n\
             remote_syslog: \"udp://h:1\"\nmax_traced_msg_len: 4\ntrace: false\n",
        );
        let opts = run(&["-c", &path]);
        assert_eq!(
            (opts.log_size_limit, opts.syslog, opts.max_traced_msg_len),
            (1024, true, 4)
        );
        let opts = run(&[
            "-c",
            &path,
            "--log_size_limit",
            "10",
            "-s=false",
            "-r",
            "",
            "--max_traced_msg_len",
            "-1",
            "-VV",
        ]);
        assert_eq!(opts.log_size_limit, 10);
        assert!(!opts.syslog);
        assert_eq!(opts.remote_syslog, None);
        assert_eq!(opts.max_traced_msg_len, 0);
        assert!(opts.trace && opts.trace_verbose);
        let opts = run(&["-DVV"]);
        assert!(opts.debug && opts.trace && opts.trace_verbose);
    }

    #[test]
    fn errors_become_exit_one() {
        let err = ConfigError::new("x.conf:1:0: unknown field \"a\"");
        assert_eq!(
            err.into_exit(),
            Invocation::Exit {
                stdout: String::new(),
                stderr: "percore: x.conf:1:0: unknown field \"a\"\n".to_string(),
                code: 1,
            }
        );
    }
}
