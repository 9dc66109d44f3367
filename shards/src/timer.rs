//! Timers on the current shard.

use std::time::Duration;

/// Sleeps for `duration` without blocking the shard.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await
}
