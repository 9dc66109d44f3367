//! A client's remote address as nats-server's log lines show it: Go's
//! `net.Addr.String()`, `127.0.0.1:54321` or `[::1]:54321`. Operators'
//! log rules (fail2ban filters, alerting on "Authorization Violation" per
//! source) parse that form, port included.

use std::fmt;

/// `ip:port`, with an IPv6 address in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr<'a> {
    pub ip: &'a str,
    pub port: u16,
}

impl fmt::Display for PeerAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ip.contains(':') {
            write!(f, "[{}]:{}", self.ip, self.port)
        } else {
            write!(f, "{}:{}", self.ip, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_port_and_brackets_an_ipv6_address() {
        let v4 = PeerAddr {
            ip: "127.0.0.1",
            port: 54321,
        };
        assert_eq!(v4.to_string(), "127.0.0.1:54321");
        let v6 = PeerAddr {
            ip: "::1",
            port: 4222,
        };
        assert_eq!(v6.to_string(), "[::1]:4222");
    }
}
