//! How the kernel schedules the server's threads: a knob of the study.
//!
//! Under Linux's default policy (`SCHED_OTHER`), a thread that wakes another
//! is often preempted by it at once. When the server is confined to one CPU
//! (as the runner pins it on a 2-CPU machine), every hand-off from an event
//! loop to a sleeping worker then costs two context switches: the worker
//! runs the one job it was woken for, sleeps, and the loop resumes to
//! dispatch the next job. Under `SCHED_BATCH` a woken thread does not preempt
//! the one that woke it; the loop dispatches its whole batch, then the
//! workers run the whole batch. Same code, same strategies; only when the
//! switches happen differs. `serve --sched batch` chooses it for every thread
//! of the server.

use std::fmt;
use std::io;

/// The scheduling policy for the server's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SchedPolicy {
    /// The kernel's default (`SCHED_OTHER`): a woken thread may preempt the
    /// thread that woke it.
    #[default]
    Other,
    /// `SCHED_BATCH`: woken threads do not preempt; hand-offs batch up.
    Batch,
}

impl SchedPolicy {
    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            SchedPolicy::Other => "other",
            SchedPolicy::Batch => "batch",
        }
    }

    fn raw(self) -> libc::c_int {
        match self {
            SchedPolicy::Other => libc::SCHED_OTHER,
            SchedPolicy::Batch => libc::SCHED_BATCH,
        }
    }
}

impl fmt::Display for SchedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `start` with the calling thread under `policy`, so that every thread
/// it creates inherits the policy, then puts the caller's policy back.
pub(crate) fn with_policy<T>(policy: SchedPolicy, start: impl FnOnce() -> T) -> io::Result<T> {
    // SAFETY: pid 0 is the calling thread; sched_getscheduler has no other input.
    let previous = unsafe { libc::sched_getscheduler(0) };
    if previous < 0 {
        return Err(io::Error::last_os_error());
    }
    set(policy.raw())?;
    let started = start();
    set(previous)?;
    Ok(started)
}

fn set(policy: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is valid; priority 0 is the only valid one for these policies.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of_new_thread() -> libc::c_int {
        // SAFETY: as above.
        std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
            .join()
            .expect("thread")
    }

    #[test]
    fn threads_started_inside_inherit_the_policy_and_the_caller_gets_its_own_back() {
        let inside = with_policy(SchedPolicy::Batch, policy_of_new_thread).expect("set policy");
        assert_eq!(inside, libc::SCHED_BATCH);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        assert_eq!(policy_of_new_thread(), libc::SCHED_OTHER);
    }
}
