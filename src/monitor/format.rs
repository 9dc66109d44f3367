//! How nats-server writes times, durations and floats in its monitoring
//! JSON, reproduced byte for byte because dashboards and `nats-top` parse
//! them: Go's RFC 3339 with nanoseconds, nats-server's compact uptime,
//! Go's `time.Duration.String()`, and Go's float encoding (`2`, not `2.0`).

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use percore_core::calendar::civil;
pub use percore_core::calendar::rfc3339_nano;

/// The HTTP `Date` header form (IMF-fixdate): `Tue, 24 Nov 2026 06:49:09 GMT`.
pub fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(time);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[c.weekday as usize % 7],
        c.day,
        MONTHS[(c.month as usize + 11) % 12],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// nats-server's compact uptime: whole seconds, leading units only once
/// non-zero, 365-day years: `52s`, `23m29s`, `1h2m3s`, `2d1h0m5s`,
/// `1y2d3h4m5s`.
pub fn uptime(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    let days = hours / 24;
    let years = days / 365;
    let (s, m, h, d) = (secs % 60, mins % 60, hours % 24, days % 365);
    if years > 0 {
        format!("{years}y{d}d{h}h{m}m{s}s")
    } else if days > 0 {
        format!("{days}d{h}h{m}m{s}s")
    } else if hours > 0 {
        format!("{hours}h{m}m{s}s")
    } else if mins > 0 {
        format!("{mins}m{s}s")
    } else {
        format!("{secs}s")
    }
}

/// Go's `time.Duration.String()`; it lives in the core, whose log lines
/// need it too.
pub use percore_core::go_duration::go_duration;

/// A connection's RTT as nats-server's monitoring prints it (`getRTT`):
/// between 1 µs and 1 ms cut to whole microseconds (`410µs`, not
/// `410.531µs`), otherwise as measured.
pub fn go_rtt(rtt: Duration) -> String {
    let micro = Duration::from_micros(1);
    let shown = if rtt > micro && rtt < Duration::from_millis(1) {
        Duration::from_micros(rtt.as_micros() as u64)
    } else {
        rtt
    };
    go_duration(shown)
}

/// Elapsed time from `earlier` to `later`, zero if the clock went back.
pub fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or(Duration::ZERO)
}

/// Nanoseconds as Go's `time.Duration` marshals (an integer).
pub fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A float that serialises as Go's `encoding/json` does for whole values
/// (`2`, `0`) so the bytes match nats-server; other values keep serde's
/// shortest form, which agrees with Go's for the magnitudes we print.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoFloat(pub f64);

impl Serialize for GoFloat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        // 2^53: every whole float below it is an exact integer.
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
            serializer.serialize_i64(value as i64)
        } else if value.is_finite() {
            serializer.serialize_f64(value)
        } else {
            // JSON has no NaN or infinity; 0 keeps the field numeric.
            serializer.serialize_i64(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2026-11-23T00:33:11.368642249Z, the reference document's example.
        assert_eq!(
            rfc3339_nano(at(1_795_393_991, 368_642_249)),
            "2026-11-23T00:33:11.368642249Z"
        );
        // Trailing zeros of the fraction are trimmed, as Go's RFC3339Nano does.
        assert_eq!(
            rfc3339_nano(at(1_795_502_948, 970_515_090)),
            "2026-11-24T06:49:08.97051509Z"
        );
        assert_eq!(
            rfc3339_nano(at(1_795_502_948, 500_000_000)),
            "2026-11-24T06:49:08.5Z"
        );
        // Leap days: 2000 (divisible by 400) and 2024; 2100 is not leap.
        assert_eq!(rfc3339_nano(at(951_782_400, 0)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_nano(at(951_868_800, 0)), "2000-03-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(at(1_709_164_800, 1)),
            "2024-02-29T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nano(at(4_107_542_399, 0)), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_nano(at(4_107_542_400, 0)), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339_nano(at(1_735_689_599, 0)), "2024-12-31T23:59:59Z");
        // Before the epoch (Go's zero time is year 1).
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH - Duration::from_secs(62_135_596_800)),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH - Duration::from_nanos(1)),
            "1969-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn http_date_form() {
        assert_eq!(
            http_date(at(1_795_502_949, 0)),
            "Tue, 24 Nov 2026 06:49:09 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn uptime_forms() {
        assert_eq!(uptime(Duration::ZERO), "0s");
        assert_eq!(uptime(Duration::from_millis(999)), "0s");
        assert_eq!(uptime(Duration::from_secs(52)), "52s");
        assert_eq!(uptime(Duration::from_secs(23 * 60 + 29)), "23m29s");
        assert_eq!(uptime(Duration::from_secs(3_723)), "1h2m3s");
        assert_eq!(uptime(Duration::from_secs(2 * 86_400 + 3_605)), "2d1h0m5s");
        assert_eq!(
            uptime(Duration::from_secs(
                365 * 86_400 + 2 * 86_400 + 3 * 3_600 + 245
            )),
            "1y2d3h4m5s"
        );
        assert_eq!(uptime(Duration::from_secs(3_600)), "1h0m0s");
    }

    #[test]
    fn rtt_is_cut_to_microseconds_below_a_millisecond() {
        assert_eq!(go_rtt(Duration::from_nanos(189_972)), "189µs");
        assert_eq!(go_rtt(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_rtt(Duration::from_nanos(1_500_123)), "1.500123ms");
        assert_eq!(go_rtt(Duration::ZERO), "0s");
    }

    #[test]
    fn go_duration_forms() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_micros(420)), "420µs");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_nanos(2_576_779)), "2.576779ms");
        assert_eq!(go_duration(Duration::from_millis(2)), "2ms");
        assert_eq!(go_duration(Duration::from_millis(1_500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3_600)), "1h0m0s");
        assert_eq!(go_duration(Duration::new(3_723, 400_000_000)), "1h2m3.4s");
    }

    #[test]
    fn go_floats() {
        let json = |v: f64| serde_json::to_string(&GoFloat(v)).unwrap();
        assert_eq!(json(2.0), "2");
        assert_eq!(json(0.0), "0");
        assert_eq!(json(0.8), "0.8");
        assert_eq!(json(0.625), "0.625");
        assert_eq!(json(f64::NAN), "0");
    }
}
