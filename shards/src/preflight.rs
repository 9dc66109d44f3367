//! Start-up checks that turn "glommio cannot run here" into one clear line
//! instead of a panic deep inside an executor thread.

use std::io;

use crate::rlimit::ensure_soft_limit;

/// glommio refuses to build a reactor below this RLIMIT_MEMLOCK (it checks
/// even for root).
pub const MIN_MEMLOCK_BYTES: u64 = 512 * 1024;

/// Checks that io_uring can be set up and that the locked-memory limit is
/// high enough for glommio; raises the soft memlock limit to the hard one
/// when that is enough. The error text is meant for the operator.
///
/// It also raises the soft open-files limit to the hard one, as nats-server
/// does (the Go runtime does it at start): a shell's usual soft 1024 would
/// otherwise cap percore at about a thousand clients where nats-server,
/// started the same way, takes as many as the hard limit allows.
pub fn check_host() -> Result<(), String> {
    raise_open_files();
    pregrow_descriptor_table();
    check_memlock()?;
    check_io_uring()
}

/// The largest descriptor table grown at start: 65 536 slots, 512 KiB of
/// kernel memory (8 bytes a slot, not in the process's RSS), past what one
/// box serves (nats-server's default max_connections is 64K).
pub const PREGROWN_DESCRIPTORS: u64 = 65_536;

/// Grows the process's descriptor table at once to the open-files limit
/// (at most [`PREGROWN_DESCRIPTORS`]). The kernel grows it by doubling
/// when a new descriptor does not fit, and in a process with more than one
/// thread each doubling waits for an RCU grace period (`expand_fdtable`
/// calls `synchronize_rcu`). The thread that hits it is a shard's, in its
/// accept, and every client of that shard waits with it: on this 2-vCPU VM,
/// during a flood of 2 000 connections of random bytes (benches/hostile.sh),
/// `perf trace` showed the accept's dup at the 4 096th descriptor taking
/// 19 ms. Growing the table here, before the shard threads start, costs one
/// syscall and no wait. The table never shrinks, so the kernel keeps the
/// memory until exit.
pub fn pregrow_descriptor_table() {
    let Some(limit) = crate::rlimit::current(libc::RLIMIT_NOFILE) else {
        return;
    };
    let top = limit.soft.min(PREGROWN_DESCRIPTORS);
    if top < 2 {
        return;
    }
    // SAFETY: open(2) of a constant, NUL-terminated path; checked below.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 {
        return;
    }
    // The lowest free descriptor at or above `top - 1`: the table grows to
    // hold it. Failure (EMFILE, EINVAL) leaves the table as it was.
    // SAFETY: F_DUPFD_CLOEXEC of a descriptor we own; the result is checked.
    let high = unsafe { libc::fcntl(null, libc::F_DUPFD_CLOEXEC, (top - 1) as libc::c_int) };
    // SAFETY: closing descriptors we opened above.
    unsafe {
        if high >= 0 {
            libc::close(high);
        }
        libc::close(null);
    }
}

/// Soft RLIMIT_NOFILE up to the hard limit; a failure (a hard limit of
/// "unlimited" above the kernel's nr_open, say) leaves it as it was, as Go
/// does.
pub fn raise_open_files() {
    if let Some(limit) = crate::rlimit::current(libc::RLIMIT_NOFILE) {
        if limit.soft < limit.hard {
            let _ = ensure_soft_limit(libc::RLIMIT_NOFILE, limit.hard);
        }
    }
}

/// The memlock half of [`check_host`] (also used by `--check-host`).
pub fn check_memlock() -> Result<(), String> {
    ensure_soft_limit(libc::RLIMIT_MEMLOCK, MIN_MEMLOCK_BYTES).map_err(|limit| {
        format!(
            "locked-memory limit (RLIMIT_MEMLOCK) is {} KiB; io_uring needs at least {} KiB: \
             run `ulimit -l {}` first or set LimitMEMLOCK=infinity in the systemd unit",
            limit.soft / 1024,
            MIN_MEMLOCK_BYTES / 1024,
            MIN_MEMLOCK_BYTES / 1024
        )
    })
}

/// Sets up (and closes) a one-entry ring, the same call glommio makes.
pub fn check_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; zeroed means "defaults".
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads/writes the params buffer we own.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: closing the ring fd we just got.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let why = match err.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring support (needs Linux 5.8 or newer)".to_string(),
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "io_uring is not permitted here: check `sysctl kernel.io_uring_disabled` (must be 0) \
             or, in a container, a seccomp profile that allows io_uring_setup/io_uring_enter/io_uring_register"
                .to_string()
        }
        Some(libc::ENOMEM) => "not enough locked memory for an io_uring ring (raise `ulimit -l`)".to_string(),
        _ => format!("io_uring_setup failed: {err}"),
    };
    Err(why)
}
