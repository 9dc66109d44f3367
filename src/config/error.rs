//! The one error type of the config module: a single human-readable line,
//! already carrying its `file:line:col:` prefix when it comes from a file.

use std::fmt;

use super::conf::Pos;

/// A configuration or command line error. `Display` gives the message
/// without the program name; print it as `percore: {err}` (as nats-server
/// prints `nats-server: {err}`) and exit with status 1, or let
/// [`ConfigError::into_exit`] build exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// An error without a source position (command line, cross-field checks).
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }

    /// An error located in a config file: `<file>:<line>:<col>: <message>`.
    pub fn at(pos: &Pos, message: impl fmt::Display) -> Self {
        ConfigError {
            message: format!("{pos}: {message}"),
        }
    }

    /// The whole message, position included.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What `main` should do with this error: `percore: <message>` on
    /// stderr, exit status 1.
    pub fn into_exit(self) -> super::Invocation {
        super::Invocation::Exit {
            stdout: String::new(),
            stderr: format!("percore: {}\n", self.message),
            code: 1,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// An I/O error the way Go's `os` package words it (`open x.conf: no such
/// file or directory`), since users compare our output with nats-server's.
pub fn io_error_text(op: &str, path: &str, err: &std::io::Error) -> String {
    let text = err.to_string();
    // Rust appends " (os error N)" and capitalises; Go does neither.
    let text = match text.find(" (os error") {
        Some(cut) => &text[..cut],
        None => text.as_str(),
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    format!("{op} {path}: {text}")
}
