//! The open-file limit, raised for the command-line tools.
//!
//! Many systems start processes with a soft limit of 1,024 descriptors; a
//! server holding 10,000 connections (or a load generator opening them) needs
//! more. Like the Go runtime, the `serve`, `load` and `compare` commands
//! raise the soft limit to the hard limit at start. A process that may raise
//! the hard limit too (root with `CAP_SYS_RESOURCE`) first raises both to
//! `fs.nr_open` (1,048,576 by default), which 100,000 connections need on
//! systems whose hard limit is lower; otherwise `ulimit -Hn` caps it.

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

/// Raises the soft open-file limit to the hard limit, and both to
/// `fs.nr_open` where the process is allowed to; returns the limit now in
/// force.
pub fn raise_open_file_limit() -> io::Result<libc::rlim_t> {
    let (soft, hard) = open_file_limits()?;
    if let Some(ceiling) = nr_open().filter(|&ceiling| ceiling > hard)
        && set_open_file_limit(ceiling).is_ok()
    {
        return Ok(ceiling);
    }
    if soft >= hard {
        return Ok(soft);
    }
    set_open_file_limit(hard)?;
    Ok(hard)
}

/// `fs.nr_open`: the most a hard limit may be.
fn nr_open() -> Option<libc::rlim_t> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets the soft and the hard limit to `limit`.
fn set_open_file_limit(limit: libc::rlim_t) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit; the kernel refuses what is not permitted.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
