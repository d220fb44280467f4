//! The [`Dispatcher`] trait and one module per strategy.
//!
//! A *job* is a boxed closure; the server decides what a job covers (a whole
//! connection in connection scope, one request in request scope). A strategy
//! only decides *which thread runs it, and when*:
//!
//! | module | strategy | what `dispatch` does |
//! |---|---|---|
//! | [`thread_per_task`] | `thread-per-task` | spawns an OS thread for the job |
//! | [`mutex_queue`] | `mutex-queue` | pushes onto one FIFO behind a lock; N workers wait on it |
#![cfg_attr(
    feature = "worker-channels",
    doc = "| [`worker_channels`] | `worker-channels` | sends to one worker's own channel (round-robin or least-loaded) |"
)]
#![cfg_attr(
    not(feature = "worker-channels"),
    doc = "| `worker_channels` | `worker-channels` | sends to one worker's own channel (round-robin or least-loaded) |"
)]
#![cfg_attr(
    feature = "work-stealing",
    doc = "| [`work_stealing`] | `work-stealing` | pushes into a global injector; workers keep local deques and steal |"
)]
#![cfg_attr(
    not(feature = "work-stealing"),
    doc = "| `work_stealing` | `work-stealing` | pushes into a global injector; workers keep local deques and steal |"
)]
#![cfg_attr(feature = "rayon", doc = "| [`rayon_pool`] | `rayon` | `rayon::ThreadPool::spawn` |")]
#![cfg_attr(
    not(feature = "rayon"),
    doc = "| `rayon_pool` | `rayon` | `rayon::ThreadPool::spawn` |"
)]
#![cfg_attr(
    feature = "threadpool",
    doc = "| [`threadpool_crate`] | `threadpool` | the `threadpool` crate's `ThreadPool::execute` |"
)]
#![cfg_attr(
    not(feature = "threadpool"),
    doc = "| `threadpool_crate` | `threadpool` | the `threadpool` crate's `ThreadPool::execute` |"
)]
//! | [`inline`] | `inline` | no hand-off: runs the job on the calling thread |
//!
//! `worker_channels`, `work_stealing`, `rayon_pool` and `threadpool_crate` are
//! behind Cargo features of the same name as the strategy (all on by
//! default); a module whose feature is off is not linked above.
//!
//! Shared plumbing — counting, panic catching, thread naming — lives once in
//! [`counters`] and [`worker`], so that each strategy file reads as the
//! textbook description of that strategy and nothing else. Both are public,
//! and so is the contract every strategy keeps ([`contract`]): a strategy
//! written outside the crate uses the same plumbing, passes the same checks
//! and is served by the same server ([`Server::start_with`]).
//!
//! [`Server::start_with`]: crate::server::Server::start_with
//!
//! The trait is called through `Arc<dyn Dispatcher>`. One indirect call per
//! job costs a few nanoseconds; the cheapest hand-off measured here costs
//! microseconds (a wake-up), so dynamic dispatch does not distort the study.

mod config;
pub mod contract;
pub mod counters;
pub mod inline;
pub mod mutex_queue;
#[cfg(feature = "rayon")]
pub mod rayon_pool;
mod strategy;
pub mod thread_per_task;
#[cfg(feature = "threadpool")]
pub mod threadpool_crate;
#[cfg(feature = "work-stealing")]
pub mod work_stealing;
pub mod worker;
#[cfg(feature = "worker-channels")]
pub mod worker_channels;

use std::fmt;
use std::io;

pub use config::{DispatchConfig, Pick, WakePolicy, default_workers};
pub use strategy::{BuildError, Strategy, StrategyParser, UnknownStrategy};

/// A unit of work handed to a strategy.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A dispatch strategy: something that runs jobs on threads.
///
/// Every implementation runs each accepted job exactly once, survives a
/// panicking job (the panic is caught and counted, the worker keeps going),
/// and on [`shutdown`](Dispatcher::shutdown) runs everything already accepted
/// before it joins its threads.
pub trait Dispatcher: Send + Sync + fmt::Debug {
    /// Hands a job to the strategy.
    ///
    /// A strategy that cannot take the job (shut down, thread creation failed,
    /// at its thread cap) gives it back inside [`Rejected`], so that the
    /// server can answer 503 instead of losing the request.
    fn dispatch(&self, job: Job) -> Result<(), Rejected>;

    /// A snapshot of the strategy's counters.
    fn stats(&self) -> DispatchStats;

    /// Stops intake, lets accepted jobs finish, joins the threads.
    ///
    /// Idempotent; dropping a dispatcher does the same.
    fn shutdown(&self);
}

/// The counters every strategy exposes, read at one moment.
///
/// The fields are read one after another without a lock, so under load a
/// snapshot can be off by the jobs that moved between two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Jobs accepted but not yet started.
    pub queued: u64,
    /// Jobs running right now.
    pub busy: u64,
    /// Threads the strategy keeps alive (workers, or live per-task threads).
    pub threads_alive: u64,
    /// Jobs that returned normally.
    pub completed: u64,
    /// Jobs that panicked (caught; the worker survived).
    pub panicked: u64,
}

/// A job the strategy could not take, given back to the caller.
pub struct Rejected {
    job: Job,
    reason: RejectReason,
}

/// Why a strategy refused a job.
#[derive(Debug)]
#[non_exhaustive]
pub enum RejectReason {
    /// [`Dispatcher::shutdown`] has been called.
    ShutDown,
    /// The operating system refused to create a thread.
    SpawnFailed(io::Error),
    /// The strategy's own cap on live threads was reached.
    AtCapacity {
        /// The configured cap.
        limit: usize,
    },
}

impl Rejected {
    /// Wraps a job that could not be taken.
    pub fn new(job: Job, reason: RejectReason) -> Self {
        Self { job, reason }
    }

    /// Why the job was refused.
    pub fn reason(&self) -> &RejectReason {
        &self.reason
    }

    /// Takes the job back, to run it elsewhere or to answer for it.
    pub fn into_job(self) -> Job {
        self.job
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            RejectReason::ShutDown => f.write_str("job rejected: the dispatcher is shut down"),
            RejectReason::SpawnFailed(err) => write!(f, "job rejected: could not spawn a thread ({err})"),
            RejectReason::AtCapacity { limit } => {
                write!(
                    f,
                    "job rejected: {limit} threads are already running (raise --max-threads)"
                )
            }
        }
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            RejectReason::SpawnFailed(err) => Some(err),
            _ => None,
        }
    }
}
