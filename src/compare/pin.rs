//! CPU sets: parsing `taskset`-style lists (`0`, `0-1`, `0,2-3`), splitting
//! the CPUs this process may use between the server and the load, and
//! pinning with `sched_setaffinity`.
//!
//! The server child is pinned in `pre_exec` (between fork and exec), so the
//! server's first thread already runs on its set and every thread it starts
//! inherits it. The load generator's threads are pinned by pinning the
//! calling thread before [`load::run`](crate::load::run) spawns them (a new
//! thread inherits its creator's mask); [`PinGuard`] restores the caller's
//! mask afterwards.

use std::fmt;
use std::io;
use std::str::FromStr;

/// The highest CPU number a set can hold (the size of `libc::cpu_set_t`).
const MAX_CPUS: usize = 1024;

/// A set of CPU numbers, kept sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(Vec<usize>);

impl CpuSet {
    /// A set of the given CPUs (sorted, deduplicated).
    pub fn new(mut cpus: Vec<usize>) -> Self {
        cpus.sort_unstable();
        cpus.dedup();
        Self(cpus)
    }

    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the two sets share a CPU.
    pub fn overlaps(&self, other: &CpuSet) -> bool {
        self.0.iter().any(|cpu| other.0.contains(cpu))
    }

    /// The CPUs the calling thread may run on.
    pub fn of_current_thread() -> io::Result<Self> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; the size is that of `set`.
        if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: CPU_ISSET reads the set within its size.
        let cpus = (0..MAX_CPUS)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        Ok(Self(cpus))
    }

    /// Splits the set in two halves for the server (the first, larger half)
    /// and the load (the rest). `None` when there are fewer than two CPUs.
    pub fn split_in_half(&self) -> Option<(CpuSet, CpuSet)> {
        if self.len() < 2 {
            return None;
        }
        let server = self.len().div_ceil(2);
        Some((CpuSet(self.0[..server].to_vec()), CpuSet(self.0[server..].to_vec())))
    }

    fn to_libc(&self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain data; all zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in &self.0 {
            // SAFETY: CPU numbers are checked against MAX_CPUS when parsed.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        set
    }

    /// Pins the calling thread to this set. Async-signal-safe (one system
    /// call), so it may run in `pre_exec`.
    pub fn pin_current_thread(&self) -> io::Result<()> {
        set_affinity(&self.to_libc())
    }

    /// Pins the calling thread to this set until the guard is dropped, which
    /// restores the mask the thread had before.
    pub fn pin_scoped(&self) -> io::Result<PinGuard> {
        let before = Self::of_current_thread()?;
        self.pin_current_thread()?;
        Ok(PinGuard { before })
    }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the calling thread's CPU mask when dropped (see
/// [`CpuSet::pin_scoped`]). Drop it on the thread that created it.
#[derive(Debug)]
pub struct PinGuard {
    before: CpuSet,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // Nothing sensible to do if restoring fails: the mask stays narrower.
        let _ = self.before.pin_current_thread();
    }
}

/// The list form `taskset -c` reads: `0-3,6`.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut index = 0;
        while index < self.0.len() {
            let start = self.0[index];
            let mut end = start;
            while index + 1 < self.0.len() && self.0[index + 1] == end + 1 {
                index += 1;
                end += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end > start {
                write!(f, "{start}-{end}")?;
            } else {
                write!(f, "{start}")?;
            }
            index += 1;
        }
        Ok(())
    }
}

/// A CPU list that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCpuList(String);

impl fmt::Display for BadCpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad CPU list {:?}: write CPU numbers and ranges, e.g. 0, 0-1, 0,2-3",
            self.0
        )
    }
}

impl std::error::Error for BadCpuList {}

impl FromStr for CpuSet {
    type Err = BadCpuList;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadCpuList(text.to_owned());
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&cpu| cpu < MAX_CPUS)
                .ok_or_else(bad)
        };
        let mut cpus = Vec::new();
        for part in text.split(',') {
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (number(first)?, number(last)?);
                    if first > last {
                        return Err(bad());
                    }
                    cpus.extend(first..=last);
                }
                None => cpus.push(number(part)?),
            }
        }
        Ok(Self::new(cpus))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_print_like_taskset() {
        for (text, cpus, shown) in [
            ("0", vec![0], "0"),
            ("0-1", vec![0, 1], "0-1"),
            ("0,2", vec![0, 2], "0,2"),
            ("3,0-1,2", vec![0, 1, 2, 3], "0-3"),
            (" 1 , 4-5", vec![1, 4, 5], "1,4-5"),
        ] {
            let set: CpuSet = text.parse().unwrap();
            assert_eq!(set.cpus(), cpus.as_slice(), "{text}");
            assert_eq!(set.to_string(), shown, "{text}");
        }
        for bad in ["", "a", "2-1", "0,", "-1", "5000"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn halves_are_disjoint_and_the_server_gets_the_larger() {
        let (server, load) = CpuSet::new(vec![0, 1]).split_in_half().unwrap();
        assert_eq!((server.to_string(), load.to_string()), ("0".into(), "1".into()));
        let (server, load) = CpuSet::new(vec![0, 1, 2]).split_in_half().unwrap();
        assert_eq!((server.len(), load.len()), (2, 1));
        assert!(!server.overlaps(&load));
        assert_eq!(CpuSet::new(vec![0]).split_in_half(), None);
    }

    #[test]
    fn pinning_a_thread_is_restored_by_the_guard() {
        std::thread::spawn(|| {
            let all = CpuSet::of_current_thread().unwrap();
            let one = CpuSet::new(vec![all.cpus()[0]]);
            {
                let _guard = one.pin_scoped().unwrap();
                assert_eq!(CpuSet::of_current_thread().unwrap(), one);
                let inherited = std::thread::spawn(|| CpuSet::of_current_thread().unwrap())
                    .join()
                    .unwrap();
                assert_eq!(inherited, one, "a new thread inherits its creator's mask");
            }
            assert_eq!(CpuSet::of_current_thread().unwrap(), all);
        })
        .join()
        .unwrap();
    }
}
