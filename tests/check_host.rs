//! `percore --check-host`: the binary checks the host, prints one line per
//! check in tuning/check-host's format and exits 0, or 1 when a check fails.

use std::process::{Command, Output};

fn check_host(shell_prefix: &str, extra: &str) -> Output {
    // Through sh so that a test can lower a limit for the child first.
    let script = format!("{shell_prefix} exec \"$0\" --check-host {extra}");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_percore"))
        .output()
        .expect("run percore --check-host")
}

fn line_of<'a>(stdout: &'a str, check: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(check))
}

#[test]
fn reports_io_uring_and_exits_by_the_worst_status() {
    let out = check_host("", "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "exit {code:?}\n{stdout}"
    );
    assert!(
        stdout.starts_with("percore host check: shard CPUs "),
        "{stdout}"
    );
    let io_uring = line_of(&stdout, "io_uring").expect("an io_uring line");
    assert!(
        io_uring.starts_with("OK ") || io_uring.starts_with("FAIL "),
        "{io_uring}"
    );
    for check in [
        "memlock",
        "nofile",
        "seccomp",
        "thp",
        "somaxconn",
        "isolation",
    ] {
        assert!(
            line_of(&stdout, check).is_some(),
            "no {check} line:\n{stdout}"
        );
    }
    let failed = stdout.lines().any(|line| line.starts_with("FAIL "));
    assert_eq!(code == Some(1), failed, "exit {code:?} against\n{stdout}");
}

#[test]
fn a_memlock_limit_below_512_kib_fails() {
    // Lowering the hard limit needs no privilege; percore cannot raise it.
    let out = check_host("ulimit -l 64 &&", "--shards 1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let memlock = line_of(&stdout, "memlock").expect("a memlock line");
    assert!(memlock.starts_with("FAIL "), "{memlock}");
    assert!(memlock.contains("64 KiB"), "{memlock}");
    assert!(stdout.contains("LimitMEMLOCK=infinity"), "{stdout}");
    assert!(
        stdout.starts_with("percore host check: shard CPUs 0 of"),
        "{stdout}"
    );
}
