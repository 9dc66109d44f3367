//! Shard-local waiting: park tasks until some condition over shard state holds.
//!
//! Concurrency contract: a [`WaitList`] lives on one shard and is only touched
//! by tasks of that shard (it is `!Send`). Whoever changes the state a waiter
//! depends on calls [`WaitList::notify_all`]; waiters re-check their condition
//! when woken, so spurious wake-ups are harmless.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct WaitList {
    wakers: RefCell<Vec<Waker>>,
}

impl WaitList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes once `ready()` returns true. `ready` must not hold a borrow
    /// across calls (it is called once per wake-up).
    pub async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        poll_fn(|cx| {
            if ready() {
                Poll::Ready(())
            } else {
                let mut wakers = self.wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }

    /// Wakes every waiter so that it re-checks its condition.
    pub fn notify_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn has_waiters(&self) -> bool {
        !self.wakers.borrow().is_empty()
    }
}
