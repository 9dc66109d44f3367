//! The monitoring listener: one accept thread, one thread per connection
//! (monitoring has few clients), all blocking std I/O, no runtime.
//!
//! Stopping: the accept thread waits on a nonblocking listener with
//! `poll(2)`, and on a socket `stop` writes to, so it sees the stop flag at
//! once (the server's exit does not wait for it, as nats-server's does not)
//! and never depends on a client; [`ACCEPT_POLL`] bounds each wait all the
//! same. A new client is still accepted at once. Connection threads are not joined (one may be waiting on the
//! shards); `stop` shuts their sockets down so they end on their next read
//! or write instead of holding a keep-alive connection open.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use super::http::{self, ReadError, Response};
use super::routes::Router;
use super::SnapshotSource;

/// Where an HTTPS monitoring connection gets its TLS configuration (the
/// current one, which a reload replaces); `None` from it refuses the
/// connection.
pub type TlsSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// How often the accept loop looks at the stop flag when idle, should the
/// stop's wake-up get lost.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// An idle keep-alive connection (or a stalled peer) is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// More simultaneous monitoring connections than this are refused (closed
/// at once): each costs a thread.
const MAX_CONNECTIONS: usize = 64;

/// Open connections, so `stop` can shut them down.
type OpenConnections = Arc<Mutex<HashMap<u64, TcpStream>>>;

pub struct MonitorServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Written by `stop` to wake the accept thread's `poll(2)`.
    wake: UnixStream,
    accept_thread: JoinHandle<()>,
    open: OpenConnections,
}

impl MonitorServer {
    /// Serves on an already bound listener until `stop`; every path is
    /// under `base_path` (`http_base_path`).
    pub fn start(
        listener: TcpListener,
        base_path: &str,
        source: Arc<dyn SnapshotSource>,
        tls: Option<TlsSource>,
    ) -> io::Result<MonitorServer> {
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open: OpenConnections = Arc::new(Mutex::new(HashMap::new()));
        let router = Arc::new(Router::new(source, base_path));
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let accept_thread = thread::Builder::new()
            .name("monitor-accept".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let open = Arc::clone(&open);
                move || accept_loop(&listener, &woken, &stop, &open, &router, tls)
            })?;
        Ok(MonitorServer {
            local_addr,
            stop,
            wake,
            accept_thread,
            open,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, joins the accept thread, and shuts down every open
    /// connection (their threads then exit on their own).
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // A full buffer means it is already woken.
        let _ = (&self.wake).write(&[1]);
        // The accept loop cannot panic on peer input; if it did anyway
        // there is nothing left to stop.
        let _ = self.accept_thread.join();
        // After the join no connection can be added any more.
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn lock(open: &OpenConnections) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    woken: &UnixStream,
    stop: &AtomicBool,
    open: &OpenConnections,
    router: &Arc<Router>,
    tls: Option<TlsSource>,
) {
    let mut next_id: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_readable(listener, woken, ACCEPT_POLL);
                continue;
            }
            // Out of file descriptors, aborted handshake, ...: retry later
            // rather than spin.
            Err(_) => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        if lock(open).len() >= MAX_CONNECTIONS {
            continue; // dropped: closed at once
        }
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        lock(open).insert(id, registered);
        let spawned = thread::Builder::new().name("monitor-conn".into()).spawn({
            let open = Arc::clone(open);
            let router = Arc::clone(router);
            let tls = tls.clone();
            move || {
                serve_connection(stream, &router, tls);
                lock(&open).remove(&id);
            }
        });
        if spawned.is_err() {
            lock(open).remove(&id);
        }
    }
}

/// Waits until `listener` has a connection to accept or `timeout` passes.
/// Until a client is waiting, `stop` wrote to `woken`, or `timeout`.
fn wait_readable(listener: &TcpListener, woken: &UnixStream, timeout: Duration) {
    let mut poll_fds = [listener.as_raw_fd(), woken.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: two valid pollfds for descriptors the caller keeps open for
    // the whole call. The result does not matter: the caller checks the
    // stop flag and retries accept() either way (EINTR and timeouts
    // included). The wake-up byte is never read: once written, the loop
    // ends.
    unsafe {
        libc::poll(
            poll_fds.as_mut_ptr(),
            poll_fds.len() as libc::nfds_t,
            millis,
        );
    }
}

/// Answers requests on one connection (over TLS with `tls`: HTTPS
/// monitoring) until the peer closes, asks to close, goes idle past
/// [`IDLE_TIMEOUT`], or sends something malformed.
fn serve_connection(stream: TcpStream, router: &Router, tls: Option<TlsSource>) {
    // The listener is nonblocking; on some platforms accepted sockets
    // inherit that.
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(IDLE_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IDLE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_requests(stream, router),
        Some(source) => {
            // The handshake runs inside the first read, bounded by the
            // socket timeouts.
            let Some(config) = source() else {
                return;
            };
            let Ok(session) = rustls::ServerConnection::new(config) else {
                return;
            };
            serve_requests(rustls::StreamOwned::new(session, stream), router);
        }
    }
}

/// The HTTP request loop over any byte stream.
fn serve_requests<S: Read + Write>(stream: S, router: &Router) {
    let mut reader = BufReader::new(stream);
    loop {
        let request = match http::read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Closed) | Err(ReadError::Io) => return,
            Err(ReadError::Malformed(why)) => {
                let response = Response::text(400, format!("400 Bad Request: {why}"));
                let _ = http::write_response(reader.get_mut(), &response, false, SystemTime::now());
                return;
            }
        };
        let mut keep_alive = request.keep_alive;
        if request.content_length > 0 {
            // No endpoint reads a body: skip a small one to keep the
            // connection usable, close after a large one.
            if request.content_length <= http::MAX_DISCARDED_BODY {
                let wanted = request.content_length;
                match io::copy(&mut (&mut reader).take(wanted), &mut io::sink()) {
                    Ok(skipped) if skipped == wanted => {}
                    _ => return,
                }
            } else {
                keep_alive = false;
            }
        }
        let mut response = router.handle(&request);
        if request.method == "HEAD" {
            response.omit_body = true;
        }
        if http::write_response(reader.get_mut(), &response, keep_alive, SystemTime::now()).is_err()
            || !keep_alive
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::snapshot::{MonitorSnapshot, SnapshotRequest};
    use crate::monitor::test_support::sample_snapshot;
    use std::io::{BufRead, Write};
    use std::sync::atomic::AtomicUsize;

    /// Serves `sample_snapshot`, records what it was asked, and can be told
    /// to time out.
    struct FakeSource {
        answer: AtomicBool,
        with_subscriptions_asked: AtomicUsize,
        asked: AtomicUsize,
        base_path: &'static str,
    }

    impl FakeSource {
        fn new(base_path: &'static str) -> Arc<FakeSource> {
            Arc::new(FakeSource {
                answer: AtomicBool::new(true),
                with_subscriptions_asked: AtomicUsize::new(0),
                asked: AtomicUsize::new(0),
                base_path,
            })
        }
    }

    impl SnapshotSource for FakeSource {
        fn snapshot(&self, request: SnapshotRequest) -> Option<MonitorSnapshot> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if request.with_subscriptions {
                self.with_subscriptions_asked.fetch_add(1, Ordering::SeqCst);
            }
            if !self.answer.load(Ordering::SeqCst) {
                return None;
            }
            let mut snapshot = sample_snapshot();
            snapshot.server.http_base_path = self.base_path.to_string();
            // Leave out what was not asked for, as the shards do.
            for shard in &mut snapshot.shards {
                if !request.with_connections && !request.with_subscriptions {
                    shard.connections.clear();
                }
                if !request.with_subscriptions {
                    for connection in &mut shard.connections {
                        connection.subscription_list.clear();
                    }
                }
            }
            Some(snapshot)
        }
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).expect("JSON body")
        }
    }

    /// Reads one response (Content-Length framed) from `reader`.
    fn read_reply(reader: &mut impl BufRead) -> Reply {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "Content-Length")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    fn start(source: Arc<FakeSource>) -> MonitorServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_path = source.base_path;
        MonitorServer::start(listener, base_path, source, None).unwrap()
    }

    /// One request on a fresh connection that asks to close.
    fn get(server: &MonitorServer, target: &str) -> Reply {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let reply = read_reply(&mut reader);
        assert_eq!(reply.header("Connection"), Some("close"));
        // The server closes after a `Connection: close` request.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        reply
    }

    #[test]
    fn serves_endpoints() {
        let source = FakeSource::new("");
        let server = start(Arc::clone(&source));

        let varz = get(&server, "/varz");
        assert_eq!(varz.status, 200);
        assert_eq!(varz.header("Content-Type"), Some("application/json"));
        assert!(varz.header("Date").is_some_and(|d| d.ends_with(" GMT")));
        let value = varz.json();
        assert_eq!(value["version"], "2.9.10");
        assert_eq!(value["go"], concat!("percore-", env!("CARGO_PKG_VERSION")));
        assert!(value["mem"].as_u64().is_some_and(|mem| mem > 0));
        assert!(value["cpu"].is_number());
        assert_eq!(value["http_req_stats"]["/varz"], 1);
        assert!(varz.body.starts_with("{\n  \"server_id\": "));

        let connz = get(&server, "/connz?subs=1&sort=bytes_from");
        assert_eq!(connz.status, 200);
        let value = connz.json();
        assert_eq!(value["num_connections"], 3);
        assert!(value["connections"][0]["subscriptions_list"].is_array());

        let subsz = get(&server, "/subscriptionsz");
        assert_eq!(subsz.json()["num_subscriptions"], 4);

        let healthz = get(&server, "/healthz");
        assert_eq!(healthz.body, "{\"status\":\"ok\"}");
        assert_eq!(healthz.header("Content-Type"), Some("application/json"));

        let routez = get(&server, "/routez");
        assert_eq!(routez.json()["num_routes"], 0);
        assert!(get(&server, "/leafz").json()["leafs"].is_null());
        assert!(get(&server, "/gatewayz").json()["inbound_gateways"].is_object());
        assert_eq!(get(&server, "/accountz").json()["accounts"][1], "$SYS");

        let root = get(&server, "/");
        assert_eq!(root.status, 200);
        assert_eq!(
            root.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(root.body.contains("href=\"/varz\""));

        let jsonp = get(&server, "/varz?callback=fn");
        assert_eq!(jsonp.header("Content-Type"), Some("application/javascript"));
        assert!(jsonp.body.starts_with("fn({\n") && jsonp.body.ends_with("})"));
        let healthz = get(&server, "/healthz?callback=cb");
        assert_eq!(healthz.body, "cb({\"status\":\"ok\"})");

        let missing = get(&server, "/nope");
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(get(&server, "/varz/").status, 404);

        let bad = get(&server, "/connz?limit=x");
        assert_eq!(bad.status, 400);
        assert_eq!(
            bad.body,
            "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            get(&server, "/connz?sort=bogus").body,
            "invalid sorting option: bogus"
        );
        assert_eq!(get(&server, "/subsz?test=a.*").status, 400);

        // Every request so far, per endpoint (404s not counted, 400s are).
        let value = get(&server, "/varz").json();
        let stats = &value["http_req_stats"];
        assert_eq!(stats["/varz"], 3);
        assert_eq!(stats["/connz"], 3);
        assert_eq!(stats["/subsz"], 2);
        assert_eq!(stats["/healthz"], 2);
        assert_eq!(stats["/"], 1);
        assert!(stats.get("/nope").is_none());

        // Only connz?subs and subsz?subs need subscription lists.
        assert_eq!(source.with_subscriptions_asked.load(Ordering::SeqCst), 1);
        get(&server, "/subsz?subs=1");
        get(&server, "/connz?subs=detail");
        assert_eq!(source.with_subscriptions_asked.load(Ordering::SeqCst), 3);

        server.stop();
    }

    #[test]
    fn base_path_and_unanswered_snapshots() {
        let source = FakeSource::new("/nats/");
        let server = start(Arc::clone(&source));
        assert_eq!(get(&server, "/nats/varz").status, 200);
        assert_eq!(get(&server, "/varz").status, 404);
        let root = get(&server, "/nats");
        assert!(root.body.contains("href=\"/nats/connz\""));

        source.answer.store(false, Ordering::SeqCst);
        let unanswered = get(&server, "/nats/connz");
        assert_eq!(unanswered.status, 503);
        assert_eq!(unanswered.body, "shards did not answer");
        // healthz needs no shard answer.
        assert_eq!(get(&server, "/nats/healthz").status, 200);
        server.stop();
    }

    #[test]
    fn keep_alive_methods_and_malformed() {
        let server = start(FakeSource::new(""));
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        // Two requests on one connection, the first with a small body.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /connz?limit=1 HTTP/1.1\r\n\r\n")
            .unwrap();
        let first = read_reply(&mut reader);
        assert_eq!(first.status, 200);
        assert!(first.header("Connection").is_none());
        let second = read_reply(&mut reader);
        assert_eq!(second.json()["limit"], 1);
        // Other methods are served like GET (nats-server does the same);
        // HEAD gets the headers only.
        stream.write_all(b"POST /varz HTTP/1.1\r\n\r\n").unwrap();
        let post = read_reply(&mut reader);
        assert_eq!(post.status, 200);
        assert!(post.json()["in_msgs"].is_u64());
        stream.write_all(b"HEAD /healthz HTTP/1.1\r\n\r\n").unwrap();
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(head.contains("Content-Length: 15\r\n"), "{head}");
        // Garbage: 400, then the server closes.
        stream.write_all(b"NOT HTTP\r\n\r\n").unwrap();
        let bad = read_reply(&mut reader);
        assert_eq!(bad.status, 400);
        assert_eq!(bad.header("Connection"), Some("close"));
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        server.stop();
    }

    #[test]
    fn stop_returns_while_a_client_holds_a_connection() {
        let server = start(FakeSource::new(""));
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
        // Answered: the connection is accepted and its thread is waiting
        // for the next request.
        assert_eq!(read_reply(&mut reader).status, 200);
        server.stop();
        // stop() returned; the held connection was shut down.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
