//! The ring mesh: one bounded lock-free SPSC ring per ordered pair of shards.
//!
//! Concurrency contract:
//! - Ring (A→B) has exactly one producer, shard A, and one consumer, shard B.
//!   Items are delivered in the order A pushed them: that FIFO is what every
//!   cross-shard ordering guarantee of the broker is built on.
//! - Items are *batches*: the producer stages work per destination and pushes
//!   one item per unit of work, so the cost of the ring (a compare-and-swap,
//!   plus an eventfd write when B is parked) is paid per batch, not per message.
//! - When a ring is full the producer never blocks and never drops: the item
//!   goes to a per-destination FIFO staging queue ([`RingOutbox`]), a drainer
//!   task moves it into the ring as space frees up, and the owner of the
//!   outbox watches [`RingOutbox::staged`] to stop reading client sockets until
//!   the backlog drains (TCP then pushes back on publishers).
//!
//! The rings are glommio `shared_channel`s: a cache-line-separated SPSC queue
//! that glommio's reactor polls on every loop turn.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::{GlommioError, ResourceType};

use crate::sync::WaitList;

/// Builds the mesh before the shards start; hand one [`MeshPorts`] to each shard.
pub struct RingMesh;

impl RingMesh {
    /// `capacity` is in items (batches) per ring.
    pub fn build<M: Send + 'static>(shard_count: usize, capacity: usize) -> Vec<MeshPorts<M>> {
        let all_registered = Arc::new(Barrier::new(shard_count));
        let mut ports: Vec<MeshPorts<M>> = (0..shard_count)
            .map(|id| MeshPorts {
                id,
                all_registered: all_registered.clone(),
                senders: (0..shard_count).map(|_| None).collect(),
                receivers: (0..shard_count).map(|_| None).collect(),
            })
            .collect();
        for src in 0..shard_count {
            for dst in 0..shard_count {
                if src == dst {
                    continue;
                }
                let (tx, rx) = shared_channel::new_bounded(capacity);
                let placed = Arc::new(AtomicU64::new(0));
                ports[src].senders[dst] = Some((tx, placed.clone()));
                ports[dst].receivers[src] = Some((rx, placed));
            }
        }
        ports
    }
}

/// One shard's unconnected ends of the mesh. `Send`: move it into the shard's
/// thread, then call [`MeshPorts::connect`] there.
pub struct MeshPorts<M: Send + 'static> {
    id: usize,
    /// Passed by every shard once all its ring ends are registered.
    all_registered: Arc<Barrier>,
    senders: Vec<Option<(SharedSender<M>, Arc<AtomicU64>)>>,
    receivers: Vec<Option<(SharedReceiver<M>, Arc<AtomicU64>)>>,
}

impl<M: Send + 'static> MeshPorts<M> {
    pub fn shard_id(&self) -> usize {
        self.id
    }

    /// Connects every ring end of this shard.
    ///
    /// A glommio connect registers this end, then waits for the peer's. That
    /// wait is not a wake-up source for a parked executor: we saw one shard
    /// park with its connect pending while its peer spun forever waiting for
    /// it. So each shard first registers all its ends (the first poll of
    /// each connect does that), then waits at a process-wide barrier until
    /// every shard has done the same; after it, every connect completes on
    /// its next poll and nobody parks in between. Blocking the thread at the
    /// barrier is fine: it happens once, at start-up, before any client.
    /// `pressure` is notified whenever a staged backlog shrinks.
    pub async fn connect(self, pressure: Rc<WaitList>) -> ConnectedMesh<M> {
        let count = self.senders.len();
        type Pending<T> = (usize, Connecting<T>, Arc<AtomicU64>);
        let mut senders: Vec<Pending<ConnectedSender<M>>> = Vec::new();
        for (dst, end) in self.senders.into_iter().enumerate() {
            if let Some((tx, placed)) = end {
                let connecting = Connecting::start(Box::pin(tx.connect())).await;
                senders.push((dst, connecting, placed));
            }
        }
        let mut receivers: Vec<Pending<ConnectedReceiver<M>>> = Vec::new();
        for (src, end) in self.receivers.into_iter().enumerate() {
            if let Some((rx, placed)) = end {
                let connecting = Connecting::start(Box::pin(rx.connect())).await;
                receivers.push((src, connecting, placed));
            }
        }
        self.all_registered.wait();
        let mut outboxes: Vec<Option<RingOutbox<M>>> = (0..count).map(|_| None).collect();
        for (dst, connecting, placed) in senders {
            let sender = connecting.finish().await;
            outboxes[dst] = Some(RingOutbox::new(sender, placed, pressure.clone()));
        }
        let mut inbound: Vec<Option<RingReceiver<M>>> = (0..count).map(|_| None).collect();
        for (src, connecting, placed) in receivers {
            inbound[src] = Some(RingReceiver {
                receiver: connecting.finish().await,
                progress: Rc::new(RingProgress {
                    placed,
                    taken: Cell::new(0),
                }),
            });
        }
        ConnectedMesh {
            id: self.id,
            outboxes,
            inbound,
        }
    }
}

/// A ring end whose connect has been polled once (registering it).
enum Connecting<T> {
    Pending(Pin<Box<dyn Future<Output = T>>>),
    Done(T),
}

impl<T> Connecting<T> {
    async fn start(mut future: Pin<Box<dyn Future<Output = T>>>) -> Self {
        match futures_lite::future::poll_once(&mut future).await {
            Some(done) => Connecting::Done(done),
            None => Connecting::Pending(future),
        }
    }

    async fn finish(self) -> T {
        match self {
            Connecting::Pending(future) => future.await,
            Connecting::Done(done) => done,
        }
    }
}

/// One shard's connected ends of the mesh: `outboxes[d]` sends to shard `d`,
/// `inbound[s]` receives from shard `s` (`None` at this shard's own index).
pub struct ConnectedMesh<M: Send + 'static> {
    pub id: usize,
    pub outboxes: Vec<Option<RingOutbox<M>>>,
    pub inbound: Vec<Option<RingReceiver<M>>>,
}

/// The consumer end of one ring.
pub struct RingReceiver<M: Send + 'static> {
    receiver: ConnectedReceiver<M>,
    progress: Rc<RingProgress>,
}

impl<M: Send + 'static> RingReceiver<M> {
    /// The next batch, or `None` once the producing shard has gone away.
    pub async fn recv(&self) -> Option<M> {
        let item = self.receiver.recv().await;
        if item.is_some() {
            self.progress.taken.set(self.progress.taken.get() + 1);
        }
        item
    }

    /// How far this ring has been consumed, for the consumer's other tasks.
    pub fn progress(&self) -> Rc<RingProgress> {
        self.progress.clone()
    }
}

/// Items placed into one ring by its producer and taken out by its consumer.
///
/// Lets a consumer shard ask "has everything the producer put in the ring
/// *up to now* been taken?" without popping: `placed` is written (Release)
/// by the producer right after an item enters the ring, `taken` counts the
/// items the consumer's `recv` returned. The broker uses it to apply every
/// batch that was already in a ring before it acts on a client's bytes: a
/// SUB that reached the ring before a PUB was read on another shard is
/// applied first, as with nats-server's single subscription list.
pub struct RingProgress {
    placed: Arc<AtomicU64>,
    taken: Cell<u64>,
}

impl RingProgress {
    /// Items in the ring now: the count `taken` must reach to have seen them.
    pub fn placed(&self) -> u64 {
        self.placed.load(Ordering::Acquire)
    }

    pub fn taken(&self) -> u64 {
        self.taken.get()
    }
}

/// The producer end of one ring plus its FIFO staging queue.
pub struct RingOutbox<M: Send + 'static> {
    inner: Rc<OutboxInner<M>>,
}

struct OutboxInner<M: Send + 'static> {
    sender: ConnectedSender<M>,
    /// Items placed into the ring so far (see [`RingProgress`]); only this
    /// shard writes it.
    placed: Arc<AtomicU64>,
    /// Items waiting for ring space, oldest first. While it is non-empty (or
    /// the drainer holds an item) new items must queue behind it: sending
    /// directly would overtake them and break per-pair FIFO order.
    staged: RefCell<VecDeque<M>>,
    draining: Cell<bool>,
    /// Items the drainer has popped but not yet placed in the ring.
    in_flight: Cell<usize>,
    pressure: Rc<WaitList>,
    /// How many times a push found the ring full (exposed in stats).
    stalls: Cell<u64>,
    /// Items lost because the consuming shard is gone (shutdown only).
    dropped: Cell<u64>,
}

impl<M: Send + 'static> RingOutbox<M> {
    fn new(sender: ConnectedSender<M>, placed: Arc<AtomicU64>, pressure: Rc<WaitList>) -> Self {
        RingOutbox {
            inner: Rc::new(OutboxInner {
                sender,
                placed,
                staged: RefCell::new(VecDeque::new()),
                draining: Cell::new(false),
                in_flight: Cell::new(0),
                pressure,
                stalls: Cell::new(0),
                dropped: Cell::new(0),
            }),
        }
    }

    /// Queues `item` for the peer, in order with everything pushed before.
    /// Never blocks; never drops while the peer is alive.
    pub fn push(&self, item: M) {
        let inner = &self.inner;
        if !inner.draining.get() {
            match inner.sender.try_send(item) {
                Ok(()) => {
                    inner.count_placed();
                    return;
                }
                Err(GlommioError::WouldBlock(ResourceType::Channel(item))) => {
                    inner.stalls.set(inner.stalls.get() + 1);
                    inner.staged.borrow_mut().push_back(item);
                }
                Err(_) => {
                    inner.dropped.set(inner.dropped.get() + 1);
                    return;
                }
            }
            inner.draining.set(true);
            glommio::spawn_local(drain(self.inner.clone())).detach();
        } else {
            inner.staged.borrow_mut().push_back(item);
        }
    }

    /// Items waiting for ring space.
    pub fn staged(&self) -> usize {
        self.inner.staged.borrow().len() + self.inner.in_flight.get()
    }

    pub fn stalls(&self) -> u64 {
        self.inner.stalls.get()
    }

    /// Items placed into the ring so far (staged ones count once they are
    /// in it). Read by this shard, the only writer: no shared counter added.
    pub fn placed(&self) -> u64 {
        self.inner.placed.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.inner.dropped.get()
    }
}

impl<M: Send + 'static> OutboxInner<M> {
    fn count_placed(&self) {
        // Single writer: a plain store keeps the fast path free of a locked
        // read-modify-write.
        let placed = self.placed.load(Ordering::Relaxed) + 1;
        self.placed.store(placed, Ordering::Release);
    }
}

async fn drain<M: Send + 'static>(inner: Rc<OutboxInner<M>>) {
    loop {
        let next = inner.staged.borrow_mut().pop_front();
        let Some(item) = next else {
            break;
        };
        inner.in_flight.set(1);
        if inner.sender.send(item).await.is_ok() {
            inner.count_placed();
        } else {
            inner.dropped.set(inner.dropped.get() + 1);
        }
        inner.in_flight.set(0);
        inner.pressure.notify_all();
    }
    inner.draining.set(false);
    inner.pressure.notify_all();
}
