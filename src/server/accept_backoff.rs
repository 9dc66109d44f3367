//! How long an accept loop waits after a failed `accept`, as nats-server's
//! `acceptError` does (server.go): a temporary error (out of descriptors,
//! a connection aborted before it was taken) waits 10 ms, doubled after
//! each failure in a row up to 1 s, and the first success starts again at
//! 10 ms. The pending connections stay in the kernel's backlog meanwhile
//! and are taken once descriptors free up.

use std::io;
use std::time::Duration;

/// The first wait after a failed accept (nats-server's ACCEPT_MIN_SLEEP).
pub const MIN_DELAY: Duration = Duration::from_millis(10);
/// The longest wait (nats-server's ACCEPT_MAX_SLEEP).
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// The wait of one accept loop. Owned by that loop's task; not shared.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { next: MIN_DELAY }
    }
}

impl AcceptBackoff {
    /// An accept succeeded: the next failure waits the minimum again.
    pub fn succeeded(&mut self) {
        self.next = MIN_DELAY;
    }

    /// An accept failed with `error`: the ERR line to log (nats-server's
    /// words, with `listener` as `Client` or `Route`) and how long to wait
    /// before the next accept.
    ///
    /// nats-server retries a non-temporary error at once; here it waits
    /// too (without doubling), so that no error can make the loop spin.
    pub fn failed(&mut self, listener: &str, error: &io::Error) -> (String, Duration) {
        if is_temporary(error) {
            let delay = self.next;
            self.next = (self.next * 2).min(MAX_DELAY);
            let line = format!(
                "Temporary {listener} Accept Error({error}), sleeping {}ms",
                delay.as_millis()
            );
            (line, delay)
        } else {
            (format!("{listener} Accept error: {error}"), MIN_DELAY)
        }
    }
}

/// Go's `Temporary()` for an accept error: out of descriptors, interrupted,
/// would block or timed out, or a connection reset or aborted before it was
/// taken.
fn is_temporary(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::EINTR
                | libc::EAGAIN
                | libc::ETIMEDOUT
                | libc::ECONNRESET
                | libc::ECONNABORTED
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_10ms_to_1s_and_resets_on_success() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let delays: Vec<u128> = (0..9)
            .map(|_| backoff.failed("Client", &emfile).1.as_millis())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        let (line, delay) = backoff.failed("Client", &emfile);
        assert_eq!(delay, MIN_DELAY);
        assert!(
            line.starts_with("Temporary Client Accept Error(")
                && line.ends_with("), sleeping 10ms"),
            "{line}"
        );
    }

    #[test]
    fn other_errors_wait_the_minimum_without_doubling() {
        let mut backoff = AcceptBackoff::default();
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        for _ in 0..3 {
            let (line, delay) = backoff.failed("Client", &einval);
            assert_eq!(delay, MIN_DELAY);
            assert!(line.starts_with("Client Accept error: "), "{line}");
        }
    }
}
