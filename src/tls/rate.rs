//! `tls { connection_rate_limit }`: at most that many new TLS connections
//! per second, server-wide (all shards share one counter), counted as
//! nats-server counts them: a one-second window that starts with the first
//! connection after the previous window ended.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

pub struct RateLimit {
    limit: u64,
    state: Mutex<Window>,
}

struct Window {
    count: u64,
    end: Option<Instant>,
    /// Refused in the window that just ended, not yet logged.
    refused: u64,
}

impl RateLimit {
    pub fn new(limit: u64) -> RateLimit {
        RateLimit {
            limit,
            state: Mutex::new(Window {
                count: 0,
                end: None,
                refused: 0,
            }),
        }
    }

    /// Whether one more connection may start its handshake now. A window
    /// that refused some is logged when the next one starts.
    pub fn allow(&self, now: Instant) -> bool {
        let mut window = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if window.end.is_none_or(|end| now > end) {
            if window.refused > 0 {
                crate::warn!(
                    "Rejected {} connections due to TLS rate limiting",
                    window.refused
                );
                window.refused = 0;
            }
            window.count = 0;
            window.end = Some(now + WINDOW);
        } else {
            window.count += 1;
        }
        let allowed = window.count < self.limit;
        if !allowed {
            window.refused += 1;
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_it_ends() {
        let rate = RateLimit::new(2);
        let t0 = Instant::now();
        assert!(rate.allow(t0));
        assert!(rate.allow(t0 + Duration::from_millis(10)));
        assert!(!rate.allow(t0 + Duration::from_millis(20)));
        assert!(rate.allow(t0 + Duration::from_millis(1001)), "a new window");
    }
}
