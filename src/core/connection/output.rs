//! A connection's way out: the bytes queued for its socket and the rules for
//! handing them over, timing the writer out and holding publishers back.
//!
//! Two paths write a connection's bytes. At the end of each unit of work the
//! shard makes one direct non-blocking send ([`OutputState::flush_direct`]);
//! what the socket does not take goes to the connection's writer task, which
//! waits for the socket ([`OutputState::take_for_writer`],
//! [`OutputState::chunk_written`], [`OutputState::writer_done`]). While the
//! writer owns the bytes, direct sends wait behind it, so order holds.
//!
//! Flow control (nats-server's fast-producer stall): a subscriber whose
//! backlog passes the shard's stall threshold holds back the task that fed
//! it until it drains, for at most [`STALL_BUDGET`] in all; one that takes
//! nothing from its writer for [`STALL_PROGRESS_WINDOW`] is not draining and
//! gets no such help, so it reaches max_pending or the write deadline.

use std::io;
use std::time::{Duration, Instant};

use crate::io::ShardIo;
use crate::outbound_queue::{BlockPool, OutboundQueue};

/// A subscriber may hold publishers back this long in all before its backlog
/// drains again; after that it gets no more help and, if it really is slow,
/// reaches max_pending and is cut off while publishers go on at full speed.
pub const STALL_BUDGET: Duration = Duration::from_secs(1);
/// A subscriber whose socket has taken nothing from the writer for this
/// long is not draining: it does not read, or reads less than one writer
/// piece (at most a 64 KiB block once the socket is full) per window.
/// Stalling publishers for it would only delay everyone else on the subject
/// (nats-server 2.9 does not stall before half of max_pending either), so
/// its backlog grows until max_pending or the write deadline cuts it off.
/// Long enough that a fast reader the scheduler kept off the CPU for a while
/// still counts as draining (20 ms was not, on a 2-vCPU VM).
pub const STALL_PROGRESS_WINDOW: Duration = Duration::from_millis(250);

/// What a direct flush left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing queued, or the writer task already owns the queue.
    Idle,
    /// The socket took everything.
    All,
    /// The socket took part; the writer task now owns the rest.
    ToWriter,
}

#[derive(Default)]
pub struct OutputState {
    /// Bytes queued for the socket and not yet handed to the writer.
    queue: OutboundQueue,
    /// Bytes the writer task is writing right now.
    in_flight: usize,
    /// The writer task owns flushing (the socket did not take everything).
    writer_busy: bool,
    /// When the writer last started waiting for the socket (write deadline).
    write_started: Option<Instant>,
    /// When the writer began handing its current chunk to the socket: how
    /// long that takes tells a reading client from a stopped one.
    chunk_started: Option<Instant>,
    /// Already in the shard's list of connections to flush.
    dirty: bool,
    /// How long publishers have been held back for this connection since
    /// its backlog last drained.
    stall_spent: Duration,
}

impl OutputState {
    /// Bytes not yet taken by the socket: queued plus with the writer.
    #[inline]
    pub fn pending_bytes(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The pieces the unsent bytes are in: queued blocks, plus what the
    /// writer holds as one (nats-server's "chunks" in its slow-consumer
    /// log line).
    pub fn pending_chunks(&self) -> usize {
        self.queue.block_count() + usize::from(self.in_flight > 0)
    }

    #[inline]
    pub fn extend(&mut self, pool: &mut BlockPool, bytes: &[u8]) {
        self.queue.extend_from_slice(pool, bytes);
    }

    /// Appends one frame of at most `bound` bytes, encoded in place.
    #[inline]
    pub fn append(
        &mut self,
        pool: &mut BlockPool,
        bound: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        self.queue.append(pool, bound, encode);
    }

    /// Marks the connection for the end-of-work flush; true the first time.
    #[inline]
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Off the flush list without a flush (the connection is closing).
    pub fn mark_clean(&mut self) {
        self.dirty = false;
    }

    /// The end-of-work flush: one direct send, the rest to the writer task.
    pub fn flush_direct<I: ShardIo>(
        &mut self,
        io: &I,
        endpoint: &I::Endpoint,
        pool: &mut BlockPool,
        now: Instant,
    ) -> io::Result<Flushed> {
        self.dirty = false;
        if self.writer_busy || self.queue.is_empty() {
            return Ok(Flushed::Idle);
        }
        let sent = io.send_vectored(endpoint, &self.queue.send_slices())?;
        self.queue.consume(pool, sent);
        if self.queue.is_empty() {
            return Ok(Flushed::All);
        }
        self.writer_busy = true;
        self.start_write(now);
        Ok(Flushed::ToWriter)
    }

    /// Closing (not a slow consumer): hands what is queued (an `-ERR`, say)
    /// to the socket once, if the writer does not own it, and drops the rest.
    pub fn last_words<I: ShardIo>(&mut self, io: &I, endpoint: &I::Endpoint, pool: &mut BlockPool) {
        if !self.writer_busy && !self.queue.is_empty() {
            let _ = io.send_vectored(endpoint, &self.queue.send_slices());
        }
        self.queue.clear(pool);
    }

    /// Slow consumer: what is queued is dropped unsent.
    pub fn discard(&mut self, pool: &mut BlockPool) {
        self.queue.clear(pool);
    }

    /// Nothing is queued for the writer task nor held by it.
    pub fn writer_idle(&self) -> bool {
        !self.writer_busy
    }

    /// The writer task has bytes to write.
    pub fn writer_has_work(&self) -> bool {
        self.writer_busy && !self.queue.is_empty()
    }

    /// Gives the writer task the queued bytes.
    pub fn take_for_writer(&mut self, now: Instant) -> OutboundQueue {
        let buffer = self.queue.take();
        self.in_flight = buffer.len();
        self.start_write(now);
        buffer
    }

    /// The socket took `len` more bytes of what the writer holds.
    pub fn chunk_written(&mut self, len: usize, now: Instant, stall_threshold: usize) {
        self.in_flight = self.in_flight.saturating_sub(len);
        self.chunk_started = Some(now);
        self.reset_stall_if_drained(stall_threshold);
    }

    /// The writer finished what it took.
    pub fn writer_done(&mut self, now: Instant, stall_threshold: usize) {
        self.in_flight = 0;
        if self.queue.is_empty() {
            self.writer_busy = false;
            self.write_started = None;
        } else {
            self.start_write(now);
        }
        self.reset_stall_if_drained(stall_threshold);
    }

    /// The writer has waited for the socket longer than `deadline`.
    pub fn write_deadline_passed(&self, now: Instant, deadline: Duration) -> bool {
        self.writer_busy
            && self
                .write_started
                .is_some_and(|t| now.saturating_duration_since(t) >= deadline)
    }

    /// Whether publishers should wait for this connection: its backlog is
    /// over the threshold, it has stall budget left, and it is draining.
    #[inline]
    pub fn wants_stall(&self, now: Instant, stall_threshold: usize) -> bool {
        self.pending_bytes() > stall_threshold
            && self.stall_spent < STALL_BUDGET
            && self.draining(now)
    }

    /// Stall budget left.
    #[inline]
    pub fn stall_budget_left(&self) -> Duration {
        STALL_BUDGET.saturating_sub(self.stall_spent)
    }

    /// Publishers waited `waited` for this connection.
    pub fn charge_stall(&mut self, waited: Duration, stall_threshold: usize) {
        if self.pending_bytes() > stall_threshold {
            self.stall_spent += waited;
        }
    }

    /// The subscriber takes what it is sent: nothing waits for its socket,
    /// or the socket took the writer's previous chunk less than
    /// [`STALL_PROGRESS_WINDOW`] ago.
    #[inline]
    fn draining(&self, now: Instant) -> bool {
        !self.writer_busy
            || self
                .chunk_started
                .is_none_or(|t| now.saturating_duration_since(t) < STALL_PROGRESS_WINDOW)
    }

    /// The write deadline and the draining window both count from `now`.
    fn start_write(&mut self, now: Instant) {
        self.write_started = Some(now);
        self.chunk_started = Some(now);
    }

    fn reset_stall_if_drained(&mut self, stall_threshold: usize) {
        if self.pending_bytes() <= stall_threshold / 2 {
            self.stall_spent = Duration::ZERO;
        }
    }
}
