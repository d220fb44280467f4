//! What a hand-off costs, one criterion group per question, every compiled-in
//! strategy in each group (`BenchmarkId::new(strategy, parameter)`):
//!
//! | group | question | parameter |
//! |---|---|---|
//! | `round_trip` | one job dispatched, its completion seen by the dispatching thread: what does waking an idle worker cost? | `back-to-back` (the next job follows at once) or `after-idle` (300 µs untimed pause first: workers have parked), then `/same-cpu` or `/cross-cpu` (below) |
//! | `burst` | 10,000 no-op jobs dispatched from one thread until all are done (elements/s) | `10000` |
//! | `spin` | a batch of CPU-busy jobs (1 µs or 10 µs each): does it scale to the cores? | `<job>-<workers>w` |
//! | `fan_out` | jobs that dispatch two children each from inside a worker (a binary tree of 2,047 jobs) | leaf work: `noop`, `2us` |
//!
//! Floors sit in the same groups: `inline` (no hand-off at all),
//! `floor-channel` (a bare `crossbeam-channel` to one thread that runs the
//! job; in `round_trip`, `burst` and `spin`) and `floor-spawn` (a bare
//! `std::thread::spawn` + `join` per job; in `round_trip` and `burst`).
//! `round_trip` and `burst` also measure `work-stealing` with other
//! `idle_spin` values and wake policies: those are the tuning questions of
//! `src/dispatch/work_stealing/README.md`.
//!
//! `round_trip` pins its threads explicitly, because where the scheduler
//! puts the dispatching thread and the workers decides the figure: a wake-up
//! on the same CPU is a context switch, one on another CPU an inter-processor
//! interrupt and a cache miss, and unpinned runs flip between the two
//! (a bimodal floor). `same-cpu` builds the pool and dispatches from the
//! first allowed CPU; `cross-cpu` builds the pool on the second one (its
//! threads inherit that mask) and dispatches from the first. Threads made
//! per job (`thread-per-task`, `floor-spawn`) are made by the dispatching
//! thread, so they start on its CPU in both variants. On a one-CPU machine
//! only `same-cpu` runs.
//!
//! Run: `cargo bench --bench dispatch` (a few minutes on 2 CPUs), or add
//! `-- --quick`. Pools have 2 workers unless the parameter says otherwise;
//! `round_trip`'s have one, as its floor has one thread.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use crossbeam_channel::{Receiver, Sender};
use dispatchlab::compare::CpuSet;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::results::Machine;
use dispatchlab::{Dispatcher, Job, Strategy};

/// Pool size where the parameter does not say: the development machine's CPUs.
const WORKERS: usize = 2;
/// `round_trip`'s pools: one worker, as the floor has one thread. One job is
/// in flight at a time, so a second worker could only share the workers'
/// CPU with the first (spinning or being woken in its place): the figure
/// would then measure two threads on one CPU, not the hand-off.
const ROUND_TRIP_WORKERS: usize = 1;
const BURST: usize = 10_000;
const IDLE_GAP: Duration = Duration::from_micros(300);
const FAN_OUT_DEPTH: u32 = 10;

/// Something to dispatch jobs to: a strategy with a given configuration.
struct Subject {
    name: String,
    build: Box<dyn Fn(usize) -> Arc<dyn Dispatcher>>,
}

impl Subject {
    fn strategy(strategy: Strategy) -> Self {
        Self::configured(strategy.name().to_owned(), strategy, DispatchConfig::default())
    }

    fn configured(name: String, strategy: Strategy, base: DispatchConfig) -> Self {
        Self {
            name,
            build: Box::new(move |workers| {
                let config = DispatchConfig {
                    workers,
                    ..base.clone()
                };
                strategy
                    .build(&config)
                    .unwrap_or_else(|err| panic!("{strategy}: {err}"))
            }),
        }
    }

    /// Built once and leaked, so that jobs can hold a `&'static` to it (fan
    /// out) without an `Arc` clone per job; shut down by the caller.
    fn leak(&self, workers: usize) -> &'static dyn Dispatcher {
        let pool: &'static Arc<dyn Dispatcher> = Box::leak(Box::new((self.build)(workers)));
        &**pool
    }
}

/// Every compiled-in strategy at its default configuration.
fn strategies() -> Vec<Subject> {
    Strategy::ALL
        .iter()
        .map(|&strategy| Subject::strategy(strategy))
        .collect()
}

/// The `work-stealing` tuning variants (none without the feature).
fn work_stealing_variants() -> Vec<Subject> {
    #[cfg(feature = "work-stealing")]
    {
        use dispatchlab::dispatch::WakePolicy;
        use dispatchlab::dispatch::work_stealing::WorkStealing;
        let spin = |micros: u64| {
            let config = DispatchConfig {
                idle_spin: Duration::from_micros(micros),
                ..DispatchConfig::default()
            };
            Subject::configured(format!("work-stealing-spin{micros}us"), Strategy::WorkStealing, config)
        };
        let wake = |name: &str, policy: WakePolicy| Subject {
            name: format!("work-stealing-{name}"),
            build: Box::new(move |workers| {
                Arc::new(WorkStealing::with_wake_policy(workers, Duration::ZERO, policy).expect("build work-stealing"))
            }),
        };
        vec![
            spin(20),
            spin(100),
            wake("wake-per-job", WakePolicy::OnePerJob),
            wake("wake-all", WakePolicy::All),
        ]
    }
    #[cfg(not(feature = "work-stealing"))]
    Vec::new()
}

/// A countdown whose last tick is reported on a channel: how the dispatching
/// thread sees that its jobs are done.
struct Countdown {
    remaining: AtomicUsize,
    done_tx: Sender<()>,
    done_rx: Receiver<()>,
}

impl Countdown {
    fn leak() -> &'static Countdown {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        Box::leak(Box::new(Countdown {
            remaining: AtomicUsize::new(0),
            done_tx,
            done_rx,
        }))
    }

    fn arm(&self, jobs: usize) {
        self.remaining.store(jobs, Ordering::Relaxed);
    }

    fn tick(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done_tx.send(()).expect("the bench waits for the countdown");
        }
    }

    fn wait(&self) {
        self.done_rx.recv().expect("the countdown's sender is leaked");
    }
}

fn dispatch(pool: &dyn Dispatcher, job: Job) {
    if let Err(rejected) = pool.dispatch(job) {
        panic!("a bench job was refused: {rejected}");
    }
}

/// CPU-bound work: `iterations` rounds of arithmetic the optimiser must keep.
fn busy(iterations: u64) {
    let mut x = 0u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    black_box(x);
}

/// Iterations of [`busy`] per microsecond on this machine (the fastest of a
/// few tries: the least disturbed by other load).
fn busy_per_micro() -> u64 {
    const PROBE: u64 = 2_000_000;
    let fastest = (0..5)
        .map(|_| {
            let start = Instant::now();
            busy(PROBE);
            start.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    (PROBE as f64 / (fastest.as_secs_f64() * 1e6)).max(1.0) as u64
}

/// A thread that runs each job it receives: the bare channel hand-off.
struct ChannelFloor {
    jobs: Option<Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ChannelFloor {
    fn start() -> Self {
        let (jobs, inbox) = crossbeam_channel::unbounded::<Job>();
        let thread = thread::Builder::new()
            .name("floor-channel".into())
            .spawn(move || inbox.iter().for_each(|job| job()))
            .expect("spawn the floor thread");
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            jobs.send(job).expect("the floor thread runs until dropped");
        }
    }
}

impl Drop for ChannelFloor {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, measure_ms: u64) {
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(measure_ms));
}

/// Times one round trip, `iters` times, each after `gap` of untimed idleness.
fn time_round_trips(iters: u64, gap: Duration, mut round_trip: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if !gap.is_zero() {
            thread::sleep(gap);
        }
        let start = Instant::now();
        round_trip();
        total += start.elapsed();
    }
    total
}

/// Where `round_trip` puts the dispatching thread and the workers.
struct Placement {
    name: &'static str,
    submit: CpuSet,
    workers: CpuSet,
}

/// `same-cpu`, and `cross-cpu` when the process may use two CPUs.
fn placements() -> Vec<Placement> {
    let allowed = CpuSet::of_current_thread().expect("read the CPU mask");
    let cpu = |index: usize| allowed.cpus().get(index).map(|&cpu| CpuSet::new(vec![cpu]));
    let first = cpu(0).expect("at least one allowed CPU");
    let mut placements = vec![Placement {
        name: "same-cpu",
        submit: first.clone(),
        workers: first.clone(),
    }];
    if let Some(second) = cpu(1) {
        placements.push(Placement {
            name: "cross-cpu",
            submit: first,
            workers: second,
        });
    }
    placements
}

impl Placement {
    /// Builds with the calling thread on the workers' CPU (threads started
    /// now inherit it), then moves the calling thread to the submit CPU.
    fn build<T>(&self, build: impl FnOnce() -> T) -> T {
        self.workers.pin_current_thread().expect("pin to the workers' CPU");
        let built = build();
        self.submit.pin_current_thread().expect("pin to the submit CPU");
        built
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    let subjects: Vec<Subject> = strategies().into_iter().chain(work_stealing_variants()).collect();
    let done = Countdown::leak();
    let _restore = CpuSet::of_current_thread()
        .and_then(|mask| mask.pin_scoped())
        .expect("remember the CPU mask");
    for placement in placements() {
        for (timing, gap, measure_ms) in [("back-to-back", Duration::ZERO, 1_000), ("after-idle", IDLE_GAP, 300)] {
            let parameter = format!("{timing}/{}", placement.name);
            configure(&mut group, 30, measure_ms);
            for subject in &subjects {
                let pool = placement.build(|| (subject.build)(ROUND_TRIP_WORKERS));
                group.bench_function(BenchmarkId::new(&subject.name, &parameter), |b| {
                    b.iter_custom(|iters| {
                        time_round_trips(iters, gap, || {
                            done.arm(1);
                            dispatch(&*pool, Box::new(|| done.tick()));
                            done.wait();
                        })
                    })
                });
                pool.shutdown();
            }
            let floor = placement.build(ChannelFloor::start);
            group.bench_function(BenchmarkId::new("floor-channel", &parameter), |b| {
                b.iter_custom(|iters| {
                    time_round_trips(iters, gap, || {
                        done.arm(1);
                        floor.send(Box::new(|| done.tick()));
                        done.wait();
                    })
                })
            });
            group.bench_function(BenchmarkId::new("floor-spawn", &parameter), |b| {
                b.iter_custom(|iters| {
                    time_round_trips(iters, gap, || {
                        thread::spawn(|| black_box(()))
                            .join()
                            .expect("the floor thread does nothing");
                    })
                })
            });
        }
    }
    group.finish();
}

fn burst(c: &mut Criterion) {
    let mut group = c.benchmark_group("burst");
    configure(&mut group, 10, 1_000);
    group.throughput(Throughput::Elements(BURST as u64));
    let done = Countdown::leak();
    let parameter = BURST.to_string();
    for subject in strategies().iter().chain(&work_stealing_variants()) {
        let pool = (subject.build)(WORKERS);
        group.bench_function(BenchmarkId::new(&subject.name, &parameter), |b| {
            b.iter(|| {
                done.arm(BURST);
                for _ in 0..BURST {
                    dispatch(&*pool, Box::new(|| done.tick()));
                }
                done.wait();
            })
        });
        pool.shutdown();
    }
    let floor = ChannelFloor::start();
    group.bench_function(BenchmarkId::new("floor-channel", &parameter), |b| {
        b.iter(|| {
            done.arm(BURST);
            for _ in 0..BURST {
                floor.send(Box::new(|| done.tick()));
            }
            done.wait();
        })
    });
    // Tens of milliseconds an iteration: the same count in every sample.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(BenchmarkId::new("floor-spawn", &parameter), |b| {
        b.iter(|| {
            let threads: Vec<_> = (0..BURST).map(|_| thread::spawn(|| black_box(()))).collect();
            for thread in threads {
                thread.join().expect("the floor thread does nothing");
            }
        })
    });
    group.finish();
}

fn spin(c: &mut Criterion) {
    let per_micro = busy_per_micro();
    eprintln!("spin: {per_micro} busy-loop iterations ≈ 1 µs on this machine");
    let mut group = c.benchmark_group("spin");
    configure(&mut group, 15, 800);
    let done = Countdown::leak();
    // (job length, jobs per batch): about 1 ms and 2 ms of work per batch.
    for (micros, batch) in [(1u64, 1_000usize), (10, 200)] {
        group.throughput(Throughput::Elements(batch as u64));
        let iterations = micros * per_micro;
        for subject in strategies() {
            let worker_counts: &[usize] = match subject.name.as_str() {
                "inline" => &[1],          // the calling thread: one worker by nature
                "thread-per-task" => &[0], // a thread per job: no worker count
                _ => &[1, 2, 4],
            };
            for &workers in worker_counts {
                let parameter = match workers {
                    0 => format!("{micros}us-perjob"),
                    n => format!("{micros}us-{n}w"),
                };
                let pool = (subject.build)(workers.max(1));
                group.bench_function(BenchmarkId::new(&subject.name, parameter), |b| {
                    b.iter(|| {
                        done.arm(batch);
                        for _ in 0..batch {
                            dispatch(
                                &*pool,
                                Box::new(move || {
                                    busy(iterations);
                                    done.tick();
                                }),
                            );
                        }
                        done.wait();
                    })
                });
                pool.shutdown();
            }
        }
        let floor = ChannelFloor::start();
        group.bench_function(BenchmarkId::new("floor-channel", format!("{micros}us-1w")), |b| {
            b.iter(|| {
                done.arm(batch);
                for _ in 0..batch {
                    floor.send(Box::new(move || {
                        busy(iterations);
                        done.tick();
                    }));
                }
                done.wait();
            })
        });
    }
    group.finish();
}

/// A job that does `work` iterations of [`busy`], then dispatches two
/// children until `depth` reaches [`FAN_OUT_DEPTH`].
fn tree_job(pool: &'static dyn Dispatcher, done: &'static Countdown, work: u64, depth: u32) -> Job {
    Box::new(move || {
        busy(work);
        if depth < FAN_OUT_DEPTH {
            for _ in 0..2 {
                dispatch(pool, tree_job(pool, done, work, depth + 1));
            }
        }
        done.tick();
    })
}

fn fan_out(c: &mut Criterion) {
    let per_micro = busy_per_micro();
    let jobs = (1usize << (FAN_OUT_DEPTH + 1)) - 1;
    let mut group = c.benchmark_group("fan_out");
    configure(&mut group, 15, 800);
    group.throughput(Throughput::Elements(jobs as u64));
    let done = Countdown::leak();
    for (parameter, work) in [("noop", 0), ("2us", 2 * per_micro)] {
        for subject in strategies() {
            let pool = subject.leak(WORKERS);
            group.bench_function(BenchmarkId::new(&subject.name, parameter), |b| {
                b.iter(|| {
                    done.arm(jobs);
                    dispatch(pool, tree_job(pool, done, work, 0));
                    done.wait();
                })
            });
            pool.shutdown();
        }
    }
    group.finish();
}

fn print_context(_: &mut Criterion) {
    let machine = Machine::detect();
    eprintln!(
        "dispatch bench: {} CPUs, {}, {}, git {}, pools of {WORKERS} workers unless the parameter says ({ROUND_TRIP_WORKERS} in round_trip)",
        machine.cpus, machine.kernel, machine.rustc, machine.git_rev
    );
}

criterion_group!(benches, print_context, round_trip, burst, spin, fan_out);
criterion_main!(benches);
