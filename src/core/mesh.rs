//! The mesh messages: what one shard sends another over their ring: a [`ShardBatch`], the work
//! of one unit of work (one socket read, one inbound batch) for that peer.
//!
//! Items keep the order in which the producing shard created them; the
//! consumer applies them in that order. Because interest changes, acks and
//! deliveries share one FIFO per ordered pair of shards, a subscription made
//! on A is applied on B before any message A forwards to B afterwards.
//!
//! Message bytes (subject, reply, headers and payload) are copied once into
//! the batch's arena, which is frozen into one shared `Bytes` when the batch
//! is sent, and the publisher's read buffer is never pinned by another shard.
//!
//! Buffers travel back: once a batch is applied, its arena and item list
//! (emptied) ride to the shard that filled them on the next batch going that
//! way (an ack follows every batch with work, so that is soon), and that
//! shard builds its next batches in them. Memory is then freed and reused by
//! the thread that allocated it, and a batch does not regrow its arena from
//! nothing: the ring path costs no allocation in the steady state.

use bytes::{Bytes, BytesMut};

use std::sync::Arc;
use std::time::Instant;

use crate::ids::{AccountId, ClientId};
use crate::info::ClientClusterInfo;

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

/// `H` is the runtime's handle for an accepted socket in transit
/// ([`crate::io::ShardIo::Handoff`]).
#[derive(Debug)]
pub enum MeshItem<H = ()> {
    /// The sending shard's interest in (subject, queue) of `account`
    /// changed by `delta`.
    Interest {
        account: AccountId,
        subject: Bytes,
        queue: Option<Bytes>,
        delta: i32,
    },
    /// The sender has applied every batch up to number `seq` that the
    /// receiver of this item sent it.
    Ack { seq: u64 },
    /// The sender waits on a barrier (a client's PING) and wants the
    /// receiver's ack for everything up to this point now, rather than with
    /// the receiver's next batch of work (see `ShardBroker::drain_batches`).
    AckWanted,
    /// A published message for the receiver's local subscriptions: every
    /// matching plain subscription, plus one member of each listed queue
    /// group (the publisher's shard already picked this shard for them).
    /// The group names sit in the arena too ([`QueueNames`]), so a
    /// forwarded queue message allocates nothing. `account` is the subject
    /// space it was published in. `one_hop`: the message came from a
    /// cluster route, so the receiver delivers it to its clients only,
    /// never to a route (nats-server's one-hop rule).
    Deliver {
        account: AccountId,
        subject: Span,
        reply: Option<Span>,
        header_len: Option<u32>,
        payload: Span,
        queues: Span,
        one_hop: bool,
    },
    /// A newly accepted client for the receiver to own.
    Adopt { socket: H, client_id: ClientId },
    /// The cluster's client URLs changed (a route came or went): the
    /// receiver's clients get an INFO with the new list.
    ConnectUrls(Arc<ClientClusterInfo>),
}

/// The queue group names of a [`MeshItem::Deliver`], read from the arena.
#[derive(Debug, Clone, Copy)]
pub struct QueueNames<'a>(&'a [u8]);

impl<'a> QueueNames<'a> {
    pub fn new(packed: &'a [u8]) -> QueueNames<'a> {
        QueueNames(packed)
    }
}

impl<'a> Iterator for QueueNames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
        let (name, rest) = rest.split_at(len);
        self.0 = rest;
        Some(name)
    }
}

/// One ring item.
#[derive(Debug)]
pub struct ShardBatch<H = ()> {
    /// Batch number on the sending shard (increasing, with gaps per
    /// destination), to be acked once applied; 0 for a batch of acks (or
    /// ack requests) only, which needs no ack (acks of acks would never end).
    pub seq: u64,
    pub arena: Bytes,
    pub items: Vec<MeshItem<H>>,
    /// Buffers of batches the receiver sent us earlier, emptied, for reuse.
    pub returned: Vec<BatchBuffers<H>>,
    /// For a batch that carries messages: the ingress instant of the unit
    /// of work that made it (see [`crate::delivery_latency`]), so the
    /// receiver measures delivery latency from the original socket read.
    /// One per batch, never per message.
    pub ingress: Option<Instant>,
}

/// A recycled arena larger than this is dropped instead (a burst of large
/// messages must not stay pinned); so is an item list longer than
/// [`RECYCLE_MAX_ITEMS`].
const RECYCLE_MAX_ARENA: usize = 256 * 1024;
const RECYCLE_MAX_ITEMS: usize = 4096;
const RECYCLE_MIN_ITEMS: usize = 16;

/// The emptied arena and item list of an applied batch.
#[derive(Debug)]
pub struct BatchBuffers<H = ()> {
    arena: BytesMut,
    items: Vec<MeshItem<H>>,
}

impl<H> BatchBuffers<H> {
    /// What is worth sending back of an applied batch: `None` if the arena
    /// is still shared (or too big) and the list holds nothing reusable.
    pub fn reclaim(arena: Bytes, mut items: Vec<MeshItem<H>>) -> Option<BatchBuffers<H>> {
        items.clear();
        let mut arena = arena.try_into_mut().unwrap_or_default();
        arena.clear();
        if arena.capacity() > RECYCLE_MAX_ARENA {
            arena = BytesMut::new();
        }
        if items.capacity() > RECYCLE_MAX_ITEMS {
            items = Vec::new();
        }
        // An ack-only batch's one-slot list is not worth the trip.
        (arena.capacity() > 0 || items.capacity() >= RECYCLE_MIN_ITEMS)
            .then_some(BatchBuffers { arena, items })
    }
}

/// Recycled buffers one shard keeps for its next batches.
#[derive(Debug)]
pub struct SpareBuffers<H = ()> {
    spare: Vec<BatchBuffers<H>>,
}

impl<H> Default for SpareBuffers<H> {
    fn default() -> Self {
        SpareBuffers { spare: Vec::new() }
    }
}

impl<H> SpareBuffers<H> {
    /// Enough for one batch per peer in flight each way; more would only
    /// hold memory.
    const MAX: usize = 64;

    pub fn put(&mut self, buffers: impl IntoIterator<Item = BatchBuffers<H>>) {
        for buffers in buffers {
            if self.spare.len() < Self::MAX {
                self.spare.push(buffers);
            }
        }
    }

    fn get(&mut self) -> BatchBuffers<H> {
        self.spare.pop().unwrap_or(BatchBuffers {
            arena: BytesMut::new(),
            items: Vec::new(),
        })
    }

    /// Housekeeping: halves the spare list, so buffers left over from a
    /// burst are given back to the allocator within a few ticks while a
    /// steady flow (which takes them as fast as they return) keeps its own.
    pub fn trim(&mut self) {
        self.spare.truncate(self.spare.len() / 2);
    }

    pub fn len(&self) -> usize {
        self.spare.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spare.is_empty()
    }
}

/// A batch under construction for one destination shard.
#[derive(Debug)]
pub struct BatchBuilder<H = ()> {
    arena: BytesMut,
    items: Vec<MeshItem<H>>,
    /// The destination's buffers, applied here, going back with this batch.
    returns: Vec<BatchBuffers<H>>,
    /// A message ([`MeshItem::Deliver`]) is among the items.
    carries_messages: bool,
}

impl<H> Default for BatchBuilder<H> {
    fn default() -> Self {
        BatchBuilder {
            arena: BytesMut::new(),
            items: Vec::new(),
            returns: Vec::new(),
            carries_messages: false,
        }
    }
}

impl<H> BatchBuilder<H> {
    /// No items to send (buffers to return wait for the next batch).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a message is among the items staged so far.
    pub fn carries_messages(&self) -> bool {
        self.carries_messages
    }

    /// Sends `buffers` back to the destination with the next batch.
    pub fn give_back(&mut self, buffers: BatchBuffers<H>) {
        self.returns.push(buffers);
    }

    pub fn push(&mut self, item: MeshItem<H>) {
        self.items.push(item);
    }

    pub fn push_deliver(
        &mut self,
        account: AccountId,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        payload: &[u8],
        queues: &[Bytes],
    ) {
        self.push_deliver_hop(account, subject, reply, header_len, payload, queues, false);
    }

    /// [`BatchBuilder::push_deliver`], saying whether the message came from
    /// a route (see [`MeshItem::Deliver`]).
    #[allow(clippy::too_many_arguments)]
    pub fn push_deliver_hop(
        &mut self,
        account: AccountId,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        payload: &[u8],
        queues: &[Bytes],
        one_hop: bool,
    ) {
        let subject = self.copy_in(subject);
        let reply = reply.map(|r| self.copy_in(r));
        let payload = self.copy_in(payload);
        let queues = self.copy_queue_names(queues);
        self.carries_messages = true;
        self.items.push(MeshItem::Deliver {
            account,
            subject,
            reply,
            header_len: header_len.map(|h| h as u32),
            payload,
            queues,
            one_hop,
        });
    }

    /// Each name as a 4-byte little-endian length and its bytes.
    fn copy_queue_names(&mut self, queues: &[Bytes]) -> Span {
        let start = self.arena.len() as u32;
        for name in queues {
            self.arena
                .extend_from_slice(&(name.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(name);
        }
        Span {
            start,
            len: self.arena.len() as u32 - start,
        }
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

    /// Takes the batch, leaving the builder empty for the next unit of
    /// work, in recycled buffers when there are some.
    pub fn take(&mut self, spare: &mut SpareBuffers<H>) -> ShardBatch<H> {
        let next = spare.get();
        self.carries_messages = false;
        ShardBatch {
            seq: 0,
            arena: std::mem::replace(&mut self.arena, next.arena).freeze(),
            items: std::mem::replace(&mut self.items, next.items),
            returned: std::mem::take(&mut self.returns),
            ingress: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver_payloads(batch: &ShardBatch) -> Vec<Vec<u8>> {
        batch
            .items
            .iter()
            .filter_map(|item| match item {
                MeshItem::Deliver { payload, .. } => Some(payload.slice(&batch.arena).to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn buffers_go_back_and_are_reused_empty() {
        let mut spare: SpareBuffers = SpareBuffers::default();
        let mut builder = BatchBuilder::default();
        for i in 0..100u32 {
            builder.push_deliver(AccountId::GLOBAL, b"a.b", None, None, &i.to_be_bytes(), &[]);
        }
        let batch = builder.take(&mut spare);
        assert_eq!(deliver_payloads(&batch).len(), 100);
        let arena_capacity = batch.arena.len();
        // The receiver applied it: reclaim and send back.
        let buffers = BatchBuffers::reclaim(batch.arena, batch.items).expect("worth returning");
        assert!(buffers.arena.capacity() >= arena_capacity);
        assert!(buffers.arena.is_empty() && buffers.items.is_empty());
        spare.put([buffers]);
        assert_eq!(spare.len(), 1);

        // The next batch is built in the returned buffers and holds only
        // its own data.
        let taken = builder.take(&mut spare);
        assert!(taken.items.is_empty());
        assert!(spare.is_empty());
        builder.push_deliver(AccountId::GLOBAL, b"x", Some(b"r"), None, b"fresh", &[]);
        let next = builder.take(&mut spare);
        assert_eq!(deliver_payloads(&next), [b"fresh".to_vec()]);
        assert!(next.arena.len() < 16, "no stale bytes carried over");
    }

    #[test]
    fn queue_names_ride_in_the_arena() {
        let mut builder: BatchBuilder = BatchBuilder::default();
        let names = [
            Bytes::from_static(b"q1"),
            Bytes::from_static(b"workers.long"),
        ];
        builder.push_deliver(AccountId::GLOBAL, b"s", None, None, b"p", &names);
        builder.push_deliver(AccountId::GLOBAL, b"s", None, None, b"p", &[]);
        let batch = builder.take(&mut SpareBuffers::default());
        let packed: Vec<Vec<Vec<u8>>> = batch
            .items
            .iter()
            .map(|item| match item {
                MeshItem::Deliver { queues, .. } => QueueNames::new(queues.slice(&batch.arena))
                    .map(<[u8]>::to_vec)
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            packed,
            [vec![b"q1".to_vec(), b"workers.long".to_vec()], vec![]]
        );
    }

    #[test]
    fn shared_or_tiny_buffers_are_not_returned() {
        let mut builder: BatchBuilder = BatchBuilder::default();
        builder.push(MeshItem::Ack { seq: 1 });
        let ack_only = builder.take(&mut SpareBuffers::default());
        assert!(BatchBuffers::reclaim(ack_only.arena, ack_only.items).is_none());

        builder.push_deliver(AccountId::GLOBAL, b"a", None, None, b"payload", &[]);
        let batch = builder.take(&mut SpareBuffers::default());
        let still_shared = batch.arena.clone();
        let buffers = BatchBuffers::reclaim(batch.arena, batch.items);
        // The item list (one slot) is too small to return, and the arena is
        // still referenced: nothing comes back.
        assert!(buffers.is_none());
        drop(still_shared);

        let mut spare: SpareBuffers = SpareBuffers::default();
        for _ in 0..SpareBuffers::<()>::MAX + 5 {
            spare.put([BatchBuffers {
                arena: BytesMut::with_capacity(64),
                items: Vec::new(),
            }]);
        }
        assert_eq!(spare.len(), SpareBuffers::<()>::MAX);
        spare.trim();
        assert_eq!(spare.len(), SpareBuffers::<()>::MAX / 2);
        for _ in 0..10 {
            spare.trim();
        }
        assert!(spare.is_empty());
    }
}
