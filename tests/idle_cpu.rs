//! Idle workers must sleep, not spin: over an idle stretch a pool of any
//! strategy uses next to no CPU time.
//!
//! This is a behaviour test, not a speed test: the bound is generous (a
//! spinning worker burns about the whole stretch; a parked one nearly
//! nothing). It lives in its own test binary so that no other test runs in
//! the process while the process CPU time is read.

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::dispatch::DispatchConfig;

const IDLE: Duration = Duration::from_millis(500);

/// User + system CPU time of the whole process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the struct we pass; a zeroed `rusage` is a
    // valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0, "getrusage");
        usage
    };
    let timeval = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1_000);
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

#[test]
fn idle_workers_do_not_burn_cpu() {
    for &strategy in Strategy::ALL {
        let config = DispatchConfig {
            workers: 4,
            // The longest search the benches try; the workers must still park.
            idle_spin: Duration::from_micros(100),
            ..DispatchConfig::default()
        };
        let pool = strategy
            .build(&config)
            .unwrap_or_else(|err| panic!("{strategy}: {err}"));
        // Wake every worker once, then leave the pool alone.
        for _ in 0..1_000 {
            pool.dispatch(Box::new(|| {}))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        }
        std::thread::sleep(Duration::from_millis(50));
        let before = process_cpu_time();
        std::thread::sleep(IDLE);
        let used = process_cpu_time() - before;
        pool.shutdown();
        assert!(
            used < IDLE / 5,
            "{strategy}: idle workers used {used:?} of CPU over {IDLE:?}"
        );
    }
}
