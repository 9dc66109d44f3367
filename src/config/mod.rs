//! Command line and config file, following nats-server's so that a user can
//! swap the binary without editing flags or files.

pub mod options;

pub use options::{Options, Placement};
mod stub;
pub use stub::{parse_invocation, ConfigError, Invocation};
