//! Samples a server process from `/proc/<pid>` while a run lasts: peak
//! resident set (`VmHWM`), most threads (`Threads`), and CPU seconds
//! (`utime + stime` of `/proc/<pid>/stat`) over the measured part of the run.
//!
//! A server of several processes (nginx: a master and its workers) is
//! sampled as a tree: the figures are summed over the process and its
//! descendants. (A dispatchlab server is one process; its tasks are not
//! walked, which would cost a file read per thread.)
//!
//! A thread reads the files every [`INTERVAL`]; it takes the CPU reading
//! that opens the measurement at the end of the warm-up and the closing one
//! when it is stopped. `VmHWM` is the kernel's own high-water mark, so it is
//! exact; the thread count is the most seen at one sample (a thread that
//! lives less than a sampling interval may be missed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the files are read.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// What the sampler saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Peak resident set, KiB (`VmHWM`).
    pub peak_rss_kib: Option<u64>,
    /// Most threads at one sample.
    pub peak_threads: Option<u64>,
    /// User + system CPU seconds between the start of the measurement and
    /// the stop.
    pub cpu_s: Option<f64>,
}

/// One reading of `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// `VmHWM`, KiB.
    pub hwm_kib: Option<u64>,
    /// `Threads`.
    pub threads: Option<u64>,
    /// `utime + stime`, clock ticks.
    pub cpu_ticks: Option<u64>,
}

impl ProcSample {
    /// Reads the process's files; fields it cannot read stay `None` (the
    /// process may have exited).
    pub fn read(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        Self {
            hwm_kib: status_field(&status, "VmHWM"),
            threads: status_field(&status, "Threads"),
            cpu_ticks: cpu_ticks(&stat),
        }
    }

    /// Reads `pid` and its descendants (a server of several processes, as
    /// nginx's master and workers) and adds them up: the sum of the peak
    /// resident sets, of the threads and of the CPU ticks.
    pub fn read_tree(pid: u32) -> Self {
        let mut total = Self::read(pid);
        for child in descendants(pid) {
            let sample = Self::read(child);
            let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            total.hwm_kib = add(total.hwm_kib, sample.hwm_kib);
            total.threads = add(total.threads, sample.threads);
            total.cpu_ticks = add(total.cpu_ticks, sample.cpu_ticks);
        }
        total
    }
}

/// The descendants of `pid`, from `/proc/<pid>/task/<tid>/children`
/// (processes forked by any of its threads), recursively.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                if !found.contains(&child) && found.len() < 4096 {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
    }
    found
}

/// A numeric field of `/proc/<pid>/status` (`VmHWM:   1234 kB`).
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// `utime + stime` (fields 14 and 15) of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// after its closing parenthesis.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // fields 3..=13
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// User plus system CPU time `pid` has used so far (`/proc/<pid>/stat`);
/// `None` when the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(Duration::from_secs_f64(ticks as f64 / ticks_per_second()))
}

/// A numeric field of `/proc/<pid>/status` (`VmRSS`, `VmHWM` in KiB;
/// `Threads`); `None` when the process is gone or has no such field.
pub fn status_value(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field(&status, name)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A running sampler; [`Sampler::stop`] ends it and returns the usage.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Usage>,
}

impl Sampler {
    /// Starts sampling `pid` (with its descendants when `tree`); the CPU
    /// time counts from `measure_start`.
    pub fn start(pid: u32, tree: bool, measure_start: Instant) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("compare-sampler".into())
            .spawn(move || sample(pid, tree, measure_start, &flag))?;
        Ok(Self { stop, handle })
    }

    /// Takes the closing reading and returns what was seen.
    pub fn stop(self) -> Usage {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

fn sample(pid: u32, tree: bool, measure_start: Instant, stop: &AtomicBool) -> Usage {
    let mut peak_threads: Option<u64> = None;
    let mut peak_rss: Option<u64> = None;
    let mut cpu_at_start: Option<u64> = None;
    let mut take = |sample: ProcSample| {
        peak_threads = peak_threads.max(sample.threads);
        peak_rss = peak_rss.max(sample.hwm_kib);
        sample
    };
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now = Instant::now();
        let sample = take(if tree {
            ProcSample::read_tree(pid)
        } else {
            ProcSample::read(pid)
        });
        if cpu_at_start.is_none() && now >= measure_start {
            cpu_at_start = sample.cpu_ticks;
        }
        if stopping {
            let cpu_s = match (cpu_at_start, sample.cpu_ticks) {
                (Some(start), Some(end)) => Some(end.saturating_sub(start) as f64 / ticks_per_second()),
                _ => None,
            };
            return Usage {
                peak_rss_kib: peak_rss,
                peak_threads,
                cpu_s,
            };
        }
        // Sleep to the next tick, or to the start of the measurement if that
        // comes first, so the opening CPU reading is on time.
        let mut wake = now + INTERVAL;
        if cpu_at_start.is_none() && measure_start > now {
            wake = wake.min(measure_start);
        }
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= wake {
                break;
            }
            thread::sleep((wake - now).min(Duration::from_millis(10)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tdispatchlab\nVmHWM:\t   5120 kB\nVmRSS:\t 4096 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmHWM"), Some(5120));
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "VmSwap"), None);
        // Field 2 with a space and a parenthesis inside.
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 7 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(280));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn samples_this_process() {
        let pid = std::process::id();
        let sampler = Sampler::start(pid, false, Instant::now()).unwrap();
        // Burn a little CPU so the delta can be non-zero (not asserted: the
        // clock tick is 10 ms).
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let usage = sampler.stop();
        assert!(usage.peak_rss_kib.is_some_and(|kib| kib > 0), "{usage:?}");
        assert!(usage.peak_threads.is_some_and(|n| n >= 2), "{usage:?}");
        assert!(usage.cpu_s.is_some_and(|s| s >= 0.0), "{usage:?}");
    }

    #[test]
    fn a_tree_adds_up_its_processes() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = std::process::id();
        assert!(descendants(pid).contains(&child.id()));
        let alone = ProcSample::read(pid);
        let tree = ProcSample::read_tree(pid);
        assert!(tree.threads.unwrap() > alone.threads.unwrap(), "{tree:?} vs {alone:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
