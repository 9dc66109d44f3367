//! `floor-server`: the least a NATS broker can do for one message, as a
//! reference for latency and request/reply measurements.
//!
//! One blocking thread per connection reads what arrived, forwards each PUB
//! as MSG to the connections subscribed to exactly that subject, and answers
//! PING. There is no wildcard, queue group, limit, buffering policy or
//! scheduler: a message costs one wake-up of the reading thread and one
//! `write` per destination, which is the kernel work every broker that sleeps
//! while idle pays too. Whatever latency percore-bench measures through this
//! server is the floor of this machine (kernel wake-ups, loopback TCP, the
//! client), so a broker's latency ratio against nats-server cannot go below
//! the floor's ratio.
//!
//! Not a broker: subscriptions match subjects byte for byte, HPUB is refused,
//! and a slow subscriber blocks the publisher feeding it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "floor-server",
    about = "Minimal exact-subject NATS forwarder: the machine's latency floor"
)]
struct Args {
    /// Listen address (loopback only by default).
    #[arg(short = 'a', long, default_value = "127.0.0.1")]
    addr: String,
    #[arg(short = 'p', long, default_value_t = 4334)]
    port: u16,
}

const INFO: &str = "INFO {\"server_id\":\"FLOORSERVER\",\"server_name\":\"floor-server\",\"version\":\"0.0.0-floor\",\"proto\":1,\"headers\":false,\"max_payload\":1048576,\"client_id\":0}\r\n";

/// The write side of one connection, shared with every thread that forwards
/// to it. Writes of one flush happen under the lock, so frames never
/// interleave.
struct Peer {
    id: u64,
    stream: Mutex<TcpStream>,
}

/// subject -> (subscriber, sid) pairs. Looked up once per PUB.
type Routes = HashMap<Vec<u8>, Vec<(Arc<Peer>, Vec<u8>)>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind((args.addr.as_str(), args.port))?;
    eprintln!("floor-server listening on {}:{}", args.addr, args.port);
    let routes: Arc<Mutex<Routes>> = Arc::default();
    let next_id = AtomicU64::new(1);
    for stream in listener.incoming() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        let peer = Arc::new(Peer {
            id: next_id.fetch_add(1, Ordering::Relaxed),
            stream: Mutex::new(stream.try_clone()?),
        });
        let routes = routes.clone();
        std::thread::spawn(move || {
            let result = serve(stream, &peer, &routes);
            // Forget the connection's subscriptions whatever ended it.
            lock(&routes).values_mut().for_each(|subs| {
                subs.retain(|(p, _)| p.id != peer.id);
            });
            if let Err(e) = result {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    eprintln!("floor-server: connection ended: {e}");
                }
            }
        });
    }
    Ok(())
}

/// Reads, parses and forwards until the client goes away.
fn serve(mut stream: TcpStream, me: &Arc<Peer>, routes: &Mutex<Routes>) -> io::Result<()> {
    lock(&me.stream).write_all(INFO.as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    // Frames per destination for this read, written once per destination.
    let mut pending: Vec<(Arc<Peer>, Vec<u8>)> = Vec::new();
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let consumed = handle_ops(&buf[..filled], me, routes, &mut pending)?;
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        // Other connections first, so a PONG to this one follows the
        // messages it caused (the bench's fences rely on that).
        pending.sort_by_key(|(p, _)| p.id == me.id);
        for (peer, frames) in pending.drain(..) {
            // A subscriber that went away is the subscriber's problem.
            let _ = lock(&peer.stream).write_all(&frames);
        }
    }
}

/// Handles every complete operation in `data`; returns the bytes consumed.
fn handle_ops(
    data: &[u8],
    me: &Arc<Peer>,
    routes: &Mutex<Routes>,
    pending: &mut Vec<(Arc<Peer>, Vec<u8>)>,
) -> io::Result<usize> {
    let mut at = 0;
    while let Some(eol) = memchr::memmem::find(&data[at..], b"\r\n") {
        let line = &data[at..at + eol];
        let mut words = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        let op = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&[u8]> = words.collect();
        match op.as_slice() {
            b"PUB" => {
                let (subject, reply, size) = match args.as_slice() {
                    [s, n] => (*s, None, *n),
                    [s, r, n] => (*s, Some(*r), *n),
                    _ => return Err(invalid("PUB needs subject [reply] size")),
                };
                let size: usize = std::str::from_utf8(size)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid("bad PUB size"))?;
                let payload_at = at + eol + 2;
                if data.len() < payload_at + size + 2 {
                    return Ok(at); // the payload is not all here yet
                }
                let payload = &data[payload_at..payload_at + size];
                forward(subject, reply, payload, routes, pending);
                at = payload_at + size + 2;
                continue;
            }
            b"SUB" => {
                let (subject, sid) = match args.as_slice() {
                    [s, sid] | [s, _, sid] => (*s, *sid),
                    _ => return Err(invalid("SUB needs subject [queue] sid")),
                };
                lock(routes)
                    .entry(subject.to_vec())
                    .or_default()
                    .push((me.clone(), sid.to_vec()));
            }
            b"UNSUB" => {
                let sid = args.first().copied().unwrap_or_default();
                lock(routes).values_mut().for_each(|subs| {
                    subs.retain(|(p, s)| !(p.id == me.id && s == sid));
                });
            }
            b"PING" => frames_for(me, pending).extend_from_slice(b"PONG\r\n"),
            b"PONG" | b"CONNECT" | b"" => {}
            _ => {
                frames_for(me, pending).extend_from_slice(b"-ERR 'Unknown Protocol Operation'\r\n");
            }
        }
        at += eol + 2;
    }
    Ok(at)
}

fn forward(
    subject: &[u8],
    reply: Option<&[u8]>,
    payload: &[u8],
    routes: &Mutex<Routes>,
    pending: &mut Vec<(Arc<Peer>, Vec<u8>)>,
) {
    let routes = lock(routes);
    let Some(subs) = routes.get(subject) else {
        return;
    };
    for (peer, sid) in subs {
        let out = frames_for(peer, pending);
        out.extend_from_slice(b"MSG ");
        out.extend_from_slice(subject);
        out.push(b' ');
        out.extend_from_slice(sid);
        if let Some(reply) = reply {
            out.push(b' ');
            out.extend_from_slice(reply);
        }
        out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    }
}

/// The output buffer for `peer` in this read's batch.
fn frames_for<'a>(peer: &Arc<Peer>, pending: &'a mut Vec<(Arc<Peer>, Vec<u8>)>) -> &'a mut Vec<u8> {
    let slot = match pending.iter().position(|(p, _)| p.id == peer.id) {
        Some(i) => i,
        None => {
            pending.push((peer.clone(), Vec::new()));
            pending.len() - 1
        }
    };
    &mut pending[slot].1
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
