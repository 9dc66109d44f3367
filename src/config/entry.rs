//! Typed access to one config entry, with nats-server's error when the
//! value has another type (pointed at the key, as nats-server does). Every
//! block's parser (`load.rs`, `auth.rs`, `permissions.rs`) reads through
//! these.

use super::conf::{Entry, Value};
use super::error::ConfigError;

/// nats-server points value errors at the key, so do we.
pub(super) fn wrong_type(entry: &Entry, expected: &str) -> ConfigError {
    ConfigError::at(
        &entry.key_pos,
        format!(
            "invalid value for \"{}\": expected {expected}, got {}",
            entry.key,
            entry.node.value.kind()
        ),
    )
}

pub(super) fn integer(entry: &Entry) -> Result<i64, ConfigError> {
    match entry.node.value {
        Value::Integer(n) => Ok(n),
        _ => Err(wrong_type(entry, "an integer")),
    }
}

pub(super) fn string(entry: &Entry) -> Result<&str, ConfigError> {
    match &entry.node.value {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(entry, "a string")),
    }
}

pub(super) fn boolean(entry: &Entry) -> Result<bool, ConfigError> {
    match entry.node.value {
        Value::Bool(b) => Ok(b),
        _ => Err(wrong_type(entry, "a boolean")),
    }
}

pub(super) fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// percore's refusal of a key nats-server knows but percore does not
/// implement yet, pointed at the key.
pub(super) fn not_supported_yet(entry: &Entry) -> ConfigError {
    ConfigError::at(
        &entry.key_pos,
        format!("\"{}\" is not supported yet by percore", entry.key),
    )
}

/// nats-server's error for a key a block does not know.
pub(super) fn unknown_field(entry: &Entry) -> ConfigError {
    ConfigError::at(&entry.key_pos, format!("unknown field \"{}\"", entry.key))
}
