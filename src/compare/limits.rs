//! Why a thread per connection stopped: the system limits on threads, read
//! once per cell, and the one a server's peak thread count ran into.
//!
//! A server that starts a thread per connection (thread-per-task) answers
//! 503 when the OS refuses a thread; the row's outcome then names the limit
//! instead of leaving a pile of `bad_status` errors to be guessed at. The
//! candidates, each turned into "threads this server could have had":
//!
//! | limit | counts | threads it allows this server |
//! |---|---|---|
//! | `kernel.threads-max` | threads of the whole system | the limit minus the others' threads |
//! | `kernel.pid_max` | ids of the whole system (a thread takes one) | as above |
//! | `RLIMIT_NPROC` | threads of the user (not enforced for root) | as read |
//! | `vm.max_map_count` | mappings of the process (a thread's stack and its guard page: 2) | half of it |
//! | cgroup `pids.max` | tasks of the cgroup | as read |
//!
//! The other threads of the system are counted from `/proc/loadavg` when the
//! cell ends, so the figure is an estimate; a limit counts as the one that
//! broke the server when its peak came within [`NEAR`] of it. Memory is the
//! other way a thread per connection ends: a server killed by the OOM killer
//! shows as killed by signal 9 in the outcome already.

/// How close (as a share) a peak must come to a limit to be named.
pub const NEAR: f64 = 0.9;

/// One limit on the threads of a process.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadLimit {
    /// `kernel.pid_max`, `RLIMIT_NPROC`, …
    pub name: &'static str,
    /// The limit as set.
    pub value: u64,
    /// The threads it leaves for the server.
    pub threads: u64,
    /// How to raise it.
    pub raise: &'static str,
}

/// The limits of this system, with `others` threads already running
/// besides the server.
pub fn thread_limits(others: u64) -> Vec<ThreadLimit> {
    let sysctl = |path: &str| read_number(&format!("/proc/sys/{path}"));
    let mut limits = Vec::new();
    let mut push = |name, value: Option<u64>, threads: fn(u64, u64) -> u64, raise| {
        if let Some(value) = value {
            limits.push(ThreadLimit {
                name,
                value,
                threads: threads(value, others),
                raise,
            });
        }
    };
    let system_wide: fn(u64, u64) -> u64 = |value, others| value.saturating_sub(others);
    push(
        "kernel.threads-max",
        sysctl("kernel/threads-max"),
        system_wide,
        "sysctl -w kernel.threads-max=4194304",
    );
    push(
        "kernel.pid_max",
        sysctl("kernel/pid_max"),
        system_wide,
        "sysctl -w kernel.pid_max=4194304",
    );
    push(
        "vm.max_map_count",
        sysctl("vm/max_map_count"),
        |value, _| value / 2,
        "sysctl -w vm.max_map_count=1048576",
    );
    push(
        "cgroup pids.max",
        read_number("/sys/fs/cgroup/pids.max").or_else(|| read_number("/sys/fs/cgroup/pids/pids.max")),
        |value, _| value,
        "raise the cgroup's pids.max (systemd: TasksMax=)",
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        push(
            "RLIMIT_NPROC",
            nproc_limit(),
            |value, _| value,
            "ulimit -u (nproc in /etc/security/limits.conf)",
        );
    }
    limits
}

/// The threads of the whole system now (`/proc/loadavg`: `1.0 0.9 0.8 2/345 6789`).
pub fn system_threads() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

/// The limit a server that peaked at `peak_threads` ran into, as a sentence
/// for the row's outcome; `None` when it stayed clear of every limit.
pub fn diagnose(peak_threads: u64, limits: &[ThreadLimit]) -> Option<String> {
    let hit = limits
        .iter()
        .filter(|limit| peak_threads as f64 >= NEAR * limit.threads as f64)
        .min_by_key(|limit| limit.threads)?;
    Some(format!(
        "out of threads at {peak_threads}: {} = {} (about {} threads for this server; {})",
        hit.name, hit.value, hit.threads, hit.raise
    ))
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The soft `RLIMIT_NPROC`; `None` when unlimited.
fn nproc_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &'static str, threads: u64) -> ThreadLimit {
        ThreadLimit {
            name,
            value: threads,
            threads,
            raise: "raise it",
        }
    }

    #[test]
    fn the_tightest_limit_the_peak_reached_is_named() {
        let limits = [limit("kernel.pid_max", 32_000), limit("vm.max_map_count", 32_765)];
        let said = diagnose(31_990, &limits).expect("a limit");
        assert!(
            said.contains("kernel.pid_max = 32000") && said.contains("31990"),
            "{said}"
        );
        assert_eq!(diagnose(10_000, &limits), None, "far from every limit");
    }

    #[test]
    fn this_system_has_limits_and_a_thread_count() {
        assert!(system_threads().is_some_and(|n| n > 0));
        let limits = thread_limits(0);
        assert!(limits.iter().any(|l| l.name == "kernel.pid_max"), "{limits:?}");
        assert!(limits.iter().all(|l| l.threads > 0));
    }
}
