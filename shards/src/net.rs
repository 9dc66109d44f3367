//! The socket side of a shard: the client listener and the per-connection
//! driver.
//!
//! Why not glommio's `TcpListener::bind`: it always sets `SO_REUSEPORT`, so a
//! second broker started on the same port by mistake would silently take a
//! share of the connections. We bind with socket2 ourselves, without it, and
//! hand the listening fd to one shard.
//!
//! Concurrency contract: a [`Connection`] belongs to the shard that adopted
//! it; a reader task and a writer task may both await on it at once (read
//! and write readiness are tracked separately). Sockets are in blocking mode
//! as glommio expects, so every direct syscall here passes `MSG_DONTWAIT`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, Socket, Type};

/// A bound, listening socket, created before the shards start so that
/// "address in use" is reported at once. `Send`.
pub struct BoundListener {
    socket: Socket,
    local_addr: SocketAddr,
}

/// How long `bind` keeps retrying while the port is still in use.
///
/// A killed io_uring process gives its listening socket back only when the
/// kernel's ring teardown (a workqueue, after the process is gone) drops
/// the accept it had pending: a supervisor or a client test suite that kills
/// percore and starts it again on the same port saw EADDRINUSE for a few
/// milliseconds. A port held by a live server still fails, this much later.
const BIND_IN_USE_RETRY: Duration = Duration::from_millis(500);

fn bind_retrying_in_use(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    let deadline = Instant::now() + BIND_IN_USE_RETRY;
    loop {
        match socket.bind(&addr.into()) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// A TCP socket for listening on `addr`, and the address to bind it to.
///
/// The unspecified address (`0.0.0.0` or `::`, the default host) gets one
/// IPv6 socket that also takes IPv4 (`IPV6_V6ONLY` off) bound to `[::]`, as
/// Go's `net.Listen` makes for nats-server: a server on `0.0.0.0` answers
/// on every address of the host, IPv6 ones included, and its INFO
/// `connect_urls` list those too. Where the host has no IPv6 this is the
/// plain IPv4 socket.
fn listening_socket(addr: SocketAddr) -> io::Result<(Socket, SocketAddr)> {
    if addr.ip().is_unspecified() {
        let any = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), addr.port());
        let dual_stack = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| socket.set_only_v6(false).map(|()| socket));
        if let Ok(socket) = dual_stack {
            return Ok((socket, any));
        }
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    Ok((socket, addr))
}

/// A listening socket on `host:port` (see [`listening_socket`] for the
/// unspecified address) and the address to report: the requested one with
/// the port bound, so a server asked for `0.0.0.0` still says `0.0.0.0`.
fn listen_on(host: &str, port: u16, backlog: i32) -> io::Result<(Socket, SocketAddr)> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {host}"),
        )
    })?;
    let (socket, bind_addr) = listening_socket(addr)?;
    // SO_REUSEADDR lets a restarted broker bind while old connections sit
    // in TIME_WAIT; it does not let two live listeners share the port.
    socket.set_reuse_address(true)?;
    match bind_retrying_in_use(&socket, bind_addr) {
        Ok(()) => {}
        // No IPv6 on this host after all (IPv6 loopback removed, ...): the
        // plain IPv4 socket, as before.
        Err(e) if bind_addr != addr && e.kind() == io::ErrorKind::AddrNotAvailable => {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            bind_retrying_in_use(&socket, addr)?;
            return finish_listen(socket, addr, backlog);
        }
        Err(e) => return Err(e),
    }
    finish_listen(socket, addr, backlog)
}

fn finish_listen(
    socket: Socket,
    addr: SocketAddr,
    backlog: i32,
) -> io::Result<(Socket, SocketAddr)> {
    socket.listen(backlog)?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no inet address"))?;
    Ok((socket, SocketAddr::new(addr.ip(), bound.port())))
}

/// A blocking std listener on `host:port`, bound as the broker's own
/// listeners are (for the monitoring port).
pub fn std_listener(host: &str, port: u16) -> io::Result<std::net::TcpListener> {
    // std's own backlog.
    let (socket, _) = listen_on(host, port, 128)?;
    Ok(socket.into())
}

impl BoundListener {
    pub fn bind(host: &str, port: u16, backlog: i32) -> io::Result<BoundListener> {
        let (socket, local_addr) = listen_on(host, port, backlog)?;
        Ok(BoundListener { socket, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Turns the socket into a shard-local listener. Call on the shard.
    pub fn into_shard_listener(self) -> ShardListener {
        let fd = self.socket.into_raw_fd();
        // SAFETY: `fd` is a listening socket we own; ownership moves into glommio.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let spare = std::cell::Cell::new(reserve_descriptor());
        ShardListener {
            listener,
            fd,
            spare,
        }
    }
}

/// Concurrency contract: owned by the one shard task that accepts on it
/// (the `Cell` is never touched from anywhere else).
pub struct ShardListener {
    listener: glommio::net::TcpListener,
    /// The listening descriptor `listener` owns (glommio gives no way to ask
    /// for it back), for the shutdown in `Drop`.
    fd: RawFd,
    /// One descriptor held in reserve. An accepted connection needs a
    /// second descriptor for a moment (the dup below); when the process is
    /// out of them, the accept itself succeeds but the dup fails, and the
    /// client would be closed at once. Giving the reserve up for that dup
    /// serves the client instead; the next accept then fails with EMFILE
    /// and leaves the clients after it waiting in the backlog, as
    /// nats-server does. Taken back as soon as a descriptor is free.
    spare: std::cell::Cell<Option<OwnedFd>>,
}

/// A descriptor to hold in reserve (`None` when none is free).
fn reserve_descriptor() -> Option<OwnedFd> {
    // SAFETY: open(2) of a constant, NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: `fd` is a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An owned duplicate of `fd` (close-on-exec).
fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: dup of a valid fd; the result is checked.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Stops listening before the descriptor is closed. A pending io_uring
/// accept holds its own reference to the socket, so a plain close leaves
/// the port accepting until the kernel tears the ring down, after the
/// process has exited: a client that connects in that window (a test suite
/// restarting the server on the same port, a supervisor's probe) is queued
/// on a dead listener and then reset. `shutdown` takes the socket out of
/// the listening state at once, as nats-server's port closes with its
/// process.
impl Drop for ShardListener {
    fn drop(&mut self) {
        shutdown_fd(self.fd);
    }
}

impl ShardListener {
    /// Accepts one connection, as a [`HandOff`] that any shard can adopt.
    pub async fn accept(&self) -> io::Result<HandOff> {
        let stream = self.listener.accept().await.map_err(io::Error::from)?;
        // glommio ties the accepted stream to this executor; a dup gives us an
        // owned fd that can travel to another shard, and dropping `stream`
        // closes only the original descriptor.
        let fd = match duplicate(stream.as_raw_fd()) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                match self.spare.take() {
                    Some(spare) => {
                        drop(spare);
                        duplicate(stream.as_raw_fd())?
                    }
                    None => return Err(e),
                }
            }
            other => other?,
        };
        drop(stream);
        let spare = self.spare.take().or_else(reserve_descriptor);
        self.spare.set(spare);
        Ok(HandOff { fd })
    }
}

/// Dials `addr` from the current shard (cluster routes), giving up after
/// `timeout`. The socket comes back as a [`HandOff`], like an accepted one,
/// so that one code path adopts both.
pub async fn dial(addr: SocketAddr, timeout: Duration) -> io::Result<HandOff> {
    let stream = glommio::net::TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(io::Error::from)?;
    // As in `accept`: an owned duplicate that outlives glommio's handle.
    // SAFETY: dup of a valid fd; the result is checked.
    let dup = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor we own.
    Ok(HandOff {
        fd: unsafe { OwnedFd::from_raw_fd(dup) },
    })
}

/// The IP addresses of this host's network interfaces (what a server
/// listening on 0.0.0.0 can be reached at). Empty if the kernel will not
/// say.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr whose family says how
            // long it is.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET sockaddr is a sockaddr_in.
                let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                addrs.push(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                addrs.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    addrs
}

/// An accepted socket on its way to the shard that will own it. `Send`;
/// dropping it closes the socket.
#[derive(Debug)]
pub struct HandOff {
    fd: OwnedFd,
}

impl HandOff {
    /// Adopts the socket on the current shard.
    pub fn adopt(self) -> io::Result<Connection> {
        let fd = self.fd.into_raw_fd();
        // SAFETY: we own `fd`; glommio takes ownership.
        let stream = unsafe { glommio::net::TcpStream::from_raw_fd(fd) };
        // Batching is the broker's job (one write per connection per loop
        // turn), not Nagle's.
        stream.set_nodelay(true).map_err(io::Error::from)?;
        // On a dual-stack listener IPv4 peers show as `::ffff:a.b.c.d`;
        // nats-server (Go prints such an address in its IPv4 form) shows
        // them as IPv4 in its logs, `/connz` and `client_ip`, and checks
        // them against IPv4 `src` ranges.
        let peer = stream
            .peer_addr()
            .ok()
            .map(|peer| SocketAddr::new(peer.ip().to_canonical(), peer.port()));
        Ok(Connection {
            fd,
            peer,
            stream: RefCell::new(stream),
        })
    }
}

/// One client socket, owned by one shard.
pub struct Connection {
    fd: RawFd,
    peer: Option<SocketAddr>,
    /// Borrowed only inside a single poll call, never across an await.
    stream: RefCell<glommio::net::TcpStream>,
}

impl Connection {
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// One non-blocking `recv`: `Ok(None)` when nothing is there now.
    ///
    /// The broker tries this before [`Connection::read`] on a streaming
    /// connection: glommio's read arms an io_uring poll after every short
    /// read, and the next read then waits for that poll to complete instead
    /// of trying the socket — an extra ring round trip per read on a busy
    /// connection. On a quiet one the poll is what it should wait for.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is a valid, writable slice for the duration of the call.
        let n = unsafe {
            libc::recv(
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(err),
        }
    }

    /// Reads what is available into `buf` (waits if nothing is). 0 = EOF.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut stream = self.stream.borrow_mut();
            Pin::new(&mut *stream).poll_read(cx, buf)
        })
        .await
    }

    /// Writes all of `buf`, waiting for the socket to drain as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| {
                let mut stream = self.stream.borrow_mut();
                Pin::new(&mut *stream).poll_write(cx, buf)
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// One non-blocking send of as much of `bufs`, in order, as the kernel
    /// takes now. `Ok(0)` when the socket buffer is full.
    pub fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        try_send_vectored_fd(self.fd, bufs)
    }

    /// Shuts the socket down both ways: the reader task sees EOF, the peer
    /// sees the close, even while other references to the socket live on.
    pub fn shutdown(&self) {
        shutdown_fd(self.fd);
    }
}

/// A non-blocking `send` with `MSG_NOSIGNAL` (a reset peer must not raise
/// SIGPIPE). `Ok(0)` when the socket buffer is full.
pub fn try_send_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    // SAFETY: `buf` is a valid slice for the duration of the call.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    sent_or_full(n)
}

/// [`try_send_fd`] for several buffers in order, with one `sendmsg`.
/// `Ok(0)` when the socket buffer is full.
///
/// One buffer (the common case at low rates: a connection's queued output
/// fits its first block) goes out with a plain `send`: `sendmsg` also
/// copies the `msghdr` and the iovec in from user space, about 250 ns more
/// per call on this VM (a 128-byte send plus its `recv` on a loopback pair,
/// 200 000 each: 6.8–7.5 µs with `send`, 7.0–8.5 µs with `sendmsg`).
pub fn try_send_vectored_fd(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    match bufs {
        [] => return Ok(0),
        [only] => return try_send_fd(fd, only),
        _ => {}
    }
    // SAFETY: an all-zero msghdr is valid (no address, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec; sendmsg only reads it.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: msg points at `bufs`, valid for the duration of the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    sent_or_full(n)
}

/// A non-blocking send's return value: bytes taken, or `Ok(0)` when the
/// socket buffer is full (or the call was interrupted).
fn sent_or_full(n: isize) -> io::Result<usize> {
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(err),
    }
}

/// `shutdown(fd, SHUT_RDWR)`, ignoring errors (the socket may already be gone).
pub fn shutdown_fd(fd: RawFd) {
    // SAFETY: shutdown on an fd we own; errors are irrelevant here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_sends_of_none_one_and_several_buffers_arrive_in_order() {
        use std::io::Read;
        let (tx, mut rx) = std::os::unix::net::UnixStream::pair().expect("pair");
        let fd = tx.as_raw_fd();
        assert_eq!(try_send_vectored_fd(fd, &[]).expect("none"), 0);
        let one = [IoSlice::new(b"MSG a 1 2\r\nhi\r\n")];
        assert_eq!(try_send_vectored_fd(fd, &one).expect("one"), 15);
        let several = [
            IoSlice::new(b"MSG b 1 "),
            IoSlice::new(b""),
            IoSlice::new(b"0\r\n\r\n"),
        ];
        assert_eq!(try_send_vectored_fd(fd, &several).expect("several"), 13);
        drop(tx);
        let mut got = Vec::new();
        rx.read_to_end(&mut got).expect("read");
        assert_eq!(got, b"MSG a 1 2\r\nhi\r\nMSG b 1 0\r\n\r\n");
    }

    #[test]
    fn the_unspecified_address_gets_one_dual_stack_socket() {
        let v4_any: SocketAddr = "0.0.0.0:4222".parse().expect("addr");
        let (socket, bind) = listening_socket(v4_any).expect("socket");
        if socket.domain().expect("domain") == Domain::IPV6 {
            assert_eq!(bind, "[::]:4222".parse::<SocketAddr>().expect("addr"));
            assert!(!socket.only_v6().expect("v6only"), "takes IPv4 too");
        } else {
            // A host without IPv6: the IPv4 socket, as before.
            assert_eq!(bind, v4_any);
        }
        let v6_any: SocketAddr = "[::]:4222".parse().expect("addr");
        let (socket, _) = listening_socket(v6_any).expect("socket");
        assert!(!socket.only_v6().expect("v6only"), "`::` takes IPv4 too");
        let loopback: SocketAddr = "127.0.0.1:4222".parse().expect("addr");
        let (socket, bind) = listening_socket(loopback).expect("socket");
        assert_eq!(socket.domain().expect("domain"), Domain::IPV4);
        assert_eq!(bind, loopback);
    }
}
