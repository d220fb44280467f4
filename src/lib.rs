//! # dispatchlab
//!
//! Measures how a server should hand work to threads.
//!
//! Several dispatch strategies sit behind one [`Dispatcher`] trait and serve
//! one identical keep-alive HTTP/1.1 server, so that their results under `wrk`,
//! under the crate's own load generator and under criterion can be compared
//! on the same machine, in the same run.
//!
//! The map of the crate:
//!
//! | module | what it holds |
//! |---|---|
//! | [`dispatch`] | the [`Dispatcher`] trait and one module per strategy |
//! | [`http`] | request parsing, limits, keep-alive rules, response encoding |
//! | [`workload`] | the routes every strategy serves (`/`, `/sleep`, `/spin`, `/bytes`, `/metrics`) |
//! | [`server`] | listener, the two dispatch scopes, the tokio reference server, shutdown, stats |
//! | [`load`] | the load generator: connections, schedules, histograms, reports |
//! | [`compare`] | the runner: server child processes, CPU pinning, `/proc` sampling, result files |
//! | [`results`] | the result schema every measuring tool writes (one row per run) |
//! | [`rlimit`] | raising the open-file limit for the command-line tools |
//! | [`signals`] | Ctrl-C for the command-line tools: stop on the first signal, exit 130 on the second |
#![deny(missing_docs, missing_debug_implementations)]

pub mod compare;
pub mod dispatch;
pub mod http;
pub mod load;
pub mod results;
pub mod rlimit;
pub mod server;
pub mod signals;
pub mod workload;

pub use dispatch::{DispatchConfig, DispatchStats, Dispatcher, Job, RejectReason, Rejected, Strategy};
