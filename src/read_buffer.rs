//! A connection's read buffer: bytes from the socket, parsed in place.
//!
//! It starts small (most clients are quiet) and doubles up to
//! [`MAX_READ_CHUNK`] while reads keep filling it, like nats-server's
//! adaptive buffer; a payload bigger than that is made to fit in one piece so
//! the parser can hand it out as one slice.

const INITIAL_CAPACITY: usize = 4 * 1024;
/// Largest read we ask the kernel for in one call.
pub const MAX_READ_CHUNK: usize = 64 * 1024;

pub struct ReadBuffer {
    /// Always fully initialised; `start..end` holds unparsed bytes.
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// The last read filled all the space it was offered.
    last_read_filled: bool,
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
        }
    }

    /// Unparsed bytes.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Give back what a big payload made us grow to.
            if self.bytes.len() > MAX_READ_CHUNK {
                self.bytes.truncate(MAX_READ_CHUNK);
                self.bytes.shrink_to_fit();
            }
        }
    }

    /// Space for the next read, after compacting or growing as needed.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.last_read_filled && self.bytes.len() < MAX_READ_CHUNK && self.start == 0 {
            self.bytes
                .resize((self.bytes.len() * 2).min(MAX_READ_CHUNK), 0);
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
        self.end += n;
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
}
