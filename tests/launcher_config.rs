//! What test launchers put in the config of the server they start (nats.js's
//! `nst`, nats.go's test helpers): `ports_file_dir`, from which they learn
//! the ports of a server started on `-1`, and `server_tags`. nats-server 2.9
//! takes both; percore refused them, so such a launcher could not start it.

mod support;

use std::path::{Path, PathBuf};
use support::{assert_alive, client_on_shard, Broker, IO_TIMEOUT};

/// A fresh directory for one test's ports file, removed when dropped.
struct PortsDir(PathBuf);

impl PortsDir {
    fn new(name: &str) -> PortsDir {
        let dir = std::env::temp_dir().join(format!("percore-ports-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("ports dir");
        PortsDir(dir)
    }

    /// Where nats-server's naming puts the file of process `pid`: the
    /// executable's base name, then the pid.
    fn file_of(&self, pid: u32) -> PathBuf {
        self.0.join(format!("percore_{pid}.ports"))
    }
}

impl Drop for PortsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no ports file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn ports_file_lists_the_bound_listeners_once_ready_and_goes_at_shutdown() {
    let dir = PortsDir::new("flag");
    let dir_arg = dir.0.display().to_string();
    let mut broker = Broker::start_with(&["-m", "-1", "--ports_file_dir", &dir_arg], None);
    broker
        .wait_log("Server is ready", IO_TIMEOUT)
        .expect("server ready");
    let ports = read_json(&dir.file_of(broker.pid()));
    let monitor = broker.monitor.expect("monitor address");
    assert_eq!(
        ports,
        serde_json::json!({
            "nats": [format!("nats://{}", broker.addr)],
            "monitoring": [format!("http://{monitor}")],
        })
    );
    // The address it gives is the one clients reach, on every shard.
    for shard in 0..broker.shards {
        let mut client = client_on_shard(&broker, shard);
        assert_alive(&mut client);
    }
    broker.signal(libc::SIGINT);
    assert_eq!(broker.wait_exit(IO_TIMEOUT), Some(0));
    assert!(
        !dir.file_of(broker.pid()).exists(),
        "the ports file outlived the server"
    );
}

#[test]
fn ports_file_dir_and_server_tags_in_the_config_file_as_nats_js_writes_them() {
    let dir = PortsDir::new("config");
    // The shape nats.js's launcher writes (less its leafnodes and websocket
    // blocks, features percore does not have).
    let config = format!(
        "host: \"127.0.0.1\"\nport: -1\nhttp: \"127.0.0.1:-1\"\n\
         server_tags [\n  id:Abc\n  \" Zone \"\n ]\nports_file_dir: {}\n",
        dir.0.display()
    );
    let broker = Broker::with_config(&config);
    broker
        .wait_log("Server is ready", IO_TIMEOUT)
        .expect("server ready");
    let ports = read_json(&dir.file_of(broker.pid()));
    assert_eq!(ports["nats"][0], format!("nats://{}", broker.addr));
    let monitor = ports["monitoring"][0].as_str().expect("monitoring url");
    assert!(monitor.starts_with("http://127.0.0.1:"), "{monitor}");
    // Tags are kept as nats-server's tag list keeps them: lower case, trimmed.
    let varz = broker.monitor_json("/varz");
    assert_eq!(varz["tags"], serde_json::json!(["id:abc", "zone"]));
}
