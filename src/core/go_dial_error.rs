//! A failed TCP dial in Go's words (`net.OpError`), as nats-server logs a
//! route it cannot reach: `dial tcp 10.0.0.7:6222: connect: connection
//! refused`. An operator's alert on that log line then matches percore's
//! too.

use std::io;
use std::net::SocketAddr;

/// The dial to `addr` failed with `error`.
pub fn dial_error(addr: SocketAddr, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::TimedOut {
        return format!("dial tcp {addr}: i/o timeout");
    }
    format!("dial tcp {addr}: connect: {}", errno_text(error))
}

/// `host` did not resolve.
pub fn lookup_error(host: &str) -> String {
    format!("dial tcp: lookup {host}: no such host")
}

/// Go's text for a system error: the C library's, as Rust prints it too,
/// but starting in lower case and without Rust's ` (os error N)`.
fn errno_text(error: &io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => {
            let full = io::Error::from_raw_os_error(code).to_string();
            match full.rfind(" (os error ") {
                Some(at) => full[..at].to_string(),
                None => full,
            }
        }
        None => error.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go() {
        let addr: SocketAddr = "127.0.0.1:6222".parse().expect("addr");
        let refused = io::Error::from_raw_os_error(libc_econnrefused());
        assert_eq!(
            dial_error(addr, &refused),
            "dial tcp 127.0.0.1:6222: connect: connection refused"
        );
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(
            dial_error(addr, &timeout),
            "dial tcp 127.0.0.1:6222: i/o timeout"
        );
        let v6: SocketAddr = "[::1]:6222".parse().expect("addr");
        assert!(dial_error(v6, &refused).starts_with("dial tcp [::1]:6222: connect: "));
        assert_eq!(
            lookup_error("nowhere.invalid"),
            "dial tcp: lookup nowhere.invalid: no such host"
        );
    }

    /// ECONNREFUSED on Linux (the core links no libc).
    fn libc_econnrefused() -> i32 {
        111
    }
}
