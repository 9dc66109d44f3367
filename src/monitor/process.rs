//! `/varz` `mem` and `cpu`: this process's resident set size and CPU use,
//! read from `/proc` (the shards do not know them). Off Linux, or if `/proc`
//! cannot be read, both stay 0 rather than failing the request.

use std::time::Instant;

/// Resident set size in bytes: resident pages (2nd field of
/// `/proc/self/statm`) times the page size.
pub fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages.saturating_mul(u64::try_from(page_size).unwrap_or(0))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `(utime + stime, starttime)` in clock ticks from `/proc/self/stat`.
/// Fields are counted after the `)` closing the command name, which may
/// itself contain spaces or parentheses.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state); utime is field 14, stime 15,
    // starttime 22 (proc(5), 1-based).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    Some((utime.saturating_add(stime), start))
}

/// Seconds since boot (first field of `/proc/uptime`).
fn system_uptime_secs() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Remembers the previous `/varz` sample so `cpu` is the use since then,
/// as a percentage of one core (like `ps`'s %CPU, so > 100 on many cores).
#[derive(Debug, Default)]
pub struct CpuSampler {
    previous: Option<(Instant, u64)>,
}

impl CpuSampler {
    /// CPU percent since the previous call; on the first call, since the
    /// process started. Rounded to one decimal, as nats-server reports it.
    pub fn sample(&mut self) -> f64 {
        let Some((ticks, start_ticks)) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(parse_stat)
        else {
            return 0.0;
        };
        let now = Instant::now();
        let per_second = clock_ticks_per_second();
        let (busy_secs, wall_secs) = match self.previous {
            Some((then, previous_ticks)) => (
                ticks.saturating_sub(previous_ticks) as f64 / per_second,
                now.duration_since(then).as_secs_f64(),
            ),
            None => {
                let since_start = system_uptime_secs()
                    .map(|uptime| uptime - start_ticks as f64 / per_second)
                    .unwrap_or(0.0);
                (ticks as f64 / per_second, since_start)
            }
        };
        self.previous = Some((now, ticks));
        percent(busy_secs, wall_secs)
    }
}

fn percent(busy_secs: f64, wall_secs: f64) -> f64 {
    if wall_secs <= 0.0 || !busy_secs.is_finite() || !wall_secs.is_finite() {
        return 0.0;
    }
    (busy_secs / wall_secs * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 4 0 98765 1000000 200 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((300, 98_765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn percent_of_one_core() {
        assert_eq!(percent(0.5, 2.0), 25.0);
        assert_eq!(percent(3.0, 1.0), 300.0);
        assert_eq!(percent(1.0, 3.0), 33.3);
        assert_eq!(percent(1.0, 0.0), 0.0);
    }

    #[test]
    fn reads_this_process() {
        // Linux CI: a running test process has resident pages.
        if std::path::Path::new("/proc/self/statm").exists() {
            assert!(resident_bytes() > 0);
            let mut sampler = CpuSampler::default();
            assert!(sampler.sample() >= 0.0);
            assert!(sampler.sample() >= 0.0);
        }
    }
}
