//! Log lines in nats-server's format (the sink behind the core's log
//! facade, `percore_core::log`), so that operators' log tooling keeps
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

static LOGTIME: AtomicBool = AtomicBool::new(true);
static SINK: OnceLock<Mutex<Option<File>>> = OnceLock::new();
/// The log file's path, for [`reopen`].
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();

/// Sets levels and the destination. Without a log file, lines go to stderr.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    logfile: Option<&Path>,
) -> std::io::Result<()> {
    percore_core::log::set_levels(debug, trace);
    percore_core::log::set_sink(write_line);
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

/// A reload's `-D`/`-V` (`debug`, `trace`).
pub fn set_levels(debug: bool, trace: bool) {
    percore_core::log::set_levels(debug, trace);
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

pub use percore_core::log::{debug_enabled, log, trace_enabled, Level};

/// The sink of the core's log facade: one line in nats-server's format.
fn write_line(level: Level, args: fmt::Arguments<'_>) {
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
