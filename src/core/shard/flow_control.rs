//! Output and flow control: queuing bytes for connections, the end-of-work
//! flush, the hand-off to writer tasks, stalls for slow readers and the
//! slow-consumer cut-off. The per-connection rules live in
//! [`crate::connection::OutputState`]; this file applies them shard-wide.

use std::time::{Duration, Instant};

use crate::connection::{CloseReason, Flushed};
use crate::ids::ConnKey;
use crate::io::{ShardIo, Wake};
use crate::outbound::{encode_err, err_len_bound};
use crate::outbound_queue::{BlockPool, OutboundQueue};

use super::{Next, ShardBroker};

/// One stall waits at most this long; the next unit of work decides again.
const STALL_EPISODE_MAX: Duration = Duration::from_millis(50);

impl<I: ShardIo> ShardBroker<I> {
    pub(super) fn mark_dirty(&mut self, key: ConnKey) {
        if self.conns[key].output.mark_dirty() {
            self.dirty.push(key);
        }
    }

    pub(super) fn queue_bytes(&mut self, key: ConnKey, bytes: &[u8]) {
        self.conns[key].output.extend(&mut self.pool, bytes);
        self.mark_dirty(key);
    }

    /// Sends `-ERR '<text>'` (when there is one) and closes the connection.
    pub(super) fn close_with_error(
        &mut self,
        key: ConnKey,
        text: Option<&str>,
        reason: CloseReason,
    ) -> Next {
        if let Some(text) = text {
            self.queue_err(key, text);
        }
        self.begin_close(key, reason);
        Next::Close
    }

    pub(super) fn queue_err(&mut self, key: ConnKey, text: &str) {
        self.conns[key]
            .output
            .append(&mut self.pool, err_len_bound(text), |out| {
                encode_err(out, text)
            });
        self.mark_dirty(key);
    }

    /// One write per dirty connection: a direct non-blocking send; what the
    /// socket does not take goes to the connection's writer task.
    pub fn flush_dirty(&mut self, now: Instant) {
        self.set_now(now);
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.closing.is_some() {
                conn.output.mark_clean();
                continue;
            }
            match conn
                .output
                .flush_direct(&self.io, &conn.endpoint, &mut self.pool, now)
            {
                Ok(Flushed::Idle | Flushed::All) => {}
                Ok(Flushed::ToWriter) => self.io.wake_writer(&conn.endpoint),
                Err(_) => self.begin_close(key, CloseReason::WriteError),
            }
        }
        self.dirty = dirty;
        self.io.wake(Wake::Drained);
        // The end of a unit of work: one latency sample if it delivered.
        let ingress = self.unit_ingress.take();
        if self.stats.out_msgs != self.out_msgs_flushed {
            self.out_msgs_flushed = self.stats.out_msgs;
            self.latency_due = ingress;
        }
    }

    /// The writer task has something to do (or must end).
    pub fn writer_should_run(&self, key: ConnKey) -> bool {
        match self.conns.get(key) {
            None => true,
            Some(conn) => conn.closing.is_some() || conn.output.writer_has_work(),
        }
    }

    /// Whether the connection's writer task holds nothing and has nothing
    /// to take: it may then be replaced by another (the runtime moves it
    /// to another task queue).
    pub fn writer_idle(&self, key: ConnKey) -> bool {
        self.conns
            .get(key)
            .is_some_and(|conn| conn.output.writer_idle())
    }

    /// Gives the writer task the queued bytes; `None` means it should end.
    pub fn take_for_writer(&mut self, key: ConnKey, now: Instant) -> Option<OutboundQueue> {
        self.set_now(now);
        let conn = self.conns.get_mut(key)?;
        if conn.closing.is_some() {
            return None;
        }
        Some(conn.output.take_for_writer(now))
    }

    /// The socket took `len` more bytes of what the writer task holds.
    pub fn chunk_written(&mut self, key: ConnKey, len: usize, now: Instant) {
        self.set_now(now);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.output.chunk_written(len, now, self.stall_threshold);
        self.io.wake(Wake::Drained);
    }

    /// The writer task finished what it took (or failed); `blocks` are the
    /// blocks it emptied.
    pub fn writer_done(&mut self, key: ConnKey, blocks: BlockPool, ok: bool, now: Instant) {
        self.set_now(now);
        self.pool.absorb(blocks);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !ok {
            self.begin_close(key, CloseReason::WriteError);
            return;
        }
        conn.output.writer_done(now, self.stall_threshold);
        self.io.wake(Wake::Drained);
    }

    /// The subscribers this unit of work pushed over the stall threshold; the
    /// caller (the publisher's reader, or a ring consumer, which then stops
    /// taking batches and so backs up the publishing shard) waits for
    /// [`Wake::Drained`] until [`ShardBroker::stall_over`], for at most
    /// [`ShardBroker::stall_allowance`], then reports the time with
    /// [`ShardBroker::charge_stall`]. This is nats-server's fast-producer
    /// stall: a healthy subscriber that reads slower than a burst arrives
    /// loses nothing.
    pub fn take_stall(&mut self) -> Vec<ConnKey> {
        std::mem::take(&mut self.stalled)
    }

    /// Every connection in `keys` is back under the threshold (or gone).
    pub fn stall_over(&self, keys: &[ConnKey]) -> bool {
        let threshold = self.stall_threshold;
        keys.iter().all(|&key| {
            self.conns
                .get(key)
                .is_none_or(|c| c.closing.is_some() || c.output.pending_bytes() <= threshold)
        })
    }

    /// How long this stall may wait for `keys`: the largest budget left,
    /// at most [`STALL_EPISODE_MAX`].
    pub fn stall_allowance(&self, keys: &[ConnKey]) -> Duration {
        keys.iter()
            .filter_map(|&key| self.conns.get(key))
            .map(|c| c.output.stall_budget_left())
            .max()
            .unwrap_or(Duration::ZERO)
            .min(STALL_EPISODE_MAX)
    }

    pub fn charge_stall(&mut self, keys: &[ConnKey], waited: Duration) {
        let threshold = self.stall_threshold;
        for &key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output.charge_stall(waited, threshold);
            }
        }
    }
}
