//! What one shard sends another over their ring: a [`ShardBatch`], the work
//! of one unit of work (one socket read, one inbound batch) for that peer.
//!
//! Items keep the order in which the producing shard created them; the
//! consumer applies them in that order. Because interest changes, acks and
//! deliveries share one FIFO per ordered pair of shards, a subscription made
//! on A is applied on B before any message A forwards to B afterwards.
//!
//! Message bytes (subject, reply, headers and payload) are copied once into
//! the batch's arena, which is frozen into one shared `Bytes` when the batch
//! is sent: one allocation per batch, and the publisher's read buffer is
//! never pinned by another shard.

use bytes::{Bytes, BytesMut};
use shards::net::HandOff;

/// A byte range inside [`ShardBatch::arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn slice<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let start = self.start as usize;
        &arena[start..start + self.len as usize]
    }
}

#[derive(Debug)]
pub enum MeshItem {
    /// The sending shard's interest in (subject, queue) changed by `delta`.
    Interest {
        subject: Bytes,
        queue: Option<Bytes>,
        delta: i32,
    },
    /// The sender has applied every batch up to number `seq` that the
    /// receiver of this item sent it.
    Ack { seq: u64 },
    /// A published message for the receiver's local subscriptions: every
    /// matching plain subscription, plus one member of each listed queue
    /// group (the publisher's shard already picked this shard for them).
    Deliver {
        subject: Span,
        reply: Option<Span>,
        header_len: Option<u32>,
        payload: Span,
        queues: Vec<Bytes>,
    },
    /// A newly accepted client for the receiver to own.
    Adopt { socket: HandOff, client_id: u64 },
}

/// One ring item.
#[derive(Debug)]
pub struct ShardBatch {
    /// Batch number on the sending shard (increasing, with gaps per
    /// destination), to be acked once applied; 0 for a batch of acks only,
    /// which needs no ack (acks of acks would never end).
    pub seq: u64,
    pub arena: Bytes,
    pub items: Vec<MeshItem>,
}

/// A batch under construction for one destination shard.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    arena: BytesMut,
    items: Vec<MeshItem>,
}

impl BatchBuilder {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, item: MeshItem) {
        self.items.push(item);
    }

    pub fn push_deliver(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        payload: &[u8],
        queues: Vec<Bytes>,
    ) {
        let subject = self.copy_in(subject);
        let reply = reply.map(|r| self.copy_in(r));
        let payload = self.copy_in(payload);
        self.items.push(MeshItem::Deliver {
            subject,
            reply,
            header_len: header_len.map(|h| h as u32),
            payload,
            queues,
        });
    }

    fn copy_in(&mut self, bytes: &[u8]) -> Span {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }

    /// Bytes of message data staged so far.
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    /// Takes the batch, leaving the builder empty for the next unit of work.
    pub fn take(&mut self) -> ShardBatch {
        ShardBatch {
            seq: 0,
            arena: std::mem::take(&mut self.arena).freeze(),
            items: std::mem::take(&mut self.items),
        }
    }
}
