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

/// Parses the JSON argument of a connection's first CONNECT: the options the
/// connection keeps, and the credentials, which are checked once and not
/// kept.
pub fn parse_connect(json: &[u8]) -> Result<(ClientOptions, Credentials), ConnectError> {
    parse_connect_onto(json, &ClientOptions::default())
}

/// Parses a CONNECT whose absent keys keep their value in `previous` (the
/// defaults before the first CONNECT): nats-server decodes every CONNECT
/// over the options it already holds, so `CONNECT {"verbose":false}` then
/// `CONNECT {}` leaves verbose off.
pub fn parse_connect_onto(
    json: &[u8],
    previous: &ClientOptions,
) -> Result<(ClientOptions, Credentials), ConnectError> {
    let wire: ConnectWire = serde_json::from_slice(json).map_err(|_| ConnectError::Malformed)?;
    if wire.account.as_deref().is_some_and(|a| !a.is_empty()) || wire.new_account == Some(true) {
        return Err(ConnectError::AuthorizationViolation);
    }
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
    if !(0..=1).contains(&options.protocol) {
        return Err(ConnectError::InvalidProtocol);
    }
    if options.no_responders && !options.headers {
        return Err(ConnectError::NoRespondersWithoutHeaders);
    }
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
    Ok((options, credentials))
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
        let (o, _) = parse_connect(b"{}").unwrap();
        assert!(o.verbose && o.pedantic && o.echo && !o.headers);
    }

    #[test]
    fn a_later_connect_keeps_what_it_does_not_mention() {
        let (first, _) =
            parse_connect(br#"{"verbose":false,"headers":true,"echo":false,"name":"a"}"#).unwrap();
        let (o, _) = parse_connect_onto(br#"{"pedantic":false}"#, &first).unwrap();
        assert!(!o.verbose && o.headers && !o.echo && !o.pedantic && o.name == "a");
        let (o, _) = parse_connect_onto(br#"{"headers":false}"#, &first).unwrap();
        assert!(!o.headers && !o.verbose);
    }

    #[test]
    fn typical_client_connect() {
        let (o, _) = parse_connect(
            br#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"x","lang":"rust","version":"0.38","protocol":1,"echo":true,"headers":true,"no_responders":true,"unknown":[1]}"#,
        )
        .unwrap();
        assert!(!o.verbose && o.headers && o.no_responders && o.protocol == 1 && o.lang == "rust");
    }

    #[test]
    fn credentials_are_returned_and_redacted_in_traces() {
        let json = br#"{"user":"u","pass":"p1","auth_token":"t1","nkey":"UABC","sig":"s1"}"#;
        let (_, c) = parse_connect(json).unwrap();
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

    #[test]
    fn refusals() {
        assert_eq!(parse_connect(b"{bad"), Err(ConnectError::Malformed));
        assert_eq!(
            parse_connect(br#"{"verbose":"yes"}"#),
            Err(ConnectError::Malformed)
        );
        assert_eq!(
            parse_connect(br#"{"protocol":2}"#),
            Err(ConnectError::InvalidProtocol)
        );
        assert_eq!(
            parse_connect(br#"{"protocol":-1}"#),
            Err(ConnectError::InvalidProtocol)
        );
        assert_eq!(
            parse_connect(br#"{"no_responders":true}"#),
            Err(ConnectError::NoRespondersWithoutHeaders)
        );
        assert_eq!(
            parse_connect(br#"{"account":"A"}"#),
            Err(ConnectError::AuthorizationViolation)
        );
    }
}
