//! Client protocol: the ops a NATS client sends (`ops`) and the zero-copy
//! parser that recognises them in a connection's read buffer (`parser`);
//! the route protocol between servers (`route_parser`).
//!
//! Everything here is pure: no I/O, no allocation, no runtime. The server
//! side of the protocol (INFO, MSG, -ERR writers) lives elsewhere.

pub mod ops;
pub mod parser;
mod pub_line;
pub mod route_parser;

pub use ops::{ClientOp, Publish};
pub use parser::{ParseError, Parser};
pub use route_parser::{RouteOp, RouteParseError, RouteParser, RouteQueues, RoutedMsg};
