//! Disturbance: how much of the server's and the load generator's CPUs
//! went to someone else while a run was measured.
//!
//! The runner pins the server to one CPU set and the load generator to
//! another, so during a measurement each set should be busy with exactly one
//! of them. `/proc/stat` says how busy each CPU was; the sampler and
//! `/proc/self/stat` say how much of that was ours. The rest, plus the steal
//! time (a hypervisor running another guest on our virtual CPU), is the
//! disturbance:
//!
//! ```text
//! disturbance(set) = (busy(set) − ours(set) + steal(set)) / (elapsed ticks × CPUs in set)
//! busy = user + nice + system        (interrupt time left out: see below)
//! ```
//!
//! Interrupt and softirq time is not counted either way: loopback traffic
//! is processed in softirq context on both sets, and with
//! `CONFIG_IRQ_TIME_ACCOUNTING` the kernel charges it to no process, so
//! counting it would report the run's own packets as disturbance. The
//! figure is therefore a lower bound on the time others took (an interrupt
//! storm from elsewhere does not show), and says so in results/README.md.
//!
//! The runner opens a [`Window`] just before the load generator starts
//! (warm-up included) and closes it when the load ends. "Ours" is the
//! server's process tree (`/proc/<pid>/stat`, its descendants too) on the
//! server set and the runner's own process (`/proc/self/stat`: the load
//! generator runs in-process, on the load set) on the load set. When the
//! two sets are one (unpinned, or overlapping sets) a single share is
//! taken over all of their CPUs with both subtracted. The result goes into
//! the `disturbance` column ([`Disturbance`]'s `Display`), and a run with a
//! share above [`DISTURBED_ABOVE`] is flagged in `outcome` (`disturbed:
//! …`), which `--retry-disturbed` measures again.
//!
//! [`BUSY_LOAD_AVERAGE`] is the 1-minute load average above which
//! `summary.md` warns that the machine was busy before the run began.

use std::fmt;
use std::io;

use super::sampler::{ProcSample, cpu_ticks};

/// The disturbance share above which a run is flagged: 5 % of its CPUs'
/// time went to others. A quiet machine shows well under 1 %; a `cargo
/// build` on the other CPU of a 2-CPU machine shows 30–100 %.
pub const DISTURBED_ABOVE: f64 = 0.05;

/// The 1-minute load average above which the machine counts as busy before
/// a run: half a CPU kept busy on average by others. The findings are to be
/// measured below it (issue 17); a quiet 2-CPU machine reads under 0.3.
pub const BUSY_LOAD_AVERAGE: f64 = 0.5;

/// What an `outcome` flagged as disturbed starts with.
pub const DISTURBED: &str = "disturbed";

/// The time one CPU spent, in clock ticks, from one line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// user + nice + system (guest time is inside user).
    pub busy: u64,
    /// Time taken by the hypervisor for other guests.
    pub steal: u64,
    /// Every field added up: the CPU's elapsed ticks.
    pub total: u64,
}

/// One reading of `/proc/stat`: the ticks of every CPU, by CPU number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes(Vec<(usize, CpuTicks)>);

impl CpuTimes {
    /// Reads `/proc/stat`.
    pub fn read() -> io::Result<CpuTimes> {
        std::fs::read_to_string("/proc/stat").map(|text| CpuTimes::parse(&text))
    }

    /// Parses the `cpuN` lines of `/proc/stat` (the aggregate `cpu` line is
    /// left out; lines it cannot read are skipped).
    pub fn parse(text: &str) -> CpuTimes {
        CpuTimes(text.lines().filter_map(parse_cpu_line).collect())
    }

    fn get(&self, cpu: usize) -> Option<CpuTicks> {
        self.0
            .iter()
            .find(|(number, _)| *number == cpu)
            .map(|&(_, ticks)| ticks)
    }
}

fn parse_cpu_line(line: &str) -> Option<(usize, CpuTicks)> {
    let mut fields = line.split_ascii_whitespace();
    let number = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
    let values: Vec<u64> = fields.map(str::parse).collect::<Result<_, _>>().ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let field = |index: usize| values.get(index).copied().unwrap_or(0);
    // guest and guest_nice are already counted in user and nice.
    let total = values.iter().take(8).sum();
    let ticks = CpuTicks {
        busy: field(0) + field(1) + field(2),
        steal: field(7),
        total,
    };
    (values.len() >= 4).then_some((number, ticks))
}

/// The share of the time of `cpus` between `before` and `after` that went
/// to others, given `ours`: the ticks our own processes spent on those CPUs
/// meanwhile. `None` when a CPU is missing from either reading or no time
/// passed.
pub fn share(before: &CpuTimes, after: &CpuTimes, cpus: &[usize], ours: u64) -> Option<f64> {
    let mut busy = 0u64;
    let mut steal = 0u64;
    let mut total = 0u64;
    for &cpu in cpus {
        let (start, end) = (before.get(cpu)?, after.get(cpu)?);
        busy += end.busy.saturating_sub(start.busy);
        steal += end.steal.saturating_sub(start.steal);
        total += end.total.saturating_sub(start.total);
    }
    let others = busy.saturating_sub(ours) + steal;
    (total > 0).then(|| (others as f64 / total as f64).min(1.0))
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// The CPU sets whose disturbance a run measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sets {
    /// Disjoint server and load sets, each measured on its own.
    Pinned {
        /// The server's CPUs.
        server: Vec<usize>,
        /// The load generator's CPUs.
        load: Vec<usize>,
    },
    /// Server and load share these CPUs.
    Shared(Vec<usize>),
}

/// The disturbance of one run, shares 0 to 1 (`None`: not readable).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Disturbance {
    /// Of the server's and of the load generator's CPU sets.
    Pinned {
        /// Others' share of the server CPUs.
        server: Option<f64>,
        /// Others' share of the load CPUs.
        load: Option<f64>,
    },
    /// Of the CPUs server and load shared.
    Shared(Option<f64>),
}

impl Disturbance {
    /// The larger share (unreadable ones left out).
    pub fn worst(&self) -> Option<f64> {
        match *self {
            Disturbance::Pinned { server, load } => match (server, load) {
                (Some(s), Some(l)) => Some(s.max(l)),
                (s, l) => s.or(l),
            },
            Disturbance::Shared(all) => all,
        }
    }

    /// `disturbed: server CPUs 12.3 % to others (above 5 %)` when a share
    /// exceeds [`DISTURBED_ABOVE`].
    pub fn flag(&self) -> Option<String> {
        let over = |share: Option<f64>| share.filter(|&s| s > DISTURBED_ABOVE);
        let parts: Vec<String> = match *self {
            Disturbance::Pinned { server, load } => [("server", server), ("load", load)]
                .into_iter()
                .filter_map(|(name, share)| Some(format!("{name} CPUs {:.1} %", over(share)? * 100.0)))
                .collect(),
            Disturbance::Shared(all) => over(all)
                .map(|s| format!("shared CPUs {:.1} %", s * 100.0))
                .into_iter()
                .collect(),
        };
        (!parts.is_empty()).then(|| {
            format!(
                "{DISTURBED}: {} to other processes (above {:.0} %)",
                parts.join(", "),
                DISTURBED_ABOVE * 100.0
            )
        })
    }
}

/// `server=0.012 load=0.000`, `all=0.034`; `-` for an unreadable share.
impl fmt::Display for Disturbance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"));
        match *self {
            Disturbance::Pinned { server, load } => write!(f, "server={} load={}", share(server), share(load)),
            Disturbance::Shared(all) => write!(f, "all={}", share(all)),
        }
    }
}

/// The readings that open a run: `/proc/stat`, the server's and the
/// runner's CPU ticks.
#[derive(Clone, Debug)]
pub struct Window {
    before: CpuTimes,
    server: Option<u64>,
    runner: Option<u64>,
}

impl Window {
    /// Takes the opening readings for the server process tree `server_pid`.
    pub fn open(server_pid: u32) -> io::Result<Window> {
        Ok(Window {
            before: CpuTimes::read()?,
            server: ProcSample::read_tree(server_pid).cpu_ticks,
            runner: runner_ticks(),
        })
    }

    /// Takes the closing readings and works out the shares of `sets`.
    pub fn close(self, server_pid: u32, sets: &Sets) -> io::Result<Disturbance> {
        let server = ProcSample::read_tree(server_pid).cpu_ticks;
        let runner = runner_ticks();
        let after = CpuTimes::read()?;
        // A process that cannot be read (it died) counts as no time of ours.
        let delta = |start: Option<u64>, end: Option<u64>| match (start, end) {
            (Some(start), Some(end)) => end.saturating_sub(start),
            _ => 0,
        };
        let (server, runner) = (delta(self.server, server), delta(self.runner, runner));
        Ok(match sets {
            Sets::Pinned { server: s, load: l } => Disturbance::Pinned {
                server: share(&self.before, &after, s, server),
                load: share(&self.before, &after, l, runner),
            },
            Sets::Shared(cpus) => Disturbance::Shared(share(&self.before, &after, cpus, server + runner)),
        })
    }
}

/// The runner's own user + system ticks (every thread: the load
/// generator's, the sampler's).
fn runner_ticks() -> Option<u64> {
    cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "cpu  300 0 100 5000 10 0 5 0 0 0\n\
        cpu0 100 0 50 2500 5 0 3 0 0 0\n\
        cpu1 200 0 50 2500 5 0 2 0 0 0\n\
        intr 12345\n";
    // 100 ticks later on each CPU: cpu0 busy 60 (50 user + 10 system),
    // 5 steal; cpu1 busy 20; the rest idle or softirq.
    const AFTER: &str = "cpu  380 0 110 5110 10 0 10 5 0 0\n\
        cpu0 150 0 60 2530 5 0 8 5 0 0\n\
        cpu1 220 0 50 2580 5 0 2 0 0 0\n";

    #[test]
    fn parses_the_per_cpu_lines_only() {
        let times = CpuTimes::parse(BEFORE);
        assert_eq!(times.0.len(), 2);
        assert_eq!(
            times.get(0),
            Some(CpuTicks {
                busy: 150,
                steal: 0,
                total: 2658
            })
        );
        assert_eq!(times.get(2), None);
    }

    #[test]
    fn the_share_is_others_busy_time_plus_steal_over_elapsed() {
        let (before, after) = (CpuTimes::parse(BEFORE), CpuTimes::parse(AFTER));
        // cpu0: 100 ticks elapsed, busy 60 of which 40 ours, steal 5.
        let share0 = share(&before, &after, &[0], 40).expect("cpu0");
        assert!((share0 - 25.0 / 100.0).abs() < 1e-9, "{share0}");
        // All of cpu1's busy time was ours: no disturbance.
        assert_eq!(share(&before, &after, &[1], 20), Some(0.0));
        // Both: (20 + 5 + 0) / 200.
        let both = share(&before, &after, &[0, 1], 60).expect("both");
        assert!((both - 25.0 / 200.0).abs() < 1e-9, "{both}");
        // More of ours than the CPU was busy (ticks are coarse): not negative.
        assert_eq!(share(&before, &after, &[1], 500), Some(0.0));
    }

    #[test]
    fn a_missing_cpu_or_no_elapsed_time_gives_no_share() {
        let before = CpuTimes::parse(BEFORE);
        assert_eq!(share(&before, &CpuTimes::parse(AFTER), &[7], 0), None);
        assert_eq!(share(&before, &before, &[0], 0), None);
    }

    #[test]
    fn a_share_above_the_threshold_is_flagged_and_shown_as_key_value_pairs() {
        let quiet = Disturbance::Pinned {
            server: Some(0.012),
            load: Some(0.0),
        };
        assert_eq!(quiet.to_string(), "server=0.012 load=0.000");
        assert_eq!(quiet.flag(), None);
        let busy = Disturbance::Pinned {
            server: Some(0.25),
            load: None,
        };
        assert_eq!(busy.to_string(), "server=0.250 load=-");
        assert_eq!(busy.worst(), Some(0.25));
        let flag = busy.flag().expect("flagged");
        assert!(flag.starts_with(DISTURBED), "{flag}");
        assert!(flag.contains("server CPUs 25.0 %") && !flag.contains("load"), "{flag}");
        let shared = Disturbance::Shared(Some(0.06));
        assert_eq!(shared.to_string(), "all=0.060");
        assert!(shared.flag().is_some_and(|f| f.contains("shared CPUs 6.0 %")));
    }

    #[test]
    fn a_window_over_this_process_reads_a_share() {
        let pid = std::process::id();
        let sets = Sets::Shared(vec![0]);
        let window = Window::open(pid).expect("opening readings");
        let until = std::time::Instant::now() + std::time::Duration::from_millis(30);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        // The share itself depends on the machine; only its range is ours.
        match window.close(pid, &sets).expect("closing readings") {
            Disturbance::Shared(share) => assert!(share.is_none_or(|s| (0.0..=1.0).contains(&s))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn this_machine_has_readable_counters() {
        let times = CpuTimes::read().expect("/proc/stat");
        assert!(!times.0.is_empty(), "at least one cpuN line");
        assert!(load_average().is_some());
    }
}
