//! The server's own counters, rendered for `/metrics` (Prometheus text) and
//! for the periodic one-line report.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use super::budget::Budget;
use crate::dispatch::{DispatchStats, Dispatcher};
use crate::http::Status;
use crate::workload::MetricsSource;

/// Counters shared by every thread of one server.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    connections_waiting: AtomicU64,
    requests_total: AtomicU64,
    requests_in_flight: AtomicU64,
    /// Responses by status class, index 0 = 1xx … 4 = 5xx.
    responses: [AtomicU64; 5],
    /// Requests answered 503 because the strategy refused the job.
    rejected_total: AtomicU64,
    handler_panics_total: AtomicU64,
    accept_errors_total: AtomicU64,
}

/// The counters read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connection scope: connections accepted and handed to the strategy
    /// whose job has not started yet (waiting for a worker).
    pub connections_waiting: u64,
    /// Requests decoded since start.
    pub requests_total: u64,
    /// Requests decoded and not yet answered (handed to the strategy and
    /// waiting for, or running, their job).
    pub requests_in_flight: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub responses: [u64; 5],
    /// Requests answered 503 because the strategy refused the job.
    pub rejected_total: u64,
    /// Handlers that panicked (answered 500).
    pub handler_panics_total: u64,
    /// `accept` calls that failed (EMFILE and friends).
    pub accept_errors_total: u64,
}

impl ServerStats {
    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// A connection is handed to the strategy and waits for a worker.
    pub(crate) fn connection_queued(&self) {
        self.connections_waiting.fetch_add(1, Relaxed);
    }

    /// A worker took up a queued connection (or the strategy gave it back).
    pub(crate) fn connection_dequeued(&self) {
        self.connections_waiting.fetch_sub(1, Relaxed);
    }

    /// Connections waiting for a worker now.
    pub(crate) fn connections_waiting(&self) -> u64 {
        self.connections_waiting.load(Relaxed)
    }

    pub(crate) fn request(&self) {
        self.requests_total.fetch_add(1, Relaxed);
    }

    /// A request is handed over for an answer.
    pub(crate) fn request_started(&self) {
        self.requests_in_flight.fetch_add(1, Relaxed);
    }

    /// Its answer is back.
    pub(crate) fn request_answered(&self) {
        self.requests_in_flight.fetch_sub(1, Relaxed);
    }

    pub(crate) fn response(&self, status: Status) {
        let class = usize::from(status.class()).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.rejected_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn handler_panicked(&self) {
        self.handler_panics_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors_total.fetch_add(1, Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            connections_waiting: self.connections_waiting.load(Relaxed),
            requests_total: self.requests_total.load(Relaxed),
            requests_in_flight: self.requests_in_flight.load(Relaxed),
            responses: std::array::from_fn(|class| self.responses[class].load(Relaxed)),
            rejected_total: self.rejected_total.load(Relaxed),
            handler_panics_total: self.handler_panics_total.load(Relaxed),
            accept_errors_total: self.accept_errors_total.load(Relaxed),
        }
    }
}

/// Where the `dispatch_*` counters come from.
#[derive(Debug, Clone)]
pub(crate) enum DispatchSource {
    /// A strategy. Weak, because the dispatcher's jobs hold the workload
    /// that holds this.
    Dispatcher(Weak<dyn Dispatcher>),
    /// tokio's runtime: its injection queue and its threads alive (counted
    /// by the runtime's thread start and stop hooks). It runs tasks, not
    /// jobs, so the job counters (busy, completed, panicked) do not apply
    /// and are not shown. (The handle's cycle through the tasks ends when
    /// the runtime shuts down and drops them.)
    #[cfg(feature = "tokio")]
    Tokio {
        /// The runtime's handle, for its metrics.
        handle: tokio::runtime::Handle,
        /// The runtime's threads alive.
        threads_alive: Arc<std::sync::atomic::AtomicU64>,
    },
}

impl DispatchSource {
    pub(crate) fn stats(&self) -> DispatchStats {
        match self {
            DispatchSource::Dispatcher(dispatcher) => dispatcher.upgrade().map(|d| d.stats()).unwrap_or_default(),
            #[cfg(feature = "tokio")]
            DispatchSource::Tokio { handle, threads_alive } => DispatchStats {
                queued: handle.metrics().global_queue_depth() as u64,
                threads_alive: threads_alive.load(Relaxed),
                ..DispatchStats::default()
            },
        }
    }

    /// Whether busy, completed and panicked jobs are counted.
    fn counts_jobs(&self) -> bool {
        matches!(self, DispatchSource::Dispatcher(_))
    }
}

/// What `/metrics` shows: the server counters, the strategy's counters and
/// labels saying which server this is.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) dispatch: DispatchSource,
    pub(crate) strategy: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) workers: usize,
}

impl MetricsSource for ServerMetrics {
    fn render(&self) -> String {
        let mut out = render_prometheus(&self.stats.snapshot(), &self.dispatch.stats(), self);
        render_budget(&self.budget, &mut out);
        out
    }
}

fn render_prometheus(stats: &StatsSnapshot, dispatch: &DispatchStats, server: &ServerMetrics) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP dispatchlab_{name} {help}\n# TYPE dispatchlab_{name} {kind}\ndispatchlab_{name} {value}\n"
        );
    };
    metric(
        "connections_open",
        "gauge",
        "Connections open now.",
        stats.connections_open,
    );
    metric(
        "connections_total",
        "counter",
        "Connections accepted.",
        stats.connections_total,
    );
    metric(
        "connections_waiting",
        "gauge",
        "Connection scope: accepted connections waiting for a worker.",
        stats.connections_waiting,
    );
    metric("requests_total", "counter", "Requests decoded.", stats.requests_total);
    metric(
        "requests_in_flight",
        "gauge",
        "Requests decoded and not yet answered.",
        stats.requests_in_flight,
    );
    metric(
        "rejected_total",
        "counter",
        "Jobs the strategy refused (answered 503).",
        stats.rejected_total,
    );
    metric(
        "handler_panics_total",
        "counter",
        "Handlers that panicked (answered 500).",
        stats.handler_panics_total,
    );
    metric(
        "accept_errors_total",
        "counter",
        "Failed accept calls.",
        stats.accept_errors_total,
    );
    metric(
        "dispatch_queued",
        "gauge",
        "Jobs accepted by the strategy, not started.",
        dispatch.queued,
    );
    metric(
        "dispatch_threads_alive",
        "gauge",
        "Threads the strategy keeps alive.",
        dispatch.threads_alive,
    );
    if server.dispatch.counts_jobs() {
        metric("dispatch_busy", "gauge", "Jobs running now.", dispatch.busy);
        metric(
            "dispatch_completed_total",
            "counter",
            "Jobs that returned.",
            dispatch.completed,
        );
        metric(
            "dispatch_panicked_total",
            "counter",
            "Jobs that panicked (caught).",
            dispatch.panicked,
        );
    }
    let _ = write!(
        out,
        "# HELP dispatchlab_responses_total Responses sent, by status class.\n# TYPE dispatchlab_responses_total counter\n"
    );
    for (index, count) in stats.responses.iter().enumerate() {
        let _ = writeln!(out, "dispatchlab_responses_total{{class=\"{}xx\"}} {count}", index + 1);
    }
    let _ = write!(
        out,
        "# HELP dispatchlab_info Which server this is.\n# TYPE dispatchlab_info gauge\n\
         dispatchlab_info{{strategy=\"{}\",scope=\"{}\",workers=\"{}\"}} 1\n",
        server.strategy, server.scope, server.workers
    );
    out
}

/// The budget's two gauges: bytes buffered now and the budget.
fn render_budget(budget: &Budget, out: &mut String) {
    for (name, help, value) in [
        (
            "buffered_bytes",
            "Bytes buffered for clients now (read buffers, unwritten output, answers not yet written).",
            budget.in_use(),
        ),
        (
            "buffer_budget_bytes",
            "The budget for buffered bytes (--buffer-budget); at it, connections with unwritten output wait.",
            budget.limit(),
        ),
    ] {
        let _ = write!(
            out,
            "# HELP dispatchlab_{name} {help}\n# TYPE dispatchlab_{name} gauge\ndispatchlab_{name} {value}\n"
        );
    }
}

/// The `--stats-interval` line's budget part: bytes buffered of the budget.
pub(crate) fn budget_report(budget: &Budget) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!(
        "buffered {:.1}/{:.1} MiB",
        budget.in_use() as f64 / MIB,
        budget.limit() as f64 / MIB
    )
}

/// The one-line report printed every `--stats-interval`. `busy` is `n/a`
/// where nothing counts jobs (tokio runs tasks); `panics` counts the
/// handler panics every server catches, plus the strategy's own.
pub(crate) fn report_line(
    now: &StatsSnapshot,
    before: &StatsSnapshot,
    seconds: f64,
    source: &DispatchSource,
) -> String {
    let dispatch = source.stats();
    let answered = |s: &StatsSnapshot| s.responses.iter().sum::<u64>();
    let rate = (answered(now) - answered(before)) as f64 / seconds.max(f64::EPSILON);
    let busy = if source.counts_jobs() {
        dispatch.busy.to_string()
    } else {
        "n/a".to_owned()
    };
    format!(
        "{rate:>9.0} req/s | conns {:>6} open {:>8} total | queued {:>5} busy {busy:>4} threads {:>5} | 4xx {} 5xx {} rejected {} panics {}",
        now.connections_open,
        now.connections_total,
        dispatch.queued,
        dispatch.threads_alive,
        now.responses[3],
        now.responses[4],
        now.rejected_total,
        now.handler_panics_total + dispatch.panicked,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_has_help_type_and_values() {
        let stats = Arc::new(ServerStats::default());
        stats.connection_opened();
        stats.request();
        stats.response(Status::OK);
        stats.response(Status::NOT_FOUND);
        let dispatcher: Arc<dyn Dispatcher> = Arc::new(crate::dispatch::inline::Inline::new());
        let budget = Arc::new(Budget::new(4096));
        budget.charge(100);
        let metrics = ServerMetrics {
            stats,
            budget,
            dispatch: DispatchSource::Dispatcher(Arc::downgrade(&dispatcher)),
            strategy: "inline",
            scope: "request",
            workers: 1,
        };
        let text = metrics.render();
        for line in [
            "# TYPE dispatchlab_connections_open gauge",
            "dispatchlab_connections_open 1",
            "dispatchlab_requests_total 1",
            "dispatchlab_responses_total{class=\"2xx\"} 1",
            "dispatchlab_responses_total{class=\"4xx\"} 1",
            "dispatchlab_dispatch_threads_alive 0",
            "dispatchlab_info{strategy=\"inline\",scope=\"request\",workers=\"1\"} 1",
            "dispatchlab_buffered_bytes 100",
            "dispatchlab_buffer_budget_bytes 4096",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn the_report_line_shows_the_budget_in_use() {
        let budget = Budget::new(32 * 1024 * 1024);
        budget.charge(1024 * 1024 + 512 * 1024);
        assert_eq!(budget_report(&budget), "buffered 1.5/32.0 MiB");
    }

    #[test]
    fn the_report_line_prints_busy_only_where_jobs_are_counted() {
        let now = StatsSnapshot::default();
        let dispatcher: Arc<dyn Dispatcher> = Arc::new(crate::dispatch::inline::Inline::new());
        let strategy = DispatchSource::Dispatcher(Arc::downgrade(&dispatcher));
        let line = report_line(&now, &now, 1.0, &strategy);
        assert!(line.contains("busy    0 "), "{line}");
        #[cfg(feature = "tokio")]
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            let tokio = DispatchSource::Tokio {
                handle: runtime.handle().clone(),
                threads_alive: Arc::default(),
            };
            let line = report_line(&now, &now, 1.0, &tokio);
            assert!(line.contains("busy  n/a "), "{line}");
        }
    }
}
