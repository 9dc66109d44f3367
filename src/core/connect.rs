//! The client's `CONNECT` options and nats-server 2.9's rules for them.
//!
//! Absent keys take the server's defaults, which for `verbose` and
//! `pedantic` are *true*: a telnet user who never sends CONNECT gets `+OK`
//! after each op, as with nats-server.

use serde::Deserialize;

use crate::auth::Credentials;

/// What a connection asked for; before any CONNECT, the defaults apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub protocol: i64,
    pub name: String,
    pub lang: String,
    pub version: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
        }
    }
}

/// Why a CONNECT was refused, with what the server sends before closing.
///
/// Only [`ConnectError::Malformed`] is decided before the credentials:
/// nats-server 2.9 (`processConnect`) authenticates first, and judges the
/// account keys, the protocol and `no_responders` only for a client that
/// passed, so `{"protocol":2,"auth_token":"bad"}` is an Authorization
/// Violation, not an invalid protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// Malformed JSON or a wrong type: close without `-ERR` (as 2.9 does).
    Malformed,
    /// `-ERR 'invalid client protocol'`, then close.
    InvalidProtocol,
    /// `-ERR 'no responders requires headers support'`, then close.
    NoRespondersWithoutHeaders,
    /// `-ERR 'Authorization Violation'`, then close (obsolete `account` keys).
    AuthorizationViolation,
}

impl ConnectError {
    /// The `-ERR` text sent before closing, if any.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ConnectError::Malformed => None,
            ConnectError::InvalidProtocol => Some("invalid client protocol"),
            ConnectError::NoRespondersWithoutHeaders => {
                Some("no responders requires headers support")
            }
            ConnectError::AuthorizationViolation => Some("Authorization Violation"),
        }
    }
}

#[derive(Deserialize)]
struct ConnectWire {
    verbose: Option<bool>,
    pedantic: Option<bool>,
    echo: Option<bool>,
    headers: Option<bool>,
    no_responders: Option<bool>,
    protocol: Option<i64>,
    name: Option<String>,
    lang: Option<String>,
    version: Option<String>,
    account: Option<String>,
    new_account: Option<bool>,
    // Known keys we accept and ignore until TLS exists; typed so that a
    // wrong type still closes the connection as nats-server does.
    #[allow(dead_code)]
    tls_required: Option<bool>,
    auth_token: Option<String>,
    user: Option<String>,
    pass: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
    /// A user JWT (operator mode; ignored otherwise).
    jwt: Option<String>,
}

/// A CONNECT that parsed: the options the connection keeps, the
/// credentials to check, and the refusal (if any) that applies once they
/// passed.
#[derive(Debug)]
pub struct ConnectRequest {
    pub options: ClientOptions,
    pub credentials: Credentials,
    /// What closes the connection after a successful authentication (or at
    /// once where none is required): see [`ConnectError`] for the order.
    pub refusal_after_auth: Option<ConnectError>,
}

/// Parses the JSON argument of a connection's first CONNECT.
pub fn parse_connect(json: &[u8]) -> Result<ConnectRequest, ConnectError> {
    parse_connect_onto(json, &ClientOptions::default())
}

/// Parses a CONNECT whose absent keys keep their value in `previous` (the
/// defaults before the first CONNECT): nats-server decodes every CONNECT
/// over the options it already holds, so `CONNECT {"verbose":false}` then
/// `CONNECT {}` leaves verbose off.
pub fn parse_connect_onto(
    json: &[u8],
    previous: &ClientOptions,
) -> Result<ConnectRequest, ConnectError> {
    let wire: ConnectWire = serde_json::from_slice(json).map_err(|_| ConnectError::Malformed)?;
    let names_account =
        wire.account.as_deref().is_some_and(|a| !a.is_empty()) || wire.new_account == Some(true);
    let options = ClientOptions {
        verbose: wire.verbose.unwrap_or(previous.verbose),
        pedantic: wire.pedantic.unwrap_or(previous.pedantic),
        echo: wire.echo.unwrap_or(previous.echo),
        headers: wire.headers.unwrap_or(previous.headers),
        no_responders: wire.no_responders.unwrap_or(previous.no_responders),
        protocol: wire.protocol.unwrap_or(previous.protocol),
        name: wire.name.unwrap_or_else(|| previous.name.clone()),
        lang: wire.lang.unwrap_or_else(|| previous.lang.clone()),
        version: wire.version.unwrap_or_else(|| previous.version.clone()),
    };
    // nats-server's order after authentication: account keys, protocol,
    // no_responders.
    let refusal_after_auth = if names_account {
        Some(ConnectError::AuthorizationViolation)
    } else if !(0..=1).contains(&options.protocol) {
        Some(ConnectError::InvalidProtocol)
    } else if options.no_responders && !options.headers {
        Some(ConnectError::NoRespondersWithoutHeaders)
    } else {
        None
    };
    let credentials = Credentials {
        user: wire.user,
        pass: wire.pass,
        auth_token: wire.auth_token,
        nkey: wire.nkey,
        sig: wire.sig,
        jwt: wire.jwt,
        certificate: None,
        ip: None,
    };
    Ok(ConnectRequest {
        options,
        credentials,
        refusal_after_auth,
    })
}

/// The CONNECT JSON for a trace line, with `pass`, `auth_token` and `sig`
/// replaced by `[REDACTED]` (nats-server redacts them too): secrets never
/// reach the log, not even with -V.
pub fn redacted_connect(json: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(mut map)) => {
            for key in ["pass", "auth_token", "sig"] {
                if let Some(value) = map.get_mut(key) {
                    *value = serde_json::Value::String("[REDACTED]".into());
                }
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => "[unparsable, not shown]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keys_take_server_defaults() {
        let o = parse_connect(b"{}").unwrap().options;
        assert!(o.verbose && o.pedantic && o.echo && !o.headers);
    }

    #[test]
    fn a_later_connect_keeps_what_it_does_not_mention() {
        let first = parse_connect(br#"{"verbose":false,"headers":true,"echo":false,"name":"a"}"#)
            .unwrap()
            .options;
        let o = parse_connect_onto(br#"{"pedantic":false}"#, &first)
            .unwrap()
            .options;
        assert!(!o.verbose && o.headers && !o.echo && !o.pedantic && o.name == "a");
        let o = parse_connect_onto(br#"{"headers":false}"#, &first)
            .unwrap()
            .options;
        assert!(!o.headers && !o.verbose);
    }

    #[test]
    fn typical_client_connect() {
        let request = parse_connect(
            br#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"x","lang":"rust","version":"0.38","protocol":1,"echo":true,"headers":true,"no_responders":true,"unknown":[1]}"#,
        )
        .unwrap();
        assert_eq!(request.refusal_after_auth, None);
        let o = request.options;
        assert!(!o.verbose && o.headers && o.no_responders && o.protocol == 1 && o.lang == "rust");
    }

    #[test]
    fn credentials_are_returned_and_redacted_in_traces() {
        let json = br#"{"user":"u","pass":"p1","auth_token":"t1","nkey":"UABC","sig":"s1"}"#;
        let c = parse_connect(json).unwrap().credentials;
        assert_eq!(c.user.as_deref(), Some("u"));
        assert_eq!(c.pass.as_deref(), Some("p1"));
        assert_eq!(c.auth_token.as_deref(), Some("t1"));
        assert_eq!(
            (c.nkey.as_deref(), c.sig.as_deref()),
            (Some("UABC"), Some("s1"))
        );
        let shown = redacted_connect(json);
        assert!(!shown.contains("p1") && !shown.contains("t1") && !shown.contains("s1"));
        assert!(shown.contains("\"user\":\"u\"") && shown.contains("[REDACTED]"));
    }

    fn refusal(json: &[u8]) -> Option<ConnectError> {
        parse_connect(json).unwrap().refusal_after_auth
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_connect(b"{bad").unwrap_err(), ConnectError::Malformed);
        assert_eq!(
            parse_connect(br#"{"verbose":"yes"}"#).unwrap_err(),
            ConnectError::Malformed
        );
        assert_eq!(
            refusal(br#"{"protocol":2}"#),
            Some(ConnectError::InvalidProtocol)
        );
        assert_eq!(
            refusal(br#"{"protocol":-1}"#),
            Some(ConnectError::InvalidProtocol)
        );
        assert_eq!(
            refusal(br#"{"no_responders":true}"#),
            Some(ConnectError::NoRespondersWithoutHeaders)
        );
        assert_eq!(
            refusal(br#"{"account":"A","protocol":2}"#),
            Some(ConnectError::AuthorizationViolation)
        );
        // The credentials are still returned, to be checked first.
        let request = parse_connect(br#"{"protocol":2,"auth_token":"t"}"#).unwrap();
        assert_eq!(request.credentials.auth_token.as_deref(), Some("t"));
    }
}
