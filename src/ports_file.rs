//! `ports_file_dir`: once the listeners are bound, the server writes
//! `<executable>_<pid>.ports` there, a JSON object with the URLs each
//! listener can be reached at, and removes it at shutdown. Test launchers
//! (nats.js's, nats.go's, our own `tests/support`) start the server with
//! `-p -1` and read this file to learn the ports, so the name, the keys and
//! the URL forms are nats-server 2.9's: `nats` (or `tls` when clients must
//! use TLS), `monitoring` (`http` or `https`), `cluster` (`nats` or `tls`);
//! an empty list is left out. A listener on an unspecified address is
//! listed once per address of the host's interfaces, as nats-server does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What the file lists: each listener's scheme and bound address.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// The client listener; `tls` when clients must use TLS.
    pub client: Option<(&'static str, SocketAddr)>,
    /// The monitor (`http` or `https`).
    pub monitoring: Option<(&'static str, SocketAddr)>,
    /// The route listener (`nats`, or `tls` when routes use TLS).
    pub cluster: Option<(&'static str, SocketAddr)>,
}

#[derive(Serialize)]
struct Ports {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nats: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    monitoring: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cluster: Vec<String>,
}

/// The file's path in `dir`: named after the executable's base name (as
/// invoked, `argv[0]`) and the process id, like nats-server's, so a
/// launcher that knows the pid of the `nats-server` it started finds it.
pub fn path_in(dir: &Path) -> PathBuf {
    let exe = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "percore".to_string());
    dir.join(format!("{exe}_{}.ports", std::process::id()))
}

/// The file's contents for these listeners.
pub fn render(listeners: &Listeners) -> String {
    let urls = |listener: Option<(&'static str, SocketAddr)>| {
        listener.map_or_else(Vec::new, |(scheme, addr)| {
            reachable_at(addr)
                .into_iter()
                .map(|a| format!("{scheme}://{a}"))
                .collect()
        })
    };
    let ports = Ports {
        nats: urls(listeners.client),
        monitoring: urls(listeners.monitoring),
        cluster: urls(listeners.cluster),
    };
    serde_json::to_string(&ports).unwrap_or_else(|_| "{}".to_string())
}

/// Writes the file into `dir`; returns its path, to remove at shutdown.
/// The text goes to a temporary name first and is renamed into place, so
/// a launcher that polls for the file never reads it half-written (a plain
/// write creates it empty before filling it).
pub fn write(dir: &Path, listeners: &Listeners) -> std::io::Result<PathBuf> {
    let path = path_in(dir);
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    std::fs::write(&partial, render(listeners))?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// The addresses a listener bound to `addr` answers at: `addr` itself, or
/// for an unspecified address every interface address with its port.
fn reachable_at(addr: SocketAddr) -> Vec<SocketAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr];
    }
    shards::net::interface_addresses()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, addr.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_listener_with_its_scheme_and_leaves_out_absent_ones() {
        let listeners = Listeners {
            client: Some(("nats", "127.0.0.1:4222".parse().unwrap())),
            monitoring: None,
            cluster: Some(("tls", "[::1]:6222".parse().unwrap())),
        };
        assert_eq!(
            render(&listeners),
            r#"{"nats":["nats://127.0.0.1:4222"],"cluster":["tls://[::1]:6222"]}"#
        );
    }

    #[test]
    fn an_unspecified_address_is_listed_at_the_interfaces_addresses() {
        let listeners = Listeners {
            client: Some(("nats", "0.0.0.0:4222".parse().unwrap())),
            ..Listeners::default()
        };
        let rendered = render(&listeners);
        assert!(!rendered.contains("0.0.0.0"), "{rendered}");
        assert!(rendered.contains("nats://127.0.0.1:4222"), "{rendered}");
    }

    #[test]
    fn the_name_is_the_executable_and_the_pid() {
        let name = path_in(Path::new("/d"));
        let pid = std::process::id();
        assert!(
            name.to_string_lossy().ends_with(&format!("_{pid}.ports")),
            "{name:?}"
        );
        assert!(name.starts_with("/d"));
    }
}
