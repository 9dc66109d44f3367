//! `--profile <port>` / `prof_port`: nats-server serves Go's pprof there.
//! percore has no Go profiler: a config or command line that asks for one
//! starts, says once that it is not served and to use perf, and nothing
//! listens on that port.

mod support;

use std::net::TcpStream;

use support::cluster::free_port;
use support::{assert_alive, Broker, RawClient};

fn assert_nothing_listens(port: u16) {
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something answers on the profiling port {port}"
    );
}

#[test]
fn a_profiling_port_is_accepted_and_nothing_is_served() {
    let port = free_port();
    let broker = Broker::start_with(&["--profile", &port.to_string()], None);
    let warning = broker
        .startup_log
        .iter()
        .find(|line| line.contains("[WRN] Profiling port"))
        .unwrap_or_else(|| panic!("no warning in {:#?}", broker.startup_log));
    assert!(
        warning.contains(&format!(
            "Profiling port {port} not started: percore has no Go profiler (pprof); \
             profile it with perf instead (perf record -g -p {})",
            broker.pid()
        )),
        "{warning}"
    );
    assert_nothing_listens(port);
    assert_alive(&mut RawClient::connect_quiet(broker.addr));

    let port = free_port();
    let broker = Broker::with_config(&format!("prof_port: {port}\n"));
    assert!(
        broker
            .startup_log
            .iter()
            .any(|line| line.contains(&format!("Profiling port {port} not started"))),
        "{:#?}",
        broker.startup_log
    );
    assert_nothing_listens(port);
}

#[test]
fn no_profiling_port_no_warning() {
    let broker = Broker::start();
    assert!(
        !broker.startup_log.iter().any(|l| l.contains("Profiling")),
        "{:#?}",
        broker.startup_log
    );
}
