//! Log lines in nats-server's format, so that operators' log tooling keeps
//! working: `[<pid>] <YYYY/MM/DD HH:MM:SS.micro> [<LVL>] <text>`.
//!
//! Logging is off the per-message path: the hot path only checks
//! [`trace_enabled`] (a relaxed atomic load) before formatting anything.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::civil_from_days;

static DEBUG: AtomicBool = AtomicBool::new(false);
static TRACE: AtomicBool = AtomicBool::new(false);
static LOGTIME: AtomicBool = AtomicBool::new(true);
static SINK: OnceLock<Mutex<Option<File>>> = OnceLock::new();
/// The log file's path, for [`reopen`].
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();

#[derive(Clone, Copy)]
pub enum Level {
    Info,
    Debug,
    Trace,
    Warn,
    Error,
    Fatal,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Info => "INF",
            Level::Debug => "DBG",
            Level::Trace => "TRC",
            Level::Warn => "WRN",
            Level::Error => "ERR",
            Level::Fatal => "FTL",
        }
    }
}

/// Sets levels and the destination. Without a log file, lines go to stderr.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    logfile: Option<&Path>,
) -> std::io::Result<()> {
    DEBUG.store(debug, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
    LOGTIME.store(logtime, Ordering::Relaxed);
    let file = match logfile {
        Some(path) => {
            let file = open_log(path)?;
            let _ = LOG_PATH.set(path.to_path_buf());
            Some(file)
        }
        None => None,
    };
    let _ = SINK.set(Mutex::new(file));
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// SIGUSR1 (log rotation): opens the log file again by its path, so lines
/// go to a new file once the old one was moved away. `Ok(false)` when
/// logging to stderr.
pub fn reopen() -> std::io::Result<bool> {
    let Some(path) = LOG_PATH.get() else {
        return Ok(false);
    };
    let file = open_log(path)?;
    let sink = SINK.get_or_init(|| Mutex::new(None));
    let mut guard = match sink.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    *guard = Some(file);
    Ok(true)
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub fn trace_enabled() -> bool {
    TRACE.load(Ordering::Relaxed)
}

pub fn log(level: Level, args: fmt::Arguments<'_>) {
    match level {
        Level::Debug if !debug_enabled() => return,
        Level::Trace if !trace_enabled() => return,
        _ => {}
    }
    let mut line = format!("[{}] ", std::process::id());
    if LOGTIME.load(Ordering::Relaxed) {
        line.push_str(&timestamp());
        line.push(' ');
    }
    line.push('[');
    line.push_str(level.tag());
    line.push_str("] ");
    line.push_str(&args.to_string());
    line.push('\n');
    let sink = SINK.get_or_init(|| Mutex::new(None));
    let mut guard = match sink.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    match guard.as_mut() {
        Some(file) => {
            let _ = file.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Info, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Debug, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Trace, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Warn, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Error, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! fatal { ($($arg:tt)*) => { $crate::logging::log($crate::logging::Level::Fatal, format_args!($($arg)*)) } }

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
