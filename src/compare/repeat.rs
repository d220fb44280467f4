//! Repeats: the order that spreads a matrix's repeats over time, and the
//! spread that says whether two cells differ beyond the noise of their
//! repeats.
//!
//! On a shared machine a slow phase (another tenant's build, a timer storm)
//! lasts seconds to minutes. Measured cell by cell, all repeats of one cell
//! would fall into the same phase and make it look slower than the rest.
//! So repeats should visit every cell once per round, and every other round in
//! reverse order ([`interleaved`]): a phase that slows the end of one round
//! slows the start of the next, which belongs to the same cells. `compare
//! --repeat N` runs in this order; the named scenarios repeat
//! [`SCENARIO_REPEATS`] times unless told otherwise, the default run and
//! custom matrices once (the default run is to take about a minute).
//!
//! A cell's figure is the median of its repeats, with their range
//! ([`Spread`]). Two cells are told apart only when their ranges do not
//! overlap. With three repeats that is a conservative test (a bootstrap
//! interval of a median of three is no narrower than its range), and it is
//! one a reader can check by eye in the table.

use std::fmt;

use serde::Serialize;

/// How many times a named scenario measures every cell by default.
pub const SCENARIO_REPEATS: usize = 3;

/// One measurement in the interleaved order: which round, which cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visit {
    /// The repeat, from 0.
    pub round: usize,
    /// The cell's index in the plan.
    pub cell: usize,
}

/// Every cell once per round, the odd rounds in reverse order.
pub fn interleaved(cells: usize, rounds: usize) -> Vec<Visit> {
    let mut visits = Vec::with_capacity(cells * rounds);
    for round in 0..rounds {
        let order: Box<dyn Iterator<Item = usize>> = if round % 2 == 0 {
            Box::new(0..cells)
        } else {
            Box::new((0..cells).rev())
        };
        visits.extend(order.map(|cell| Visit { round, cell }));
    }
    visits
}

/// A figure over the repeats of one cell: the median and the range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest repeat.
    pub min: f64,
    /// The largest repeat.
    pub max: f64,
    /// How many repeats.
    pub count: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none (NaNs are left out).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            count: sorted.len(),
        })
    }

    /// Whether the two ranges overlap: the difference between the two cells
    /// is within the noise of their repeats. A single measurement has no
    /// range to speak of, so it is never told apart from anything.
    pub fn within_noise_of(&self, other: &Spread) -> bool {
        self.count < 2 || other.count < 2 || (self.min <= other.max && other.min <= self.max)
    }

    /// The range relative to the median, e.g. `0.04` for ±2 %.
    pub fn relative_range(&self) -> Option<f64> {
        (self.median != 0.0).then(|| (self.max - self.min) / self.median.abs())
    }
}

impl fmt::Display for Spread {
    /// `median (min–max)`, the range left out for a single measurement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count < 2 {
            write!(f, "{:.0}", self.median)
        } else {
            write!(f, "{:.0} ({:.0}–{:.0})", self.median, self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells_of(visits: &[Visit]) -> Vec<usize> {
        visits.iter().map(|visit| visit.cell).collect()
    }

    #[test]
    fn two_rounds_go_forward_then_back() {
        let visits = interleaved(3, 2);
        assert_eq!(cells_of(&visits), [0, 1, 2, 2, 1, 0]);
        assert_eq!(visits.iter().map(|v| v.round).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn three_rounds_alternate_and_visit_every_cell_once_per_round() {
        let visits = interleaved(4, 3);
        assert_eq!(cells_of(&visits), [0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3]);
        for round in 0..3 {
            let mut cells: Vec<usize> = visits.iter().filter(|v| v.round == round).map(|v| v.cell).collect();
            cells.sort_unstable();
            assert_eq!(cells, [0, 1, 2, 3]);
        }
    }

    #[test]
    fn one_round_is_the_plain_order() {
        assert_eq!(cells_of(&interleaved(3, 1)), [0, 1, 2]);
        assert!(interleaved(0, 3).is_empty());
    }

    #[test]
    fn median_and_range_of_known_rows() {
        let odd = Spread::of([310.0, 290.0, 300.0]).expect("three values");
        assert_eq!((odd.median, odd.min, odd.max, odd.count), (300.0, 290.0, 310.0, 3));
        let even = Spread::of([4.0, 1.0, 3.0, 2.0]).expect("four values");
        assert_eq!(even.median, 2.5);
        assert_eq!(Spread::of([f64::NAN, 7.0]).map(|s| s.count), Some(1));
        assert_eq!(Spread::of(Vec::<f64>::new()), None);
        assert_eq!(odd.to_string(), "300 (290–310)");
        assert_eq!(odd.relative_range(), Some(20.0 / 300.0));
    }

    #[test]
    fn overlapping_ranges_are_within_noise_and_disjoint_ones_are_not() {
        let a = Spread::of([100.0, 110.0, 105.0]).expect("a");
        let b = Spread::of([108.0, 120.0, 115.0]).expect("b");
        let c = Spread::of([130.0, 140.0, 135.0]).expect("c");
        assert!(a.within_noise_of(&b) && b.within_noise_of(&a));
        assert!(!a.within_noise_of(&c) && !c.within_noise_of(&a));
        let single = Spread::of([200.0]).expect("single");
        assert!(single.within_noise_of(&a), "one measurement cannot be told apart");
    }
}
