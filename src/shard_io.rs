//! The state machine's I/O seam ([`percore_core::io::ShardIo`]) on a
//! glommio shard: sends are direct non-blocking socket calls, wake-ups are
//! the shard's wait lists. Monomorphised into the broker, so each call is
//! the plain function call it was before the seam existed.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::rc::Rc;

use percore_core::io::{ShardIo, Wake};
use shards::net::{shutdown_fd, try_send_fd, try_send_vectored_fd, HandOff};
use shards::sync::WaitList;

use crate::tls::session::TlsLink;

/// A client socket as its shard's state machine holds it: the fd (owned by
/// the connection's `shards::net::Connection`, which outlives the entry in
/// the state machine), the wait list its writer task parks on, and, on a
/// TLS port, the connection's record layer. Sends go to the socket directly
/// when `tls` is `None` (the plaintext path is one branch longer than it
/// was); otherwise through the [`TlsLink`], whose type documents how its
/// ciphertext reaches the socket in order.
pub struct SocketEndpoint {
    pub fd: RawFd,
    pub writer_wake: Rc<WaitList>,
    pub tls: Option<Rc<TlsLink>>,
}

/// One per shard.
pub struct GlommioIo {
    /// PINGs waiting for their cross-shard barrier.
    pub barrier: Rc<WaitList>,
    /// Publishers stalled for a slow reader.
    pub drained: Rc<WaitList>,
}

impl ShardIo for GlommioIo {
    type Endpoint = SocketEndpoint;
    type Handoff = HandOff;

    fn send(&self, endpoint: &SocketEndpoint, bytes: &[u8]) -> io::Result<usize> {
        match &endpoint.tls {
            None => try_send_fd(endpoint.fd, bytes),
            Some(link) => link.send(endpoint.fd, &[IoSlice::new(bytes)], &endpoint.writer_wake),
        }
    }

    fn send_vectored(
        &self,
        endpoint: &SocketEndpoint,
        slices: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        match &endpoint.tls {
            None => try_send_vectored_fd(endpoint.fd, slices),
            Some(link) => link.send(endpoint.fd, slices, &endpoint.writer_wake),
        }
    }

    fn shutdown(&self, endpoint: &SocketEndpoint) {
        match &endpoint.tls {
            None => shutdown_fd(endpoint.fd),
            Some(link) => link.shutdown(endpoint.fd),
        }
    }

    fn wake_writer(&self, endpoint: &SocketEndpoint) {
        endpoint.writer_wake.notify_all();
    }

    fn wake(&self, event: Wake) {
        let list = match event {
            Wake::Barrier => &self.barrier,
            Wake::Drained => &self.drained,
        };
        // Nearly always nobody waits; skip the notify then.
        if list.has_waiters() {
            list.notify_all();
        }
    }
}
