//! `host[:port]` as nats-server reads an advertise option
//! (`client_advertise`): Go's `net.SplitHostPort`, retried with the
//! listener's port appended when the port is missing, the port read with
//! `strconv.Atoi`, and 0 or -1 meaning "the listener's port". Errors are
//! Go's texts, because nats-server puts them in its fatal log line and an
//! operator searching for that line should find the same words.
//!
//! One difference: Go keeps any integer as the port (INFO may then say
//! `"port":99999`); percore refuses what is not a TCP port, which no client
//! could dial anyway.

use crate::go_quote::go_quote;

/// `host[:port]` → (host, port), both trimmed; `default_port` where the
/// text has no port or says 0 or -1.
pub fn parse_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    if text.is_empty() {
        return Err("no hostport specified".to_string());
    }
    let (host, port) = match split_host_port(text) {
        Ok(parts) => parts,
        Err(why) if why == MISSING_PORT => {
            let with_port = format!("{text}:{default_port}");
            let (host, port) =
                split_host_port(&with_port).map_err(|why| address_error(&with_port, why))?;
            (host.to_string(), port.to_string())
        }
        Err(why) => return Err(address_error(text, why)),
    };
    let port = atoi(port.trim())?;
    let port = match port {
        0 | -1 => default_port,
        _ => u16::try_from(port)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port {port} is out of range (1-65535)"))?,
    };
    Ok((host.trim().to_string(), port))
}

/// Go's `net.JoinHostPort`: an IPv6 host gets its brackets back.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const MISSING_PORT: &str = "missing port in address";
const TOO_MANY_COLONS: &str = "too many colons in address";

/// Go's `net.AddrError` text.
fn address_error(address: &str, why: &str) -> String {
    format!("address {address}: {why}")
}

/// Go's `net.SplitHostPort`, rule for rule (its error reasons included).
fn split_host_port(text: &str) -> Result<(String, String), &'static str> {
    let colon = text.rfind(':').ok_or(MISSING_PORT)?;
    let (host, open_from, close_from) = if text.starts_with('[') {
        let end = text.find(']').ok_or("missing ']' in address")?;
        if end + 1 == text.len() {
            return Err(MISSING_PORT);
        }
        if end + 1 != colon {
            // Something between `]` and the last colon.
            return Err(if text.as_bytes()[end + 1] == b':' {
                TOO_MANY_COLONS
            } else {
                MISSING_PORT
            });
        }
        (&text[1..end], 1, end + 1)
    } else {
        let host = &text[..colon];
        if host.contains(':') {
            return Err(TOO_MANY_COLONS);
        }
        (host, 0, 0)
    };
    if text[open_from..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if text[close_from..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host.to_string(), text[colon + 1..].to_string()))
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits.
fn atoi(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            go_quote(text)
        ));
    }
    text.trim_start_matches('+').parse::<i64>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            go_quote(text)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, u16) {
        parse_host_port(text, 4222).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        match parse_host_port(text, 4222) {
            Ok(parsed) => panic!("{text}: parsed as {parsed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn host_and_port_as_nats_server_reads_them() {
        assert_eq!(ok("h:5"), ("h".into(), 5));
        assert_eq!(ok("myhost"), ("myhost".into(), 4222));
        assert_eq!(ok(" h : 5 "), ("h".into(), 5));
        assert_eq!(ok("[::1]:7"), ("::1".into(), 7));
        assert_eq!(ok("[::1]"), ("::1".into(), 4222));
        assert_eq!(ok("1.2.3.4:0"), ("1.2.3.4".into(), 4222));
        assert_eq!(ok("h:-1"), ("h".into(), 4222));
        assert_eq!(ok("h:+5"), ("h".into(), 5));
        assert_eq!(ok("h:005"), ("h".into(), 5));
        assert_eq!(ok(":5"), ("".into(), 5));
    }

    /// The texts nats-server 2.9.10 printed for these values.
    #[test]
    fn errors_in_go_words() {
        assert_eq!(
            err("host:abc"),
            "strconv.Atoi: parsing \"abc\": invalid syntax"
        );
        assert_eq!(err("host:"), "strconv.Atoi: parsing \"\": invalid syntax");
        assert_eq!(err("[::1"), "address [::1: missing ']' in address");
        assert_eq!(err("a:b:c"), "address a:b:c: too many colons in address");
        assert_eq!(err("::1"), "address ::1: too many colons in address");
        assert_eq!(err("a[b:5"), "address a[b:5: unexpected '[' in address");
        assert_eq!(err("ab]:5"), "address ab]:5: unexpected ']' in address");
        assert_eq!(
            err("[::1]x"),
            "address [::1]x:4222: missing port in address"
        );
        assert_eq!(
            err("h:99999999999999999999"),
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(err(""), "no hostport specified");
        // percore's own: not a TCP port.
        assert_eq!(err("h:99999"), "port 99999 is out of range (1-65535)");
        assert_eq!(err("h:-5"), "port -5 is out of range (1-65535)");
    }

    #[test]
    fn joined_as_go_joins_them() {
        assert_eq!(join_host_port("h", 5), "h:5");
        assert_eq!(join_host_port("::1", 5), "[::1]:5");
    }
}
