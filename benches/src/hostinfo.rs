//! Host facts recorded with every result, so numbers from different machines
//! are never compared unknowingly.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostInfo {
    pub nproc: usize,
    pub kernel: String,
    pub cpu_model: String,
    pub git_sha: String,
    pub hostname: String,
}

impl HostInfo {
    pub fn gather() -> HostInfo {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let git_sha = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        HostInfo {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model,
            git_sha,
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        }
    }
}
