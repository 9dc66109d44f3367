//! The `cluster` block and the clustering flags (`--cluster`,
//! `--cluster_name`, `--routes`, `--cluster_advertise`, `--no_advertise`,
//! `--connect_retries`), with nats-server 2.9's rules and error texts.

use std::time::Duration;

use percore_core::auth::Permissions;
use percore_core::route::RouteUrl;

use super::conf::{Entry, Value};
use super::entry::{boolean, integer, string, unknown_field, wrong_type};
use super::error::ConfigError;
use super::load::host_and_port;
use super::permissions::parse_permissions;
use super::tls::{apply_tls, validate, TlsOptions};

/// nats-server's default route authorization timeout (2 s, as for clients).
pub const DEFAULT_ROUTE_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the `cluster` block and the flags say.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// `name`; `None`: a generated name (as nats-server, "dynamic").
    pub name: Option<String>,
    pub host: String,
    /// 0: clustering off; -1: a free port.
    pub port: i64,
    /// `advertise` / `cluster_advertise`: `host[:port]` peers should dial.
    pub advertise: Option<String>,
    pub no_advertise: bool,
    pub connect_retries: u32,
    /// `authorization { user, password, timeout }`.
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_timeout: Duration,
    /// `routes`: the seeds to dial.
    pub routes: Vec<RouteUrl>,
    /// `tls {}`: TLS on every route, the handshake first.
    pub tls: Option<TlsOptions>,
    /// `permissions { import, export }` (or, deprecated, inside
    /// `authorization`): import as the publish rules, export as the
    /// subscribe rules, as nats-server parses them.
    pub permissions: Option<Permissions>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            name: None,
            host: "0.0.0.0".into(),
            port: 0,
            advertise: None,
            no_advertise: false,
            connect_retries: 0,
            user: None,
            pass: None,
            auth_timeout: DEFAULT_ROUTE_AUTH_TIMEOUT,
            routes: Vec::new(),
            tls: None,
            permissions: None,
        }
    }
}

impl ClusterOptions {
    /// nats-server clusters when the cluster port is set.
    pub fn enabled(&self) -> bool {
        self.port != 0
    }

    /// The port to bind: -1 means any.
    pub fn bind_port(&self) -> u16 {
        u16::try_from(self.port).unwrap_or(0)
    }
}

/// Applies the `cluster` block. Returns warnings (`-t` fails on them).
pub fn apply_cluster(
    entry: &Entry,
    cluster: &mut ClusterOptions,
) -> Result<Vec<String>, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Expected map to define cluster, got {}",
                entry.node.value.kind()
            ),
        ));
    };
    let mut warnings = Vec::new();
    let mut top_level_permissions = false;
    for item in map.entries() {
        match item.key.to_ascii_lowercase().as_str() {
            "name" => cluster.name = Some(string(item)?.to_string()).filter(|n| !n.is_empty()),
            "listen" => {
                let (host, port) = host_and_port(item)?;
                if let Some(host) = host {
                    cluster.host = host.to_string();
                }
                cluster.port = port;
            }
            "port" => cluster.port = integer(item)?,
            "host" | "net" => cluster.host = string(item)?.to_string(),
            "authorization" => {
                if let Some(permissions) = apply_authorization(item, cluster)? {
                    warnings.push(
                        ConfigError::at(
                            &item.key_pos,
                            format!(
                                "invalid use of field \"{}\": setting \"permissions\" within cluster authorization block is deprecated",
                                item.key
                            ),
                        )
                        .to_string(),
                    );
                    // The block's own `permissions` win, wherever they are.
                    if !top_level_permissions {
                        cluster.permissions = Some(permissions);
                    }
                }
            }
            "permissions" => {
                let permissions = parse_permissions(item)?;
                if permissions.allow_responses.is_some() {
                    return Err(ConfigError::at(
                        &item.key_pos,
                        "Cluster permissions do not support dynamic responses",
                    ));
                }
                cluster.permissions = Some(permissions);
                top_level_permissions = true;
            }
            "routes" => cluster.routes = route_urls(item, &mut warnings)?,
            "cluster_advertise" | "advertise" => {
                cluster.advertise = Some(string(item)?.to_string()).filter(|a| !a.is_empty())
            }
            "no_advertise" => cluster.no_advertise = boolean(item)?,
            "connect_retries" => {
                cluster.connect_retries = u32::try_from(integer(item)?).unwrap_or(0)
            }
            "tls" => {
                let tls = apply_tls(item)?;
                if tls.map {
                    return Err(ConfigError::at(
                        &item.key_pos,
                        "cluster tls \"verify_and_map\" is not supported yet by percore",
                    ));
                }
                // Client-port options with no meaning on routes: refused
                // rather than ignored (the route handshake always comes
                // first).
                if tls.handshake_first || tls.rate_limit > 0 {
                    return Err(ConfigError::at(
                        &item.key_pos,
                        "cluster tls: \"handshake_first\" and \"connection_rate_limit\" apply to clients only",
                    ));
                }
                validate(&tls).map_err(|e| ConfigError::at(&item.key_pos, e.to_string()))?;
                cluster.tls = Some(tls);
            }
            "pool_size" | "accounts" | "compression" => {
                return Err(ConfigError::at(
                    &item.key_pos,
                    format!("cluster \"{}\" is not supported yet by percore", item.key),
                ))
            }
            _ if item.used_as_variable => {}
            _ => return Err(unknown_field(item)),
        }
    }
    Ok(warnings)
}

/// `authorization { user, password, timeout }`; returns its (deprecated)
/// `permissions`, which apply unless the block has its own.
fn apply_authorization(
    entry: &Entry,
    cluster: &mut ClusterOptions,
) -> Result<Option<Permissions>, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(wrong_type(entry, "a map"));
    };
    let mut permissions = None;
    for item in map.entries() {
        match item.key.to_ascii_lowercase().as_str() {
            "user" | "username" => cluster.user = Some(string(item)?.to_string()),
            "pass" | "password" => cluster.pass = Some(string(item)?.to_string()),
            "timeout" => {
                cluster.auth_timeout = match item.node.value {
                    Value::Integer(n) => Duration::from_secs(u64::try_from(n).unwrap_or(0)),
                    Value::Float(f) if f >= 0.0 => Duration::from_secs_f64(f),
                    _ => return Err(wrong_type(item, "a number of seconds")),
                }
            }
            "users" => {
                return Err(ConfigError::at(
                    &item.key_pos,
                    "Cluster authorization does not allow multiple users",
                ))
            }
            "token" => {
                return Err(ConfigError::at(
                    &item.key_pos,
                    "Cluster authorization does not support tokens",
                ))
            }
            "permissions" => permissions = Some(parse_permissions(item)?),
            _ if item.used_as_variable => {}
            _ => return Err(unknown_field(item)),
        }
    }
    Ok(permissions)
}

/// `routes: [...]`: URLs, a repeated one dropped with nats-server's
/// warning.
fn route_urls(entry: &Entry, warnings: &mut Vec<String>) -> Result<Vec<RouteUrl>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(wrong_type(entry, "an array"));
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut urls = Vec::new();
    for node in items {
        let Value::String(text) = &node.value else {
            return Err(ConfigError::at(&node.pos, "expected a route URL string"));
        };
        if seen.contains(&text.as_str()) {
            warnings.push(format!("{}: Duplicate route entry detected", node.pos));
            continue;
        }
        seen.push(text);
        let url = RouteUrl::parse(text).ok_or_else(|| {
            ConfigError::at(
                &node.pos,
                format!("error parsing route url [\"{}\"]", text.trim()),
            )
        })?;
        urls.push(url);
    }
    Ok(urls)
}

/// `--cluster nats://[user:pass@]host:port` (port -1: a free one).
pub fn apply_cluster_flag(listen: &str, cluster: &mut ClusterOptions) -> Result<(), String> {
    if listen.is_empty() {
        cluster.port = 0;
        return Ok(());
    }
    let (text, random) = match listen.strip_suffix(":-1") {
        Some(rest) => (format!("{rest}:0"), true),
        None => (listen.to_string(), false),
    };
    let url = RouteUrl::parse(&text)
        .ok_or_else(|| format!("could not parse cluster URL \"{listen}\""))?;
    cluster.host = url.host;
    cluster.port = if random { -1 } else { i64::from(url.port) };
    match url.user {
        Some(user) => {
            let pass = url
                .pass
                .ok_or_else(|| "expected cluster password to be set".to_string())?;
            cluster.user = Some(user);
            cluster.pass = Some(pass);
        }
        None => {
            cluster.user = None;
            cluster.pass = None;
        }
    }
    Ok(())
}

/// `--routes url1,url2`: replaces the file's routes.
pub fn routes_flag(text: &str) -> Result<Vec<RouteUrl>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| RouteUrl::parse(r).ok_or_else(|| format!("error parsing route url [\"{r}\"]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;
    use crate::config::load::apply_config;
    use crate::config::Options;

    fn load(source: &str) -> Result<(Options, Vec<String>), String> {
        let map = parse_str(source, "x.conf", &|_| None).map_err(|e| e.to_string())?;
        let mut opts = Options::default();
        let warnings = apply_config(&map, &mut opts).map_err(|e| e.to_string())?;
        Ok((opts, warnings))
    }

    #[test]
    fn the_cluster_block() {
        let (opts, warnings) = load(
            "cluster {\n  name: demo\n  listen: 127.0.0.1:6222\n  routes: [nats-route://a:1, nats-route://u:p@b:2, nats-route://a:1]\n  advertise: \"x:7\"\n  no_advertise: true\n  connect_retries: 3\n  authorization { user: ru, password: rp, timeout: 0.5 }\n}\n",
        )
        .unwrap();
        let c = opts.cluster.unwrap();
        assert!(c.enabled());
        assert_eq!(
            (c.name.as_deref(), c.host.as_str(), c.port),
            (Some("demo"), "127.0.0.1", 6222)
        );
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].user.as_deref(), Some("u"));
        assert_eq!(warnings, ["x.conf:4:52: Duplicate route entry detected"]);
        assert_eq!(c.advertise.as_deref(), Some("x:7"));
        assert!(c.no_advertise);
        assert_eq!(c.connect_retries, 3);
        assert_eq!(
            (c.user.as_deref(), c.pass.as_deref()),
            (Some("ru"), Some("rp"))
        );
        assert_eq!(c.auth_timeout, Duration::from_millis(500));
        // Port only, and host/port keys.
        let c = load("cluster { port: 7000, host: 127.0.0.2 }")
            .unwrap()
            .0
            .cluster
            .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.2", 7000));
    }

    #[test]
    fn cluster_block_errors() {
        assert_eq!(
            load("cluster { authorization { users: [] } }").unwrap_err(),
            "x.conf:1:26: Cluster authorization does not allow multiple users"
        );
        assert_eq!(
            load("cluster { authorization { token: t } }").unwrap_err(),
            "x.conf:1:26: Cluster authorization does not support tokens"
        );
        assert_eq!(
            load("cluster { bogus: 1 }").unwrap_err(),
            "x.conf:1:10: unknown field \"bogus\""
        );
        assert!(load("cluster: 5")
            .unwrap_err()
            .contains("Expected map to define cluster"));
        assert!(load("cluster { tls { } }")
            .unwrap_err()
            .contains("needs 'cert_file' and 'key_file'"));
        assert!(
            load("cluster { tls { cert_file: a, key_file: b, verify_and_map: true } }")
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(
            load("cluster { tls { cert_file: a, key_file: b, handshake_first: true } }")
                .unwrap_err()
                .contains("apply to clients only")
        );
        let c = load("cluster { tls { cert_file: a, key_file: b, ca_file: c, verify: true, timeout: 3, insecure: true } }")
            .unwrap()
            .0
            .cluster
            .unwrap();
        let tls = c.tls.unwrap();
        assert!(tls.verify && tls.insecure);
        assert_eq!(tls.timeout(), Duration::from_secs(3));
    }

    #[test]
    fn cluster_permissions_are_taken_not_ignored() {
        let (opts, warnings) = load(
            "cluster {\n  port: 1\n  permissions { import: \"in.>\", export: { allow: [\"out.>\"], deny: \"out.secret\" } }\n}\n",
        )
        .unwrap();
        assert!(warnings.is_empty());
        let p = opts.cluster.unwrap().permissions.unwrap();
        assert_eq!(p.publish.unwrap().allow.unwrap().len(), 1);
        let export = p.subscribe.unwrap();
        assert_eq!(export.allow.unwrap().len(), 1);
        assert_eq!(&*export.deny[0].subject, b"out.secret");
        // Inside `authorization`: taken, with nats-server's deprecation
        // warning (which `-t` fails on); the block's own win.
        let (opts, warnings) = load(
            "cluster {\n  port: 1\n  authorization {\n    user: a\n    password: b\n    permissions { import: \"x.>\" }\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(
            warnings,
            ["x.conf:3:3: invalid use of field \"authorization\": setting \"permissions\" within cluster authorization block is deprecated"]
        );
        let p = opts.cluster.unwrap().permissions.unwrap();
        assert_eq!(&*p.publish.unwrap().allow.unwrap()[0], b"x.>");
        for source in [
            "cluster { port: 1, permissions { import: a }, authorization { permissions { import: b } } }",
            "cluster { port: 1, authorization { permissions { import: b } }, permissions { import: a } }",
        ] {
            let p = load(source).unwrap().0.cluster.unwrap().permissions.unwrap();
            assert_eq!(&*p.publish.unwrap().allow.unwrap()[0], b"a", "{source}");
        }
        assert_eq!(
            load("cluster {\n  port: 1\n  permissions { import: a, allow_responses: true }\n}")
                .unwrap_err(),
            "x.conf:3:3: Cluster permissions do not support dynamic responses"
        );
        assert!(load("cluster { permissions { bogus: a } }")
            .unwrap_err()
            .contains("Unknown field \"bogus\" parsing permissions"));
    }

    #[test]
    fn cluster_flag_forms() {
        let mut c = ClusterOptions::default();
        apply_cluster_flag("nats://127.0.0.1:6222", &mut c).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 6222));
        apply_cluster_flag("nats://127.0.0.1:-1", &mut c).unwrap();
        assert_eq!(c.port, -1);
        assert_eq!(c.bind_port(), 0);
        apply_cluster_flag("nats://u:p@127.0.0.1:1", &mut c).unwrap();
        assert_eq!(c.user.as_deref(), Some("u"));
        assert_eq!(
            apply_cluster_flag("nats://u@127.0.0.1:1", &mut c).unwrap_err(),
            "expected cluster password to be set"
        );
        let routes = routes_flag("nats-route://a:1, nats-route://b:2").unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].host_port(), "b:2");
    }
}
