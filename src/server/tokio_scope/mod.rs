//! The tokio reference server: the same HTTP server on tokio's
//! multi-threaded, work-stealing runtime, as a yardstick for the strategies.
//!
//! It is not a [`Dispatcher`](crate::Dispatcher) and not a third dispatch
//! scope: it hands no jobs to threads. The runtime owns the sockets (its I/O
//! driver is an epoll loop like request scope's) and its worker threads
//! (`--workers`) poll one task per connection; a task that waits — for bytes,
//! for a write to drain, for `/sleep`'s timer — yields its worker to another
//! task. So it lives here, beside the two scopes, because it shares
//! everything else of the server with them: the listener (socket2: backlog,
//! reuse flags), the codec ([`crate::http`]), the routes and their
//! request → response path (`Service`: `/spin` burns CPU on the worker,
//! `/sleep` is the handler's [`Reply::After`](crate::workload::Reply), awaited
//! on the runtime's timer instead of blocking), the limits, timeouts,
//! counters, accept back-off and graceful shutdown.
//!
//! Shutdown: the shared flag is raised, then a `watch` channel wakes the
//! acceptor (which stops accepting) and every connection task waiting for a
//! request (which closes); a task in the middle of a request answers it with
//! `Connection: close`. [`TokioFront::stop`] returns when the last task has
//! ended and the runtime's threads are joined.

mod connection;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

use crate::http::Limits;

use super::accept::{AcceptBackoff, AcceptFailure};
use super::service::Service;
use super::{ServeError, Timeouts};

/// What every connection task shares.
#[derive(Debug)]
struct TaskShared {
    service: Service,
    limits: Limits,
    timeouts: Timeouts,
}

/// Builds the runtime: `workers` worker threads, I/O and timers enabled.
/// The counter beside it is the number of the runtime's threads alive,
/// counted as they start and stop (workers, and blocking-pool threads if
/// anything ever spawns one), for `dispatchlab_dispatch_threads_alive`.
pub(super) fn runtime(workers: usize) -> Result<(Runtime, Arc<AtomicU64>), ServeError> {
    if workers == 0 {
        return Err(ServeError::Setup(io::Error::new(
            io::ErrorKind::InvalidInput,
            "tokio needs at least one worker thread; pass --workers 1 or more",
        )));
    }
    let alive = Arc::new(AtomicU64::new(0));
    let (started, stopped) = (Arc::clone(&alive), Arc::clone(&alive));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("dispatchlab-tokio")
        .on_thread_start(move || {
            started.fetch_add(1, Ordering::Relaxed);
        })
        .on_thread_stop(move || {
            stopped.fetch_sub(1, Ordering::Relaxed);
        })
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Setup)?;
    Ok((runtime, alive))
}

/// The running runtime, its acceptor and connection tasks.
#[derive(Debug)]
pub(super) struct TokioFront {
    runtime: Runtime,
    stop: watch::Sender<bool>,
    /// Every task holds a sender; `recv` returns `None` once all have ended.
    tasks_ended: mpsc::Receiver<()>,
}

impl TokioFront {
    /// Starts accepting on `listener` (non-blocking, from `listener::bind`).
    pub(super) fn start(
        runtime: Runtime,
        listener: std::net::TcpListener,
        service: Service,
        limits: Limits,
        timeouts: Timeouts,
    ) -> Result<Self, ServeError> {
        let listener = {
            let _inside = runtime.enter();
            TcpListener::from_std(listener).map_err(ServeError::Setup)?
        };
        let (stop, stopped) = watch::channel(false);
        let (task_alive, tasks_ended) = mpsc::channel(1);
        let shared = Arc::new(TaskShared {
            service,
            limits,
            timeouts,
        });
        runtime.spawn(accept_loop(listener, shared, stopped, task_alive));
        Ok(Self {
            runtime,
            stop,
            tasks_ended,
        })
    }

    /// Stops accepting, closes idle connections, lets requests in flight
    /// finish (answered with `Connection: close`), then joins the runtime's
    /// threads. The caller raises the shutdown flag first.
    pub(super) fn stop(self) {
        let Self {
            runtime,
            stop,
            mut tasks_ended,
        } = self;
        // Fails only if every receiver is gone, that is, every task ended.
        let _ = stop.send(true);
        runtime.block_on(async { while tasks_ended.recv().await.is_some() {} });
    }
}

/// Accepts until shutdown, one task per connection; backs off when the
/// process is out of descriptors, as the other scopes do.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<TaskShared>,
    mut stopped: watch::Receiver<bool>,
    task_alive: mpsc::Sender<()>,
) {
    let mut backoff = AcceptBackoff::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff.succeeded();
                // As `listener::configure_accepted`: answers leave at once.
                let _ = stream.set_nodelay(true);
                shared.service.stats.connection_opened();
                let task = connection::serve(stream, Arc::clone(&shared), stopped.clone(), task_alive.clone());
                tokio::spawn(task);
            }
            Err(err) => match backoff.failed(&err) {
                AcceptFailure::ConnectionOnly => {}
                AcceptFailure::BackOff(delay) => tokio::select! {
                    _ = stopped.changed() => return,
                    () = tokio::time::sleep(delay) => {}
                },
            },
        }
    }
}
