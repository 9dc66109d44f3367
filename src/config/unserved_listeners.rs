//! The `websocket` (`ws`), `mqtt` and `leafnodes` (`leaf`) blocks: listeners
//! percore does not serve. nats-server 2.9.10 starts none of them while the
//! block has no port (or port 0) and, for leafnodes, no remotes; it accepts
//! `websocket {}` or `leafnodes { port: 0 }` and serves clients as usual.
//! Config files and launchers write such placeholders, so percore accepts
//! exactly those: an empty block, `port: 0`, a `host`. Anything that would
//! start a listener or dial out (a port, `listen`, `remotes`) or configure one
//! (TLS, authorization, ...) is refused as before, never ignored.

use super::conf::{Entry, Value};
use super::entry::{integer, not_supported_yet, string};
use super::error::ConfigError;

/// Accepts a block that starts nothing; refuses everything else with the
/// error every unimplemented feature gets.
pub(super) fn apply(entry: &Entry) -> Result<(), ConfigError> {
    let Value::Map(block) = &entry.node.value else {
        return Err(not_supported_yet(entry));
    };
    for item in block.entries() {
        match item.key.to_ascii_lowercase().as_str() {
            "port" if integer(item)? == 0 => {}
            "host" | "net" => {
                string(item)?;
            }
            _ => return Err(not_supported_yet(item)),
        }
    }
    Ok(())
}
