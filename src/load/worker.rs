//! The threads: [`run_all`] splits the connections, starts one worker per
//! thread, shows progress, and merges what the workers recorded.
//!
//! A worker owns a mio `Poll` (edge-triggered epoll on Linux) and its share
//! of the connections; it blocks only in `Poll::poll`. Its loop:
//!
//! 1. at the warm-up boundary, forget what was recorded;
//! 2. stop at the end of the run, or when every connection has made its
//!    requests (fixed-count mode);
//! 3. fire due timers (open-loop sends, retries after a failure) from a
//!    binary heap; stale entries are skipped;
//! 4. every `sweep` (a twentieth of the shortest timeout, 1–100 ms), check
//!    every connection's connect and response deadlines;
//! 5. poll until the next timer, sweep or boundary, and hand each event to
//!    its connection.
//!
//! All per-request work (issue, write, read, parse, record) happens inside
//! the connections without allocating: the request bytes are rendered once,
//! the read buffer is one per worker, the in-flight queue has its capacity.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::connection::{Conn, MAX_PER_WORKER, WorkerState, split_token};
use super::netstat::Netstat;
use super::plan::LoadPlan;
use super::progress::Progress;
use super::recorder::Recorder;
use super::report::Report;
use super::response::MAX_HEAD;
use super::timer::{TIMER_TOKEN, Wakeup};
use super::{Config, LoadError, request};

/// Counters a worker publishes for the progress line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Live {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub done: std::sync::atomic::AtomicBool,
}

/// Read buffer: room for a kept incomplete head plus a large read.
const SCRATCH: usize = MAX_HEAD + 64 * 1024;

/// Runs `config` (already validated) on its threads.
pub(crate) fn run_all(config: &Config) -> Result<Report, LoadError> {
    let threads = config.effective_threads() as usize;
    let connections = config.connections as usize;
    if connections.div_ceil(threads) > MAX_PER_WORKER {
        return Err(LoadError::InvalidConfig(format!(
            "at most {MAX_PER_WORKER} connections per thread: raise --threads"
        )));
    }
    check_open_files(config.connections)?;
    let request = request::render(config);
    let depth = config.pipeline as usize;
    let start = Instant::now();
    let measure_start = start + config.warmup;
    let plan = LoadPlan {
        addr: config.target.addr,
        sources: config.source_addrs.resolve(config.target.addr, config.connections)?,
        ramp: config.ramp,
        mode: config.mode,
        connections,
        depth,
        request_len: request.len(),
        requests: request::repeated(&request, depth),
        timeout: config.timeout,
        connect_timeout: config.connect_timeout,
        period: config
            .rate
            .map(|rate| Duration::from_secs_f64(connections as f64 / rate)),
        rate: config.rate,
        limit: config.requests_per_connection,
        start,
        measure_start,
        end: measure_start + config.duration,
        stop: config.stop.clone(),
    };
    let live: Vec<Live> = (0..threads).map(|_| Live::default()).collect();
    let mut netstat_before = (config.warmup.is_zero()).then(Netstat::read);
    let mut progress = config.progress.then(|| Progress::new(config));

    let results: Vec<io::Result<Recorder>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        let mut first = 0;
        for (index, live) in live.iter().enumerate() {
            let count = connections / threads + usize::from(index < connections % threads);
            let plan = &plan;
            let handle = std::thread::Builder::new()
                .name(format!("load-{index}"))
                .spawn_scoped(scope, move || {
                    let result = run_worker(plan, first, count, live);
                    live.done.store(true, Ordering::Release);
                    result
                })
                .map_err(|source| LoadError::Setup {
                    what: "start a load thread",
                    source,
                })?;
            handles.push(handle);
            first += count;
        }
        supervise(&plan, &live, &mut netstat_before, progress.as_mut());
        handles
            .into_iter()
            .map(|handle| handle.join().map_err(|_| LoadError::WorkerPanicked))
            .collect::<Result<Vec<_>, LoadError>>()
    })?;
    if let Some(progress) = progress {
        progress.clear();
    }
    let netstat_after = Netstat::read();
    let mut merged: Option<Recorder> = None;
    for result in results {
        let recorder = result.map_err(|source| LoadError::Setup {
            what: "run the event loop",
            source,
        })?;
        match &mut merged {
            Some(merged) => merged.merge(&recorder),
            None => merged = Some(recorder),
        }
    }
    let Some(merged) = merged else {
        return Err(LoadError::InvalidConfig("no load threads ran".into()));
    };
    let netstat = match (netstat_before, netstat_after) {
        (Some(Some(before)), Some(after)) => Some(after.since(&before)),
        _ => None,
    };
    Ok(Report::new(config, &plan, merged, netstat))
}

/// Descriptors a run needs besides its connections (epoll, timerfds,
/// standard streams, the files of the process that runs it).
const OTHER_DESCRIPTORS: u64 = 64;

/// Refuses a run with more connections than the process may open files:
/// it would count every connect past the limit as an `other` error.
fn check_open_files(connections: u32) -> Result<(), LoadError> {
    let Ok((soft, hard)) = crate::rlimit::open_file_limits() else {
        return Ok(());
    };
    let needed = u64::from(connections) + OTHER_DESCRIPTORS;
    if needed <= soft {
        return Ok(());
    }
    Err(LoadError::InvalidConfig(format!(
        "{connections} connections need about {needed} open files, but this process may open {soft} \
         (RLIMIT_NOFILE, hard limit {hard}): raise the hard limit for the shell or service that starts \
         dispatchlab (as root: `ulimit -Hn 1048576`; systemd: LimitNOFILE=; or nofile in \
         /etc/security/limits.conf), or use fewer connections"
    )))
}

/// The calling thread's part while the workers run: the netstat snapshot at
/// the warm-up boundary and the progress line.
fn supervise(
    plan: &LoadPlan,
    live: &[Live],
    netstat_before: &mut Option<Option<Netstat>>,
    mut progress: Option<&mut Progress>,
) {
    const TICK: Duration = Duration::from_millis(50);
    let mut next_draw = plan.start + Duration::from_secs(1);
    while !live.iter().all(|l| l.done.load(Ordering::Acquire)) {
        let now = Instant::now();
        if netstat_before.is_none() && now >= plan.measure_start {
            *netstat_before = Some(Netstat::read());
        }
        if let Some(progress) = progress.as_deref_mut()
            && now >= next_draw
        {
            let requests = live.iter().map(|l| l.requests.load(Ordering::Relaxed)).sum();
            let errors = live.iter().map(|l| l.errors.load(Ordering::Relaxed)).sum();
            progress.draw(now.saturating_duration_since(plan.start), requests, errors);
            next_draw += Duration::from_secs(1);
        }
        std::thread::sleep(TICK);
    }
}

/// One worker: connections `first .. first + count` of the run.
fn run_worker(plan: &LoadPlan, first: usize, count: usize, live: &Live) -> io::Result<Recorder> {
    let mut poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let mut events = Events::with_capacity(1024);
    let mut wakeup = match plan.period {
        Some(_) => Some(Wakeup::new(poll.registry())?),
        None => None,
    };
    let mut scratch = vec![0_u8; SCRATCH];
    let mut warming = plan.measure_start > plan.start;
    let seconds = (plan.end - plan.measure_start).as_secs() as usize;
    let mut ctx = WorkerState {
        plan,
        registry,
        rec: Recorder::new(plan.period.is_some(), plan.measure_start, plan.end, seconds.min(86_400)),
        timers: BinaryHeap::with_capacity(count * 2 + 16),
        finished: 0,
    };
    let total = plan.connections.max(1) as f64;
    let mut conns: Vec<Conn> = (0..count)
        .map(|i| {
            let g = first + i;
            // Open loop: stagger the connections so that the sends of the
            // whole run are evenly spaced.
            let offset = plan
                .rate
                .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(g as f64 / rate));
            let opens_at = plan.start + plan.ramp.mul_f64(g as f64 / total);
            let source = (!plan.sources.is_empty()).then(|| plan.sources[g % plan.sources.len()]);
            Conn::new(i, plan.depth, plan.start + offset, opens_at, source)
        })
        .collect();
    let now = Instant::now();
    for conn in &mut conns {
        conn.pump(&mut ctx, now);
    }
    let sweep =
        (plan.timeout.min(plan.connect_timeout) / 20).clamp(Duration::from_millis(1), Duration::from_millis(100));
    let mut next_sweep = now + sweep;
    loop {
        let now = Instant::now();
        if warming && now >= plan.measure_start {
            ctx.rec.restart();
            warming = false;
        }
        let stopped = plan.stop.as_ref().is_some_and(|stop| stop.load(Ordering::Relaxed));
        if now >= plan.end || stopped || (plan.limit.is_some() && ctx.finished == count) {
            break;
        }
        while let Some(&Reverse((at, index))) = ctx.timers.peek() {
            if at > now {
                break;
            }
            ctx.timers.pop();
            let conn = &mut conns[index];
            if conn.timer == Some(at) {
                conn.on_timer(&mut ctx, now);
            }
        }
        if now >= next_sweep {
            for conn in &mut conns {
                conn.check_timeout(&mut ctx, now);
            }
            next_sweep = now + sweep;
        }
        let mut wake = plan.end.min(next_sweep);
        if warming {
            wake = wake.min(plan.measure_start);
        }
        if let Some(&Reverse((at, _))) = ctx.timers.peek() {
            if let Some(wakeup) = &mut wakeup
                && at < wake
            {
                wakeup.arm(at, now);
            }
            wake = wake.min(at);
        }
        match poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        for event in events.iter() {
            if event.token() == TIMER_TOKEN {
                if let Some(wakeup) = &mut wakeup {
                    wakeup.fired();
                }
                continue;
            }
            let (index, generation) = split_token(event.token());
            if let Some(conn) = conns.get_mut(index)
                && conn.generation_tag() == generation
            {
                conn.on_event(&mut ctx, &mut scratch, event);
            }
        }
        live.requests.store(ctx.rec.requests, Ordering::Relaxed);
        live.errors.store(ctx.rec.errors.total(), Ordering::Relaxed);
    }
    let end = Instant::now().min(plan.end);
    for conn in &conns {
        conn.account_end(&mut ctx, end);
    }
    ctx.rec.stopped_at = end;
    ctx.rec.finished_connections = ctx.finished as u64;
    ctx.rec.connections_served = conns.iter().filter(|conn| conn.served()).count() as u64;
    Ok(ctx.rec)
}
