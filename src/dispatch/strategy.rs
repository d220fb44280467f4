//! The list of compiled-in strategies: names, one-line descriptions, and how
//! to build each one.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;

use clap::ValueEnum;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::error::ErrorKind;

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

impl ValueEnum for Strategy {
    fn value_variants<'a>() -> &'a [Self] {
        Strategy::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

/// Every name `--strategy` knows that needs a Cargo feature (of the same
/// name), and whether this build has it.
const FEATURE_GATED: &[(&str, bool)] = &[
    ("worker-channels", cfg!(feature = "worker-channels")),
    ("work-stealing", cfg!(feature = "work-stealing")),
    ("rayon", cfg!(feature = "rayon")),
    ("threadpool", cfg!(feature = "threadpool")),
    ("tokio", cfg!(feature = "tokio")),
];

/// The Cargo feature that would compile in `name`, if this build lacks it.
fn missing_feature(name: &str) -> Option<&'static str> {
    FEATURE_GATED
        .iter()
        .find(|&&(gated, enabled)| gated == name && !enabled)
        .map(|&(feature, _)| feature)
}

/// A strategy name that is not compiled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStrategy(String);

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.0;
        if let Some(feature) = missing_feature(name) {
            return write!(
                f,
                "{name} is not compiled into this build: enable its Cargo feature, e.g. \
                 `cargo build --release --features {feature}` (`dispatchlab strategies` lists what is compiled in)"
            );
        }
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        write!(
            f,
            "unknown strategy `{name}`; compiled in: {} (others need their Cargo feature)",
            names.join(", ")
        )
    }
}

/// clap's parser for `--strategy`-like values: clap's own for a
/// [`ValueEnum`] (possible values in `--help`, suggestions for typos),
/// except that a name whose Cargo feature is off in this build says which
/// feature to enable instead of only "invalid value".
///
/// clap picks a type's `ValueEnum` parser over any other, so an argument
/// names this one: `#[arg(long, value_parser = StrategyParser::<Engine>::default())]`.
#[derive(Clone, Debug)]
pub struct StrategyParser<T: ValueEnum + Clone + Send + Sync + 'static>(EnumValueParser<T>);

impl<T: ValueEnum + Clone + Send + Sync + 'static> Default for StrategyParser<T> {
    fn default() -> Self {
        Self(EnumValueParser::new())
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for StrategyParser<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        self.0.parse_ref(cmd, arg, value).map_err(|err| {
            let Some(name) = value.to_str().filter(|name| missing_feature(name).is_some()) else {
                return err;
            };
            let flag = arg.map_or_else(|| "--strategy".to_owned(), ToString::to_string);
            let unknown = UnknownStrategy(name.to_owned());
            clap::Error::raw(
                ErrorKind::InvalidValue,
                format!("invalid value '{name}' for '{flag}': {unknown}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
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
    fn a_feature_gated_name_says_which_feature_to_enable_when_it_is_off() {
        for &(name, enabled) in FEATURE_GATED {
            let message = UnknownStrategy(name.to_owned()).to_string();
            let says_feature = message.contains(&format!("--features {name}"));
            assert_eq!(says_feature, !enabled, "{message}");
        }
    }

    #[cfg(not(feature = "rayon"))]
    #[test]
    fn clap_says_which_feature_a_strategy_needs() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[arg(long, value_parser = StrategyParser::<Strategy>::default())]
            strategy: Strategy,
        }
        let err = <Cli as clap::Parser>::try_parse_from(["x", "--strategy", "rayon"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert!(err.to_string().contains("--features rayon"), "{err}");
        let typo = <Cli as clap::Parser>::try_parse_from(["x", "--strategy", "mutex-q"]).unwrap_err();
        assert!(typo.to_string().contains("mutex-queue"), "{typo}");
    }

    #[test]
    fn zero_workers_is_an_error_that_says_what_to_do() {
        let config = DispatchConfig::with_workers(0);
        let err = Strategy::MutexQueue.build(&config).unwrap_err().to_string();
        assert!(err.contains("--workers"), "{err}");
    }
}
