//! `percore --check-host`: the essential host checks of `tuning/check-host`,
//! run natively. This module gathers them as plain data ([`Finding`]); the
//! binary prints them. io_uring is tested for real (a ring is set up), which
//! the shell script cannot do; the rest reads procfs and sysfs, and a file
//! that is absent (a VM, a container, an older kernel) gives an INFO line,
//! never an error.

use std::fs;

use crate::preflight::{self, MIN_MEMLOCK_BYTES};
use crate::rlimit;

/// How a check came out. Only `Fail` means percore cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Info,
}

impl Status {
    /// The word printed in the report (same as `tuning/check-host`).
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Info => "INFO",
        }
    }
}

/// One line of the report: what was found, and the fix (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
    pub fix: String,
}

fn finding(status: Status, check: &'static str, detail: String, fix: &str) -> Finding {
    Finding {
        status,
        check,
        detail,
        fix: fix.to_string(),
    }
}

/// Open files below this get a WARN (one descriptor per client).
pub const MIN_NOFILE: u64 = 65536;
/// percore's listen backlog; a smaller somaxconn silently caps it.
pub const LISTEN_BACKLOG: u64 = 4096;

/// Runs every check for shards that will run on `shard_cpus`. Raises the
/// soft memlock limit to 512 KiB when the hard limit allows, as at start-up.
pub fn run(shard_cpus: &[usize]) -> Vec<Finding> {
    let mut out = Vec::new();
    // memlock first: it may raise the soft limit the ring set-up needs.
    out.push(memlock());
    out.push(match preflight::check_io_uring() {
        Ok(()) => finding(
            Status::Ok,
            "io_uring",
            "io_uring_setup succeeded (a one-entry ring was set up and closed)".into(),
            "",
        ),
        Err(why) => finding(Status::Fail, "io_uring", why, "see tuning/README.md"),
    });
    out.push(io_uring_sysctl(read_first_line(
        "/proc/sys/kernel/io_uring_disabled",
    )));
    out.push(seccomp(read_file("/proc/self/status")));
    out.push(nofile());
    out.push(governor(shard_cpus, |cpu| {
        read_first_line(&format!(
            "/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
        ))
    }));
    out.push(thp(read_first_line(
        "/sys/kernel/mm/transparent_hugepage/enabled",
    )));
    out.push(somaxconn(read_first_line("/proc/sys/net/core/somaxconn")));
    out.push(isolation(read_first_line("/proc/cmdline"), shard_cpus));
    out
}

/// The CPUs online now (`/sys/devices/system/cpu/online`), or `0..n` from
/// the available parallelism when that file is absent.
pub fn online_cpus() -> Vec<usize> {
    if let Some(cpus) = read_first_line("/sys/devices/system/cpu/online")
        .as_deref()
        .and_then(parse_cpu_list)
    {
        return cpus;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// The CPUs this process may run on (`Cpus_allowed_list` in
/// /proc/self/status: taskset, the unit's CPUAffinity=, cpusets), in
/// order; [`online_cpus`] when that line is absent. `--pin` puts shard i on
/// the i-th of them.
pub fn allowed_cpus() -> Vec<usize> {
    read_file("/proc/self/status")
        .as_deref()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .and_then(parse_cpu_list)
        })
        .filter(|cpus| !cpus.is_empty())
        .unwrap_or_else(online_cpus)
}

fn read_file(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn read_first_line(path: &str) -> Option<String> {
    read_file(path).map(|text| text.lines().next().unwrap_or("").trim().to_string())
}

/// Parses the kernel's CPU list format ("0-3,8"); `None` if malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    let text = text.trim();
    if text.is_empty() {
        return Some(cpus);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: usize = lo.parse().ok()?;
                let hi: usize = hi.parse().ok()?;
                if lo > hi {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The inverse of [`parse_cpu_list`]: sorted, deduplicated, ranges folded.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

fn limit_text(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

fn memlock() -> Finding {
    match preflight::check_memlock() {
        Ok(()) => {
            let detail = match rlimit::current(libc::RLIMIT_MEMLOCK) {
                Some(limit) => format!(
                    "locked memory: soft {} KiB, hard {} KiB (percore needs {} KiB)",
                    kib(limit.soft),
                    kib(limit.hard),
                    MIN_MEMLOCK_BYTES / 1024
                ),
                None => "locked memory limit not readable".to_string(),
            };
            finding(Status::Ok, "memlock", detail, "")
        }
        Err(why) => finding(
            Status::Fail,
            "memlock",
            why,
            "tuning/limits.d/90-percore.conf; systemd unit: LimitMEMLOCK=infinity",
        ),
    }
}

fn kib(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        (value / 1024).to_string()
    }
}

fn nofile() -> Finding {
    let Some(limit) = rlimit::current(libc::RLIMIT_NOFILE) else {
        return finding(
            Status::Info,
            "nofile",
            "open-files limit not readable".into(),
            "",
        );
    };
    let detail = format!(
        "open files: soft {}, hard {}",
        limit_text(limit.soft),
        limit_text(limit.hard)
    );
    if limit.soft >= MIN_NOFILE {
        finding(Status::Ok, "nofile", detail, "")
    } else {
        finding(
            Status::Warn,
            "nofile",
            format!(
                "{detail}: one per client connection, so at most ~{} clients",
                limit.soft
            ),
            "ulimit -n 1048576 (needs hard >= that) or tuning/limits.d/90-percore.conf; systemd unit: LimitNOFILE=1048576",
        )
    }
}

fn io_uring_sysctl(value: Option<String>) -> Finding {
    const CHECK: &str = "io_uring";
    match value.as_deref() {
        None => finding(
            Status::Info,
            CHECK,
            "kernel.io_uring_disabled absent (kernel older than 6.6)".into(),
            "",
        ),
        Some("0") => finding(Status::Ok, CHECK, "kernel.io_uring_disabled = 0".into(), ""),
        Some("1") => finding(
            Status::Warn,
            CHECK,
            "kernel.io_uring_disabled = 1: only members of kernel.io_uring_group (and root) may use io_uring".into(),
            "sysctl -w kernel.io_uring_disabled=0 (tuning/sysctl.d/90-percore.conf)",
        ),
        Some(other) => finding(
            Status::Fail,
            CHECK,
            format!("kernel.io_uring_disabled = {other}: io_uring is off for every process"),
            "sysctl -w kernel.io_uring_disabled=0 (tuning/sysctl.d/90-percore.conf)",
        ),
    }
}

fn seccomp(status: Option<String>) -> Finding {
    const CHECK: &str = "seccomp";
    let mode = status.as_deref().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("Seccomp:"))
            .map(|v| v.trim().to_string())
    });
    match mode.as_deref() {
        None => finding(
            Status::Info,
            CHECK,
            "no Seccomp line in /proc/self/status".into(),
            "",
        ),
        Some("0") => finding(Status::Ok, CHECK, "no seccomp filter".into(), ""),
        Some(mode) => finding(
            Status::Info,
            CHECK,
            format!("seccomp mode {mode} (a container?): the io_uring line above says whether it lets io_uring through"),
            "",
        ),
    }
}

fn governor(shard_cpus: &[usize], read: impl Fn(usize) -> Option<String>) -> Finding {
    const CHECK: &str = "governor";
    let mut seen = Vec::new();
    let mut slow = Vec::new();
    for &cpu in shard_cpus {
        if let Some(governor) = read(cpu) {
            if governor != "performance" {
                slow.push(cpu);
            }
            seen.push(format!("cpu{cpu}={governor}"));
        }
    }
    if seen.is_empty() {
        finding(
            Status::Info,
            CHECK,
            "no cpufreq on the shard CPUs (a VM, or frequency fixed by firmware)".into(),
            "",
        )
    } else if slow.is_empty() {
        finding(
            Status::Ok,
            CHECK,
            format!(
                "performance on the shard CPUs ({})",
                format_cpu_list(shard_cpus)
            ),
            "",
        )
    } else {
        finding(
            Status::Warn,
            CHECK,
            format!(
                "not performance: {}; a parked shard wakes on a slow clock",
                seen.join(" ")
            ),
            "cpupower frequency-set -g performance (or write performance to cpufreq/scaling_governor)",
        )
    }
}

fn thp(enabled: Option<String>) -> Finding {
    const CHECK: &str = "thp";
    let selected = enabled.as_deref().and_then(|text| {
        let start = text.find('[')?;
        let end = text[start..].find(']')?;
        Some(text[start + 1..start + end].to_string())
    });
    match selected.as_deref() {
        None => finding(
            Status::Info,
            CHECK,
            "no transparent_hugepage in sysfs".into(),
            "",
        ),
        Some("always") => finding(
            Status::Warn,
            CHECK,
            "enabled = always: khugepaged and compaction stalls show up as latency spikes".into(),
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (kernel cmdline: transparent_hugepage=madvise)",
        ),
        Some(mode) => finding(Status::Ok, CHECK, format!("enabled = {mode}"), ""),
    }
}

fn somaxconn(value: Option<String>) -> Finding {
    const CHECK: &str = "somaxconn";
    match value.as_deref().and_then(|v| v.parse::<u64>().ok()) {
        None => finding(
            Status::Info,
            CHECK,
            "net.core.somaxconn not readable".into(),
            "",
        ),
        Some(v) if v >= LISTEN_BACKLOG => finding(
            Status::Ok,
            CHECK,
            format!("net.core.somaxconn = {v} (percore asks for a backlog of {LISTEN_BACKLOG})"),
            "",
        ),
        Some(v) => finding(
            Status::Warn,
            CHECK,
            format!("net.core.somaxconn = {v} caps percore's {LISTEN_BACKLOG} backlog: connection storms get refused"),
            "sysctl -w net.core.somaxconn=65535 (tuning/sysctl.d/90-percore.conf)",
        ),
    }
}

/// The value of `name=` on the kernel command line (the last one wins).
fn cmdline_param<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        .next_back()
}

fn isolation(cmdline: Option<String>, shard_cpus: &[usize]) -> Finding {
    const CHECK: &str = "isolation";
    let shards = format_cpu_list(shard_cpus);
    let fix = format!(
        "for the steadiest latency (with --pin) boot with isolcpus=managed_irq,domain,{shards} nohz_full={shards} rcu_nocbs={shards}"
    );
    let Some(cmdline) = cmdline else {
        return finding(Status::Info, CHECK, "/proc/cmdline not readable".into(), "");
    };
    let iso = cmdline_param(&cmdline, "isolcpus");
    let nohz = cmdline_param(&cmdline, "nohz_full");
    if iso.is_none() && nohz.is_none() {
        return finding(
            Status::Info,
            CHECK,
            "no isolcpus/nohz_full on the kernel command line: other tasks and the tick may run on shard CPUs".into(),
            &fix,
        );
    }
    // isolcpus may lead with flags: "managed_irq,domain,2-7".
    let isolated: Vec<usize> = iso
        .unwrap_or("")
        .split(',')
        .filter_map(parse_cpu_list)
        .flatten()
        .collect();
    let missing: Vec<usize> = shard_cpus
        .iter()
        .copied()
        .filter(|cpu| !isolated.contains(cpu))
        .collect();
    let detail = format!(
        "isolcpus={} nohz_full={}",
        iso.unwrap_or("none"),
        nohz.unwrap_or("none")
    );
    if missing.is_empty() {
        finding(
            Status::Ok,
            CHECK,
            format!("{detail} cover the shard CPUs"),
            "",
        )
    } else {
        finding(
            Status::Warn,
            CHECK,
            format!(
                "{detail} leave shard CPUs {} unisolated",
                format_cpu_list(&missing)
            ),
            &fix,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(parse_cpu_list("0-3,8"), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[8, 0, 1, 2, 3, 3]), "0-3,8");
        assert_eq!(format_cpu_list(&[5]), "5");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn sysctl_and_sysfs_values_map_to_statuses() {
        assert_eq!(io_uring_sysctl(Some("0".into())).status, Status::Ok);
        assert_eq!(io_uring_sysctl(Some("1".into())).status, Status::Warn);
        assert_eq!(io_uring_sysctl(Some("2".into())).status, Status::Fail);
        assert_eq!(io_uring_sysctl(None).status, Status::Info);
        assert_eq!(
            thp(Some("[always] madvise never".into())).status,
            Status::Warn
        );
        assert_eq!(
            thp(Some("always [madvise] never".into())).status,
            Status::Ok
        );
        assert_eq!(thp(None).status, Status::Info);
        assert_eq!(somaxconn(Some("128".into())).status, Status::Warn);
        assert_eq!(somaxconn(Some("4096".into())).status, Status::Ok);
        assert_eq!(somaxconn(Some("junk".into())).status, Status::Info);
        assert_eq!(
            seccomp(Some("Name:\tx\nSeccomp:\t2\n".into())).status,
            Status::Info
        );
        assert_eq!(seccomp(Some("Seccomp:\t0\n".into())).status, Status::Ok);
    }

    #[test]
    fn governor_wants_performance_on_every_shard_cpu() {
        let all_perf = governor(&[0, 1], |_| Some("performance".into()));
        assert_eq!(all_perf.status, Status::Ok);
        let one_slow = governor(&[0, 1], |cpu| {
            Some(if cpu == 1 { "powersave" } else { "performance" }.into())
        });
        assert_eq!(one_slow.status, Status::Warn);
        assert!(one_slow.detail.contains("cpu1=powersave"), "{one_slow:?}");
        assert_eq!(governor(&[0], |_| None).status, Status::Info);
    }

    #[test]
    fn isolation_must_cover_the_shard_cpus() {
        let cmd = |s: &str| Some(s.to_string());
        assert_eq!(isolation(cmd("quiet"), &[0, 1]).status, Status::Info);
        let covered = isolation(
            cmd("ro isolcpus=managed_irq,domain,2-5 nohz_full=2-5"),
            &[2, 3],
        );
        assert_eq!(covered.status, Status::Ok, "{covered:?}");
        let partly = isolation(cmd("isolcpus=2-3"), &[2, 3, 4]);
        assert_eq!(partly.status, Status::Warn);
        assert!(partly.detail.contains("CPUs 4 unisolated"), "{partly:?}");
    }
}
