//! The knobs a strategy is built with.

use std::fmt;
use std::num::NonZeroUsize;
use std::thread;
use std::time::Duration;

/// How a strategy is sized and tuned. Each strategy reads the fields that
/// apply to it and ignores the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Worker threads for the pools. Default: the number of CPUs this process
    /// may run on ([`std::thread::available_parallelism`]).
    pub workers: usize,
    /// `thread-per-task` only: the most live threads at once; past it a job is
    /// rejected (the server answers 503). `None`: no cap of our own (the OS
    /// limit still applies and is reported the same way).
    pub max_threads: Option<usize>,
    /// `worker-channels` only: how the dispatcher picks a worker.
    pub pick: Pick,
    /// `work-stealing` only: how long an idle worker keeps looking for work
    /// (yielding between looks) before it parks. Zero parks at once.
    pub idle_spin: Duration,
    /// `work-stealing` only: which sleeping workers a new job wakes.
    pub wake: WakePolicy,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            max_threads: None,
            pick: Pick::RoundRobin,
            idle_spin: Duration::ZERO,
            wake: WakePolicy::default(),
        }
    }
}

impl DispatchConfig {
    /// The default configuration with `workers` workers.
    pub fn with_workers(workers: usize) -> Self {
        Self {
            workers,
            ..Self::default()
        }
    }
}

/// The default worker count: one per CPU this process may use.
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// How `worker-channels` chooses the worker for a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Pick {
    /// Each job to the next worker in turn: one atomic increment.
    #[default]
    RoundRobin,
    /// Each job to the worker with the fewest jobs queued or running: a scan
    /// of every worker's counter per job.
    LeastLoaded,
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pick::RoundRobin => "round-robin",
            Pick::LeastLoaded => "least-loaded",
        })
    }
}

/// Which sleeping workers a newly visible job wakes in `work-stealing`.
///
/// The default is the rule of tokio's scheduler. The other two exist so that
/// the choice can be measured (see `benches/dispatch.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WakePolicy {
    /// At most one sleeper per job, and none while some worker is already
    /// searching: that searcher will find the job (and, if it finds more,
    /// wakes the next worker itself).
    #[default]
    OneIfNoneSearching,
    /// One sleeper per job whenever one sleeps, searching workers or not (what
    /// a condvar's `notify_one` per push does).
    OnePerJob,
    /// Every sleeper on every job (a condvar's `notify_all`: the thundering
    /// herd; all but one find nothing and go back to sleep).
    All,
}
