//! The list of compiled-in strategies: names, one-line descriptions, and how
//! to build each one.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;

use clap::builder::PossibleValue;

use super::{DispatchConfig, Dispatcher};
use super::{inline, mutex_queue, thread_per_task};

/// A dispatch strategy that can be built into a [`Dispatcher`].
///
/// Only the strategies whose Cargo feature is enabled exist as variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Strategy {
    /// A new OS thread per job.
    ThreadPerTask,
    /// One FIFO behind a lock, N workers waiting on it.
    MutexQueue,
    /// A channel per worker; the dispatcher picks the worker.
    #[cfg(feature = "worker-channels")]
    WorkerChannels,
    /// A global injector, per-worker deques, idle workers steal.
    #[cfg(feature = "work-stealing")]
    WorkStealing,
    /// `rayon::ThreadPool::spawn`.
    #[cfg(feature = "rayon")]
    Rayon,
    /// The `threadpool` crate.
    #[cfg(feature = "threadpool")]
    Threadpool,
    /// No hand-off: the job runs on the thread that dispatches it.
    Inline,
}

impl Strategy {
    /// Every compiled-in strategy, in the order tables list them.
    pub const ALL: &'static [Strategy] = &[
        Strategy::ThreadPerTask,
        Strategy::MutexQueue,
        #[cfg(feature = "worker-channels")]
        Strategy::WorkerChannels,
        #[cfg(feature = "work-stealing")]
        Strategy::WorkStealing,
        #[cfg(feature = "rayon")]
        Strategy::Rayon,
        #[cfg(feature = "threadpool")]
        Strategy::Threadpool,
        Strategy::Inline,
    ];

    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::ThreadPerTask => "thread-per-task",
            Strategy::MutexQueue => "mutex-queue",
            #[cfg(feature = "worker-channels")]
            Strategy::WorkerChannels => "worker-channels",
            #[cfg(feature = "work-stealing")]
            Strategy::WorkStealing => "work-stealing",
            #[cfg(feature = "rayon")]
            Strategy::Rayon => "rayon",
            #[cfg(feature = "threadpool")]
            Strategy::Threadpool => "threadpool",
            Strategy::Inline => "inline",
        }
    }

    /// One line on what a dispatch does.
    pub fn description(self) -> &'static str {
        match self {
            Strategy::ThreadPerTask => "spawns an OS thread per job (std::thread::Builder; optional --max-threads cap)",
            Strategy::MutexQueue => {
                "one FIFO behind a mutex, N workers waiting on a condvar (the Rust Book's ThreadPool)"
            }
            #[cfg(feature = "worker-channels")]
            Strategy::WorkerChannels => {
                "a crossbeam channel per worker; the dispatcher picks one (--pick round-robin|least-loaded)"
            }
            #[cfg(feature = "work-stealing")]
            Strategy::WorkStealing => {
                "crossbeam-deque: global injector, per-worker deques, idle workers steal, then park"
            }
            #[cfg(feature = "rayon")]
            Strategy::Rayon => "rayon::ThreadPool::spawn on a dedicated rayon pool",
            #[cfg(feature = "threadpool")]
            Strategy::Threadpool => "the threadpool crate's ThreadPool::execute",
            Strategy::Inline => "no hand-off: the job runs on the event-loop thread (request scope only)",
        }
    }

    /// Whether the strategy runs jobs on the dispatching thread itself.
    ///
    /// Such a strategy only makes sense under an event loop (request scope):
    /// in connection scope it would serve one connection at a time.
    pub fn runs_on_caller(self) -> bool {
        self == Strategy::Inline
    }

    /// Builds the strategy.
    pub fn build(self, config: &DispatchConfig) -> Result<Arc<dyn Dispatcher>, BuildError> {
        if config.workers == 0 {
            return Err(BuildError::new(self, BuildErrorKind::NoWorkers));
        }
        let spawn_failed = |err| BuildError::new(self, BuildErrorKind::Spawn(err));
        Ok(match self {
            Strategy::ThreadPerTask => Arc::new(thread_per_task::ThreadPerTask::new(config.max_threads)),
            Strategy::MutexQueue => Arc::new(mutex_queue::MutexQueue::new(config.workers).map_err(spawn_failed)?),
            #[cfg(feature = "worker-channels")]
            Strategy::WorkerChannels => Arc::new(
                super::worker_channels::WorkerChannels::new(config.workers, config.pick).map_err(spawn_failed)?,
            ),
            #[cfg(feature = "work-stealing")]
            Strategy::WorkStealing => Arc::new(
                super::work_stealing::WorkStealing::with_wake_policy(config.workers, config.idle_spin, config.wake)
                    .map_err(spawn_failed)?,
            ),
            #[cfg(feature = "rayon")]
            Strategy::Rayon => Arc::new(
                super::rayon_pool::RayonPool::new(config.workers)
                    .map_err(|err| BuildError::new(self, BuildErrorKind::Rayon(err)))?,
            ),
            #[cfg(feature = "threadpool")]
            Strategy::Threadpool => {
                Arc::new(super::threadpool_crate::ThreadpoolCrate::new(config.workers).map_err(spawn_failed)?)
            }
            Strategy::Inline => Arc::new(inline::Inline::new()),
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .iter()
            .copied()
            .find(|strategy| strategy.name() == name)
            .ok_or_else(|| UnknownStrategy(name.to_owned()))
    }
}

impl clap::ValueEnum for Strategy {
    fn value_variants<'a>() -> &'a [Self] {
        Strategy::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

/// A strategy name that is not compiled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStrategy(String);

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        write!(
            f,
            "unknown strategy `{}`; compiled in: {} (others need their Cargo feature)",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownStrategy {}

/// A strategy could not be built.
#[derive(Debug)]
pub struct BuildError {
    strategy: Strategy,
    kind: BuildErrorKind,
}

#[derive(Debug)]
enum BuildErrorKind {
    NoWorkers,
    Spawn(io::Error),
    #[cfg(feature = "rayon")]
    Rayon(rayon::ThreadPoolBuildError),
}

impl BuildError {
    fn new(strategy: Strategy, kind: BuildErrorKind) -> Self {
        Self { strategy, kind }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strategy = self.strategy;
        match &self.kind {
            BuildErrorKind::NoWorkers => write!(f, "cannot build {strategy} with 0 workers; pass --workers 1 or more"),
            BuildErrorKind::Spawn(err) => write!(
                f,
                "cannot start the {strategy} workers: {err} (fewer --workers, or raise the thread limit: ulimit -u)"
            ),
            #[cfg(feature = "rayon")]
            BuildErrorKind::Rayon(err) => write!(
                f,
                "cannot build the rayon pool: {err} (fewer --workers, or raise the thread limit: ulimit -u)"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::NoWorkers => None,
            BuildErrorKind::Spawn(err) => Some(err),
            #[cfg(feature = "rayon")]
            BuildErrorKind::Rayon(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for &strategy in Strategy::ALL {
            assert_eq!(strategy.name().parse::<Strategy>(), Ok(strategy));
        }
        let mut names: Vec<_> = Strategy::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Strategy::ALL.len());
    }

    #[test]
    fn unknown_name_lists_the_compiled_in_ones() {
        let err = "fork-join".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("fork-join") && err.contains("mutex-queue"), "{err}");
    }

    #[test]
    fn zero_workers_is_an_error_that_says_what_to_do() {
        let config = DispatchConfig::with_workers(0);
        let err = Strategy::MutexQueue.build(&config).unwrap_err().to_string();
        assert!(err.contains("--workers"), "{err}");
    }
}
