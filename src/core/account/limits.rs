//! Per-account limits (`accounts { A: { limits { ... } } }`), as
//! nats-server applies them to configured accounts: `max_connections`
//! counts the account's clients across the whole server; `max_subscriptions`
//! and `max_payload` bound each of its connections (the smaller of the
//! account's and the server's limit wins).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::ids::AccountId;

/// `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_connections: Option<u64>,
    pub max_subscriptions: Option<u64>,
    pub max_payload: Option<u64>,
}

/// Accounts whose connections are counted: ids below this (a server would
/// need this many distinct account names over its life to pass it; ids of
/// accounts a reload adds are never reused, see `AccountTable`).
const COUNTED_ACCOUNTS: usize = 1 << 16;

/// Authenticated client connections per account, server-wide.
///
/// Concurrency contract: one per server, shared by every shard (an `Arc` in
/// each shard's `ShardLimits`, the same one across reloads). It is touched
/// when a client authenticates into an account and when that client goes,
/// never per message. Relaxed atomics suffice: a count is only compared
/// with a limit and never orders other memory; two shards admitting at the
/// same moment cannot both pass the limit, because each first reserves its
/// place with one `fetch_add` and gives it back if that went over.
#[derive(Debug)]
pub struct ActiveConnections {
    counts: Box<[AtomicU32]>,
}

impl Default for ActiveConnections {
    fn default() -> Self {
        ActiveConnections {
            counts: (0..COUNTED_ACCOUNTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

/// One counter is equal only to itself (shards compare their settings
/// after a reload; this one never changes).
impl PartialEq for ActiveConnections {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl ActiveConnections {
    /// Counts one more connection in `account`, unless that would pass
    /// `max`; false then (and nothing is counted).
    pub fn try_join(&self, account: AccountId, max: Option<u64>) -> bool {
        let Some(count) = self.counts.get(account.0 as usize) else {
            return true;
        };
        let before = count.fetch_add(1, Ordering::Relaxed);
        if max.is_some_and(|max| u64::from(before) >= max) {
            count.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A connection counted by [`ActiveConnections::try_join`] went.
    pub fn leave(&self, account: AccountId) {
        if let Some(count) = self.counts.get(account.0 as usize) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Gives up one place in `account` if it holds more than `max`; true
    /// if it did. A compare-and-swap, so shards cutting connections over a
    /// lowered limit at the same moment cut exactly the excess between
    /// them (checking [`ActiveConnections::count`] and then leaving let
    /// two shards both see one too many and both cut).
    pub fn try_leave_over(&self, account: AccountId, max: u64) -> bool {
        let Some(count) = self.counts.get(account.0 as usize) else {
            return false;
        };
        count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (u64::from(now) > max).then(|| now - 1)
            })
            .is_ok()
    }

    pub fn count(&self, account: AccountId) -> u64 {
        self.counts
            .get(account.0 as usize)
            .map_or(0, |c| u64::from(c.load(Ordering::Relaxed)))
    }
}

/// The smaller of two limits where `None` means none.
pub fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The smaller of two limits where 0 or `None` means none.
pub fn tighter(server: usize, account: Option<u64>) -> Option<u64> {
    let server = (server > 0).then_some(server as u64);
    match (server, account) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stop_at_the_limit_and_leaves_free_a_place() {
        let active = ActiveConnections::default();
        let a = AccountId(3);
        assert!(active.try_join(a, Some(2)));
        assert!(active.try_join(a, Some(2)));
        assert!(!active.try_join(a, Some(2)));
        assert_eq!(active.count(a), 2);
        active.leave(a);
        assert!(active.try_join(a, Some(2)));
        assert!(active.try_join(AccountId(4), None));
        assert!(active.try_join(AccountId(u32::MAX), Some(0)), "not counted");
    }

    #[test]
    fn threads_cutting_over_a_lowered_limit_cut_exactly_the_excess() {
        let active = std::sync::Arc::new(ActiveConnections::default());
        let a = AccountId(5);
        for _ in 0..1000 {
            assert!(active.try_join(a, None));
        }
        let cut: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let active = &active;
                    scope.spawn(move || (0..1000).filter(|_| active.try_leave_over(a, 600)).count())
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        assert_eq!((cut, active.count(a)), (400, 600));
        assert!(
            !active.try_leave_over(AccountId(u32::MAX), 0),
            "not counted"
        );
    }

    #[test]
    fn the_tighter_limit_wins() {
        assert_eq!(tighter(0, None), None);
        assert_eq!(tighter(10, None), Some(10));
        assert_eq!(tighter(0, Some(5)), Some(5));
        assert_eq!(tighter(10, Some(5)), Some(5));
        assert_eq!(tighter(3, Some(5)), Some(3));
    }
}
