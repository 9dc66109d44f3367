//! `percore`: the broker binary. Flags, config file, signals and exit codes
//! follow nats-server's, so a user can swap the binary in a unit file or a
//! test script without editing it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, tick};
use percore::config::{parse_invocation, Invocation, Options};
use percore::server::{self, AdminCommand};
use percore::{debug, error, fatal, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_invocation(args.clone()) {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::Signal(spec)) => {
            return match percore::signal_command::run(&spec) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("percore: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Ok(Invocation::CheckHost { shards }) => {
            return ExitCode::from(percore::host_report::run(shards));
        }
        Ok(Invocation::Exit {
            stdout,
            stderr,
            code,
        }) => {
            print!("{stdout}");
            eprint!("{stderr}");
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
        Err(e) => {
            eprintln!("percore: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = percore::logging::init(&options) {
        eprintln!("percore: {e}");
        return ExitCode::from(1);
    }
    run(options, args)
}

fn run(mut options: Options, args: Vec<String>) -> ExitCode {
    for warning in &options.config_warnings {
        warn!("{warning}");
    }
    for skipped in options.operator.iter().flat_map(|o| &o.skipped) {
        error!("{skipped}");
    }
    info!(
        "Starting percore (NATS protocol, nats-server {} compatible)",
        percore::info::ADVERTISED_VERSION
    );
    info!("Version:  {}", env!("CARGO_PKG_VERSION"));
    if let Some(file) = &options.config_file {
        info!("Using configuration file: {}", file.display());
    }
    if options.prof_port != 0 {
        // nats-server serves Go's pprof there; a Rust binary has no such
        // thing, and opening a port that answers nothing useful would only
        // widen what is exposed. One line says so, and where to look.
        warn!(
            "Profiling port {} not started: percore has no Go profiler (pprof); \
             profile it with perf instead (perf record -g -p {})",
            options.prof_port,
            std::process::id()
        );
    }
    // Signals first, so that a signal during start-up is not lost.
    let (signal_tx, signal_rx) = crossbeam_channel::unbounded();
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    if signal_tx.send(signal).is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => warn!("cannot install signal handlers: {e}"),
    }
    if let Err(e) = percore::resolver::url::start(&mut options) {
        fatal!("{e}");
        return ExitCode::from(1);
    }
    let running = match server::start(options.clone()) {
        Ok(running) => running,
        Err(e) => {
            fatal!("{e}");
            return ExitCode::from(1);
        }
    };
    if let Some(pidfile) = &options.pidfile {
        if let Err(e) = std::fs::write(pidfile, std::process::id().to_string()) {
            error!("Could not write pidfile: {e}");
        }
    }
    info!("Listening for client connections on {}", running.local_addr);
    if let (Some(name), Some(addr)) = (running.cluster_name(), running.route_addr) {
        info!("Cluster name is {name}");
        if running.cluster_name_generated() {
            warn!("Cluster name was dynamically generated, consider setting one");
        }
        info!("Listening for route connections on {addr}");
        let cluster_tls = options.cluster.as_ref().and_then(|c| c.tls.as_ref());
        if cluster_tls.is_some_and(|t| t.insecure) {
            warn!("{}", percore::tls::client::INSECURE_WARNING);
        }
    }
    // Launchers wait for this file to learn the ports: written once every
    // listener is bound, like nats-server's.
    let mut ports_file = write_ports_file(options.ports_file_dir.as_deref(), &running);
    info!(
        "Server is ready ({} shard{})",
        running.shard_count,
        if running.shard_count == 1 { "" } else { "s" }
    );

    let ticker = tick(Duration::from_millis(200));
    let mut lame_duck: Option<(Instant, Instant)> = None;
    loop {
        select! {
            recv(signal_rx) -> signal => {
                match signal {
                    Ok(SIGINT) => {
                        // At debug level, as nats-server logs it.
                        debug!("Trapped \"interrupt\" signal");
                        return shutdown(running, ports_file, 0);
                    }
                    Ok(SIGTERM) if lame_duck.is_none() => {
                        debug!("Trapped \"terminated\" signal");
                        // nats-server exits with status 1 on SIGTERM; init
                        // scripts written for it expect that.
                        return shutdown(running, ports_file, 1);
                    }
                    Ok(SIGUSR2) if lame_duck.is_none() => {
                        info!("Entering lame duck mode, stop accepting new clients");
                        running.send_all(AdminCommand::LameDuck);
                        let now = Instant::now();
                        lame_duck = Some((now, now + server::lame_duck_total(&options)));
                    }
                    // Log rotation (`--signal reopen`).
                    Ok(SIGUSR1) => match percore::logging::reopen() {
                        Ok(true) => info!("File log re-opened"),
                        Ok(false) => info!("File log re-open ignored, not a file logger"),
                        Err(e) => error!("Could not re-open the log file: {e}"),
                    },
                    Ok(SIGHUP) => match reloaded(&args, &options)
                        .and_then(|new| {
                            // The new log destination is opened first, so
                            // that one that cannot be opened leaves the
                            // whole configuration as it was.
                            let destination = percore::logging::destination_changed(&options, &new)
                                .then(|| percore::logging::open(&new))
                                .transpose()?;
                            running.reload(&new).map(|()| (new, destination))
                        })
                    {
                        Ok((new, destination)) => {
                            percore::logging::set_levels(&new);
                            if let Some(destination) = destination {
                                percore::logging::install(destination, new.logtime);
                            }
                            if new.ports_file_dir != options.ports_file_dir {
                                // nats-server moves the file on reload.
                                remove_ports_file(ports_file.take());
                                ports_file = write_ports_file(new.ports_file_dir.as_deref(), &running);
                            }
                            options = new;
                            info!("Reloaded server configuration");
                        }
                        Err(e) => error!("Failed to reload server configuration: {e}"),
                    },
                    _ => {}
                }
            }
            recv(running.claims_changed()) -> _ => {
                // An account JWT was stored: every shard takes the accounts
                // as the resolver's directory now has them.
                let mut new = options.clone();
                if let Some(operator) = new.operator.clone() {
                    match percore::config::operator::install(&mut new, operator) {
                        Ok(()) => {
                            for skipped in new.operator.iter().flat_map(|o| &o.skipped) {
                                error!("{skipped}");
                            }
                            percore::config::accounts::keep_account_ids(&mut new, &options.accounts);
                            match running.update_accounts(&new) {
                                Ok(()) => options = new,
                                Err(e) => error!("account update not applied: {e}"),
                            }
                        }
                        Err(e) => error!("account update not applied: {e}"),
                    }
                }
            }
            recv(ticker) -> _ => {
                if running.all_shards_ended() {
                    error!("all shards ended unexpectedly");
                    return ExitCode::from(1);
                }
                if let Some((started, ends)) = lame_duck {
                    // Done once the grace period is over and every client is
                    // gone, or at the end of lame_duck_duration at the latest.
                    let now = Instant::now();
                    let clients_gone = now >= started + options.lame_duck_grace_period && running.live_connections() == 0;
                    if clients_gone || now >= ends {
                        return shutdown(running, ports_file, 0);
                    }
                }
            }
        }
    }
}

/// SIGHUP: the command line and config file read again, as at start. The
/// running configuration stays if the file has an error or changes what
/// cannot change without a restart (nats-server's texts).
fn reloaded(args: &[String], current: &Options) -> Result<Options, String> {
    if current.config_file.is_none() {
        return Err("can only reload config when a file is provided using -c or --config".into());
    }
    let mut new = match parse_invocation(args.to_vec()) {
        Ok(Invocation::Run(new)) => new,
        Ok(_) => return Err("the command line no longer starts a server".into()),
        Err(e) => return Err(e.to_string()),
    };
    percore::resolver::url::carry_over(current, &mut new)?;
    // Connections hold account ids: accounts that stay keep theirs.
    percore::config::accounts::keep_account_ids(&mut new, &current.accounts);
    let fixed: [(&str, String, String); 11] = [
        ("host", current.host.clone(), new.host.clone()),
        ("port", current.port.to_string(), new.port.to_string()),
        (
            "http_port",
            format!("{:?}", current.http_port),
            format!("{:?}", new.http_port),
        ),
        (
            "https_port",
            format!("{:?}", current.https_port),
            format!("{:?}", new.https_port),
        ),
        ("shards", current.shards.to_string(), new.shards.to_string()),
        ("pin", current.pin.to_string(), new.pin.to_string()),
        (
            "max_connections",
            current.max_connections.to_string(),
            new.max_connections.to_string(),
        ),
        // nats-server 2.9 has no reload for these either.
        (
            "prof_port",
            current.prof_port.to_string(),
            new.prof_port.to_string(),
        ),
        (
            "disable_sublist_cache",
            current.no_sublist_cache.to_string(),
            new.no_sublist_cache.to_string(),
        ),
        (
            "log_size_limit",
            current.log_size_limit.to_string(),
            new.log_size_limit.to_string(),
        ),
        (
            "max_sub_tokens",
            current.max_sub_tokens.to_string(),
            new.max_sub_tokens.to_string(),
        ),
    ];
    for (name, old, new) in fixed {
        if old != new {
            return Err(format!(
                "config reload not supported for {name}: old={old}, new={new}"
            ));
        }
    }
    // Routes are set up at start; a changed cluster needs a restart, except
    // for its `permissions`, which the routes take at once (as 2.9). The
    // values are not printed: route URLs and the cluster authorization
    // hold credentials.
    let mut same_but_permissions = new.cluster.clone();
    if let (Some(same), Some(current)) = (&mut same_but_permissions, &current.cluster) {
        same.permissions = current.permissions.clone();
    }
    if current.cluster != same_but_permissions {
        return Err("config reload not supported for cluster: it changed".into());
    }
    Ok(new)
}

/// Writes the ports file into `dir`, if one is configured; its path, to
/// remove at shutdown.
fn write_ports_file(
    dir: Option<&std::path::Path>,
    running: &server::RunningServer,
) -> Option<std::path::PathBuf> {
    let dir = dir?;
    match percore::ports_file::write(dir, &running.listeners()) {
        Ok(path) => Some(path),
        Err(e) => {
            let path = percore::ports_file::path_in(dir);
            error!("Error writing ports file ({}): {e}", path.display());
            None
        }
    }
}

fn remove_ports_file(path: Option<std::path::PathBuf>) {
    if let Some(path) = path {
        if let Err(e) = std::fs::remove_file(&path) {
            error!("Error cleaning up ports file {}: {e}", path.display());
        }
    }
}

fn shutdown(
    running: server::RunningServer,
    ports_file: Option<std::path::PathBuf>,
    code: u8,
) -> ExitCode {
    info!("Initiating Shutdown...");
    running.shutdown();
    remove_ports_file(ports_file);
    info!("Server Exiting..");
    ExitCode::from(code)
}
