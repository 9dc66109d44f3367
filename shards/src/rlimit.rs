//! Raising a soft resource limit up to what a run needs, within the hard
//! limit, as an unprivileged process may. Used by the start-up checks
//! (locked memory for io_uring) and by the load generator (open files).

/// A resource limit, as `getrlimit` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

/// The current limits of `resource`; `None` if they cannot be read.
pub fn current(resource: libc::__rlimit_resource_t) -> Option<Limit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return None;
    }
    Some(Limit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Makes the soft limit of `resource` at least `needed`, raising it (not
/// above the hard limit) when it is lower. `Err` carries the limits that
/// stand in the way, for the caller's message; a limit that cannot be read
/// counts as enough (the operation itself will report a shortage).
pub fn ensure_soft_limit(resource: libc::__rlimit_resource_t, needed: u64) -> Result<(), Limit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return Ok(());
    }
    if limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max == libc::RLIM_INFINITY || limit.rlim_max >= needed {
        let raised = libc::rlimit {
            rlim_cur: needed,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        if unsafe { libc::setrlimit(resource, &raised) } == 0 {
            return Ok(());
        }
    }
    Err(Limit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_already_high_enough_is_left_alone() {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) },
            0
        );
        assert_eq!(ensure_soft_limit(libc::RLIMIT_NOFILE, 1), Ok(()));
        let mut after = before;
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut after) },
            0
        );
        assert_eq!(
            (after.rlim_cur, after.rlim_max),
            (before.rlim_cur, before.rlim_max)
        );
        // Beyond the hard limit nothing can be done: the limits come back.
        if before.rlim_max != libc::RLIM_INFINITY && before.rlim_max < u64::MAX {
            let err = ensure_soft_limit(libc::RLIMIT_NOFILE, before.rlim_max + 1);
            assert_eq!(
                err,
                Err(Limit {
                    soft: before.rlim_cur,
                    hard: before.rlim_max
                })
            );
        }
    }
}
