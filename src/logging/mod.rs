//! Log lines in nats-server's format (the sink behind the core's log
//! facade, `percore_core::log`), so that operators' log tooling keeps
//! working: `[<pid>] <YYYY/MM/DD HH:MM:SS.micro> [<LVL>] <text>` on stderr
//! or in a file (`rotating_file`), or the bare text to a syslog (`syslog`).
//! The destination is nats-server's choice: a log file, else a remote
//! syslog, else the local syslog, else stderr.
//!
//! Logging is off the per-message path: the hot path only checks
//! [`trace_enabled`] (a relaxed atomic load) before formatting anything.

mod rotating_file;
mod syslog;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::civil_from_days;
use crate::config::Options;
use rotating_file::RotatingFile;
use syslog::Syslog;

pub use percore_core::log::{debug_enabled, log, trace_enabled, Level};

static LOGTIME: AtomicBool = AtomicBool::new(true);
static SINK: Mutex<Destination> = Mutex::new(Destination::Stderr);

/// Where log lines go.
pub enum Destination {
    Stderr,
    File(RotatingFile),
    Syslog(Syslog),
}

/// Sets levels and the destination (see [`open`]).
pub fn init(opts: &Options) -> Result<(), String> {
    set_levels(opts);
    percore_core::log::set_sink(write_line);
    install(open(opts)?, opts.logtime);
    Ok(())
}

/// Opens the destination `opts` asks for, without using it yet (a reload
/// opens the new one before it commits to the new configuration). The
/// error is the line to print.
pub fn open(opts: &Options) -> Result<Destination, String> {
    if let Some(path) = &opts.logfile {
        return RotatingFile::open(path, opts.log_size_limit)
            .map(Destination::File)
            .map_err(|e| format!("cannot open log file: {e}"));
    }
    if let Some(url) = &opts.remote_syslog {
        return Syslog::remote(url).map(Destination::Syslog);
    }
    if opts.syslog {
        return Syslog::local().map(Destination::Syslog);
    }
    Ok(Destination::Stderr)
}

/// Whether a reload from `old` to `new` needs another destination.
pub fn destination_changed(old: &Options, new: &Options) -> bool {
    old.logfile != new.logfile || old.remote_syslog != new.remote_syslog || old.syslog != new.syslog
}

/// Lines go to `destination` from now on; the previous one is closed.
pub fn install(destination: Destination, logtime: bool) {
    LOGTIME.store(logtime, Ordering::Relaxed);
    let over_limit = matches!(&destination, Destination::File(f) if f.over_limit());
    *sink() = destination;
    announce_rotation(over_limit);
}

/// Levels and trace settings, at start and on reload: `-D`, `-V`, `-VV`
/// (`debug`, `trace`, `trace_verbose`), `max_traced_msg_len`.
pub fn set_levels(opts: &Options) {
    percore_core::log::set_levels(opts.debug, opts.trace);
    percore_core::log::set_trace_verbose(opts.trace_verbose);
    percore_core::log::set_max_traced_msg_len(opts.max_traced_msg_len);
    LOGTIME.store(opts.logtime, Ordering::Relaxed);
}

/// SIGUSR1 (log rotation): opens the log file again by its path, so lines
/// go to a new file once the old one was moved away. `Ok(false)` when not
/// logging to a file.
pub fn reopen() -> std::io::Result<bool> {
    let over_limit = match &mut *sink() {
        Destination::File(file) => {
            file.reopen()?;
            file.over_limit()
        }
        _ => return Ok(false),
    };
    announce_rotation(over_limit);
    Ok(true)
}

/// A file opened past its size limit (a restart, a reopen) is rotated at
/// once: nats-server says so, and that line is what crosses the limit.
fn announce_rotation(over_limit: bool) {
    if over_limit {
        log(Level::Info, format_args!("Rotating logfile..."));
    }
}

fn sink() -> MutexGuard<'static, Destination> {
    match SINK.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The sink of the core's log facade.
fn write_line(level: Level, args: fmt::Arguments<'_>) {
    let mut destination = sink();
    match &mut *destination {
        Destination::Stderr => {
            let mut line = formatted(level, args);
            line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        Destination::File(file) => {
            let mut line = formatted(level, args);
            line.push('\n');
            file.write_line(line.as_bytes(), &formatted);
        }
        // syslog stamps its own time, priority and process.
        Destination::Syslog(syslog) => syslog.write(level, &args.to_string()),
    }
}

/// One line in nats-server's format, without its line end.
fn formatted(level: Level, args: fmt::Arguments<'_>) -> String {
    let mut line = format!("[{}] ", std::process::id());
    if LOGTIME.load(Ordering::Relaxed) {
        line.push_str(&timestamp());
        line.push(' ');
    }
    line.push('[');
    line.push_str(level.tag());
    line.push_str("] ");
    line.push_str(&args.to_string());
    line
}

/// UTC wall-clock time as `YYYY/MM/DD HH:MM:SS.micro`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_micros()
    )
}
