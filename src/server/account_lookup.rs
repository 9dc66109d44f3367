//! A login's slow check, with the URL resolver's lookup of an account the
//! server does not know yet (nats-server's `LookupAccount` during
//! authentication): the check runs on the blocking thread; when it is a
//! JWT login refused only because its account is unknown and a URL
//! resolver is configured, the account is fetched on a thread of its own
//! ([`crate::resolver::url`]; not the shard's one blocking thread, which a
//! silent account server would hold for 1.9 s, delaying every other
//! login of the shard), the main thread rebuilds the accounts
//! and hands them to every shard, this login waits (without blocking the
//! shard) until its own shard has taken them, and the check runs again
//! against them. Other connections of the shard are served throughout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use shards::{task, timer};

use super::ShardContext;
use crate::auth::{SlowCheck, SlowOutcome};
use crate::config::operator::ResolverConfig;
use percore_core::jwt::login::{missing_account, LOOKUP_ERROR};
use percore_core::jwt::Refusal;

/// How long a login waits for its shard to take a fetched account. Shards
/// take new accounts as soon as the main thread hands them over (their
/// admin doorbell; the housekeeping tick, 100 ms apart, without one), so
/// this is only reached if the main thread could not rebuild them.
const APPLY_WAIT: Duration = Duration::from_secs(2);
/// How often the waiting login looks at its shard's accounts.
const APPLY_POLL: Duration = Duration::from_millis(5);

/// At most this many fetch threads at once (server-wide): a flood of
/// logins naming unknown accounts against a silent account server must
/// not grow threads without bound.
const MAX_FETCH_THREADS: usize = 64;

static FETCH_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Runs `work` on a new thread and waits for it without blocking the
/// shard (the answer is polled, as the accounts are below).
async fn on_own_thread(
    work: impl FnOnce() -> Result<bool, String> + Send + 'static,
) -> Result<bool, String> {
    let busy = || Err("too many account fetches in progress".to_string());
    if FETCH_THREADS.fetch_add(1, Ordering::AcqRel) >= MAX_FETCH_THREADS {
        FETCH_THREADS.fetch_sub(1, Ordering::AcqRel);
        return busy();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("account-fetch".into())
        .spawn(move || {
            let _ = tx.send(work());
            FETCH_THREADS.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        FETCH_THREADS.fetch_sub(1, Ordering::AcqRel);
        return busy();
    }
    loop {
        match rx.try_recv() {
            Ok(result) => return result,
            Err(TryRecvError::Disconnected) => return Err("account fetch failed".into()),
            Err(TryRecvError::Empty) => timer::sleep(APPLY_POLL).await,
        }
    }
}

/// Runs `check` off the shard, with the URL resolver's lookup.
pub(super) async fn run_slow_check(ctx: &ShardContext, check: SlowCheck) -> SlowOutcome {
    let resolver = match (&ctx.shared.options.operator, &check) {
        (Some(operator), SlowCheck::UserJwt { .. }) => match &operator.resolver {
            Some(ResolverConfig::Url(resolver)) => Some(resolver.clone()),
            _ => None,
        },
        _ => None,
    };
    let Some(resolver) = resolver else {
        return task::spawn_blocking(move || crate::auth_checks::run(&check)).await;
    };
    let SlowCheck::UserJwt { request, mode } = check.clone() else {
        return SlowOutcome::Checked(false);
    };
    let outcome = task::spawn_blocking(move || crate::auth_checks::run(&check)).await;
    let account = match &outcome {
        SlowOutcome::Jwt(Err(refusal)) => match missing_account(refusal) {
            Some(account) => account.to_string(),
            None => return outcome,
        },
        _ => return outcome,
    };
    let (key, trusted) = (account.clone(), mode.trusted.clone());
    let known = mode.clone();
    let resolved = on_own_thread(move || {
        resolver.resolve(&key, &trusted, &|k| known.accounts.contains_key(k))
    })
    .await;
    match resolved {
        Ok(true) => {
            // Fetched now: the main thread rebuilds the accounts.
            let _ = ctx.shared.claims_changed.send(());
        }
        // Fetched before (by a login on another shard, or on this one
        // while this CONNECT was waiting): the rebuild is on its way.
        Ok(false) => {}
        Err(e) => {
            return SlowOutcome::Jwt(Err(Refusal {
                error_level: false,
                text: format!("{LOOKUP_ERROR}{e}"),
            }))
        }
    }
    let deadline = Instant::now() + APPLY_WAIT;
    let mode = loop {
        let current = ctx.broker.borrow().limits().auth.operator.clone();
        if let Some(current) = current.filter(|m| m.accounts.contains_key(&account)) {
            break current;
        }
        if Instant::now() >= deadline {
            return outcome;
        }
        timer::sleep(APPLY_POLL).await;
    };
    let check = SlowCheck::UserJwt { request, mode };
    task::spawn_blocking(move || crate::auth_checks::run(&check)).await
}
