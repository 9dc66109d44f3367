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
//!
//! `--event-loop` serves every connection from one thread instead, waiting
//! in `epoll_wait` and reading each ready connection once per wake-up (the
//! shape of one percore shard): the floor of any broker that multiplexes
//! its connections on an event loop. A wake-up there costs one more system
//! call than a blocking read (the wait itself), which is what separates
//! the two floors' CPU per message at fixed rates.
//!
//! `--io-uring` is that event loop with io_uring readiness instead of
//! epoll, the mechanism glommio gives percore: a one-shot `POLL_ADD` per
//! connection, re-armed after each read and submitted by the next waiting
//! `io_uring_enter`, which returns when a poll completes. It is the floor
//! of any broker on a readiness-based io_uring runtime; against
//! `--event-loop` it shows what the runtime's mechanism itself costs in
//! the kernel, with no runtime in user space. `--io-uring --multishot`
//! keeps one multishot poll armed per connection instead (Linux 5.13),
//! reading until a short read: what re-arming costs. `--io-uring
//! --ring-send` writes with `IORING_OP_SEND`s that the next waiting
//! `io_uring_enter` submits, instead of a `write` call per destination: a
//! wake-up then costs one system call, not three, which shows what the
//! system calls themselves cost next to the wake-ups.
//!
//! `--glommio` runs the same forwarding on one percore shard: glommio's
//! executor and reactor (the patched copy in `shards/glommio`), percore's
//! listener and `Connection` reads (`shards::net`), one task per
//! connection, and the floor's own parsing and `write`s. Against
//! `--io-uring` it shows what the mandated runtime costs in user space with
//! no broker in it; against percore, what the broker adds.

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
    /// One thread and epoll for all connections instead of a blocking
    /// thread per connection.
    #[arg(long)]
    event_loop: bool,
    /// One thread and io_uring readiness polls (see the module note).
    #[arg(long, conflicts_with = "event_loop")]
    io_uring: bool,
    /// With --io-uring: one multishot poll per connection, not re-armed.
    #[arg(long, requires = "io_uring")]
    multishot: bool,
    /// One glommio executor (percore's shard runtime and socket layer,
    /// `shards`) instead; see the module note.
    #[arg(long, conflicts_with_all = ["event_loop", "io_uring"])]
    glommio: bool,
    /// With --io-uring: writes go out as `IORING_OP_SEND`s submitted by the
    /// next waiting `io_uring_enter`, not as `write` calls.
    #[arg(long, requires = "io_uring")]
    ring_send: bool,
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

/// Drops every subscription of the connection `id` (it has ended).
fn forget(routes: &Mutex<Routes>, id: u64) {
    lock(routes).values_mut().for_each(|subs| {
        subs.retain(|(p, _)| p.id != id);
    });
}

/// Binds, retrying for up to 500 ms while the port is still in use: an
/// `--io-uring` floor killed just before gives its listening socket back
/// only when the kernel tears its ring down, a few milliseconds after the
/// process is gone (as for percore, see `shards::net`), and compare.sh
/// starts the next server on the same port at once.
fn bind_retrying_in_use(addr: &str, port: u16) -> io::Result<TcpListener> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match TcpListener::bind((addr, port)) {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    if args.glommio {
        return glommio_loop::run(&args.addr, args.port);
    }
    let listener = bind_retrying_in_use(&args.addr, args.port)?;
    eprintln!("floor-server listening on {}:{}", args.addr, args.port);
    let routes: Arc<Mutex<Routes>> = Arc::default();
    if args.event_loop {
        return event_loop::run(listener, &routes);
    }
    if args.io_uring {
        return uring_loop::run(listener, &routes, args.multishot, args.ring_send);
    }
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
            forget(&routes, peer.id);
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
    write_fully(&lock(&me.stream), INFO.as_bytes())?;
    let mut input = Input::default();
    let mut pending = Pending::default();
    loop {
        let n = stream.read(input.spare())?;
        if n == 0 {
            return Ok(());
        }
        input.dispatch(n, me, routes, &mut pending)?;
    }
}

/// A connection's unparsed input.
struct Input {
    buf: Vec<u8>,
    filled: usize,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            buf: vec![0u8; 256 * 1024],
            filled: 0,
        }
    }
}

impl Input {
    /// Room for the next read.
    fn spare(&mut self) -> &mut [u8] {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Handles the `n` bytes just read into [`Input::spare`]: forwards what
    /// they complete and writes it out, once per destination.
    fn dispatch(
        &mut self,
        n: usize,
        me: &Arc<Peer>,
        routes: &Mutex<Routes>,
        pending: &mut Pending,
    ) -> io::Result<()> {
        self.parse(n, me, routes, pending)?;
        pending.write_out();
        Ok(())
    }

    /// Handles the `n` bytes just read into [`Input::spare`], leaving what
    /// they complete in `pending`, once per destination, in the order to
    /// write it.
    fn parse(
        &mut self,
        n: usize,
        me: &Arc<Peer>,
        routes: &Mutex<Routes>,
        pending: &mut Pending,
    ) -> io::Result<()> {
        self.filled += n;
        let consumed = handle_ops(&self.buf[..self.filled], me, routes, pending)?;
        self.buf.copy_within(consumed..self.filled, 0);
        self.filled -= consumed;
        // Other connections first, so a PONG to this one follows the
        // messages it caused (the bench's fences rely on that).
        pending.frames.sort_by_key(|(p, _)| p.id == me.id);
        Ok(())
    }
}

/// Writes all of `bytes`; on a non-blocking socket that is full, waits
/// until it drains (the floor has no output buffering policy).
fn write_fully(mut stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut poll = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(stream),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut poll, 1, -1) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One connection of a single-threaded loop (`--event-loop`, `--io-uring`).
struct LoopConn {
    stream: TcpStream,
    peer: Arc<Peer>,
    input: Input,
}

impl LoopConn {
    /// A socket the loop's listener just accepted, made non-blocking and
    /// sent the INFO; the caller registers it for readiness.
    fn accepted(stream: TcpStream, id: u64) -> io::Result<LoopConn> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let peer = Arc::new(Peer {
            id,
            stream: Mutex::new(stream.try_clone()?),
        });
        write_fully(&stream, INFO.as_bytes())?;
        Ok(LoopConn {
            stream,
            peer,
            input: Input::default(),
        })
    }
}

/// `--event-loop`: every connection on this thread, one read per ready
/// connection per wake-up.
mod event_loop {
    use std::collections::HashMap;
    use std::io::{self, Read};
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;

    use super::{forget, LoopConn, Pending, Routes};

    /// The listener's token; connections count from 1.
    const LISTENER: u64 = 0;

    fn ctl(epoll: i32, op: i32, fd: i32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a valid epoll fd and event for the duration of the call.
        if unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn run(listener: TcpListener, routes: &Mutex<Routes>) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        // SAFETY: plain system call; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        ctl(epoll, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), LISTENER)?;
        let mut conns: HashMap<u64, LoopConn> = HashMap::new();
        let mut next_id = 1;
        let mut pending = Pending::default();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `events` outlives the call and holds `len` entries.
            let ready =
                unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in &events[..ready as usize] {
                let token = event.u64;
                if token == LISTENER {
                    while let Ok((stream, _)) = listener.accept() {
                        let conn = LoopConn::accepted(stream, next_id)?;
                        ctl(epoll, libc::EPOLL_CTL_ADD, conn.stream.as_raw_fd(), next_id)?;
                        conns.insert(next_id, conn);
                        next_id += 1;
                    }
                    continue;
                }
                let Some(conn) = conns.get_mut(&token) else {
                    continue;
                };
                let result = match conn.stream.read(conn.input.spare()) {
                    Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => conn.input.dispatch(n, &conn.peer, routes, &mut pending),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                    Err(e) => Err(e),
                };
                if result.is_err() {
                    let _ = ctl(epoll, libc::EPOLL_CTL_DEL, conn.stream.as_raw_fd(), token);
                    forget(routes, conn.peer.id);
                    conns.remove(&token);
                }
            }
        }
    }
}

mod uring_loop {
    use std::collections::HashMap;
    use std::io::{self, Read};
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;

    use io_uring::{cqueue, opcode, squeue, types, IoUring};

    use super::{forget, LoopConn, Pending, Routes};

    /// The listener's token; connections count from 1.
    const LISTENER: u64 = 0;
    /// A `POLL_REMOVE`'s own completion, ignored.
    const REMOVAL: u64 = u64::MAX;

    fn poll(fd: i32, token: u64, multishot: bool) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(multishot)
            .build()
            .user_data(token)
    }

    /// Queues `entry` for the next `submit_and_wait`, submitting what is
    /// queued first if the submission ring is full.
    fn queue(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: the entry refers to no memory of ours (a poll or its removal).
        while unsafe { ring.submission().push(entry) }.is_err() {
            ring.submit()?;
        }
        Ok(())
    }

    /// A send's token: the destination's id with this bit set.
    const SEND: u64 = 1 << 62;

    /// `--ring-send`: one destination's output. At most one send is in
    /// flight per socket (two could complete out of order); what arrives
    /// meanwhile waits in `queued`.
    struct RingOut {
        fd: i32,
        /// The bytes of the send in flight and how many of them went out.
        in_flight: Option<(Vec<u8>, usize)>,
        queued: Vec<u8>,
    }

    fn send(out: &RingOut, token: u64) -> Option<squeue::Entry> {
        let (bytes, sent) = out.in_flight.as_ref()?;
        let rest = &bytes[*sent..];
        Some(
            opcode::Send::new(types::Fd(out.fd), rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(SEND | token),
        )
    }

    /// Hands `frames` for `peer` to the ring, or queues them behind the
    /// send in flight.
    fn send_frames(
        ring: &mut IoUring,
        outs: &mut HashMap<u64, RingOut>,
        peer: &super::Peer,
        frames: Vec<u8>,
    ) -> io::Result<()> {
        let out = outs.entry(peer.id).or_insert_with(|| RingOut {
            fd: super::lock(&peer.stream).as_raw_fd(),
            in_flight: None,
            queued: Vec::new(),
        });
        if out.in_flight.is_some() {
            out.queued.extend_from_slice(&frames);
            return Ok(());
        }
        out.in_flight = Some((frames, 0));
        if let Some(entry) = send(out, peer.id) {
            // SAFETY: the bytes stay in `outs` until the send completes.
            while unsafe { ring.submission().push(&entry) }.is_err() {
                ring.submit()?;
            }
        }
        Ok(())
    }

    /// A send completed with `result`: sends the rest, or what queued up.
    fn sent(
        ring: &mut IoUring,
        outs: &mut HashMap<u64, RingOut>,
        token: u64,
        result: i32,
    ) -> io::Result<()> {
        let Some(out) = outs.get_mut(&token) else {
            return Ok(());
        };
        let Some((bytes, done)) = out.in_flight.as_mut() else {
            return Ok(());
        };
        if result == -libc::EAGAIN {
            // A full socket: the floor has no output policy, so wait.
            // SAFETY: `out.fd` is open while its connection is.
            let stream = unsafe {
                std::mem::ManuallyDrop::new(
                    <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(out.fd),
                )
            };
            let _ = super::write_fully(&stream, &bytes[*done..]);
            *done = bytes.len();
        } else if result < 0 {
            *done = bytes.len(); // the subscriber's problem
        } else {
            *done += result as usize;
        }
        if *done == bytes.len() {
            out.in_flight = None;
            if !out.queued.is_empty() {
                out.in_flight = Some((std::mem::take(&mut out.queued), 0));
            }
        }
        if let Some(entry) = send(out, token) {
            // SAFETY: as in `send_frames`.
            while unsafe { ring.submission().push(&entry) }.is_err() {
                ring.submit()?;
            }
        }
        Ok(())
    }

    pub fn run(
        listener: TcpListener,
        routes: &Mutex<Routes>,
        multishot: bool,
        ring_send: bool,
    ) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut ring = IoUring::new(256)?;
        let mut outs: HashMap<u64, RingOut> = HashMap::new();
        queue(&mut ring, &poll(listener.as_raw_fd(), LISTENER, multishot))?;
        let mut conns: HashMap<u64, LoopConn> = HashMap::new();
        let mut next_id = 1;
        let mut pending = Pending::default();
        let mut ready: Vec<(u64, bool, i32)> = Vec::with_capacity(64);
        loop {
            match ring.submit_and_wait(1) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            ready.clear();
            ready.extend(
                ring.completion()
                    .map(|cqe| (cqe.user_data(), cqueue::more(cqe.flags()), cqe.result())),
            );
            for &(token, still_armed, result) in &ready {
                if token == REMOVAL {
                    continue;
                }
                if token & SEND != 0 && token != REMOVAL {
                    sent(&mut ring, &mut outs, token & !SEND, result)?;
                    continue;
                }
                let rearm = !multishot || !still_armed;
                if token == LISTENER {
                    while let Ok((stream, _)) = listener.accept() {
                        let conn = LoopConn::accepted(stream, next_id)?;
                        queue(
                            &mut ring,
                            &poll(conn.stream.as_raw_fd(), next_id, multishot),
                        )?;
                        conns.insert(next_id, conn);
                        next_id += 1;
                    }
                    if rearm {
                        queue(&mut ring, &poll(listener.as_raw_fd(), LISTENER, multishot))?;
                    }
                    continue;
                }
                let Some(conn) = conns.get_mut(&token) else {
                    continue;
                };
                // One read per wake-up, as the epoll loop does; a multishot
                // poll reports new data, not data left behind, so there a
                // full read is followed by another.
                let mut result = Ok(());
                loop {
                    let spare = conn.input.spare();
                    let room = spare.len();
                    match conn.stream.read(spare) {
                        Ok(0) => result = Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) if ring_send => {
                            result = conn.input.parse(n, &conn.peer, routes, &mut pending);
                            for (peer, frames) in pending.frames.drain(..) {
                                send_frames(&mut ring, &mut outs, &peer, frames)?;
                            }
                            if multishot && n == room && result.is_ok() {
                                continue;
                            }
                        }
                        Ok(n) => {
                            result = conn.input.dispatch(n, &conn.peer, routes, &mut pending);
                            if multishot && n == room && result.is_ok() {
                                continue;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => result = Err(e),
                    }
                    break;
                }
                if result.is_err() {
                    if multishot && still_armed {
                        let removal = opcode::PollRemove::new(token).build().user_data(REMOVAL);
                        queue(&mut ring, &removal)?;
                    }
                    forget(routes, conn.peer.id);
                    conns.remove(&token);
                } else if rearm {
                    queue(&mut ring, &poll(conn.stream.as_raw_fd(), token, multishot))?;
                }
            }
        }
    }
}

/// Handles every complete operation in `data`; returns the bytes consumed.
fn handle_ops(
    data: &[u8],
    me: &Arc<Peer>,
    routes: &Mutex<Routes>,
    pending: &mut Pending,
) -> io::Result<usize> {
    let mut at = 0;
    while let Some(eol) = memchr::memmem::find(&data[at..], b"\r\n") {
        let line = &data[at..at + eol];
        let mut words = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        let op = words.next().unwrap_or_default();
        // Up to four arguments, on the stack: no allocation per operation.
        let mut arg_slots: [&[u8]; 4] = [&[]; 4];
        let mut argc = 0;
        for word in words {
            if argc == arg_slots.len() {
                return Err(invalid("too many arguments"));
            }
            arg_slots[argc] = word;
            argc += 1;
        }
        let args = &arg_slots[..argc];
        if op.eq_ignore_ascii_case(b"PUB") {
            let (subject, reply, size) = match args {
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
        } else if op.eq_ignore_ascii_case(b"SUB") {
            let (subject, sid) = match args {
                [s, sid] | [s, _, sid] => (*s, *sid),
                _ => return Err(invalid("SUB needs subject [queue] sid")),
            };
            lock(routes)
                .entry(subject.to_vec())
                .or_default()
                .push((me.clone(), sid.to_vec()));
        } else if op.eq_ignore_ascii_case(b"UNSUB") {
            let sid = args.first().copied().unwrap_or_default();
            lock(routes).values_mut().for_each(|subs| {
                subs.retain(|(p, s)| !(p.id == me.id && s == sid));
            });
        } else if op.eq_ignore_ascii_case(b"PING") {
            pending.for_peer(me).extend_from_slice(b"PONG\r\n");
        } else if !(op.is_empty()
            || op.eq_ignore_ascii_case(b"PONG")
            || op.eq_ignore_ascii_case(b"CONNECT"))
        {
            pending
                .for_peer(me)
                .extend_from_slice(b"-ERR 'Unknown Protocol Operation'\r\n");
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
    pending: &mut Pending,
) {
    let routes = lock(routes);
    let Some(subs) = routes.get(subject) else {
        return;
    };
    for (peer, sid) in subs {
        let out = pending.for_peer(peer);
        out.extend_from_slice(b"MSG ");
        out.extend_from_slice(subject);
        out.push(b' ');
        out.extend_from_slice(sid);
        if let Some(reply) = reply {
            out.push(b' ');
            out.extend_from_slice(reply);
        }
        out.push(b' ');
        // In decimal, without the allocation `format!` makes.
        percore_benches::client::push_usize(out, payload.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    }
}

/// The frames one read produced, per destination, written once per
/// destination. The buffers are kept for the next read, so a message
/// costs the floor no allocation: the floor's user space is then little
/// more than the parsing every broker does (about 10 000 instructions per
/// request/reply round trip before, most of them in malloc).
#[derive(Default)]
struct Pending {
    frames: Vec<(Arc<Peer>, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
}

impl Pending {
    /// The output buffer for `peer` in this read's batch.
    fn for_peer(&mut self, peer: &Arc<Peer>) -> &mut Vec<u8> {
        let slot = match self.frames.iter().position(|(p, _)| p.id == peer.id) {
            Some(i) => i,
            None => {
                let buffer = self.spare.pop().unwrap_or_default();
                self.frames.push((peer.clone(), buffer));
                self.frames.len() - 1
            }
        };
        &mut self.frames[slot].1
    }

    /// Writes each destination's frames and keeps the buffers.
    fn write_out(&mut self) {
        for (peer, mut frames) in self.frames.drain(..) {
            // A subscriber that went away is the subscriber's problem.
            let _ = write_fully(&lock(&peer.stream), &frames);
            frames.clear();
            self.spare.push(frames);
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// `--glommio`: the forwarder on one glommio executor started as percore
/// starts its shards, reading each connection as percore reads a quiet
/// one (`Connection::read`: a `recv`, then glommio's readiness poll).
mod glommio_loop {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::FromRawFd;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use shards::net::{BoundListener, Connection};
    use shards::pool::{PoolConfig, ShardPool};

    use super::{forget, write_fully, Input, Peer, Pending, Routes, INFO};

    /// percore's own settings for a shard on this box (`src/server.rs`):
    /// unpinned, no spinning, a 100 ms preemption timer.
    fn config() -> PoolConfig {
        PoolConfig {
            shard_count: 1,
            pin: false,
            spin_before_park: None,
            preempt_timer: Duration::from_millis(100),
        }
    }

    pub fn run(addr: &str, port: u16) -> io::Result<()> {
        let bound = BoundListener::bind(addr, port, 1024)?;
        let bound = Mutex::new(Some(bound));
        let pool = ShardPool::start(&config(), move |_shard| {
            let listener = super::lock(&bound).take();
            async move {
                let Some(listener) = listener else {
                    return;
                };
                let listener = listener.into_shard_listener();
                let routes: Arc<Mutex<Routes>> = Arc::default();
                let mut next_id = 1;
                while let Ok(handoff) = listener.accept().await {
                    let Ok(conn) = handoff.adopt() else {
                        continue;
                    };
                    let routes = routes.clone();
                    let id = next_id;
                    next_id += 1;
                    shards::task::spawn(async move {
                        let conn = Rc::new(conn);
                        if let Err(e) = serve(&conn, id, &routes).await {
                            if e.kind() != io::ErrorKind::UnexpectedEof {
                                eprintln!("floor-server: connection ended: {e}");
                            }
                        }
                        forget(&routes, id);
                    })
                    .detach();
                }
            }
        })
        .map_err(io::Error::other)?;
        pool.join();
        Ok(())
    }

    /// The floor's connection loop on the shard: the writes other
    /// connections make to this one go through a duplicate of its socket.
    async fn serve(conn: &Connection, id: u64, routes: &Mutex<Routes>) -> io::Result<()> {
        // SAFETY: dup of the connection's open socket; the result is checked.
        let dup = unsafe { libc::fcntl(conn.raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor we own.
        let stream = unsafe { TcpStream::from_raw_fd(dup) };
        write_fully(&stream, INFO.as_bytes())?;
        let me = Arc::new(Peer {
            id,
            stream: Mutex::new(stream),
        });
        let mut input = Input::default();
        let mut pending = Pending::default();
        loop {
            let n = conn.read(input.spare()).await?;
            if n == 0 {
                return Ok(());
            }
            input.dispatch(n, &me, routes, &mut pending)?;
        }
    }
}
