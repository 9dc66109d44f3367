//! `percore --check-host`: prints the checks of [`shards::host_check`] in
//! the format of `tuning/check-host` and gives the exit status (1 if a check
//! failed). The shell script checks more (NIC queues and IRQs, RPS/XPS, SMT,
//! NUMA, irqbalance); this is the part that matters to start at all, plus
//! the few settings that are one file read away.

use shards::host_check::{self, Finding, Status};

/// Runs the checks for `shards` shards (the first n CPUs this process may
/// use, where `--pin` places them; every allowed CPU when not given or not
/// positive), prints the
/// report on stdout and returns the exit status.
pub fn run(shards: Option<i64>) -> u8 {
    let online = host_check::online_cpus();
    let allowed = host_check::allowed_cpus();
    let shard_cpus: Vec<usize> = match shards.and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n > 0 => allowed.iter().copied().take(n).collect(),
        _ => allowed,
    };
    let findings = host_check::run(&shard_cpus);
    print!("{}", render(&shard_cpus, &online, &findings));
    exit_code(&findings)
}

/// 1 if any check failed, else 0.
pub fn exit_code(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.status == Status::Fail) {
        1
    } else {
        0
    }
}

/// The report text: a header, then per check `STATUS  check  detail` and,
/// when there is one, an indented `fix:` line.
pub fn render(shard_cpus: &[usize], online: &[usize], findings: &[Finding]) -> String {
    let mut out = format!(
        "percore host check: shard CPUs {} of online {}\n",
        host_check::format_cpu_list(shard_cpus),
        host_check::format_cpu_list(online)
    );
    for f in findings {
        out.push_str(&format!(
            "{:<4}  {:<14} {}\n",
            f.status.label(),
            f.check,
            f.detail
        ));
        if !f.fix.is_empty() {
            out.push_str(&format!("      {:<14} fix: {}\n", "", f.fix));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(status: Status, fix: &str) -> Finding {
        Finding {
            status,
            check: "thp",
            detail: "enabled = always".into(),
            fix: fix.into(),
        }
    }

    #[test]
    fn report_lines_and_exit_status() {
        let warn = finding(Status::Warn, "echo madvise");
        let text = render(&[0, 1], &[0, 1, 2], std::slice::from_ref(&warn));
        assert_eq!(
            text,
            "percore host check: shard CPUs 0-1 of online 0-2\n\
             WARN  thp            enabled = always\n\
             \x20                    fix: echo madvise\n"
        );
        assert_eq!(exit_code(&[warn.clone(), finding(Status::Info, "")]), 0);
        assert_eq!(exit_code(&[warn, finding(Status::Fail, "")]), 1);
    }
}
