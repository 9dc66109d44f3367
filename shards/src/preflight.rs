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
    check_memlock()?;
    check_io_uring()
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
