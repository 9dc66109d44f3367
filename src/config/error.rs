//! The one error type of the config module: a single human-readable line,
//! already carrying its `file:line:col:` prefix when it comes from a file.

use std::fmt;

use super::conf::{Pos, Value};

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

pub use crate::go_quote::go_quote;

/// Go's `%v` of a config value, for nats-server's "got %v" errors. Maps
/// print with sorted keys, as Go prints them.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        // Go prints a time.Time as `2020-01-01 00:00:00 +0000 UTC`.
        Value::DateTime(text) => {
            format!(
                "{} +0000 UTC",
                text.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|n| go_value(&n.value)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Map(map) => {
            let mut pairs: Vec<String> = map
                .entries()
                .iter()
                .map(|e| format!("{}:{}", e.key, go_value(&e.node.value)))
                .collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
    }
}

/// Go's `%T` of a config value as nats-server's parser holds it.
pub fn go_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "int64",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::DateTime(_) => "time.Time",
        Value::Array(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    fn value(source: &str) -> Value {
        let map = parse_str(&format!("v: {source}"), "x.conf", &|_| None).expect("parse");
        map.entries()[0].node.value.clone()
    }

    #[test]
    fn go_value_and_type() {
        assert_eq!(go_value(&value("abc")), "abc");
        assert_eq!(go_value(&value("12")), "12");
        assert_eq!(go_value(&value("1.5")), "1.5");
        assert_eq!(go_value(&value("true")), "true");
        assert_eq!(go_value(&value("[a, 1]")), "[a 1]");
        assert_eq!(go_value(&value("{b: 2, a: x}")), "map[a:x b:2]");
        assert_eq!(
            go_value(&value("2020-01-02T03:04:05Z")),
            "2020-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(go_type(&value("abc")), "string");
        assert_eq!(go_type(&value("12")), "int64");
        assert_eq!(go_type(&value("1.5")), "float64");
        assert_eq!(go_type(&value("false")), "bool");
        assert_eq!(go_type(&value("[]")), "[]interface {}");
        assert_eq!(go_type(&value("{}")), "map[string]interface {}");
    }
}
