//! A connection's read buffer: bytes from the socket, parsed in place.
//!
//! It starts small (most clients are quiet) and doubles up to
//! [`MAX_READ_CHUNK`] while reads keep filling it, like nats-server's
//! adaptive buffer; a payload bigger than that is made to fit in one piece so
//! the parser can hand it out as one slice. When the load drops it halves
//! again after [`SHORT_READS_TO_SHRINK`] reads in a row that used less than
//! half of it, so a connection that was busy once does not keep 64 KiB.
//!
//! A connection whose ops are large (an average of [`LARGE_OP_BYTES`] or
//! more over its last unit of work, say a stream of 8 KiB messages) may grow
//! on to [`LARGE_OPS_READ_CHUNK`]: the kernel's costs per `recv` and per
//! `sendmsg` are then spread over 64 messages instead of 8, while the work
//! one read brings (ops to route, bytes to copy) stays near what a 64 KiB
//! read of small messages brings. Small ops keep the 64 KiB
//! cap, which bounds how long one publisher's read holds its shard.
//!
//! One read can add all its bytes to one subscriber's backlog before flow
//! control looks again (it stalls a publisher at half of max_pending and
//! cuts the subscriber at max_pending), so a read is also kept to a
//! sixteenth of max_pending ([`PENDING_PER_READ`]), the margin 64 KiB reads
//! always had with a 1 MB max_pending: with `max_pending: 1MB` reads stay at
//! 64 KiB; the default 64 MB allows the full 512 KiB.

/// nats-server's `startBufSize`. Every idle connection holds this much;
/// at 4 KiB it was the largest part of a connection's memory (7.3 KB in
/// all, `benches/rss.sh`), and a busy connection doubles it back up within
/// a few reads.
const INITIAL_CAPACITY: usize = 512;
/// Reads in a row that used less than half the buffer before it halves.
const SHORT_READS_TO_SHRINK: u32 = 2;
/// Largest read we ask the kernel for in one call while ops are small.
pub const MAX_READ_CHUNK: usize = 64 * 1024;
/// Largest read while ops are large. pubsub 8 KiB, one shard, 2026-12-07:
/// system calls per message 0.24 with 64 KiB reads, 0.10 with 256 KiB,
/// 0.07 with 512 KiB; server CPU per message 0.845x of the 64 KiB cap's
/// (`benches/compare.sh`, 8 rounds). 512 KiB holds 64 such messages,
/// about 0.3 ms of the shard's time, near what a 64 KiB read of 16-byte
/// messages takes (~1 800 of them).
const LARGE_OPS_READ_CHUNK: usize = 512 * 1024;
/// Average op size from which a connection's ops count as large.
const LARGE_OP_BYTES: usize = 4096;
/// A read holds at most max_pending / this many bytes (module notes).
const PENDING_PER_READ: usize = 16;

pub struct ReadBuffer {
    /// Always fully initialised; `start..end` holds unparsed bytes.
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// The last read filled all the space it was offered.
    last_read_filled: bool,
    /// Consecutive reads that used less than half the buffer.
    short_reads: u32,
    /// Bytes parsed since the last [`ReadBuffer::note_ops`].
    parsed_since_note: usize,
    /// The last unit of work's ops averaged [`LARGE_OP_BYTES`] or more.
    large_ops: bool,
    /// The cap while ops are large: [`LARGE_OPS_READ_CHUNK`], or less with
    /// a small max_pending.
    large_ops_cap: usize,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadBuffer {
    pub fn new() -> ReadBuffer {
        ReadBuffer {
            bytes: vec![0; INITIAL_CAPACITY],
            start: 0,
            end: 0,
            last_read_filled: false,
            short_reads: 0,
            parsed_since_note: 0,
            large_ops: false,
            large_ops_cap: LARGE_OPS_READ_CHUNK,
        }
    }

    /// The most one read may ask for: see the module's notes.
    fn read_cap(&self) -> usize {
        if self.large_ops {
            self.large_ops_cap
        } else {
            MAX_READ_CHUNK
        }
    }

    /// Tells the buffer how many whole ops the bytes consumed since the
    /// last call held (once per unit of work), and the server's
    /// max_pending as it is now (a reload may change it). With no whole
    /// op, a large one is still arriving and the verdict stays as it was.
    pub fn note_ops(&mut self, ops: u32, max_pending: usize) {
        self.large_ops_cap =
            (max_pending / PENDING_PER_READ).clamp(MAX_READ_CHUNK, LARGE_OPS_READ_CHUNK);
        let parsed = std::mem::take(&mut self.parsed_since_note);
        if ops > 0 {
            self.large_ops = parsed / ops as usize >= LARGE_OP_BYTES;
        }
    }

    /// Unparsed bytes.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start += n;
        self.parsed_since_note += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Give back what a big payload or a busy spell made us grow to.
            let cap = self.read_cap();
            let keep = if self.bytes.len() > cap {
                cap
            } else if self.short_reads >= SHORT_READS_TO_SHRINK {
                (self.bytes.len() / 2).max(INITIAL_CAPACITY)
            } else {
                self.bytes.len()
            };
            if keep < self.bytes.len() {
                self.bytes.truncate(keep);
                self.bytes.shrink_to_fit();
                self.short_reads = 0;
            }
        }
    }

    /// Space for the next read, after compacting or growing as needed.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        let cap = self.read_cap();
        if self.last_read_filled && self.bytes.len() < cap {
            // The part of an op the last read ended in moves to the front
            // first: growing only from an empty front kept a streaming
            // publisher, whose reads nearly always end mid-message, at its
            // first size (at 512 bytes, pubsub with 16-byte messages ran at
            // 0.74x).
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            self.bytes.resize((self.bytes.len() * 2).min(cap), 0);
        }
        if self.end == self.bytes.len() {
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = (self.bytes.len() * 2).max(INITIAL_CAPACITY);
                self.bytes.resize(grown, 0);
            }
        }
        &mut self.bytes[self.end..]
    }

    pub fn filled_by(&mut self, n: usize) {
        self.last_read_filled = self.end + n == self.bytes.len();
        if n < self.bytes.len() / 2 {
            self.short_reads += 1;
        } else {
            self.short_reads = 0;
        }
        self.end += n;
    }

    /// Makes room toward an op of `total` bytes starting at the unparsed
    /// data, in proportion to what has arrived: at most twice the unparsed
    /// bytes, never `total` at once. `total` is what the peer announced
    /// (`PUB foo 1048576`); memory must follow the bytes it sent instead, or
    /// a thousand connections that announce max_payload and stop cost a
    /// thousand max_payloads. Reads that fill the buffer double it (see
    /// [`ReadBuffer::spare_mut`]), so a big payload still ends in one piece
    /// after O(log n) growths.
    pub fn reserve_toward(&mut self, total: usize) {
        let arrived = self.end - self.start;
        self.reserve_total(total.min(arrived.saturating_mul(2)));
    }

    /// Makes room for an op of `total` bytes starting at the unparsed data.
    pub fn reserve_total(&mut self, total: usize) {
        if self.bytes.len() - self.start >= total {
            return;
        }
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.bytes.len() < total {
            self.bytes.resize(total, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nats-server's default max_pending (64 MB).
    const DEFAULT_MAX_PENDING: usize = 64 * 1024 * 1024;

    #[test]
    fn keeps_unparsed_bytes_across_compaction_and_growth() {
        let mut buffer = ReadBuffer::new();
        let spare = buffer.spare_mut();
        let n = spare.len();
        spare.fill(b'x');
        buffer.filled_by(n);
        buffer.consume(n - 3);
        assert_eq!(buffer.data(), b"xxx");
        buffer.reserve_total(100_000);
        assert_eq!(buffer.data(), b"xxx");
        assert!(buffer.spare_mut().len() >= 100_000 - 3);
    }

    /// A peer that announces a big payload and sends a few bytes of it gets
    /// no more than twice what it sent (the buffer's first 512 bytes aside);
    /// sending it all makes it fit in one piece.
    #[test]
    fn an_announced_payload_grows_the_buffer_only_as_bytes_arrive() {
        let announced = 1024 * 1024 + 64;
        let mut buffer = ReadBuffer::new();
        let line = b"PUB foo 1048576\r\n";
        buffer.spare_mut()[..line.len()].copy_from_slice(line);
        buffer.filled_by(line.len());
        buffer.reserve_toward(announced);
        assert_eq!(buffer.bytes.len(), INITIAL_CAPACITY);
        let mut received = line.len();
        while received < announced {
            let spare = buffer.spare_mut();
            let n = spare.len().min(announced - received);
            buffer.filled_by(n);
            received += n;
            buffer.reserve_toward(announced);
            assert!(
                buffer.bytes.len() <= (2 * received).max(MAX_READ_CHUNK),
                "{} bytes held for {received} received",
                buffer.bytes.len()
            );
        }
        assert_eq!(buffer.data().len(), announced);
    }

    /// Fills whatever space the buffer offers, parses it all, and returns
    /// the capacity the read was offered.
    fn full_read(buffer: &mut ReadBuffer) -> usize {
        let spare = buffer.spare_mut();
        let n = spare.len();
        buffer.filled_by(n);
        buffer.consume(n);
        n
    }

    fn short_read(buffer: &mut ReadBuffer, n: usize) {
        buffer.spare_mut();
        buffer.filled_by(n);
        buffer.consume(n);
    }

    #[test]
    fn grows_while_reads_fill_it_and_shrinks_when_they_stop() {
        let mut buffer = ReadBuffer::new();
        let mut offered = Vec::new();
        for _ in 0..9 {
            offered.push(full_read(&mut buffer));
        }
        assert_eq!(
            offered,
            [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 65536]
        );
        // One short read is not a trend.
        short_read(&mut buffer, 100);
        assert_eq!(buffer.bytes.len(), MAX_READ_CHUNK);
        let mut sizes = Vec::new();
        for _ in 0..14 {
            short_read(&mut buffer, 100);
            sizes.push(buffer.bytes.len());
        }
        assert_eq!(
            sizes,
            [
                32768, 32768, 16384, 16384, 8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512,
                512
            ]
        );
    }

    /// A streaming publisher's reads fill the buffer and end inside an op:
    /// the buffer must still grow (it stayed at its first size when growth
    /// needed an empty front).
    #[test]
    fn grows_while_full_reads_end_mid_op() {
        let mut buffer = ReadBuffer::new();
        let mut offered = Vec::new();
        for _ in 0..9 {
            let spare = buffer.spare_mut().len();
            offered.push(buffer.bytes.len());
            buffer.filled_by(spare);
            // Everything parsed but the first 3 bytes of the next op.
            let whole = buffer.data().len() - 3;
            buffer.consume(whole);
        }
        assert_eq!(
            offered,
            [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 65536]
        );
    }

    /// Reads of 8 KiB messages grow on to 512 KiB; once the ops turn
    /// small, the buffer is back at 64 KiB the next time it empties.
    #[test]
    fn large_ops_grow_reads_past_64_kib_and_small_ones_bring_them_back() {
        let mut buffer = ReadBuffer::new();
        let mut offered = Vec::new();
        for _ in 0..12 {
            let n = full_read(&mut buffer);
            offered.push(n);
            buffer.note_ops((n / 8192).max(1) as u32, DEFAULT_MAX_PENDING);
        }
        assert_eq!(
            offered,
            [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 524288]
        );
        // A unit of work with no whole op (a large one still arriving)
        // changes nothing.
        buffer.note_ops(0, DEFAULT_MAX_PENDING);
        assert_eq!(full_read(&mut buffer), LARGE_OPS_READ_CHUNK);
        let mut offered = Vec::new();
        for _ in 0..3 {
            let n = full_read(&mut buffer);
            offered.push(n);
            buffer.note_ops((n / 100) as u32, DEFAULT_MAX_PENDING);
        }
        assert_eq!(offered, [524288, 524288, 65536]);
    }

    /// A small max_pending keeps reads of large ops to a sixteenth of it
    /// (and never under 64 KiB): one read must not carry a subscriber from
    /// the stall threshold (half of max_pending) past max_pending.
    #[test]
    fn a_small_max_pending_keeps_large_reads_small() {
        for (max_pending, cap) in [
            (1 << 20, MAX_READ_CHUNK),
            (4 << 20, 256 * 1024),
            (512 * 1024, MAX_READ_CHUNK),
            (DEFAULT_MAX_PENDING, LARGE_OPS_READ_CHUNK),
        ] {
            let mut buffer = ReadBuffer::new();
            for _ in 0..20 {
                let n = full_read(&mut buffer);
                buffer.note_ops((n / 8192).max(1) as u32, max_pending);
            }
            assert_eq!(full_read(&mut buffer), cap, "max_pending {max_pending}");
        }
    }

    /// Small ops keep the 64 KiB cap however long reads keep filling it.
    #[test]
    fn small_ops_stay_at_64_kib() {
        let mut buffer = ReadBuffer::new();
        for _ in 0..20 {
            let n = full_read(&mut buffer);
            buffer.note_ops((n / 4095) as u32 + 1, DEFAULT_MAX_PENDING);
        }
        assert_eq!(full_read(&mut buffer), MAX_READ_CHUNK);
    }

    #[test]
    fn a_big_payload_is_given_back_once_parsed() {
        let mut buffer = ReadBuffer::new();
        buffer.reserve_total(1 << 20);
        let n = buffer.spare_mut().len();
        buffer.filled_by(n);
        buffer.consume(n);
        assert_eq!(buffer.bytes.len(), MAX_READ_CHUNK);
    }
}
