//! A connection's bytes on their way to its socket: a queue of blocks.
//!
//! Frames are appended to the newest block, so a backlog of many megabytes
//! never moves in memory: appending never reallocates what is already
//! queued, and sending the front never shifts the rest (one growing `Vec`
//! copied the whole backlog on every doubling and every partial send). The
//! socket takes up to [`MAX_SEND_BLOCKS`] blocks with one vectored send.
//!
//! Blocks start small (most connections only ever get an INFO and some
//! PONGs) and double up to 2 KiB; a burst then goes to [`BLOCK_SIZE`]
//! blocks, like nats-server's 512 B / 4 KiB / 64 KiB outbound chunks, and a
//! frame larger than that gets a block of its own. Emptied 64 KiB blocks go
//! back to the shard's [`BlockPool`] for any of its connections to reuse:
//! freeing them instead made the allocator hand back fresh pages, and a
//! quarter of pubsub 8 KiB's throughput went to page faults.

use std::collections::VecDeque;
use std::io::IoSlice;

/// Largest block a burst grows to; bigger frames get a block of their own.
pub const BLOCK_SIZE: usize = 64 * 1024;
/// First block of a quiet connection's queue.
const FIRST_BLOCK_SIZE: usize = 512;
/// Largest block below [`BLOCK_SIZE`]; past it a queue takes full blocks.
const SMALL_BLOCK_MAX: usize = 2048;
/// Most blocks a shard's pool keeps (32 MiB).
const POOL_MAX_BLOCKS: usize = 512;
/// Blocks handed to one vectored send (1 MiB at most; far under IOV_MAX).
pub const MAX_SEND_BLOCKS: usize = 16;
/// Most emptied [`FIRST_BLOCK_SIZE`] blocks a shard's pool keeps (32 KiB).
/// A quiet connection's message allocated its 512-byte block and freed it
/// once sent: two of the four allocations left per request/reply round trip
/// (`perf stat -e probe_libc:malloc`, 2026-12-07).
const POOL_MAX_SMALL_BLOCKS: usize = 64;

/// Slices for one vectored send, without allocating.
pub struct SendSlices<'a> {
    slices: [IoSlice<'a>; MAX_SEND_BLOCKS],
    count: usize,
}

impl<'a> std::ops::Deref for SendSlices<'a> {
    type Target = [IoSlice<'a>];

    fn deref(&self) -> &Self::Target {
        &self.slices[..self.count]
    }
}

/// Emptied [`BLOCK_SIZE`] blocks of one shard, for its connections' queues.
///
/// Owned by the shard (no lock). It keeps what bursts need and gives back,
/// on every [`BlockPool::trim`], half of the blocks that sat unused since the
/// previous one, so an idle shard returns to its small footprint within a
/// second or two of housekeeping ticks.
#[derive(Default)]
pub struct BlockPool {
    free: Vec<Vec<u8>>,
    /// Fewest free blocks since the last trim: those were not needed.
    unused_since_trim: usize,
    /// Emptied first blocks of quiet connections' queues.
    small: Vec<Vec<u8>>,
}

impl BlockPool {
    fn take(&mut self, at_least: usize) -> Option<Vec<u8>> {
        if at_least > BLOCK_SIZE {
            return None;
        }
        let block = self.free.pop();
        self.unused_since_trim = self.unused_since_trim.min(self.free.len());
        block
    }

    fn give(&mut self, mut block: Vec<u8>) {
        if block.capacity() == BLOCK_SIZE && self.free.len() < POOL_MAX_BLOCKS {
            block.clear();
            self.free.push(block);
        } else if block.capacity() == FIRST_BLOCK_SIZE && self.small.len() < POOL_MAX_SMALL_BLOCKS {
            block.clear();
            self.small.push(block);
        }
    }

    /// Takes over the blocks of a pool that served a writer task.
    pub fn absorb(&mut self, other: BlockPool) {
        for block in other.free.into_iter().chain(other.small) {
            self.give(block);
        }
    }

    /// Frees half of the blocks nobody took since the last call, and half
    /// of the small ones.
    pub fn trim(&mut self) {
        self.small.truncate(self.small.len() / 2);
        let release = self.unused_since_trim.div_ceil(2);
        self.free
            .truncate(self.free.len() - release.min(self.free.len()));
        self.free.shrink_to(self.free.len().max(16));
        self.unused_since_trim = self.free.len();
    }

    /// Blocks kept.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

#[derive(Default)]
pub struct OutboundQueue {
    /// Front = oldest; a block leaves as soon as it is fully sent.
    blocks: VecDeque<Vec<u8>>,
    /// Bytes of the front block already sent.
    front_sent: usize,
    /// Unsent bytes over all blocks.
    len: usize,
    /// Bytes appended since the queue was last empty, and that figure for
    /// the previous burst: the next burst's first block is sized from it, so
    /// a busy connection starts with a full (pooled) block instead of
    /// allocating its way up from 512 bytes every time it drains.
    appended: usize,
    last_burst: usize,
}

impl OutboundQueue {
    /// Unsent bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Blocks holding unsent bytes.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Appends one frame of at most `max_len` bytes, written by `write`.
    pub fn append(
        &mut self,
        pool: &mut BlockPool,
        max_len: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let fits = self
            .blocks
            .back()
            .is_some_and(|b| b.capacity() - b.len() >= max_len);
        if !fits {
            let block = self.new_block(pool, max_len);
            self.blocks.push_back(block);
        }
        if let Some(block) = self.blocks.back_mut() {
            let before = block.len();
            write(block);
            let written = block.len() - before;
            self.len += written;
            self.appended += written;
        }
        // A frame that wrote nothing leaves an empty block at the back:
        // harmless, the next append or send skips it.
    }

    pub fn extend_from_slice(&mut self, pool: &mut BlockPool, bytes: &[u8]) {
        self.append(pool, bytes.len(), |block| block.extend_from_slice(bytes));
    }

    /// Twice the last block, or what the previous burst needed: a small
    /// block up to [`SMALL_BLOCK_MAX`], else a full one, from the pool when
    /// it has one. (Mid-sized blocks came and went through the allocator,
    /// which handed them back as fresh pages: 4 % of fan-out in page faults.)
    /// A frame bigger than 64 KiB gets a block of its own.
    fn new_block(&mut self, pool: &mut BlockPool, at_least: usize) -> Vec<u8> {
        let grown = match self.blocks.back() {
            Some(last) => last.capacity() * 2,
            None => self.last_burst.next_power_of_two(),
        };
        let wanted = if grown.max(at_least) <= SMALL_BLOCK_MAX {
            grown.max(FIRST_BLOCK_SIZE).max(at_least)
        } else {
            BLOCK_SIZE.max(at_least)
        };
        if wanted == BLOCK_SIZE {
            if let Some(block) = pool.take(at_least) {
                return block;
            }
        }
        if wanted == FIRST_BLOCK_SIZE {
            if let Some(block) = pool.small.pop() {
                return block;
            }
        }
        Vec::with_capacity(wanted)
    }

    /// The unsent bytes, front first, as at most [`MAX_SEND_BLOCKS`] slices
    /// for one vectored send.
    pub fn send_slices(&self) -> SendSlices<'_> {
        let mut slices = SendSlices {
            slices: [IoSlice::new(&[]); MAX_SEND_BLOCKS],
            count: 0,
        };
        for (i, block) in self.blocks.iter().take(MAX_SEND_BLOCKS).enumerate() {
            let start = if i == 0 { self.front_sent } else { 0 };
            if let Some(unsent) = block.get(start..) {
                if !unsent.is_empty() {
                    slices.slices[slices.count] = IoSlice::new(unsent);
                    slices.count += 1;
                }
            }
        }
        slices
    }

    /// The front block's unsent bytes (empty when nothing is queued).
    pub fn front(&self) -> &[u8] {
        self.blocks
            .front()
            .and_then(|b| b.get(self.front_sent..))
            .unwrap_or_default()
    }

    /// Drops the first `n` unsent bytes: the socket took them.
    pub fn consume(&mut self, pool: &mut BlockPool, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while let Some(front) = self.blocks.front() {
            let unsent = front.len() - self.front_sent;
            if n < unsent {
                self.front_sent += n;
                break;
            }
            // Fully sent (or an empty block a frame left unused).
            n -= unsent;
            self.front_sent = 0;
            if let Some(block) = self.blocks.pop_front() {
                pool.give(block);
            }
        }
        if self.len == 0 {
            self.burst_ended();
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self, pool: &mut BlockPool) {
        while let Some(block) = self.blocks.pop_front() {
            pool.give(block);
        }
        self.front_sent = 0;
        self.len = 0;
        self.burst_ended();
    }

    /// Moves everything queued into a new queue (the writer's), leaving this
    /// one empty.
    pub fn take(&mut self) -> OutboundQueue {
        let taken = OutboundQueue {
            blocks: std::mem::take(&mut self.blocks),
            front_sent: std::mem::take(&mut self.front_sent),
            len: std::mem::take(&mut self.len),
            appended: 0,
            last_burst: 0,
        };
        self.burst_ended();
        taken
    }

    fn burst_ended(&mut self) {
        self.last_burst = self.appended;
        self.appended = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsent(queue: &OutboundQueue) -> Vec<u8> {
        queue
            .send_slices()
            .iter()
            .flat_map(|s| s.to_vec())
            .collect()
    }

    #[test]
    fn bytes_come_out_in_order_across_blocks_and_partial_sends() {
        let mut pool = BlockPool::default();
        let mut queue = OutboundQueue::default();
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            let frame = format!("MSG s {i} 3\r\nabc\r\n");
            queue.extend_from_slice(&mut pool, frame.as_bytes());
            expected.extend_from_slice(frame.as_bytes());
        }
        assert_eq!(queue.len(), expected.len());
        let mut sent = Vec::new();
        // Odd-sized sends that end mid-block and mid-frame.
        while !queue.is_empty() {
            let chunk = unsent(&queue);
            let n = chunk.len().min(7777);
            sent.extend_from_slice(&chunk[..n]);
            queue.consume(&mut pool, n);
            assert_eq!(queue.len(), expected.len() - sent.len());
        }
        assert_eq!(sent, expected);
        assert!(queue.front().is_empty());
        assert!(!pool.is_empty(), "the full blocks went back to the pool");
    }

    #[test]
    fn blocks_grow_to_block_size_and_big_frames_get_their_own() {
        let mut pool = BlockPool::default();
        let mut queue = OutboundQueue::default();
        for _ in 0..300 {
            queue.extend_from_slice(&mut pool, &[b'x'; 1000]);
        }
        let capacities: Vec<usize> = queue.blocks.iter().map(|b| b.capacity()).collect();
        assert_eq!(
            capacities[0], 1000,
            "first frame is bigger than the first block"
        );
        assert_eq!(capacities[1..3], [2000, BLOCK_SIZE]);
        assert!(capacities[2..].iter().all(|&c| c == BLOCK_SIZE));
        queue.extend_from_slice(&mut pool, &vec![b'y'; 200_000]);
        assert_eq!(queue.blocks.back().map(|b| b.len()), Some(200_000));
        assert_eq!(queue.len(), 300 * 1000 + 200_000);
    }

    #[test]
    fn at_most_max_send_blocks_slices_and_the_front_alone() {
        let mut pool = BlockPool::default();
        let mut queue = OutboundQueue::default();
        for _ in 0..40 {
            queue.extend_from_slice(&mut pool, &[b'z'; BLOCK_SIZE]);
        }
        assert_eq!(queue.send_slices().len(), MAX_SEND_BLOCKS);
        queue.consume(&mut pool, 10);
        assert_eq!(queue.front().len(), BLOCK_SIZE - 10);
        assert_eq!(queue.send_slices()[0].len(), BLOCK_SIZE - 10);
    }

    #[test]
    fn pooled_blocks_are_reused_and_trimmed_when_idle() {
        let mut pool = BlockPool::default();
        let mut queue = OutboundQueue::default();
        queue.extend_from_slice(&mut pool, &[b'a'; 100]);
        queue.clear(&mut pool);
        assert!(pool.is_empty(), "small blocks are not pooled");
        for _ in 0..8 {
            queue.extend_from_slice(&mut pool, &[b'a'; BLOCK_SIZE]);
        }
        let mut taken = queue.take();
        assert!(queue.is_empty());
        taken.clear(&mut pool);
        assert_eq!(pool.len(), 8);
        // After a big burst the next one starts with a pooled 64 KiB block.
        queue.extend_from_slice(&mut pool, b"PONG\r\n");
        assert_eq!(queue.blocks.front().map(Vec::capacity), Some(BLOCK_SIZE));
        assert_eq!(pool.len(), 7);
        queue.clear(&mut pool);
        // After a small one, a small block again.
        queue.extend_from_slice(&mut pool, b"PONG\r\n");
        assert_eq!(
            queue.blocks.front().map(Vec::capacity),
            Some(FIRST_BLOCK_SIZE)
        );
        queue.clear(&mut pool);
        assert_eq!(pool.len(), 8);
        // Idle from here: each trim frees half of what was not taken.
        pool.trim();
        let mut sizes = Vec::new();
        for _ in 0..5 {
            pool.trim();
            sizes.push(pool.len());
        }
        assert_eq!(sizes, [4, 2, 1, 0, 0]);
    }

    /// A quiet connection's first block comes back to the pool once sent
    /// and serves the next message, its own or another connection's.
    #[test]
    fn first_blocks_are_reused_across_connections() {
        let mut pool = BlockPool::default();
        let mut a = OutboundQueue::default();
        let mut b = OutboundQueue::default();
        a.extend_from_slice(&mut pool, b"MSG a 1 2\r\nhi\r\n");
        let first = a.front().as_ptr();
        a.consume(&mut pool, a.len());
        assert_eq!(pool.small.len(), 1);
        b.extend_from_slice(&mut pool, b"MSG b 1 2\r\nho\r\n");
        assert_eq!(b.front().as_ptr(), first, "b took a's emptied block");
        assert_eq!(b.front(), b"MSG b 1 2\r\nho\r\n");
        assert!(pool.small.is_empty());
        b.clear(&mut pool);
        for _ in 0..POOL_MAX_SMALL_BLOCKS + 5 {
            pool.give(Vec::with_capacity(FIRST_BLOCK_SIZE));
        }
        assert_eq!(pool.small.len(), POOL_MAX_SMALL_BLOCKS);
        pool.trim();
        assert_eq!(pool.small.len(), POOL_MAX_SMALL_BLOCKS / 2);
    }

    #[test]
    fn the_pool_is_capped() {
        let mut pool = BlockPool::default();
        let mut queue = OutboundQueue::default();
        for _ in 0..POOL_MAX_BLOCKS + 10 {
            queue.extend_from_slice(&mut pool, &[b'c'; BLOCK_SIZE]);
        }
        queue.clear(&mut pool);
        assert_eq!(pool.len(), POOL_MAX_BLOCKS);
    }
}
