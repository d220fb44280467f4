//! The progress bar on standard error: run i/n, the cell being measured and
//! the time left. Hidden when standard error is not a terminal (CI, pipes,
//! tests), so logs stay clean.
//!
//! The time left is the plan's estimate for the cells still to run, scaled
//! by how the finished cells compared with their estimates.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar and the bookkeeping for its time-left figure.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    estimates: Vec<Duration>,
    done_estimate: Duration,
    started: Instant,
}

impl Progress {
    /// A bar over cells with these estimated durations.
    pub fn new(estimates: Vec<Duration>) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(estimates.len() as u64), target);
        if let Ok(style) = ProgressStyle::with_template("[{elapsed_precise}] {bar:24.cyan/blue} {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            estimates,
            done_estimate: Duration::ZERO,
            started: Instant::now(),
        }
    }

    /// Cell `index` (0-based) starts.
    pub fn start(&self, index: usize, label: &str) {
        self.bar.set_position(index as u64);
        let left = self.time_left(index);
        self.bar
            .set_message(format!("{label}  (~{} left)", format_duration(left)));
    }

    /// Cell `index` finished.
    pub fn finish_cell(&mut self, index: usize) {
        self.done_estimate += self.estimates.get(index).copied().unwrap_or_default();
        self.bar.set_position(index as u64 + 1);
    }

    /// Prints a line above the bar (or plainly when the bar is hidden).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn time_left(&self, index: usize) -> Duration {
        let remaining: Duration = self.estimates.iter().skip(index).sum();
        let elapsed = self.started.elapsed();
        if self.done_estimate.is_zero() {
            return remaining;
        }
        let pace = elapsed.as_secs_f64() / self.done_estimate.as_secs_f64();
        remaining.mul_f64(pace.clamp(0.25, 4.0))
    }
}

/// `45 s`, `3 min 05 s`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64().round() as u64;
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {:02} s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(44_600)), "45 s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3 min 05 s");
    }
}
