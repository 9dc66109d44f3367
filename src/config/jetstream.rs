//! The top-level `jetstream` key. percore has no JetStream, so every value
//! that would turn it on is refused; a value that turns it off asks for what
//! percore does anyway and is accepted, as nats-server 2.9.10 accepts it
//! (`jetstream: false`, `jetstream: disabled`, `jetstream { enabled: false }`).
//! Refusing those would break config files shared with nats-server that
//! switch JetStream off explicitly.

use super::conf::{Entry, Map, Value};
use super::entry::not_supported_yet;
use super::error::ConfigError;

/// The keys nats-server 2.9.10 knows inside a top-level `jetstream { }` map
/// (lower case: it compares them case-insensitively). With `enabled: false`
/// their values do not matter to percore, but a key outside this list is
/// still nats-server's "unknown field" error.
const BLOCK_KEYS: &[&str] = &[
    "store",
    "store_dir",
    "storedir",
    "max_memory_store",
    "max_mem_store",
    "max_mem",
    "max_file_store",
    "max_file",
    "domain",
    "enable",
    "enabled",
    "key",
    "ek",
    "encryption_key",
    "cipher",
    "extension_hint",
    "limits",
    "unique_tag",
    "max_outstanding_catchup",
];

/// Accepts a top-level `jetstream` that leaves JetStream off; refuses one
/// that would turn it on.
pub(super) fn apply(entry: &Entry) -> Result<(), ConfigError> {
    let off = match &entry.node.value {
        Value::Map(block) => block_turns_off(block)?,
        scalar => scalar_turns_off(scalar),
    };
    if off {
        Ok(())
    } else {
        Err(not_supported_yet(entry))
    }
}

/// A top-level `jetstream` under `-js=false`: whatever it says, JetStream
/// stays off (nats-server's flag wins over its file), so only what
/// nats-server would still refuse is refused: an unknown key in a block, a
/// string other than enabled/disabled.
pub(super) fn check_overridden(entry: &Entry) -> Result<(), ConfigError> {
    match &entry.node.value {
        Value::Map(block) => block_turns_off(block).map(|_| ()),
        Value::String(s)
            if !matches!(
                s.to_ascii_lowercase().as_str(),
                "enabled" | "enable" | "disabled" | "disable"
            ) =>
        {
            Err(ConfigError::at(
                &entry.key_pos,
                format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
            ))
        }
        _ => Ok(()),
    }
}

/// `false`, `"disabled"` or `"disable"` (any case): nats-server's ways of
/// saying "no JetStream" with a single value, at the top level and in an
/// account alike.
pub(super) fn scalar_turns_off(value: &Value) -> bool {
    match value {
        Value::Bool(on) => !on,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "disabled" | "disable"),
        _ => false,
    }
}

/// A `jetstream { }` block is on unless it says `enabled: false` (or
/// `enable`). Should it say so more than once, every one must be `false`:
/// nats-server reads the block as a Go map, whose order is random, so with
/// `enabled: true` and `Enable: false` side by side it may well start
/// JetStream.
fn block_turns_off(block: &Map) -> Result<bool, ConfigError> {
    let mut said_off = false;
    let mut said_on = false;
    for e in block.entries() {
        let key = e.key.to_ascii_lowercase();
        if !BLOCK_KEYS.contains(&key.as_str()) && !e.used_as_variable {
            return Err(ConfigError::at(
                &e.key_pos,
                format!("unknown field \"{}\"", e.key),
            ));
        }
        if key == "enable" || key == "enabled" {
            // A non-boolean (nats-server fails on it) is no "off" either.
            match e.node.value {
                Value::Bool(false) => said_off = true,
                _ => said_on = true,
            }
        }
    }
    Ok(said_off && !said_on)
}

#[cfg(test)]
mod tests {
    use crate::config::conf::parse_str;
    use crate::config::load::apply_config;
    use crate::config::Options;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(source: &str) -> Result<(), String> {
        let map = parse_str(source, "x.conf", &no_env).map_err(|e| e.to_string())?;
        apply_config(&map, &mut Options::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn jetstream_turned_off_is_accepted() {
        for source in [
            "jetstream: false",
            "jetstream: disabled",
            "jetstream: Disable",
            "JetStream = \"DISABLED\"",
            "jetstream { enabled: false }",
            "jetstream { enable: false, store_dir: /tmp/x, max_mem_store: 1GB }",
        ] {
            assert_eq!(load(source), Ok(()), "source: {source:?}");
        }
    }

    #[test]
    fn jetstream_turned_on_is_refused() {
        for (source, col) in [
            ("jetstream: true", 0),
            ("jetstream: enabled", 0),
            ("jetstream: 1", 0),
            ("jetstream {}", 0),
            ("jetstream { max_mem_store: 64MiB }", 0),
            ("jetstream { enabled: false, enabled: true }", 0),
            ("jetstream { enabled: true, Enabled: false }", 0),
            ("jetstream { enabled: \"false\" }", 0),
            ("port: 1\njetstream: enabled", 1),
        ] {
            let line = 1 + source.matches('\n').count();
            assert_eq!(
                load(source),
                Err(format!(
                    "x.conf:{line}:{col}: \"jetstream\" is not supported yet by percore"
                )),
                "source: {source:?}"
            );
        }
    }

    #[test]
    fn unknown_key_in_a_disabled_block_is_an_error() {
        assert_eq!(
            load("jetstream {\n  enabled: false\n  max_memroy: 1GB\n}"),
            Err("x.conf:3:3: unknown field \"max_memroy\"".to_string())
        );
    }
}
