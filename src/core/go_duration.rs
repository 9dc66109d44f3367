//! Go's `time.Duration.String()` forms, for log lines and monitoring
//! output that nats-server writes with `%v` of a duration.

use std::fmt::Write as _;
use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// `value / unit` with up to `digits` decimals, trailing zeros dropped.
fn with_fraction(value: u128, unit: u128, digits: usize) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `420µs` (U+00B5),
/// `2.576779ms`, `1.5s`, `1m30s`, `1h0m0s`.
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", with_fraction(nanos, 1_000, 3));
    }
    if nanos < NANOS_PER_SEC {
        return format!("{}ms", with_fraction(nanos, 1_000_000, 6));
    }
    let secs = nanos / NANOS_PER_SEC;
    let mut out = String::new();
    if secs >= 3_600 {
        let _ = write!(out, "{}h", secs / 3_600);
    }
    if secs >= 60 {
        let _ = write!(out, "{}m", secs / 60 % 60);
    }
    let in_minute = (secs % 60) * NANOS_PER_SEC + nanos % NANOS_PER_SEC;
    out.push_str(&with_fraction(in_minute, NANOS_PER_SEC, 9));
    out.push('s');
    out
}
