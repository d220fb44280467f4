//! The open-file limit, raised for the command-line tools.
//!
//! Many systems start processes with a soft limit of 1,024 descriptors; a
//! server holding 10,000 connections (or a load generator opening them) needs
//! more. Like the Go runtime, the `serve` and `load` commands raise the soft
//! limit to the hard limit at start; `ulimit -Hn` still caps it.

use std::io;

/// The soft and hard `RLIMIT_NOFILE`.
pub fn open_file_limits() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Raises the soft open-file limit to the hard limit; returns the limit now
/// in force.
pub fn raise_open_file_limit() -> io::Result<libc::rlim_t> {
    let (soft, hard) = open_file_limits()?;
    if soft >= hard {
        return Ok(soft);
    }
    let limit = libc::rlimit {
        rlim_cur: hard as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: raising the soft limit up to the hard one is always permitted.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hard)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_reaches_the_hard_limit() {
        let raised = super::raise_open_file_limit().expect("raise");
        let (soft, hard) = super::open_file_limits().expect("read");
        assert_eq!((raised, soft), (hard, hard));
    }
}
