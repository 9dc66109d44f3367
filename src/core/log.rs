//! The log facade the NATS semantics write to. This crate decides what to
//! say and at which level; the binary decides where lines go and how they
//! look (nats-server's format, stderr or a file) by installing a sink.
//!
//! Logging is off the per-message path: the hot path only checks
//! [`trace_enabled`] (a relaxed atomic load) before formatting anything.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

static DEBUG: AtomicBool = AtomicBool::new(false);
static TRACE: AtomicBool = AtomicBool::new(false);
static TRACE_VERBOSE: AtomicBool = AtomicBool::new(false);
static MAX_TRACED_MSG_LEN: AtomicUsize = AtomicUsize::new(0);
static SINK: OnceLock<fn(Level, fmt::Arguments<'_>)> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Debug,
    Trace,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// nats-server's three-letter level tag.
    pub fn tag(self) -> &'static str {
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

/// `-D` and `-V`.
pub fn set_levels(debug: bool, trace: bool) {
    DEBUG.store(debug, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
}

/// `-VV`, `trace_verbose`: with `-V`, the system account's own traffic
/// is traced too.
pub fn set_trace_verbose(verbose: bool) {
    TRACE_VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Whether the system account's own traffic is traced (`-VV` and `-V`).
pub fn trace_system_enabled() -> bool {
    trace_enabled() && TRACE_VERBOSE.load(Ordering::Relaxed)
}

/// `max_traced_msg_len`: at most this many payload bytes in a trace line;
/// 0 for all.
pub fn set_max_traced_msg_len(len: usize) {
    MAX_TRACED_MSG_LEN.store(len, Ordering::Relaxed);
}

pub fn max_traced_msg_len() -> usize {
    MAX_TRACED_MSG_LEN.load(Ordering::Relaxed)
}

/// Where lines go; the first sink installed stays. Without one, lines are
/// dropped (unit tests, the simulation).
pub fn set_sink(sink: fn(Level, fmt::Arguments<'_>)) {
    let _ = SINK.set(sink);
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
    if let Some(sink) = SINK.get() {
        sink(level, args);
    }
}

#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! fatal { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Fatal, format_args!($($arg)*)) } }
