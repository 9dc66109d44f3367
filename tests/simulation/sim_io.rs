//! Fake sockets behind the state machine's I/O seam.
//!
//! A socket has a kernel buffer of `buffer_limit` bytes: sends take what
//! fits, the client's reads free space. After `shutdown` sends fail (as
//! EPIPE would) and the client reads what is left, then sees EOF.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::rc::Rc;

use percore_core::io::{ShardIo, Wake};

#[derive(Debug, Default)]
pub struct SocketState {
    /// Bytes the server sent that the client has not read yet.
    pub in_kernel: Vec<u8>,
    pub buffer_limit: usize,
    pub shut: bool,
    /// The state machine asked for the writer task.
    pub writer_woken: bool,
}

#[derive(Clone, Debug, Default)]
pub struct SimSocket(pub Rc<RefCell<SocketState>>);

impl SimSocket {
    pub fn new(buffer_limit: usize) -> SimSocket {
        SimSocket(Rc::new(RefCell::new(SocketState {
            buffer_limit,
            ..SocketState::default()
        })))
    }

    /// What a send of `wanted` bytes would take now.
    fn room(&self) -> io::Result<usize> {
        let state = self.0.borrow();
        if state.shut {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        Ok(state.buffer_limit.saturating_sub(state.in_kernel.len()))
    }

    pub fn send_slices(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = self.room()?;
        let mut state = self.0.borrow_mut();
        let mut sent = 0;
        for slice in slices {
            let n = slice.len().min(room);
            state.in_kernel.extend_from_slice(&slice[..n]);
            sent += n;
            room -= n;
            if room == 0 {
                break;
            }
        }
        Ok(sent)
    }
}

/// One per simulated shard. Wake-ups need no bookkeeping: the scheduler
/// re-checks every waiting task's condition before each step.
pub struct SimIo;

impl ShardIo for SimIo {
    type Endpoint = SimSocket;
    type Handoff = ();

    fn send(&self, endpoint: &SimSocket, bytes: &[u8]) -> io::Result<usize> {
        endpoint.send_slices(&[IoSlice::new(bytes)])
    }

    fn send_vectored(&self, endpoint: &SimSocket, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        endpoint.send_slices(slices)
    }

    fn shutdown(&self, endpoint: &SimSocket) {
        endpoint.0.borrow_mut().shut = true;
    }

    fn wake_writer(&self, endpoint: &SimSocket) {
        endpoint.0.borrow_mut().writer_woken = true;
    }

    fn wake(&self, _event: Wake) {}
}
